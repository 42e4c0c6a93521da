// SPDX-License-Identifier: Apache-2.0
// The kernel's protocol inference (bpf/lib/http_sniff.bpf.h, db_sniff.bpf.h) compiled as C++ and
// checked on the inputs it must accept and reject; plus the ABI layout both sides rely on.
#include <gtest/gtest.h>
#include <linux/types.h>

#include <cstddef>
#include <string>

#include "redtap_abi.h"
extern "C" {
#ifndef __always_inline
#define __always_inline inline
#endif
#include "http_sniff.bpf.h"
#ifndef __noinline
#define __noinline inline
#endif
#include "db_sniff.bpf.h"
}

namespace {

int Sniff(const std::string& s) {
  __u8 b[REDTAP_SNIFF_LEN] = {};
  __u32 n = s.size() < REDTAP_SNIFF_LEN ? s.size() : REDTAP_SNIFF_LEN;
  for (__u32 i = 0; i < n; i++) b[i] = static_cast<__u8>(s[i]);
  return sniff__http(b, n);
}

TEST(Sniff, Requests) {
  for (const char* m :
       {"GET / HTTP/1.1", "POST /api", "PUT /x", "DELETE /x", "HEAD /", "OPTIONS * HTTP/1.1",
        "PATCH /a", "CONNECT h:443 HTTP/1.1", "PROPFIND /dav", "M-SEARCH * HTTP/1.1", "TRACE /"}) {
    EXPECT_EQ(Sniff(m), REDTAP_SNIFF_REQUEST) << m;
  }
}

TEST(Sniff, Responses) {
  EXPECT_EQ(Sniff("HTTP/1.1 200 OK\r\n"), REDTAP_SNIFF_RESPONSE);
  EXPECT_EQ(Sniff("HTTP/1.0 404 Not Found"), REDTAP_SNIFF_RESPONSE);
}

TEST(Sniff, RejectsOtherTraffic) {
  EXPECT_EQ(Sniff(std::string("\x16\x03\x01\x02\x00", 5)), REDTAP_SNIFF_NONE);  // TLS
  EXPECT_EQ(Sniff("PRI * HTTP/2.0"), REDTAP_SNIFF_REQUEST);  // h2c preface looks like one: the
                                                             // userspace parser rejects it
  EXPECT_EQ(Sniff("HTTP/2 200"), REDTAP_SNIFF_NONE);
  EXPECT_EQ(Sniff("SSH-2.0-OpenSSH"), REDTAP_SNIFF_NONE);
  EXPECT_EQ(Sniff("*3\r\n$3\r\nSET"), REDTAP_SNIFF_NONE);  // Redis
  EXPECT_EQ(Sniff("get / HTTP/1.1"), REDTAP_SNIFF_NONE);   // methods are case-sensitive
  EXPECT_EQ(Sniff("GE"), REDTAP_SNIFF_NONE);
  EXPECT_EQ(Sniff("GETX"), REDTAP_SNIFF_NONE);
  EXPECT_EQ(Sniff("ABCDEFGHIJKLMNOPQRS /"), REDTAP_SNIFF_NONE);  // token longer than the peek
  EXPECT_EQ(Sniff(""), REDTAP_SNIFF_NONE);
}

// The records are decoded with memcpy at fixed offsets: pin the layout.
TEST(Abi, Layout) {
  EXPECT_EQ(sizeof(redtap_event_hdr), 16u);
  EXPECT_EQ(sizeof(redtap_conn_id), 16u);
  EXPECT_EQ(sizeof(redtap_data_event), 56u);
  EXPECT_EQ(offsetof(redtap_data_event, data), 56u);
  EXPECT_EQ(sizeof(redtap_data_event) % 8, 0u);
  EXPECT_EQ(sizeof(redtap_conn_open_event), 104u);
  EXPECT_EQ(offsetof(redtap_conn_open_event, tls), 96u);
  EXPECT_EQ(sizeof(redtap_exec_event), 24u);
  EXPECT_EQ(offsetof(redtap_conn_open_event, comm), 80u);
  EXPECT_EQ(sizeof(redtap_conn_close_event), 40u);
  EXPECT_EQ(sizeof(redtap_conn_info), 40u);
  EXPECT_EQ(offsetof(redtap_conn_info, unparsed_ts), 32u);
  EXPECT_EQ(offsetof(redtap_data_event, flags), 50u);
}

// ---- databases (db_sniff.bpf.h) ----

__u32 DbSniff(const std::string& s) {
  __u8 b[REDTAP_SNIFF_LEN] = {};
  __u32 n = s.size() < REDTAP_SNIFF_LEN ? s.size() : REDTAP_SNIFF_LEN;
  for (__u32 i = 0; i < n; i++) b[i] = static_cast<__u8>(s[i]);
  __u64 w0, w1;
  db__words(b, &w0, &w1);
  return db__sniff(w0, w1, n);
}

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int c : v) s.push_back(static_cast<char>(c));
  return s;
}

__u32 Weak(__u32 proto) { return (1u << proto) << REDTAP_DB_WEAK_SHIFT; }

TEST(DbSniff, StrongFirstMessages) {
  // PostgreSQL StartupMessage (length 41, protocol 3.0) and SSLRequest.
  __u32 r = DbSniff(Bytes({0, 0, 0, 41, 0, 3, 0, 0}) + "user\0app\0");
  EXPECT_EQ(r & 0xff, REDTAP_PROTO_POSTGRESQL);
  EXPECT_TRUE(r & REDTAP_DB_STRONG);
  EXPECT_EQ((r >> 8) & 0xf, REDTAP_DB_SIDE_FRONTEND);
  EXPECT_FALSE(r & REDTAP_DB_SSLREQ);
  r = DbSniff(Bytes({0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}));
  EXPECT_EQ(r & 0xff, REDTAP_PROTO_POSTGRESQL);
  EXPECT_TRUE(r & REDTAP_DB_SSLREQ);
  // MariaDB 10.11 greeting: length 0x5b, sequence 0, protocol 10, "5.5.5-10.11...".
  r = DbSniff(Bytes({0x5b, 0, 0, 0, 0x0a}) + "5.5.5-10.11.6");
  EXPECT_EQ(r & 0xff, REDTAP_PROTO_MYSQL);
  EXPECT_EQ((r >> 8) & 0xf, REDTAP_DB_SIDE_BACKEND);
  // A Redis command array, one- and two-digit counts.
  EXPECT_EQ(DbSniff("*3\r\n$3\r\nSET\r\n") & 0xff, REDTAP_PROTO_REDIS);
  EXPECT_EQ(DbSniff("*12\r\n$4\r\nMSET\r\n") & 0xff, REDTAP_PROTO_REDIS);
}

TEST(DbSniff, WeakShapesNeedAPortHint) {
  // A simple query mid-stream: 'Q', length 21.
  __u32 r = DbSniff(Bytes({'Q', 0, 0, 0, 21}) + "SELECT 1");
  EXPECT_FALSE(r & REDTAP_DB_STRONG);
  EXPECT_TRUE(r & Weak(REDTAP_PROTO_POSTGRESQL));
  EXPECT_EQ(db__decide(r, 0, 1, 0), 0u);
  EXPECT_EQ(db__decide(r, REDTAP_PROTO_POSTGRESQL, 1, 0), (__u32)REDTAP_PROTO_POSTGRESQL);
  EXPECT_EQ(db__decide(r, REDTAP_PROTO_REDIS, 1, 0), 0u);
  // A MySQL COM_QUERY packet: length 9, sequence 0, command 3.
  r = DbSniff(Bytes({9, 0, 0, 0, 3}) + "SELECT 1");
  EXPECT_TRUE(r & Weak(REDTAP_PROTO_MYSQL));
  EXPECT_EQ(db__decide(r, REDTAP_PROTO_MYSQL, 1, 0), (__u32)REDTAP_PROTO_MYSQL);
  // Redis replies and inline commands.
  EXPECT_TRUE(DbSniff("+OK\r\n") & Weak(REDTAP_PROTO_REDIS));
  EXPECT_TRUE(DbSniff(":12\r\n") & Weak(REDTAP_PROTO_REDIS));
  EXPECT_TRUE(DbSniff("PING\r\n") & Weak(REDTAP_PROTO_REDIS));
}

TEST(DbSniff, SidesMustMatchTheDirection) {
  const __u32 startup = DbSniff(Bytes({0, 0, 0, 41, 0, 3, 0, 0}));
  EXPECT_EQ(db__decide(startup, 0, /*request_dir=*/1, 1), (__u32)REDTAP_PROTO_POSTGRESQL);
  EXPECT_EQ(db__decide(startup, 0, /*request_dir=*/0, 1), 0u);
  const __u32 greeting = DbSniff(Bytes({0x5b, 0, 0, 0, 0x0a}) + "8.0.36");
  EXPECT_EQ(db__decide(greeting, 0, 0, 1), (__u32)REDTAP_PROTO_MYSQL);
  EXPECT_EQ(db__decide(greeting, 0, 1, 1), 0u);
  // A RESP array further on may be a reply: only a fresh connection or a hint opens it.
  const __u32 resp = DbSniff("*2\r\n$3\r\nGET\r\n");
  EXPECT_EQ(db__decide(resp, 0, 1, 1), (__u32)REDTAP_PROTO_REDIS);
  EXPECT_EQ(db__decide(resp, 0, 1, 0), 0u);
  EXPECT_EQ(db__decide(resp, REDTAP_PROTO_REDIS, 1, 0), (__u32)REDTAP_PROTO_REDIS);
}

TEST(DbSniff, OtherTrafficIsNotADatabase) {
  for (const std::string& s :
       {std::string("GET / HTTP/1.1"), std::string("HTTP/1.1 200 OK"), Bytes({0x16, 3, 1, 2, 0}),
        std::string("SSH-2.0-OpenSSH"), std::string(""), Bytes({0, 0, 0, 0, 0, 0, 0, 0})}) {
    EXPECT_FALSE(DbSniff(s) & REDTAP_DB_STRONG) << s;
    EXPECT_EQ(db__decide(DbSniff(s), 0, 1, 1), 0u) << s;  // without a hint nothing opens
  }
  // With one, HTTP and TLS are not that protocol's shape.
  EXPECT_EQ(db__decide(DbSniff(Bytes({0x16, 3, 1, 2, 0})), REDTAP_PROTO_POSTGRESQL, 1, 1), 0u);
  EXPECT_EQ(db__decide(DbSniff("HTTP/1.1 200 OK"), REDTAP_PROTO_MYSQL, 0, 1), 0u);
}

TEST(DbAbi, OpenEventCarriesTheProtocol) {
  EXPECT_EQ(offsetof(redtap_conn_open_event, proto), offsetof(redtap_conn_open_event, tls) + 1);
  EXPECT_EQ(offsetof(redtap_conn_info, proto), offsetof(redtap_conn_info, cap_shift) + 1);
}

}  // namespace

// SPDX-License-Identifier: Apache-2.0
// The kernel's protocol inference (bpf/lib/http_sniff.bpf.h) compiled as C++ and checked on
// the inputs it must accept and reject; plus the ABI layout both sides rely on.
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

}  // namespace

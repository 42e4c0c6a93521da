// SPDX-License-Identifier: Apache-2.0
// The flow table's database dispatch: which flows get a db::Parser (a configured server
// port, or a strong first message on any port), who is the client, holes, close, flush,
// SSL, db.enabled = false, and the summary's database table.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "parsers/db/types.h"
#include "userspace/config/config.h"
#include "userspace/pcap/flow_table.h"
#include "userspace/pcap/pcap_runner.h"
#include "userspace/pcap/summary.h"

namespace redtap::pcap {
namespace {

struct Op {
  db::System system;
  std::string operation, status;
  bool has_response;
  Role role;
  uint16_t server_port;
  uint64_t duration;
};

struct Sink : TransactionSink {
  std::vector<Op> ops;
  size_t http = 0;
  void OnTransaction(const http::Transaction&, const ConnMeta&) noexcept override { ++http; }
  void OnDbOperation(db::Operation&& o, const ConnMeta& m) noexcept override {
    ops.push_back({o.system, o.operation, o.status_code, o.has_response, m.role, m.server().port,
                   o.DurationNs()});
  }
};

constexpr uint8_t kA = kTcpAck, kP = kTcpAck | kTcpPsh;

// A segment between client 10.0.0.1:`cport` and server 10.0.0.2:`sport`.
TcpSegment Seg(bool from_client, uint16_t cport, uint16_t sport, uint32_t seq, uint32_t ack,
               uint8_t flags, std::string_view data) {
  TcpSegment s;
  s.ip.family = 4;
  const uint8_t c[4] = {10, 0, 0, 1}, sv[4] = {10, 0, 0, 2};
  std::memcpy(s.ip.src, from_client ? c : sv, 4);
  std::memcpy(s.ip.dst, from_client ? sv : c, 4);
  s.src_port = from_client ? cport : sport;
  s.dst_port = from_client ? sport : cport;
  s.seq = seq;
  s.ack = ack;
  s.flags = flags;
  s.payload = data;
  s.payload_wire_len = static_cast<uint32_t>(data.size());
  return s;
}

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
// A typed PostgreSQL message.
std::string Pg(char type, const std::string& body) {
  return std::string(1, type) + Be32(static_cast<uint32_t>(body.size() + 4)) + body;
}
std::string PgStartup() {
  const std::string params("user\0u\0database\0d\0\0", 20);
  return Be32(static_cast<uint32_t>(8 + params.size())) + Be32(196608) + params;
}
const std::string kPgAuthOk = Pg('R', Be32(0)) + Pg('Z', "I");
std::string PgQuery(const std::string& sql) { return Pg('Q', sql + std::string(1, '\0')); }
std::string PgDone(const std::string& tag) {
  return Pg('C', tag + std::string(1, '\0')) + Pg('Z', "I");
}
std::string Resp(std::initializer_list<std::string> args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

// One connection, both directions' sequence numbers tracked.
struct Conn {
  FlowTable* t;
  uint16_t cport, sport;
  uint32_t c = 101, s = 501;
  uint64_t ts = 1000;
  void Open() {
    t->OnSegment(Seg(true, cport, sport, 100, 0, kTcpSyn, ""), ts++);
    t->OnSegment(Seg(false, cport, sport, 500, 101, kTcpSyn | kA, ""), ts++);
    t->OnSegment(Seg(true, cport, sport, 101, 501, kA, ""), ts++);
  }
  void Client(const std::string& d, uint64_t at = 0) {
    t->OnSegment(Seg(true, cport, sport, c, s, kP, d), at ? at : ts++);
    c += static_cast<uint32_t>(d.size());
  }
  void Server(const std::string& d, uint64_t at = 0) {
    t->OnSegment(Seg(false, cport, sport, s, c, kP, d), at ? at : ts++);
    s += static_cast<uint32_t>(d.size());
  }
  void Close() {
    t->OnSegment(Seg(true, cport, sport, c, s, kTcpFin | kA, ""), ts++);
    t->OnSegment(Seg(false, cport, sport, s, c + 1, kTcpFin | kA, ""), ts++);
  }
};

TEST(SniffDbFirstMessage, StrongPatterns) {
  db::System sys;
  bool from_client = false;
  EXPECT_TRUE(SniffDbFirstMessage(PgStartup(), &sys, &from_client));
  EXPECT_EQ(sys, db::System::kPostgresql);
  EXPECT_TRUE(from_client);
  const std::string ssl = Be32(8) + Be32(80877103);
  EXPECT_TRUE(SniffDbFirstMessage(ssl, &sys, &from_client));
  EXPECT_EQ(sys, db::System::kPostgresql);
  // MySQL 8 greeting head: length 74, sequence 0, protocol 10, "8.0.36".
  const std::string greeting(
      "\x4a\x00\x00\x00\x0a"
      "8.0.36\0",
      12);
  EXPECT_TRUE(SniffDbFirstMessage(greeting, &sys, &from_client));
  EXPECT_EQ(sys, db::System::kMysql);
  EXPECT_FALSE(from_client);
  EXPECT_TRUE(SniffDbFirstMessage(Resp({"PING"}), &sys, &from_client));
  EXPECT_EQ(sys, db::System::kRedis);
  EXPECT_TRUE(from_client);
  EXPECT_TRUE(SniffDbFirstMessage(Resp({"MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"}),
                                  &sys, &from_client));
  // Not strong: HTTP, TLS, a typed PostgreSQL message, a RESP reply, an inline command,
  // a startup of another protocol version, short bytes.
  for (const std::string& d :
       {std::string("GET / HTTP/1.1\r\n\r\n"), std::string("\x16\x03\x01\x02\x00", 5),
        PgQuery("SELECT 1"), std::string("+PONG\r\n"), std::string("*2\r\n:1\r\n:2\r\n"),
        std::string("PING\r\n"), Be32(16) + Be32(0x00020000) + std::string(8, 'x'),
        std::string("\0\0\0", 3), std::string()}) {
    EXPECT_FALSE(SniffDbFirstMessage(d, &sys, &from_client)) << d;
  }
}

TEST(FlowTableDb, PostgresOnItsPortWithHandshakeAndClose) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  Conn k{&t, 40000, 5432};
  k.Open();
  k.Client(PgStartup());
  k.Server(kPgAuthOk);
  k.Client(PgQuery("SELECT * FROM orders WHERE id = 7"), 2000);
  k.Server(Pg('T', std::string("\0\0", 2)) + PgDone("SELECT 0"), 5000);
  k.Client(PgQuery("DROP TABLE nope"));
  k.Server(Pg('E', std::string("SERROR\0C42P01\0Mno\0\0", 20)) + Pg('Z', "I"));
  k.Client(Pg('X', ""));
  k.Close();
  ASSERT_EQ(sink.ops.size(), 2u);
  EXPECT_EQ(sink.ops[0].system, db::System::kPostgresql);
  EXPECT_EQ(sink.ops[0].operation, "SELECT");
  EXPECT_TRUE(sink.ops[0].has_response);
  EXPECT_EQ(sink.ops[0].status, "");
  EXPECT_EQ(sink.ops[0].duration, 3000u);
  EXPECT_EQ(sink.ops[0].role, Role::kServer);
  EXPECT_EQ(sink.ops[0].server_port, 5432);
  EXPECT_EQ(sink.ops[1].operation, "DROP");
  EXPECT_EQ(sink.ops[1].status, "42P01");
  EXPECT_EQ(sink.http, 0u);
  const FlowStats s = t.stats();
  EXPECT_EQ(s.db_flows, 1u);
  EXPECT_EQ(s.db_operations, 2u);
  EXPECT_EQ(s.db_unanswered, 0u);
  EXPECT_EQ(s.db.requests, 2u);
  EXPECT_EQ(s.flows_closed, 1u);
  EXPECT_EQ(s.flows_not_http, 0u);
  EXPECT_EQ(t.flows(), 0u);
}

TEST(FlowTableDb, StrongFirstMessagesOnAnyPort) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  // A PostgreSQL startup to port 15432 and a RESP command to port 16379, both after a SYN.
  Conn pg{&t, 40000, 15432};
  pg.Open();
  pg.Client(PgStartup());
  pg.Server(kPgAuthOk);
  pg.Client(PgQuery("BEGIN"));
  pg.Server(PgDone("BEGIN"));
  Conn rd{&t, 40001, 16379};
  rd.Open();
  rd.Client(Resp({"SET", "k", "v"}));
  rd.Server("+OK\r\n");
  t.FlushAll(10000);
  ASSERT_EQ(sink.ops.size(), 2u);
  EXPECT_EQ(sink.ops[0].operation, "BEGIN");
  EXPECT_EQ(sink.ops[0].server_port, 15432);
  EXPECT_EQ(sink.ops[1].system, db::System::kRedis);
  EXPECT_EQ(sink.ops[1].operation, "SET");
  EXPECT_EQ(sink.ops[1].server_port, 16379);
  EXPECT_EQ(t.stats().db_flows, 2u);
  EXPECT_EQ(t.stats().flows_flushed, 2u);
}

TEST(FlowTableDb, RespArrayWithoutSynOnAnOtherPortIsNotADatabase) {
  // A RESP array mid-connection may be a reply as well as a command: no port, no Redis.
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  Conn k{&t, 40000, 7000};
  k.Client(Resp({"GET", "k"}));
  k.Server("$1\r\nv\r\n");
  t.FlushAll(10000);
  EXPECT_TRUE(sink.ops.empty());
  EXPECT_EQ(t.stats().db_flows, 0u);
}

TEST(FlowTableDb, MidStreamOnAConfiguredPort) {
  // No SYN: the side on port 6379 is the server, even when its reply comes first.
  Sink sink;
  FlowLimits l;
  l.redis_ports = {6379, 6380};
  FlowTable t(l, &sink);
  Conn k{&t, 40000, 6380};
  k.Server("+OK\r\n");  // the reply to a command sent before the capture: an orphan
  k.Client(Resp({"GET", "k"}), 2000);
  k.Server("$1\r\nv\r\n", 2500);
  k.Client("PING\r\n");  // an inline command: fine once the flow is Redis
  k.Server("+PONG\r\n");
  t.FlushAll(10000);
  ASSERT_EQ(sink.ops.size(), 2u);
  EXPECT_EQ(sink.ops[0].operation, "GET");
  EXPECT_EQ(sink.ops[0].duration, 500u);
  EXPECT_EQ(sink.ops[0].server_port, 6380);
  EXPECT_EQ(sink.ops[1].operation, "PING");
  const FlowStats s = t.stats();
  EXPECT_EQ(s.midstream_flows, 1u);
  EXPECT_EQ(s.db_flows, 1u);
  EXPECT_EQ(s.db.orphan_responses, 1u);
}

TEST(FlowTableDb, SynDecidesTheServerEvenOnAPortCollision) {
  // The client's ephemeral port happens to be 6379; the SYN says who the server is: HTTP.
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  Conn k{&t, 6379, 8080};
  k.Open();
  k.Client("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  k.Server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  // Without a SYN: HTTP bytes on a database port stay HTTP.
  Conn m{&t, 3306, 8081};
  m.Client("GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  m.Server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  t.FlushAll(10000);
  EXPECT_TRUE(sink.ops.empty());
  EXPECT_EQ(sink.http, 2u);
  EXPECT_EQ(t.stats().db_flows, 0u);
}

TEST(FlowTableDb, DisabledLeavesDatabaseFlowsAlone) {
  Sink sink;
  FlowLimits l;
  l.db_enabled = false;
  FlowTable t(l, &sink);
  Conn k{&t, 40000, 5432};
  k.Open();
  k.Client(PgStartup());
  k.Server(kPgAuthOk);
  k.Client(PgQuery("SELECT 1"));
  k.Server(PgDone("SELECT 1"));
  k.Close();
  EXPECT_TRUE(sink.ops.empty());
  EXPECT_EQ(sink.http, 0u);
  EXPECT_EQ(t.stats().db_flows, 0u);
  EXPECT_EQ(t.stats().flows_not_http, 1u);
}

TEST(FlowTableDb, SslAcceptedGivesUp) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  Conn k{&t, 40000, 5432};
  k.Open();
  k.Client(Be32(8) + Be32(80877103));
  k.Server("S");
  k.Client(std::string("\x16\x03\x01\x00\x05hello", 10));
  k.Close();
  EXPECT_TRUE(sink.ops.empty());
  EXPECT_EQ(t.stats().db_flows, 1u);
  EXPECT_EQ(t.stats().db_flows_invalid, 1u);
}

TEST(FlowTableDb, HoleLosesTheCommandsItSwallowed) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  Conn k{&t, 40000, 6379};
  k.Open();
  k.Client(Resp({"GET", "a"}));
  k.Server("$1\r\n1\r\n");
  k.c += static_cast<uint32_t>(Resp({"GET", "b"}).size());  // lost; the server ACKs it
  k.Server("$1\r\n2\r\n");
  k.Client(Resp({"INCR", "c"}));
  k.Server(":3\r\n");
  k.Close();
  ASSERT_GE(sink.ops.size(), 2u);
  EXPECT_EQ(sink.ops.front().operation, "GET");
  EXPECT_TRUE(sink.ops.front().has_response);
  EXPECT_EQ(sink.ops.back().operation, "INCR");
  EXPECT_TRUE(sink.ops.back().has_response);
  EXPECT_GE(t.stats().tcp.holes, 1u);
  EXPECT_GE(t.stats().db.gaps + t.stats().db.orphan_responses, 1u);
}

TEST(FlowTableDb, ResetAndFlushReportPendingCommandsWithoutReply) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  Conn k{&t, 40000, 6379};
  k.Open();
  k.Client(Resp({"BLPOP", "q", "0"}));
  t.OnSegment(Seg(false, 40000, 6379, k.s, k.c, kTcpRst | kA, ""), k.ts++);
  ASSERT_EQ(sink.ops.size(), 1u);
  EXPECT_EQ(sink.ops[0].operation, "BLPOP");
  EXPECT_FALSE(sink.ops[0].has_response);
  EXPECT_EQ(t.stats().db_unanswered, 1u);
  EXPECT_EQ(t.stats().flows_closed, 1u);

  Conn m{&t, 40001, 5432};
  m.Open();
  m.Client(PgStartup());
  m.Server(kPgAuthOk);
  m.Client(PgQuery("SELECT pg_sleep(10)"));
  t.FlushAll(99999);
  ASSERT_EQ(sink.ops.size(), 2u);
  EXPECT_EQ(sink.ops[1].operation, "SELECT");
  EXPECT_FALSE(sink.ops[1].has_response);
}

TEST(FlowTableDb, ConfigPortsReachTheFlowLimits) {
  config::Config cfg;
  cfg.db.enabled = false;
  cfg.db.postgresql_ports = {5433};
  cfg.db.mysql_ports = {3307, 3308};
  cfg.db.redis_ports = {};
  const FlowLimits l = LimitsFromConfig(cfg);
  EXPECT_FALSE(l.db_enabled);
  EXPECT_EQ(l.postgresql_ports, std::vector<uint16_t>{5433});
  EXPECT_EQ(l.mysql_ports, (std::vector<uint16_t>{3307, 3308}));
  EXPECT_TRUE(l.redis_ports.empty());
}

TEST(SummarySinkDb, PrintsOneRowPerSystemAndOperation) {
  config::Config cfg;
  SummarySink s(cfg);
  ConnMeta meta;
  auto feed = [&](db::System sys, const char* op, const char* error, bool answered) {
    db::Operation o;
    o.system = sys;
    o.operation = op;
    o.error_type = error;
    o.has_response = answered;
    o.request_ts = 1'000'000;
    o.response_ts = 3'000'000;
    enrich::EnrichedDb e;
    e.op = &o;
    e.meta = &meta;
    s.ConsumeDb(e);
  };
  feed(db::System::kPostgresql, "SELECT", "", true);
  feed(db::System::kPostgresql, "SELECT", "42", true);
  feed(db::System::kRedis, "GET", "", true);
  feed(db::System::kRedis, "GET", "", false);
  feed(db::System::kRedis, "GET", "", true);
  EXPECT_EQ(s.db_rows(), 2u);
  char buf[4096] = {};
  std::FILE* f = fmemopen(buf, sizeof(buf) - 1, "w");
  ASSERT_NE(f, nullptr);
  s.Print(f, 0);
  std::fclose(f);
  const std::string out(buf);
  EXPECT_NE(out.find("DB_SYSTEM"), std::string::npos) << out;
  EXPECT_EQ(out.find("SERVICE"), std::string::npos) << "no HTTP table without HTTP: " << out;
  const size_t redis = out.find("redis        GET");
  const size_t pg = out.find("postgresql   SELECT");
  ASSERT_NE(redis, std::string::npos) << out;
  ASSERT_NE(pg, std::string::npos) << out;
  EXPECT_LT(redis, pg) << "rows by count";
  // count 3, errors 1 (no reply).
  EXPECT_NE(out.find("3       1 ", redis), std::string::npos) << out;
}

}  // namespace
}  // namespace redtap::pcap

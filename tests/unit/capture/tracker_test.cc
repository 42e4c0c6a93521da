// SPDX-License-Identifier: Apache-2.0
#include "userspace/capture/tracker.h"
#include "userspace/common/format.h"

#include <gtest/gtest.h>

#include "tests/testing/event_generator.h"

namespace redtap {
namespace {

using testing::EventGenerator;

struct Seen {
  http::Transaction txn;
  ConnMeta meta;
};

class CollectSink : public TransactionSink {
 public:
  void OnTransaction(const http::Transaction& t, const ConnMeta& m) noexcept override {
    seen.push_back({t, m});
  }
  void OnDbOperation(db::Operation&& op, const ConnMeta& m) noexcept override {
    ops.push_back({std::move(op), m});
  }
  std::vector<Seen> seen;
  std::vector<std::pair<db::Operation, ConnMeta>> ops;
};

class FakeKernel : public KernelControl {
 public:
  void Mute(uint32_t, uint32_t fd, uint64_t) noexcept override { muted.push_back(fd); }
  void Rearm(uint32_t, uint32_t fd, uint64_t) noexcept override { rearmed.push_back(fd); }
  std::vector<uint32_t> muted, rearmed;
};

class TrackerTest : public ::testing::Test {
 protected:
  void Feed(const std::vector<uint8_t>& rec) { tracker.OnRecord(rec.data(), rec.size()); }
  config::LimitsConfig limits;
  CollectSink sink;
  FakeKernel kernel;
  ConnTracker tracker{limits, &sink, &kernel};
};

constexpr char kReq[] = "GET /api/cart?id=3 HTTP/1.1\r\nHost: shop\r\nUser-Agent: ua/1\r\n\r\n";
constexpr char kResp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

TEST_F(TrackerTest, ServerTransactionWithMetaAndTiming) {
  EventGenerator g(100, 7, 1, REDTAP_ROLE_SERVER);
  Feed(g.Open(1000, "nginx", 8080, 51000));
  Feed(g.Data(2000, REDTAP_DIR_INGRESS, kReq));
  Feed(g.Data(5000, REDTAP_DIR_EGRESS, kResp));
  ASSERT_EQ(sink.seen.size(), 1u);
  const auto& s = sink.seen[0];
  EXPECT_EQ(s.txn.request.method, "GET");
  EXPECT_EQ(s.txn.request.target, "/api/cart?id=3");
  EXPECT_EQ(s.txn.response.status_code, 200);
  EXPECT_EQ(s.txn.DurationNs(), 3000u);
  EXPECT_EQ(s.meta.pid, 100u);
  EXPECT_EQ(s.meta.command, "nginx");
  EXPECT_EQ(s.meta.role, Role::kServer);
  EXPECT_EQ(s.meta.server().port, 8080);
  EXPECT_EQ(s.meta.client().port, 51000);
  EXPECT_EQ(s.meta.server().address, "127.0.0.1");
  EXPECT_EQ(s.meta.client().address, "127.0.0.2");
}

TEST_F(TrackerTest, ClientDirectionsAreSwapped) {
  EventGenerator g(200, 3, 9, REDTAP_ROLE_CLIENT);
  Feed(g.Open(1000, "curl", 45000, 80));
  Feed(g.Data(1100, REDTAP_DIR_EGRESS, kReq));
  Feed(g.Data(1900, REDTAP_DIR_INGRESS, kResp));
  ASSERT_EQ(sink.seen.size(), 1u);
  EXPECT_EQ(sink.seen[0].meta.role, Role::kClient);
  EXPECT_EQ(sink.seen[0].meta.server().port, 80);
  EXPECT_EQ(sink.seen[0].txn.DurationNs(), 800u);
}

TEST_F(TrackerTest, CloseEmitsUnansweredRequestAndForgetsConnection) {
  EventGenerator g(100, 7, 1, REDTAP_ROLE_SERVER);
  Feed(g.Open(1000));
  Feed(g.Data(2000, REDTAP_DIR_INGRESS, kReq));
  EXPECT_EQ(tracker.connections(), 1u);
  Feed(g.Close(3000));
  ASSERT_EQ(sink.seen.size(), 1u);
  EXPECT_FALSE(sink.seen[0].txn.has_response);
  EXPECT_EQ(tracker.connections(), 0u);
  EXPECT_EQ(tracker.stats().unanswered, 1u);
}

TEST_F(TrackerTest, DataWithoutOpenIsCountedAndRearmed) {
  EventGenerator g(100, 7, 1, REDTAP_ROLE_SERVER);
  Feed(g.Data(2000, REDTAP_DIR_INGRESS, kReq));
  EXPECT_TRUE(sink.seen.empty());
  EXPECT_EQ(tracker.stats().data_without_conn, 1u);
  EXPECT_EQ(kernel.rearmed, std::vector<uint32_t>{7});
}

TEST_F(TrackerTest, LostRecordResyncsInsteadOfMispairing) {
  EventGenerator g(100, 7, 1, REDTAP_ROLE_SERVER);
  Feed(g.Open(1000));
  Feed(g.Data(2000, REDTAP_DIR_INGRESS, kReq));
  g.Lose();  // the response was lost in a full ring
  Feed(g.Data(4000, REDTAP_DIR_INGRESS, kReq));
  Feed(g.Data(5000, REDTAP_DIR_EGRESS, kResp));
  EXPECT_EQ(tracker.stats().seq_gaps, 1u);
  // Whatever the parser pairs after a gap, it never invents a second 200 for the first request.
  EXPECT_LE(sink.seen.size(), 2u);
}

TEST_F(TrackerTest, GarbageMutesTheConnection) {
  EventGenerator g(100, 9, 1, REDTAP_ROLE_SERVER);
  Feed(g.Open(1000));
  // Request bytes that are not HTTP wait for the answer (it may be an HTTP 400)...
  Feed(g.Data(2000, REDTAP_DIR_INGRESS, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9)));
  EXPECT_TRUE(kernel.muted.empty());
  // ... an answer that is not HTTP either ends the connection's tracking.
  Feed(g.Data(3000, REDTAP_DIR_EGRESS, std::string("\x15\x03\x03\x00\x02\x02\x28", 7)));
  EXPECT_EQ(kernel.muted, std::vector<uint32_t>{9});
  EXPECT_EQ(tracker.connections(), 0u);
  EXPECT_GE(tracker.stats().parser.parse_errors, 1u);
}

TEST_F(TrackerTest, UnparsedRequestAnsweredBecomesATransaction) {
  for (uint8_t role : {REDTAP_ROLE_SERVER, REDTAP_ROLE_CLIENT}) {
    EventGenerator g(100, 11u + role, role, role);
    const uint8_t req = role == REDTAP_ROLE_SERVER ? REDTAP_DIR_INGRESS : REDTAP_DIR_EGRESS;
    const uint8_t resp = req == REDTAP_DIR_INGRESS ? REDTAP_DIR_EGRESS : REDTAP_DIR_INGRESS;
    sink.seen.clear();
    Feed(g.Open(5000));
    Feed(g.Unparsed(1000, req, 700));  // earlier than the open: the bytes came first
    Feed(g.Data(6000, resp, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
    ASSERT_EQ(sink.seen.size(), 1u);
    const http::Transaction& t = sink.seen[0].txn;
    EXPECT_TRUE(t.request.unparsed);
    EXPECT_EQ(t.request.method, "_OTHER");
    EXPECT_EQ(t.response.status_code, 400);
    EXPECT_EQ(t.DurationNs(), 5000u);
    Feed(g.Close(7000));
  }
}

TEST_F(TrackerTest, MissedTlsReadIsAnsweredButItsCiphertextIsNotPayload) {
  EventGenerator g(100, 12, 1, REDTAP_ROLE_SERVER);
  Feed(g.Open(5000));
  const uint64_t before = tracker.stats().data_bytes;
  Feed(g.Unparsed(1000, REDTAP_DIR_INGRESS, 517, REDTAP_DATA_F_MISSED));
  EXPECT_EQ(tracker.stats().data_bytes, before);  // 517 bytes of TLS records, not plaintext
  const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  Feed(g.Data(6000, REDTAP_DIR_EGRESS, answer));
  EXPECT_EQ(tracker.stats().data_bytes, before + answer.size());
  ASSERT_EQ(sink.seen.size(), 1u);
  EXPECT_TRUE(sink.seen[0].txn.request.unparsed);
  EXPECT_EQ(sink.seen[0].txn.response.status_code, 200);
  Feed(g.Close(7000));
}

TEST_F(TrackerTest, UpgradeMutesAfterEmitting101) {
  EventGenerator g(100, 5, 1, REDTAP_ROLE_SERVER);
  Feed(g.Open(1000));
  Feed(g.Data(2000, REDTAP_DIR_INGRESS,
              "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
  Feed(g.Data(
      3000, REDTAP_DIR_EGRESS,
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
  ASSERT_EQ(sink.seen.size(), 1u);
  EXPECT_EQ(sink.seen[0].txn.response.status_code, 101);
  EXPECT_EQ(kernel.muted, std::vector<uint32_t>{5});
}

TEST_F(TrackerTest, BoundedConnectionsEvictOldest) {
  limits.max_connections = 4;
  ConnTracker small(limits, &sink, &kernel);
  for (uint32_t fd = 0; fd < 10; fd++) {
    EventGenerator g(100, fd, 1, REDTAP_ROLE_SERVER);
    auto r = g.Open(1000 + fd);
    small.OnRecord(r.data(), r.size());
  }
  EXPECT_EQ(small.connections(), 4u);
  EXPECT_EQ(small.stats().conns_evicted_full, 6u);
  EXPECT_EQ(kernel.rearmed.size(), 6u);
}

TEST_F(TrackerTest, IdleSweep) {
  limits.idle_timeout_s = 1;
  ConnTracker t(limits, &sink, &kernel);
  EventGenerator g(100, 7, 1, REDTAP_ROLE_SERVER);
  auto r = g.Open(1'000'000'000);
  t.OnRecord(r.data(), r.size());
  t.Sweep(1'500'000'000);
  EXPECT_EQ(t.connections(), 1u);
  t.Sweep(2'500'000'000);
  EXPECT_EQ(t.connections(), 0u);
  EXPECT_EQ(t.stats().conns_evicted_idle, 1u);
}

TEST_F(TrackerTest, MalformedRecordsAreCountedNotCrashing) {
  std::vector<uint8_t> tiny = {1, 2, 3};
  Feed(tiny);
  EventGenerator g(1, 1, 1, REDTAP_ROLE_SERVER);
  auto d = g.Data(1, REDTAP_DIR_INGRESS, "GET / HTTP/1.1\r\n\r\n");
  d.resize(d.size() - 5);  // cap_len claims more than the record holds
  Feed(d);
  auto bad_version = g.Close(2);
  bad_version[2] = 99;
  Feed(bad_version);
  EXPECT_EQ(tracker.stats().bad_records, 3u);
}

TEST_F(TrackerTest, DatabaseConnectionsGoToTheirParser) {
  EventGenerator g(300, 9, 4, REDTAP_ROLE_CLIENT);
  Feed(g.Open(1000, "shop", 45000, 6379, REDTAP_PROTO_REDIS));
  Feed(
      g.Data(2000, REDTAP_DIR_EGRESS, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16\r\n4111111111111111\r\n"));
  Feed(g.Data(2600, REDTAP_DIR_INGRESS, "+OK\r\n"));
  Feed(g.Data(3000, REDTAP_DIR_EGRESS, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"));
  Feed(g.Close(4000));
  EXPECT_TRUE(sink.seen.empty());
  ASSERT_EQ(sink.ops.size(), 2u);
  EXPECT_EQ(sink.ops[0].first.system, db::System::kRedis);
  EXPECT_EQ(sink.ops[0].first.operation, "SET");
  EXPECT_EQ(sink.ops[0].first.query_text.find("4111"), std::string::npos);
  EXPECT_EQ(sink.ops[0].first.DurationNs(), 600u);
  EXPECT_EQ(sink.ops[0].second.server().port, 6379);
  EXPECT_EQ(sink.ops[0].second.command, "shop");
  EXPECT_EQ(sink.ops[1].first.operation, "GET");
  EXPECT_FALSE(sink.ops[1].first.has_response);  // the connection closed first
  const TrackerStats st = tracker.stats();
  EXPECT_EQ(st.db_conns_opened, 1u);
  EXPECT_EQ(st.db_operations, 2u);
  EXPECT_EQ(st.db_unanswered, 1u);
  EXPECT_EQ(st.db.requests, 2u);
  EXPECT_EQ(st.transactions, 0u);
}

TEST_F(TrackerTest, DatabaseServerSideIsSkippedWhenItsClientIsLocal) {
  EventGenerator local(400, 5, 1, REDTAP_ROLE_SERVER);
  Feed(local.Open(1000, "postgres", 5432, 45000, REDTAP_PROTO_POSTGRESQL, "127.0.0.1"));
  EXPECT_EQ(tracker.connections(), 0u);
  ASSERT_EQ(kernel.muted.size(), 1u);
  EXPECT_EQ(tracker.stats().db_server_skipped, 1u);
  // A client elsewhere: the server's side is all there is to see.
  EventGenerator remote(400, 6, 2, REDTAP_ROLE_SERVER);
  Feed(remote.Open(1000, "redis-server", 6379, 45000, REDTAP_PROTO_REDIS, "10.1.2.3"));
  Feed(remote.Data(2000, REDTAP_DIR_INGRESS, "*1\r\n$4\r\nPING\r\n"));
  Feed(remote.Data(2100, REDTAP_DIR_EGRESS, "+PONG\r\n"));
  ASSERT_EQ(sink.ops.size(), 1u);
  EXPECT_EQ(sink.ops[0].first.operation, "PING");
  EXPECT_EQ(sink.ops[0].second.client().address, "10.1.2.3");
}

TEST_F(TrackerTest, DatabaseGarbageMutes) {
  EventGenerator g(500, 4, 1, REDTAP_ROLE_CLIENT);
  Feed(g.Open(1000, "shop", 45000, 6379, REDTAP_PROTO_REDIS));
  for (int i = 0; i < 20 && tracker.connections() > 0; ++i) {
    Feed(g.Data(2000 + i, REDTAP_DIR_EGRESS, "\x01\x02 not resp at all \xff\r\n"));
  }
  EXPECT_EQ(tracker.connections(), 0u);
  EXPECT_EQ(tracker.stats().db_conns_invalid, 1u);
  EXPECT_EQ(kernel.muted.size(), 1u);
}

TEST(FormatAddress, V4V6AndMapped) {
  uint8_t v4[16] = {127, 0, 0, 1};
  EXPECT_EQ(FormatAddress(AF_INET, v4), "127.0.0.1");
  uint8_t v6[16] = {};
  v6[15] = 1;
  EXPECT_EQ(FormatAddress(AF_INET6, v6), "::1");
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
  EXPECT_EQ(FormatAddress(AF_INET6, mapped), "10.1.2.3");
}

}  // namespace
}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
// The pure parts of the TCP monitor: netstat parsing, per-service aggregation, Prometheus
// families, listener JSON, rate limiting, event JSON, /proc socket owner lookup.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <prometheus/text_serializer.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "userspace/saturation/model.h"
#include "userspace/saturation/proc_owner.h"

namespace redtap::saturation {
namespace {

constexpr char kNetstat[] =
    "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPTimeouts\n"
    "TcpExt: 0 12 15 7\n"
    "IpExt: InNoRoutes InOctets\n"
    "IpExt: 0 123456789012\n"
    "MPTcpExt: MPCapableSYNRX\n"
    "MPTcpExt: 3\n";

TEST(NetstatTest, ParsesPairsOfLines) {
  auto m = ParseNetstat(kNetstat);
  EXPECT_EQ(m["TcpExt.ListenOverflows"], 12u);
  EXPECT_EQ(m["TcpExt.ListenDrops"], 15u);
  EXPECT_EQ(m["TcpExt.TCPTimeouts"], 7u);
  EXPECT_EQ(m["IpExt.InOctets"], 123456789012u);
  EXPECT_EQ(m["MPTcpExt.MPCapableSYNRX"], 3u);
}

TEST(NetstatTest, SkipsMalformedPairs) {
  // A header whose values line is missing, a count mismatch, then a good pair.
  auto m = ParseNetstat(
      "TcpExt: A B\n"
      "IpExt: C\n"
      "IpExt: 1 2\n"
      "TcpExt: ListenOverflows\n"
      "TcpExt: 4\n");
  EXPECT_EQ(m.count("TcpExt.A"), 0u);
  EXPECT_EQ(m.count("IpExt.C"), 0u);
  EXPECT_EQ(m["TcpExt.ListenOverflows"], 4u);
  EXPECT_TRUE(ParseNetstat("").empty());
  EXPECT_TRUE(ParseNetstat("TcpExt: A\n").empty());
}

TEST(NetstatTest, ParsesThisHostsFile) {
  std::ifstream f("/proc/net/netstat");
  if (!f) GTEST_SKIP() << "no /proc/net/netstat";
  std::stringstream ss;
  ss << f.rdbuf();
  auto m = ParseNetstat(ss.str());
  EXPECT_TRUE(m.count("TcpExt.ListenOverflows"));
  EXPECT_TRUE(m.count("TcpExt.ListenDrops"));
}

TEST(FormatTest, Addresses) {
  uint8_t v4[16] = {127, 0, 0, 1};
  EXPECT_EQ(FormatAddress(2, v4), "127.0.0.1");
  uint8_t v6[16] = {0};
  v6[15] = 1;
  EXPECT_EQ(FormatAddress(10, v6), "::1");
}

RawKey Inbound(uint32_t netns, uint16_t port) {
  RawKey k;
  k.dir = Direction::kInbound;
  k.netns = netns;
  k.port = port;
  return k;
}

RawKey Outbound(uint32_t tgid, std::string comm) {
  RawKey k;
  k.dir = Direction::kOutbound;
  k.tgid = tgid;
  k.comm = std::move(comm);
  return k;
}

std::string Names(const RawKey& k) {
  if (k.dir == Direction::kOutbound) return k.comm;
  return k.port == 8080 ? "shop" : "unknown";
}

TEST(ModelTest, FoldsDeltasAndSurvivesKeyRecreation) {
  Model m;
  RawCounters c;
  c.opened = 5;
  c.closed = 2;
  c.retransmits = 3;
  m.Update({{Inbound(1, 8080), c}}, {}, {}, {}, Names);
  c.opened = 9;  // +4
  c.closed = 4;  // +2
  m.Update({{Inbound(1, 8080), c}}, {}, {}, {}, Names);
  auto s = m.SeriesCounters({"shop", Direction::kInbound, 8080});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->opened, 9u);
  EXPECT_EQ(s->closed, 4u);
  EXPECT_EQ(s->retransmits, 3u);
  // The kernel key was deleted and created again: its new value counts whole.
  RawCounters again;
  again.opened = 1;
  m.Update({{Inbound(1, 8080), again}}, {}, {}, {}, Names);
  EXPECT_EQ(m.SeriesCounters({"shop", Direction::kInbound, 8080})->opened, 10u);
  // Forgotten keys keep their counts in the series.
  m.Forget(Inbound(1, 8080));
  m.Update({}, {}, {}, {}, Names);
  EXPECT_EQ(m.SeriesCounters({"shop", Direction::kInbound, 8080})->opened, 10u);
}

TEST(ModelTest, DefersKeysNotNamedYet) {
  Model m;
  RawCounters c;
  c.opened = 2;
  std::string name;  // the listener is not known yet
  auto names = [&](const RawKey&) { return name; };
  m.Update({{Inbound(7, 9000), c}}, {{Inbound(7, 9000), RawLive{2}}}, {}, {}, names);
  EXPECT_FALSE(m.SeriesCounters({"", Direction::kInbound, 9000}));
  c.opened = 3;
  name = "api";
  m.Update({{Inbound(7, 9000), c}}, {{Inbound(7, 9000), RawLive{3}}}, {}, {}, names);
  EXPECT_EQ(m.SeriesCounters({"api", Direction::kInbound, 9000})->opened, 3u);  // none lost
  EXPECT_EQ(m.SeriesLive({"api", Direction::kInbound, 9000})->active, 3u);
}

TEST(ModelTest, SumsKeysOfOneServiceAndCountsBytesOnce) {
  Model m;
  RawCounters a, b;
  a.bytes_in = 100;  // counted by the kernel for the connections of pid 10
  b.bytes_in = 50;   // of pid 11, same comm
  m.Update({{Outbound(10, "curl"), a}, {Outbound(11, "curl"), b}},
           {{Outbound(10, "curl"), RawLive{3}}}, {}, {}, Names);
  SeriesId id{"curl", Direction::kOutbound, 0};
  EXPECT_EQ(m.SeriesCounters(id)->bytes_in, 150u);
  EXPECT_EQ(m.SeriesLive(id)->active, 3u);
  // The kernel moves a live connection's bytes into the counters at each pass and the rest at
  // its close: a connection that closes between two passes is counted once, whatever the
  // order of the reads (issue 12: a live part read from an older pass was added again).
  a.bytes_in = 1100;
  m.Update({{Outbound(10, "curl"), a}, {Outbound(11, "curl"), b}},
           {{Outbound(10, "curl"), RawLive{3}}}, {}, {}, Names);
  EXPECT_EQ(m.SeriesCounters(id)->bytes_in, 1150u);
  m.Update({{Outbound(10, "curl"), a}, {Outbound(11, "curl"), b}}, {}, {}, {}, Names);
  EXPECT_EQ(m.SeriesCounters(id)->bytes_in, 1150u);
  EXPECT_EQ(m.SeriesLive(id)->active, 0u);
}

std::string Serialize(const Model& m) {
  return prometheus::TextSerializer().Serialize(m.Families());
}

TEST(ModelTest, FamiliesCarryServiceAndPortLabels) {
  Model m;
  Listener l1;
  l1.service = "shop";
  l1.address = "0.0.0.0";
  l1.port = 8080;
  l1.netns = 1;
  l1.sk = 1;
  l1.backlog = 3;
  l1.backlog_max = 4;
  l1.drops = 2;
  Listener l2 = l1;  // SO_REUSEPORT sibling
  l2.sk = 2;
  l2.backlog = 4;
  l2.drops = 5;
  RawCounters in;
  in.opened = 7;
  in.resets_sent = 1;
  in.rtt_count = 3;
  in.rtt_sum_us = 120;
  in.rtt_buckets[1] = 2;  // <= 50 us
  in.rtt_buckets[5] = 1;  // <= 1 ms
  in.bytes_in = 10;
  in.bytes_out = 20;
  RawCounters out;
  out.connect_failures[0] = 4;  // refused
  out.connect_failures[2] = 1;  // timeout
  m.Update({{Inbound(1, 8080), in}, {Outbound(42, "worker"), out}},
           {{Inbound(1, 8080), RawLive{6}}}, {l1, l2}, {{1, NetnsCounters{9, 11}}}, Names);
  std::string text = Serialize(m);
  EXPECT_NE(text.find("redtap_tcp_listen_backlog{service_name=\"shop\",server_port=\"8080\"} 7"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("redtap_tcp_listen_backlog_max{service_name=\"shop\",server_port=\"8080\"} 8"),
      std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_listen_drops_total{service_name=\"shop\",server_port=\"8080\","
                      "scope=\"listener\"} 7"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_listen_overflows_total{netns=\"1\",scope=\"netns\"} 9"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_listen_drops_total{netns=\"1\",scope=\"netns\"} 11"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_connections_active{service_name=\"shop\",server_port=\"8080\","
                      "direction=\"inbound\"} 6"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_connections_opened_total{service_name=\"shop\","
                      "server_port=\"8080\",direction=\"inbound\"} 7"),
            std::string::npos);
  EXPECT_NE(
      text.find("redtap_tcp_connect_failures_total{service_name=\"worker\",reason=\"refused\"} 4"),
      std::string::npos);
  EXPECT_NE(
      text.find("redtap_tcp_connect_failures_total{service_name=\"worker\",reason=\"timeout\"} 1"),
      std::string::npos);
  EXPECT_EQ(text.find("reason=\"reset\""), std::string::npos);  // zero reasons are not exported
  EXPECT_NE(text.find("redtap_tcp_resets_total{service_name=\"shop\",server_port=\"8080\","
                      "direction=\"sent\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_bytes_total{service_name=\"shop\",server_port=\"8080\","
                      "direction=\"out\"} 20"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_rtt_seconds_bucket{service_name=\"shop\",server_port=\"8080\","
                      "le=\"5e-05\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("redtap_tcp_rtt_seconds_bucket{service_name=\"shop\",server_port=\"8080\","
                      "le=\"+Inf\"} 3"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_rtt_seconds_count{service_name=\"shop\",server_port=\"8080\"} 3"),
            std::string::npos);

  auto j = m.ListenersJson();
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["service"], "shop");
  EXPECT_EQ(j[0]["port"], 8080);
  EXPECT_EQ(j[0]["backlog"], 3);
  EXPECT_EQ(j[0]["backlog_max"], 4);
  EXPECT_DOUBLE_EQ(j[0]["fill_ratio"].get<double>(), 0.75);
  EXPECT_EQ(j[1]["drops_total"], 5);
  EXPECT_EQ(j[1]["netns_listen_overflows_total"], 9);
}

// RSTs sent where nothing listens (an inbound key without a port, named "unknown") and RSTs
// from sockets whose owner is unknown (an outbound key, e.g. a TIME_WAIT socket answering a
// late segment) have the same labels: one sample with their sum, never two samples with the
// same labels (a scraper keeps one of them: the agent's integration test saw 1 instead of 4).
TEST(ModelTest, SeriesWithTheSameLabelsAreOneSample) {
  Model m;
  RawCounters no_listener;
  no_listener.resets_sent = 3;
  no_listener.retransmits = 2;
  RawCounters no_owner;
  no_owner.resets_sent = 1;
  no_owner.resets_received = 5;
  no_owner.bytes_in = 7;
  no_owner.connect_failures[0] = 1;
  m.Update({{Inbound(1, 0), no_listener}, {Outbound(0, ""), no_owner}}, {}, {}, {},
           [](const RawKey&) { return std::string("unknown"); });
  std::string text = Serialize(m);
  EXPECT_NE(text.find("redtap_tcp_resets_total{service_name=\"unknown\",direction=\"sent\"} 4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("redtap_tcp_resets_total{service_name=\"unknown\",direction=\"received\"} 5\n"),
      std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_retransmits_total{service_name=\"unknown\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_bytes_total{service_name=\"unknown\",direction=\"in\"} 7\n"),
            std::string::npos);
  // The families with a direction label keep both series apart.
  EXPECT_NE(text.find("redtap_tcp_connections_opened_total{service_name=\"unknown\","
                      "direction=\"inbound\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_tcp_connections_opened_total{service_name=\"unknown\","
                      "direction=\"outbound\"} 0\n"),
            std::string::npos);
  // No two samples with the same name and labels anywhere.
  std::istringstream lines(text);
  std::set<std::string> seen;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::string series = line.substr(0, line.rfind(' '));
    EXPECT_TRUE(seen.insert(series).second) << "duplicate: " << series << "\n" << text;
  }
}

TEST(RateLimiterTest, BurstThenOnePerPeriodAndCountsSuppressed) {
  const int64_t s = 1'000'000'000;
  RateLimiter rl(2, 10 * s);
  uint64_t held = 99;
  EXPECT_TRUE(rl.Allow("a", 0, &held));
  EXPECT_EQ(held, 0u);
  EXPECT_TRUE(rl.Allow("a", 1, &held));
  EXPECT_FALSE(rl.Allow("a", 2));
  EXPECT_FALSE(rl.Allow("a", 5 * s));
  EXPECT_TRUE(rl.Allow("b", 5 * s));  // keys are independent
  EXPECT_TRUE(rl.Allow("a", 10 * s + 2, &held));
  EXPECT_EQ(held, 2u);  // the two refused since the last allowed one
  EXPECT_FALSE(rl.Allow("a", 10 * s + 3));
  EXPECT_EQ(rl.total_suppressed(), 3u);
  // Time going backwards (another clock) never adds tokens.
  EXPECT_FALSE(rl.Allow("a", 0));
}

TEST(RateLimiterTest, BoundsItsKeys) {
  RateLimiter rl(1, 1'000'000'000, /*max_keys=*/2);
  EXPECT_TRUE(rl.Allow("a", 0));
  EXPECT_TRUE(rl.Allow("b", 0));
  EXPECT_FALSE(rl.Allow("c", 1));              // full, nothing idle yet
  EXPECT_TRUE(rl.Allow("c", 10'000'000'000));  // a and b idle: forgotten
}

TEST(EventTest, FormatsOneFlatJsonLine) {
  TcpEvent ev;
  ev.unix_ns = 1'795'633'096'658'120'123;
  ev.level = "WARN";
  ev.event = "connect_failed";
  ev.message = "connect failed";
  ev.service = "checkout";
  ev.pid = 42;
  ev.comm = "python3";
  ev.server_address = "10.0.0.1";
  ev.server_port = 443;
  ev.client_address = "10.0.0.2";
  ev.client_port = 50000;
  ev.reason = "refused";
  ev.suppressed = 3;
  std::string line = FormatEvent(ev);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["timestamp"], "2026-11-25T18:58:16.658120Z");
  EXPECT_EQ(j["type"], "tcp");
  EXPECT_EQ(j["event"], "connect_failed");
  EXPECT_EQ(j["service.name"], "checkout");
  EXPECT_EQ(j["server.port"], 443);
  EXPECT_EQ(j["client.address"], "10.0.0.2");
  EXPECT_EQ(j["reason"], "refused");
  EXPECT_EQ(j["suppressed"], 3);
  EXPECT_EQ(line.rfind("{\"timestamp\":", 0), 0u);
}

TEST(ProcOwnerTest, FindsSocketInodesInAFakeProc) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("redtap_proc_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "100" / "fd");
  fs::create_directories(root / "200" / "fd");
  fs::create_directories(root / "self");
  std::ofstream(root / "100" / "comm") << "nginx\n";
  std::ofstream(root / "200" / "comm") << "python3\n";
  fs::create_symlink("socket:[555]", root / "100" / "fd" / "3");
  fs::create_symlink("/dev/null", root / "100" / "fd" / "0");
  fs::create_symlink("socket:[777]", root / "200" / "fd" / "4");
  auto found = FindSocketOwners({555, 777, 999}, root.string());
  EXPECT_EQ(found.size(), 2u);
  EXPECT_EQ(found[555].pid, 100u);
  EXPECT_EQ(found[555].comm, "nginx");
  EXPECT_EQ(found[777].pid, 200u);
  EXPECT_EQ(found[777].comm, "python3");
  EXPECT_TRUE(FindSocketOwners({}, root.string()).empty());
  fs::remove_all(root);
}

}  // namespace
}  // namespace redtap::saturation

// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/metrics_store.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

namespace redtap::metrics {
namespace {

constexpr uint64_t kMs = 1'000'000ull;
constexpr uint64_t kSec = 1'000'000'000ull;
constexpr uint64_t kT0 = 10'000 * kSec;  // fake monotonic time

http::Transaction Txn(const std::string& method, const std::string& target, int status,
                      uint64_t duration_ns, uint64_t req_body = 0, uint64_t resp_body = 0) {
  http::Transaction t;
  t.request.method = method;
  t.request.target = target;
  t.request.body_size = req_body;
  t.request.first_byte_ts = 1'000'000;
  t.has_response = status != 0;
  t.response.status_code = status;
  t.response.body_size = resp_body;
  t.response.last_byte_ts = t.request.first_byte_ts + duration_ns;
  return t;
}

ConnMeta Server(const std::string& comm, uint16_t port = 8080, uint32_t pid = 100) {
  ConnMeta m;
  m.pid = pid;
  m.command = comm;
  m.role = Role::kServer;
  m.local = {"10.0.0.1", port};
  m.remote = {"10.0.0.50", 51000};
  return m;
}

ConnMeta Client(const std::string& comm, const std::string& addr, uint16_t port) {
  ConnMeta m;
  m.pid = 200;
  m.command = comm;
  m.role = Role::kClient;
  m.local = {"10.0.0.1", 40000};
  m.remote = {addr, port};
  return m;
}

// Fake pids are not looked up in the host's /proc (a container there would change labels).
std::string NoProc(const std::string&, size_t) { return ""; }
std::string NoExe(uint32_t) { return ""; }

// The store behind the enricher, as the pipeline feeds it.
class Fed {
 public:
  explicit Fed(const config::Config& c, StoreLimits limits = {})
      : enricher_(c, NoExe, NoProc), store_(c, limits) {}
  void Record(const http::Transaction& t, const ConnMeta& m, uint64_t now) {
    if (t.request.placeholder) return;  // as the pipeline does
    store_.Consume(enricher_.Enrich(t, m, now));
  }
  struct Stats : MetricsStore::Stats {
    uint64_t routes_folded = 0;
  };
  Stats GetStats() const {
    Stats s;
    static_cast<MetricsStore::Stats&>(s) = store_.GetStats();
    for (const auto& [name, n] : enricher_.RoutesFolded()) s.routes_folded += n;
    return s;
  }
  /// The store's families and the enricher's, as /metrics shows them.
  std::string RenderPrometheus() const {
    exposition::Families f;
    store_.Collect(&f);
    enricher_.Collect(&f);
    return exposition::RenderText(std::move(f));
  }
  std::string RenderEndpointsJson(uint64_t now) const { return store_.RenderEndpointsJson(now); }

 private:
  enrich::Enricher enricher_;
  MetricsStore store_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Compares `actual` with golden/<name>; REDTAP_UPDATE_GOLDEN=1 rewrites the file instead.
void ExpectGolden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(REDTAP_METRICS_GOLDEN_DIR) + "/" + name;
  if (std::getenv("REDTAP_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path) << actual;
    GTEST_SKIP() << "rewrote " << path;
  }
  EXPECT_EQ(actual, ReadFile(path))
      << "golden " << path << " differs (REDTAP_UPDATE_GOLDEN=1 to rewrite)";
}

config::Config GoldenConfig() {
  config::Config c;
  c.services = {{"shop", "php-fpm", "", 0}};
  c.routes.patterns = {{"shop", "/api/orders/{order_id}/items"}};
  c.metrics.duration_buckets = {0.01, 0.1, 1};
  c.metrics.body_size_buckets = {0, 1024};
  return c;
}

void RecordGoldenInput(Fed& store) {
  const ConnMeta shop = Server("php-fpm", 80);
  store.Record(Txn("GET", "/api/products/42?ref=mail", 200, 12 * kMs, 0, 512), shop, kT0);
  store.Record(Txn("GET", "/api/products/7", 200, 30 * kMs, 0, 2048), shop, kT0 + 1 * kSec);
  store.Record(Txn("GET", "/api/products/8", 404, 2 * kMs, 0, 10), shop, kT0 + 2 * kSec);
  store.Record(Txn("POST", "/api/orders/1234/items", 201, 80 * kMs, 300, 20), shop, kT0 + 3 * kSec);
  store.Record(Txn("POST", "/api/orders/99/items", 503, 1500 * kMs, 300, 0), shop, kT0 + 4 * kSec);
  store.Record(Txn("POST", "/api/checkout", 0, 0, 100), shop, kT0 + 5 * kSec);  // no response
  store.Record(Txn("PROPFIND", "/users/alice@example.com", 999, 5 * kMs), shop, kT0 + 6 * kSec);
  store.Record(Txn("GET", "/health", 200, 1 * kMs), Server("nginx", 8080), kT0 + 7 * kSec);
  const ConnMeta pay = Client("php-fpm", "10.0.0.9", 443);
  store.Record(Txn("POST", "/v1/charges", 200, 250 * kMs, 700, 900), pay, kT0 + 8 * kSec);
  store.Record(Txn("POST", "/v1/charges", 0, 0, 700), pay, kT0 + 9 * kSec);
}

/// The golden exposition minus the store's memory gauge (its value depends on the
/// allocator), which is checked on its own.
std::string WithoutStoreBytes(const std::string& text) {
  std::istringstream in(text);
  std::string out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("redtap_agent_metrics_store_bytes ", 0) == 0) {
      line = "redtap_agent_metrics_store_bytes <varies>";
    }
    out += line + "\n";
  }
  return out;
}

TEST(MetricsStoreTest, PrometheusGolden) {
  Fed store(GoldenConfig());
  RecordGoldenInput(store);
  const std::string text = store.RenderPrometheus();
  ExpectGolden("metrics.prom", WithoutStoreBytes(text));
  // Private data never reaches a label.
  EXPECT_EQ(text.find("alice"), std::string::npos);
  EXPECT_EQ(text.find("ref=mail"), std::string::npos);
}

TEST(MetricsStoreTest, EndpointsJsonGolden) {
  Fed store(GoldenConfig());
  RecordGoldenInput(store);
  const std::string json = store.RenderEndpointsJson(kT0 + 10 * kSec);
  ExpectGolden("endpoints.json", nlohmann::ordered_json::parse(json).dump(2) + "\n");
}

TEST(MetricsStoreTest, JsonFieldsAndFakeTimeWindows) {
  Fed store(config::Config{});
  const ConnMeta web = Server("web");
  // One request per second for 120 s: 10 ms, with a 500 every 10th and a 404 every 20th.
  for (int i = 0; i < 120; ++i) {
    const int status = i % 10 == 9 ? 500 : (i % 20 == 4 ? 404 : 200);
    store.Record(Txn("GET", "/api/items/" + std::to_string(i), status, (i < 60 ? 10 : 40) * kMs),
                 web, kT0 + i * kSec);
  }
  auto rows = nlohmann::json::parse(store.RenderEndpointsJson(kT0 + 120 * kSec));
  ASSERT_EQ(rows.size(), 1u);
  const auto& r = rows[0];
  EXPECT_EQ(r["service"], "web");
  EXPECT_EQ(r["kind"], "server");
  EXPECT_EQ(r["method"], "GET");
  EXPECT_EQ(r["route"], "/api/items/{id}");
  EXPECT_FALSE(r.contains("server_address"));
  EXPECT_EQ(r["requests_total"], 120);
  EXPECT_EQ(r["errors_total"], 12);
  EXPECT_EQ(r["client_errors_total"], 6);
  EXPECT_EQ(r["status_codes"]["200"], 102);
  EXPECT_EQ(r["status_codes"]["500"], 12);
  EXPECT_EQ(r["status_codes"]["404"], 6);
  // Window of the last minute: slots of 15 s, the current one partial: 45 s + 10 s elapsed
  // (kT0 = 10000 s is 666 slots + 10 s), one request per second.
  EXPECT_DOUBLE_EQ(r["rps_1m"].get<double>(), 1.0);
  EXPECT_NEAR(r["error_rate_1m"].get<double>(), 0.1, 0.02);
  // 5 minutes: 60 samples at 10 ms and 60 at 40 ms.
  EXPECT_NEAR(r["p50_ms"].get<double>(), 10, 0.1);
  EXPECT_NEAR(r["p95_ms"].get<double>(), 40, 0.4);
  EXPECT_NEAR(r["p99_ms"].get<double>(), 40, 0.4);

  // Ten minutes later: windows are empty, totals stay.
  rows = nlohmann::json::parse(store.RenderEndpointsJson(kT0 + 720 * kSec));
  EXPECT_EQ(rows[0]["requests_total"], 120);
  EXPECT_EQ(rows[0]["rps_1m"], 0);
  EXPECT_EQ(rows[0]["error_rate_1m"], 0);
  EXPECT_TRUE(rows[0]["p50_ms"].is_null());
  EXPECT_TRUE(rows[0]["p99_ms"].is_null());
}

TEST(MetricsStoreTest, RateEarlyAfterStartUsesElapsedTime) {
  Fed store(config::Config{});
  for (int i = 0; i < 20; ++i)
    store.Record(Txn("GET", "/a", 200, kMs), Server("w"), kT0 + i * (kSec / 2));
  auto rows = nlohmann::json::parse(store.RenderEndpointsJson(kT0 + 10 * kSec));
  EXPECT_DOUBLE_EQ(rows[0]["rps_1m"].get<double>(), 2.0);
}

TEST(MetricsStoreTest, CardinalityGuard100kRandomUrls) {
  config::Config c;  // max_per_service 500
  Fed store(c);
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int> letter('a', 'z');
  const auto random_url = [&] {
    std::string s = "/p/";
    for (int i = 0; i < 12; ++i) s.push_back(static_cast<char>(letter(rng)));
    return s + "/q";
  };
  const ConnMeta web = Server("web");
  size_t bytes_at_10k = 0;
  for (int i = 0; i < 100000; ++i) {
    store.Record(Txn("GET", random_url(), 200 + (i % 3), (1 + i % 50) * kMs, 10, 100), web,
                 kT0 + static_cast<uint64_t>(i) * kMs);
    if (i == 9999) bytes_at_10k = store.GetStats().approx_bytes;
  }
  const auto stats = store.GetStats();
  std::printf("[ guard ] 100k unique URLs: %zu endpoints, %zu series, ~%zu KiB (%zu KiB at 10k)\n",
              stats.endpoints, stats.series, stats.approx_bytes / 1024, bytes_at_10k / 1024);
  EXPECT_EQ(stats.endpoints, 501u);                // 500 routes + "/*"
  EXPECT_EQ(stats.series, 500u + 3);               // one status per kept route, 3 on "/*"
  EXPECT_EQ(stats.routes_folded, 100000u - 500u);  // exact: every later URL was new
  EXPECT_EQ(stats.transactions, 100000u);
  EXPECT_LT(stats.approx_bytes, 32u << 20);
  EXPECT_LT(stats.approx_bytes, bytes_at_10k + bytes_at_10k / 10) << "no growth past the cap";

  const std::string text = store.RenderPrometheus();
  EXPECT_NE(text.find("redtap_agent_routes_folded_total{service_name=\"web\"} 99500"),
            std::string::npos);
  EXPECT_NE(text.find("http_route=\"/*\""), std::string::npos);
  auto rows = nlohmann::json::parse(store.RenderEndpointsJson(kT0 + 100 * kSec));
  EXPECT_EQ(rows.size(), 501u);
}

// Repeated requests take the endpoint cache; what they count must not change.
TEST(MetricsStoreTest, RepeatedRequestsCountExactlyThroughTheCache) {
  config::Config c;
  c.routes.max_per_service = 2;
  StoreLimits limits;
  limits.max_peers_per_service = 1;
  Fed store(c, limits);
  const ConnMeta web = Server("web");
  const ConnMeta cli = Client("web", "10.0.0.9", 443);
  auto with_host = [](http::Transaction t, const std::string& host) {
    t.request.headers.push_back({"Host", host});
    return t;
  };
  for (int i = 0; i < 10; ++i) {
    const uint64_t now = kT0 + static_cast<uint64_t>(i) * kSec;
    store.Record(Txn("GET", "/a", 200, kMs), web, now);
    store.Record(Txn("GET", "/b", 200, kMs), web, now);
    store.Record(Txn("GET", "/c", 200, kMs), web, now);   // route cap: folded, every time
    store.Record(Txn("POST", "/a", 500, kMs), web, now);  // same target, another endpoint
    store.Record(with_host(Txn("GET", "/a", 200, kMs), "api.one"), cli, now);
    store.Record(with_host(Txn("GET", "/a", 200, kMs), "api.two"), cli, now);  // peer cap
  }
  const auto stats = store.GetStats();
  EXPECT_EQ(stats.transactions, 60u);
  EXPECT_EQ(stats.routes_folded, 10u);
  const std::string text = store.RenderPrometheus();
  EXPECT_NE(text.find("redtap_agent_series_folded_total{reason=\"peers\"} 10"), std::string::npos)
      << text;
  auto rows = nlohmann::json::parse(store.RenderEndpointsJson(kT0 + 10 * kSec));
  std::map<std::string, uint64_t> totals;
  for (const auto& r : rows) {
    std::string key = r["kind"].get<std::string>() + " " + r["method"].get<std::string>() + " " +
                      r["route"].get<std::string>();
    if (r.contains("server_address")) key += " " + r["server_address"].get<std::string>();
    totals[key] += r["requests_total"].get<uint64_t>();
  }
  EXPECT_EQ(totals["server GET /a"], 10u);
  EXPECT_EQ(totals["server GET /b"], 10u);
  EXPECT_EQ(totals["server GET /*"], 10u);
  EXPECT_EQ(totals["server POST /a"], 10u);
  EXPECT_EQ(totals["client GET /a api.one"], 10u);
  EXPECT_EQ(totals["client GET /a _OTHER"], 10u);
}

TEST(MetricsStoreTest, MethodsStatusesAndOtherBoundsFold) {
  StoreLimits limits;
  limits.max_services = 2;
  limits.max_peers_per_service = 2;
  limits.max_endpoints = 6;
  limits.max_series = 8;
  Fed store(config::Config{}, limits);
  store.Record(Txn("get", "/a", 200, kMs), Server("s1"), kT0);  // lower case: not standard
  store.Record(Txn("BREW", "/a", 418, kMs), Server("s1"), kT0);
  store.Record(Txn("GET", "/a", 99, kMs), Server("s1"), kT0);
  store.Record(Txn("GET", "/a", 600, kMs), Server("s1"), kT0);
  store.Record(Txn("GET", "/a", 200, kMs), Server("s2"), kT0);
  store.Record(Txn("GET", "/a", 200, kMs), Server("s3"), kT0);  // 3rd service: folded
  for (int port = 1; port <= 3; ++port) {                       // 3rd peer: folded
    store.Record(Txn("GET", "/b", 200, kMs), Client("s1", "10.1.1.1", static_cast<uint16_t>(port)),
                 kT0);
  }
  const auto stats = store.GetStats();
  EXPECT_EQ(stats.services, 3u);  // s1, s2, _OTHER
  const std::string text = store.RenderPrometheus();
  EXPECT_NE(
      text.find(
          "http_request_method=\"_OTHER\",http_route=\"/a\",http_response_status_code=\"418\""),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("service_name=\"s1\",http_request_method=\"GET\",http_route=\"/"
                      "a\",http_response_status_code=\"_OTHER\""),
            std::string::npos);
  EXPECT_NE(text.find("service_name=\"_OTHER\""), std::string::npos);
  EXPECT_NE(text.find("server_address=\"_OTHER\",server_port=\"_OTHER\""), std::string::npos);
  EXPECT_NE(text.find("redtap_agent_series_folded_total{reason=\"services\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("redtap_agent_series_folded_total{reason=\"peers\"} 1"), std::string::npos);

  // Endpoint and series caps: everything new folds, nothing grows past the caps (+ the
  // per-service overflow endpoints).
  for (int i = 0; i < 1000; ++i) {
    store.Record(Txn("POST", "/r" + std::to_string(i) + "x", 200 + i % 100, kMs), Server("s2"),
                 kT0);
  }
  const auto after = store.GetStats();
  EXPECT_LE(after.endpoints, limits.max_endpoints + 2 * 3);
  EXPECT_LE(after.series, limits.max_series + after.endpoints);
  EXPECT_GT(after.series_folded, 900u);
  EXPECT_EQ(after.transactions, 1009u);
}

TEST(MetricsStoreTest, PlaceholderRequestsAreIgnored) {
  Fed store(config::Config{});
  http::Transaction t = Txn("", "", 200, kMs);
  t.request.placeholder = true;
  store.Record(t, Server("w"), kT0);
  EXPECT_EQ(store.GetStats().transactions, 0u);
  EXPECT_EQ(store.RenderEndpointsJson(kT0), "[]");
}

TEST(MetricsStoreTest, ConcurrentRecordAndRender) {
  Fed store(config::Config{});
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) {
      store.Record(Txn("GET", "/x/" + std::to_string(i % 700), 200, kMs), Server("w"),
                   kT0 + static_cast<uint64_t>(i) * kMs);
    }
  });
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(store.RenderPrometheus().empty());
    EXPECT_FALSE(store.RenderEndpointsJson(kT0 + static_cast<uint64_t>(i) * kSec).empty());
  }
  writer.join();
  EXPECT_EQ(store.GetStats().transactions, 20000u);
}

// Containers: one service name, two workloads → two series sets, told apart by their
// labels, which come right after service_name; a process off containers has none.
TEST(MetricsStoreTest, WorkloadLabelsSplitAServiceByContainer) {
  const std::string id_a(64, 'a');
  const std::string id_b(64, 'b');
  const auto workload = [](const std::string& id, const std::string& name) {
    metadata::Workload w;
    w.container_id = id;
    w.container_name = name;
    w.service_name = "shop";
    w.key = "c:" + id;
    w.labels = {{"container_id", id}, {"container_name", name}};
    w.attributes = {{"container.id", id}, {"container.name", name}};
    return w;
  };
  const metadata::Workload wa = workload(id_a, "shop-1");
  const metadata::Workload wb = workload(id_b, "shop-2");
  config::Config c;
  c.metrics.duration_buckets = {0.1};
  c.metrics.body_size_buckets = {1024};
  MetricsStore store(c);
  const ConnMeta meta = Server("node");
  const auto record = [&](const metadata::Workload* w, int n, uint64_t now) {
    for (int i = 0; i < n; ++i) {
      const http::Transaction t = Txn("GET", "/api/items", 200, 5 * kMs);
      enrich::Enriched e;
      e.txn = &t;
      e.meta = &meta;
      e.service = "shop";
      e.route = "/api/items";
      e.workload = w;
      e.now_ns = now;
      store.Consume(e);
    }
  };
  record(&wa, 3, kT0);
  record(&wb, 2, kT0 + kSec);
  record(nullptr, 1, kT0 + 2 * kSec);
  record(&wa, 1, kT0 + 3 * kSec);  // back to the first container: its own series again

  EXPECT_EQ(store.GetStats().services, 3u);
  EXPECT_EQ(store.GetStats().endpoints, 3u);
  exposition::Families f;
  store.Collect(&f);
  const std::string text = exposition::RenderText(std::move(f));
  const std::string common = "http_request_method=\"GET\",http_route=\"/api/items\"";
  const std::string with_a =
      "service_name=\"shop\",container_id=\"" + id_a + "\",container_name=\"shop-1\"," + common;
  const std::string with_b =
      "service_name=\"shop\",container_id=\"" + id_b + "\",container_name=\"shop-2\"," + common;
  const std::string bare = "service_name=\"shop\"," + common;
  const std::string status = ",http_response_status_code=\"200\"}";
  EXPECT_NE(text.find("http_server_request_duration_seconds_count{" + with_a + status + " 4"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("http_server_request_duration_seconds_count{" + with_b + status + " 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("http_server_request_duration_seconds_count{" + bare + status + " 1"),
            std::string::npos)
      << text;
  // Every http_* series of a container carries its labels, in the same place.
  std::istringstream lines(text);
  std::string line;
  size_t series_a = 0, series_b = 0, series_bare = 0;
  while (std::getline(lines, line)) {
    if (!line.starts_with("http_")) continue;
    if (line.find("service_name=\"shop\"") == std::string::npos) continue;
    if (line.find(id_a) != std::string::npos) {
      EXPECT_NE(line.find(with_a), std::string::npos) << line;
      ++series_a;
    } else if (line.find(id_b) != std::string::npos) {
      EXPECT_NE(line.find(with_b), std::string::npos) << line;
      ++series_b;
    } else {
      EXPECT_EQ(line.find("container_"), std::string::npos) << line;
      EXPECT_NE(line.find(bare), std::string::npos) << line;
      ++series_bare;
    }
  }
  EXPECT_GT(series_a, 0u);
  EXPECT_EQ(series_a, series_b);
  EXPECT_EQ(series_a, series_bare);

  // /api/v1/endpoints: one row per workload, with its labels.
  auto rows = nlohmann::json::parse(store.RenderEndpointsJson(kT0 + 10 * kSec));
  ASSERT_EQ(rows.size(), 3u);
  std::map<std::string, uint64_t> totals;
  for (const auto& r : rows) {
    EXPECT_EQ(r["service"], "shop");
    EXPECT_EQ(r["route"], "/api/items");
    const std::string id = r.contains("container_id") ? r["container_id"].get<std::string>() : "";
    if (!id.empty()) {
      EXPECT_EQ(r["container_name"], id == id_a ? "shop-1" : "shop-2");
    } else {
      EXPECT_FALSE(r.contains("container_name"));
    }
    totals[id] += r["requests_total"].get<uint64_t>();
  }
  EXPECT_EQ(totals[id_a], 4u);
  EXPECT_EQ(totals[id_b], 2u);
  EXPECT_EQ(totals[""], 1u);
}

}  // namespace
}  // namespace redtap::metrics

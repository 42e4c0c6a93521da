// SPDX-License-Identifier: Apache-2.0
// ns per MetricsStore::Record for a realistic mix: 3 services, ~50 route shapes with
// templated ids, mostly 2xx, a few 4xx/5xx, server and client transactions.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "userspace/alerts/engine.h"
#include "userspace/config/config.h"
#include "userspace/enrich/route_templater.h"
#include "userspace/metadata/resolver.h"
#include "userspace/metrics/ddsketch.h"
#include "userspace/metrics/metrics_store.h"

namespace redtap::metrics {
namespace {

struct Input {
  http::Transaction txn;
  ConnMeta meta;
};

std::vector<Input> MakeMix(size_t n) {
  static const char* kShapes[] = {
      "/api/products/%d",      "/api/products/%d/reviews",
      "/api/cart/add",         "/api/cart/%d/items/%d",
      "/api/checkout",         "/api/payment/process",
      "/api/orders/%d",        "/api/orders/%d/items",
      "/api/users/%d/profile", "/api/search?q=shoes&p=%d",
      "/static/app.js",        "/health",
  };
  std::mt19937 rng(7);
  std::vector<Input> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Input in;
    const int service = static_cast<int>(rng() % 3);
    const char* shape = kShapes[rng() % (sizeof(kShapes) / sizeof(kShapes[0]))];
    char path[128];
    snprintf(path, sizeof(path), shape, static_cast<int>(rng() % 100000),
             static_cast<int>(rng() % 50));
    // Prefix per service gives ~50 distinct routes in all.
    static const char* kPrefix[] = {"", "/v2", "/internal"};
    in.txn.request.method = (rng() % 4 == 0) ? "POST" : "GET";
    in.txn.request.target = std::string(kPrefix[service]) + path;
    in.txn.request.first_byte_ts = 1000;
    in.txn.has_response = rng() % 500 != 0;
    const uint32_t r = rng() % 100;
    in.txn.response.status_code = r < 94 ? 200 : (r < 98 ? 404 : 503);
    in.txn.response.last_byte_ts = 1000 + 200'000 + rng() % 50'000'000;
    in.txn.response.body_size = rng() % 20000;
    in.meta.pid = 100 + service;
    in.meta.command = service == 0 ? "php-fpm" : (service == 1 ? "java" : "node");
    in.meta.role = rng() % 5 == 0 ? Role::kClient : Role::kServer;
    in.meta.local = {"10.0.0.1", 8080};
    in.meta.remote = {"10.0.0." + std::to_string(10 + rng() % 4), 443};
    out.push_back(std::move(in));
  }
  return out;
}

void BM_MetricsStoreRecord(benchmark::State& state) {
  config::Config c;
  c.services = {{"shop", "php-fpm", "", 0}};
  c.routes.patterns = {{"", "/api/cart/{cart_id}/items/{item_id}"}};
  // What the pipeline does per transaction for the metrics: enrich (service, route), record.
  enrich::Enricher enricher(c, [](uint32_t) { return std::string(); });
  MetricsStore store(c);
  const std::vector<Input> mix = MakeMix(4096);
  uint64_t now = 1'000'000'000'000ull;
  size_t i = 0;
  for (auto _ : state) {
    const Input& in = mix[i++ & 4095];
    now += 100'000;  // 10k transactions/s of fake time: windows roll over
    store.Consume(enricher.Enrich(in.txn, in.meta, now));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["endpoints"] = static_cast<double>(store.GetStats().endpoints);
}
BENCHMARK(BM_MetricsStoreRecord);

void BM_RouteTemplate(benchmark::State& state) {
  const enrich::RouteTemplater t(config::RoutesConfig{});
  const std::vector<Input> mix = MakeMix(4096);
  std::string out;
  size_t i = 0;
  for (auto _ : state) {
    t.Template("shop", mix[i++ & 4095].txn.request.target, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RouteTemplate);

void BM_DDSketchAdd(benchmark::State& state) {
  DDSketch s(0.01, 512);
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> d(-4, 1);
  std::vector<double> v(4096);
  for (auto& x : v) x = d(rng);
  size_t i = 0;
  for (auto _ : state) s.Add(v[i++ & 4095]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DDSketchAdd);

// What container metadata costs a transaction: Resolver::Of on a pid seen before (the cache
// hit every transaction but the first of a process pays). Arg 0: a host process (this one,
// in no container: what "off a cluster" costs); arg 1: a process in a podman container.
void BM_MetadataLookup(benchmark::State& state) {
  const bool container = state.range(0) == 1;
  metadata::Resolver r(container ? metadata::FileReader([](const std::string&, size_t) {
    return std::string(
        "0::/libpod_parent/libpod-"
        "de96e43b82e1c3d2d665ad183d5d370e3e47df58792360bed1876dc5954d3a9d\n");
  })
                                 : metadata::FileReader(metadata::ReadFileBounded));
  const uint32_t pid = static_cast<uint32_t>(getpid());
  uint64_t now = 1;
  for (auto _ : state) benchmark::DoNotOptimize(r.Of(pid, now += 1000));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MetadataLookup)->ArgName("container")->Arg(0)->Arg(1);

void BM_RenderPrometheus(benchmark::State& state) {
  enrich::Enricher enricher(config::Config{}, [](uint32_t) { return std::string(); });
  MetricsStore store(config::Config{});
  const std::vector<Input> mix = MakeMix(4096);
  uint64_t now = 1'000'000'000'000ull;
  for (const auto& in : mix) store.Consume(enricher.Enrich(in.txn, in.meta, now += 100'000));
  size_t bytes = 0;
  for (auto _ : state) {
    exposition::Families f;
    store.Collect(&f);
    bytes = exposition::RenderText(std::move(f)).size();
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["series"] = static_cast<double>(store.GetStats().series);
}
BENCHMARK(BM_RenderPrometheus)->Unit(benchmark::kMillisecond);

// One evaluation of the seed's 10 alert rules (config/examples/shop.yaml) on the families of
// a store like the one above, collected each time: what the agent's alert thread does every
// evaluation_interval (15 s).
void BM_AlertsEvaluate(benchmark::State& state) {
  auto cfg = config::LoadConfigFile(REDTAP_SOURCE_DIR "/config/examples/shop.yaml");
  if (!cfg.ok()) {
    state.SkipWithError(cfg.error().c_str());
    return;
  }
  enrich::Enricher enricher(cfg.value(), [](uint32_t) { return std::string(); });
  MetricsStore store(cfg.value());
  const std::vector<Input> mix = MakeMix(4096);
  uint64_t now = 1'000'000'000'000ull;
  for (const auto& in : mix) store.Consume(enricher.Enrich(in.txn, in.meta, now += 100'000));
  alerts::Engine engine(cfg.value());
  int64_t t = 1'800'000'000'000;
  for (auto _ : state) {
    exposition::Families f;  // the families are collected anew each time, as the agent does
    store.Collect(&f);
    engine.Evaluate(f, t += 15'000);
  }
  state.counters["series"] = static_cast<double>(store.GetStats().series);
}
BENCHMARK(BM_AlertsEvaluate)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace redtap::metrics

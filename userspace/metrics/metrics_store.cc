// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/metrics_store.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>
#include <unordered_set>

namespace redtap::metrics {
namespace {

// OTel semconv: methods outside the standard set are reported as _OTHER.
constexpr std::array<std::string_view, 9> kMethods = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
constexpr uint8_t kOtherMethod = kMethods.size();

uint8_t MethodIndex(std::string_view m) noexcept {
  for (uint8_t i = 0; i < kMethods.size(); ++i) {
    if (kMethods[i] == m) return i;
  }
  return kOtherMethod;
}

std::string_view MethodName(uint8_t i) noexcept {
  return i < kMethods.size() ? kMethods[i] : MetricsStore::kOther;
}

enum Kind : uint8_t { kServer = 0, kClient = 1 };
constexpr int kOtherStatus = 0;  // status codes outside 100..599
constexpr int kFoldedPort = -1;  // server_port of the folded peer

/// Non-cumulative bucket counts; counts.back() is the +Inf bucket.
struct Histogram {
  std::vector<uint64_t> counts;
  double sum = 0;
  uint64_t count = 0;

  explicit Histogram(size_t bounds) : counts(bounds + 1, 0) {}
  void Observe(const std::vector<double>& bounds, double v) noexcept {
    size_t i = 0;
    while (i < bounds.size() && v > bounds[i]) ++i;
    ++counts[i];
    sum += v;
    ++count;
  }
  size_t MemoryBytes() const { return counts.capacity() * sizeof(uint64_t); }
};

struct Series {
  int status;
  Histogram duration;
  Histogram request_body;
  Histogram response_body;
};

struct Slot {
  uint64_t requests = 0;
  uint64_t errors = 0;  // 5xx and failed
  DDSketch sketch;      // durations, seconds
};

struct ServiceState {
  std::string name;
  std::string key;                        // name, then the workload's key for containers and pods
  exposition::Labels resource;            // container_id, k8s_* labels (copied from the Workload)
  std::unordered_set<std::string> peers;  // "address\x1fport" of client calls kept
};

struct Endpoint {
  const ServiceState* service = nullptr;
  Kind kind = kServer;
  uint8_t method = 0;
  std::string route;
  std::string server_address;  // client only
  int server_port = 0;         // client only; kFoldedPort when folded
  uint64_t requests_total = 0;
  uint64_t errors_total = 0;
  uint64_t client_errors_total = 0;
  uint64_t failed_total = 0;
  std::vector<std::unique_ptr<Series>> series;  // by status, few
  SlotRing<Slot> window;

  Endpoint(uint64_t slot_ns, size_t slots, const Slot& prototype)
      : window(slot_ns, slots, prototype) {}
};

std::string PortLabel(int port) {
  return port == kFoldedPort ? std::string(MetricsStore::kOther) : std::to_string(port);
}

std::string StatusLabel(int status) {
  return status == kOtherStatus ? std::string(MetricsStore::kOther) : std::to_string(status);
}

double RoundTo(double v, double scale) { return std::round(v * scale) / scale; }

}  // namespace

struct MetricsStore::Impl {
  Impl(const config::Config& config, StoreLimits l)
      : limits(l),
        duration_bounds(config.metrics.duration_buckets),
        size_bounds(config.metrics.body_size_buckets),
        slot_prototype{0, 0, DDSketch(0.01, l.sketch_max_bins)} {}

  void RecordLocked(const enrich::Enriched& e);
  Endpoint* EndpointOf(ServiceState* svc, Kind kind, uint8_t method, std::string_view route,
                       std::string_view address, int port);
  ServiceState* GetService(std::string_view name, const metadata::Workload* workload);
  Endpoint* GetEndpoint(ServiceState* svc, Kind kind, uint8_t method, std::string_view route,
                        std::string_view address, int port);
  Series* GetSeries(Endpoint* ep, int status);
  std::vector<const Endpoint*> SortedEndpoints() const;
  size_t ApproxBytesLocked() const;

  const StoreLimits limits;
  const std::vector<double> duration_bounds;
  const std::vector<double> size_bounds;

  mutable std::mutex mu;
  const Slot slot_prototype;
  std::unordered_map<std::string, std::unique_ptr<ServiceState>> services;
  std::unordered_map<std::string, std::unique_ptr<Endpoint>> endpoints;
  size_t series_count = 0;
  uint64_t transactions = 0;
  uint64_t record_failures = 0;  // allocation failures inside Record
  bool started = false;
  uint64_t start_ns = 0;
  std::array<uint64_t, 4> series_folded{};  // services, peers, endpoints, series
  // Scratch buffers reused by Record (under mu): no allocation once warm.
  std::string scratch_name;
  std::string scratch_key;

  // The endpoint of recent (service, kind, method, route, peer) tuples. Keep-alive
  // connections repeat their requests, and what the cache skips (peer admission, endpoint
  // key and lookup) is most of Record. Direct-mapped; the entries point into `endpoints`,
  // whose elements are never erased. Routes and peers longer than kEndpointCacheMaxTarget
  // are not cached (bounded memory).
  struct EndpointCacheEntry {
    const ServiceState* svc = nullptr;
    Endpoint* ep = nullptr;
    uint8_t kind = 0;
    uint8_t method = 0;
    int port = 0;
    std::string route;
    std::string address;
  };
  static constexpr size_t kEndpointCacheSize = 256;
  static constexpr size_t kEndpointCacheMaxTarget = 256;
  std::array<EndpointCacheEntry, kEndpointCacheSize> endpoint_cache;
  uint64_t endpoint_cache_hits = 0;
};

namespace {
constexpr std::array<std::string_view, 4> kFoldReasons = {"services", "peers", "endpoints",
                                                          "series"};
}

ServiceState* MetricsStore::Impl::GetService(std::string_view name,
                                             const metadata::Workload* workload) {
  // One service per (name, container or pod): two pods of a Deployment are two series sets.
  scratch_name.assign(name);
  if (workload != nullptr) {
    scratch_name.push_back('\x1f');
    scratch_name.append(workload->key);
  }
  auto it = services.find(scratch_name);
  if (it != services.end()) return it->second.get();
  if (services.size() >= limits.max_services) {
    ++series_folded[0];
    scratch_name.assign(kOther);
    workload = nullptr;
    it = services.find(scratch_name);
    if (it != services.end()) return it->second.get();
  }
  auto svc = std::make_unique<ServiceState>();
  svc->key = scratch_name;
  svc->name = workload != nullptr ? std::string(name) : scratch_name;
  if (workload != nullptr) {
    for (const auto& [k, v] : workload->labels) svc->resource.push_back({k, v});
  }
  ServiceState* raw = svc.get();
  services.emplace(scratch_name, std::move(svc));
  return raw;
}

Endpoint* MetricsStore::Impl::GetEndpoint(ServiceState* svc, Kind kind, uint8_t method,
                                          std::string_view route, std::string_view address,
                                          int port) {
  const auto make_key = [&](uint8_t m, std::string_view r, std::string_view a, int p) {
    scratch_key.assign(svc->key);
    scratch_key.push_back('\x1f');
    scratch_key.push_back(static_cast<char>('0' + kind));
    scratch_key.push_back(static_cast<char>('0' + m));
    scratch_key.append(r);
    if (kind == kClient) {
      scratch_key.push_back('\x1f');
      scratch_key.append(a);
      scratch_key.push_back('\x1f');
      scratch_key.append(std::to_string(p));
    }
  };
  make_key(method, route, address, port);
  auto it = endpoints.find(scratch_key);
  if (it != endpoints.end()) return it->second.get();
  std::string_view r = route;
  if (endpoints.size() >= limits.max_endpoints) {
    ++series_folded[2];
    method = kOtherMethod;
    r = kOverflowRoute;
    if (kind == kClient) {
      address = kOther;
      port = kFoldedPort;
    }
    make_key(method, r, address, port);
    it = endpoints.find(scratch_key);
    if (it != endpoints.end()) return it->second.get();
  }
  auto ep = std::make_unique<Endpoint>(limits.window_slot_ns, limits.window_slots, slot_prototype);
  ep->service = svc;
  ep->kind = kind;
  ep->method = method;
  ep->route.assign(r);
  if (kind == kClient) {
    ep->server_address.assign(address);
    ep->server_port = port;
  }
  Endpoint* raw = ep.get();
  endpoints.emplace(scratch_key, std::move(ep));
  return raw;
}

Series* MetricsStore::Impl::GetSeries(Endpoint* ep, int status) {
  for (auto& s : ep->series) {
    if (s->status == status) return s.get();
  }
  if (series_count >= limits.max_series && status != kOtherStatus) {
    ++series_folded[3];
    return GetSeries(ep, kOtherStatus);
  }
  auto s = std::make_unique<Series>(Series{status, Histogram(duration_bounds.size()),
                                           Histogram(size_bounds.size()),
                                           Histogram(size_bounds.size())});
  Series* raw = s.get();
  // Keep sorted by status (the exposition order).
  auto pos = std::find_if(ep->series.begin(), ep->series.end(),
                          [&](const auto& x) { return x->status > status; });
  ep->series.insert(pos, std::move(s));
  ++series_count;
  return raw;
}

// The endpoint of one transaction: from the cache when the same (service, kind, method,
// route, peer) came recently, else admitted through the peer and endpoint bounds.
Endpoint* MetricsStore::Impl::EndpointOf(ServiceState* svc, Kind kind, uint8_t method,
                                         std::string_view route, std::string_view address,
                                         int port) {
  EndpointCacheEntry* ce = nullptr;
  if (route.size() <= kEndpointCacheMaxTarget && address.size() <= kEndpointCacheMaxTarget) {
    // The enricher interns routes: the address stands for the text (checked below).
    size_t h = (reinterpret_cast<uintptr_t>(route.data()) >> 3) * 0xff51afd7ed558ccdull ^
               (reinterpret_cast<uintptr_t>(svc) >> 4) * 0x9e3779b97f4a7c15ull ^
               (static_cast<size_t>(kind) << 8 | method) * 0x100000001b3ull ^
               static_cast<size_t>(port);
    if (kind == kClient) h ^= std::hash<std::string_view>{}(address)*31;
    ce = &endpoint_cache[(h ^ (h >> 29)) % kEndpointCacheSize];
    if (ce->ep != nullptr && ce->svc == svc && ce->kind == kind && ce->method == method &&
        ce->port == port && ce->route == route && ce->address == address) {
      ++endpoint_cache_hits;
      return ce->ep;
    }
  }
  // Folded transactions are counted one by one (redtap_agent_series_folded_total): not
  // cached.
  bool folded = false;
  const uint64_t endpoints_folded = series_folded[2];
  std::string_view ep_address = address;
  int ep_port = port;
  if (kind == kClient) {
    scratch_key.assign(address);
    scratch_key.push_back('\x1f');
    scratch_key.append(std::to_string(port));
    if (svc->peers.find(scratch_key) == svc->peers.end()) {
      if (svc->peers.size() < limits.max_peers_per_service) {
        svc->peers.insert(scratch_key);
      } else {
        ++series_folded[1];
        ep_address = kOther;
        ep_port = kFoldedPort;
        folded = true;
      }
    }
  }
  Endpoint* ep = GetEndpoint(svc, kind, method, route, ep_address, ep_port);
  if (series_folded[2] != endpoints_folded) folded = true;
  if (ce != nullptr && !folded) {
    ce->svc = svc;
    ce->ep = ep;
    ce->kind = kind;
    ce->method = method;
    ce->port = port;
    ce->route.assign(route);
    ce->address.assign(address);
  }
  return ep;
}

void MetricsStore::Impl::RecordLocked(const enrich::Enriched& e) {
  const http::Transaction& txn = *e.txn;
  const ConnMeta& meta = *e.meta;
  if (!started) {
    started = true;
    start_ns = e.now_ns;
  }
  ++transactions;
  const Kind kind = meta.role == Role::kServer ? kServer : kClient;
  std::string_view address;
  int port = 0;
  if (kind == kClient) {
    // The name the client asked for (Host header: "api.stripe.com"), else the peer's address.
    address = http::RequestHost(txn.request);
    if (address.empty()) address = meta.server().address;
    port = meta.server().port;
  }
  Endpoint* ep = EndpointOf(GetService(e.service, e.workload), kind,
                            MethodIndex(txn.request.method), e.route, address, port);
  ++ep->requests_total;
  Slot& slot = ep->window.At(e.now_ns, [](Slot& s) {
    s.requests = 0;
    s.errors = 0;
    s.sketch.Clear();
  });
  ++slot.requests;
  if (!txn.has_response) {
    ++ep->failed_total;
    ++ep->errors_total;
    ++slot.errors;
    return;
  }
  const int code = txn.response.status_code;
  const int status = code >= 100 && code <= 599 ? code : kOtherStatus;
  if (status >= 500) {
    ++ep->errors_total;
    ++slot.errors;
  } else if (status >= 400) {
    ++ep->client_errors_total;
  }
  Series* series = GetSeries(ep, status);
  const double seconds = static_cast<double>(txn.DurationNs()) / 1e9;
  series->duration.Observe(duration_bounds, seconds);
  series->request_body.Observe(size_bounds, static_cast<double>(txn.request.body_size));
  series->response_body.Observe(size_bounds, static_cast<double>(txn.response.body_size));
  slot.sketch.Add(seconds);
}

MetricsStore::MetricsStore(const config::Config& config, StoreLimits limits)
    : impl_(std::make_unique<Impl>(config, limits)) {}

MetricsStore::~MetricsStore() = default;

void MetricsStore::Consume(enrich::Enriched& e) noexcept {
  std::lock_guard<std::mutex> lock(impl_->mu);
  try {
    impl_->RecordLocked(e);
  } catch (...) {
    ++impl_->record_failures;  // out of memory: the transaction is lost, the store stays valid
  }
}

std::vector<const Endpoint*> MetricsStore::Impl::SortedEndpoints() const {
  std::vector<const Endpoint*> out;
  out.reserve(endpoints.size());
  for (const auto& [key, ep] : endpoints) out.push_back(ep.get());
  std::sort(out.begin(), out.end(), [](const Endpoint* a, const Endpoint* b) {
    return std::make_tuple(std::string_view(a->service->key), a->kind, MethodName(a->method),
                           std::string_view(a->route), std::string_view(a->server_address),
                           a->server_port) <
           std::make_tuple(std::string_view(b->service->key), b->kind, MethodName(b->method),
                           std::string_view(b->route), std::string_view(b->server_address),
                           b->server_port);
  });
  return out;
}

size_t MetricsStore::Impl::ApproxBytesLocked() const {
  constexpr size_t kNode = 64;  // hash node + bucket overhead, approximate
  size_t bytes = sizeof(Impl);
  for (const auto& [name, svc] : services) {
    bytes += kNode + sizeof(ServiceState) + 2 * name.capacity();
    for (const auto& p : svc->peers) bytes += kNode + sizeof(std::string) + p.capacity();
  }
  for (const auto& [key, ep] : endpoints) {
    bytes += kNode + key.capacity() + sizeof(Endpoint) + ep->route.capacity() +
             ep->server_address.capacity();
    bytes += ep->window.size() * (sizeof(Slot) + sizeof(uint64_t));
    ep->window.ForEachSlot([&](const Slot& s) { bytes += s.sketch.MemoryBytes(); });
    for (const auto& s : ep->series) {
      bytes += sizeof(void*) + sizeof(Series) + s->duration.MemoryBytes() +
               s->request_body.MemoryBytes() + s->response_body.MemoryBytes();
    }
  }
  return bytes;
}

void MetricsStore::Collect(exposition::Families* out) const {
  using exposition::Counter;
  using exposition::Family;
  using exposition::Gauge;
  using exposition::MetricFamily;
  using exposition::MetricType;
  std::lock_guard<std::mutex> lock(impl_->mu);
  const auto& d = impl_->duration_bounds;
  const auto& z = impl_->size_bounds;
  const std::vector<const Endpoint*> sorted = impl_->SortedEndpoints();
  for (Kind kind : {kServer, kClient}) {
    const std::string k = kind == kServer ? "server" : "client";
    MetricFamily duration =
        Family("http_" + k + "_request_duration_seconds",
               "Duration of HTTP " + k + " requests, first request byte to last response byte.",
               MetricType::Histogram);
    MetricFamily req_body = Family("http_" + k + "_request_body_size_bytes",
                                   "Size of HTTP " + k + " request bodies.", MetricType::Histogram);
    MetricFamily resp_body =
        Family("http_" + k + "_response_body_size_bytes", "Size of HTTP " + k + " response bodies.",
               MetricType::Histogram);
    MetricFamily failed = Family(
        "redtap_http_" + k + "_failed_requests_total",
        "HTTP " + k + " requests whose connection closed before a response.", MetricType::Counter);
    for (const Endpoint* ep : sorted) {
      if (ep->kind != kind) continue;
      exposition::Labels labels = {{"service_name", ep->service->name}};
      labels.insert(labels.end(), ep->service->resource.begin(), ep->service->resource.end());
      labels.push_back({"http_request_method", std::string(MethodName(ep->method))});
      labels.push_back({"http_route", ep->route});
      exposition::Labels peer;
      if (kind == kClient) {
        peer = {{"server_address", ep->server_address},
                {"server_port", PortLabel(ep->server_port)}};
      }
      for (const auto& s : ep->series) {
        exposition::Labels l = labels;
        l.push_back({"http_response_status_code", StatusLabel(s->status)});
        l.insert(l.end(), peer.begin(), peer.end());
        const auto hist = [&](const Histogram& h, const std::vector<double>& bounds) {
          return exposition::Histogram(l, bounds, h.counts, h.sum, h.count);
        };
        duration.metric.push_back(hist(s->duration, d));
        req_body.metric.push_back(hist(s->request_body, z));
        resp_body.metric.push_back(hist(s->response_body, z));
      }
      if (ep->failed_total > 0) {
        labels.insert(labels.end(), peer.begin(), peer.end());
        failed.metric.push_back(Counter(std::move(labels), static_cast<double>(ep->failed_total)));
      }
    }
    out->push_back(std::move(duration));
    out->push_back(std::move(req_body));
    out->push_back(std::move(resp_body));
    out->push_back(std::move(failed));
  }
  exposition::Reasons folded;
  for (size_t i = 0; i < kFoldReasons.size(); ++i) {
    folded.emplace_back(std::string(kFoldReasons[i]), impl_->series_folded[i]);
  }
  out->push_back(exposition::ReasonCounter(
      "redtap_agent_series_folded_total",
      "Transactions folded into an _OTHER label value by a store bound (services, peers, "
      "endpoints, series).",
      folded));
  out->push_back(exposition::SingleGauge("redtap_agent_metric_series",
                                         "HTTP histogram series held by the metrics store.",
                                         static_cast<double>(impl_->series_count)));
  out->push_back(exposition::SingleGauge("redtap_agent_metrics_store_bytes",
                                         "Approximate heap memory held by the metrics store.",
                                         static_cast<double>(impl_->ApproxBytesLocked())));
}

std::string MetricsStore::RenderEndpointsJson(uint64_t now_ns) const {
  constexpr uint64_t kMinute = 60'000'000'000ull;
  using Json = nlohmann::ordered_json;
  Json rows = Json::array();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const Endpoint* ep : impl_->SortedEndpoints()) {
      Json row;
      row["service"] = ep->service->name;
      for (const auto& [k, v] : ep->service->resource) row[k] = v;
      row["kind"] = ep->kind == kServer ? "server" : "client";
      row["method"] = MethodName(ep->method);
      row["route"] = ep->route;
      if (ep->kind == kClient) {
        row["server_address"] = ep->server_address;
        row["server_port"] = ep->server_port == kFoldedPort ? Json(nullptr) : Json(ep->server_port);
      }
      uint64_t requests_1m = 0;
      uint64_t errors_1m = 0;
      ep->window.ForEach(now_ns, kMinute, [&](const Slot& s) {
        requests_1m += s.requests;
        errors_1m += s.errors;
      });
      double covered = ep->window.CoveredSeconds(now_ns, kMinute);
      if (impl_->started && now_ns >= impl_->start_ns) {
        covered = std::min(covered, static_cast<double>(now_ns - impl_->start_ns) / 1e9);
      }
      covered = std::max(covered, 1.0);
      DDSketch window = impl_->slot_prototype.sketch;
      ep->window.ForEach(now_ns, 5 * kMinute, [&](const Slot& s) { window.Merge(s.sketch); });

      row["rps_1m"] = RoundTo(static_cast<double>(requests_1m) / covered, 1e3);
      row["requests_total"] = ep->requests_total;
      row["errors_total"] = ep->errors_total;
      row["client_errors_total"] = ep->client_errors_total;
      row["failed_total"] = ep->failed_total;
      row["error_rate_1m"] =
          requests_1m == 0
              ? 0.0
              : RoundTo(static_cast<double>(errors_1m) / static_cast<double>(requests_1m), 1e6);
      for (const auto& [name, q] :
           {std::pair{"p50_ms", 0.5}, std::pair{"p95_ms", 0.95}, std::pair{"p99_ms", 0.99}}) {
        row[name] =
            window.count() == 0 ? Json(nullptr) : Json(RoundTo(window.Quantile(q) * 1e3, 1e3));
      }
      Json codes = Json::object();
      for (const auto& s : ep->series) codes[StatusLabel(s->status)] = s->duration.count;
      row["status_codes"] = std::move(codes);
      rows.push_back(std::move(row));
    }
  }
  return rows.dump();
}

MetricsStore::Stats MetricsStore::GetStats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stats s;
  s.services = impl_->services.size();
  s.endpoints = impl_->endpoints.size();
  s.series = impl_->series_count;
  s.approx_bytes = impl_->ApproxBytesLocked();
  s.transactions = impl_->transactions;
  for (uint64_t v : impl_->series_folded) s.series_folded += v;
  return s;
}

}  // namespace redtap::metrics

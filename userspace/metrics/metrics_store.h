// SPDX-License-Identifier: Apache-2.0
// MetricsStore, a sink: per-endpoint RED metrics. Every enriched transaction is aggregated by
// service, kind, method, route and status (and, for client calls, the server called); memory
// is bounded by the StoreLimits below (routes are bounded per service by the enricher).
// Thread-safe: Consume runs on the decoding thread, Collect and RenderEndpointsJson on HTTP
// threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "userspace/config/config.h"
#include "userspace/enrich/enricher.h"
#include "userspace/exposition/registry.h"
#include "userspace/metrics/ddsketch.h"
#include "userspace/pipeline/pipeline.h"

namespace redtap::metrics {

/// Hard bounds. What goes beyond folds into "_OTHER" label values and is counted in
/// redtap_agent_series_folded_total{reason}.
struct StoreLimits {
  // One per (service, container): a node running ~100 pods of a few containers each fits.
  size_t max_services = 1024;                   // reason "services": service_name="_OTHER"
  size_t max_peers_per_service = 256;           // reason "peers": server_address/port="_OTHER"
  size_t max_endpoints = 10000;                 // reason "endpoints": method _OTHER, route "/*"
  size_t max_series = 50000;                    // reason "series": status "_OTHER"
  uint64_t window_slot_ns = 15'000'000'000ull;  // sub-window of the sliding windows
  size_t window_slots = 20;                     // 20 x 15 s = 5 minutes
  size_t sketch_max_bins = 512;  // per sub-window sketch: 1 % over a 28000x value range
};

class MetricsStore : public pipeline::Sink {
 public:
  /// The overflow route of a service past routes.max_per_service.
  static constexpr std::string_view kOverflowRoute = "/*";
  /// The label value of folded methods, status codes, services and peers.
  static constexpr std::string_view kOther = "_OTHER";

  explicit MetricsStore(const config::Config& config, StoreLimits limits = {});
  ~MetricsStore() override;
  MetricsStore(const MetricsStore&) = delete;
  MetricsStore& operator=(const MetricsStore&) = delete;

  /// Aggregates one transaction (its time is e.now_ns: the caller's monotonic clock, fake
  /// in tests). Never throws.
  void Consume(enrich::Enriched& e) noexcept override;

  /// The http_{server,client}_* families and the store's own health
  /// (redtap_agent_series_folded_total, _metric_series, _metrics_store_bytes).
  void Collect(exposition::Families* out) const;

  /// /api/v1/endpoints: a JSON array, one object per (service, kind, method, route[, server])
  /// with rates and quantiles over the windows ending at `now_ns`.
  std::string RenderEndpointsJson(uint64_t now_ns) const;

  struct Stats {
    size_t services = 0;
    size_t endpoints = 0;       // JSON rows
    size_t series = 0;          // (endpoint, status) histogram series
    size_t approx_bytes = 0;    // heap held by the store, approximate
    uint64_t transactions = 0;  // recorded
    uint64_t series_folded = 0;
  };
  Stats GetStats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redtap::metrics

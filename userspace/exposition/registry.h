// SPDX-License-Identifier: Apache-2.0
// The one place /metrics is written from: every module adds a collector of its metric
// families (its own series and its health counters); a scrape collects them all and renders
// Prometheus text once. Helpers build the families, so every module writes metrics one way.
#pragma once

#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace redtap::exposition {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Families = std::vector<MetricFamily>;
using Labels = std::vector<ClientMetric::Label>;

/// A family with no metric yet.
MetricFamily Family(std::string name, std::string help, MetricType type);
ClientMetric Counter(Labels labels, double value);
ClientMetric Gauge(Labels labels, double value);
/// A histogram from non-cumulative bucket counts (`counts.size() == bounds.size() + 1`, the
/// last one the +Inf bucket), their sum and count.
ClientMetric Histogram(Labels labels, const std::vector<double>& bounds,
                       const std::vector<uint64_t>& counts, double sum, uint64_t count);

/// One (reason, count) per metric of a `reason`-labelled counter family.
using Reasons = std::vector<std::pair<std::string, uint64_t>>;
/// `label` names the label ("reason" by default; "outcome", ...).
MetricFamily ReasonCounter(std::string name, std::string help, const Reasons& reasons,
                           const std::string& label = "reason");
/// A family of one unlabelled counter or gauge.
MetricFamily SingleCounter(std::string name, std::string help, double value);
MetricFamily SingleGauge(std::string name, std::string help, double value);

/// Prometheus text format 0.0.4 of `families`; families with the same name (two modules
/// adding reasons to redtap_agent_userspace_drops_total) are merged into the first.
std::string RenderText(Families families);

class Registry {
 public:
  /// Called at each scrape, on an HTTP thread: appends the module's families. Must be
  /// thread-safe with respect to the module's own updates.
  using Collector = std::function<void(Families*)>;

  /// Collectors render in the order they were added.
  void Add(Collector collector);
  /// Every family of every collector, as Prometheus text.
  std::string Render() const;
  Families Collect() const;

 private:
  mutable std::mutex mu_;
  std::vector<Collector> collectors_;
};

}  // namespace redtap::exposition

// SPDX-License-Identifier: Apache-2.0
// What a rule reads, taken from the agent's own metric families (what /metrics shows and a
// Prometheus scrapes): the cumulative counters of each rule's signal, summed per `by:` label
// set. The local engine computes the rule's value from two of these observations (now and a
// window ago), exactly as the generated PromQL does with increase() over the same series.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "userspace/config/config.h"
#include "userspace/exposition/registry.h"

namespace redtap::alerts {

/// The values of the rule's `by:` labels, in `by:` order.
using GroupKey = std::vector<std::string>;

/// Per group, the cumulative values a signal needs (see Extract), or a gauge (pool_usage).
using Observation = std::map<GroupKey, std::vector<double>>;

/// Layout of an observation's values, by signal:
///   payment_success_rate: {successes, attempts}
///   error_rate, error_spike: {errors, transactions}
///   latency_*: {count, bucket_0, ..., bucket_n-1, +Inf} (cumulative, bounds in Extractor)
///   cart_abandonment: {successes of step 1, attempts of step 2}
///   conversion_drop: {successes of the last step, attempts of the first}
///   pool_usage: {ratio}
class Extractor {
 public:
  Extractor(const config::AlertRule& rule, const config::Config& cfg);

  /// The rule's observation in `families`.
  Observation Extract(const exposition::Families& families) const;
  /// Upper bounds of the latency buckets (the last one +Inf), read from the families.
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  bool Matches(const exposition::ClientMetric& m) const;
  GroupKey Key(const exposition::ClientMetric& m) const;

  const config::AlertRule& rule_;
  std::string first_step_, second_step_, last_step_;  // funnel signals
  mutable std::vector<double> bounds_;
};

/// Prometheus's histogram_quantile on cumulative bucket counts (`bounds` ends with +Inf):
/// linear interpolation inside the bucket; the +Inf bucket answers the previous bound; NaN
/// without observations.
double HistogramQuantile(double q, const std::vector<double>& bounds,
                         const std::vector<double>& cumulative);

/// The label value of `name` in `m` ("" when absent).
const std::string& LabelOf(const exposition::ClientMetric& m, const std::string& name);

}  // namespace redtap::alerts

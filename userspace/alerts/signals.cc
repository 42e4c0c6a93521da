// SPDX-License-Identifier: Apache-2.0
#include "userspace/alerts/signals.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace redtap::alerts {
namespace {

using config::AlertSignal;

const std::string kEmpty;

bool Is5xx(const std::string& status) { return status.size() == 3 && status[0] == '5'; }

}  // namespace

const std::string& LabelOf(const exposition::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return kEmpty;
}

Extractor::Extractor(const config::AlertRule& rule, const config::Config& cfg) : rule_(rule) {
  const auto& steps = cfg.ecommerce.funnel.steps;
  if (steps.size() >= 2) {
    first_step_ = steps[0].name;
    second_step_ = steps[1].name;
    last_step_ = steps.back().name;
  }
}

bool Extractor::Matches(const exposition::ClientMetric& m) const {
  if (!rule_.route.empty() && LabelOf(m, "http_route") != rule_.route) return false;
  if (!rule_.service.empty() && LabelOf(m, "service_name") != rule_.service) return false;
  if (!rule_.method.empty() && LabelOf(m, "http_request_method") != rule_.method) return false;
  return true;
}

GroupKey Extractor::Key(const exposition::ClientMetric& m) const {
  GroupKey k;
  k.reserve(rule_.by.size());
  for (const auto& l : rule_.by) k.push_back(LabelOf(m, l));
  return k;
}

Observation Extractor::Extract(const exposition::Families& families) const {
  Observation out;
  const std::string side = config::HttpSide(rule_);
  const auto values = [&](const exposition::ClientMetric& m, size_t n) -> std::vector<double>& {
    auto& v = out[Key(m)];
    if (v.size() < n) v.resize(n, 0.0);
    return v;
  };
  for (const auto& f : families) {
    switch (rule_.signal) {
      case AlertSignal::kPaymentSuccessRate:
        if (f.name != "redtap_ecommerce_payment_attempts_total") continue;
        for (const auto& m : f.metric) {
          auto& v = values(m, 2);
          if (LabelOf(m, "outcome") == "success") v[0] += m.counter.value;
          v[1] += m.counter.value;
        }
        break;
      case AlertSignal::kErrorRate:
      case AlertSignal::kErrorSpike:
        if (f.name == "http_" + side + "_request_duration_seconds") {
          for (const auto& m : f.metric) {
            if (!Matches(m)) continue;
            auto& v = values(m, 2);
            const double n = static_cast<double>(m.histogram.sample_count);
            if (Is5xx(LabelOf(m, "http_response_status_code"))) v[0] += n;
            v[1] += n;
          }
        } else if (f.name == "redtap_http_" + side + "_failed_requests_total") {
          for (const auto& m : f.metric) {
            if (!Matches(m)) continue;
            auto& v = values(m, 2);
            v[0] += m.counter.value;
            v[1] += m.counter.value;
          }
        }
        break;
      case AlertSignal::kLatencyP95:
      case AlertSignal::kLatencyP99:
      case AlertSignal::kClientLatencyP95:
        if (f.name != "http_" + side + "_request_duration_seconds") continue;
        for (const auto& m : f.metric) {
          if (!Matches(m)) continue;
          const auto& b = m.histogram.bucket;
          if (bounds_.size() != b.size() + 1) {
            bounds_.clear();
            for (const auto& x : b) bounds_.push_back(x.upper_bound);
            bounds_.push_back(std::numeric_limits<double>::infinity());
          }
          auto& v = values(m, b.size() + 2);
          if (v.size() != b.size() + 2) continue;  // another bucket layout: not summable
          v[0] += static_cast<double>(m.histogram.sample_count);
          for (size_t i = 0; i < b.size(); i++)
            v[1 + i] += static_cast<double>(b[i].cumulative_count);
          v[1 + b.size()] += static_cast<double>(m.histogram.sample_count);
        }
        break;
      case AlertSignal::kCartAbandonment:
      case AlertSignal::kConversionDrop: {
        if (f.name != "redtap_ecommerce_funnel_step_total") continue;
        const bool cart = rule_.signal == AlertSignal::kCartAbandonment;
        const std::string& num_step = cart ? first_step_ : last_step_;
        const std::string& den_step = cart ? second_step_ : first_step_;
        for (const auto& m : f.metric) {
          const std::string& step = LabelOf(m, "step");
          if (step != num_step && step != den_step) continue;
          auto& v = values(m, 2);
          if (step == num_step && LabelOf(m, "outcome") == "success") v[0] += m.counter.value;
          if (step == den_step) v[1] += m.counter.value;
        }
        break;
      }
      case AlertSignal::kPoolUsage:
        if (f.name != "redtap_connection_pool_usage_ratio") continue;
        for (const auto& m : f.metric) {
          auto& v = values(m, 1);
          v[0] = std::max(v[0], m.gauge.value);
        }
        break;
    }
  }
  return out;
}

double HistogramQuantile(double q, const std::vector<double>& bounds,
                         const std::vector<double>& cumulative) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  const size_t n = std::min(bounds.size(), cumulative.size());
  if (n < 2 || !std::isinf(bounds[n - 1])) return nan;
  // Counts made monotonic, as Prometheus does for buckets scraped at slightly different times.
  std::vector<double> c(cumulative.begin(), cumulative.begin() + static_cast<long>(n));
  for (size_t i = 1; i < n; i++) c[i] = std::max(c[i], c[i - 1]);
  const double total = c[n - 1];
  if (total <= 0) return nan;
  double rank = q * total;
  size_t b = static_cast<size_t>(std::lower_bound(c.begin(), c.end() - 1, rank) - c.begin());
  if (b == n - 1) return bounds[n - 2];
  if (b == 0 && bounds[0] <= 0) return bounds[0];
  double start = 0, end = bounds[b], count = c[b];
  if (b > 0) {
    start = bounds[b - 1];
    count -= c[b - 1];
    rank -= c[b - 1];
  }
  if (count <= 0) return end;
  return start + (end - start) * (rank / count);
}

}  // namespace redtap::alerts

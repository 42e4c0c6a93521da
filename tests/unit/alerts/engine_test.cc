// SPDX-License-Identifier: Apache-2.0
// The local alert engine on hand-made metric families and a hand-moved clock: each signal's
// value, the guards, pending -> firing -> resolved, and what the API and /metrics show.
#include "userspace/alerts/engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "userspace/alerts/signals.h"

namespace redtap::alerts {
namespace {

using config::AlertRule;
using config::AlertSeverity;
using config::AlertSignal;
using exposition::Families;

const std::vector<double> kBounds = {0.1, 0.5, 1, 3, 5};
constexpr int64_t kT0 = 1'800'000'000'000;  // Unix ms
constexpr int64_t kStep = 15'000;

/// http_server_request_duration_seconds + redtap_http_server_failed_requests_total, built as
/// the metrics store builds them.
struct Http {
  struct Series {
    std::string service, route, method, status;
    std::vector<uint64_t> counts;  // per bucket, the last one +Inf (not cumulative)
  };
  std::vector<Series> series;
  std::map<std::string, double> failed;  // service -> count

  void Add(const std::string& service, const std::string& status, size_t bucket, uint64_t n,
           const std::string& route = "/api/x") {
    for (auto& s : series) {
      if (s.service == service && s.status == status && s.route == route) {
        s.counts[bucket] += n;
        return;
      }
    }
    Series s{service, route, "GET", status, std::vector<uint64_t>(kBounds.size() + 1, 0)};
    s.counts[bucket] += n;
    series.push_back(std::move(s));
  }

  Families Build() const {
    auto h = exposition::Family("http_server_request_duration_seconds", "",
                                exposition::MetricType::Histogram);
    for (const auto& s : series) {
      uint64_t total = 0;
      for (auto c : s.counts) total += c;
      h.metric.push_back(exposition::Histogram({{"service_name", s.service},
                                                {"http_request_method", s.method},
                                                {"http_route", s.route},
                                                {"http_response_status_code", s.status}},
                                               kBounds, s.counts, 0, total));
    }
    auto f = exposition::Family("redtap_http_server_failed_requests_total", "",
                                exposition::MetricType::Counter);
    for (const auto& [svc, n] : failed) {
      f.metric.push_back(exposition::Counter(
          {{"service_name", svc}, {"http_request_method", "GET"}, {"http_route", "/api/x"}}, n));
    }
    return {h, f};
  }
};

config::Config WithRule(AlertRule r) {
  config::Config c;
  c.ecommerce.funnel.name = "checkout";
  c.ecommerce.funnel.steps = {{"cart", {}}, {"checkout", {}}, {"payment", {}}};
  c.alerts.rules.push_back(std::move(r));
  return c;
}

AlertRule Rule(AlertSignal s, std::vector<std::string> by, uint64_t window_ms) {
  AlertRule r;
  r.name = "TestAlert";
  r.severity = AlertSeverity::kCritical;
  r.signal = s;
  r.by = std::move(by);
  r.window_ms = window_ms;
  return r;
}

/// error_spike per service: a 1 min window against a 10 min baseline, 3 sigma, 10 errors.
AlertRule SpikeRule() {
  AlertRule r = Rule(AlertSignal::kErrorSpike, {"service_name"}, 60'000);
  r.baseline_ms = 600'000;
  r.sigma = 3;
  r.min_events = 10;
  return r;
}

TEST(HistogramQuantileTest, AsPrometheus) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> b = {0.1, 0.5, 1, inf};
  // 10 below 0.1, 10 in (0.1, 0.5], none above.
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.5, b, {10, 20, 20, 20}), 0.1);
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.75, b, {10, 20, 20, 20}), 0.3);
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.25, b, {10, 20, 20, 20}), 0.05);
  // In the +Inf bucket: the last finite bound.
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.99, b, {0, 0, 0, 5}), 1);
  EXPECT_TRUE(std::isnan(HistogramQuantile(0.5, b, {0, 0, 0, 0})));
  EXPECT_TRUE(std::isnan(HistogramQuantile(0.5, {0.1, 0.5}, {1, 2})));  // no +Inf
  // Non-monotonic counts are made monotonic.
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.5, b, {10, 9, 20, 20}), 0.1);
}

TEST(RenderTemplateTest, LabelsAndValue) {
  LabelSet l = {{"gateway", "stripe"}};
  EXPECT_EQ(RenderTemplate("{{ $labels.gateway }} at {{$value}}", l, 0.5), "stripe at 0.5");
  EXPECT_EQ(RenderTemplate("{{ $labels.nope }}|{{ humanize $value }}|{{", l, 1),
            "|{{ humanize $value }}|{{");
}

TEST(AlertEngineTest, ErrorRateFiresWithTrafficAndResolvesWhenErrorsAge) {
  AlertRule r = Rule(AlertSignal::kErrorRate, {"service_name"}, 120'000);
  r.has_above = true;
  r.above = 0.05;
  r.min_events = 50;
  r.annotations["summary"] = "{{ $labels.service_name }} errors at {{ $value }}";
  config::Config cfg = WithRule(r);
  Engine e(cfg);
  Http h;
  int64_t t = kT0;
  // 40 requests, 10 of them 5xx: 25 % errors but under min_events.
  h.Add("shop", "200", 0, 30);
  h.Add("shop", "500", 0, 10);
  EXPECT_TRUE(e.Evaluate(h.Build(), t).empty());
  EXPECT_TRUE(e.Active().empty());
  // 20 more, among them 2 failed (no response): 60 events, 12 errors.
  t += kStep;
  h.Add("shop", "200", 0, 18);
  h.failed["shop"] = 2;
  auto changed = e.Evaluate(h.Build(), t);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].state, AlertState::kFiring);
  EXPECT_DOUBLE_EQ(changed[0].value, 12.0 / 60.0);
  EXPECT_EQ(changed[0].labels.at("service_name"), "shop");
  EXPECT_EQ(changed[0].labels.at("alertname"), "TestAlert");
  EXPECT_EQ(changed[0].labels.at("severity"), "critical");
  EXPECT_EQ(changed[0].annotations.at("summary"), "shop errors at 0.2");
  // A healthy service is never an alert.
  h.Add("cart", "200", 0, 500);
  t += kStep;
  EXPECT_TRUE(e.Evaluate(h.Build(), t).empty());
  ASSERT_EQ(e.Active().size(), 1u);
  EXPECT_NE(e.AlertsJson().find("\"state\":\"firing\""), std::string::npos);
  Families m;
  e.Collect(&m);
  ASSERT_EQ(m[0].name, "redtap_alerts");
  ASSERT_EQ(m[0].metric.size(), 1u);
  EXPECT_EQ(LabelOf(m[0].metric[0], "state"), "firing");
  // A trickle of successes from now on: once the errors are older than the window, resolved.
  std::vector<Alert> resolved;
  for (int i = 0; i < 12 && resolved.empty(); i++) {
    t += kStep;
    h.Add("shop", "200", 0, 5);
    resolved = e.Evaluate(h.Build(), t);
  }
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].state, AlertState::kResolved);
  // At +120 s the window starts at the first sample: its 10 errors aged out (2 / 50 = 4 %).
  EXPECT_EQ(resolved[0].ended_at_ms - kT0, 120'000);
  EXPECT_TRUE(e.Active().empty());
}

TEST(AlertEngineTest, ForKeepsAnAlertPendingFirst) {
  AlertRule r = Rule(AlertSignal::kLatencyP95, {}, 300'000);
  r.has_above = true;
  r.above = 3;
  r.route = "/api/checkout";
  r.for_ms = 30'000;
  config::Config cfg = WithRule(r);
  Engine e(cfg);
  Http h;
  h.Add("shop", "200", 4, 100, "/api/checkout");  // (3, 5] s
  h.Add("shop", "200", 0, 1000, "/api/other");    // fast, another route: filtered out
  EXPECT_TRUE(e.Evaluate(h.Build(), kT0).empty());
  auto active = e.Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].state, AlertState::kPending);
  EXPECT_DOUBLE_EQ(active[0].value, 3 + 2 * 0.95);  // interpolated in (3, 5]
  EXPECT_TRUE(e.Evaluate(h.Build(), kT0 + 15'000).empty());
  auto fired = e.Evaluate(h.Build(), kT0 + 30'000);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].state, AlertState::kFiring);
  EXPECT_EQ(fired[0].active_at_ms, kT0);
}

TEST(AlertEngineTest, PaymentSuccessRateWithNoSuccessAtAll) {
  AlertRule r = Rule(AlertSignal::kPaymentSuccessRate, {"gateway"}, 300'000);
  r.has_below = true;
  r.below = 0.95;
  r.min_events = 20;
  config::Config cfg = WithRule(r);
  Engine e(cfg);
  auto f = exposition::Family("redtap_ecommerce_payment_attempts_total", "",
                              exposition::MetricType::Counter);
  f.metric.push_back(exposition::Counter(
      {{"gateway", "stripe"}, {"outcome", "failure"}, {"reason", "card_declined"}, {"tenant", ""}},
      25));
  f.metric.push_back(exposition::Counter(
      {{"gateway", "paypal"}, {"outcome", "success"}, {"reason", ""}, {"tenant", ""}}, 40));
  auto changed = e.Evaluate({f}, kT0);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].labels.at("gateway"), "stripe");
  EXPECT_DOUBLE_EQ(changed[0].value, 0);
}

TEST(AlertEngineTest, ErrorSpikeAgainstItsBaseline) {
  const AlertRule r = SpikeRule();
  config::Config cfg = WithRule(r);
  Engine e(cfg);
  Http h;
  int64_t t = kT0;
  // Ten minutes of 1 error per 15 s: steady.
  for (int i = 0; i < 40; i++, t += kStep) {
    h.Add("shop", "200", 0, 100);
    h.Add("shop", "503", 0, 1);
    EXPECT_TRUE(e.Evaluate(h.Build(), t).empty()) << i;
  }
  // Then 30 errors in 15 s.
  h.Add("shop", "503", 0, 30);
  auto changed = e.Evaluate(h.Build(), t);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_GT(changed[0].value, 30.0 / 60.0);
}

TEST(AlertEngineTest, ErrorSpikeNeedsHalfItsBaseline) {
  const AlertRule r = SpikeRule();  // a 10 min baseline: 40 evaluations, 20 needed
  config::Config cfg = WithRule(r);
  Engine e(cfg);
  Http h;
  int64_t t = kT0;
  // A young agent: errors from nothing are no spike until the baseline is known.
  for (int i = 0; i < 20; i++, t += kStep) {
    h.Add("shop", "503", 0, i < 10 ? 0 : 50);
    EXPECT_TRUE(e.Evaluate(h.Build(), t).empty()) << i;
  }
  EXPECT_EQ(SpikeBaselineMinSamples(r, kStep), 20);
}

TEST(AlertEngineTest, FunnelSignals) {
  auto funnel = [](double cart_ok, double checkout, double payment_ok) {
    auto f = exposition::Family("redtap_ecommerce_funnel_step_total", "",
                                exposition::MetricType::Counter);
    const auto add = [&](const char* step, const char* outcome, double v) {
      f.metric.push_back(exposition::Counter(
          {{"funnel", "checkout"}, {"step", step}, {"tenant", ""}, {"outcome", outcome}}, v));
    };
    add("cart", "success", cart_ok);
    add("checkout", "success", checkout);
    add("payment", "success", payment_ok);
    return Families{f};
  };
  AlertRule cart = Rule(AlertSignal::kCartAbandonment, {}, 1'800'000);
  cart.has_above = true;
  cart.above = 0.7;
  cart.min_events = 20;
  config::Config cc = WithRule(cart);
  Engine ce(cc);
  auto fired = ce.Evaluate(funnel(100, 20, 10), kT0);  // 1 - 20/100 = 0.8
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_DOUBLE_EQ(fired[0].value, 0.8);

  AlertRule drop = Rule(AlertSignal::kConversionDrop, {}, 3'600'000);
  drop.baseline_ms = 86'400'000;
  drop.has_above = true;
  drop.above = 0.2;
  config::Config dc = WithRule(drop);
  Engine de(dc);
  // A day at 10 % conversion (payment successes / cart attempts), sampled hourly...
  int64_t t = kT0;
  for (int h = 0; h <= 24; h++, t += 3'600'000) {
    EXPECT_TRUE(de.Evaluate(funnel(1000.0 * h, 0, 100.0 * h), t).empty()) << h;
  }
  // ... then an hour at 5 %: 1 - 0.05 / (2350 / 24000) ≈ 0.49.
  auto d = de.Evaluate(funnel(1000.0 * 24 + 1000, 0, 100.0 * 24 + 50), t);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_GT(d[0].value, 0.45);
}

}  // namespace
}  // namespace redtap::alerts

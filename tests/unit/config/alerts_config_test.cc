// SPDX-License-Identifier: Apache-2.0
// The alerts: section: the seed's rules of config/examples/shop.yaml, durations, thresholds,
// and one error per broken key, each naming the key.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "userspace/config/config.h"

namespace redtap::config {
namespace {

Config Load(const std::string& yaml) {
  Result<Config> r = LoadConfigString(yaml, "config.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  return r.ok() ? r.value() : Config{};
}

TEST(AlertsConfigTest, ShopExampleHasTheSeedRules) {
  Result<Config> r = LoadConfigFile(REDTAP_SOURCE_DIR "/config/examples/shop.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  const AlertsConfig& a = r.value().alerts;
  EXPECT_EQ(a.evaluation_interval_ms, 15000u);
  ASSERT_EQ(a.rules.size(), 10u);
  const AlertRule& pay = a.rules[0];
  EXPECT_EQ(pay.name, "PaymentSuccessRateCritical");
  EXPECT_EQ(pay.severity, AlertSeverity::kCritical);
  EXPECT_EQ(pay.signal, AlertSignal::kPaymentSuccessRate);
  EXPECT_EQ(pay.by, std::vector<std::string>{"gateway"});
  EXPECT_EQ(pay.window_ms, 300000u);
  EXPECT_TRUE(pay.has_below);
  EXPECT_DOUBLE_EQ(pay.below, 0.95);
  EXPECT_EQ(pay.min_events, 20u);
  EXPECT_EQ(pay.annotations.at("runbook_url"), "deploy/runbooks/PaymentSuccessRate.md");
  const AlertRule& checkout = a.rules[2];
  EXPECT_EQ(checkout.signal, AlertSignal::kLatencyP95);
  EXPECT_EQ(checkout.route, "/api/checkout");
  EXPECT_DOUBLE_EQ(checkout.above, 3.0);
  const AlertRule& spike = a.rules[9];
  EXPECT_EQ(spike.signal, AlertSignal::kErrorSpike);
  EXPECT_EQ(spike.baseline_ms, 3600000u);
  EXPECT_DOUBLE_EQ(spike.sigma, 3);
  EXPECT_EQ(spike.min_events, 10u);  // the default minimum-traffic guard
  EXPECT_EQ(a.rules[8].baseline_ms, 86400000u);
  ASSERT_EQ(a.pools.size(), 1u);
  EXPECT_EQ(a.pools[0].server_port, 5432);
  EXPECT_EQ(a.pools[0].size, 20u);
  ASSERT_EQ(a.channels.size(), 6u);
  EXPECT_EQ(a.channels[0].type, ChannelType::kPagerDuty);
  EXPECT_EQ(a.channels[0].url, "https://events.pagerduty.com/v2/enqueue");
  EXPECT_EQ(a.channels[4].to, std::vector<std::string>{"tech@shop.example"});
  EXPECT_EQ(a.routes.at(AlertSeverity::kCritical),
            (std::vector<std::string>{"pagerduty", "sms", "slack-incidents"}));
  EXPECT_TRUE(a.routes.at(AlertSeverity::kInfo).empty());
  // Every rule has a summary and a runbook that exists.
  for (const auto& rule : a.rules) {
    EXPECT_FALSE(rule.annotations.at("summary").empty()) << rule.name;
    const std::string runbook = REDTAP_SOURCE_DIR "/" + rule.annotations.at("runbook_url");
    EXPECT_TRUE(std::ifstream(runbook).good()) << rule.name << ": " << runbook;
  }
}

TEST(AlertsConfigTest, DurationsAndThresholds) {
  Config c = Load(
      "alerts:\n"
      "  evaluation_interval: 1m30s\n"
      "  rules:\n"
      "    - {name: A, severity: info, signal: latency_p99, window: 10s, above: 250ms}\n"
      "    - {name: B, severity: info, signal: latency_p99, window: 1h, above: 0.5, for: 2m}\n");
  ASSERT_EQ(c.alerts.rules.size(), 2u);
  EXPECT_EQ(c.alerts.evaluation_interval_ms, 90000u);
  EXPECT_EQ(c.alerts.rules[0].window_ms, 10000u);
  EXPECT_DOUBLE_EQ(c.alerts.rules[0].above, 0.25);
  EXPECT_DOUBLE_EQ(c.alerts.rules[1].above, 0.5);
  EXPECT_EQ(c.alerts.rules[1].for_ms, 120000u);
  EXPECT_EQ(FormatDuration(90000), "1m30s");
  EXPECT_EQ(FormatDuration(86400000), "1d");
  EXPECT_EQ(FormatDuration(250), "250ms");
  EXPECT_EQ(FormatDuration(0), "0s");
}

TEST(AlertsConfigTest, EachBrokenKeyIsNamed) {
  const std::string rule = "alerts: {rules: [{name: A, severity: warning, signal: error_rate, ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"alerts: {evaluation_interval: 15}", "alerts.evaluation_interval: must be a duration"},
      {"alerts: {evaluation_interval: 0s}", "alerts.evaluation_interval: must be a duration"},
      {"alerts: {evaluation_interval: 5x}", "alerts.evaluation_interval: must be a duration"},
      {"alerts: {rules: [{name: A, signal: error_rate, above: 1}]}",
       "alerts.rules[0]: needs a name, a severity and a signal"},
      {rule + "above: 0.1, window: 5m}]}", ""},  // valid: the template itself
      {rule + "above: 0.1, by: [gateway]}]}", "alerts.rules[0].by: signal error_rate can be"},
      {rule + "above: 0.1, below: 0.2}]}", "needs exactly one of above or below"},
      {rule + "window: 5m}]}", "needs exactly one of above or below"},
      {rule + "above: 1.5}]}", "its threshold must be between 0 and 1"},
      {rule + "above: 0.1, sigma: 2}]}", "takes no sigma"},
      {rule + "above: 0.1, baseline: 1h}]}", "takes no baseline"},
      {rule + "above: 0.1, kind: both}]}", "alerts.rules[0].kind: must be server or client"},
      {rule + "above: 0.1, method: get}]}", "alerts.rules[0].method"},
      {rule + "above: 0.1, labels: {severity: x}}]}", "alerts.rules[0].labels.severity"},
      {rule + "above: 0.1, annotations: {title: x}}]}", "alerts.rules[0].annotations.title"},
      {rule + "above: 0.1, name: 1A}]}", "duplicate key"},
      {"alerts: {rules: [{name: 1A, severity: info, signal: error_rate, above: 0.1}]}",
       "alerts.rules[0].name: must be an alert name"},
      {"alerts: {rules: [{name: A, severity: page, signal: error_rate, above: 0.1}]}",
       "alerts.rules[0].severity: must be one of critical, warning, info"},
      {"alerts: {rules: [{name: A, severity: info, signal: qps, above: 0.1}]}",
       "alerts.rules[0].signal: must be one of payment_success_rate"},
      {"alerts: {rules: [{name: A, severity: info, signal: latency_p95, above: 3x}]}",
       "alerts.rules[0].above: must be a duration"},
      {"alerts: {rules: [{name: A, severity: info, signal: error_spike, window: 5m, "
       "baseline: 1m}]}",
       "needs a baseline longer than its window"},
      {"alerts: {rules: [{name: A, severity: info, signal: error_spike, window: 5m, "
       "baseline: 1h, above: 1}]}",
       "takes sigma, not above/below"},
      {"alerts: {rules: [{name: A, severity: info, signal: cart_abandonment, above: 0.7}]}",
       "alerts.rules[0]: signal cart_abandonment needs ecommerce.funnel"},
      {"alerts: {rules: [{name: A, severity: info, signal: payment_success_rate, below: 0.9}]}",
       "needs ecommerce.payments"},
      {"alerts: {rules: [{name: A, severity: info, signal: pool_usage, above: 0.9}]}",
       "signal pool_usage needs alerts.pools"},
      {"alerts: {rules: [{name: A, severity: info, signal: pool_usage, above: 0.9, "
       "route: /x}], pools: [{name: p, service: s, server_port: 5432, size: 5}]}",
       "takes no route filter"},
      {"alerts: {rules: [{name: A, severity: info, signal: error_rate, above: 0.1}, "
       "{name: A, severity: critical, signal: error_rate, above: 0.2}]}",
       "alerts.rules[1].name: \"A\" is used twice"},
      {"alerts: {pools: [{name: p, service: s, size: 5}]}", "alerts.pools[0]: needs a name"},
      {"alerts: {channels: [{name: c, type: sms}]}", "alerts.channels[0].type: must be one of"},
      {"alerts: {channels: [{name: c, type: pagerduty}]}", "needs routing_key_file"},
      {"alerts: {channels: [{name: c, type: slack}]}", "needs exactly one of url and url_file"},
      {"alerts: {channels: [{name: c, type: slack, url: ftp://x}]}",
       "alerts.channels[0].url: must be an http:// or https:// URL"},
      {"alerts: {channels: [{name: c, type: webhook, url_file: relative}]}",
       "alerts.channels[0].url_file: must be an absolute file path"},
      {"alerts: {channels: [{name: c, type: email, smtp: 127.0.0.1:25, from: a@b}]}",
       "needs smtp, from and to"},
      {"alerts: {channels: [{name: c, type: email, smtp: 127.0.0.1:25, from: a@b, to: [x]}]}",
       "alerts.channels[0].to[0]: must be an e-mail address"},
      {"alerts: {channels: [{name: c, type: webhook, url: http://h/, smtp: 127.0.0.1:25}]}",
       "alerts.channels[0].smtp: is not a key of a webhook channel"},
      {"alerts: {routes: {critical: [nobody]}}",
       "alerts.routes.critical[0]: names no channel of alerts.channels"},
      {"alerts: {routes: {page: []}}", "alerts.routes.page: unknown key"},
  };
  for (const auto& [yaml, want] : cases) {
    Result<Config> r = LoadConfigString(yaml, "config.yaml");
    if (want.empty()) {
      EXPECT_TRUE(r.ok()) << yaml << ": " << (r.ok() ? "" : r.error());
      continue;
    }
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_NE(r.error().find(want), std::string::npos) << yaml << "\n  got: " << r.error();
  }
}

}  // namespace
}  // namespace redtap::config

// SPDX-License-Identifier: Apache-2.0
// The `alerts:` section: rules evaluated by the agent (userspace/alerts) and turned into
// Prometheus and Alertmanager configs (`redtap rules`), the connection pools the pool_usage
// signal reads, the notification channels and the routes from severities to channels.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace redtap::config {

/// What a rule measures (README "Alerts" has the formula of each).
enum class AlertSignal {
  kPaymentSuccessRate,  // payment_success_rate: successful / all payment attempts
  kErrorRate,           // error_rate: 5xx and failed (no response) / all transactions
  kLatencyP95,          // latency_p95: server duration, P95 of the window's histogram
  kLatencyP99,          // latency_p99
  kClientLatencyP95,    // client_latency_p95: outbound call duration, P95
  kCartAbandonment,     // cart_abandonment: 1 - checkout attempts / successful cart steps
  kConversionDrop,      // conversion_drop: 1 - conversion(window) / conversion(baseline)
  kErrorSpike,          // error_spike: errors/s above the baseline mean by sigma std devs
  kPoolUsage,           // pool_usage: established connections of a pool / its size
};

enum class AlertSeverity { kCritical, kWarning, kInfo };

struct AlertRule {
  std::string name;  // alerts.rules[i].name: alertname, [A-Za-z_][A-Za-z0-9_]* (1..128)
  AlertSeverity severity = AlertSeverity::kWarning;  // critical | warning | info
  AlertSignal signal = AlertSignal::kErrorRate;
  std::vector<std::string> by;  // label names the value is computed per (signal-specific set)
  uint64_t window_ms = 300000;  // window: 5m
  uint64_t baseline_ms = 0;     // baseline: conversion_drop and error_spike only
  uint64_t for_ms = 0;          // for: pending this long before firing
  bool has_above = false;       // exactly one of above/below (error_spike: sigma)
  double above = 0;             // latency signals: seconds
  bool has_below = false;
  double below = 0;
  double sigma = 3;         // error_spike
  uint64_t min_events = 0;  // ratios and quantiles: no value below this many events
  // Filters (series matchers): "" = any.
  std::string route;    // http_route (exact, a configured or templated route)
  std::string service;  // service_name
  std::string method;   // http_request_method
  std::string kind;     // error_rate, error_spike: "server" (default) or "client"
  std::map<std::string, std::string> labels;       // extra labels of the alert
  std::map<std::string, std::string> annotations;  // summary, description, runbook_url
};

/// alerts.pools[i]: a client connection pool, seen as the established outbound connections of
/// `service` to `server_port`.
struct AlertPool {
  std::string name;
  std::string service;
  uint16_t server_port = 0;
  uint32_t size = 0;
};

enum class ChannelType { kPagerDuty, kSlack, kWebhook, kEmail, kAlertmanager };

/// alerts.channels[i]. Secrets are read from files at start (never from the config text when a
/// *_file key exists for them), and never logged or exported.
struct AlertChannel {
  std::string name;
  ChannelType type = ChannelType::kWebhook;
  std::string url;               // webhook, slack, alertmanager; pagerduty: Events API v2 URL
  std::string url_file;          // slack, webhook: a file holding the URL (secret)
  std::string routing_key_file;  // pagerduty: a file holding the integration key
  std::string smtp;              // email: HOST:PORT
  std::string from;              // email
  std::vector<std::string> to;   // email
};

struct AlertsConfig {
  uint64_t evaluation_interval_ms = 15000;       // alerts.evaluation_interval
  uint64_t repeat_interval_ms = 4 * 3600000ull;  // alerts.repeat_interval: re-notify while firing
  std::vector<AlertRule> rules;
  std::vector<AlertPool> pools;
  std::vector<AlertChannel> channels;
  // alerts.routes: severity -> channel names.
  std::map<AlertSeverity, std::vector<std::string>> routes = {
      {AlertSeverity::kCritical, {}}, {AlertSeverity::kWarning, {}}, {AlertSeverity::kInfo, {}}};
};

const char* SignalName(AlertSignal s);
const char* SeverityName(AlertSeverity s);
const char* ChannelTypeName(ChannelType t);
/// latency_p95, latency_p99, client_latency_p95: thresholds in seconds, histogram quantiles.
bool IsLatencySignal(AlertSignal s);
/// "server" or "client": the side of the HTTP series a rule reads (client_latency_p95, or
/// kind: client).
const char* HttpSide(const AlertRule& r);
/// "15s", "5m", "1h30m", "250ms" (Prometheus duration syntax; "0s" too).
std::string FormatDuration(uint64_t ms);

}  // namespace redtap::config

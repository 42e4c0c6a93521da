// SPDX-License-Identifier: Apache-2.0
// PromQL for each signal, written to compute what signals.cc + engine.cc compute locally:
//   ratios     (num or den * 0) / (den >= min)     -- a group with no success is 0, not absent
//   quantiles  histogram_quantile(q, sum by (le, ...) (rate(bucket[w]))) and on (...) count >= min
//   funnel     1 - ... over the funnel's steps
//   spike      the recorded errors/s against avg_over_time + sigma * stddev_over_time
//   pools      avg_over_time(redtap_connection_pool_usage_ratio[w])
#include "userspace/alerts/rules.h"

#include <yaml-cpp/yaml.h>

#include "userspace/alerts/engine.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace redtap::alerts {
namespace {

using config::AlertRule;
using config::AlertSignal;
using config::ChannelType;

std::string Num(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string By(const AlertRule& r, bool with_le = false) {
  std::string s;
  if (with_le) s = "le";
  for (const auto& l : r.by) s += (s.empty() ? "" : ", ") + l;
  return s;
}

std::string Sum(const AlertRule& r, const std::string& inner, bool with_le = false) {
  return "sum by (" + By(r, with_le) + ") (" + inner + ")";
}

std::string Win(uint64_t ms) { return "[" + config::FormatDuration(ms) + "]"; }

std::string Min(const AlertRule& r) { return std::to_string(std::max<uint64_t>(r.min_events, 1)); }

/// Matchers of the rule's filters, plus `extra`, inside {...}.
std::string Selector(const std::string& name, const AlertRule& r,
                     std::vector<std::string> extra = {}) {
  if (!r.route.empty()) extra.push_back("http_route=" + Quote(r.route));
  if (!r.service.empty()) extra.push_back("service_name=" + Quote(r.service));
  if (!r.method.empty()) extra.push_back("http_request_method=" + Quote(r.method));
  std::string s = name + "{";
  for (size_t i = 0; i < extra.size(); i++) s += (i ? ", " : "") + extra[i];
  return s + "}";
}

/// Errors and transactions: the duration histogram's _count and the failed counter together
/// (a failed request has no status label: the matcher "5..|" takes it).
std::string HttpCounts(const AlertRule& r, bool errors_only) {
  const std::string side = std::string(config::HttpSide(r));
  std::vector<std::string> m = {
      "__name__=~" + Quote("http_" + side + "_request_duration_seconds_count|redtap_http_" + side +
                           "_failed_requests_total")};
  if (errors_only) m.push_back("http_response_status_code=~\"5..|\"");
  return Selector("", r, m);
}

std::string RatioExpr(const AlertRule& r, const std::string& num, const std::string& den) {
  return "(" + num + " or " + den + " * 0) / (" + den + " >= " + Min(r) + ")";
}

std::string FunnelSelector(const config::Config& cfg, const std::string& step, bool success) {
  std::string s = "redtap_ecommerce_funnel_step_total{funnel=" + Quote(cfg.ecommerce.funnel.name) +
                  ", step=" + Quote(step);
  if (success) s += ", outcome=\"success\"";
  return s + "}";
}

std::string ConversionExpr(const AlertRule& r, const config::Config& cfg, uint64_t window_ms) {
  const auto& steps = cfg.ecommerce.funnel.steps;
  const std::string num =
      Sum(r, "increase(" + FunnelSelector(cfg, steps.back().name, true) + Win(window_ms) + ")");
  const std::string den =
      Sum(r, "increase(" + FunnelSelector(cfg, steps.front().name, false) + Win(window_ms) + ")");
  return RatioExpr(r, num, den);
}

}  // namespace

std::string RecordName(const AlertRule& r) { return "redtap:" + r.name + ":value"; }

std::string ValueExpr(const AlertRule& r, const config::Config& cfg) {
  const std::string w = Win(r.window_ms);
  switch (r.signal) {
    case AlertSignal::kPaymentSuccessRate: {
      const std::string m = "redtap_ecommerce_payment_attempts_total";
      return RatioExpr(r, Sum(r, "increase(" + m + "{outcome=\"success\"}" + w + ")"),
                       Sum(r, "increase(" + m + w + ")"));
    }
    case AlertSignal::kErrorRate:
      return RatioExpr(r, Sum(r, "increase(" + HttpCounts(r, true) + w + ")"),
                       Sum(r, "increase(" + HttpCounts(r, false) + w + ")"));
    case AlertSignal::kLatencyP95:
    case AlertSignal::kLatencyP99:
    case AlertSignal::kClientLatencyP95: {
      const std::string q = r.signal == AlertSignal::kLatencyP99 ? "0.99" : "0.95";
      const std::string h =
          "http_" + std::string(config::HttpSide(r)) + "_request_duration_seconds";
      return "histogram_quantile(" + q + ", " +
             Sum(r, "rate(" + Selector(h + "_bucket", r) + w + ")", true) + ") and on (" + By(r) +
             ") (" + Sum(r, "increase(" + Selector(h + "_count", r) + w + ")") + " >= " + Min(r) +
             ")";
    }
    case AlertSignal::kCartAbandonment: {
      const auto& steps = cfg.ecommerce.funnel.steps;
      const std::string cart =
          Sum(r, "increase(" + FunnelSelector(cfg, steps[0].name, true) + w + ")");
      const std::string checkout =
          Sum(r, "increase(" + FunnelSelector(cfg, steps[1].name, false) + w + ")");
      return "1 - " + RatioExpr(r, checkout, cart);
    }
    case AlertSignal::kConversionDrop:
      return "1 - (" + ConversionExpr(r, cfg, r.window_ms) + ") / ((" +
             ConversionExpr(r, cfg, r.baseline_ms) + ") > 0)";
    case AlertSignal::kErrorSpike:
      // errors per second over the window; the guard is in the alert (the baseline needs
      // every value).
      return Sum(r, "increase(" + HttpCounts(r, true) + w + ")") + " / " +
             Num(static_cast<double>(r.window_ms) / 1000.0);
    case AlertSignal::kPoolUsage:
      return "max by (pool) (avg_over_time(redtap_connection_pool_usage_ratio" + w + "))";
  }
  return "";
}

std::string AlertExpr(const AlertRule& r, const config::Config& cfg) {
  const std::string v = RecordName(r);
  if (r.signal == AlertSignal::kErrorSpike) {
    // The baseline ends where the window starts (offset), and must hold half its evaluations.
    const std::string b = Win(r.baseline_ms) + " offset " + config::FormatDuration(r.window_ms);
    const int64_t need =
        SpikeBaselineMinSamples(r, static_cast<int64_t>(cfg.alerts.evaluation_interval_ms));
    return v + " > (avg_over_time(" + v + b + ") + " + Num(r.sigma) + " * stddev_over_time(" + v +
           b + ")) and on (" + By(r) + ") (count_over_time(" + v + b +
           ") >= " + std::to_string(need) + ") and on (" + By(r) + ") (" +
           Sum(r, "increase(" + HttpCounts(r, true) + Win(r.window_ms) + ")") + " >= " + Min(r) +
           ")";
  }
  return v + (r.has_above ? " > " + Num(r.above) : " < " + Num(r.below));
}

std::string PrometheusRules(const config::Config& cfg) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq;
  out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "redtap";
  out << YAML::Key << "interval" << YAML::Value
      << config::FormatDuration(cfg.alerts.evaluation_interval_ms);
  out << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
  for (const auto& r : cfg.alerts.rules) {
    out << YAML::BeginMap << YAML::Key << "record" << YAML::Value << RecordName(r);
    out << YAML::Key << "expr" << YAML::Value << ValueExpr(r, cfg) << YAML::EndMap;
    out << YAML::BeginMap << YAML::Key << "alert" << YAML::Value << r.name;
    out << YAML::Key << "expr" << YAML::Value << AlertExpr(r, cfg);
    if (r.for_ms) out << YAML::Key << "for" << YAML::Value << config::FormatDuration(r.for_ms);
    out << YAML::Key << "labels" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "severity" << YAML::Value << config::SeverityName(r.severity);
    out << YAML::Key << "signal" << YAML::Value << config::SignalName(r.signal);
    for (const auto& [k, v] : r.labels) out << YAML::Key << k << YAML::Value << v;
    out << YAML::EndMap;
    if (!r.annotations.empty()) {
      out << YAML::Key << "annotations" << YAML::Value << YAML::BeginMap;
      for (const auto& [k, v] : r.annotations) out << YAML::Key << k << YAML::Value << v;
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap << YAML::EndSeq << YAML::EndMap;
  return std::string(
             "# Generated by `redtap rules prometheus`: the agent's alert rules for a "
             "fleet.\n") +
         out.c_str() + "\n";
}

std::string AlertmanagerConfig(const config::Config& cfg) {
  const auto& a = cfg.alerts;
  const auto channel = [&](const std::string& name) -> const config::AlertChannel* {
    for (const auto& c : a.channels) {
      if (c.name == name) return &c;
    }
    return nullptr;
  };
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "route" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "receiver" << YAML::Value << "redtap-none";
  out << YAML::Key << "group_by" << YAML::Value << YAML::Flow << YAML::BeginSeq << "alertname"
      << YAML::EndSeq;
  out << YAML::Key << "group_wait" << YAML::Value << "30s";
  out << YAML::Key << "group_interval" << YAML::Value << "5m";
  out << YAML::Key << "repeat_interval" << YAML::Value
      << config::FormatDuration(a.repeat_interval_ms);
  out << YAML::Key << "routes" << YAML::Value << YAML::BeginSeq;
  for (const auto& [severity, names] : a.routes) {
    out << YAML::BeginMap;
    out << YAML::Key << "matchers" << YAML::Value << YAML::Flow << YAML::BeginSeq
        << std::string("severity=\"") + config::SeverityName(severity) + "\"" << YAML::EndSeq;
    out << YAML::Key << "receiver" << YAML::Value
        << std::string("redtap-") + config::SeverityName(severity);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;

  out << YAML::Key << "receivers" << YAML::Value << YAML::BeginSeq;
  out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "redtap-none" << YAML::EndMap;
  for (const auto& [severity, names] : a.routes) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value
        << std::string("redtap-") + config::SeverityName(severity);
    std::map<std::string, std::vector<const config::AlertChannel*>> by_kind;
    for (const auto& n : names) {
      const auto* c = channel(n);
      if (!c) continue;
      switch (c->type) {
        case ChannelType::kPagerDuty:
          by_kind["pagerduty_configs"].push_back(c);
          break;
        case ChannelType::kSlack:
          by_kind["slack_configs"].push_back(c);
          break;
        case ChannelType::kWebhook:
          // Alertmanager 0.25 reads webhook URLs from its config only: the secret stays out.
          if (c->url.empty()) {
            out << YAML::Comment("channel " + c->name + ": its URL is in " + c->url_file +
                                 "; add a webhook_configs entry with it by hand");
          } else {
            by_kind["webhook_configs"].push_back(c);
          }
          break;
        case ChannelType::kEmail:
          by_kind["email_configs"].push_back(c);
          break;
        case ChannelType::kAlertmanager:
          break;  // this Alertmanager itself
      }
    }
    for (const auto& [kind, list] : by_kind) {
      out << YAML::Key << kind << YAML::Value << YAML::BeginSeq;
      for (const auto* c : list) {
        out << YAML::BeginMap;
        switch (c->type) {
          case ChannelType::kPagerDuty:
            out << YAML::Key << "routing_key_file" << YAML::Value << c->routing_key_file;
            out << YAML::Key << "url" << YAML::Value << c->url;
            out << YAML::Key << "send_resolved" << YAML::Value << true;
            break;
          case ChannelType::kSlack:
            if (!c->url_file.empty())
              out << YAML::Key << "api_url_file" << YAML::Value << c->url_file;
            else
              out << YAML::Key << "api_url" << YAML::Value << c->url;
            out << YAML::Key << "send_resolved" << YAML::Value << true;
            out << YAML::Key << "title" << YAML::Value
                << "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} "
                   "({{ .CommonLabels.severity }})";
            out << YAML::Key << "text" << YAML::Value
                << "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}";
            break;
          case ChannelType::kWebhook:
            out << YAML::Key << "url" << YAML::Value << c->url;
            out << YAML::Key << "send_resolved" << YAML::Value << true;
            break;
          case ChannelType::kEmail:
            out << YAML::Key << "to" << YAML::Value;
            {
              std::string to;
              for (const auto& t : c->to) to += (to.empty() ? "" : ", ") + t;
              out << to;
            }
            out << YAML::Key << "from" << YAML::Value << c->from;
            out << YAML::Key << "smarthost" << YAML::Value << c->smtp;
            out << YAML::Key << "require_tls" << YAML::Value << false;
            out << YAML::Key << "send_resolved" << YAML::Value << true;
            break;
          case ChannelType::kAlertmanager:
            break;
        }
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  // The by: labels of every rule: a critical alert silences the warning of the same signal
  // and label set.
  std::set<std::string> labels = {"signal"};
  for (const auto& r : a.rules) labels.insert(r.by.begin(), r.by.end());
  out << YAML::Key << "inhibit_rules" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "source_matchers" << YAML::Value << YAML::Flow << YAML::BeginSeq
      << "severity=\"critical\"" << YAML::EndSeq;
  out << YAML::Key << "target_matchers" << YAML::Value << YAML::Flow << YAML::BeginSeq
      << "severity=\"warning\"" << YAML::EndSeq;
  out << YAML::Key << "equal" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& l : labels) out << l;
  out << YAML::EndSeq << YAML::EndMap << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(
             "# Generated by `redtap rules alertmanager`: receivers per severity from "
             "alerts.channels and alerts.routes.\n") +
         out.c_str() + "\n";
}

}  // namespace redtap::alerts

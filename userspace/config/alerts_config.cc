// SPDX-License-Identifier: Apache-2.0
// The `alerts:` section: rules (each signal has its own `by:` labels and thresholds), pools,
// channels (each type its own required keys) and routes. Cross-section checks (the funnel a
// rule needs, the pools and channels it names) run once the whole document is read.
#include "userspace/config/alerts_config.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string_view>
#include <utility>

#include "userspace/config/yaml_fields.h"

namespace redtap::config {

const char* SignalName(AlertSignal s) {
  switch (s) {
    case AlertSignal::kPaymentSuccessRate:
      return "payment_success_rate";
    case AlertSignal::kErrorRate:
      return "error_rate";
    case AlertSignal::kLatencyP95:
      return "latency_p95";
    case AlertSignal::kLatencyP99:
      return "latency_p99";
    case AlertSignal::kClientLatencyP95:
      return "client_latency_p95";
    case AlertSignal::kCartAbandonment:
      return "cart_abandonment";
    case AlertSignal::kConversionDrop:
      return "conversion_drop";
    case AlertSignal::kErrorSpike:
      return "error_spike";
    case AlertSignal::kPoolUsage:
      return "pool_usage";
  }
  return "?";
}

const char* SeverityName(AlertSeverity s) {
  switch (s) {
    case AlertSeverity::kCritical:
      return "critical";
    case AlertSeverity::kWarning:
      return "warning";
    case AlertSeverity::kInfo:
      return "info";
  }
  return "?";
}

const char* ChannelTypeName(ChannelType t) {
  switch (t) {
    case ChannelType::kPagerDuty:
      return "pagerduty";
    case ChannelType::kSlack:
      return "slack";
    case ChannelType::kWebhook:
      return "webhook";
    case ChannelType::kEmail:
      return "email";
    case ChannelType::kAlertmanager:
      return "alertmanager";
  }
  return "?";
}

bool IsLatencySignal(AlertSignal s) {
  return s == AlertSignal::kLatencyP95 || s == AlertSignal::kLatencyP99 ||
         s == AlertSignal::kClientLatencyP95;
}

const char* HttpSide(const AlertRule& r) {
  if (r.signal == AlertSignal::kClientLatencyP95 || r.kind == "client") return "client";
  return "server";
}

std::string FormatDuration(uint64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  constexpr std::pair<uint64_t, const char*> kUnits[] = {{86400000ull * 7, "w"}, {86400000ull, "d"},
                                                         {3600000ull, "h"},      {60000ull, "m"},
                                                         {1000ull, "s"},         {1ull, "ms"}};
  for (const auto& [unit, suffix] : kUnits) {
    if (ms >= unit) {
      out += std::to_string(ms / unit) + suffix;
      ms %= unit;
    }
  }
  return out;
}

namespace detail {
namespace {

constexpr AlertSignal kSignals[] = {
    AlertSignal::kPaymentSuccessRate, AlertSignal::kErrorRate,        AlertSignal::kLatencyP95,
    AlertSignal::kLatencyP99,         AlertSignal::kClientLatencyP95, AlertSignal::kCartAbandonment,
    AlertSignal::kConversionDrop,     AlertSignal::kErrorSpike,       AlertSignal::kPoolUsage};
constexpr AlertSeverity kSeverities[] = {AlertSeverity::kCritical, AlertSeverity::kWarning,
                                         AlertSeverity::kInfo};
constexpr ChannelType kChannelTypes[] = {ChannelType::kPagerDuty, ChannelType::kSlack,
                                         ChannelType::kWebhook, ChannelType::kEmail,
                                         ChannelType::kAlertmanager};
constexpr const char* kPagerDutyUrl = "https://events.pagerduty.com/v2/enqueue";

template <typename E, size_t N>
E ParseEnum(const YAML::Node& node, const std::string& key, const E (&values)[N],
            const char* (*name)(E)) {
  std::string known;
  if (node.IsScalar()) {
    for (E v : values) {
      if (node.Scalar() == name(v)) return v;
    }
  }
  for (E v : values) known += (known.empty() ? "" : ", ") + std::string(name(v));
  Fail(key, "must be one of " + known + " (got " + Describe(node) + ")");
}

bool IsIdentChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

/// A Prometheus label or alert name: [A-Za-z_][A-Za-z0-9_]*, 1..128 characters.
std::string ParseIdent(const YAML::Node& node, const std::string& key, const char* what) {
  const auto fail = [&] {
    Fail(key, std::string("must be ") + what +
                  ": 1 to 128 letters, digits or '_', not starting with a digit (got " +
                  Describe(node) + ")");
  };
  if (!node.IsScalar() || node.Scalar().empty() || node.Scalar().size() > 128) fail();
  for (size_t i = 0; i < node.Scalar().size(); i++) {
    if (!IsIdentChar(node.Scalar()[i], i == 0)) fail();
  }
  return node.Scalar();
}

std::string ParseUrl(const YAML::Node& node, const std::string& key) {
  const std::string s = ParseString(node, key);
  const bool http = s.starts_with("http://") && s.size() > 7;
  const bool https = s.starts_with("https://") && s.size() > 8;
  if ((!http && !https) || s.size() > 2048 ||
      std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; })) {
    Fail(key, "must be an http:// or https:// URL without spaces (got " + Describe(node) + ")");
  }
  return s;
}

std::string ParsePath(const YAML::Node& node, const std::string& key) {
  const std::string s = ParseString(node, key);
  if (s.empty() || s[0] != '/') {
    Fail(key, "must be an absolute file path (got " + Describe(node) + ")");
  }
  return s;
}

/// An e-mail address: something@something, no spaces or angle brackets.
std::string ParseAddress(const YAML::Node& node, const std::string& key) {
  const std::string s = ParseString(node, key);
  const size_t at = s.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= s.size() || s.size() > 254 ||
      std::any_of(s.begin(), s.end(), [](unsigned char c) {
        return c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',';
      })) {
    Fail(key, "must be an e-mail address such as oncall@shop.example (got " + Describe(node) + ")");
  }
  return s;
}

constexpr uint64_t kMaxWindowMs = 7 * 86400000ull;

/// A threshold: a number; for latency signals a duration ("3s", "250ms") or seconds.
double ParseThreshold(const YAML::Node& node, const std::string& key, bool seconds) {
  if (seconds && node.IsScalar() && !node.Scalar().empty() &&
      (node.Scalar().back() == 's' || node.Scalar().back() == 'm' || node.Scalar().back() == 'h')) {
    return static_cast<double>(ParseDurationMs(node, key, 1, kMaxWindowMs)) / 1000.0;
  }
  return ParseNumber(
      node, key,
      seconds ? "must be a duration (3s, 250ms) or a number of seconds" : "must be a number");
}

bool IsRatio(AlertSignal s) {
  return s == AlertSignal::kPaymentSuccessRate || s == AlertSignal::kErrorRate ||
         s == AlertSignal::kCartAbandonment || s == AlertSignal::kConversionDrop ||
         s == AlertSignal::kPoolUsage;
}

/// The labels a signal's value can be computed per.
std::vector<std::string_view> ByLabels(const AlertRule& r) {
  switch (r.signal) {
    case AlertSignal::kPaymentSuccessRate:
      return {"gateway", "tenant"};
    case AlertSignal::kErrorRate:
    case AlertSignal::kErrorSpike:
      if (r.kind == "client")
        return {"service_name", "http_route", "http_request_method", "server_address"};
      return {"service_name", "http_route", "http_request_method"};
    case AlertSignal::kLatencyP95:
    case AlertSignal::kLatencyP99:
      return {"service_name", "http_route", "http_request_method"};
    case AlertSignal::kClientLatencyP95:
      return {"service_name", "http_route", "http_request_method", "server_address"};
    case AlertSignal::kCartAbandonment:
    case AlertSignal::kConversionDrop:
      return {"tenant"};
    case AlertSignal::kPoolUsage:
      return {"pool"};
  }
  return {};
}

std::string Joined(const std::vector<std::string_view>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : ", ") + std::string(x);
  return s;
}

/// Which filters (route, service, method, kind) apply to a signal.
bool HttpSignal(AlertSignal s) {
  return s == AlertSignal::kErrorRate || s == AlertSignal::kErrorSpike || IsLatencySignal(s);
}

void CheckRule(AlertRule& r, const std::string& key, const std::set<std::string>& given) {
  const std::string sig = SignalName(r.signal);
  const auto need = [&](bool ok, const std::string& what) {
    if (!ok) Fail(key, "signal " + sig + " " + what);
  };
  for (const auto& l : r.by) {
    auto allowed = ByLabels(r);
    if (std::find(allowed.begin(), allowed.end(), l) == allowed.end()) {
      Fail(key + ".by",
           "signal " + sig + " can be computed by " + Joined(allowed) + " (got \"" + l + "\")");
    }
  }
  if (!HttpSignal(r.signal)) {
    for (const char* f : {"route", "service", "method"}) {
      need(!given.count(f), std::string("takes no ") + f + " filter (HTTP signals only)");
    }
  }
  if (r.signal != AlertSignal::kErrorRate && r.signal != AlertSignal::kErrorSpike) {
    need(!given.count("kind"), "takes no kind (error_rate and error_spike only)");
  }
  const bool baseline =
      r.signal == AlertSignal::kConversionDrop || r.signal == AlertSignal::kErrorSpike;
  if (baseline) {
    need(r.baseline_ms > r.window_ms, "needs a baseline longer than its window");
  } else {
    need(!given.count("baseline"), "takes no baseline (conversion_drop and error_spike only)");
  }
  if (r.signal == AlertSignal::kErrorSpike) {
    need(!r.has_above && !r.has_below, "takes sigma, not above/below");
    need(r.sigma > 0, "needs sigma > 0");
    if (!given.count("min_events")) r.min_events = 10;  // the minimum-traffic guard
  } else {
    need(!given.count("sigma"), "takes no sigma (error_spike only)");
    need(r.has_above != r.has_below, "needs exactly one of above or below");
  }
  if (IsRatio(r.signal)) {
    const double t = r.has_above ? r.above : r.below;
    need(t >= 0 && t <= 1 + (r.signal == AlertSignal::kPoolUsage ? 1e9 : 0),
         "is a ratio: its threshold must be between 0 and 1");
  }
}

AlertRule ParseRule(const YAML::Node& node, const std::string& key) {
  AlertRule r;
  std::set<std::string> given;
  const auto mark = [&](const char* name, FieldParser p) {
    return std::pair<std::string_view, FieldParser>(
        name, [&given, name, p](const YAML::Node& n, const std::string& k) {
          given.insert(name);
          p(n, k);
        });
  };
  YAML::Node above, below;
  ParseMap(
      node, key,
      {
          mark("name", [&](auto& n, auto& k) { r.name = ParseIdent(n, k, "an alert name"); }),
          mark("severity",
               [&](auto& n, auto& k) { r.severity = ParseEnum(n, k, kSeverities, SeverityName); }),
          mark("signal",
               [&](auto& n, auto& k) { r.signal = ParseEnum(n, k, kSignals, SignalName); }),
          mark("by",
               [&](auto& n, auto& k) {
                 ForEachItem(n, k, "a list of label names", [&](auto& v, auto& vk) {
                   r.by.push_back(ParseIdent(v, vk, "a label name"));
                 });
               }),
          mark("window",
               [&](auto& n, auto& k) { r.window_ms = ParseDurationMs(n, k, 1000, kMaxWindowMs); }),
          mark("baseline",
               [&](auto& n, auto& k) {
                 r.baseline_ms = ParseDurationMs(n, k, 1000, 4 * kMaxWindowMs);
               }),
          mark("for", [&](auto& n, auto& k) { r.for_ms = ParseDurationMs(n, k, 0, kMaxWindowMs); }),
          mark("above", [&](auto& n, auto&) { above = n; }),
          mark("below", [&](auto& n, auto&) { below = n; }),
          mark("sigma",
               [&](auto& n, auto& k) { r.sigma = ParseNumber(n, k, "must be a number > 0"); }),
          mark("min_events",
               [&](auto& n, auto& k) {
                 r.min_events = ParseUint(n, k, {0, 1000000000});
               }),
          mark("route", [&](auto& n, auto& k) { r.route = ParseRoutePattern(n, k); }),
          mark("service", [&](auto& n, auto& k) { r.service = ParseName(n, k); }),
          mark("method", [&](auto& n, auto& k) { r.method = ParseMethod(n, k); }),
          mark("kind",
               [&](auto& n, auto& k) {
                 r.kind = ParseString(n, k);
                 if (r.kind != "server" && r.kind != "client")
                   Fail(k, "must be server or client (got " + Describe(n) + ")");
               }),
          mark("labels",
               [&](auto& n, auto& k) {
                 if (!n.IsMap()) Fail(k, "must be a map of label names to values");
                 for (const auto& kv : n) {
                   const std::string lk = Join(k, kv.first.Scalar());
                   const std::string name = ParseIdent(kv.first, lk, "a label name");
                   if (name == "alertname" || name == "severity" || name == "state" ||
                       name == "signal")
                     Fail(lk, "is set by redtap (alertname, severity, signal, state)");
                   r.labels[name] = ParseName(kv.second, lk);
                 }
               }),
          mark("annotations",
               [&](auto& n, auto& k) {
                 Fields f;
                 for (const char* a : {"summary", "description", "runbook_url"}) {
                   f.emplace_back(a, [&r, a](const YAML::Node& v, const std::string& vk) {
                     r.annotations[a] = ParseString(v, vk);
                     if (r.annotations[a].size() > 4096) Fail(vk, "is longer than 4096 bytes");
                   });
                 }
                 ParseMap(n, k, f);
               }),
      });
  if (!given.count("name") || !given.count("signal") || !given.count("severity")) {
    Fail(key, "needs a name, a severity and a signal (got " + Describe(node) + ")");
  }
  if (given.count("above")) {
    r.has_above = true;
    r.above = ParseThreshold(above, Join(key, "above"), IsLatencySignal(r.signal));
  }
  if (given.count("below")) {
    r.has_below = true;
    r.below = ParseThreshold(below, Join(key, "below"), IsLatencySignal(r.signal));
  }
  CheckRule(r, key, given);
  return r;
}

AlertPool ParsePool(const YAML::Node& node, const std::string& key) {
  AlertPool p;
  ParseMap(node, key,
           {
               {"name", [&](auto& n, auto& k) { p.name = ParseLabelName(n, k); }},
               {"service", [&](auto& n, auto& k) { p.service = ParseName(n, k); }},
               {"server_port",
                [&](auto& n, auto& k) {
                  p.server_port = static_cast<uint16_t>(ParseUint(n, k, {1, 65535}));
                }},
               {"size", Uint32Field(p.size, {1, 1000000})},
           });
  if (p.name.empty() || p.service.empty() || !p.server_port || !p.size) {
    Fail(key, "needs a name, a service, a server_port and a size (got " + Describe(node) + ")");
  }
  return p;
}

AlertChannel ParseChannel(const YAML::Node& node, const std::string& key) {
  AlertChannel c;
  bool typed = false;
  ParseMap(
      node, key,
      {
          {"name", [&](auto& n, auto& k) { c.name = ParseLabelName(n, k); }},
          {"type",
           [&](auto& n, auto& k) {
             c.type = ParseEnum(n, k, kChannelTypes, ChannelTypeName);
             typed = true;
           }},
          {"url", [&](auto& n, auto& k) { c.url = ParseUrl(n, k); }},
          {"url_file", [&](auto& n, auto& k) { c.url_file = ParsePath(n, k); }},
          {"routing_key_file", [&](auto& n, auto& k) { c.routing_key_file = ParsePath(n, k); }},
          {"smtp",
           [&](auto& n, auto& k) {
             c.smtp = ParseString(n, k);
             ValidateListen(c.smtp, k);
           }},
          {"from", [&](auto& n, auto& k) { c.from = ParseAddress(n, k); }},
          {"to",
           [&](auto& n, auto& k) {
             ForEachItem(n, k, "a list of e-mail addresses",
                         [&](auto& v, auto& vk) { c.to.push_back(ParseAddress(v, vk)); });
           }},
      });
  if (c.name.empty() || !typed) Fail(key, "needs a name and a type (got " + Describe(node) + ")");
  const std::string type = ChannelTypeName(c.type);
  const auto only = [&](std::initializer_list<std::pair<const char*, bool>> keys) {
    for (const auto& [k, set] : keys) {
      if (set) Fail(Join(key, k), "is not a key of a " + type + " channel");
    }
  };
  switch (c.type) {
    case ChannelType::kPagerDuty:
      only({{"url_file", !c.url_file.empty()},
            {"smtp", !c.smtp.empty()},
            {"from", !c.from.empty()},
            {"to", !c.to.empty()}});
      if (c.routing_key_file.empty())
        Fail(key, "a pagerduty channel needs routing_key_file (the integration key's file)");
      if (c.url.empty()) c.url = kPagerDutyUrl;
      break;
    case ChannelType::kSlack:
    case ChannelType::kWebhook:
      only({{"routing_key_file", !c.routing_key_file.empty()},
            {"smtp", !c.smtp.empty()},
            {"from", !c.from.empty()},
            {"to", !c.to.empty()}});
      if (c.url.empty() == c.url_file.empty())
        Fail(key, "a " + type + " channel needs exactly one of url and url_file");
      break;
    case ChannelType::kAlertmanager:
      only({{"routing_key_file", !c.routing_key_file.empty()},
            {"url_file", !c.url_file.empty()},
            {"smtp", !c.smtp.empty()},
            {"from", !c.from.empty()},
            {"to", !c.to.empty()}});
      if (c.url.empty()) Fail(key, "an alertmanager channel needs url (http://HOST:9093)");
      break;
    case ChannelType::kEmail:
      only({{"routing_key_file", !c.routing_key_file.empty()},
            {"url", !c.url.empty()},
            {"url_file", !c.url_file.empty()}});
      if (c.smtp.empty() || c.from.empty() || c.to.empty())
        Fail(key, "an email channel needs smtp, from and to");
      break;
  }
  return c;
}

}  // namespace

void ParseAlerts(const YAML::Node& node, const std::string& prefix, AlertsConfig& a) {
  YAML::Node routes;
  bool has_routes = false;
  ParseMap(node, prefix,
           {
               {"evaluation_interval",
                [&](auto& n, auto& k) {
                  a.evaluation_interval_ms = ParseDurationMs(n, k, 1000, 3600000);
                }},
               {"repeat_interval",
                [&](auto& n, auto& k) {
                  a.repeat_interval_ms = ParseDurationMs(n, k, 60000, kMaxWindowMs);
                }},
               {"rules",
                [&](auto& n, auto& k) {
                  a.rules.clear();
                  ForEachItem(n, k, "a list of rules",
                              [&](auto& v, auto& vk) { a.rules.push_back(ParseRule(v, vk)); });
                }},
               {"pools",
                [&](auto& n, auto& k) {
                  a.pools.clear();
                  ForEachItem(n, k, "a list of pools",
                              [&](auto& v, auto& vk) { a.pools.push_back(ParsePool(v, vk)); });
                }},
               {"channels",
                [&](auto& n, auto& k) {
                  a.channels.clear();
                  ForEachItem(n, k, "a list of channels", [&](auto& v, auto& vk) {
                    a.channels.push_back(ParseChannel(v, vk));
                  });
                }},
               {"routes",
                [&](auto& n, auto&) {
                  routes = n;
                  has_routes = true;
                }},
           });
  const auto unique = [&](const char* list, auto& items) {
    std::set<std::string> seen;
    for (size_t i = 0; i < items.size(); i++) {
      if (!seen.insert(items[i].name).second) {
        Fail(Join(prefix, list) + "[" + std::to_string(i) + "].name",
             "\"" + items[i].name + "\" is used twice");
      }
    }
  };
  unique("rules", a.rules);
  unique("pools", a.pools);
  unique("channels", a.channels);
  if (has_routes) {
    for (auto& [severity, names] : a.routes) names.clear();
    const std::string rk = Join(prefix, "routes");
    Fields f;
    for (AlertSeverity s : kSeverities) {
      f.emplace_back(SeverityName(s), [&a, s](const YAML::Node& n, const std::string& k) {
        auto& names = a.routes[s];
        ForEachItem(n, k, "a list of channel names", [&](auto& v, auto& vk) {
          std::string name = ParseLabelName(v, vk);
          bool known = std::any_of(a.channels.begin(), a.channels.end(),
                                   [&](const AlertChannel& c) { return c.name == name; });
          if (!known) Fail(vk, "names no channel of alerts.channels (got \"" + name + "\")");
          names.push_back(std::move(name));
        });
      });
    }
    ParseMap(routes, rk, f);
  }
  for (size_t i = 0; i < a.rules.size(); i++) {
    if (a.rules[i].signal == AlertSignal::kPoolUsage && a.pools.empty()) {
      Fail(Join(prefix, "rules") + "[" + std::to_string(i) + "]",
           "signal pool_usage needs alerts.pools");
    }
  }
}

void CheckAlertsAgainstConfig(const Config& c) {
  for (size_t i = 0; i < c.alerts.rules.size(); i++) {
    const AlertRule& r = c.alerts.rules[i];
    const std::string key = "alerts.rules[" + std::to_string(i) + "]";
    const bool funnel =
        r.signal == AlertSignal::kCartAbandonment || r.signal == AlertSignal::kConversionDrop;
    if (funnel && c.ecommerce.funnel.steps.size() < 2) {
      Fail(key, std::string("signal ") + SignalName(r.signal) +
                    " needs ecommerce.funnel with at least two steps");
    }
    if (r.signal == AlertSignal::kPaymentSuccessRate && c.ecommerce.payments.endpoints.empty() &&
        c.ecommerce.payments.gateways.empty()) {
      Fail(key, "signal payment_success_rate needs ecommerce.payments (endpoints or gateways)");
    }
  }
}

}  // namespace detail
}  // namespace redtap::config

// SPDX-License-Identifier: Apache-2.0
#include "userspace/alerts/alert_event.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "userspace/export/event_builder.h"

namespace redtap::alerts {

std::string Describe(const Alert& a) {
  auto s = a.annotations.find("summary");
  if (s != a.annotations.end() && !s->second.empty()) return s->second;
  char value[64];
  std::snprintf(value, sizeof(value), "%.6g", a.value);
  std::string out = std::string(config::SignalName(a.rule->signal)) + " = " + value;
  std::string labels;
  for (const auto& [k, v] : a.labels) {
    if (k == "alertname" || k == "severity") continue;
    labels += (labels.empty() ? "" : ", ") + k + "=\"" + v + "\"";
  }
  if (!labels.empty()) out += " {" + labels + "}";
  return out;
}

std::string FormatAlertEvent(const Alert& a) {
  const int64_t at_ms = a.state == AlertState::kResolved ? a.ended_at_ms
                        : a.fired_at_ms                  ? a.fired_at_ms
                                                         : a.active_at_ms;
  const char* level = "INFO";
  if (a.state == AlertState::kFiring) {
    level = a.rule->severity == config::AlertSeverity::kCritical  ? "ERROR"
            : a.rule->severity == config::AlertSeverity::kWarning ? "WARN"
                                                                  : "INFO";
  }
  // The builder keeps views of its keys: these outlive it.
  std::vector<std::pair<std::string, const std::string*>> members;
  for (const auto& [k, v] : a.labels) {
    if (k != "alertname" && k != "severity") members.emplace_back("alert.labels." + k, &v);
  }
  for (const auto& [k, v] : a.annotations) members.emplace_back("alert." + k, &v);
  std::string out;
  exporter::EventBuilder b(out, at_ms * 1'000'000, level, "alert");
  b.Str("message", a.labels.at("alertname") + " " + StateName(a.state) + ": " + Describe(a));
  b.Str("alert.name", a.labels.at("alertname"));
  b.Str("alert.severity", config::SeverityName(a.rule->severity));
  b.Str("alert.state", StateName(a.state));
  b.Double("alert.value", a.value);
  b.Str("alert.active_at", FormatTimeMs(a.active_at_ms));
  b.Str("alert.fingerprint", a.fingerprint);
  for (const auto& [k, v] : members) b.Str(k, *v);
  b.Close();
  return out;
}

}  // namespace redtap::alerts

// SPDX-License-Identifier: Apache-2.0
#include "userspace/alerts/payloads.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "userspace/alerts/alert_event.h"

namespace redtap::alerts {
namespace {

using Json = nlohmann::ordered_json;

bool Resolved(const Alert& a) { return a.state == AlertState::kResolved; }

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Json Details(const Alert& a) {
  Json d;
  d["value"] = a.value;
  d["labels"] = a.labels;
  for (const auto& [k, v] : a.annotations) d[k] = v;
  d["active_at"] = FormatTimeMs(a.active_at_ms);
  return d;
}

const char* Status(const Alert& a) { return Resolved(a) ? "resolved" : "firing"; }

std::string Rfc5322Date(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

/// Header values are one line: CR and LF become spaces.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return s;
}

}  // namespace

std::string Headline(const Alert& a) {
  std::string s = Resolved(a) ? "[RESOLVED] " : "[FIRING] ";
  s += a.labels.at("alertname") + " (" + config::SeverityName(a.rule->severity) +
       "): " + Describe(a);
  return s;
}

std::string PagerDutyBody(const Alert& a, const std::string& routing_key,
                          const std::string& source) {
  Json j;
  j["routing_key"] = routing_key;
  j["event_action"] = Resolved(a) ? "resolve" : "trigger";
  j["dedup_key"] = a.fingerprint;
  if (!Resolved(a)) {
    Json p;
    p["summary"] = OneLine(Headline(a)).substr(0, 1024);
    p["severity"] = config::SeverityName(a.rule->severity);  // critical, warning, info
    p["source"] = source;
    p["timestamp"] = FormatTimeMs(a.fired_at_ms ? a.fired_at_ms : a.active_at_ms);
    p["component"] = "redtap";
    p["custom_details"] = Details(a);
    j["payload"] = std::move(p);
    auto rb = a.annotations.find("runbook_url");
    if (rb != a.annotations.end())
      j["links"] = Json::array({{{"href", rb->second}, {"text", "runbook"}}});
  }
  return Dump(j);
}

std::string SlackBody(const Alert& a) {
  Json att;
  att["color"] = Resolved(a)                                            ? "good"
                 : a.rule->severity == config::AlertSeverity::kCritical ? "danger"
                                                                        : "warning";
  att["title"] = Headline(a);
  std::string text;
  for (const auto& [k, v] : a.labels) text += k + "=" + v + "\n";
  auto d = a.annotations.find("description");
  if (d != a.annotations.end()) text += d->second + "\n";
  auto rb = a.annotations.find("runbook_url");
  if (rb != a.annotations.end()) text += "runbook: " + rb->second + "\n";
  att["text"] = text;
  Json j;
  j["text"] = Headline(a);
  j["attachments"] = Json::array({att});
  return Dump(j);
}

std::string WebhookBody(const Alert& a, const std::string& receiver) {
  Json alert;
  alert["status"] = Status(a);
  alert["labels"] = a.labels;
  alert["annotations"] = a.annotations;
  alert["startsAt"] = FormatTimeMs(a.active_at_ms);
  alert["endsAt"] = Resolved(a) ? FormatTimeMs(a.ended_at_ms) : "0001-01-01T00:00:00Z";
  alert["generatorURL"] = "";
  alert["fingerprint"] = a.fingerprint;
  Json j;
  j["version"] = "4";
  j["groupKey"] = "{}:{alertname=\"" + a.labels.at("alertname") + "\"}";
  j["truncatedAlerts"] = 0;
  j["status"] = Status(a);
  j["receiver"] = receiver;
  j["groupLabels"] = {{"alertname", a.labels.at("alertname")}};
  j["commonLabels"] = a.labels;
  j["commonAnnotations"] = a.annotations;
  j["externalURL"] = "";
  j["alerts"] = Json::array({alert});
  return Dump(j);
}

std::string AlertmanagerBody(const std::vector<Alert>& alerts, int64_t ends_at_ms) {
  Json arr = Json::array();
  for (const Alert& a : alerts) {
    Json j;
    j["labels"] = a.labels;
    j["annotations"] = a.annotations;
    j["startsAt"] = FormatTimeMs(a.active_at_ms);
    j["endsAt"] = FormatTimeMs(Resolved(a) ? a.ended_at_ms : ends_at_ms);
    j["generatorURL"] = "";
    arr.push_back(std::move(j));
  }
  return Dump(arr);
}

std::string EmailMessage(const Alert& a, const std::string& from,
                         const std::vector<std::string>& to, int64_t now_ms,
                         const std::string& host) {
  std::string m;
  m += "Date: " + Rfc5322Date(now_ms) + "\r\n";
  m += "From: " + from + "\r\n";
  std::string rcpt;
  for (const auto& t : to) rcpt += (rcpt.empty() ? "" : ", ") + t;
  m += "To: " + rcpt + "\r\n";
  m += "Message-ID: <" + a.fingerprint + "." + std::to_string(now_ms) + "@" + OneLine(host) +
       ">\r\n";
  m += "Subject: " + OneLine(Headline(a)) + "\r\n";
  m += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
  std::string body = Headline(a) + "\n\n";
  body += std::string("state: ") + Status(a) + "\nvalue: " + std::to_string(a.value) + "\n";
  body += "active since: " + FormatTimeMs(a.active_at_ms) + "\n";
  if (Resolved(a)) body += "resolved at: " + FormatTimeMs(a.ended_at_ms) + "\n";
  body += "\nlabels:\n";
  for (const auto& [k, v] : a.labels) body += "  " + k + " = " + v + "\n";
  for (const auto& [k, v] : a.annotations) body += k + ": " + v + "\n";
  body += "\n-- redtap on " + host + "\n";
  // CRLF line ends (libcurl dot-stuffs lines that start with '.').
  for (char c : body) {
    if (c == '\n') {
      m += "\r\n";
    } else if (c != '\r') {
      m += c;
    }
  }
  return m;
}

}  // namespace redtap::alerts

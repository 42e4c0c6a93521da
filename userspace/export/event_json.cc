// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/event_json.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string_view>

namespace redtap::exporter {
namespace {

// User agents are free text from the wire: keep events bounded.
constexpr size_t kMaxUserAgentBytes = 512;

bool IsSchemeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

const char* LevelOf(const http::Transaction& t) {
  if (!t.has_response) return "ERROR";
  if (t.response.status_code >= 500 && t.response.status_code <= 599) return "ERROR";
  if (t.response.status_code >= 400 && t.response.status_code <= 499) return "WARN";
  return "INFO";
}

std::string FormatDurationMs(double ms) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), ms >= 1.0 ? "%.1f ms" : "%.3f ms", ms);
  return buf;
}

}  // namespace

std::string FormatRfc3339Micros(int64_t unix_ns) {
  constexpr int64_t kNsPerSec = 1'000'000'000;
  constexpr int64_t kSecPerDay = 86'400;
  int64_t secs = unix_ns / kNsPerSec;
  int64_t ns = unix_ns % kNsPerSec;
  if (ns < 0) {
    ns += kNsPerSec;
    --secs;
  }
  int64_t days = secs / kSecPerDay;
  int64_t sec_of_day = secs % kSecPerDay;
  if (sec_of_day < 0) {
    sec_of_day += kSecPerDay;
    --days;
  }
  const std::chrono::year_month_day ymd{
      std::chrono::sys_days{std::chrono::days{static_cast<int>(days)}}};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(sec_of_day / 3600),
                static_cast<int>(sec_of_day / 60 % 60), static_cast<int>(sec_of_day % 60),
                static_cast<int>(ns / 1000));
  return buf;
}

TargetParts SplitTarget(std::string_view target) {
  TargetParts parts;
  if (const size_t hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  std::string_view path = target;
  if (const size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    parts.query = target.substr(q + 1);
    parts.has_query = true;
  }
  // Absolute-form: scheme "://" authority [path].
  if (!path.empty() && path[0] != '/') {
    const size_t sep = path.find("://");
    bool scheme_ok = sep != std::string_view::npos && sep > 0;
    for (size_t i = 0; scheme_ok && i < sep; ++i) scheme_ok = IsSchemeChar(path[i]);
    if (scheme_ok) {
      const size_t slash = path.find('/', sep + 3);
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
  }
  parts.path = path;
  return parts;
}

std::string FormatHttpEvent(const http::Transaction& t, const ConnMeta& meta,
                            const std::string& service_name, int64_t ktime_to_realtime_offset_ns,
                            const Redactor& r, const EventExtras* extras) noexcept {
  try {
    const http::Request& req = t.request;
    const TargetParts target = SplitTarget(req.target);
    const std::string path = r.RedactPath(target.path);
    const double duration_ms =
        std::round(static_cast<double>(t.DurationNs()) / 1e3) / 1e3;  // µs precision
    const std::string method = req.method.empty() ? "-" : req.method;

    std::string message = method + " " + path;
    if (t.has_response) {
      // Appended piecewise: `"lit" + std::string&&` trips a GCC 12 -Wrestrict false positive.
      message += ' ';
      message += std::to_string(t.response.status_code);
      message += ' ';
      message += FormatDurationMs(duration_ms);
    } else {
      message += ": no response (connection closed)";
    }

    nlohmann::ordered_json j;
    j["timestamp"] =
        FormatRfc3339Micros(static_cast<int64_t>(req.first_byte_ts) + ktime_to_realtime_offset_ns);
    j["level"] = LevelOf(t);
    j["type"] = "http";
    j["kind"] = meta.role == Role::kClient ? "client" : "server";
    j["message"] = std::move(message);
    if (t.has_response) j["duration_ms"] = duration_ms;
    j["service.name"] = service_name;
    j["process.pid"] = meta.pid;
    j["process.command"] = meta.command;
    j["http.request.method"] = req.method;
    j["url.path"] = path;
    if (target.has_query && !target.query.empty()) j["url.query"] = r.RedactQuery(target.query);
    if (t.has_response) j["http.response.status_code"] = t.response.status_code;
    j["network.protocol.version"] = "1." + std::to_string(req.version_minor);
    // A client call is named by the host it asked for (Host header / absolute URI: an
    // outbound call to api.stripe.com says so); the peer's IP stays in network.peer.address.
    std::string_view host = http::RequestHost(req);
    if (meta.role == Role::kClient && !host.empty()) {
      j["server.address"] = std::string(host);
      j["url.domain"] = std::string(host);
      j["network.peer.address"] = meta.server().address;
    } else {
      j["server.address"] = meta.server().address;
    }
    j["server.port"] = meta.server().port;
    j["client.address"] = meta.client().address;
    j["client.port"] = meta.client().port;
    j["http.request.body.size"] = req.body_size;
    if (t.has_response) j["http.response.body.size"] = t.response.body_size;
    if (const std::string_view ua = req.Find("User-Agent"); !ua.empty()) {
      j["user_agent.original"] = std::string(ua.substr(0, kMaxUserAgentBytes));
    }
    if (meta.tls) j["tls"] = true;
    if (extras) {
      for (const auto& a : *extras) {
        if (a.is_number)
          j[a.key] = a.num;
        else
          j[a.key] = a.str;
      }
    }
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  } catch (...) {
    return R"({"type":"http","level":"ERROR","message":"redtap: event formatting failed"})";
  }
}

}  // namespace redtap::exporter

// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/event_json.h"

#include <cmath>
#include <cstdint>
#include <string_view>

#include "userspace/export/event_builder.h"

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

}  // namespace

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

namespace {}  // namespace

std::string FormatHttpEvent(const http::Transaction& t, const ConnMeta& meta,
                            std::string_view service_name, std::string_view route,
                            int64_t ktime_to_realtime_offset_ns, const Redactor& r,
                            const EventExtras* extras) noexcept {
  std::string out;
  FormatHttpEventTo(out, t, meta, service_name, route, ktime_to_realtime_offset_ns, r, extras);
  return out;
}

void FormatHttpEventTo(std::string& out, const http::Transaction& t, const ConnMeta& meta,
                       std::string_view service_name, std::string_view route,
                       int64_t ktime_to_realtime_offset_ns, const Redactor& r,
                       const EventExtras* extras) noexcept {
  out.clear();
  try {
    const http::Request& req = t.request;
    const TargetParts target = SplitTarget(req.target);
    const std::string path = r.RedactPath(target.path);
    const double duration_ms =
        std::round(static_cast<double>(t.DurationNs()) / 1e3) / 1e3;  // µs precision
    const std::string_view method = req.method.empty() ? std::string_view("-") : req.method;

    // A typical line is 550-650 bytes: one allocation (none when `out` is reused).
    out.reserve(768 + path.size() + req.target.size() + meta.command.size() + service_name.size() +
                route.size());
    EventBuilder w(out, static_cast<int64_t>(req.first_byte_ts) + ktime_to_realtime_offset_ns,
                   LevelOf(t), "http");
    w.Str("kind", meta.role == Role::kClient ? "client" : "server");
    {
      // The message is built in place: method, path, then status and duration.
      std::string message;
      message.reserve(method.size() + path.size() + 40);
      message.append(method).push_back(' ');
      message.append(path);
      if (t.has_response) {
        message.push_back(' ');
        AppendJsonInt(message, t.response.status_code);
        message.push_back(' ');
        AppendDurationMs(message, duration_ms);
      } else {
        message.append(": no response (connection closed)");
      }
      w.Str("message", message);
    }
    if (t.has_response) w.Double("duration_ms", duration_ms);
    w.Process(service_name, meta.pid, meta.command, /*always=*/true);
    w.Str("http.request.method", req.method);
    // Answered bytes that were not a request: a fixed route, never the bytes.
    if (!req.unparsed) w.Str("url.path", path);
    if (target.has_query && !target.query.empty()) w.Str("url.query", r.RedactQuery(target.query));
    if (!route.empty()) w.Str("http.route", route);
    if (t.has_response) w.Int("http.response.status_code", t.response.status_code);
    if (!req.unparsed) {
      w.Key("network.protocol.version");
      std::string v = req.http09 ? "0." : "1.";
      AppendJsonInt(v, req.version_minor);
      AppendJsonString(out, v);
      w.End();
    }
    // A client call is named by the host it asked for (Host header / absolute URI: an
    // outbound call to api.stripe.com says so); the peer's IP stays in network.peer.address.
    const std::string_view host = http::RequestHost(req);
    if (meta.role == Role::kClient && !host.empty()) {
      w.Str("server.address", host);
      w.Str("url.domain", host);
      w.Str("network.peer.address", meta.server().address);
    } else {
      w.Str("server.address", meta.server().address);
    }
    w.Int("server.port", meta.server().port);
    w.Str("client.address", meta.client().address);
    w.Int("client.port", meta.client().port);
    w.Uint("http.request.body.size", req.body_size);
    if (t.has_response) w.Uint("http.response.body.size", t.response.body_size);
    if (const std::string_view ua = req.Find("User-Agent"); !ua.empty()) {
      // The only header exported: never with a card number in it.
      const std::string_view v = ua.substr(0, kMaxUserAgentBytes);
      if (HasCardNumber(v))
        w.Str("user_agent.original", MaskCardNumbers(v));
      else
        w.Str("user_agent.original", v);
    }
    if (meta.tls) w.Bool("tls", true);
    if (extras) w.Extras(*extras);
    w.Close();
  } catch (...) {
    try {
      out.assign(R"({"type":"http","level":"ERROR","message":"redtap: event formatting failed"})");
    } catch (...) {
      out.clear();
    }
  }
}

}  // namespace redtap::exporter

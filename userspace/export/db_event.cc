// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/db_event.h"

#include <cmath>

#include "userspace/export/redact.h"

namespace redtap::exporter {
namespace {

// A second line of defence: the parsers never copy a literal, but a card-like digit run in
// an identifier or a folded statement is masked anyway.
std::string_view Safe(std::string_view v, std::string& scratch) {
  if (!HasCardNumber(v)) return v;
  scratch = MaskCardNumbers(v);
  return scratch;
}

}  // namespace

std::string FormatDbEvent(const db::Operation& op, const ConnMeta& meta,
                          std::string_view service_name, int64_t ktime_to_realtime_offset_ns,
                          uint64_t slow_threshold_ns, const EventExtras* extras) noexcept {
  try {
    const double duration_ms = std::round(static_cast<double>(op.DurationNs()) / 1e3) / 1e3;
    const bool failed = !op.has_response || !op.status_code.empty();
    const bool slow = op.has_response && op.DurationNs() >= slow_threshold_ns;
    const char* level = failed ? "ERROR" : slow ? "WARN" : "INFO";
    // One scratch string per masked field: a view returned by Safe() lives in its scratch.
    std::string summary_buf, op_buf, coll_buf, text_buf;
    const std::string_view summary = Safe(
        op.query_summary.empty() ? std::string_view(op.operation) : op.query_summary, summary_buf);

    std::string out;
    out.reserve(384 + op.query_text.size() + meta.command.size() + service_name.size());
    EventBuilder w(out, static_cast<int64_t>(op.request_ts) + ktime_to_realtime_offset_ns, level,
                   "db");
    {
      std::string message(db::SystemName(op.system));
      message.push_back(' ');
      message.append(summary);
      if (!op.has_response) {
        message.append(": no reply seen (connection closed, or lost to a capture gap)");
      } else {
        if (!op.status_code.empty()) message.append(": error ").append(op.status_code);
        message.push_back(' ');
        AppendDurationMs(message, duration_ms);
        if (slow) message.append(" (slow)");
      }
      w.Str("message", message);
    }
    if (op.has_response) w.Double("duration_ms", duration_ms);
    w.Process(service_name, meta.pid, meta.command, /*always=*/true);
    w.Str("db.system.name", db::SystemName(op.system));
    w.Str("db.operation.name", Safe(op.operation, op_buf));
    if (!op.collection.empty()) w.Str("db.collection.name", Safe(op.collection, coll_buf));
    w.Str("db.query.summary", summary);
    if (!op.query_text.empty()) w.Str("db.query.text", Safe(op.query_text, text_buf));
    if (!op.status_code.empty()) {
      w.Str("db.response.status_code", op.status_code);
      w.Str("error.type", op.error_type);
    }
    if (op.prepared) w.Bool("db.prepared", true);
    w.Str("server.address", meta.server().address);
    w.Int("server.port", meta.server().port);
    w.Str("client.address", meta.client().address);
    w.Int("client.port", meta.client().port);
    if (meta.tls) w.Bool("tls", true);
    if (extras) w.Extras(*extras);
    w.Close();
    return out;
  } catch (...) {
    return R"({"type":"db","level":"ERROR","message":"redtap: event formatting failed"})";
  }
}

}  // namespace redtap::exporter

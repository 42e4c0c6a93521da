// SPDX-License-Identifier: Apache-2.0
// One HTTP transaction as one flat JSON object (OpenTelemetry attribute names), the line
// format of the NDJSON event stream. The schema is documented in EVENTS.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/http/types.h"
#include "userspace/capture/conn_meta.h"
#include "userspace/export/event_builder.h"
#include "userspace/export/redact.h"

namespace redtap::exporter {

/// Formats `t` as one JSON object, without a trailing newline: the common fields
/// (EventBuilder) then the http ones. Kernel monotonic timestamps become wall-clock time by
/// adding `ktime_to_realtime_offset_ns`. The URL path and query are redacted with `r`; no
/// header other than User-Agent is ever emitted. `route` is the enricher's http.route ("" to
/// leave it out). Bytes that are not valid UTF-8 are replaced with U+FFFD. Never throws.
std::string FormatHttpEvent(const http::Transaction& t, const ConnMeta& meta,
                            std::string_view service_name, std::string_view route,
                            int64_t ktime_to_realtime_offset_ns, const Redactor& r,
                            const EventExtras* extras = nullptr) noexcept;
/// The same line into `out` (cleared first; its capacity is reused: no allocation per event
/// on a hot path that keeps one string). `out` is empty only when even the error line could
/// not be allocated.
void FormatHttpEventTo(std::string& out, const http::Transaction& t, const ConnMeta& meta,
                       std::string_view service_name, std::string_view route,
                       int64_t ktime_to_realtime_offset_ns, const Redactor& r,
                       const EventExtras* extras = nullptr) noexcept;

/// Splits a request-target into its path and query (without '?'); `has_query` tells whether
/// a '?' was present. Absolute-form targets ("http://h/p?q") give their path ("/p", or "/"
/// when empty); "*" and authority-form targets ("host:443") are returned as the path; a
/// fragment ("#...") is dropped.
struct TargetParts {
  std::string_view path;
  std::string_view query;
  bool has_query = false;
};
TargetParts SplitTarget(std::string_view target);

}  // namespace redtap::exporter

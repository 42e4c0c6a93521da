// SPDX-License-Identifier: Apache-2.0
// One HTTP transaction as one flat JSON object (OpenTelemetry attribute names), the line
// format of the NDJSON event stream. The schema is documented in EVENTS.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "parsers/http/types.h"
#include "userspace/capture/conn_meta.h"
#include "userspace/export/redact.h"

namespace redtap::exporter {

/// Extra attributes appended to an event (enrichment: tenant, e-commerce fields, trace ids).
/// Keys are emitted as given, after the standard ones; values are strings or numbers.
struct EventAttr {
  std::string key;
  std::string str;      // used when !is_number
  double num = 0;
  bool is_number = false;
};
using EventExtras = std::vector<EventAttr>;

/// Formats `t` as one JSON object, without a trailing newline. Kernel monotonic timestamps
/// become wall-clock time by adding `ktime_to_realtime_offset_ns`. The URL path and query are
/// redacted with `r`; no header other than User-Agent is ever emitted. Bytes that are not
/// valid UTF-8 are replaced with U+FFFD. Never throws.
std::string FormatHttpEvent(const http::Transaction& t, const ConnMeta& meta,
                            const std::string& service_name, int64_t ktime_to_realtime_offset_ns,
                            const Redactor& r, const EventExtras* extras = nullptr) noexcept;

/// RFC 3339 UTC with microseconds ("2026-11-25T18:46:51.123456Z") of a time in ns since the
/// Unix epoch (negative values are before 1970).
std::string FormatRfc3339Micros(int64_t unix_ns);

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

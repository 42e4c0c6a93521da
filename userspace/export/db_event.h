// SPDX-License-Identifier: Apache-2.0
// One database operation as one flat JSON object, type "db" (OpenTelemetry database
// attribute names). The schema is documented in EVENTS.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "parsers/db/types.h"
#include "userspace/capture/conn_meta.h"
#include "userspace/export/event_builder.h"

namespace redtap::exporter {

/// Formats `op` without a trailing newline. Level: ERROR without a reply or with an error
/// reply, WARN when at least `slow_threshold_ns` long, else INFO. The statement text is the
/// parser's (literals already replaced by '?'); card-like digit runs are masked again here
/// as a second line of defence. Never throws.
std::string FormatDbEvent(const db::Operation& op, const ConnMeta& meta,
                          std::string_view service_name, int64_t ktime_to_realtime_offset_ns,
                          uint64_t slow_threshold_ns, const EventExtras* extras = nullptr) noexcept;

}  // namespace redtap::exporter

// SPDX-License-Identifier: Apache-2.0
// Redis (RESP2 and RESP3): what the Redis parser exposes beyond db::Parser. The parser itself
// is made by MakeRedisParser (types.h).
#pragma once

#include <cstdint>
#include <string_view>

#include "parsers/db/types.h"

namespace redtap::db {

/// Redis-only counters: ConnStats has no field for them.
struct RedisCounters {
  /// Server messages that are not replies, skipped: RESP3 pushes, RESP2 pub/sub messages
  /// ("message", "pmessage", "smessage"), MONITOR lines, (un)subscribe confirmations no
  /// command waits for.
  uint64_t pushes = 0;
  /// Commands sent while CLIENT REPLY OFF/SKIP silenced the server: reported with
  /// has_response = false (not lost: no reply was ever coming).
  uint64_t unanswered = 0;
};

/// The Redis counters of `p`; nullptr when `p` is not a Redis parser.
const RedisCounters* RedisCountersOf(const Parser& p) noexcept;

/// True when `data` (the start of a client record) starts like a Redis command: a RESP
/// array of bulk strings ("*<n>\r\n$<len>") or an inline command whose first word is a known
/// Redis command name followed by a blank or the line end.
bool LooksLikeRedisCommandStart(std::string_view data) noexcept;
/// True when `data` (the start of a server record) starts like a RESP2/RESP3 value whose
/// visible header is well formed.
bool LooksLikeRedisReplyStart(std::string_view data) noexcept;

}  // namespace redtap::db

// SPDX-License-Identifier: Apache-2.0
// Formatting shared by every module: addresses and RFC 3339 timestamps.
#pragma once

#include <cstdint>
#include <string>

namespace redtap {

/// A 16-byte address of `family` (AF_INET: the first 4 bytes). IPv4-mapped IPv6 addresses
/// (::ffff:a.b.c.d) are printed as IPv4, as the kernel's dual-stack sockets report them.
std::string FormatAddress(int family, const uint8_t* addr16);

/// RFC 3339 UTC with microseconds ("2026-11-25T18:46:51.123456Z") of a time in ns since the
/// Unix epoch (negative values are before 1970).
std::string FormatRfc3339Micros(int64_t unix_ns);

/// Appends FormatRfc3339Micros(unix_ns) to `out`, reusing the date and time of day of the
/// previous call on this thread when only the microseconds changed (events come in order).
void AppendRfc3339Micros(std::string& out, int64_t unix_ns);

}  // namespace redtap

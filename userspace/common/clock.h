// SPDX-License-Identifier: Apache-2.0
// Kernel timestamps (bpf_ktime_get_ns: CLOCK_MONOTONIC) to wall clock, converted once.
#pragma once

#include <time.h>

#include <cstdint>

namespace redtap {

inline int64_t ClockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// realtime - monotonic, in ns: add it to a kernel timestamp to get Unix time.
inline int64_t MonotonicToRealtimeOffsetNs() {
  // Bracket the realtime read between two monotonic reads and take their midpoint.
  int64_t m1 = ClockNs(CLOCK_MONOTONIC);
  int64_t r = ClockNs(CLOCK_REALTIME);
  int64_t m2 = ClockNs(CLOCK_MONOTONIC);
  return r - (m1 + (m2 - m1) / 2);
}

}  // namespace redtap

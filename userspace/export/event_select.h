// SPDX-License-Identifier: Apache-2.0
// Which transactions and database operations become events (events.select), as a logging
// pipeline would choose: all; only errors; only slow ones; or errors and slow ones plus a
// sample of the rest. The metrics always count everything; this only thins the log.
#pragma once

#include <atomic>
#include <cstdint>

#include "userspace/config/config.h"

namespace redtap::exporter {

class EventSelector {
 public:
  explicit EventSelector(const config::EventsConfig& c)
      : select_(c.select),
        // keep when the hashed sequence number is below ratio * 2^64 (ratio 1: always)
        keep_below_(c.sample_ratio >= 1.0 ? UINT64_MAX
                                          : static_cast<uint64_t>(c.sample_ratio * 0x1p64)),
        keep_all_sampled_(c.sample_ratio >= 1.0) {}

  /// Whether an event is written; one not written is counted in sampled_out(). `error`: no
  /// answer, an HTTP 5xx, a database error; `slow`: at least its threshold.
  bool Keep(bool error, bool slow) noexcept {
    using S = config::EventsConfig::Select;
    bool keep = true;
    switch (select_) {
      case S::kAll:
        break;
      case S::kErrors:
        keep = error;
        break;
      case S::kSlow:
        keep = slow;
        break;
      case S::kSample:
        keep = error || slow || keep_all_sampled_ || Mix(seq_++) < keep_below_;
        break;
    }
    if (!keep) sampled_out_.fetch_add(1, std::memory_order_relaxed);
    return keep;
  }

  uint64_t sampled_out() const { return sampled_out_.load(std::memory_order_relaxed); }

 private:
  // splitmix64's finaliser: a sequence number spread over 64 bits (deterministic, no state
  // shared between threads beyond the counter).
  static uint64_t Mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }

  config::EventsConfig::Select select_;
  uint64_t keep_below_;
  bool keep_all_sampled_;
  uint64_t seq_ = 0;
  std::atomic<uint64_t> sampled_out_{0};
};

}  // namespace redtap::exporter

// SPDX-License-Identifier: Apache-2.0
// DDSketch (Masson, Rim, Lee, VLDB 2019): a mergeable quantile sketch with a relative-error
// guarantee. A value x > 0 falls in bin k = ceil(log_gamma(x)), gamma = (1 + a) / (1 - a); the
// bin's representative 2 gamma^k / (gamma + 1) is within a (relative) of every value in the
// bin, so any quantile is answered within a of the exact sample at that rank.
// Bins live in a dense "collapsing lowest" store: at most `max_bins` contiguous bins; when a
// new value would need more, the lowest bins merge into one (the low quantiles lose accuracy,
// the high ones, P95/P99, keep it). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace redtap::metrics {

class DDSketch {
 public:
  /// Values below this count as zero (their quantile is 0).
  static constexpr double kMinIndexable = 1e-9;

  explicit DDSketch(double relative_accuracy = 0.01, size_t max_bins = 2048) noexcept;

  /// Adds `count` occurrences of `value` (negative and NaN values count as zero).
  void Add(double value, uint64_t count = 1) noexcept;
  /// Adds every value of `other`. Both sketches must have the same relative accuracy
  /// (returns false and changes nothing otherwise).
  bool Merge(const DDSketch& other) noexcept;
  /// The q-quantile (0 <= q <= 1): a value within the relative accuracy of the sample of
  /// nearest rank ceil(q * count) (1-based) in sorted order (clamped to the exact min and max; q =
  /// 0 and q = 1 return them). NaN when empty.
  double Quantile(double q) const noexcept;
  void Clear() noexcept;

  uint64_t count() const noexcept { return count_; }
  double sum() const noexcept { return sum_; }
  double min() const noexcept { return min_; }
  double max() const noexcept { return max_; }
  double relative_accuracy() const noexcept { return accuracy_; }
  /// Bins currently allocated (<= max_bins) and the heap bytes they hold.
  size_t bin_count() const noexcept { return bins_.size(); }
  size_t MemoryBytes() const noexcept { return bins_.capacity() * sizeof(uint32_t); }

 private:
  int32_t Key(double value) const noexcept;
  double Value(int32_t key) const noexcept;
  void AddToKey(int32_t key, uint64_t count) noexcept;

  double accuracy_;
  double gamma_;
  double inv_log_gamma_;
  size_t max_bins_;
  // bins_[i] counts values of key offset_ + i. uint32 per bin keeps sub-window sketches small;
  // a bin saturates at 2^32 - 1 (never reached in a 15 s sub-window).
  std::vector<uint32_t> bins_;
  int32_t offset_ = 0;
  uint64_t zero_count_ = 0;
  uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = 0;
  double max_ = 0;
};

/// A ring of `slots` sub-windows of `slot_ns` each, indexed by a caller-supplied monotonic
/// time; a slot is reset when time moves past it. Reading merges the slots of the last
/// `window_ns` (rounded up to whole slots, the current one partial).
template <typename T>
class SlotRing {
 public:
  SlotRing(uint64_t slot_ns, size_t slots, const T& prototype)
      : slot_ns_(slot_ns == 0 ? 1 : slot_ns), slots_(slots == 0 ? 1 : slots, Slot{prototype}) {
    for (auto& s : slots_) s.epoch = kNever;
  }

  /// The slot holding `now_ns`, reset (via `reset(T&)`) if it held an older sub-window.
  template <typename Reset>
  T& At(uint64_t now_ns, Reset&& reset) noexcept {
    const uint64_t epoch = now_ns / slot_ns_;
    Slot& s = slots_[epoch % slots_.size()];
    if (s.epoch != epoch) {
      reset(s.value);
      s.epoch = epoch;
    }
    return s.value;
  }

  /// Calls fn(const T&) for each slot within the last `window_ns` (at most all slots), i.e.
  /// epochs in (now_epoch - n, now_epoch] with n = ceil(window_ns / slot_ns).
  template <typename Fn>
  void ForEach(uint64_t now_ns, uint64_t window_ns, Fn&& fn) const {
    const uint64_t now_epoch = now_ns / slot_ns_;
    uint64_t n = (window_ns + slot_ns_ - 1) / slot_ns_;
    if (n > slots_.size()) n = slots_.size();
    for (const Slot& s : slots_) {
      if (s.epoch != kNever && s.epoch <= now_epoch && now_epoch - s.epoch < n) fn(s.value);
    }
  }

  /// Seconds covered by a window read at `now_ns`: the whole slots before the current one
  /// plus the elapsed part of the current one.
  double CoveredSeconds(uint64_t now_ns, uint64_t window_ns) const noexcept {
    uint64_t n = (window_ns + slot_ns_ - 1) / slot_ns_;
    if (n > slots_.size()) n = slots_.size();
    const uint64_t now_epoch = now_ns / slot_ns_;
    const uint64_t first = now_epoch >= n - 1 ? now_epoch - (n - 1) : 0;
    return static_cast<double>(now_ns - first * slot_ns_) / 1e9;
  }

  template <typename Fn>
  void ForEachSlot(Fn&& fn) const {
    for (const Slot& s : slots_) fn(s.value);
  }
  uint64_t slot_ns() const noexcept { return slot_ns_; }
  size_t size() const noexcept { return slots_.size(); }

 private:
  static constexpr uint64_t kNever = ~0ull;
  struct Slot {
    T value;
    uint64_t epoch = kNever;
  };
  uint64_t slot_ns_;
  std::vector<Slot> slots_;
};

/// DDSketch over a sliding window: a SlotRing of sketches merged on read.
class WindowedSketch {
 public:
  /// Default: 20 sub-windows of 15 s (5 minutes), 1 % accuracy.
  explicit WindowedSketch(uint64_t slot_ns = 15'000'000'000ull, size_t slots = 20,
                          double relative_accuracy = 0.01, size_t max_bins = 2048);
  void Add(uint64_t now_ns, double value) noexcept;
  /// The values added in the last `window_ns` (whole sub-windows, the current one partial).
  DDSketch Window(uint64_t now_ns, uint64_t window_ns) const;
  size_t MemoryBytes() const noexcept;

 private:
  SlotRing<DDSketch> ring_;
  DDSketch prototype_;
};

}  // namespace redtap::metrics

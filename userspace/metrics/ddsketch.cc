// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/ddsketch.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace redtap::metrics {

DDSketch::DDSketch(double relative_accuracy, size_t max_bins) noexcept
    : accuracy_(relative_accuracy > 0 && relative_accuracy < 1 ? relative_accuracy : 0.01),
      gamma_((1 + accuracy_) / (1 - accuracy_)),
      inv_log_gamma_(1.0 / std::log(gamma_)),
      max_bins_(max_bins < 1 ? 1 : max_bins) {}

int32_t DDSketch::Key(double value) const noexcept {
  return static_cast<int32_t>(std::ceil(std::log(value) * inv_log_gamma_));
}

double DDSketch::Value(int32_t key) const noexcept {
  return 2 * std::pow(gamma_, key) / (gamma_ + 1);
}

void DDSketch::AddToKey(int32_t key, uint64_t count) noexcept {
  const auto add = [](uint32_t& bin, uint64_t n) {
    const uint64_t v = bin + n;
    bin = v > std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                   : static_cast<uint32_t>(v);
  };
  if (bins_.empty()) {
    offset_ = key;
    bins_.push_back(0);
  }
  const int64_t max_bins = static_cast<int64_t>(max_bins_);
  int64_t top = offset_ + static_cast<int64_t>(bins_.size()) - 1;
  if (key < offset_) {
    // Grow downwards, but never beyond max_bins: lower keys collapse into the lowest bin.
    const int64_t lowest = std::max<int64_t>(key, top - max_bins + 1);
    if (lowest < offset_) {
      bins_.insert(bins_.begin(), static_cast<size_t>(offset_ - lowest), 0);
      offset_ = static_cast<int32_t>(lowest);
    }
    if (key < offset_) key = offset_;
  } else if (key > top) {
    const int64_t new_offset = std::max<int64_t>(offset_, key - max_bins + 1);
    if (new_offset > offset_) {
      // Collapse the bins below new_offset into it.
      uint64_t collapsed = 0;
      const size_t drop = static_cast<size_t>(
          std::min<int64_t>(new_offset - offset_, static_cast<int64_t>(bins_.size())));
      for (size_t i = 0; i < drop; ++i) collapsed += bins_[i];
      bins_.erase(bins_.begin(), bins_.begin() + static_cast<std::ptrdiff_t>(drop));
      offset_ = static_cast<int32_t>(new_offset);
      if (bins_.empty()) bins_.push_back(0);
      top = offset_ + static_cast<int64_t>(bins_.size()) - 1;
      add(bins_[0], collapsed);
    }
    if (key > top) bins_.resize(static_cast<size_t>(key - offset_ + 1), 0);
  }
  add(bins_[static_cast<size_t>(key - offset_)], count);
}

void DDSketch::Add(double value, uint64_t count) noexcept {
  if (count == 0) return;
  if (!(value >= 0)) value = 0;  // negative and NaN
  if (value > std::numeric_limits<double>::max()) value = std::numeric_limits<double>::max();
  if (count_ == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  count_ += count;
  sum_ += value * static_cast<double>(count);
  if (value < kMinIndexable) {
    zero_count_ += count;
  } else {
    AddToKey(Key(value), count);
  }
}

bool DDSketch::Merge(const DDSketch& other) noexcept {
  if (other.gamma_ != gamma_) return false;
  if (other.count_ == 0) return true;
  if (count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  count_ += other.count_;
  sum_ += other.sum_;
  zero_count_ += other.zero_count_;
  // Highest first: a collapsing store then keeps the top bins exact.
  for (size_t i = other.bins_.size(); i-- > 0;) {
    if (other.bins_[i] != 0) AddToKey(other.offset_ + static_cast<int32_t>(i), other.bins_[i]);
  }
  return true;
}

double DDSketch::Quantile(double q) const noexcept {
  if (count_ == 0 || !(q >= 0) || q > 1) return std::numeric_limits<double>::quiet_NaN();
  // The extremes are known exactly.
  if (q == 0) return min_;
  if (q == 1) return max_;
  // Nearest rank: the smallest sample with at least q * count samples at or below it.
  const double nearest = std::ceil(q * static_cast<double>(count_) - 1e-9);
  const uint64_t rank = nearest < 1 ? 0 : static_cast<uint64_t>(nearest) - 1;
  if (rank < zero_count_) return min_ < kMinIndexable ? min_ : 0;
  uint64_t seen = zero_count_;
  for (size_t i = 0; i < bins_.size(); ++i) {
    seen += bins_[i];
    if (seen > rank) {
      const double v = Value(offset_ + static_cast<int32_t>(i));
      return std::clamp(v, min_, max_);
    }
  }
  return max_;  // only reachable when saturated bins lost counts
}

void DDSketch::Clear() noexcept {
  bins_.clear();
  offset_ = 0;
  zero_count_ = 0;
  count_ = 0;
  sum_ = 0;
  min_ = max_ = 0;
}

WindowedSketch::WindowedSketch(uint64_t slot_ns, size_t slots, double relative_accuracy,
                               size_t max_bins)
    : ring_(slot_ns, slots, DDSketch(relative_accuracy, max_bins)),
      prototype_(relative_accuracy, max_bins) {}

void WindowedSketch::Add(uint64_t now_ns, double value) noexcept {
  ring_.At(now_ns, [](DDSketch& s) { s.Clear(); }).Add(value);
}

DDSketch WindowedSketch::Window(uint64_t now_ns, uint64_t window_ns) const {
  DDSketch merged = prototype_;
  ring_.ForEach(now_ns, window_ns, [&](const DDSketch& s) { merged.Merge(s); });
  return merged;
}

size_t WindowedSketch::MemoryBytes() const noexcept {
  size_t bytes = sizeof(*this) + ring_.size() * (sizeof(DDSketch) + sizeof(uint64_t));
  ring_.ForEachSlot([&](const DDSketch& s) { bytes += s.MemoryBytes(); });
  return bytes;
}

}  // namespace redtap::metrics

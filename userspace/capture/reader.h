// SPDX-License-Identifier: Apache-2.0
// RingReader: the one thread that drains the kernel ring buffer into the ConnTracker.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include "userspace/common/status.h"

struct ring_buffer;

namespace redtap {

class RingReader {
 public:
  using RecordFn = std::function<void(const void* data, size_t size)>;
  using TickFn = std::function<void()>;

  RingReader() = default;
  ~RingReader();

  /// Starts the thread. `on_record` runs for each record, `on_tick` about once per
  /// `poll_interval_ms` (housekeeping on the same thread, so the tracker needs no lock).
  Status Start(int ring_fd, uint32_t poll_interval_ms, RecordFn on_record, TickFn on_tick);
  /// Drains what is left, then joins. Returns within about one poll interval.
  void Stop();

  uint64_t polls() const { return polls_.load(std::memory_order_relaxed); }

 private:
  static int Trampoline(void* ctx, void* data, size_t size);
  void Run();

  struct ring_buffer* rb_ = nullptr;
  uint32_t poll_ms_ = 10;
  RecordFn on_record_;
  TickFn on_tick_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> polls_{0};
  std::thread thread_;
};

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
// RingReader: the one thread that drains the kernel ring buffer into the ConnTracker.
// It reads the BPF ring buffer's mmap'ed pages itself (the layout libbpf's ring_buffer uses)
// so that it can publish its read position once per batch instead of once per record.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include "userspace/common/status.h"

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
  void Run();
  /// Hands every committed record to on_record_; returns how many.
  uint64_t Drain();
  void Unmap();

  size_t page_size_ = 4096;
  uint64_t mask_ = 0;
  uint64_t* consumer_pos_ = nullptr;
  const uint64_t* producer_pos_ = nullptr;
  const uint8_t* data_ = nullptr;
  size_t prod_map_len_ = 0;
  int epoll_fd_ = -1;
  uint32_t poll_ms_ = 10;
  RecordFn on_record_;
  TickFn on_tick_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> polls_{0};
  std::thread thread_;
};

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
// EventWriter: NDJSON lines to a file or stdout from a background thread, fed through a
// bounded queue so the capture path never waits for the disk.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "userspace/common/status.h"

namespace redtap::exporter {

/// Writes lines in order, each followed by '\n'. Push() never blocks on I/O: when
/// `queue_capacity` lines are waiting (queued or being written), the line is dropped and
/// counted. The writer thread batches lines into large write(2) calls and writes its buffer
/// out whenever the queue runs empty, and at least every 100 ms under sustained load.
/// A failed write (disk full, closed pipe) loses that batch: its lines are counted as
/// dropped, the failure is counted and logged once; the writer keeps going.
class EventWriter {
 public:
  /// `path`: "-" = standard output, else a file opened for appending (created 0640).
  /// `queue_capacity` >= 1.
  static Result<std::unique_ptr<EventWriter>> Open(const std::string& path, size_t queue_capacity);

  ~EventWriter();  // Stop()s
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  /// Queues one line (without its '\n'). Thread-safe, never blocks on I/O. False when the
  /// line was dropped (queue full, or the writer stopped); the drop is counted.
  bool Push(std::string line) noexcept;

  /// Blocks until every line pushed before the call is written (or counted as lost).
  void Flush();

  /// Writes everything queued, then joins the writer thread. Idempotent; later Push()es
  /// are dropped.
  void Stop();

  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  /// write(2) calls that failed.
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

  /// Test hook: while paused, the writer thread takes nothing from the queue (Stop() still
  /// drains it). Do not Flush() while paused.
  void SetPausedForTesting(bool paused);

 private:
  EventWriter(int fd, bool owns_fd, std::string path, size_t capacity);
  void Run();
  /// Writes `buffer_` out; updates counters. Called by the writer thread only.
  void WriteBuffer();

  const int fd_;
  const bool owns_fd_;
  const std::string path_;
  const size_t capacity_;

  std::mutex mu_;
  std::condition_variable work_cv_;   // writer waits for lines / stop
  std::condition_variable done_cv_;   // Flush() waits for progress
  std::vector<std::string> pending_;  // guarded by mu_
  size_t in_flight_ = 0;              // guarded by mu_: pushed lines not yet written or lost
  uint64_t accepted_ = 0;             // guarded by mu_: lines accepted since Open
  uint64_t finished_ = 0;             // guarded by mu_: lines written or lost since Open
  bool stop_ = false;                 // guarded by mu_
  bool paused_ = false;               // guarded by mu_
  bool flush_requested_ = false;      // guarded by mu_

  // Writer thread only.
  std::string buffer_;
  size_t buffer_lines_ = 0;
  std::chrono::steady_clock::time_point last_write_;
  bool error_logged_ = false;

  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> write_errors_{0};

  std::mutex stop_mu_;  // serializes Stop()
  std::thread thread_;
};

}  // namespace redtap::exporter

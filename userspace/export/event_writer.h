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
#include <string_view>
#include <thread>
#include <vector>

#include "userspace/common/status.h"

namespace redtap::exporter {

/// Writes lines in order, each followed by '\n'. Push() never blocks on I/O: when
/// `queue_capacity` lines are waiting (queued or being written), the line is dropped and
/// counted. The writer thread batches lines into large write(2) calls: woken by the first
/// line after it went idle, it lets more lines join for 20 ms (or until 1024 wait, at most a
/// quarter of the queue), then writes them all out: a line reaches the file within ~20 ms.
/// A failed write (disk full, closed pipe) loses that batch: its lines are counted as
/// dropped, the failure is counted and logged once; the writer keeps going.
/// A file path is reopened (logrotate, or someone deleted the file) on Reopen() (SIGHUP),
/// and by itself within a second when the path no longer names the open file.
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
  bool Push(std::string_view line) noexcept;

  /// Blocks until every line pushed before the call is written (or counted as lost).
  void Flush();

  /// Writes everything queued, then joins the writer thread. Idempotent; later Push()es
  /// are dropped.
  void Stop();

  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  /// Lines lost: queue full, plus lines of failed writes.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  /// Of dropped(): lines of failed writes (disk full, closed pipe).
  uint64_t write_lost() const { return write_lost_.load(std::memory_order_relaxed); }
  /// Times the file was opened again (Reopen, or the path deleted or replaced).
  uint64_t reopened() const { return reopened_.load(std::memory_order_relaxed); }

  /// Asks the writer thread to reopen the file at its path (after writing what it holds).
  /// Thread- and signal-context-safe enough for the main thread's SIGHUP handling.
  void Reopen();
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
  /// Writer thread: reopens the file when asked or when its path names another file (or
  /// none) any more; at most once a second unless asked.
  void MaybeReopen(bool asked);

  int fd_;  // writer thread only (and the destructor, after it joined)
  const bool owns_fd_;
  const std::string path_;
  const size_t capacity_;
  const size_t wake_lines_;  // lines waiting that end the writer's linger

  std::mutex mu_;
  std::condition_variable work_cv_;  // writer waits for lines / stop
  std::condition_variable done_cv_;  // Flush() waits for progress
  std::string pending_;              // guarded by mu_: queued lines, each with its '\n'
  size_t pending_lines_ = 0;         // guarded by mu_
  size_t in_flight_ = 0;             // guarded by mu_: pushed lines not yet written or lost
  uint64_t accepted_ = 0;            // guarded by mu_: lines accepted since Open
  uint64_t finished_ = 0;            // guarded by mu_: lines written or lost since Open
  bool stop_ = false;                // guarded by mu_
  bool paused_ = false;              // guarded by mu_
  bool flush_requested_ = false;     // guarded by mu_
  bool idle_ = false;                // guarded by mu_: the writer sleeps with nothing to take

  // Writer thread only.
  std::string buffer_;
  size_t buffer_lines_ = 0;
  bool error_logged_ = false;

  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> write_lost_{0};
  std::atomic<uint64_t> reopened_{0};
  std::atomic<bool> reopen_requested_{false};
  std::chrono::steady_clock::time_point last_check_;  // writer thread only

  std::mutex stop_mu_;  // serializes Stop()
  std::thread thread_;
};

}  // namespace redtap::exporter

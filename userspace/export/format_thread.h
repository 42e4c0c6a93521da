// SPDX-License-Identifier: Apache-2.0
// FormatThread: NDJSON events formatted on a thread of their own (the event sink's threaded
// mode, used by `redtap pcap`). Reading a file, turning a transaction into its JSON line
// costs about as much as decoding, parsing and stitching it; here the decoding thread only
// moves each transaction into a batch, and a second thread formats the batches, in order,
// and hands the lines to the EventWriter. The output is byte-for-byte what formatting on the
// decoding thread gives. Take() waits when kMaxQueued batches are waiting: a file is read no
// faster than its events are written (never use it where the caller must not block).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "parsers/http/types.h"
#include "userspace/capture/conn_meta.h"
#include "userspace/config/config.h"
#include "userspace/export/event_builder.h"
#include "userspace/export/event_writer.h"
#include "userspace/export/redact.h"

namespace redtap::exporter {

/// One event to format: the transaction and everything the enricher and the sinks before
/// added to it.
struct PendingEvent {
  http::Transaction txn;
  ConnMeta meta;
  std::string service;
  std::string route;
  EventExtras extras;
};

class FormatThread {
 public:
  static constexpr size_t kBatch = 256;     // events per hand-off
  static constexpr size_t kMaxQueued = 16;  // batches waiting: then Take() waits

  /// `writer` must outlive this object. Timestamps get `offset_ns` added (0 when they are
  /// wall-clock already, as packet times are).
  FormatThread(const config::Config& cfg, EventWriter* writer, int64_t offset_ns);
  ~FormatThread();  // Stop()s
  FormatThread(const FormatThread&) = delete;
  FormatThread& operator=(const FormatThread&) = delete;

  /// Decoding thread: a slot for the next event, to fill in (reused storage).
  PendingEvent& Next() noexcept;
  /// Decoding thread: the slot of Next() is complete.
  void Commit() noexcept;
  /// Decoding thread: hands the partial batch over (live mode, every ~100 ms).
  void Flush() noexcept;
  /// Formats and pushes everything taken, then joins the thread. Idempotent.
  void Stop() noexcept;

  uint64_t written() const { return written_; }  // lines accepted by the writer (after Stop)
  uint64_t dropped() const { return dropped_; }  // lines lost: writer queue full (after Stop)

 private:
  void Run() noexcept;
  void Format(std::vector<PendingEvent>* batch, size_t n) noexcept;

  EventWriter* writer_;
  const int64_t offset_ns_;

  // Decoding thread only: the batch being filled and how many of its slots are used.
  std::vector<PendingEvent> batch_;
  size_t used_ = 0;

  struct Batch {
    std::vector<PendingEvent> items;
    size_t n = 0;
  };
  std::mutex mu_;
  std::condition_variable work_cv_;               // the format thread waits for batches / stop
  std::condition_variable space_cv_;              // Commit() waits for room
  std::deque<Batch> queue_;                       // guarded by mu_
  std::vector<std::vector<PendingEvent>> spare_;  // guarded by mu_: formatted batches
  bool stop_ = false;                             // guarded by mu_
  std::thread thread_;

  // Format thread only (read by the caller after Stop).
  Redactor redactor_;
  std::string lines_;
  std::string line_;  // the event being formatted (capacity reused)
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace redtap::exporter

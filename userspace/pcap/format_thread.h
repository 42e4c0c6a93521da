// SPDX-License-Identifier: Apache-2.0
// FormatThread: NDJSON events of `redtap pcap` formatted on a thread of their own. Reading a
// file, turning a transaction into its JSON line costs about as much as decoding, parsing
// and stitching it; here the capture thread only moves each transaction into a batch, and a
// second thread formats the batches, in order, and hands the lines to the EventWriter. The
// output is byte-for-byte what formatting on the capture thread gives.
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
#include "userspace/export/event_writer.h"
#include "userspace/export/redact.h"
#include "userspace/pcap/flow_table.h"

namespace redtap::pcap {

class FormatThread : public TransactionTaker {
 public:
  static constexpr size_t kBatch = 256;        // transactions per hand-off
  static constexpr size_t kMaxQueued = 16;     // batches waiting: then Take() waits

  /// `cfg` (services, redaction) and `writer` must outlive this object.
  FormatThread(const config::Config& cfg, exporter::EventWriter* writer);
  ~FormatThread() override;  // Stop()s
  FormatThread(const FormatThread&) = delete;
  FormatThread& operator=(const FormatThread&) = delete;

  /// Capture thread: queues `txn` (moved from) with a copy of `meta`. Waits while
  /// kMaxQueued batches are already waiting (the file is read no faster than formatted).
  void Take(http::Transaction&& txn, const ConnMeta& meta) noexcept override;
  /// Capture thread: hands the partial batch over (live mode, every ~100 ms).
  void Flush() noexcept;
  /// Formats and pushes everything taken, then joins the thread. Idempotent.
  void Stop() noexcept;

  uint64_t written() const { return written_; }  // lines accepted by the writer (after Stop)
  uint64_t dropped() const { return dropped_; }  // lines lost: writer queue full (after Stop)

 private:
  struct Item {
    Item(http::Transaction&& t, const ConnMeta& m) : txn(std::move(t)), meta(m) {}
    http::Transaction txn;
    ConnMeta meta;
  };
  void Run() noexcept;
  void Format(std::vector<Item>* batch) noexcept;
  const std::string& ServiceName(const ConnMeta& meta);

  const config::Config& cfg_;
  exporter::EventWriter* writer_;

  // Capture thread only.
  std::vector<Item> batch_;

  std::mutex mu_;
  std::condition_variable work_cv_;   // the format thread waits for batches / stop
  std::condition_variable space_cv_;  // Take() waits for room
  std::deque<std::vector<Item>> queue_;   // guarded by mu_
  std::vector<std::vector<Item>> spare_;  // guarded by mu_: emptied batches, capacity kept
  bool stop_ = false;                     // guarded by mu_
  std::thread thread_;

  // Format thread only (read by the caller after Stop).
  exporter::Redactor redactor_;
  std::string lines_;
  std::string name_, name_address_;  // PcapServiceName of the last server seen
  uint16_t name_port_ = 0;
  bool name_valid_ = false;
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace redtap::pcap

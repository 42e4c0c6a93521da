// SPDX-License-Identifier: Apache-2.0
// The event sink: one NDJSON line per enriched transaction (event_json.h). Runs last among
// the sinks, after those that add event attributes. Two modes:
//  - inline (`redtap run`): the line is formatted on the decoding thread and queued for the
//    writer thread, which never blocks the caller (a full queue drops and counts);
//  - threaded (`redtap pcap`): the transaction is moved to a formatting thread (FormatThread),
//    which waits for room: a file is read no faster than its events are written.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "userspace/config/config.h"
#include "userspace/export/event_select.h"
#include "userspace/export/event_writer.h"
#include "userspace/export/format_thread.h"
#include "userspace/export/redact.h"
#include "userspace/pipeline/pipeline.h"

namespace redtap::exporter {

class EventSink : public pipeline::Sink, public pipeline::DbSink {
 public:
  struct Options {
    bool threaded = false;
    /// Timestamps are kernel monotonic (live capture: converted to Unix time) or already
    /// Unix time (packet times).
    bool wall_clock = false;
  };
  /// `writer` is not owned.
  EventSink(const config::Config& config, EventWriter* writer, Options options);
  ~EventSink() override;
  void Consume(enrich::Enriched& e) noexcept override;
  /// A database operation: formatted on the calling thread in both modes (only the live
  /// capture decodes them).
  void ConsumeDb(enrich::EnrichedDb& e) noexcept override;
  /// Threaded: hands the partial batch over (live pcap, every ~100 ms).
  void Flush() noexcept;
  /// Threaded: formats what is left and joins the thread (the writer is stopped apart).
  void Stop() noexcept;
  /// Events handed to the writer and lost because its queue was full.
  uint64_t written() const;
  uint64_t dropped() const;
  /// Events not written by choice (events.select).
  uint64_t sampled_out() const { return selector_.sampled_out(); }

 private:
  Redactor redactor_;
  EventWriter* writer_;
  int64_t offset_;  // added to timestamps: kernel monotonic -> Unix time, or 0
  uint64_t db_slow_ns_;
  uint64_t http_slow_ns_;
  EventSelector selector_;
  std::unique_ptr<FormatThread> thread_;
  std::string line_;  // inline mode: the line being formatted (capacity reused)
};

}  // namespace redtap::exporter

// SPDX-License-Identifier: Apache-2.0
// The pipeline every mode runs (`redtap run` and `redtap pcap`):
//
//   sources ──► TransactionSink: Pipeline ──► Enricher ──► Sink, Sink, ... (in order)
//                   database operations   ──► Enricher ──► DbSink, DbSink, ...
//
// Sources (the capture tracker, TLS, the pcap flow table) hand each decoded transaction to a
// TransactionSink; the Pipeline enriches it once and passes it to every sink in the order they
// were added. Sinks that annotate (the e-commerce view adds event attributes) come before the
// event sink. Runs on the source's decoding thread; nothing here blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "parsers/http/types.h"
#include "userspace/capture/conn_meta.h"
#include "userspace/config/config.h"
#include "userspace/enrich/enricher.h"
#include "userspace/pipeline/transaction_sink.h"

namespace redtap::pipeline {

/// Stage 3: consumes enriched transactions. Must not block and never throws.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Consume(enrich::Enriched& e) noexcept = 0;
};

/// Consumes enriched database operations. Must not block and never throws.
class DbSink {
 public:
  virtual ~DbSink() = default;
  virtual void ConsumeDb(enrich::EnrichedDb& e) noexcept = 0;
};

class Pipeline : public TransactionSink {
 public:
  /// Monotonic time in ns (tests give their own).
  using Clock = std::function<uint64_t()>;

  explicit Pipeline(const config::Config& config,
                    enrich::ExeReader exe_reader = enrich::ReadProcExe, Clock clock = {});

  /// Sinks receive transactions in the order they were added. Not owned.
  void AddSink(Sink* sink) { sinks_.push_back(sink); }
  /// The sink that runs after all others and may take the transaction (the events).
  void SetLastSink(Sink* sink) { last_ = sink; }
  /// Database operations go to these, in order (the events last). Not owned.
  void AddDbSink(DbSink* sink) { db_sinks_.push_back(sink); }

  void OnTransaction(const http::Transaction& txn, const ConnMeta& meta) noexcept override;
  void OnTransactionOwned(http::Transaction&& txn, const ConnMeta& meta) noexcept override;
  void OnDbOperation(db::Operation&& op, const ConnMeta& meta) noexcept override;

  enrich::Enricher& enricher() { return enricher_; }

 private:
  enrich::Enricher enricher_;
  Clock clock_;
  void Run(const http::Transaction& txn, const ConnMeta& meta, http::Transaction* owned) noexcept;

  std::vector<Sink*> sinks_;
  Sink* last_ = nullptr;
  std::vector<DbSink*> db_sinks_;
};

}  // namespace redtap::pipeline

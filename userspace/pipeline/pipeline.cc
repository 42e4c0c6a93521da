// SPDX-License-Identifier: Apache-2.0
#include "userspace/pipeline/pipeline.h"

#include "userspace/common/clock.h"

namespace redtap::pipeline {

Pipeline::Pipeline(const config::Config& config, enrich::ExeReader exe_reader, Clock clock)
    : enricher_(config, std::move(exe_reader)), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC)); };
}

void Pipeline::OnTransaction(const http::Transaction& txn, const ConnMeta& meta) noexcept {
  Run(txn, meta, nullptr);
}

void Pipeline::OnTransactionOwned(http::Transaction&& txn, const ConnMeta& meta) noexcept {
  Run(txn, meta, &txn);
}

void Pipeline::OnDbOperation(db::Operation&& op, const ConnMeta& meta) noexcept {
  if (db_sinks_.empty()) return;
  enrich::EnrichedDb& e = enricher_.EnrichDb(op, meta, clock_());
  for (DbSink* s : db_sinks_) s->ConsumeDb(e);
}

void Pipeline::Run(const http::Transaction& txn, const ConnMeta& meta,
                   http::Transaction* owned) noexcept {
  // Placeholders (request heads never seen) are not transactions.
  if (txn.request.placeholder) return;
  enrich::Enriched& e = enricher_.Enrich(txn, meta, clock_());
  for (Sink* s : sinks_) s->Consume(e);
  if (last_ != nullptr) {
    e.owned = owned;
    last_->Consume(e);
  }
}

}  // namespace redtap::pipeline

// SPDX-License-Identifier: Apache-2.0
// What a source (the capture tracker, the pcap flow table) hands each decoded transaction (and
// database operation) to:
// the Pipeline (pipeline.h), or a test's collector.
#pragma once

#include "parsers/db/types.h"
#include "parsers/http/types.h"
#include "userspace/capture/conn_meta.h"

namespace redtap {

/// Receives every decoded transaction with its connection's metadata. Must not block.
class TransactionSink {
 public:
  virtual ~TransactionSink() = default;
  virtual void OnTransaction(const http::Transaction& txn, const ConnMeta& meta) noexcept = 0;
  /// The same, from a source that has no further use for `txn`: the receiver may move from
  /// it. By default it is only read.
  virtual void OnTransactionOwned(http::Transaction&& txn, const ConnMeta& meta) noexcept {
    OnTransaction(txn, meta);
  }
  /// One database or cache operation (PostgreSQL, MySQL, Redis) and its connection's
  /// metadata; the receiver may move from it. Sources that decode none never call it.
  virtual void OnDbOperation(db::Operation&& op, const ConnMeta& meta) noexcept {
    (void)op;
    (void)meta;
  }
};

}  // namespace redtap

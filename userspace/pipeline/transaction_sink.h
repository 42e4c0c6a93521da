// SPDX-License-Identifier: Apache-2.0
// What a source (the capture tracker, the pcap flow table) hands each decoded transaction to:
// the Pipeline (pipeline.h), or a test's collector.
#pragma once

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
};

}  // namespace redtap

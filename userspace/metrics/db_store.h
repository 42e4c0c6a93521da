// SPDX-License-Identifier: Apache-2.0
// DbStore, a database sink: operations of PostgreSQL, MySQL/MariaDB and Redis clients
// aggregated by service, system, operation, collection, server and error, as OpenTelemetry's
// database client metric (db_client_operation_duration_seconds) plus the slow-operation
// counter, and a windowed view for /api/v1/databases and `redtap top`. Bounded by
// db.max_series. Thread-safe: ConsumeDb runs on the decoding thread, the rest on HTTP threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "userspace/config/config.h"
#include "userspace/enrich/enricher.h"
#include "userspace/exposition/registry.h"
#include "userspace/pipeline/pipeline.h"

namespace redtap::metrics {

class DbStore : public pipeline::DbSink {
 public:
  /// Histogram bounds in seconds: 1 ms ... 10 s.
  static const std::vector<double>& Buckets();

  explicit DbStore(const config::Config& config);
  ~DbStore() override;
  DbStore(const DbStore&) = delete;
  DbStore& operator=(const DbStore&) = delete;

  /// Aggregates one operation (operations without a reply count as failed, with no duration).
  void ConsumeDb(enrich::EnrichedDb& e) noexcept override;

  /// db_client_operation_duration_seconds, redtap_db_slow_operations_total,
  /// redtap_db_operations_failed_total, and the store's fold counter.
  void Collect(exposition::Families* out) const;

  /// /api/v1/databases: one object per series with rates over the last minute and quantiles
  /// over the last five.
  std::string RenderDatabasesJson(uint64_t now_ns) const;

  uint64_t operations() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redtap::metrics

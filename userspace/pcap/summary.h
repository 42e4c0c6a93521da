// SPDX-License-Identifier: Apache-2.0
// SummarySink: per-endpoint count, errors and latency percentiles of a pcap run, printed as
// one table at the end. Endpoint = service, method and path (query dropped). Bounded: at
// most `max_endpoints` rows, the rest folded into one "(other)" row. Latency percentiles come
// from a DDSketch per row (1 % relative error, the sketch the RED metrics use).
// Database operations (a DbSink too) get a second table, one row per (system, operation):
// count, errors (an error status or no reply) and latency percentiles; printed only when the
// capture held database operations.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>

#include "userspace/config/config.h"
#include "userspace/export/redact.h"
#include "userspace/metrics/ddsketch.h"
#include "userspace/pipeline/pipeline.h"

namespace redtap::pcap {

class SummarySink : public pipeline::Sink, public pipeline::DbSink {
 public:
  SummarySink(const config::Config& cfg, size_t max_endpoints = 10000);
  void Consume(enrich::Enriched& e) noexcept override;
  void ConsumeDb(enrich::EnrichedDb& e) noexcept override;
  /// Prints the table, rows by count (descending), at most `rows` (0 = all); then the
  /// database table (same bound) when there were database operations (alone when there were
  /// no HTTP transactions).
  void Print(std::FILE* out, size_t rows) const;
  size_t endpoints() const { return rows_.size(); }
  size_t db_rows() const { return db_rows_.size(); }

 private:
  static constexpr double kLatencyAccuracy = 0.01;
  void PrintHttp(std::FILE* out, size_t rows) const;
  void PrintDb(std::FILE* out, size_t rows) const;
  struct Row {
    std::string service, method, path;
    uint64_t count = 0, errors = 0;
    metrics::DDSketch latency{kLatencyAccuracy};
  };
  exporter::Redactor redactor_;
  size_t max_endpoints_;
  std::string key_;  // reused buffer
  std::unordered_map<std::string, Row> rows_;
  Row other_;
  // Database rows: service = system name, method unused, path = operation.
  std::unordered_map<std::string, Row> db_rows_;
  Row db_other_;
};

}  // namespace redtap::pcap

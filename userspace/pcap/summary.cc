// SPDX-License-Identifier: Apache-2.0
#include "userspace/pcap/summary.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "userspace/export/event_json.h"
#include "userspace/pcap/pcap_runner.h"

namespace redtap::pcap {

SummarySink::SummarySink(const config::Config& cfg, size_t max_endpoints)
    : redactor_(cfg.redaction), max_endpoints_(max_endpoints) {
  other_.service = "(other)";
  db_other_.service = "(other)";
}

void SummarySink::Consume(enrich::Enriched& e) noexcept {
  const http::Transaction& t = *e.txn;
  const ConnMeta& meta = *e.meta;
  const exporter::TargetParts parts = exporter::SplitTarget(t.request.target);
  const std::string& addr = meta.server().address;
  key_.clear();
  key_.append(addr).push_back(':');
  key_.append(std::to_string(meta.server().port)).push_back(' ');
  key_.append(t.request.method).push_back(' ');
  key_.append(parts.path);
  auto it = rows_.find(key_);
  Row* r;
  if (it != rows_.end()) {
    r = &it->second;
  } else if (rows_.size() < max_endpoints_) {
    Row& n = rows_[key_];
    n.service.assign(e.service);
    n.method = t.request.method;
    n.path = redactor_.RedactPath(parts.path);
    r = &n;
  } else {
    r = &other_;
  }
  ++r->count;
  if (!t.has_response || t.response.status_code >= 500) ++r->errors;
  if (t.has_response) r->latency.Add(static_cast<double>(t.DurationNs()));
}

void SummarySink::ConsumeDb(enrich::EnrichedDb& e) noexcept {
  const db::Operation& op = *e.op;
  const std::string_view system = db::SystemName(op.system);
  key_.assign(system).push_back(' ');
  key_.append(op.operation);
  auto it = db_rows_.find(key_);
  Row* r;
  if (it != db_rows_.end()) {
    r = &it->second;
  } else if (db_rows_.size() < max_endpoints_) {
    Row& n = db_rows_[key_];
    n.service.assign(system);
    n.path = op.operation;
    r = &n;
  } else {
    r = &db_other_;
  }
  ++r->count;
  if (!op.has_response || !op.error_type.empty()) ++r->errors;
  if (op.has_response) r->latency.Add(static_cast<double>(op.DurationNs()));
}

void SummarySink::Print(std::FILE* out, size_t rows) const {
  const bool has_http = !rows_.empty() || other_.count > 0;
  const bool has_db = !db_rows_.empty() || db_other_.count > 0;
  // The endpoint table as before, unless the capture held database operations only.
  if (has_http || !has_db) PrintHttp(out, rows);
  if (!has_db) return;
  if (has_http) std::fputc('\n', out);
  PrintDb(out, rows);
}

void SummarySink::PrintHttp(std::FILE* out, size_t rows) const {
  std::vector<const Row*> v;
  v.reserve(rows_.size() + 1);
  for (const auto& [k, r] : rows_) v.push_back(&r);
  if (other_.count > 0) v.push_back(&other_);
  std::sort(v.begin(), v.end(), [](const Row* a, const Row* b) {
    if (a->count != b->count) return a->count > b->count;
    if (a->service != b->service) return a->service < b->service;
    if (a->path != b->path) return a->path < b->path;
    return a->method < b->method;
  });
  std::fprintf(out, "%-24s %-7s %-40s %9s %7s %10s %10s %10s\n", "SERVICE", "METHOD", "PATH",
               "COUNT", "ERRORS", "P50_MS", "P95_MS", "P99_MS");
  size_t n = 0;
  for (const Row* r : v) {
    if (rows != 0 && n++ >= rows) {
      std::fprintf(out, "... %zu more endpoints\n", v.size() - rows);
      break;
    }
    // DDSketch: within 1 % of the sample at rank ceil(q * count); 0 when nothing answered.
    auto ms = [&](double q) {
      return r->latency.count() == 0 ? 0.0 : r->latency.Quantile(q) / 1e6;
    };
    std::string path = r->path.size() > 40 ? r->path.substr(0, 37) + "..." : r->path;
    std::fprintf(out, "%-24s %-7s %-40s %9llu %7llu %10.3f %10.3f %10.3f\n", r->service.c_str(),
                 r->method.c_str(), path.c_str(), static_cast<unsigned long long>(r->count),
                 static_cast<unsigned long long>(r->errors), ms(0.50), ms(0.95), ms(0.99));
  }
}

// One row per (system, operation); errors = an error status or no reply.
void SummarySink::PrintDb(std::FILE* out, size_t rows) const {
  std::vector<const Row*> v;
  v.reserve(db_rows_.size() + 1);
  for (const auto& [k, r] : db_rows_) v.push_back(&r);
  if (db_other_.count > 0) v.push_back(&db_other_);
  std::sort(v.begin(), v.end(), [](const Row* a, const Row* b) {
    if (a->count != b->count) return a->count > b->count;
    if (a->service != b->service) return a->service < b->service;
    return a->path < b->path;
  });
  std::fprintf(out, "%-12s %-24s %9s %7s %10s %10s %10s\n", "DB_SYSTEM", "OPERATION", "COUNT",
               "ERRORS", "P50_MS", "P95_MS", "P99_MS");
  size_t n = 0;
  for (const Row* r : v) {
    if (rows != 0 && n++ >= rows) {
      std::fprintf(out, "... %zu more operations\n", v.size() - rows);
      break;
    }
    auto ms = [&](double q) {
      return r->latency.count() == 0 ? 0.0 : r->latency.Quantile(q) / 1e6;
    };
    std::fprintf(out, "%-12s %-24s %9llu %7llu %10.3f %10.3f %10.3f\n", r->service.c_str(),
                 r->path.c_str(), static_cast<unsigned long long>(r->count),
                 static_cast<unsigned long long>(r->errors), ms(0.50), ms(0.95), ms(0.99));
  }
}

}  // namespace redtap::pcap

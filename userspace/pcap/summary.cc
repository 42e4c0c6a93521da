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

void SummarySink::Print(std::FILE* out, size_t rows) const {
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

}  // namespace redtap::pcap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/db_store.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "userspace/metrics/ddsketch.h"

namespace redtap::metrics {
namespace {

constexpr std::string_view kOther = "_OTHER";
constexpr uint64_t kMinute = 60'000'000'000ull;

struct Slot {
  uint64_t operations = 0;
  uint64_t errors = 0;
  DDSketch sketch;  // durations, seconds
};

struct Series {
  std::string service;
  exposition::Labels resource;  // container_id, k8s_* (from the workload)
  std::string system, operation, collection, server_address, error_type;
  uint16_t server_port = 0;
  std::vector<uint64_t> counts;  // non-cumulative, last = +Inf
  double sum = 0;
  uint64_t count = 0;   // with a reply (observed in the histogram)
  uint64_t failed = 0;  // without a reply (connection closed, capture gap)
  uint64_t slow = 0;
  SlotRing<Slot> window;

  Series(uint64_t slot_ns, size_t slots, const Slot& prototype)
      : window(slot_ns, slots, prototype) {}
};

double RoundTo(double v, double scale) { return std::round(v * scale) / scale; }

}  // namespace

const std::vector<double>& DbStore::Buckets() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

struct DbStore::Impl {
  explicit Impl(const config::Config& c)
      : max_series(c.db.max_series),
        slow_ns(c.db.slow_threshold_ms * 1'000'000ull),
        prototype{0, 0, DDSketch(0.01, 512)} {}

  const size_t max_series;
  const uint64_t slow_ns;
  const Slot prototype;
  mutable std::mutex mu;
  std::unordered_map<std::string, std::unique_ptr<Series>> series;
  std::string key;  // scratch
  uint64_t operations = 0;
  uint64_t folded = 0;
  bool started = false;
  uint64_t start_ns = 0;
};

DbStore::DbStore(const config::Config& config) : impl_(std::make_unique<Impl>(config)) {}
DbStore::~DbStore() = default;

void DbStore::ConsumeDb(enrich::EnrichedDb& e) noexcept {
  const db::Operation& op = *e.op;
  Impl& m = *impl_;
  try {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.started) m.started = true, m.start_ns = e.now_ns;
    m.operations++;
    std::string_view operation = op.operation, collection = op.collection;
    const auto make_key = [&] {
      m.key.assign(e.service);
      m.key.push_back('\x1f');
      if (e.workload != nullptr) m.key.append(e.workload->key);
      for (std::string_view part :
           {db::SystemName(op.system), operation, collection,
            std::string_view(e.meta->server().address), std::string_view(op.error_type)}) {
        m.key.push_back('\x1f');
        m.key.append(part);
      }
      m.key.push_back('\x1f');
      m.key.append(std::to_string(e.meta->server().port));
    };
    make_key();
    auto it = m.series.find(m.key);
    if (it == m.series.end() && m.series.size() >= m.max_series) {
      // Bounded: a new series past the limit folds its operation and collection.
      m.folded++;
      operation = collection = kOther;
      make_key();
      it = m.series.find(m.key);
    }
    if (it == m.series.end()) {
      auto s = std::make_unique<Series>(15'000'000'000ull, 20, m.prototype);
      s->service.assign(e.service);
      if (e.workload != nullptr) {
        for (const auto& [k, v] : e.workload->labels) s->resource.push_back({k, v});
      }
      s->system.assign(db::SystemName(op.system));
      s->operation.assign(operation);
      s->collection.assign(collection);
      s->server_address = e.meta->server().address;
      s->server_port = e.meta->server().port;
      s->error_type = op.error_type;
      s->counts.assign(Buckets().size() + 1, 0);
      it = m.series.emplace(m.key, std::move(s)).first;
    }
    Series& s = *it->second;
    Slot& slot = s.window.At(e.now_ns, [](Slot& x) {
      x.operations = x.errors = 0;
      x.sketch.Clear();
    });
    slot.operations++;
    if (!op.has_response) {
      s.failed++;
      slot.errors++;
      return;
    }
    if (!op.error_type.empty()) slot.errors++;
    const double secs = static_cast<double>(op.DurationNs()) / 1e9;
    size_t i = 0;
    const auto& b = Buckets();
    while (i < b.size() && secs > b[i]) ++i;
    s.counts[i]++;
    s.sum += secs;
    s.count++;
    slot.sketch.Add(secs);
    if (op.DurationNs() >= m.slow_ns) s.slow++;
  } catch (...) {
    // Out of memory: this operation is not counted.
  }
}

uint64_t DbStore::operations() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->operations;
}

void DbStore::Collect(exposition::Families* out) const {
  using exposition::Family;
  using exposition::MetricType;
  auto duration = Family("db_client_operation_duration_seconds",
                         "Duration of database client operations (PostgreSQL, MySQL, Redis) "
                         "seen on this host, from the first byte of the command to the last "
                         "byte of its reply.",
                         MetricType::Histogram);
  auto slow = Family("redtap_db_slow_operations_total",
                     "Database operations at least db.slow_threshold long.", MetricType::Counter);
  auto failed = Family("redtap_db_operations_failed_total",
                       "Database operations whose reply was never seen (connection closed "
                       "first, or lost to a capture gap).",
                       MetricType::Counter);
  uint64_t folded = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    folded = impl_->folded;
    // Slow and failed operations by (service, workload, system, operation).
    std::map<std::vector<std::string>, std::pair<uint64_t, uint64_t>> by_op;
    std::map<std::vector<std::string>, const Series*> first;
    for (const auto& [key, sp] : impl_->series) {
      const Series& s = *sp;
      exposition::Labels labels = {
          {"service_name", s.service},          {"db_system_name", s.system},
          {"db_operation_name", s.operation},   {"db_collection_name", s.collection},
          {"server_address", s.server_address}, {"server_port", std::to_string(s.server_port)},
          {"error_type", s.error_type}};
      labels.insert(labels.end(), s.resource.begin(), s.resource.end());
      if (s.count > 0) {
        duration.metric.push_back(
            exposition::Histogram(labels, Buckets(), s.counts, s.sum, s.count));
      }
      std::vector<std::string> k = {s.service, s.system, s.operation};
      for (const auto& l : s.resource) k.push_back(l.value);
      auto& v = by_op[k];
      v.first += s.slow;
      v.second += s.failed;
      first.emplace(k, &s);
    }
    for (const auto& [k, v] : by_op) {
      const Series& s = *first[k];
      exposition::Labels labels = {{"service_name", s.service},
                                   {"db_system_name", s.system},
                                   {"db_operation_name", s.operation}};
      labels.insert(labels.end(), s.resource.begin(), s.resource.end());
      slow.metric.push_back(exposition::Counter(labels, static_cast<double>(v.first)));
      if (v.second > 0) {
        failed.metric.push_back(exposition::Counter(labels, static_cast<double>(v.second)));
      }
    }
  }
  out->push_back(std::move(duration));
  out->push_back(std::move(slow));
  out->push_back(std::move(failed));
  out->push_back(exposition::ReasonCounter(
      "redtap_agent_series_folded_total",
      "Transactions or operations whose new series was folded into _OTHER, by the limit hit.",
      {{"db_series", folded}}));
}

std::string DbStore::RenderDatabasesJson(uint64_t now_ns) const {
  using Json = nlohmann::ordered_json;
  Json rows = Json::array();
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<const Series*> sorted;
  for (const auto& [k, s] : impl_->series) sorted.push_back(s.get());
  std::sort(sorted.begin(), sorted.end(), [](const Series* a, const Series* b) {
    return std::tie(a->service, a->system, a->operation, a->collection, a->server_address,
                    a->server_port, a->error_type) < std::tie(b->service, b->system, b->operation,
                                                              b->collection, b->server_address,
                                                              b->server_port, b->error_type);
  });
  for (const Series* s : sorted) {
    Json row;
    row["service"] = s->service;
    for (const auto& l : s->resource) row[l.name] = l.value;
    row["db_system"] = s->system;
    row["operation"] = s->operation;
    row["collection"] = s->collection;
    row["server_address"] = s->server_address;
    row["server_port"] = s->server_port;
    row["error_type"] = s->error_type;
    uint64_t ops_1m = 0, errors_1m = 0;
    s->window.ForEach(now_ns, kMinute, [&](const Slot& x) {
      ops_1m += x.operations;
      errors_1m += x.errors;
    });
    double covered = s->window.CoveredSeconds(now_ns, kMinute);
    if (impl_->started && now_ns >= impl_->start_ns) {
      covered = std::min(covered, static_cast<double>(now_ns - impl_->start_ns) / 1e9);
    }
    covered = std::max(covered, 1.0);
    DDSketch window = impl_->prototype.sketch;
    s->window.ForEach(now_ns, 5 * kMinute, [&](const Slot& x) { window.Merge(x.sketch); });
    row["ops_1m"] = RoundTo(static_cast<double>(ops_1m) / covered, 1e3);
    row["operations_total"] = s->count + s->failed;
    row["failed_total"] = s->failed;
    row["slow_total"] = s->slow;
    row["error_rate_1m"] =
        ops_1m == 0 ? 0.0
                    : RoundTo(static_cast<double>(errors_1m) / static_cast<double>(ops_1m), 1e6);
    for (const auto& [name, q] :
         {std::pair{"p50_ms", 0.5}, std::pair{"p95_ms", 0.95}, std::pair{"p99_ms", 0.99}}) {
      row[name] =
          window.count() == 0 ? Json(nullptr) : Json(RoundTo(window.Quantile(q) * 1e3, 1e3));
    }
    rows.push_back(std::move(row));
  }
  return rows.dump();
}

}  // namespace redtap::metrics

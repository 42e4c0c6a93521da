// SPDX-License-Identifier: Apache-2.0
// Stage 2 of the pipeline: what every sink reads about a transaction, computed once.
//
//   sources (capture, TLS, pcap) ──► Enricher ──► sinks (metrics, events, e-commerce, ...)
//
// service.name (services: rules, else the command), http.route (configured patterns, then
// automatic templating, bounded per service), W3C trace context, tenant (ecommerce.tenant
// rules). Runs on the thread that decodes transactions (the capture reader, or pcap's).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "parsers/db/types.h"
#include "parsers/http/types.h"
#include "userspace/capture/conn_meta.h"
#include "userspace/config/config.h"
#include "userspace/enrich/route_templater.h"
#include "userspace/enrich/service_resolver.h"
#include "userspace/export/event_json.h"
#include "userspace/exposition/registry.h"
#include "userspace/metadata/resolver.h"

namespace redtap::enrich {

/// One decoded transaction and what was derived from it. The views point into the Enricher
/// and the transaction: valid until the next Enrich call.
struct Enriched {
  const http::Transaction* txn = nullptr;
  const ConnMeta* meta = nullptr;
  /// The same transaction when its source gave it up (TransactionSink::OnTransactionOwned):
  /// the last sink (the events) may move from it; the others only read `txn`. Else null.
  http::Transaction* owned = nullptr;
  std::string_view service;  // service.name
  /// http.route ("/*" past routes.max_per_service; "/*unparsed"). Interned: it stays valid
  /// as long as the Enricher, and one service's same route is always at the same address.
  std::string_view route;
  std::string_view trace_id;  // 32 lower-case hex digits, "" without a valid traceparent
  std::string_view span_id;   // 16 lower-case hex digits (the caller's span)
  std::string_view tenant;    // ecommerce.tenant rules, sanitised; "" when none applies
  /// The container / pod of the process (container_id, k8s_* labels); null outside one.
  const metadata::Workload* workload = nullptr;
  uint64_t now_ns = 0;  // monotonic time of the enrichment
  /// Event attributes added by the sinks that annotate (the e-commerce view: tenant.id,
  /// ecommerce.*, error.category), for the event sink, which runs last.
  exporter::EventExtras extras;

  const http::Transaction& t() const { return *txn; }
  bool server() const { return meta->role == Role::kServer; }
};

/// One database operation and what was derived from it (valid until the next EnrichDb call).
/// `op` may be modified by the sinks (the last one, the events, may move from it).
struct EnrichedDb {
  db::Operation* op = nullptr;
  const ConnMeta* meta = nullptr;
  std::string_view service;  // service.name of the process that ran the operation
  const metadata::Workload* workload = nullptr;
  uint64_t now_ns = 0;
  exporter::EventExtras extras;  // the workload's attributes (container, pod)
};

/// W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"): trace id and parent span id, lower
/// case. False when absent or malformed (all-zero ids are invalid).
bool ParseTraceparent(std::string_view value, std::string* trace_id, std::string* span_id);

/// A tenant id: 1..64 of [A-Za-z0-9_.-], not a card number or an e-mail address; else "".
std::string SanitizeTenant(std::string_view raw);

/// The tenant of a request by `rules` (first that yields a value), sanitised; "" if none.
std::string TenantOf(const std::vector<config::TenantRule>& rules, const http::Request& r);

class Enricher {
 public:
  /// Services whose routes are tracked; routes of services beyond are folded into "/*".
  static constexpr size_t kMaxServices = 1024;

  explicit Enricher(const config::Config& config, ExeReader exe_reader = ReadProcExe,
                    metadata::FileReader proc_reader = metadata::ReadFileBounded);

  /// Whether to read W3C trace context (only the events use it; looking
  /// for the header costs a scan of every request's fields). On by default.
  void set_trace_context(bool on) { trace_context_ = on; }
  ~Enricher();
  Enricher(const Enricher&) = delete;
  Enricher& operator=(const Enricher&) = delete;

  /// Derives everything for `txn` seen on `meta` at `now_ns` (monotonic). Never throws.
  Enriched& Enrich(const http::Transaction& txn, const ConnMeta& meta, uint64_t now_ns) noexcept;

  /// Service and workload of a database operation's process.
  EnrichedDb& EnrichDb(db::Operation& op, const ConnMeta& meta, uint64_t now_ns) noexcept;

  /// Transactions whose route was folded into "/*" (routes.max_per_service), per service
  /// seen (0 included), sorted by name. Any thread.
  std::vector<std::pair<std::string, uint64_t>> RoutesFolded() const;
  /// redtap_agent_routes_folded_total{service_name}. Any thread.
  void Collect(exposition::Families* out) const;

  const RouteTemplater& templater() const { return templater_; }
  /// Containers and pods of processes; the agent's PodWatcher publishes the pod list to it.
  metadata::Resolver& metadata() { return metadata_; }

 private:
  struct ServiceRoutes;
  std::string_view Route(std::string_view service, const http::Request& req);
  ServiceRoutes* RoutesOf(std::string_view service);

  const RouteTemplater templater_;
  const size_t max_routes_;
  const std::vector<config::TenantRule> tenant_rules_;
  ServiceResolver resolver_;
  metadata::Resolver metadata_;
  bool trace_context_ = true;
  std::unordered_map<std::string, std::unique_ptr<ServiceRoutes>> services_;
  ServiceRoutes* last_ = nullptr;  // the service of the previous transaction

  // The route of recent (service, target) pairs: keep-alive connections repeat their
  // requests, and templating plus route admission is most of the work. Direct-mapped;
  // targets longer than kCacheMaxTarget are not cached (bounded memory).
  struct CacheEntry {
    const ServiceRoutes* svc = nullptr;
    std::string target;
    const std::string* route = nullptr;  // in svc->routes, or the overflow route
  };
  static constexpr size_t kCacheSize = 256;
  static constexpr size_t kCacheMaxTarget = 256;
  std::array<CacheEntry, kCacheSize> cache_;

  Enriched out_;
  EnrichedDb db_out_;
  std::string route_;
  std::string trace_id_, span_id_, tenant_;
  mutable std::mutex mu_;  // guards ServiceRoutes::folded for RoutesFolded()
};

}  // namespace redtap::enrich

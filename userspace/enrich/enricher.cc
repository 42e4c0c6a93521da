// SPDX-License-Identifier: Apache-2.0
#include "userspace/enrich/enricher.h"

#include <algorithm>
#include <functional>
#include <mutex>

#include "userspace/export/event_json.h"
#include "userspace/export/redact.h"

namespace redtap::enrich {
namespace {

constexpr std::string_view kOverflowRoute = "/*";
const std::string kOverflowRouteText(kOverflowRoute);

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// The 1-based path segment of a path-segment tenant rule, for paths under its prefix.
std::string_view PathSegment(const config::TenantRule& rule, std::string_view target) {
  std::string_view path = exporter::SplitTarget(target).path;
  if (path.empty() || path[0] != '/' || !path.starts_with(rule.path_prefix)) return {};
  path.remove_prefix(1);
  for (uint32_t i = 1; i <= rule.path_segment; ++i) {
    const size_t slash = path.find('/');
    if (i == rule.path_segment) return path.substr(0, slash);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return {};
}

}  // namespace

bool ParseTraceparent(std::string_view v, std::string* trace_id, std::string* span_id) {
  // version "-" trace-id(32) "-" parent-id(16) "-" flags(2); future versions may append.
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  if (v.size() > 55 && v[55] != '-') return false;
  char lower[55];
  for (size_t i = 0; i < 55; ++i) {
    lower[i] = Lower(v[i]);
    if (i != 2 && i != 35 && i != 52 && !IsHex(lower[i])) return false;
  }
  if (lower[0] == 'f' && lower[1] == 'f') return false;
  const std::string_view t(lower + 3, 32);
  const std::string_view s(lower + 36, 16);
  if (t.find_first_not_of('0') == std::string_view::npos ||
      s.find_first_not_of('0') == std::string_view::npos) {
    return false;
  }
  trace_id->assign(t);
  span_id->assign(s);
  return true;
}

std::string SanitizeTenant(std::string_view raw) {
  if (raw.empty() || raw.size() > 64) return "";
  for (char c : raw) {
    if (!IsLabelChar(c)) return "";
  }
  const SegmentClass cls = ClassifySegment(raw, false);
  if (cls == SegmentClass::kCard || cls == SegmentClass::kEmail) return "";
  if (exporter::HasCardNumber(raw)) return "";
  return std::string(raw);
}

std::string TenantOf(const std::vector<config::TenantRule>& rules, const http::Request& r) {
  for (const auto& rule : rules) {
    const std::string v =
        SanitizeTenant(rule.header.empty() ? PathSegment(rule, r.target) : r.Find(rule.header));
    if (!v.empty()) return v;
  }
  return "";
}

// The routes kept for one service (at most routes.max_per_service), and how many
// transactions were folded into "/*" beyond them.
struct Enricher::ServiceRoutes {
  std::string name;
  std::unordered_set<std::string> routes;
  uint64_t folded = 0;
};

Enricher::Enricher(const config::Config& config, ExeReader exe_reader,
                   metadata::FileReader proc_reader)
    : templater_(config.routes),
      max_routes_(config.routes.max_per_service == 0 ? 1 : config.routes.max_per_service),
      tenant_rules_(config.ecommerce.tenant),
      resolver_(config.services, std::move(exe_reader)),
      metadata_(std::move(proc_reader)) {}

Enricher::~Enricher() = default;

Enricher::ServiceRoutes* Enricher::RoutesOf(std::string_view service) {
  // Transactions come in runs of one service: keep the last one.
  if (last_ != nullptr && last_->name == service) return last_;
  auto it = services_.find(std::string(service));
  if (it != services_.end()) return last_ = it->second.get();
  if (services_.size() >= kMaxServices) return nullptr;
  auto s = std::make_unique<ServiceRoutes>();
  s->name.assign(service);
  ServiceRoutes* raw = s.get();
  std::lock_guard<std::mutex> lock(mu_);
  services_.emplace(raw->name, std::move(s));
  return last_ = raw;
}

std::string_view Enricher::Route(std::string_view service, const http::Request& req) {
  if (req.unparsed) return http::kUnparsedTarget;
  ServiceRoutes* svc = RoutesOf(service);
  if (svc == nullptr) return kOverflowRoute;  // services beyond kMaxServices
  const std::string_view target = req.target;
  CacheEntry* ce = nullptr;
  if (target.size() <= kCacheMaxTarget) {
    const size_t h = std::hash<std::string_view>{}(target) ^
                     (reinterpret_cast<uintptr_t>(svc) >> 4) * 0x9e3779b97f4a7c15ull;
    ce = &cache_[(h ^ (h >> 29)) % kCacheSize];
    if (ce->svc == svc && ce->target == target) return *ce->route;
  }
  templater_.Template(service, target, &route_);
  const std::string* route = &kOverflowRouteText;
  if (route_ != kOverflowRoute) {
    auto it = svc->routes.find(route_);
    if (it == svc->routes.end()) {
      if (svc->routes.size() >= max_routes_) {
        // Folded transactions are counted one by one: not cached.
        std::lock_guard<std::mutex> lock(mu_);
        ++svc->folded;
        return kOverflowRoute;
      }
      it = svc->routes.insert(route_).first;
    }
    route = &*it;  // set nodes never move: the same route is always the same string
  }
  if (ce != nullptr) {
    ce->svc = svc;
    ce->target.assign(target);
    ce->route = route;
  }
  return *route;
}

Enriched& Enricher::Enrich(const http::Transaction& txn, const ConnMeta& meta,
                           uint64_t now_ns) noexcept {
  out_.extras.clear();
  out_.service = out_.route = out_.trace_id = out_.span_id = out_.tenant = {};
  out_.workload = nullptr;
  out_.txn = &txn;
  out_.owned = nullptr;
  out_.meta = &meta;
  out_.now_ns = now_ns;
  try {
    // Transactions read from packets (pid 0) have no process, hence no container.
    const metadata::Workload* w = meta.pid != 0 ? metadata_.Of(meta.pid, now_ns) : nullptr;
    out_.workload = w;
    // (A string_view of the workload's name: `w ? w->service_name : ""` would be a temporary.)
    const std::string_view workload_name =
        w != nullptr ? std::string_view(w->service_name) : std::string_view();
    out_.service = resolver_.Resolve(meta, now_ns, workload_name);
    if (w != nullptr) {
      for (const auto& [key, value] : w->attributes) out_.extras.push_back({key, value});
    }
    out_.route = Route(out_.service, txn.request);
    const http::Request& r = txn.request;
    if (const std::string_view tp = trace_context_ ? r.Find("traceparent") : std::string_view();
        !tp.empty() && ParseTraceparent(tp, &trace_id_, &span_id_)) {
      out_.trace_id = trace_id_;
      out_.span_id = span_id_;
    }
    if (!tenant_rules_.empty() && !r.unparsed) {
      tenant_ = TenantOf(tenant_rules_, r);
      out_.tenant = tenant_;
    }
  } catch (...) {
    // Out of memory: the fields not derived yet stay empty.
  }
  return out_;
}

EnrichedDb& Enricher::EnrichDb(db::Operation& op, const ConnMeta& meta, uint64_t now_ns) noexcept {
  db_out_.extras.clear();
  db_out_.op = &op;
  db_out_.meta = &meta;
  db_out_.now_ns = now_ns;
  db_out_.service = {};
  db_out_.workload = nullptr;
  try {
    const metadata::Workload* w = meta.pid != 0 ? metadata_.Of(meta.pid, now_ns) : nullptr;
    db_out_.workload = w;
    const std::string_view workload_name =
        w != nullptr ? std::string_view(w->service_name) : std::string_view();
    db_out_.service = resolver_.Resolve(meta, now_ns, workload_name);
    if (w != nullptr) {
      for (const auto& [key, value] : w->attributes) db_out_.extras.push_back({key, value});
    }
  } catch (...) {
    // Out of memory: the fields not derived yet stay empty.
  }
  return db_out_;
}

void Enricher::Collect(exposition::Families* out) const {
  exposition::MetricFamily folded =
      exposition::Family("redtap_agent_routes_folded_total",
                         "Transactions whose new route went to the overflow route \"/*\" "
                         "because the service reached routes.max_per_service.",
                         exposition::MetricType::Counter);
  for (const auto& [service, n] : RoutesFolded()) {
    folded.metric.push_back(
        exposition::Counter({{"service_name", service}}, static_cast<double>(n)));
  }
  out->push_back(std::move(folded));
}

std::vector<std::pair<std::string, uint64_t>> Enricher::RoutesFolded() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(services_.size());
  for (const auto& [name, s] : services_) out.emplace_back(name, s->folded);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace redtap::enrich

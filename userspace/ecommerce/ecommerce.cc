// SPDX-License-Identifier: Apache-2.0
#include "userspace/ecommerce/ecommerce.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "userspace/export/redact.h"
#include "userspace/metrics/route_templater.h"

namespace redtap::ecommerce {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kOther = "_OTHER";
constexpr std::string_view kSelf = "self";
constexpr size_t kMaxPendingCalls = 4096;
constexpr size_t kMaxErrorSeries = 5000;
constexpr size_t kMaxCurrencies = 50;

bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool Success(const http::Transaction& t) {
  return t.has_response && t.response.status_code >= 200 && t.response.status_code < 400;
}

/// Prometheus label value escaping (\, ", newline).
void AppendEscaped(std::string* out, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

std::string FormatNumber(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  // Shortest form that round-trips is nicer; %.17g is exact. Trim "x.000..." noise.
  double back = 0;
  for (int prec = 1; prec <= 17; ++prec) {
    char b2[64];
    std::snprintf(b2, sizeof(b2), "%.*g", prec, v);
    if (std::sscanf(b2, "%lf", &back) == 1 && back == v) return b2;
  }
  return buf;
}

/// Follows `path` in a parsed JSON value; nullptr when absent.
const Json* Follow(const Json& root, const std::vector<std::string>& path) {
  const Json* cur = &root;
  for (const std::string& key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

bool ParseAmount(const Json& v, double* out) {
  double d = 0;
  if (v.is_number()) {
    d = v.get<double>();
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s.empty() || s.size() > 32) return false;
    for (char c : s) {
      if (!((c >= '0' && c <= '9') || c == '.')) return false;
    }
    if (std::sscanf(s.c_str(), "%lf", &d) != 1) return false;
  } else {
    return false;
  }
  if (!std::isfinite(d) || d < 0 || d > 1e12) return false;
  *out = d;
  return true;
}

std::string ParseCurrency(const Json& v) {
  if (!v.is_string()) return "";
  const std::string& s = v.get_ref<const std::string&>();
  if (s.size() != 3) return "";
  std::string out;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return "";
    out.push_back(static_cast<char>(c >= 'a' ? c - 32 : c));
  }
  return out;
}

/// Bounded set of label values: the first `max` distinct values, then kOther.
class LabelGuard {
 public:
  explicit LabelGuard(size_t max) : max_(max) {}
  std::string_view Admit(const std::string& v) {
    if (v.empty() || seen_.count(v)) return v;
    if (seen_.size() >= max_) {
      ++folded_;
      return kOther;
    }
    seen_.insert(v);
    return v;
  }
  uint64_t folded() const { return folded_; }

 private:
  size_t max_;
  std::unordered_set<std::string> seen_;
  uint64_t folded_ = 0;
};

struct AmountAgg {
  double sum = 0;
  uint64_t count = 0;
  std::vector<uint64_t> buckets;  // cumulative at render time; per-bucket here
};

/// An outbound gateway call waiting for the payment request of its thread.
struct PendingCall {
  TxnFacts facts;
  bool success = false;
  uint64_t start_ts = 0;
  uint64_t end_ts = 0;
};

}  // namespace

bool ParseTraceparent(std::string_view v, std::string* trace_id, std::string* span_id) {
  // version "-" trace-id(32) "-" parent-id(16) "-" flags(2); future versions may append.
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  if (v.size() > 55 && v[55] != '-') return false;
  std::string lower(v.substr(0, 55));
  for (char& c : lower) c = Lower(c);
  for (size_t i = 0; i < 55; ++i) {
    if (i == 2 || i == 35 || i == 52) continue;
    if (!IsHex(lower[i])) return false;
  }
  if (lower.compare(0, 2, "ff") == 0) return false;
  const std::string_view t = std::string_view(lower).substr(3, 32);
  const std::string_view s = std::string_view(lower).substr(36, 16);
  if (t.find_first_not_of('0') == std::string_view::npos ||
      s.find_first_not_of('0') == std::string_view::npos) {
    return false;
  }
  trace_id->assign(t);
  span_id->assign(s);
  return true;
}

std::string SanitizeReason(std::string_view raw) {
  std::string masked = exporter::MaskCardNumbers(raw.substr(0, 256));
  std::string out;
  for (char c : masked) {
    if (out.size() >= 64) break;
    out.push_back(IsLabelChar(c) || c == '*' ? c : '_');
  }
  if (out.find_first_not_of('_') == std::string::npos) return "";
  return out;
}

std::string SanitizeTenant(std::string_view raw) {
  if (raw.empty() || raw.size() > 64) return "";
  for (char c : raw) {
    if (!IsLabelChar(c)) return "";
  }
  const metrics::SegmentClass cls = metrics::ClassifySegment(raw, false);
  if (cls == metrics::SegmentClass::kCard || cls == metrics::SegmentClass::kEmail) return "";
  if (exporter::HasCardNumber(raw)) return "";
  return std::string(raw);
}

struct EcommerceView::Impl {
  explicit Impl(const config::Config& c)
      : cfg(c.ecommerce),
        redactor(c.redaction),
        routes(c.routes),
        tenants(c.ecommerce.max_tenants),
        reasons(c.ecommerce.max_reasons),
        currencies(kMaxCurrencies) {
    for (const auto& s : cfg.services) services.insert(s);
    for (const auto& g : cfg.payments.gateways) {
      for (const auto& h : g.hosts) gateway_by_host.emplace(h, g.name);
    }
    for (const auto& st : cfg.funnel.steps) step_route.push_back(Matcher(st.match.route));
    for (const auto& ep : cfg.payments.endpoints) endpoint_route.push_back(Matcher(ep.route));
    for (const auto& cat : cfg.error_categories) {
      std::vector<size_t> idx;
      for (const auto& r : cat.routes) idx.push_back(Matcher(r));
      category_routes.push_back(std::move(idx));
    }
    const auto& f = cfg.payments.fields;
    reads_fields = cfg.body_bytes > 0 &&
                   (!f.amount.path.empty() || !f.currency.path.empty() || !f.reason.path.empty());
    enabled = cfg.enabled();
  }

  // Index into `matchers` of a route pattern (deduplicated).
  size_t Matcher(const std::string& pattern) {
    for (size_t i = 0; i < matchers.size(); ++i) {
      if (matchers[i].pattern == pattern) return i;
    }
    config::RoutesConfig rc;
    rc.auto_template = false;
    rc.patterns.push_back({"", pattern});
    matchers.push_back({pattern, metrics::RouteTemplater(rc)});
    return matchers.size() - 1;
  }

  /// Per-transaction scratch: the route templates computed so far.
  struct Ctx {
    std::string_view service;
    const http::Transaction* t = nullptr;
    std::string http_route;
    bool have_route = false;
    std::string tmp;
    const std::string& Route(const Impl& impl) {
      if (!have_route) {
        impl.routes.Template(service, t->request.target, &http_route);
        have_route = true;
      }
      return http_route;
    }
  };

  bool RouteMatches(size_t idx, Ctx& ctx) const {
    const auto& m = matchers[idx];
    m.templater.Template("", ctx.t->request.target, &ctx.tmp);
    return ctx.tmp == m.pattern || ctx.Route(*this) == m.pattern;
  }

  static bool MethodMatches(const std::string& want, const std::string& got) {
    return want.empty() || want == got;
  }

  bool InScope(std::string_view service) const {
    return services.empty() || services.count(std::string(service)) > 0;
  }

  std::string_view GatewayOf(const http::Request& r) const {
    if (gateway_by_host.empty()) return {};
    std::string host(http::RequestHost(r));
    for (char& c : host) c = Lower(c);
    auto it = gateway_by_host.find(host);
    return it == gateway_by_host.end() ? std::string_view() : std::string_view(it->second);
  }

  bool IsPaymentEndpoint(const http::Request& r, Ctx& ctx) const {
    for (size_t i = 0; i < cfg.payments.endpoints.size(); ++i) {
      if (MethodMatches(cfg.payments.endpoints[i].method, r.method) &&
          RouteMatches(endpoint_route[i], ctx)) {
        return true;
      }
    }
    return false;
  }

  std::string Tenant(const http::Request& r) const {
    for (const auto& rule : cfg.tenant) {
      if (!rule.header.empty()) {
        const std::string v = SanitizeTenant(r.Find(rule.header));
        if (!v.empty()) return v;
        continue;
      }
      // Path segment (1-based) of the path without query, for paths under the rule's prefix.
      std::string_view path = exporter::SplitTarget(r.target).path;
      if (path.empty() || path[0] != '/' || !path.starts_with(rule.path_prefix)) continue;
      path.remove_prefix(1);
      std::string_view seg;
      bool found = false;
      for (uint32_t i = 1; i <= rule.path_segment; ++i) {
        const size_t slash = path.find('/');
        seg = path.substr(0, slash);
        if (i == rule.path_segment) {
          found = true;
          break;
        }
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
      }
      if (!found) continue;
      const std::string v = SanitizeTenant(seg);
      if (!v.empty()) return v;
    }
    return "";
  }

  void ReadFields(const http::Transaction& t, TxnFacts* f) const {
    const auto& fields = cfg.payments.fields;
    Json req_json, resp_json;
    bool req_parsed = false, resp_parsed = false, req_ok = false, resp_ok = false;
    auto body = [&](bool response) -> const Json* {
      bool& parsed = response ? resp_parsed : req_parsed;
      bool& ok = response ? resp_ok : req_ok;
      Json& j = response ? resp_json : req_json;
      if (!parsed) {
        parsed = true;
        const std::string& b = response ? t.response.body_prefix : t.request.body_prefix;
        if (!b.empty() && (!response || t.has_response)) {
          j = Json::parse(b.begin(), b.end(), nullptr, false);
          ok = !j.is_discarded();
        }
      }
      return ok ? &j : nullptr;
    };
    auto secret = [&](const config::BodyField& bf) {
      for (const auto& k : bf.path) {
        if (redactor.IsSecretName(k)) return true;
      }
      return false;
    };
    if (!fields.amount.path.empty() && !secret(fields.amount)) {
      if (const Json* j = body(fields.amount.response)) {
        if (const Json* v = Follow(*j, fields.amount.path)) {
          f->has_amount = ParseAmount(*v, &f->amount);
        }
      }
    }
    if (!fields.currency.path.empty() && !secret(fields.currency)) {
      if (const Json* j = body(fields.currency.response)) {
        if (const Json* v = Follow(*j, fields.currency.path)) f->currency = ParseCurrency(*v);
      }
    }
    if (!fields.reason.path.empty() && !secret(fields.reason)) {
      if (const Json* j = body(fields.reason.response)) {
        if (const Json* v = Follow(*j, fields.reason.path)) {
          if (v->is_string()) {
            f->reason = SanitizeReason(v->get_ref<const std::string&>());
          } else if (v->is_number_integer()) {
            f->reason = SanitizeReason(v->dump());
          }
        }
      }
    }
  }

  // Facts that need no state. `endpoint` tells whether it is a payment endpoint request.
  TxnFacts Compute(const http::Transaction& t, const ConnMeta& meta, std::string_view service,
                   bool* endpoint) const {
    TxnFacts f;
    *endpoint = false;
    const http::Request& r = t.request;
    if (const std::string_view tp = r.Find("traceparent"); !tp.empty()) {
      ParseTraceparent(tp, &f.trace_id, &f.span_id);
    }
    if (!enabled || r.placeholder || r.unparsed) return f;
    Ctx ctx;
    ctx.service = service;
    ctx.t = &t;
    const bool server = meta.role == Role::kServer;
    const bool in_scope = InScope(service);
    if (in_scope) f.tenant = Tenant(r);
    if (server && in_scope) {
      for (size_t i = 0; i < cfg.funnel.steps.size(); ++i) {
        const auto& st = cfg.funnel.steps[i];
        if (MethodMatches(st.match.method, r.method) && RouteMatches(step_route[i], ctx)) {
          f.step = st.name;
          break;
        }
      }
      *endpoint = IsPaymentEndpoint(r, ctx);
    }
    if (!server) f.gateway = std::string(GatewayOf(r));
    if ((*endpoint || !f.gateway.empty()) && reads_fields) ReadFields(t, &f);
    if (in_scope && t.has_response) {
      const int code = t.response.status_code;
      for (size_t i = 0; i < cfg.error_categories.size(); ++i) {
        const auto& cat = cfg.error_categories[i];
        // Where the error happened: server transactions unless the category says client.
        if ((cat.kind != "client") != server) continue;
        bool status = false;
        for (const auto& s : cat.statuses) status = status || (code >= s.lo && code <= s.hi);
        if (!status) continue;
        bool route = category_routes[i].empty();
        for (size_t idx : category_routes[i]) route = route || RouteMatches(idx, ctx);
        if (!route) continue;
        f.error_category = cat.name;
        break;
      }
    }
    return f;
  }

  // ---- state (under mu) ----

  // `tenant` is the label value (already bounded).
  void CountAttempt(const std::string& gateway, bool success, const TxnFacts& f,
                    const std::string& tenant = "") {
    const std::string reason(reasons.Admit(f.reason));
    attempts[{gateway, success, reason, tenant}]++;
    if (f.has_amount) {
      const std::string currency(currencies.Admit(f.currency));
      AmountAgg& a = amounts[{gateway, success, currency}];
      if (a.buckets.empty()) a.buckets.assign(cfg.amount_buckets.size(), 0);
      a.sum += f.amount;
      a.count++;
      for (size_t i = 0; i < cfg.amount_buckets.size(); ++i) {
        if (f.amount <= cfg.amount_buckets[i]) {
          a.buckets[i]++;
          break;
        }
      }
    }
  }

  void FlushExpired(uint64_t now_ns) {
    if (pending.empty()) return;
    for (auto it = pending.begin(); it != pending.end();) {
      if (now_ns > it->second.end_ts + kGatewayHoldNs) {
        CountAttempt(it->second.facts.gateway, it->second.success, it->second.facts);
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Hold(uint64_t key, PendingCall call) {
    auto it = pending.find(key);
    if (it != pending.end()) {
      CountAttempt(it->second.facts.gateway, it->second.success, it->second.facts);
      pending.erase(it);
    }
    if (pending.size() >= kMaxPendingCalls) {
      auto oldest = pending.begin();
      for (auto i = pending.begin(); i != pending.end(); ++i) {
        if (i->second.end_ts < oldest->second.end_ts) oldest = i;
      }
      CountAttempt(oldest->second.facts.gateway, oldest->second.success, oldest->second.facts);
      pending.erase(oldest);
    }
    pending.emplace(key, std::move(call));
  }

  void RecordLocked(const http::Transaction& t, const ConnMeta& meta, std::string_view service,
                    uint64_t now_ns, TxnFacts& f, bool endpoint) {
    if (now_ns - last_flush_ns >= 1'000'000'000ull) {
      FlushExpired(now_ns);
      last_flush_ns = now_ns;
    }
    const bool success = Success(t);
    const uint64_t key = (static_cast<uint64_t>(meta.pid) << 32) | meta.tid;
    const bool server = meta.role == Role::kServer;
    const std::string tenant(tenants.Admit(f.tenant));
    if (!f.step.empty()) {
      for (size_t i = 0; i < cfg.funnel.steps.size(); ++i) {
        if (cfg.funnel.steps[i].name == f.step) {
          funnel[{i, tenant, success}]++;
          break;
        }
      }
    }
    if (!server && !f.gateway.empty()) {
      PendingCall call;
      call.facts = f;
      call.success = success;
      call.start_ts = t.request.first_byte_ts;
      call.end_ts = t.has_response ? t.response.last_byte_ts : t.request.last_byte_ts;
      if (meta.tid != 0) {
        Hold(key, std::move(call));
      } else {
        CountAttempt(f.gateway, success, f);
      }
    }
    if (server && InScope(service) && meta.tid != 0) {
      auto it = pending.find(key);
      if (it != pending.end()) {
        const PendingCall& c = it->second;
        const uint64_t end = t.has_response ? t.response.last_byte_ts : t.request.last_byte_ts;
        if (endpoint && c.start_ts >= t.request.first_byte_ts && c.start_ts <= end) {
          f.gateway = c.facts.gateway;
          if (!f.has_amount && c.facts.has_amount) {
            f.has_amount = true;
            f.amount = c.facts.amount;
            if (f.currency.empty()) f.currency = c.facts.currency;
          }
          if (f.reason.empty() && !success) f.reason = c.facts.reason;
        } else {
          CountAttempt(c.facts.gateway, c.success, c.facts);
        }
        pending.erase(it);
      }
    }
    if (endpoint) {
      if (f.gateway.empty()) f.gateway = std::string(kSelf);
      if (success) f.reason.clear();
      CountAttempt(f.gateway, success, f, tenant);
    }
    if (!f.error_category.empty()) {
      Ctx ctx;
      ctx.service = service;
      ctx.t = &t;
      std::string route = ctx.Route(*this);
      const int code = t.has_response ? t.response.status_code : 0;
      ErrorKey k{f.error_category, std::string(service), route, code, server};
      auto it = errors.find(k);
      if (it == errors.end() && errors.size() >= kMaxErrorSeries) {
        k.route = "/*";
        ++errors_folded;
      }
      errors[k]++;
    }
  }

  config::EcommerceConfig cfg;
  exporter::Redactor redactor;
  metrics::RouteTemplater routes;
  struct RouteMatcher {
    std::string pattern;
    metrics::RouteTemplater templater;
  };
  std::vector<RouteMatcher> matchers;
  std::vector<size_t> step_route;
  std::vector<size_t> endpoint_route;
  std::vector<std::vector<size_t>> category_routes;
  std::unordered_set<std::string> services;
  std::unordered_map<std::string, std::string> gateway_by_host;
  bool reads_fields = false;
  bool enabled = false;

  std::mutex mu;
  LabelGuard tenants;
  LabelGuard reasons;
  LabelGuard currencies;
  std::map<std::tuple<size_t, std::string, bool>, uint64_t> funnel;  // step, tenant, success
  std::map<std::tuple<std::string, bool, std::string, std::string>, uint64_t> attempts;
  std::map<std::tuple<std::string, bool, std::string>, AmountAgg> amounts;
  struct ErrorKey {
    std::string category;
    std::string service;
    std::string route;
    int status = 0;
    bool server = true;  // where the error happened: the kind label
    auto operator<=>(const ErrorKey&) const = default;
  };
  std::map<ErrorKey, uint64_t> errors;
  uint64_t errors_folded = 0;
  std::unordered_map<uint64_t, PendingCall> pending;
  uint64_t last_flush_ns = 0;
};

EcommerceView::EcommerceView(const config::Config& config)
    : impl_(std::make_unique<Impl>(config)) {}
EcommerceView::~EcommerceView() = default;

bool EcommerceView::enabled() const noexcept { return impl_->enabled; }

size_t EcommerceView::BodyBytesToKeep(const http::Request& head) const noexcept {
  const Impl& m = *impl_;
  if (!m.reads_fields || head.placeholder) return 0;
  try {
    if (!m.GatewayOf(head).empty()) return m.cfg.body_bytes;
    http::Transaction t;  // the matchers take a transaction; only the target is read
    Impl::Ctx ctx;
    ctx.t = &t;
    t.request.target = head.target;
    for (size_t i = 0; i < m.cfg.payments.endpoints.size(); ++i) {
      if (Impl::MethodMatches(m.cfg.payments.endpoints[i].method, head.method) &&
          m.RouteMatches(m.endpoint_route[i], ctx)) {
        return m.cfg.body_bytes;
      }
    }
  } catch (...) {
  }
  return 0;
}

TxnFacts EcommerceView::Inspect(const http::Transaction& t, const ConnMeta& meta,
                                std::string_view service) const {
  bool endpoint = false;
  return impl_->Compute(t, meta, service, &endpoint);
}

void EcommerceView::Record(const http::Transaction& t, const ConnMeta& meta,
                           std::string_view service, uint64_t now_ns,
                           exporter::EventExtras* extras) noexcept {
  try {
    bool endpoint = false;
    TxnFacts f = impl_->Compute(t, meta, service, &endpoint);
    if (impl_->enabled) {
      std::lock_guard<std::mutex> l(impl_->mu);
      impl_->RecordLocked(t, meta, service, now_ns, f, endpoint);
    }
    if (extras) AppendExtras(f, extras);
  } catch (...) {
    // Out of memory: this transaction is not counted.
  }
}

void EcommerceView::AppendExtras(const TxnFacts& f, exporter::EventExtras* extras) {
  auto str = [&](const char* key, const std::string& v) {
    if (!v.empty()) extras->push_back({key, v, 0, false});
  };
  str("tenant.id", f.tenant);
  str("ecommerce.step", f.step);
  str("ecommerce.gateway", f.gateway);
  if (f.has_amount) extras->push_back({"ecommerce.amount", "", f.amount, true});
  str("ecommerce.currency", f.currency);
  str("ecommerce.reason", f.reason);
  str("error.category", f.error_category);
  str("trace_id", f.trace_id);
  str("span_id", f.span_id);
}

std::string EcommerceView::RenderPrometheus(uint64_t now_ns) {
  Impl& m = *impl_;
  if (!m.enabled) return "";
  std::lock_guard<std::mutex> l(m.mu);
  m.FlushExpired(now_ns);
  std::string out;
  auto label = [&](const char* name, std::string_view v, bool first = false) {
    if (!first) out.push_back(',');
    out.append(name);
    out.append("=\"");
    AppendEscaped(&out, v);
    out.push_back('"');
  };
  auto outcome = [](bool s) { return s ? "success" : "failure"; };
  out +=
      "# HELP redtap_ecommerce_funnel_step_total Requests of each checkout funnel step, by "
      "tenant and outcome (success = 2xx/3xx).\n"
      "# TYPE redtap_ecommerce_funnel_step_total counter\n";
  for (const auto& [k, v] : m.funnel) {
    out += "redtap_ecommerce_funnel_step_total{";
    label("funnel", m.cfg.funnel.name, true);
    label("step", m.cfg.funnel.steps[std::get<0>(k)].name);
    label("tenant", std::get<1>(k));
    label("outcome", outcome(std::get<2>(k)));
    out += "} " + std::to_string(v) + "\n";
  }
  out +=
      "# HELP redtap_ecommerce_payment_attempts_total Payment attempts: requests to the "
      "payment endpoints (gateway \"self\" unless they called a gateway) and gateway calls "
      "made outside them.\n"
      "# TYPE redtap_ecommerce_payment_attempts_total counter\n";
  for (const auto& [k, v] : m.attempts) {
    out += "redtap_ecommerce_payment_attempts_total{";
    label("gateway", std::get<0>(k), true);
    label("outcome", outcome(std::get<1>(k)));
    label("reason", std::get<2>(k));
    label("tenant", std::get<3>(k));
    out += "} " + std::to_string(v) + "\n";
  }
  out +=
      "# HELP redtap_ecommerce_payment_amount_total Sum of the amounts of payment attempts.\n"
      "# TYPE redtap_ecommerce_payment_amount_total counter\n";
  for (const auto& [k, a] : m.amounts) {
    out += "redtap_ecommerce_payment_amount_total{";
    label("gateway", std::get<0>(k), true);
    label("outcome", outcome(std::get<1>(k)));
    label("currency", std::get<2>(k));
    out += "} " + FormatNumber(a.sum) + "\n";
  }
  out +=
      "# HELP redtap_ecommerce_payment_amounts Amounts of payment attempts (currency units).\n"
      "# TYPE redtap_ecommerce_payment_amounts histogram\n";
  for (const auto& [k, a] : m.amounts) {
    std::string labels;
    std::swap(out, labels);
    label("gateway", std::get<0>(k), true);
    label("outcome", outcome(std::get<1>(k)));
    label("currency", std::get<2>(k));
    std::swap(out, labels);
    uint64_t cum = 0;
    for (size_t i = 0; i < m.cfg.amount_buckets.size(); ++i) {
      cum += i < a.buckets.size() ? a.buckets[i] : 0;
      out += "redtap_ecommerce_payment_amounts_bucket{" + labels + ",le=\"" +
             FormatNumber(m.cfg.amount_buckets[i]) + "\"} " + std::to_string(cum) + "\n";
    }
    out += "redtap_ecommerce_payment_amounts_bucket{" + labels + ",le=\"+Inf\"} " +
           std::to_string(a.count) + "\n";
    out += "redtap_ecommerce_payment_amounts_sum{" + labels + "} " + FormatNumber(a.sum) + "\n";
    out += "redtap_ecommerce_payment_amounts_count{" + labels + "} " + std::to_string(a.count) +
           "\n";
  }
  out +=
      "# HELP redtap_ecommerce_errors_total Errors by category (ecommerce.error_categories).\n"
      "# TYPE redtap_ecommerce_errors_total counter\n";
  for (const auto& [k, v] : m.errors) {
    out += "redtap_ecommerce_errors_total{";
    label("category", k.category, true);
    label("kind", k.server ? "server" : "client");
    label("service_name", k.service);
    label("http_route", k.route);
    label("http_response_status_code", std::to_string(k.status));
    out += "} " + std::to_string(v) + "\n";
  }
  out +=
      "# HELP redtap_ecommerce_label_folded_total Values folded into \"_OTHER\" (or route "
      "\"/*\") by the e-commerce cardinality bounds.\n"
      "# TYPE redtap_ecommerce_label_folded_total counter\n";
  out += "redtap_ecommerce_label_folded_total{label=\"tenant\"} " +
         std::to_string(m.tenants.folded()) + "\n";
  out += "redtap_ecommerce_label_folded_total{label=\"reason\"} " +
         std::to_string(m.reasons.folded()) + "\n";
  out += "redtap_ecommerce_label_folded_total{label=\"currency\"} " +
         std::to_string(m.currencies.folded()) + "\n";
  out += "redtap_ecommerce_label_folded_total{label=\"http_route\"} " +
         std::to_string(m.errors_folded) + "\n";
  return out;
}

std::string EcommerceView::RenderFunnelJson(uint64_t now_ns) {
  Impl& m = *impl_;
  Json root = Json::object();
  std::lock_guard<std::mutex> l(m.mu);
  m.FlushExpired(now_ns);
  const size_t n = m.cfg.funnel.steps.size();
  struct Counts {
    std::vector<uint64_t> success, failure;
  };
  auto steps_json = [&](const Counts& c) {
    Json steps = Json::array();
    for (size_t i = 0; i < n; ++i) {
      Json s = {{"step", m.cfg.funnel.steps[i].name},
                {"attempts", c.success[i] + c.failure[i]},
                {"success", c.success[i]},
                {"failure", c.failure[i]}};
      if (i == 0) {
        s["conversion"] = nullptr;
      } else if (c.success[i - 1] == 0) {
        s["conversion"] = nullptr;
      } else {
        s["conversion"] = static_cast<double>(c.success[i]) / static_cast<double>(c.success[i - 1]);
      }
      steps.push_back(std::move(s));
    }
    return steps;
  };
  Counts total{std::vector<uint64_t>(n), std::vector<uint64_t>(n)};
  std::map<std::string, Counts> by_tenant;
  for (const auto& [k, v] : m.funnel) {
    const auto& [step, tenant, success] = k;
    (success ? total.success : total.failure)[step] += v;
    auto [it, inserted] = by_tenant.try_emplace(
        tenant, Counts{std::vector<uint64_t>(n), std::vector<uint64_t>(n)});
    (success ? it->second.success : it->second.failure)[step] += v;
  }
  root["funnel"] = m.cfg.funnel.name;
  root["steps"] = steps_json(total);
  if (n >= 2 && total.success[0] > 0) {
    root["overall_conversion"] =
        static_cast<double>(total.success[n - 1]) / static_cast<double>(total.success[0]);
  } else {
    root["overall_conversion"] = nullptr;
  }
  Json tenants = Json::array();
  for (const auto& [tenant, c] : by_tenant) {
    tenants.push_back({{"tenant", tenant}, {"steps", steps_json(c)}});
  }
  root["tenants"] = std::move(tenants);
  // Payments by gateway.
  struct Pay {
    uint64_t success = 0, failure = 0;
    std::map<std::string, uint64_t> reasons;
    std::map<std::string, std::array<double, 4>> amounts;  // currency: ok sum, ok n, ko sum, ko n
  };
  std::map<std::string, Pay> pays;
  for (const auto& [k, v] : m.attempts) {
    Pay& p = pays[std::get<0>(k)];
    (std::get<1>(k) ? p.success : p.failure) += v;
    if (!std::get<1>(k)) p.reasons[std::get<2>(k)] += v;
  }
  for (const auto& [k, a] : m.amounts) {
    auto& arr = pays[std::get<0>(k)].amounts[std::get<2>(k)];
    const size_t o = std::get<1>(k) ? 0 : 2;
    arr[o] += a.sum;
    arr[o + 1] += static_cast<double>(a.count);
  }
  Json payments = Json::array();
  for (const auto& [gw, p] : pays) {
    Json g = {{"gateway", gw},
              {"attempts", p.success + p.failure},
              {"success", p.success},
              {"failure", p.failure}};
    const uint64_t all = p.success + p.failure;
    g["success_rate"] = all ? Json(static_cast<double>(p.success) / static_cast<double>(all))
                            : Json(nullptr);
    Json reasons = Json::object();
    for (const auto& [r, c] : p.reasons) reasons[r.empty() ? "" : r] = c;
    g["failure_reasons"] = std::move(reasons);
    Json amounts = Json::object();
    for (const auto& [cur, arr] : p.amounts) {
      amounts[cur] = {{"success_sum", arr[0]},
                      {"success_count", arr[1]},
                      {"failure_sum", arr[2]},
                      {"failure_count", arr[3]},
                      {"failure_average", arr[3] > 0 ? Json(arr[2] / arr[3]) : Json(nullptr)}};
    }
    g["amounts"] = std::move(amounts);
    payments.push_back(std::move(g));
  }
  root["payments"] = std::move(payments);
  return root.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace redtap::ecommerce

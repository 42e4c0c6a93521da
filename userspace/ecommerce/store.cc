// SPDX-License-Identifier: Apache-2.0
#include "userspace/ecommerce/store.h"

#include <array>
#include <nlohmann/json.hpp>

namespace redtap::ecommerce {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kOther = "_OTHER";
constexpr std::string_view kSelf = "self";
constexpr size_t kMaxPendingCalls = 4096;
constexpr size_t kMaxErrorSeries = 5000;
constexpr size_t kMaxCurrencies = 50;
constexpr uint64_t kFlushEveryNs = 1'000'000'000ull;

bool Success(const http::Transaction& t) {
  return t.has_response && t.response.status_code >= 200 && t.response.status_code < 400;
}

uint64_t EndTs(const http::Transaction& t) {
  return t.has_response ? t.response.last_byte_ts : t.request.last_byte_ts;
}

const char* Outcome(bool success) { return success ? "success" : "failure"; }

}  // namespace

std::string_view LabelGuard::Admit(const std::string& v) {
  if (v.empty() || seen_.count(v)) return v;
  if (seen_.size() >= max_) {
    ++folded_;
    return kOther;
  }
  seen_.insert(v);
  return v;
}

Store::Store(const config::EcommerceConfig& config)
    : cfg_(config),
      tenants_(config.max_tenants),
      reasons_(config.max_reasons),
      currencies_(kMaxCurrencies) {}

void Store::Record(const enrich::Enriched& e, TxnFacts& f) {
  std::lock_guard<std::mutex> l(mu_);
  RecordLocked(e, f);
}

// `tenant` is the label value (already bounded).
void Store::CountAttempt(const std::string& gateway, bool success, const TxnFacts& f,
                         const std::string& tenant) {
  const std::string reason(reasons_.Admit(f.reason));
  attempts_[{gateway, success, reason, tenant}]++;
  if (!f.has_amount) return;
  const std::string currency(currencies_.Admit(f.currency));
  AmountAgg& a = amounts_[{gateway, success, currency}];
  if (a.buckets.empty()) a.buckets.assign(cfg_.amount_buckets.size() + 1, 0);
  a.sum += f.amount;
  a.count++;
  size_t i = 0;
  while (i < cfg_.amount_buckets.size() && f.amount > cfg_.amount_buckets[i]) ++i;
  a.buckets[i]++;
}

void Store::FlushExpired(uint64_t now_ns) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now_ns > it->second.end_ts + kGatewayHoldNs) {
      CountAttempt(it->second.facts.gateway, it->second.success, it->second.facts);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void Store::Hold(uint64_t key, PendingCall call) {
  auto it = pending_.find(key);
  if (it != pending_.end()) {
    CountAttempt(it->second.facts.gateway, it->second.success, it->second.facts);
    pending_.erase(it);
  }
  if (pending_.size() >= kMaxPendingCalls) {
    auto oldest = pending_.begin();
    for (auto i = pending_.begin(); i != pending_.end(); ++i) {
      if (i->second.end_ts < oldest->second.end_ts) oldest = i;
    }
    CountAttempt(oldest->second.facts.gateway, oldest->second.success, oldest->second.facts);
    pending_.erase(oldest);
  }
  pending_.emplace(key, std::move(call));
}

// A payment request served by a thread that called a gateway meanwhile: the attempt is the
// gateway's, with the call's amount and reason when the request's own body had none.
void Store::JoinGatewayCall(const enrich::Enriched& e, bool success, TxnFacts& f) {
  const ConnMeta& meta = *e.meta;
  const uint64_t key = (static_cast<uint64_t>(meta.pid) << 32) | meta.tid;
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  const PendingCall& c = it->second;
  const http::Transaction& t = e.t();
  if (f.payment_endpoint && c.start_ts >= t.request.first_byte_ts && c.start_ts <= EndTs(t)) {
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
  pending_.erase(it);
}

void Store::CountError(const enrich::Enriched& e, const TxnFacts& f) {
  ErrorKey k{f.error_category, std::string(e.service), std::string(e.route),
             e.t().has_response ? e.t().response.status_code : 0, e.server()};
  auto it = errors_.find(k);
  if (it == errors_.end() && errors_.size() >= kMaxErrorSeries) {
    k.route = "/*";
    ++errors_folded_;
  }
  errors_[k]++;
}

void Store::RecordLocked(const enrich::Enriched& e, TxnFacts& f) {
  if (e.now_ns - last_flush_ns_ >= kFlushEveryNs) {
    FlushExpired(e.now_ns);
    last_flush_ns_ = e.now_ns;
  }
  const http::Transaction& t = e.t();
  const ConnMeta& meta = *e.meta;
  const bool success = Success(t);
  const bool server = e.server();
  const std::string tenant(tenants_.Admit(f.tenant));
  for (size_t i = 0; !f.step.empty() && i < cfg_.funnel.steps.size(); ++i) {
    if (cfg_.funnel.steps[i].name == f.step) {
      funnel_[{i, tenant, success}]++;
      break;
    }
  }
  if (!server && !f.gateway.empty()) {
    PendingCall call{f, success, t.request.first_byte_ts, EndTs(t)};
    if (meta.tid != 0) {
      const uint64_t key = (static_cast<uint64_t>(meta.pid) << 32) | meta.tid;
      Hold(key, std::move(call));
    } else {
      CountAttempt(f.gateway, success, f);
    }
  }
  if (server && f.in_scope && meta.tid != 0) JoinGatewayCall(e, success, f);
  if (f.payment_endpoint) {
    if (f.gateway.empty()) f.gateway = std::string(kSelf);
    if (success) f.reason.clear();
    CountAttempt(f.gateway, success, f, tenant);
  }
  if (!f.error_category.empty()) CountError(e, f);
}

void Store::Collect(uint64_t now_ns, exposition::Families* out) {
  using exposition::Counter;
  using exposition::Family;
  using exposition::MetricType;
  std::lock_guard<std::mutex> l(mu_);
  FlushExpired(now_ns);
  auto funnel = Family("redtap_ecommerce_funnel_step_total",
                       "Requests of each checkout funnel step, by tenant and outcome (success = "
                       "2xx/3xx).",
                       MetricType::Counter);
  for (const auto& [k, v] : funnel_) {
    funnel.metric.push_back(Counter({{"funnel", cfg_.funnel.name},
                                     {"step", cfg_.funnel.steps[std::get<0>(k)].name},
                                     {"tenant", std::get<1>(k)},
                                     {"outcome", Outcome(std::get<2>(k))}},
                                    static_cast<double>(v)));
  }
  out->push_back(std::move(funnel));
  auto attempts = Family("redtap_ecommerce_payment_attempts_total",
                         "Payment attempts: requests to the payment endpoints (gateway \"self\" "
                         "unless they called a gateway) and gateway calls made outside them.",
                         MetricType::Counter);
  for (const auto& [k, v] : attempts_) {
    attempts.metric.push_back(Counter({{"gateway", std::get<0>(k)},
                                       {"outcome", Outcome(std::get<1>(k))},
                                       {"reason", std::get<2>(k)},
                                       {"tenant", std::get<3>(k)}},
                                      static_cast<double>(v)));
  }
  out->push_back(std::move(attempts));
  auto total = Family("redtap_ecommerce_payment_amount_total",
                      "Sum of the amounts of payment attempts.", MetricType::Counter);
  auto amounts = Family("redtap_ecommerce_payment_amounts",
                        "Amounts of payment attempts (currency units).", MetricType::Histogram);
  for (const auto& [k, a] : amounts_) {
    const exposition::Labels labels = {{"gateway", std::get<0>(k)},
                                       {"outcome", Outcome(std::get<1>(k))},
                                       {"currency", std::get<2>(k)}};
    total.metric.push_back(Counter(labels, a.sum));
    amounts.metric.push_back(
        exposition::Histogram(labels, cfg_.amount_buckets, a.buckets, a.sum, a.count));
  }
  out->push_back(std::move(total));
  out->push_back(std::move(amounts));
  auto errors = Family("redtap_ecommerce_errors_total",
                       "Errors by category (ecommerce.error_categories), counted where they "
                       "happened (kind).",
                       MetricType::Counter);
  for (const auto& [k, v] : errors_) {
    errors.metric.push_back(Counter({{"category", k.category},
                                     {"kind", k.server ? "server" : "client"},
                                     {"service_name", k.service},
                                     {"http_route", k.route},
                                     {"http_response_status_code", std::to_string(k.status)}},
                                    static_cast<double>(v)));
  }
  out->push_back(std::move(errors));
  auto folded = Family("redtap_ecommerce_label_folded_total",
                       "Values folded into \"_OTHER\" (or route \"/*\") by the e-commerce "
                       "cardinality bounds.",
                       MetricType::Counter);
  for (const auto& [label, v] :
       {std::pair{"tenant", tenants_.folded()}, std::pair{"reason", reasons_.folded()},
        std::pair{"currency", currencies_.folded()}, std::pair{"http_route", errors_folded_}}) {
    folded.metric.push_back(Counter({{"label", label}}, static_cast<double>(v)));
  }
  out->push_back(std::move(folded));
}

std::string Store::FunnelJson(uint64_t now_ns) {
  Json root = Json::object();
  std::lock_guard<std::mutex> l(mu_);
  FlushExpired(now_ns);
  const size_t n = cfg_.funnel.steps.size();
  struct Counts {
    std::vector<uint64_t> success, failure;
  };
  auto steps_json = [&](const Counts& c) {
    Json steps = Json::array();
    for (size_t i = 0; i < n; ++i) {
      Json s = {{"step", cfg_.funnel.steps[i].name},
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
  for (const auto& [k, v] : funnel_) {
    const auto& [step, tenant, success] = k;
    (success ? total.success : total.failure)[step] += v;
    auto [it, inserted] =
        by_tenant.try_emplace(tenant, Counts{std::vector<uint64_t>(n), std::vector<uint64_t>(n)});
    (success ? it->second.success : it->second.failure)[step] += v;
  }
  root["funnel"] = cfg_.funnel.name;
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
  root["payments"] = PaymentsJson();
  return root.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Payments by gateway: attempts, success rate, failure reasons, amounts per currency.
nlohmann::json Store::PaymentsJson() const {
  struct Pay {
    uint64_t success = 0, failure = 0;
    std::map<std::string, uint64_t> reasons;
    std::map<std::string, std::array<double, 4>> amounts;  // currency: ok sum, ok n, ko sum, ko n
  };
  std::map<std::string, Pay> pays;
  for (const auto& [k, v] : attempts_) {
    Pay& p = pays[std::get<0>(k)];
    (std::get<1>(k) ? p.success : p.failure) += v;
    if (!std::get<1>(k)) p.reasons[std::get<2>(k)] += v;
  }
  for (const auto& [k, a] : amounts_) {
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
    g["success_rate"] =
        all ? Json(static_cast<double>(p.success) / static_cast<double>(all)) : Json(nullptr);
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
  return payments;
}

}  // namespace redtap::ecommerce

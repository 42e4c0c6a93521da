// SPDX-License-Identifier: Apache-2.0
#include "userspace/ecommerce/classifier.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace redtap::ecommerce {
namespace {

using Json = nlohmann::json;

bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool MethodMatches(const std::string& want, const std::string& got) {
  return want.empty() || want == got;
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

// The JSON bodies of one transaction, each parsed at most once.
class Bodies {
 public:
  explicit Bodies(const http::Transaction& t) : t_(t) {}
  const Json* Get(bool response) {
    Side& s = response ? resp_ : req_;
    if (!s.parsed) {
      s.parsed = true;
      const std::string& b = response ? t_.response.body_prefix : t_.request.body_prefix;
      if (!b.empty() && (!response || t_.has_response)) {
        s.json = Json::parse(b.begin(), b.end(), nullptr, false);
        s.ok = !s.json.is_discarded();
      }
    }
    return s.ok ? &s.json : nullptr;
  }

 private:
  struct Side {
    Json json;
    bool parsed = false, ok = false;
  };
  const http::Transaction& t_;
  Side req_, resp_;
};

}  // namespace

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

Classifier::Classifier(const config::Config& c) : cfg_(c.ecommerce), redactor_(c.redaction) {
  for (const auto& s : cfg_.services) services_.insert(s);
  for (const auto& g : cfg_.payments.gateways) {
    for (const auto& h : g.hosts) gateway_by_host_.emplace(h, g.name);
  }
  // The agent's own route templating (service-independent patterns) judges request heads
  // before their transaction exists (BodyBytesToKeep).
  matchers_.push_back({"", enrich::RouteTemplater(c.routes)});
  for (const auto& st : cfg_.funnel.steps) step_route_.push_back(Matcher(st.match.route));
  for (const auto& ep : cfg_.payments.endpoints) endpoint_route_.push_back(Matcher(ep.route));
  for (const auto& cat : cfg_.error_categories) {
    std::vector<size_t> idx;
    for (const auto& r : cat.routes) idx.push_back(Matcher(r));
    category_routes_.push_back(std::move(idx));
  }
  const auto& f = cfg_.payments.fields;
  reads_fields_ = cfg_.body_bytes > 0 &&
                  (!f.amount.path.empty() || !f.currency.path.empty() || !f.reason.path.empty());
  enabled_ = cfg_.enabled();
}

// Index into `matchers_` of a route pattern (deduplicated).
size_t Classifier::Matcher(const std::string& pattern) {
  for (size_t i = 1; i < matchers_.size(); ++i) {
    if (matchers_[i].pattern == pattern) return i;
  }
  config::RoutesConfig rc;
  rc.auto_template = false;
  rc.patterns.push_back({"", pattern});
  matchers_.push_back({pattern, enrich::RouteTemplater(rc)});
  return matchers_.size() - 1;
}

// A configured route matches a target when the target fits the pattern itself, or when the
// transaction's http.route is that pattern.
bool Classifier::RouteMatches(size_t idx, std::string_view target, std::string_view route) const {
  const auto& m = matchers_[idx];
  if (route == m.pattern) return true;
  std::string tmp;
  m.templater.Template("", target, &tmp);
  return tmp == m.pattern;
}

bool Classifier::InScope(std::string_view service) const {
  return services_.empty() || services_.count(std::string(service)) > 0;
}

std::string_view Classifier::GatewayOf(const http::Request& r) const {
  if (gateway_by_host_.empty()) return {};
  std::string host(http::RequestHost(r));
  for (char& c : host) c = Lower(c);
  auto it = gateway_by_host_.find(host);
  return it == gateway_by_host_.end() ? std::string_view() : std::string_view(it->second);
}

bool Classifier::IsPaymentEndpoint(const http::Request& r, std::string_view route) const {
  for (size_t i = 0; i < cfg_.payments.endpoints.size(); ++i) {
    if (MethodMatches(cfg_.payments.endpoints[i].method, r.method) &&
        RouteMatches(endpoint_route_[i], r.target, route)) {
      return true;
    }
  }
  return false;
}

// The first error category the transaction falls in ("" for none). Counted where the error
// happened: server transactions, unless the category says `kind: client`.
std::string Classifier::ErrorCategory(const http::Transaction& t, bool server,
                                      std::string_view route) const {
  if (!t.has_response) return "";
  const int code = t.response.status_code;
  for (size_t i = 0; i < cfg_.error_categories.size(); ++i) {
    const auto& cat = cfg_.error_categories[i];
    if ((cat.kind != "client") != server) continue;
    bool status = false;
    for (const auto& s : cat.statuses) status = status || (code >= s.lo && code <= s.hi);
    if (!status) continue;
    bool matches = category_routes_[i].empty();
    for (size_t idx : category_routes_[i]) {
      matches = matches || RouteMatches(idx, t.request.target, route);
    }
    if (matches) return cat.name;
  }
  return "";
}

void Classifier::ReadFields(const http::Transaction& t, TxnFacts* f) const {
  const auto& fields = cfg_.payments.fields;
  Bodies bodies(t);
  const auto value = [&](const config::BodyField& bf) -> const Json* {
    if (bf.path.empty()) return nullptr;
    for (const auto& k : bf.path) {
      if (redactor_.IsSecretName(k)) return nullptr;  // never read a secret-named field
    }
    const Json* j = bodies.Get(bf.response);
    return j ? Follow(*j, bf.path) : nullptr;
  };
  if (const Json* v = value(fields.amount)) f->has_amount = ParseAmount(*v, &f->amount);
  if (const Json* v = value(fields.currency)) f->currency = ParseCurrency(*v);
  if (const Json* v = value(fields.reason)) {
    if (v->is_string()) {
      f->reason = SanitizeReason(v->get_ref<const std::string&>());
    } else if (v->is_number_integer()) {
      f->reason = SanitizeReason(v->dump());
    }
  }
}

TxnFacts Classifier::Classify(const enrich::Enriched& e) const {
  TxnFacts f;
  const http::Transaction& t = e.t();
  const http::Request& r = t.request;
  if (!enabled_ || r.placeholder || r.unparsed) return f;
  const bool server = e.server();
  f.in_scope = InScope(e.service);
  if (f.in_scope) f.tenant.assign(e.tenant);
  if (server && f.in_scope) {
    for (size_t i = 0; i < cfg_.funnel.steps.size(); ++i) {
      const auto& st = cfg_.funnel.steps[i];
      if (MethodMatches(st.match.method, r.method) &&
          RouteMatches(step_route_[i], r.target, e.route)) {
        f.step = st.name;
        break;
      }
    }
    f.payment_endpoint = IsPaymentEndpoint(r, e.route);
  }
  if (!server) f.gateway = std::string(GatewayOf(r));
  if ((f.payment_endpoint || !f.gateway.empty()) && reads_fields_) ReadFields(t, &f);
  if (f.in_scope) f.error_category = ErrorCategory(t, server, e.route);
  return f;
}

size_t Classifier::BodyBytesToKeep(const http::Request& head) const noexcept {
  if (!reads_fields_ || head.placeholder) return 0;
  try {
    if (!GatewayOf(head).empty()) return cfg_.body_bytes;
    std::string route;
    matchers_[0].templater.Template("", head.target, &route);
    if (IsPaymentEndpoint(head, route)) return cfg_.body_bytes;
  } catch (...) {
  }
  return 0;
}

}  // namespace redtap::ecommerce

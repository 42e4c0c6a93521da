// SPDX-License-Identifier: Apache-2.0
// The `ecommerce:` section: tenant rules, the checkout funnel, payments (endpoints, gateways and
// the body fields read from them), error categories, and the limits of the view. Each
// sub-section has its own parser; ParseEcommerce, at the end, dispatches the keys to them.
#include "userspace/config/ecommerce_config.h"

#include <string_view>
#include <utility>
#include <vector>

#include "redtap_abi.h"
#include "userspace/config/yaml_fields.h"

namespace redtap::config::detail {
namespace {

// ---- values shared by the sub-sections ----

/// {method, route} maps; `extra` handles the other keys of the map (name...).
EcommerceRoute ParseEcommerceRoute(const YAML::Node& node, const std::string& key, Fields extra,
                                   bool method_required) {
  EcommerceRoute r;
  bool has_route = false;
  extra.emplace_back(
      "method", [&](const YAML::Node& v, const std::string& vk) { r.method = ParseMethod(v, vk); });
  extra.emplace_back("route", [&](const YAML::Node& v, const std::string& vk) {
    r.route = ParseRoutePattern(v, vk);
    has_route = true;
  });
  ParseMap(node, key, extra);
  if (!node.IsMap() || !has_route || (method_required && r.method.empty())) {
    Fail(key, std::string("must be a map with ") + (method_required ? "a method and " : "") +
                  "a route (got " + Describe(node) + ")");
  }
  return r;
}

// ---- ecommerce.services ----

void ParseServiceNames(const YAML::Node& node, const std::string& key,
                       std::vector<std::string>& out) {
  out.clear();
  ForEachItem(node, key, "a list of service names",
              [&](const YAML::Node& v, const std::string& vk) { out.push_back(ParseName(v, vk)); });
}

// ---- ecommerce.tenant ----

std::string ParsePathPrefix(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar() || node.Scalar().empty() || node.Scalar()[0] != '/' ||
      node.Scalar().size() > 256) {
    Fail(key, "must be a path prefix starting with '/' (got " + Describe(node) + ")");
  }
  return node.Scalar();
}

/// {header: NAME} or {path_segment: N, prefix: /p/}.
TenantRule ParseTenantRule(const YAML::Node& node, const std::string& key) {
  TenantRule rule;
  ParseMap(
      node, key,
      {
          {"header", [&](const YAML::Node& v,
                         const std::string& vk) { rule.header = ParseLabelName(v, vk); }},
          {"path_segment", Uint32Field(rule.path_segment, {1, 32})},
          {"prefix", [&](const YAML::Node& v,
                         const std::string& vk) { rule.path_prefix = ParsePathPrefix(v, vk); }},
      });
  if (!node.IsMap() || rule.header.empty() == (rule.path_segment == 0)) {
    Fail(key,
         "must be a map with exactly one of header, path_segment (got " + Describe(node) + ")");
  }
  if (!rule.path_prefix.empty() && rule.path_segment == 0) {
    Fail(key + ".prefix", "only applies to a path_segment rule");
  }
  return rule;
}

void ParseTenant(const YAML::Node& node, const std::string& key, std::vector<TenantRule>& out) {
  out.clear();
  ForEachItem(
      node, key, "a list of {header: NAME} or {path_segment: N} rules",
      [&](const YAML::Node& v, const std::string& vk) { out.push_back(ParseTenantRule(v, vk)); });
}

// ---- ecommerce.funnel ----

constexpr size_t kMaxFunnelSteps = 16;

/// {name, method, route}; the name must differ from the `earlier` steps'.
FunnelStep ParseFunnelStep(const YAML::Node& node, const std::string& key,
                           const std::vector<FunnelStep>& earlier) {
  FunnelStep step;
  bool has_name = false;
  step.match = ParseEcommerceRoute(node, key,
                                   {{"name",
                                     [&](const YAML::Node& v, const std::string& vk) {
                                       step.name = ParseLabelName(v, vk);
                                       has_name = true;
                                     }}},
                                   false);
  if (!has_name) Fail(key, "needs a name");
  for (const auto& other : earlier) {
    if (other.name == step.name) Fail(key + ".name", "duplicate step \"" + step.name + "\"");
  }
  return step;
}

void ParseFunnelSteps(const YAML::Node& node, const std::string& key,
                      std::vector<FunnelStep>& steps) {
  ForEachItem(node, key, "a list of {name, method, route} steps",
              [&](const YAML::Node& v, const std::string& vk) {
                steps.push_back(ParseFunnelStep(v, vk, steps));
              });
  if (steps.size() > kMaxFunnelSteps) Fail(key, "at most 16 steps");
}

void ParseFunnel(const YAML::Node& node, const std::string& key, FunnelConfig& funnel) {
  funnel = FunnelConfig{};
  ParseMap(node, key,
           {
               {"name",
                [&](const YAML::Node& v, const std::string& vk) {
                  // "" (the default) = no funnel.
                  if (!(v.IsScalar() && v.Scalar().empty())) funnel.name = ParseLabelName(v, vk);
                }},
               {"steps", [&](const YAML::Node& v,
                             const std::string& vk) { ParseFunnelSteps(v, vk, funnel.steps); }},
           });
  if (!funnel.steps.empty() && funnel.name.empty()) {
    Fail(Join(key, "name"), "is required when the funnel has steps");
  }
}

// ---- ecommerce.payments ----

void ParseEndpoints(const YAML::Node& node, const std::string& key,
                    std::vector<EcommerceRoute>& out) {
  out.clear();
  ForEachItem(node, key, "a list of {method, route} maps",
              [&](const YAML::Node& v, const std::string& vk) {
                out.push_back(ParseEcommerceRoute(v, vk, {}, false));
              });
}

std::string ParseGatewayName(const YAML::Node& node, const std::string& key) {
  std::string name = ParseLabelName(node, key);
  if (name == "self" || name == "_OTHER") Fail(key, "\"" + name + "\" is reserved");
  return name;
}

/// Host names, lower-cased.
void ParseGatewayHosts(const YAML::Node& node, const std::string& key,
                       std::vector<std::string>& out) {
  ForEachItem(node, key, "a list of host names", [&](const YAML::Node& v, const std::string& vk) {
    std::string host = ParseLabelName(v, vk);
    for (char& c : host) {
      if (c >= 'A' && c <= 'Z') c += 32;
    }
    out.push_back(std::move(host));
  });
}

/// {name, hosts}.
GatewayConfig ParseGateway(const YAML::Node& node, const std::string& key) {
  GatewayConfig g;
  ParseMap(node, key,
           {
               {"name", [&](const YAML::Node& v,
                            const std::string& vk) { g.name = ParseGatewayName(v, vk); }},
               {"hosts", [&](const YAML::Node& v,
                             const std::string& vk) { ParseGatewayHosts(v, vk, g.hosts); }},
           });
  if (!node.IsMap() || g.name.empty() || g.hosts.empty()) {
    Fail(key, "must be a map with a name and a non-empty hosts list (got " + Describe(node) + ")");
  }
  return g;
}

void ParseGateways(const YAML::Node& node, const std::string& key,
                   std::vector<GatewayConfig>& out) {
  out.clear();
  ForEachItem(
      node, key, "a list of {name, hosts} maps",
      [&](const YAML::Node& v, const std::string& vk) { out.push_back(ParseGateway(v, vk)); });
}

/// Built-in secret field names: a body field path through one of them is refused.
constexpr std::string_view kSecretFieldNames[] = {"cvv",   "cvc",          "pin",     "password",
                                                  "token", "secret",       "api_key", "card_number",
                                                  "pan",   "authorization"};

/// request.<key>[.<key>...] or response.<key>[...]; `~` = not read.
BodyField ParseBodyField(const YAML::Node& node, const std::string& key) {
  const auto fail = [&](const std::string& why) {
    Fail(key,
         "must be request.<key>[.<key>...] or response.<key>[...] with keys of letters, "
         "digits, '_' or '-'" +
             why + " (got " + Describe(node) + ")");
  };
  BodyField f;
  if (node.IsNull()) return f;  // not read
  if (!node.IsScalar() || node.Scalar().size() > 128) fail("");
  f.text = node.Scalar();
  std::string_view rest = f.text;
  if (rest.starts_with("request.")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("response.")) {
    f.response = true;
    rest.remove_prefix(9);
  } else {
    fail("");
  }
  while (true) {
    const size_t dot = rest.find('.');
    const std::string_view part = rest.substr(0, dot);
    if (part.empty() || f.path.size() >= 8) fail(": at most 8 keys, none empty");
    for (char c : part) {
      if (!IsHostChar(c) || c == '.') fail("");
    }
    std::string lower;
    for (char c : part) lower.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
    for (std::string_view secret : kSecretFieldNames) {
      if (lower == secret) fail(": secrets (cvv, pin, password, token...) are never read");
    }
    f.path.emplace_back(part);
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  return f;
}

void ParsePaymentFields(const YAML::Node& node, const std::string& key, PaymentFields& fields) {
  const auto body_field = [](BodyField& field) {
    return [&field](const YAML::Node& v, const std::string& vk) { field = ParseBodyField(v, vk); };
  };
  ParseMap(node, key,
           {
               {"amount", body_field(fields.amount)},
               {"currency", body_field(fields.currency)},
               {"reason", body_field(fields.reason)},
           });
}

void ParsePayments(const YAML::Node& node, const std::string& key, PaymentsConfig& p) {
  ParseMap(node, key,
           {
               {"endpoints", [&](const YAML::Node& v,
                                 const std::string& vk) { ParseEndpoints(v, vk, p.endpoints); }},
               {"gateways", [&](const YAML::Node& v,
                                const std::string& vk) { ParseGateways(v, vk, p.gateways); }},
               {"fields", [&](const YAML::Node& v,
                              const std::string& vk) { ParsePaymentFields(v, vk, p.fields); }},
           });
}

// ---- ecommerce.error_categories ----

/// Status codes (402) and classes ("5xx"), at least one.
std::vector<StatusRange> ParseStatuses(const YAML::Node& node, const std::string& key) {
  std::vector<StatusRange> out;
  ForEachItem(node, key, "a list of status codes (402) or classes (\"5xx\")",
              [&](const YAML::Node& n, const std::string& k) {
                if (n.IsScalar() && n.Scalar().size() == 3 && n.Scalar()[0] >= '1' &&
                    n.Scalar()[0] <= '5' &&
                    (n.Scalar().substr(1) == "xx" || n.Scalar().substr(1) == "XX")) {
                  const int c = n.Scalar()[0] - '0';
                  out.push_back({c * 100, c * 100 + 99});
                  return;
                }
                const auto v = static_cast<int>(
                    ParseUint(n, k, {100, 599, false, " (or a class: \"4xx\", \"5xx\")"}));
                out.push_back({v, v});
              });
  if (out.empty()) Fail(key, "must list at least one status code or class");
  return out;
}

std::string ParseKind(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar() || (node.Scalar() != "server" && node.Scalar() != "client")) {
    Fail(key, "must be server or client (got " + Describe(node) + ")");
  }
  return node.Scalar();
}

/// {name, statuses, routes, kind}.
ErrorCategory ParseErrorCategory(const YAML::Node& node, const std::string& key) {
  ErrorCategory c;
  bool has_statuses = false;
  ParseMap(
      node, key,
      {
          {"name",
           [&](const YAML::Node& v, const std::string& vk) { c.name = ParseLabelName(v, vk); }},
          {"routes",
           [&](const YAML::Node& v, const std::string& vk) {
             ForEachItem(v, vk, "a list of route patterns",
                         [&](const YAML::Node& r, const std::string& rk) {
                           c.routes.push_back(ParseRoutePattern(r, rk));
                         });
           }},
          {"statuses",
           [&](const YAML::Node& v, const std::string& vk) {
             c.statuses = ParseStatuses(v, vk);
             has_statuses = true;
           }},
          {"kind", [&](const YAML::Node& v, const std::string& vk) { c.kind = ParseKind(v, vk); }},
      });
  if (!node.IsMap() || c.name.empty() || !has_statuses) {
    Fail(key, "must be a map with a name and statuses (got " + Describe(node) + ")");
  }
  return c;
}

void ParseErrorCategories(const YAML::Node& node, const std::string& key,
                          std::vector<ErrorCategory>& out) {
  out.clear();
  ForEachItem(node, key, "a list of {name, statuses, routes, kind} maps",
              [&](const YAML::Node& v, const std::string& vk) {
                out.push_back(ParseErrorCategory(v, vk));
              });
}

}  // namespace

void ParseEcommerce(const YAML::Node& node, const std::string& prefix, EcommerceConfig& e) {
  ParseMap(node, prefix,
           {
               {"services", [&](const YAML::Node& n,
                                const std::string& k) { ParseServiceNames(n, k, e.services); }},
               {"tenant",
                [&](const YAML::Node& n, const std::string& k) { ParseTenant(n, k, e.tenant); }},
               {"funnel",
                [&](const YAML::Node& n, const std::string& k) { ParseFunnel(n, k, e.funnel); }},
               {"payments", [&](const YAML::Node& n,
                                const std::string& k) { ParsePayments(n, k, e.payments); }},
               {"error_categories",
                [&](const YAML::Node& n, const std::string& k) {
                  ParseErrorCategories(n, k, e.error_categories);
                }},
               {"capture_bytes_per_call",
                Uint32Field(e.capture_bytes_per_call, {64, REDTAP_MAX_CAPTURE, true})},
               {"body_bytes", Uint32Field(e.body_bytes, {0, 65536})},
               {"max_tenants", Uint32Field(e.max_tenants, {1, 10000})},
               {"max_reasons", Uint32Field(e.max_reasons, {1, 1000})},
               {"amount_buckets",
                [&](const YAML::Node& n, const std::string& k) {
                  ParseBuckets(n, k, 0, "currency units", e.amount_buckets);
                }},
           });
}

}  // namespace redtap::config::detail

// SPDX-License-Identifier: Apache-2.0
// The e-commerce classifier: what one enriched transaction means to the shop (funnel step,
// payment endpoint, gateway call, amount, currency, decline reason, error category), from the
// `ecommerce` config alone. Pure and immutable after construction: no state, no clock, safe
// from any thread; unit-tested from strings. The stateful part (counting, joining a payment
// request with the gateway call its thread made) is the Store.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "parsers/http/types.h"
#include "userspace/config/config.h"
#include "userspace/enrich/enricher.h"
#include "userspace/enrich/route_templater.h"
#include "userspace/export/redact.h"

namespace redtap::ecommerce {

/// What the view derived from one transaction (empty strings: does not apply).
struct TxnFacts {
  std::string tenant;
  std::string step;
  std::string gateway;
  bool has_amount = false;
  double amount = 0;
  std::string currency;
  std::string reason;
  std::string error_category;
  bool payment_endpoint = false;  // a request to one of ecommerce.payments.endpoints
  bool in_scope = false;          // its service is one of ecommerce.services (or all)
};

/// A reason code as a label value: card numbers masked, then at most 64 of
/// [A-Za-z0-9_.*-] (others become '_'). "" when nothing is left.
std::string SanitizeReason(std::string_view raw);

class Classifier {
 public:
  explicit Classifier(const config::Config& config);

  /// True when the `ecommerce` section configures anything.
  bool enabled() const noexcept { return enabled_; }
  /// True when payment fields are read from bodies (ecommerce.payments.fields).
  bool reads_fields() const noexcept { return reads_fields_; }

  /// The facts of `e` (empty when the view is not enabled).
  TxnFacts Classify(const enrich::Enriched& e) const;

  /// ecommerce.body_bytes for payment endpoints and gateway calls, 0 otherwise (and always 0
  /// without payment fields to read). Never throws.
  size_t BodyBytesToKeep(const http::Request& head) const noexcept;

 private:
  struct RouteMatcher {
    std::string pattern;
    enrich::RouteTemplater templater;
  };
  size_t Matcher(const std::string& pattern);
  bool RouteMatches(size_t idx, std::string_view target, std::string_view route) const;
  bool InScope(std::string_view service) const;
  std::string_view GatewayOf(const http::Request& r) const;
  bool IsPaymentEndpoint(const http::Request& r, std::string_view route) const;
  std::string ErrorCategory(const http::Transaction& t, bool server, std::string_view route) const;
  void ReadFields(const http::Transaction& t, TxnFacts* f) const;

  config::EcommerceConfig cfg_;
  exporter::Redactor redactor_;
  std::vector<RouteMatcher> matchers_;
  std::vector<size_t> step_route_;
  std::vector<size_t> endpoint_route_;
  std::vector<std::vector<size_t>> category_routes_;
  std::unordered_set<std::string> services_;
  std::unordered_map<std::string, std::string> gateway_by_host_;
  bool reads_fields_ = false;
  bool enabled_ = false;
};

}  // namespace redtap::ecommerce

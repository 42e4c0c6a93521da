// SPDX-License-Identifier: Apache-2.0
// The e-commerce store: counts what the classifier found (funnel steps, payment attempts by
// gateway, amounts, decline reasons, error categories), joins a payment request with the
// gateway call its serving thread made, bounds every label, and exposes the counts as metric
// families (redtap_ecommerce_*) and as /api/v1/funnel. Thread-safe (one mutex): Record runs
// on the decoding thread, Collect and FunnelJson on HTTP threads.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "userspace/config/config.h"
#include "userspace/ecommerce/classifier.h"
#include "userspace/enrich/enricher.h"
#include "userspace/exposition/registry.h"

namespace redtap::ecommerce {

/// How long an outbound gateway call waits for the payment request of its thread before it
/// is counted as an attempt of its own.
inline constexpr uint64_t kGatewayHoldNs = 10'000'000'000ull;

/// Bounded set of label values: the first `max` distinct values, then "_OTHER".
class LabelGuard {
 public:
  explicit LabelGuard(size_t max) : max_(max) {}
  std::string_view Admit(const std::string& v);
  uint64_t folded() const { return folded_; }

 private:
  size_t max_;
  std::unordered_set<std::string> seen_;
  uint64_t folded_ = 0;
};

class Store {
 public:
  explicit Store(const config::EcommerceConfig& config);

  /// Counts one classified transaction. A payment request served while its thread called a
  /// gateway takes that call's gateway, amount and reason into `f` (the event shows them).
  void Record(const enrich::Enriched& e, TxnFacts& f);

  /// redtap_ecommerce_* families. Gateway calls held longer than kGatewayHoldNs at `now_ns`
  /// are counted first.
  void Collect(uint64_t now_ns, exposition::Families* out);
  /// /api/v1/funnel: the funnel's steps (attempts, successes, failures, conversion from the
  /// previous step) overall and per tenant, and payments by gateway.
  std::string FunnelJson(uint64_t now_ns);

 private:
  struct AmountAgg {
    double sum = 0;
    uint64_t count = 0;
    std::vector<uint64_t> buckets;  // per bucket (not cumulative); the last is +Inf
  };
  /// An outbound gateway call waiting for the payment request of its thread.
  struct PendingCall {
    TxnFacts facts;
    bool success = false;
    uint64_t start_ts = 0;
    uint64_t end_ts = 0;
  };
  struct ErrorKey {
    std::string category;
    std::string service;
    std::string route;
    int status = 0;
    bool server = true;  // where the error happened: the kind label
    auto operator<=>(const ErrorKey&) const = default;
  };

  void RecordLocked(const enrich::Enriched& e, TxnFacts& f);
  void JoinGatewayCall(const enrich::Enriched& e, bool success, TxnFacts& f);
  void CountAttempt(const std::string& gateway, bool success, const TxnFacts& f,
                    const std::string& tenant = "");
  void CountError(const enrich::Enriched& e, const TxnFacts& f);
  void Hold(uint64_t key, PendingCall call);
  void FlushExpired(uint64_t now_ns);
  nlohmann::json PaymentsJson() const;  // under mu_

  const config::EcommerceConfig cfg_;
  std::mutex mu_;
  LabelGuard tenants_;
  LabelGuard reasons_;
  LabelGuard currencies_;
  std::map<std::tuple<size_t, std::string, bool>, uint64_t> funnel_;  // step, tenant, success
  std::map<std::tuple<std::string, bool, std::string, std::string>, uint64_t> attempts_;
  std::map<std::tuple<std::string, bool, std::string>, AmountAgg> amounts_;
  std::map<ErrorKey, uint64_t> errors_;
  uint64_t errors_folded_ = 0;
  std::unordered_map<uint64_t, PendingCall> pending_;
  uint64_t last_flush_ns_ = 0;
};

}  // namespace redtap::ecommerce

// SPDX-License-Identifier: Apache-2.0
#include "userspace/ecommerce/view.h"

namespace redtap::ecommerce {

EcommerceView::EcommerceView(const config::Config& config)
    : classifier_(config), store_(config.ecommerce) {}

void EcommerceView::Consume(enrich::Enriched& e) noexcept {
  try {
    TxnFacts f = classifier_.Classify(e);
    if (classifier_.enabled()) store_.Record(e, f);
    AppendExtras(f, &e.extras);
  } catch (...) {
    // Out of memory: this transaction is not counted.
  }
}

void EcommerceView::Collect(uint64_t now_ns, exposition::Families* out) {
  if (classifier_.enabled()) store_.Collect(now_ns, out);
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
}

}  // namespace redtap::ecommerce

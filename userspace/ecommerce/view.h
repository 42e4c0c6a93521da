// SPDX-License-Identifier: Apache-2.0
// The e-commerce view (config `ecommerce`), a sink: classifies each enriched transaction
// (Classifier), counts it (Store) and adds its event attributes (tenant.id, ecommerce.*,
// error.category) for the event sink, which runs after it. It also tells
// the capture which bodies to keep a prefix of (payment endpoints, gateway calls).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "parsers/http/types.h"
#include "userspace/config/config.h"
#include "userspace/ecommerce/classifier.h"
#include "userspace/ecommerce/store.h"
#include "userspace/pipeline/pipeline.h"

namespace redtap::ecommerce {

class EcommerceView : public http::BodyCapturePolicy, public pipeline::Sink {
 public:
  explicit EcommerceView(const config::Config& config);

  /// True when the `ecommerce` section configures anything (else it is not in the pipeline).
  bool enabled() const noexcept { return classifier_.enabled(); }

  size_t BodyBytesToKeep(const http::Request& head) const noexcept override {
    return classifier_.BodyBytesToKeep(head);
  }

  void Consume(enrich::Enriched& e) noexcept override;

  /// redtap_ecommerce_* families (none when disabled).
  void Collect(uint64_t now_ns, exposition::Families* out);
  std::string FunnelJson(uint64_t now_ns) { return store_.FunnelJson(now_ns); }

  const Classifier& classifier() const { return classifier_; }

  /// Appends `facts` as event attributes.
  static void AppendExtras(const TxnFacts& facts, exporter::EventExtras* extras);

 private:
  Classifier classifier_;
  Store store_;
};

}  // namespace redtap::ecommerce

// SPDX-License-Identifier: Apache-2.0
// The e-commerce view (config `ecommerce`): checkout funnel, payment attempts by gateway,
// amounts and decline reasons, error classes, tenants, plus W3C trace context. Fed with every
// decoded transaction (after the metrics store); adds event attributes; renders its own
// Prometheus series and /api/v1/funnel. Every label value is bounded and sanitised; card
// numbers are masked in every value read from a request.
//
// Thread-safety: Record/Annotate run on the capture reader thread; the Render* calls on HTTP
// threads (one mutex). BodyBytesToKeep is immutable and lock-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "parsers/http/types.h"
#include "userspace/capture/conn_meta.h"
#include "userspace/config/config.h"
#include "userspace/export/event_json.h"

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
  std::string trace_id;
  std::string span_id;
};

/// How long an outbound gateway call waits for the payment request of its thread before it
/// is counted as an attempt of its own.
inline constexpr uint64_t kGatewayHoldNs = 10'000'000'000ull;

class EcommerceView : public http::BodyCapturePolicy {
 public:
  explicit EcommerceView(const config::Config& config);
  ~EcommerceView() override;
  EcommerceView(const EcommerceView&) = delete;
  EcommerceView& operator=(const EcommerceView&) = delete;

  /// True when the `ecommerce` section configures anything (trace context is extracted
  /// either way).
  bool enabled() const noexcept;

  /// http::BodyCapturePolicy: ecommerce.body_bytes for payment endpoints and gateway calls,
  /// 0 otherwise (and always 0 without payment fields to read).
  size_t BodyBytesToKeep(const http::Request& head) const noexcept override;

  /// Aggregates one transaction of service `service` (its service.name), completed at
  /// `now_ns` (monotonic, the kernel's clock), and appends its event attributes to `extras`
  /// when not null. Never throws.
  void Record(const http::Transaction& t, const ConnMeta& meta, std::string_view service,
              uint64_t now_ns, exporter::EventExtras* extras) noexcept;

  /// The facts of one transaction without recording anything (tests, pcap).
  TxnFacts Inspect(const http::Transaction& t, const ConnMeta& meta,
                   std::string_view service) const;

  /// Prometheus text (format 0.0.4) of the redtap_ecommerce_* series; "" when disabled.
  /// Gateway calls held longer than kGatewayHoldNs at `now_ns` are counted first.
  std::string RenderPrometheus(uint64_t now_ns);

  /// /api/v1/funnel: the funnel's steps (attempts, successes, failures, conversion from the
  /// previous step) overall and per tenant, and payments by gateway.
  std::string RenderFunnelJson(uint64_t now_ns);

  /// Appends `facts` as event attributes (tenant.id, ecommerce.*, error.category, trace_id,
  /// span_id).
  static void AppendExtras(const TxnFacts& facts, exporter::EventExtras* extras);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"): trace id and parent span id, lower
/// case. False when absent or malformed (all-zero ids are invalid).
bool ParseTraceparent(std::string_view value, std::string* trace_id, std::string* span_id);

/// A reason code as a label value: card numbers masked, then at most 64 of
/// [A-Za-z0-9_.*-] (others become '_'). "" when nothing is left.
std::string SanitizeReason(std::string_view raw);

/// A tenant id: 1..64 of [A-Za-z0-9_.-], not a card number or an e-mail address; else "".
std::string SanitizeTenant(std::string_view raw);

}  // namespace redtap::ecommerce

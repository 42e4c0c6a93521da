// SPDX-License-Identifier: Apache-2.0
// The e-commerce view on synthetic transactions: funnel steps and conversion, payment
// attempts (self, attributed to a gateway call of the same thread, standalone gateway calls),
// amounts, reasons, error classes, tenants, trace context, bounds and privacy.
#include "userspace/ecommerce/view.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace redtap::ecommerce {
namespace {

using Json = nlohmann::json;

config::Config ShopConfig() {
  auto r = config::LoadConfigFile(REDTAP_SOURCE_DIR "/config/examples/shop.yaml");
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? r.value() : config::Config{};
}

struct Builder {
  http::Transaction t;
  Builder(std::string method, std::string target, int status, uint64_t t0 = 1000,
          uint64_t t1 = 2000) {
    t.request.method = std::move(method);
    t.request.target = std::move(target);
    t.request.first_byte_ts = t0;
    t.request.last_byte_ts = t0 + 1;
    if (status > 0) {
      t.has_response = true;
      t.response.status_code = status;
      t.response.first_byte_ts = t1 - 1;
      t.response.last_byte_ts = t1;
    }
  }
  Builder& H(std::string name, std::string value) {
    t.request.headers.push_back({std::move(name), std::move(value)});
    return *this;
  }
  Builder& Body(std::string req, std::string resp = "") {
    t.request.body_prefix = std::move(req);
    t.response.body_prefix = std::move(resp);
    return *this;
  }
};

ConnMeta Meta(Role role, uint32_t pid = 10, uint32_t tid = 11) {
  ConnMeta m;
  m.pid = pid;
  m.tid = tid;
  m.role = role;
  return m;
}

std::string Find(const exporter::EventExtras& ex, const std::string& key) {
  for (const auto& a : ex) {
    if (a.key == key) return a.is_number ? std::to_string(a.num) : a.str;
  }
  return "<none>";
}

// The view behind the enricher, as the pipeline feeds it; `service` becomes the process name
// (the shop config names services by process).
class View {
 public:
  explicit View(const config::Config& cfg)
      : enricher_(
            cfg, [](uint32_t) { return std::string(); },
            [](const std::string&, size_t) { return std::string(); }),
        view_(cfg) {}
  bool enabled() const { return view_.enabled(); }
  size_t BodyBytesToKeep(const http::Request& r) const { return view_.BodyBytesToKeep(r); }
  void Record(const http::Transaction& t, ConnMeta meta, const std::string& service, uint64_t now,
              exporter::EventExtras* extras) {
    meta.command = service;
    enrich::Enriched& e = enricher_.Enrich(t, meta, now);
    view_.Consume(e);
    if (extras) *extras = e.extras;
  }
  TxnFacts Inspect(const http::Transaction& t, ConnMeta meta, const std::string& service) {
    meta.command = service;
    return view_.classifier().Classify(enricher_.Enrich(t, meta, 1));
  }
  std::string RenderPrometheus(uint64_t now) {
    exposition::Families f;
    view_.Collect(now, &f);
    return f.empty() ? "" : exposition::RenderText(std::move(f));
  }
  std::string RenderFunnelJson(uint64_t now) { return view_.FunnelJson(now); }

 private:
  enrich::Enricher enricher_;
  EcommerceView view_;
};

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST(EcommerceTest, FunnelStepsTenantsAndConversion) {
  View v(ShopConfig());
  ASSERT_TRUE(v.enabled());
  const auto server = Meta(Role::kServer);
  for (int i = 0; i < 4; ++i) {
    v.Record(Builder("POST", "/api/cart/add", i < 3 ? 200 : 409).H("X-Tenant-Id", "acme").t, server,
             "shop", 1, nullptr);
  }
  v.Record(Builder("POST", "/api/checkout", 200).H("X-Tenant-Id", "acme").t, server, "shop", 1,
           nullptr);
  v.Record(Builder("POST", "/api/checkout", 302).H("X-Tenant-Id", "acme").t, server, "shop", 1,
           nullptr);
  exporter::EventExtras ex;
  v.Record(Builder("GET", "/api/orders/12345/confirmation", 200).H("X-Tenant-Id", "acme").t, server,
           "shop", 1, &ex);
  EXPECT_EQ(Find(ex, "ecommerce.step"), "confirmation");
  EXPECT_EQ(Find(ex, "tenant.id"), "acme");
  // Other services (nginx in front) and wrong methods do not count.
  v.Record(Builder("POST", "/api/cart/add", 200).t, server, "nginx", 1, nullptr);
  v.Record(Builder("GET", "/api/cart/add", 200).t, server, "shop", 1, nullptr);
  // Tenant from the path segment when the header is absent.
  ex.clear();
  v.Record(Builder("POST", "/t/globex/api/cart/add", 200).t, server, "shop", 1, &ex);
  EXPECT_EQ(Find(ex, "tenant.id"), "globex");
  EXPECT_EQ(Find(ex, "ecommerce.step"), "<none>");  // routes match the whole path

  const std::string prom = v.RenderPrometheus(1);
  EXPECT_TRUE(Has(prom,
                  "redtap_ecommerce_funnel_step_total{funnel=\"checkout\",step=\"cart\","
                  "tenant=\"acme\",outcome=\"success\"} 3\n"))
      << prom;
  EXPECT_TRUE(Has(prom, "step=\"cart\",tenant=\"acme\",outcome=\"failure\"} 1\n"));
  EXPECT_TRUE(Has(prom, "step=\"checkout\",tenant=\"acme\",outcome=\"success\"} 2\n"));
  EXPECT_TRUE(Has(prom,
                  "redtap_ecommerce_errors_total{category=\"inventory\",kind=\"server\","
                  "service_name=\"shop\",http_route=\"/api/cart/add\","
                  "http_response_status_code=\"409\"} 1\n"))
      << prom;

  Json j = Json::parse(v.RenderFunnelJson(1));
  EXPECT_EQ(j["funnel"], "checkout");
  ASSERT_EQ(j["steps"].size(), 4u);
  EXPECT_EQ(j["steps"][0]["attempts"], 4);
  EXPECT_EQ(j["steps"][0]["success"], 3);
  EXPECT_TRUE(j["steps"][0]["conversion"].is_null());
  EXPECT_DOUBLE_EQ(j["steps"][1]["conversion"].get<double>(), 2.0 / 3.0);
  EXPECT_TRUE(j["steps"][3]["conversion"].is_null());  // no payment success
  EXPECT_EQ(j["tenants"][0]["tenant"], "acme");
}

TEST(EcommerceTest, PaymentsSelfGatewayAndStandalone) {
  View v(ShopConfig());
  const auto server = Meta(Role::kServer, 10, 11);
  const auto client = Meta(Role::kClient, 10, 11);
  // 1. Paid without a gateway call: gateway self.
  exporter::EventExtras ex;
  v.Record(Builder("POST", "/api/payment/process", 200)
               .Body(R"({"amount": 10.5, "currency": "eur", "card": "4111111111111111"})",
                     R"({"status":"ok"})")
               .t,
           server, "shop", 1, &ex);
  EXPECT_EQ(Find(ex, "ecommerce.gateway"), "self");
  EXPECT_EQ(Find(ex, "ecommerce.currency"), "EUR");
  EXPECT_EQ(Find(ex, "ecommerce.step"), "payment");
  // 2. A stripe call (client, same pid/tid) inside the server request, declined.
  ex.clear();
  v.Record(Builder("POST", "/v1/charges", 402, 3100, 3500)
               .H("Host", "API.Stripe.com:443")
               .Body(R"({"amount": 99.0, "currency": "USD"})",
                     R"({"error": {"code": "insufficient_funds"}})")
               .t,
           client, "shop", 2, &ex);
  EXPECT_EQ(Find(ex, "ecommerce.gateway"), "stripe");
  EXPECT_EQ(Find(ex, "ecommerce.reason"), "insufficient_funds");
  ex.clear();
  v.Record(
      Builder("POST", "/api/payment/process", 402, 3000, 4000)
          .H("X-Tenant-Id", "acme")
          .Body(R"({"amount": 99.0, "currency": "USD"})", R"({"error": {"code": "card_declined"}})")
          .t,
      server, "shop", 3, &ex);
  EXPECT_EQ(Find(ex, "ecommerce.gateway"), "stripe");
  EXPECT_EQ(Find(ex, "ecommerce.reason"), "card_declined");
  EXPECT_EQ(Find(ex, "error.category"), "payment");
  // 3. A paypal call from another thread that serves no payment request: counted on its own
  //    after the hold time.
  v.Record(Builder("POST", "/v2/checkout/orders", 201, 5000, 6000)
               .H("Host", "api-m.paypal.com")
               .Body(R"({"amount": "20.00", "currency": "EUR"})")
               .t,
           Meta(Role::kClient, 10, 99), "worker", 7000, nullptr);
  std::string prom = v.RenderPrometheus(7000);
  EXPECT_FALSE(Has(prom, "gateway=\"paypal\"")) << prom;
  prom = v.RenderPrometheus(7000 + kGatewayHoldNs);
  EXPECT_TRUE(Has(prom,
                  "redtap_ecommerce_payment_attempts_total{gateway=\"self\",outcome="
                  "\"success\",reason=\"\",tenant=\"\"} 1\n"))
      << prom;
  EXPECT_TRUE(Has(prom,
                  "redtap_ecommerce_payment_attempts_total{gateway=\"stripe\",outcome="
                  "\"failure\",reason=\"card_declined\",tenant=\"acme\"} 1\n"))
      << prom;
  EXPECT_TRUE(Has(prom, "{gateway=\"paypal\",outcome=\"success\",reason=\"\",tenant=\"\"} 1\n"));
  EXPECT_TRUE(Has(prom,
                  "redtap_ecommerce_payment_amount_total{gateway=\"stripe\",outcome="
                  "\"failure\",currency=\"USD\"} 99\n"))
      << prom;
  EXPECT_TRUE(Has(prom,
                  "redtap_ecommerce_payment_amounts_bucket{gateway=\"stripe\",outcome="
                  "\"failure\",currency=\"USD\",le=\"100\"} 1\n"));
  EXPECT_TRUE(Has(prom,
                  "redtap_ecommerce_payment_amounts_count{gateway=\"self\",outcome="
                  "\"success\",currency=\"EUR\"} 1\n"));
  EXPECT_FALSE(Has(prom, "4111111111111111"));
  Json j = Json::parse(v.RenderFunnelJson(8000 + kGatewayHoldNs));
  bool found = false;
  for (const auto& g : j["payments"]) {
    if (g["gateway"] == "stripe") {
      found = true;
      EXPECT_EQ(g["attempts"], 1);
      EXPECT_EQ(g["failure_reasons"]["card_declined"], 1);
      EXPECT_DOUBLE_EQ(g["amounts"]["USD"]["failure_average"].get<double>(), 99.0);
    }
  }
  EXPECT_TRUE(found) << j.dump();
}

TEST(EcommerceTest, ErrorCategoriesFirstMatchWins) {
  View v(ShopConfig());
  auto cat = [&](const char* m, const char* path, int status, Role role) {
    return v.Inspect(Builder(m, path, status).t, Meta(role), "shop").error_category;
  };
  EXPECT_EQ(cat("POST", "/api/payment/process", 502, Role::kServer), "payment");
  EXPECT_EQ(cat("POST", "/api/payment/refund/3", 504, Role::kServer), "payment");
  EXPECT_EQ(cat("POST", "/api/cart/add", 502, Role::kServer), "");  // not client, not payment
  EXPECT_EQ(cat("POST", "/api/cart/add", 409, Role::kServer), "inventory");
  EXPECT_EQ(cat("GET", "/api/x", 440, Role::kServer), "session");
  EXPECT_EQ(cat("POST", "/api/x", 422, Role::kServer), "validation");
  EXPECT_EQ(cat("GET", "/ship", 503, Role::kClient), "integration");
  EXPECT_EQ(cat("GET", "/ok", 200, Role::kServer), "");
  // A category without kind counts where the error happened, on the server: the caller of a
  // 409 on the same host does not count it again (issue 12).
  EXPECT_EQ(cat("POST", "/api/cart/add", 409, Role::kClient), "");
  EXPECT_EQ(cat("GET", "/ship", 503, Role::kServer), "");  // kind: client only
}

TEST(EcommerceTest, ErrorsCountedOnceWithTheirKind) {
  View v(ShopConfig());
  // The shop answers 409 to its own frontend on this host: both sides are captured.
  v.Record(Builder("POST", "/api/cart/add", 409).t, Meta(Role::kServer), "shop", 1, nullptr);
  v.Record(Builder("POST", "/api/cart/add", 409).t, Meta(Role::kClient), "front", 1, nullptr);
  // A shipping API failing: an outbound call.
  v.Record(Builder("GET", "/ship", 503).t, Meta(Role::kClient), "shop", 1, nullptr);
  const std::string prom = v.RenderPrometheus(1);
  size_t n = 0;
  for (size_t p = prom.find("\nredtap_ecommerce_errors_total{"); p != std::string::npos;
       p = prom.find("\nredtap_ecommerce_errors_total{", p + 1)) {
    ++n;
  }
  EXPECT_EQ(n, 2u) << prom;
  EXPECT_TRUE(Has(prom, "{category=\"inventory\",kind=\"server\",service_name=\"shop\",")) << prom;
  EXPECT_TRUE(Has(prom, "{category=\"integration\",kind=\"client\",service_name=\"shop\","))
      << prom;
}

TEST(EcommerceTest, TraceContextIsLeftToTheEventSink) {
  // The view adds no trace ids (the event sink writes them for every event, event_sink_test),
  // enabled or not, so they are never written twice.
  for (const config::Config& cfg : {config::Config{}, ShopConfig()}) {
    View v(cfg);
    exporter::EventExtras ex;
    v.Record(Builder("POST", "/api/cart/add", 200)
                 .H("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                 .t,
             Meta(Role::kServer), "shop", 1, &ex);
    EXPECT_EQ(Find(ex, "trace_id"), "<none>");
    EXPECT_EQ(Find(ex, "span_id"), "<none>");
  }
  View off(config::Config{});
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(off.RenderPrometheus(1), "");
}

TEST(EcommerceTest, PrivacyAndBounds) {
  EXPECT_EQ(SanitizeReason("card 4111 1111 1111 1111 \"declined\"\n"), "card_****1111__declined__");
  EXPECT_EQ(SanitizeReason("\n\t"), "");
  EXPECT_EQ(SanitizeReason(std::string(300, 'a')).size(), 64u);

  config::Config cfg = ShopConfig();
  cfg.ecommerce.max_tenants = 2;
  cfg.ecommerce.max_reasons = 1;
  View v(cfg);
  for (int i = 0; i < 5; ++i) {
    v.Record(Builder("POST", "/api/payment/process", 402)
                 .H("X-Tenant-Id", "t" + std::to_string(i))
                 .Body(R"({"amount": 1})", R"({"error":{"code":"r)" + std::to_string(i) + R"("}})")
                 .t,
             Meta(Role::kServer, 1, 0), "shop", 1, nullptr);
  }
  // Bodies that are not JSON, secret-looking and hostile values never break anything.
  exporter::EventExtras ex;
  v.Record(Builder("POST", "/api/payment/process", 402)
               .Body("{\"amount\": 1e400, \"currency\": \"EURO\"", "not json {")
               .t,
           Meta(Role::kServer, 1, 0), "shop", 1, &ex);
  EXPECT_EQ(Find(ex, "ecommerce.amount"), "<none>");
  EXPECT_EQ(Find(ex, "ecommerce.currency"), "<none>");
  const std::string prom = v.RenderPrometheus(1);
  EXPECT_TRUE(Has(prom, "tenant=\"_OTHER\"")) << prom;
  EXPECT_TRUE(Has(prom, "reason=\"_OTHER\"")) << prom;
  EXPECT_TRUE(Has(prom, "redtap_ecommerce_label_folded_total{label=\"tenant\"} 3\n")) << prom;
}

TEST(EcommerceTest, BodyCapturePolicy) {
  View v(ShopConfig());
  http::Request r;
  r.method = "POST";
  r.target = "/api/payment/process?x=1";
  EXPECT_EQ(v.BodyBytesToKeep(r), 4096u);
  r.target = "/api/cart/add";
  EXPECT_EQ(v.BodyBytesToKeep(r), 0u);
  r.headers = {{"Host", "api.paypal.com"}};
  EXPECT_EQ(v.BodyBytesToKeep(r), 4096u);
  r.method = "GET";
  r.headers.clear();
  r.target = "/api/payment/process";
  EXPECT_EQ(v.BodyBytesToKeep(r), 0u);
  View off(config::Config{});
  r.method = "POST";
  EXPECT_EQ(off.BodyBytesToKeep(r), 0u);
}

}  // namespace
}  // namespace redtap::ecommerce

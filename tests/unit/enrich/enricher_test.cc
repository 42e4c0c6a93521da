// SPDX-License-Identifier: Apache-2.0
// The enricher: service, route (templated once, bounded per service, cached), trace context,
// tenants, unparsed requests.
#include "userspace/enrich/enricher.h"

#include <gtest/gtest.h>

#include <string>

namespace redtap::enrich {
namespace {

http::Transaction Txn(std::string target, std::string method = "GET") {
  http::Transaction t;
  t.request.method = std::move(method);
  t.request.target = std::move(target);
  t.has_response = true;
  t.response.status_code = 200;
  return t;
}

ConnMeta Meta(std::string comm = "shop", uint32_t pid = 42) {
  ConnMeta m;
  m.pid = pid;
  m.command = std::move(comm);
  m.local = {"127.0.0.1", 8080};
  m.remote = {"127.0.0.1", 50000};
  return m;
}

std::string NoExe(uint32_t) { return ""; }

TEST(Enricher, ServiceRouteAndCache) {
  config::Config cfg;
  cfg.routes.patterns.push_back({"", "/api/products/{id}"});
  Enricher en(cfg, NoExe);
  const ConnMeta m = Meta();
  for (int round = 0; round < 2; ++round) {  // the second round is served from the cache
    const http::Transaction a = Txn("/api/products/123?x=1");
    const Enriched& e = en.Enrich(a, m, 1);
    EXPECT_EQ(e.service, "shop");
    EXPECT_EQ(e.route, "/api/products/{id}");
    EXPECT_EQ(e.now_ns, 1u);
    const http::Transaction b = Txn("/users/42/orders/550e8400-e29b-41d4-a716-446655440000");
    EXPECT_EQ(en.Enrich(b, m, 2).route, "/users/{id}/orders/{uuid}");
  }
  // The same target of another service is templated for that service.
  const http::Transaction a = Txn("/api/products/7");
  EXPECT_EQ(en.Enrich(a, Meta("other", 43), 3).route, "/api/products/{id}");
  EXPECT_EQ(en.Enrich(a, Meta("other", 43), 3).service, "other");
}

TEST(Enricher, RoutesAreBoundedPerService) {
  config::Config cfg;
  cfg.routes.max_per_service = 10;
  Enricher en(cfg, NoExe);
  const ConnMeta m = Meta("web");
  int folded = 0;
  for (int i = 0; i < 30; ++i) {
    const http::Transaction t =
        Txn("/page" + std::string(1, static_cast<char>('a' + i % 26)) + std::to_string(i / 26));
    if (en.Enrich(t, m, 1).route == "/*") ++folded;
  }
  EXPECT_EQ(folded, 20);
  // Routes kept stay themselves, from the cache or not.
  EXPECT_EQ(en.Enrich(Txn("/pagea0"), m, 2).route, "/pagea0");
  const auto counts = en.RoutesFolded();
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].first, "web");
  EXPECT_EQ(counts[0].second, 20u);
}

TEST(Enricher, UnparsedRequestsHaveTheirFixedRoute) {
  Enricher en(config::Config{}, NoExe);
  http::Transaction t = Txn(std::string(http::kUnparsedTarget), std::string(http::kUnparsedMethod));
  t.request.unparsed = true;
  EXPECT_EQ(en.Enrich(t, Meta(), 1).route, "/*unparsed");
  EXPECT_TRUE(en.RoutesFolded().empty());  // no route admitted, nothing folded
}

TEST(Enricher, TraceContextAndTenant) {
  config::Config cfg;
  cfg.ecommerce.tenant.push_back({"X-Tenant-Id", 0, ""});
  cfg.ecommerce.tenant.push_back({"", 2, "/t/"});
  Enricher en(cfg, NoExe);
  http::Transaction t = Txn("/t/globex/cart");
  t.request.headers.push_back(
      {"traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"});
  const Enriched& e = en.Enrich(t, Meta(), 1);
  EXPECT_EQ(e.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(e.span_id, "00f067aa0ba902b7");
  EXPECT_EQ(e.tenant, "globex");
  t.request.headers.push_back({"X-Tenant-Id", "acme"});
  t.request.headers.erase(t.request.headers.begin());
  const Enriched& f = en.Enrich(t, Meta(), 2);
  EXPECT_EQ(f.tenant, "acme");
  EXPECT_EQ(f.trace_id, "");  // nothing left over from the previous transaction
  // A card number or an e-mail address is never a tenant.
  t.request.headers.back().value = "4111111111111111";
  t.request.target = "/t/jane@example.com/cart";
  EXPECT_EQ(en.Enrich(t, Meta(), 3).tenant, "");
}

TEST(TraceContext, Parse) {
  std::string t, s;
  EXPECT_TRUE(ParseTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", &t, &s));
  EXPECT_EQ(t, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s, "00f067aa0ba902b7");
  EXPECT_FALSE(ParseTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01", &t, &s));
  EXPECT_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", &t, &s));
  EXPECT_FALSE(ParseTraceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &t, &s));
  EXPECT_FALSE(
      ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", &t, &s));
  EXPECT_TRUE(
      ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", &t, &s));
}

TEST(Tenant, Sanitize) {
  EXPECT_EQ(SanitizeTenant("acme-01"), "acme-01");
  EXPECT_EQ(SanitizeTenant("4111111111111111"), "");
  EXPECT_EQ(SanitizeTenant("jane@example.com"), "");
  EXPECT_EQ(SanitizeTenant("a b"), "");
  EXPECT_EQ(SanitizeTenant(std::string(65, 'a')), "");
}

}  // namespace
}  // namespace redtap::enrich

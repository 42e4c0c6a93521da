// SPDX-License-Identifier: Apache-2.0
// The enricher: service, route (templated once, bounded per service, cached), trace context,
// tenants, unparsed requests.
#include "userspace/enrich/enricher.h"

#include <gtest/gtest.h>

#include <map>
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
// Fake pids are not looked up in the host's /proc.
std::string NoProc(const std::string&, size_t) { return ""; }

TEST(Enricher, ServiceRouteAndCache) {
  config::Config cfg;
  cfg.routes.patterns.push_back({"", "/api/products/{id}"});
  Enricher en(cfg, NoExe, NoProc);
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
  Enricher en(cfg, NoExe, NoProc);
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
  Enricher en(config::Config{}, NoExe, NoProc);
  http::Transaction t = Txn(std::string(http::kUnparsedTarget), std::string(http::kUnparsedMethod));
  t.request.unparsed = true;
  EXPECT_EQ(en.Enrich(t, Meta(), 1).route, "/*unparsed");
  EXPECT_TRUE(en.RoutesFolded().empty());  // no route admitted, nothing folded
}

TEST(Enricher, TraceContextAndTenant) {
  config::Config cfg;
  cfg.ecommerce.tenant.push_back({"X-Tenant-Id", 0, ""});
  cfg.ecommerce.tenant.push_back({"", 2, "/t/"});
  Enricher en(cfg, NoExe, NoProc);
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

// The Enricher's metadata::Resolver has the default paths: /proc and podman's storage.
constexpr std::string_view kShopfrontId =
    "de96e43b82e1c3d2d665ad183d5d370e3e47df58792360bed1876dc5954d3a9d";

struct FakeProc {
  std::map<std::string, std::string> files = {
      {"/proc/4242/cgroup", "0::/machine.slice/libpod-" + std::string(kShopfrontId) + ".scope\n"},
      {"/var/lib/containers/storage/overlay-containers/containers.json",
       R"([{"id":")" + std::string(kShopfrontId) + R"(","names":["shopfront"]}])"},
  };
  int reads = 0;
  metadata::FileReader Reader() {
    return [this](const std::string& path, size_t) {
      ++reads;
      auto it = files.find(path);
      return it == files.end() ? std::string() : it->second;
    };
  }
};

std::string Extra(const Enriched& e, std::string_view key) {
  for (const auto& a : e.extras) {
    if (a.key == key) return a.str;
  }
  return "<absent>";
}

TEST(Enricher, ContainerNameIsTheDefaultService) {
  FakeProc proc;
  Enricher en(config::Config{}, NoExe, proc.Reader());
  const http::Transaction t = Txn("/api/products/1");
  const ConnMeta m = Meta("node", 4242);
  const Enriched& e = en.Enrich(t, m, 1);
  EXPECT_EQ(e.service, "shopfront");
  ASSERT_NE(e.workload, nullptr);
  EXPECT_EQ(e.workload->container_id, kShopfrontId);
  EXPECT_EQ(e.workload->container_name, "shopfront");
  EXPECT_EQ(Extra(e, "container.id"), kShopfrontId);
  EXPECT_EQ(Extra(e, "container.name"), "shopfront");
  EXPECT_EQ(e.route, "/api/products/{id}");
  // The next transaction of the process: cached, same answers, extras not duplicated.
  const int reads = proc.reads;
  const Enriched& f = en.Enrich(t, m, 2);
  EXPECT_EQ(f.service, "shopfront");
  EXPECT_EQ(f.extras.size(), 2u);
  EXPECT_EQ(proc.reads, reads);
  // A process on the host: its command, no workload, no extras left over.
  // A named ConnMeta, not a temporary: Enriched's views (service = the command here) and its
  // `meta` point into the ConnMeta passed (ASan: stack-use-after-scope).
  const ConnMeta host = Meta("shop", 42);
  const Enriched& g = en.Enrich(t, host, 3);
  EXPECT_EQ(g.service, "shop");
  EXPECT_EQ(g.workload, nullptr);
  EXPECT_TRUE(g.extras.empty());
}

TEST(Enricher, ServiceRuleWinsOverTheContainerName) {
  FakeProc proc;
  config::Config cfg;
  cfg.services.push_back({"storefront", "node", "", 0});
  Enricher en(cfg, NoExe, proc.Reader());
  const http::Transaction t = Txn("/");
  const Enriched& e = en.Enrich(t, Meta("node", 4242), 1);
  EXPECT_EQ(e.service, "storefront");
  ASSERT_NE(e.workload, nullptr);
  EXPECT_EQ(e.workload->container_name, "shopfront");
  EXPECT_EQ(Extra(e, "container.id"), kShopfrontId);
  EXPECT_EQ(Extra(e, "container.name"), "shopfront");
  // Another command in the same container: no rule, the container's name.
  EXPECT_EQ(en.Enrich(t, Meta("sidecar", 4242), 2).service, "shopfront");
}

TEST(Enricher, PacketsHaveNoWorkloadAndReadNothing) {
  FakeProc proc;
  proc.files["/proc/0/cgroup"] = proc.files["/proc/4242/cgroup"];  // never to be read
  Enricher en(config::Config{}, NoExe, proc.Reader());
  ConnMeta m = Meta("", 0);  // what `redtap pcap` gives: no pid, no command
  const Enriched& e = en.Enrich(Txn("/x"), m, 1);
  EXPECT_EQ(e.workload, nullptr);
  EXPECT_TRUE(e.extras.empty());
  EXPECT_EQ(e.service, "127.0.0.1:8080");
  EXPECT_EQ(proc.reads, 0);
}

}  // namespace
}  // namespace redtap::enrich

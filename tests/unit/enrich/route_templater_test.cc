// SPDX-License-Identifier: Apache-2.0
#include "userspace/enrich/route_templater.h"

#include <gtest/gtest.h>

#include <string>

#include "userspace/export/redact.h"

namespace redtap::enrich {
namespace {

struct Example {
  const char* target;
  const char* route;
};

// The heuristic, by example (README.md shows the same table).
const Example kExamples[] = {
    // Kept: words, versions, RPC-style names, short mixed tokens.
    {"/", "/"},
    {"/api/cart/add", "/api/cart/add"},
    {"/api/checkout", "/api/checkout"},
    {"/api/v1/users", "/api/v1/users"},
    {"/api/v2/hello.world", "/api/v2/hello.world"},
    {"/rpc/com.example.UserService/GetUser", "/rpc/com.example.UserService/GetUser"},
    {"/api/getUserByIdAndName", "/api/getUserByIdAndName"},
    {"/api/ProductServiceV2GetAll", "/api/ProductServiceV2GetAll"},
    {"/api/user_profile_settings", "/api/user_profile_settings"},
    {"/oauth2/token", "/oauth2/token"},
    {"/static/app-v1.2.3.js", "/static/app-v1.2.3.js"},
    {"/s3/item42", "/s3/item42"},
    {"/api/v2.1/x", "/api/v2.1/x"},
    {"/deadbeef", "/deadbeef"},
    {"/api/users/", "/api/users/"},
    {"//double//slash", "//double//slash"},
    // Numbers.
    {"/api/products/42", "/api/products/{id}"},
    {"/api/orders/123456/items/7", "/api/orders/{id}/items/{id}"},
    {"/api/page/0", "/api/page/{id}"},
    {"/images/12345.jpg", "/images/{id}.jpg"},
    {"/order-123456789", "/{id}"},
    // UUIDs, hex, tokens, dates.
    {"/api/carts/550e8400-e29b-41d4-a716-446655440000", "/api/carts/{uuid}"},
    {"/api/carts/550E8400-E29B-41D4-A716-446655440000/items", "/api/carts/{uuid}/items"},
    {"/objects/507f1f77bcf86cd799439011", "/objects/{hex}"},
    {"/commit/da39a3ee5e6b4b0d3255bfef95601890afd80709", "/commit/{hex}"},
    {"/c/ab12cd34", "/c/{hex}"},
    {"/static/app.3f2a9c1b7d.js", "/static/app.{hex}.js"},
    {"/reset/Zx8Kq2Lm9Pw4Rt7Yb3Nc", "/reset/{token}"},
    {"/s/aGVsbG8gd29ybGQgMTIzNDU2", "/s/{token}"},
    {"/jwt/"
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
     "/jwt/{token}.{token}.{token}"},
    {"/reports/2024-01-31", "/reports/{date}"},
    {"/reports/2024-01-31T10:00:00Z/pdf", "/reports/{date}/pdf"},
    {"/reports/2024-13-31", "/reports/2024-13-31"},
    // Privacy: e-mail addresses and cards, whatever the form.
    {"/users/alice@example.com/orders", "/users/{email}/orders"},
    {"/users/alice%40example.com", "/users/{email}"},
    {"/cards/4111111111111111", "/cards/{card}"},
    {"/cards/4111-1111-1111-1111/charge", "/cards/{card}/charge"},
    {"/cards/4111%201111%201111%201111", "/cards/{card}"},
    {"/pay/card-4111111111111111", "/pay/{card}"},
    {"/pay/4111111111111112", "/pay/{id}"},  // fails Luhn: still a number
    // Query and fragment are not part of the route; other target forms.
    {"/api/products/42?card=4111111111111111&email=a@b.c", "/api/products/{id}"},
    {"/a#frag", "/a"},
    {"?x=1", "{authority}"},
    {"http://shop.example/api/products/9?x", "/api/products/{id}"},
    {"HTTPS://shop.example", "/"},
    {"*", "*"},
    {"shop.example:443", "{authority}"},
    // Bytes that are not printable ASCII are percent-encoded.
    {"/caf\xc3\xa9/a b", "/caf%C3%A9/a%20b"},
};

TEST(RouteTemplaterTest, Examples) {
  const RouteTemplater t(config::RoutesConfig{});
  for (const auto& e : kExamples) {
    EXPECT_EQ(t.Template("svc", e.target), e.route) << "target: " << e.target;
  }
}

TEST(RouteTemplaterTest, AutoTemplateOffStillHidesPrivateData) {
  config::RoutesConfig c;
  c.auto_template = false;
  const RouteTemplater t(c);
  EXPECT_EQ(t.Template("s", "/api/products/42"), "/api/products/42");
  EXPECT_EQ(t.Template("s", "/api/carts/550e8400-e29b-41d4-a716-44665544abcd"),
            "/api/carts/550e8400-e29b-41d4-a716-44665544abcd");
  EXPECT_EQ(t.Template("s", "/users/bob@example.com"), "/users/{email}");
  EXPECT_EQ(t.Template("s", "/cards/4111111111111111"), "/cards/{card}");
  EXPECT_EQ(t.Template("s", "/phone/0612345678"), "/phone/{id}");
  EXPECT_EQ(t.Template("s", "/acct/acct-123456789"), "/acct/{id}");
}

// fuzz_redact_route: a segment whose raw bytes hold no card number, but whose escaped form
// in the route does ("\xCA " -> "%CA%20"), became a route with a card number in it.
TEST(RouteTemplaterTest, NoCardNumberAfterEscaping) {
  for (bool auto_template : {false, true}) {
    config::RoutesConfig c;
    c.auto_template = auto_template;
    const RouteTemplater t(c);
    const std::string route = t.Template("s", "/file.tes 5540 1111 1111\xCA 1111");
    EXPECT_FALSE(exporter::HasCardNumber(route)) << route;
    EXPECT_NE(route.find("{card}"), std::string::npos) << route;
  }
}

TEST(RouteTemplaterTest, PatternsPrecedence) {
  config::RoutesConfig c;
  c.patterns = {
      {"", "/api/products/{id}"},
      {"", "/api/orders/{id}/items"},
      {"shop", "/api/orders/{order_id}/items"},
      {"shop", "/api/products/featured"},
      {"", "/static/*"},
      {"", "/files/{path...}"},
      {"", "/api/{anything}"},
  };
  const RouteTemplater t(c);
  // Patterns win over the heuristic, keep their own spelling.
  EXPECT_EQ(t.Template("web", "/api/products/abc"), "/api/products/{id}");
  EXPECT_EQ(t.Template("web", "/api/products/42/"), "/api/products/{id}");
  // A service's own patterns come first, even when listed after a global one.
  EXPECT_EQ(t.Template("shop", "/api/orders/9/items"), "/api/orders/{order_id}/items");
  EXPECT_EQ(t.Template("web", "/api/orders/9/items"), "/api/orders/{id}/items");
  EXPECT_EQ(t.Template("shop", "/api/products/featured"), "/api/products/featured");
  EXPECT_EQ(t.Template("web", "/api/products/featured"), "/api/products/{id}");
  // Among global patterns, the first match wins.
  EXPECT_EQ(t.Template("web", "/api/checkout"), "/api/{anything}");
  // {name} matches exactly one non-empty segment.
  EXPECT_EQ(t.Template("web", "/api/products"), "/api/{anything}");
  EXPECT_EQ(t.Template("web", "/api/products/1/2"), "/api/products/{id}/{id}");
  EXPECT_EQ(t.Template("web", "/api//x"), "/api//x");
  // Catch-alls match the rest of the path (zero or more segments).
  EXPECT_EQ(t.Template("web", "/static/css/site.css"), "/static/*");
  EXPECT_EQ(t.Template("web", "/static"), "/static/*");
  EXPECT_EQ(t.Template("web", "/files/a/b/4111111111111111"), "/files/{path...}");
  // No match: the heuristic.
  EXPECT_EQ(t.Template("web", "/other/42"), "/other/{id}");
}

TEST(RouteTemplaterTest, LongPathsAreBounded) {
  const RouteTemplater t(config::RoutesConfig{});
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "/seg";
  const std::string r = t.Template("s", deep);
  EXPECT_EQ(r.size(), 32u * 4 + 2);
  EXPECT_TRUE(r.ends_with("/seg/*")) << r;

  const std::string long_segment = "/" + std::string(300, 'z') + "/b";
  EXPECT_EQ(t.Template("s", long_segment), "/*");
  const std::string r2 = t.Template("s", "/x/" + std::string(260, 'z'));
  EXPECT_EQ(r2, "/x/*");
  EXPECT_LE(r2.size(), RouteTemplater::kMaxRouteBytes);
}

TEST(RouteTemplaterTest, ClassifySegment) {
  EXPECT_EQ(ClassifySegment("42"), SegmentClass::kId);
  EXPECT_EQ(ClassifySegment("42", false), SegmentClass::kLiteral);
  EXPECT_EQ(ClassifySegment("hello.world"), SegmentClass::kLiteral);
  EXPECT_EQ(ClassifySegment("v2"), SegmentClass::kLiteral);
  EXPECT_EQ(ClassifySegment("a@b"), SegmentClass::kEmail);
  EXPECT_EQ(ClassifySegment("@me"), SegmentClass::kLiteral);
  EXPECT_EQ(Placeholder(SegmentClass::kCard), "{card}");
}

}  // namespace
}  // namespace redtap::enrich

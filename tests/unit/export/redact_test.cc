// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/redact.h"

#include <gtest/gtest.h>

#include <string>

namespace redtap::exporter {
namespace {

struct Case {
  const char* in;
  const char* out;
};

TEST(RedactTest, QueryKeys) {
  const Redactor r{config::RedactionConfig{}};
  const Case cases[] = {
      {"password=hunter2&x=1", "password=REDACTED&x=1"},
      {"x=1&password=hunter2", "x=1&password=REDACTED"},
      {"PassWord=hunter2", "PassWord=REDACTED"},  // case-insensitive
      {"access_token=abc&refresh_TOKEN=def", "access_token=REDACTED&refresh_TOKEN=REDACTED"},
      {"api_key=k1&apikey=k2&monkey=1", "api_key=REDACTED&apikey=REDACTED&monkey=REDACTED"},
      {"pass%77ord=x", "pass%77ord=REDACTED"},  // %77 = 'w'
      {"%50ASSWORD=x", "%50ASSWORD=REDACTED"},  // %50 = 'P'
      {"sess%69on%5Fid=x", "sess%69on%5Fid=REDACTED"},
      {"my+secret=x", "my+secret=REDACTED"},
      {"token=a=b=c", "token=REDACTED"},  // value up to the next '&'
      {"token=", "token=REDACTED"},
      {"token", "token"},  // no value to mask
      {"q=shoes&page=2", "q=shoes&page=2"},
      {"q=password", "q=password"},  // only keys are matched
      {"", ""},
      {"&&token=x&&", "&&token=REDACTED&&"},
      {"%=1&%4=2&%zz=3", "%=1&%4=2&%zz=3"},  // broken escapes survive
      {"x=4111111111111111", "x=****1111"},  // cards in values
      {"4111111111111111=1", "****1111=1"},  // and in keys
      {"cvv=123&n=4111-1111-1111-1111", "cvv=REDACTED&n=****1111"},
  };
  for (const auto& c : cases) EXPECT_EQ(r.RedactQuery(c.in), c.out) << c.in;
}

TEST(RedactTest, ConfiguredKeysReplaceDefaults) {
  config::RedactionConfig cfg;
  cfg.query_keys = {"SSN", ""};
  const Redactor r{cfg};
  EXPECT_EQ(r.RedactQuery("ssn=1&password=2&my_Ssn_x=3"),
            "ssn=REDACTED&password=2&my_Ssn_x=REDACTED");
}

// fuzz_redact_route: one masking pass kept the last four digits of a card, which joined the
// digits after it into a new card-like run ("****0000-00000-0000-00-0").
TEST(RedactTest, MaskingLeavesNoCardNumber) {
  const std::string in = "0-00-00000-0000-000-00000-0000-00-0/1";
  const std::string masked = MaskCardNumbers(in);
  EXPECT_FALSE(HasCardNumber(masked)) << masked;
  EXPECT_EQ(MaskCardNumbers(masked), masked);
}

TEST(RedactTest, CardNumbers) {
  const Case cases[] = {
      {"4111111111111111", "****1111"},                  // 16, Luhn-valid
      {"4111111111111112", "4111111111111112"},          // Luhn-invalid
      {"4222222222222", "****2222"},                     // 13 digits
      {"4000000000000000006", "****0006"},               // 19 digits
      {"123456789015", "123456789015"},                  // 12 digits (valid Luhn)
      {"12345678901234567894", "12345678901234567894"},  // 20 digits (valid Luhn)
      {"4111 1111 1111 1111", "****1111"},
      {"4111-1111-1111-1111", "****1111"},
      {"4111+1111+1111+1111", "****1111"},
      {"4111%201111%201111%201111", "****1111"},
      {"4111%2d1111%2D1111-1111", "****1111"},
      {"4111  1111 1111 1111", "4111  1111 1111 1111"},  // two separators: not one run
      {"3782 822463 10005", "****0005"},                 // Amex grouping
      {"a4111111111111111b", "a****1111b"},
      {"card 4111111111111111, exp 12/29", "card ****1111, exp 12/29"},
      {"4111111111111111 5500000000000004", "****1111 ****0004"},  // 32 digits: two cards
      {"12 4111111111111111", "12 ****1111"},
      {"4111111111111111-", "****1111-"},
      {"-4111111111111111", "-****1111"},
      {"1732560411123456789", "1732560411123456789"},  // a ns timestamp failing Luhn
      {"", ""},
      {"no digits", "no digits"},
  };
  for (const auto& c : cases) EXPECT_EQ(MaskCardNumbers(c.in), c.out) << c.in;
}

TEST(RedactTest, CardsInPaths) {
  const Redactor r{config::RedactionConfig{}};
  EXPECT_EQ(r.RedactPath("/cards/4111111111111111/charge"), "/cards/****1111/charge");
  EXPECT_EQ(r.RedactPath("/cards/4111-1111-1111-1111"), "/cards/****1111");
  EXPECT_EQ(r.RedactPath("/orders/12345/items/4111111111111112"),
            "/orders/12345/items/4111111111111112");
  EXPECT_EQ(r.RedactPath("/password=x"), "/password=x");  // paths have no query keys
}

TEST(RedactTest, Luhn) {
  EXPECT_TRUE(LuhnValid("4111111111111111"));
  EXPECT_TRUE(LuhnValid("378282246310005"));
  EXPECT_FALSE(LuhnValid("4111111111111112"));
  EXPECT_FALSE(LuhnValid(""));
  EXPECT_FALSE(LuhnValid("41a1"));
}

TEST(RedactTest, LongInputsStayLinear) {
  // Pathological shapes: long separated digit runs, long digit runs, long queries.
  std::string grouped;
  for (int i = 0; i < 200000; ++i) grouped += "1 ";
  std::string digits(400000, '7');
  std::string query;
  for (int i = 0; i < 50000; ++i) query += "password=1&";
  const Redactor r{config::RedactionConfig{}};
  EXPECT_EQ(MaskCardNumbers(digits), digits);
  EXPECT_EQ(MaskCardNumbers(grouped), grouped);  // no window of ones passes Luhn
  EXPECT_EQ(r.RedactQuery(query).size(), query.size() + 50000 * 7);
}

}  // namespace
}  // namespace redtap::exporter

namespace redtap::exporter {
namespace {

TEST(RedactTest, EmailsInPathsAreTemplated) {
  Redactor r(config::RedactionConfig{});
  EXPECT_EQ(r.RedactPath("/users/jane.doe@example.com/orders"), "/users/{email}/orders");
  EXPECT_EQ(r.RedactPath("/users/jane%40example.com"), "/users/{email}");
  EXPECT_EQ(r.RedactPath("/@/x@"), "/@/x@");  // nothing on one side: not an address
  EXPECT_EQ(r.RedactPath("/a/b"), "/a/b");
  EXPECT_EQ(r.RedactPath("/pay/4111111111111111/a@b.c"), "/pay/****1111/{email}");
}

TEST(RedactTest, SecretNames) {
  Redactor r(config::RedactionConfig{});
  for (const char* n : {"cvv", "CVC", "pin", "Password", "token", "secret", "api_key",
                        "access_token", "X-Session"}) {
    EXPECT_TRUE(r.IsSecretName(n)) << n;
  }
  for (const char* n : {"amount", "currency", "code", "reason"}) {
    EXPECT_FALSE(r.IsSecretName(n)) << n;
  }
  config::RedactionConfig only;
  only.query_keys = {"ssn"};
  Redactor r2(only);
  EXPECT_TRUE(r2.IsSecretName("customer_ssn"));
  EXPECT_TRUE(r2.IsSecretName("cvv"));  // built-in, whatever the config
}

TEST(RedactTest, HeaderValues) {
  EXPECT_TRUE(IsNeverExportedHeader("Authorization"));
  EXPECT_TRUE(IsNeverExportedHeader("cookie"));
  EXPECT_TRUE(IsNeverExportedHeader("Set-Cookie"));
  EXPECT_TRUE(IsNeverExportedHeader("X-API-KEY"));
  EXPECT_FALSE(IsNeverExportedHeader("User-Agent"));
  EXPECT_TRUE(HasCardNumber("card 4111 1111 1111 1111 ok"));
  EXPECT_FALSE(HasCardNumber("Mozilla/5.0 (X11; Linux x86_64) 20100101"));
  http::Request req;
  req.headers = {{"User-Agent", "evil/4111-1111-1111-1111"},
                 {"Authorization", "Bearer abc"},
                 {"X-Tenant-Id", "acme"}};
  EXPECT_TRUE(HeadersNeedRedaction(req));
  EXPECT_TRUE(RedactRequestHeaders(&req));
  EXPECT_EQ(req.Find("User-Agent"), "evil/****1111");
  EXPECT_EQ(req.Find("Authorization"), "");
  EXPECT_EQ(req.Find("X-Tenant-Id"), "acme");
  EXPECT_FALSE(HeadersNeedRedaction(req));
  EXPECT_FALSE(RedactRequestHeaders(&req));
  Redactor r(config::RedactionConfig{});
  EXPECT_EQ(r.RedactValue("declined 5500-0000-0000-0004"), "declined ****0004");
}

}  // namespace
}  // namespace redtap::exporter

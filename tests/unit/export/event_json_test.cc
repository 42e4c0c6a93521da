// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/event_json.h"
#include "userspace/common/format.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace redtap::exporter {
namespace {

// 2026-11-25T18:46:51Z in ns since the epoch.
constexpr int64_t kWallNs = 1795632411LL * 1'000'000'000;
constexpr uint64_t kStartTs = 5'000'000'000;                        // monotonic ns
constexpr int64_t kOffset = kWallNs + 123'456'789 - 5'000'000'000;  // start -> .123456789

http::Transaction ServerTransaction() {
  http::Transaction t;
  t.request.method = "GET";
  t.request.target = "/api/cart?token=abc&x=1";
  t.request.version_minor = 1;
  t.request.headers = {{"Host", "shop.example"},
                       {"user-agent", "Mozilla/5.0 (iPhone)"},
                       {"Authorization", "Bearer SECRET-AUTH"},
                       {"Cookie", "sid=SECRET-COOKIE"},
                       {"X-Api-Key", "SECRET-HEADER"}};
  t.request.first_byte_ts = kStartTs;
  t.request.last_byte_ts = kStartTs + 1000;
  t.has_response = true;
  t.response.status_code = 200;
  t.response.reason = "OK";
  t.response.headers = {{"Set-Cookie", "sid=SECRET-SET-COOKIE"}};
  t.response.body_size = 512;
  t.response.first_byte_ts = kStartTs + 12'000'000;
  t.response.last_byte_ts = kStartTs + 12'345'678;
  return t;
}

ConnMeta ServerMeta() {
  ConnMeta m;
  m.pid = 4242;
  m.command = "nginx";
  m.role = Role::kServer;
  m.local = {"10.0.0.1", 8080};
  m.remote = {"10.0.0.2", 51234};
  return m;
}

const Redactor& DefaultRedactor() {
  static const Redactor r{config::RedactionConfig{}};
  return r;
}

std::string Format(const http::Transaction& t, const ConnMeta& m) {
  return FormatHttpEvent(t, m, "shop", "/api/cart/{id}", kOffset, DefaultRedactor());
}

void ExpectNoSecrets(const std::string& event) {
  for (const char* secret :
       {"SECRET", "Bearer", "sid=", "Cookie", "Authorization", "hunter2", "4111111111111111"}) {
    EXPECT_EQ(event.find(secret), std::string::npos) << secret << " in " << event;
  }
}

TEST(EventJsonTest, ServerGolden) {
  const std::string event = Format(ServerTransaction(), ServerMeta());
  EXPECT_EQ(event,
            R"j({"timestamp":"2026-11-25T18:46:51.123456Z","level":"INFO","type":"http",)j"
            R"j("kind":"server","message":"GET /api/cart 200 12.3 ms","duration_ms":12.346,)j"
            R"j("service.name":"shop","process.pid":4242,"process.command":"nginx",)j"
            R"j("http.request.method":"GET","url.path":"/api/cart",)j"
            R"j("url.query":"token=REDACTED&x=1","http.route":"/api/cart/{id}",)j"
            R"j("http.response.status_code":200,)j"
            R"j("network.protocol.version":"1.1","server.address":"10.0.0.1",)j"
            R"j("server.port":8080,"client.address":"10.0.0.2","client.port":51234,)j"
            R"j("http.request.body.size":0,"http.response.body.size":512,)j"
            R"j("user_agent.original":"Mozilla/5.0 (iPhone)"})j");
  ExpectNoSecrets(event);
}

TEST(EventJsonTest, ClientGoldenWithTlsAbsoluteFormAndCard) {
  http::Transaction t = ServerTransaction();
  t.request.method = "POST";
  t.request.target = "https://api.stripe.com/v1/charges?card=4111111111111111&amount=1999";
  t.request.version_minor = 0;
  t.request.headers = {{"Authorization", "Basic SECRET"}, {"Content-Length", "42"}};
  t.request.body_size = 42;
  t.response.status_code = 402;
  t.response.last_byte_ts = kStartTs + 250'000;  // 0.25 ms
  ConnMeta m;
  m.pid = 7;
  m.command = "python3";
  m.role = Role::kClient;
  m.local = {"10.0.0.2", 40000};
  m.remote = {"2001:db8::1", 443};
  m.tls = true;
  const std::string event = Format(t, m);
  EXPECT_EQ(event,
            R"j({"timestamp":"2026-11-25T18:46:51.123456Z","level":"WARN","type":"http",)j"
            R"j("kind":"client","message":"POST /v1/charges 402 0.250 ms","duration_ms":0.25,)j"
            R"j("service.name":"shop","process.pid":7,"process.command":"python3",)j"
            R"j("http.request.method":"POST","url.path":"/v1/charges",)j"
            R"j("url.query":"card=REDACTED&amount=1999","http.route":"/api/cart/{id}",)j"
            R"j("http.response.status_code":402,)j"
            R"j("network.protocol.version":"1.0","server.address":"api.stripe.com",)j"
            R"j("url.domain":"api.stripe.com","network.peer.address":"2001:db8::1",)j"
            R"j("server.port":443,"client.address":"10.0.0.2","client.port":40000,)j"
            R"j("http.request.body.size":42,"http.response.body.size":512,"tls":true})j");
  ExpectNoSecrets(event);
}

TEST(EventJsonTest, FailureHasNoResponseFields) {
  http::Transaction t = ServerTransaction();
  t.request.method = "POST";
  t.request.target = "/pay";
  t.has_response = false;
  t.response = {};
  const std::string event = Format(t, ServerMeta());
  EXPECT_EQ(event, R"j({"timestamp":"2026-11-25T18:46:51.123456Z","level":"ERROR","type":"http",)j"
                   R"j("kind":"server","message":"POST /pay: no response (connection closed)",)j"
                   R"j("service.name":"shop","process.pid":4242,"process.command":"nginx",)j"
                   R"j("http.request.method":"POST","url.path":"/pay",)j"
                   R"j("http.route":"/api/cart/{id}",)j"
                   R"j("network.protocol.version":"1.1","server.address":"10.0.0.1",)j"
                   R"j("server.port":8080,"client.address":"10.0.0.2","client.port":51234,)j"
                   R"j("http.request.body.size":0,"user_agent.original":"Mozilla/5.0 (iPhone)"})j");
}

TEST(EventJsonTest, Levels) {
  const std::pair<int, const char*> cases[] = {
      {100, "INFO"}, {101, "INFO"}, {200, "INFO"},  {304, "INFO"},  {399, "INFO"}, {400, "WARN"},
      {404, "WARN"}, {499, "WARN"}, {500, "ERROR"}, {503, "ERROR"}, {599, "ERROR"}};
  for (const auto& [code, level] : cases) {
    http::Transaction t = ServerTransaction();
    t.response.status_code = code;
    const auto j = nlohmann::json::parse(Format(t, ServerMeta()));
    EXPECT_EQ(j["level"], level) << code;
    EXPECT_EQ(j["http.response.status_code"], code);
  }
}

TEST(EventJsonTest, Targets) {
  struct Case {
    const char* target;
    const char* path;
    const char* query;  // nullptr = no url.query key
  };
  const Case cases[] = {
      {"/a/b?x=1", "/a/b", "x=1"},
      {"/a/b", "/a/b", nullptr},
      {"/a/b?", "/a/b", nullptr},
      {"/a?b?c", "/a", "b?c"},
      {"/a#frag", "/a", nullptr},
      {"/a?x=1#frag", "/a", "x=1"},
      {"http://h/p?q", "/p", "q"},
      {"http://h", "/", nullptr},
      {"HTTP://h:8080?password=x", "/", "password=REDACTED"},
      {"https://user@h/p/4111111111111111", "/p/****1111", nullptr},
      {"*", "*", nullptr},
      {"api.example.com:443", "api.example.com:443", nullptr},
      {"", "", nullptr},
      {"/pay/4111-1111-1111-1111?pin=1234", "/pay/****1111", "pin=REDACTED"},
  };
  for (const auto& c : cases) {
    http::Transaction t = ServerTransaction();
    t.request.target = c.target;
    const std::string event = Format(t, ServerMeta());
    const auto j = nlohmann::json::parse(event);
    EXPECT_EQ(j["url.path"], c.path) << c.target;
    if (c.query == nullptr) {
      EXPECT_FALSE(j.contains("url.query")) << c.target;
    } else {
      EXPECT_EQ(j["url.query"], c.query) << c.target;
    }
    // The message carries the redacted path, never the query.
    EXPECT_EQ(j["message"], std::string("GET ") + c.path + " 200 12.3 ms") << c.target;
  }
}

TEST(EventJsonTest, ExactFieldSets) {
  const std::set<std::string> server_fields = {"timestamp",
                                               "level",
                                               "type",
                                               "kind",
                                               "message",
                                               "duration_ms",
                                               "service.name",
                                               "process.pid",
                                               "process.command",
                                               "http.request.method",
                                               "url.path",
                                               "url.query",
                                               "http.route",
                                               "http.response.status_code",
                                               "network.protocol.version",
                                               "server.address",
                                               "server.port",
                                               "client.address",
                                               "client.port",
                                               "http.request.body.size",
                                               "http.response.body.size",
                                               "user_agent.original"};
  const auto keys = [](const std::string& event) {
    std::set<std::string> out;
    const nlohmann::json j = nlohmann::json::parse(event);
    for (const auto& [k, v] : j.items()) out.insert(k);
    return out;
  };
  EXPECT_EQ(keys(Format(ServerTransaction(), ServerMeta())), server_fields);

  ConnMeta m = ServerMeta();
  m.tls = true;
  const std::set<std::string> got = keys(Format(ServerTransaction(), m));
  std::set<std::string> tls_fields = server_fields;
  tls_fields.insert("tls");
  EXPECT_EQ(got, tls_fields);
}

TEST(EventJsonTest, InvalidUtf8Survives) {
  http::Transaction t = ServerTransaction();
  t.request.method = "G\xff\xfeT";
  t.request.target = "/caf\xc3\xa9/\xc3\x28?q=\x80\x81";
  t.request.headers = {{"User-Agent", "bad \xf0\x28\x8c\x28 agent"}};
  ConnMeta m = ServerMeta();
  m.command = "n\xffginx";
  const std::string event = Format(t, m);
  const auto j = nlohmann::json::parse(event, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << event;
  EXPECT_EQ(j["url.path"], "/caf\xc3\xa9/\xef\xbf\xbd(");  // valid é kept, bad byte -> U+FFFD
  EXPECT_EQ(j["process.command"], "n\xef\xbf\xbdginx");
}

TEST(EventJsonTest, ControlCharactersAreEscaped) {
  http::Transaction t = ServerTransaction();
  t.request.target = std::string("/a\nb\"c\\\0d", 10);
  const std::string event = Format(t, ServerMeta());
  EXPECT_EQ(event.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(event);
  EXPECT_EQ(j["url.path"], std::string("/a\nb\"c\\\0d", 10));
}

TEST(EventJsonTest, LongUserAgentIsCut) {
  http::Transaction t = ServerTransaction();
  t.request.headers = {{"User-Agent", std::string(10000, 'a')}};
  const auto j = nlohmann::json::parse(Format(t, ServerMeta()));
  EXPECT_EQ(j["user_agent.original"].get<std::string>().size(), 512u);
}

TEST(EventJsonTest, EmptyTransactionDoesNotThrow) {
  const std::string event =
      FormatHttpEvent(http::Transaction{}, ConnMeta{}, "", "", 0, DefaultRedactor());
  const auto j = nlohmann::json::parse(event);
  EXPECT_EQ(j["timestamp"], "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(j["level"], "ERROR");
  EXPECT_EQ(j["message"], "- : no response (connection closed)");
}

TEST(EventJsonTest, Rfc3339) {
  EXPECT_EQ(redtap::FormatRfc3339Micros(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(redtap::FormatRfc3339Micros(kWallNs + 999'999'999), "2026-11-25T18:46:51.999999Z");
  EXPECT_EQ(redtap::FormatRfc3339Micros(951782400LL * 1'000'000'000),
            "2000-02-29T00:00:00.000000Z");
  EXPECT_EQ(redtap::FormatRfc3339Micros(-1000), "1969-12-31T23:59:59.999999Z");
}

}  // namespace
}  // namespace redtap::exporter

namespace redtap::exporter {
namespace {

// The hand-written writer must print strings exactly as nlohmann's dump(replace) did: random
// byte strings (ASCII, controls, valid and broken UTF-8) in process.command, compared with
// nlohmann's own output for the same bytes.
TEST(EventJsonTest, StringsMatchNlohmannByteForByte) {
  uint64_t x = 88172645463325252ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  static const std::string kPieces[] = {"a",
                                        "\"",
                                        "\\",
                                        "\n",
                                        "\x01",
                                        "\x1f",
                                        "\x7f",
                                        "\xc3\xa9",
                                        "\xe2\x82\xac",
                                        "\xf0\x9f\x98\x80",
                                        "\xc3",
                                        "\xe2\x82",
                                        "\xf0\x9f\x98",
                                        "\x80",
                                        "\xbf",
                                        "\xc0\xaf",
                                        "\xe0\x80\x80",
                                        "\xed\xa0\x80",
                                        "\xf4\x90\x80\x80",
                                        "\xf5",
                                        "\xff",
                                        "/",
                                        "\t",
                                        "\r",
                                        "\b",
                                        "\f",
                                        "\x00"};
  const std::string marker_before = "\"process.command\":";
  const std::string marker_after = ",\"http.request.method\":";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string raw;
    const int n = static_cast<int>(next() % 12);
    for (int i = 0; i < n; ++i) {
      if (next() % 3 == 0)
        raw.push_back(static_cast<char>(next() & 0xff));
      else
        raw += kPieces[next() % (sizeof(kPieces) / sizeof(kPieces[0]))];
    }
    ConnMeta m = ServerMeta();
    m.command = raw;
    const std::string event = Format(ServerTransaction(), m);
    const size_t a = event.find(marker_before);
    const size_t b = event.find(marker_after);
    ASSERT_NE(a, std::string::npos);
    ASSERT_NE(b, std::string::npos);
    const std::string ours = event.substr(a + marker_before.size(), b - a - marker_before.size());
    const std::string theirs =
        nlohmann::json(raw).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    ASSERT_EQ(ours, theirs) << "iteration " << iter;
  }
}

// Every event re-dumps to itself: keys in order, numbers and strings printed as nlohmann does.
TEST(EventJsonTest, RoundTripsThroughNlohmann) {
  http::Transaction t = ServerTransaction();
  for (uint64_t d : {0ull, 1ull, 999ull, 1000ull, 1500ull, 999'999ull, 1'000'000ull, 12'345'678ull,
                     3'600'000'000'000ull}) {
    t.response.last_byte_ts = t.request.first_byte_ts + d;
    for (const Role role : {Role::kServer, Role::kClient}) {
      ConnMeta m = ServerMeta();
      m.role = role;
      const EventExtras extras = {{"shop.cart_value", "", 19.99, true},
                                  {"shop.currency", "EUR", 0, false},
                                  {"shop.items", "", 3, true},
                                  {"shop.big", "", 1e17, true},
                                  {"shop.small", "", 1e-7, true}};
      const std::string event =
          FormatHttpEvent(t, m, "shop", "/r", kOffset, DefaultRedactor(), &extras);
      const auto j = nlohmann::ordered_json::parse(event);
      EXPECT_EQ(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace), event);
    }
  }
}

// An extra attribute named like a standard one replaces its value in place (ordered object).
TEST(EventJsonTest, ExtraWithAStandardKeyReplacesItInPlace) {
  const EventExtras extras = {{"service.name", "checkout", 0, false},
                              {"x.n", "", 1, true},
                              {"x.n", "", 2.5, true},
                              {"process.pid", "", 7, true}};
  const std::string event = FormatHttpEvent(ServerTransaction(), ServerMeta(), "shop",
                                            "/api/cart/{id}", kOffset, DefaultRedactor(), &extras);
  nlohmann::ordered_json want =
      nlohmann::ordered_json::parse(Format(ServerTransaction(), ServerMeta()));
  want["service.name"] = "checkout";
  want["x.n"] = 1.0;
  want["x.n"] = 2.5;
  want["process.pid"] = 7.0;
  EXPECT_EQ(event, want.dump());
}

}  // namespace
}  // namespace redtap::exporter

// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/db_event.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace redtap::exporter {
namespace {

constexpr uint64_t kMs = 1'000'000ull;

db::Operation Select() {
  db::Operation o;
  o.system = db::System::kPostgresql;
  o.operation = "SELECT";
  o.collection = "orders";
  o.query_summary = "SELECT orders";
  o.query_text = "SELECT id FROM orders WHERE customer = ?";
  o.request_ts = 1'000 * kMs;
  o.response_ts = o.request_ts + 3 * kMs;
  o.has_response = true;
  return o;
}

ConnMeta Meta() {
  ConnMeta m;
  m.pid = 42;
  m.command = "shop";
  m.role = Role::kClient;
  m.local = {"127.0.0.1", 40000};
  m.remote = {"127.0.0.1", 5432};
  return m;
}

nlohmann::json Parse(const db::Operation& op, uint64_t slow_ns = 1000 * kMs) {
  return nlohmann::json::parse(FormatDbEvent(op, Meta(), "shop", 0, slow_ns));
}

TEST(DbEventTest, Fields) {
  const auto j = Parse(Select());
  EXPECT_EQ(j["type"], "db");
  EXPECT_EQ(j["level"], "INFO");
  EXPECT_EQ(j["message"], "postgresql SELECT orders 3.0 ms");
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 3.0);
  EXPECT_EQ(j["service.name"], "shop");
  EXPECT_EQ(j["process.pid"], 42);
  EXPECT_EQ(j["db.system.name"], "postgresql");
  EXPECT_EQ(j["db.operation.name"], "SELECT");
  EXPECT_EQ(j["db.collection.name"], "orders");
  EXPECT_EQ(j["db.query.summary"], "SELECT orders");
  EXPECT_EQ(j["db.query.text"], "SELECT id FROM orders WHERE customer = ?");
  EXPECT_FALSE(j.contains("db.response.status_code"));
  EXPECT_EQ(j["server.address"], "127.0.0.1");
  EXPECT_EQ(j["server.port"], 5432);
  EXPECT_EQ(j["client.port"], 40000);
}

TEST(DbEventTest, ErrorsSlowAndUnanswered) {
  db::Operation e = Select();
  e.status_code = "23505";
  e.error_type = "23";
  auto j = Parse(e);
  EXPECT_EQ(j["level"], "ERROR");
  EXPECT_EQ(j["db.response.status_code"], "23505");
  EXPECT_EQ(j["error.type"], "23");
  EXPECT_EQ(j["message"], "postgresql SELECT orders: error 23505 3.0 ms");

  db::Operation slow = Select();
  slow.response_ts = slow.request_ts + 1200 * kMs;
  j = Parse(slow);
  EXPECT_EQ(j["level"], "WARN");
  EXPECT_EQ(j["message"], "postgresql SELECT orders 1200.0 ms (slow)");

  db::Operation lost = Select();
  lost.has_response = false;
  lost.response_ts = 0;
  j = Parse(lost);
  EXPECT_EQ(j["level"], "ERROR");
  EXPECT_FALSE(j.contains("duration_ms"));
  EXPECT_EQ(
      j["message"],
      "postgresql SELECT orders: no reply seen (connection closed, or lost to a capture gap)");
}

TEST(DbEventTest, CardNumbersAreMaskedEvenInIdentifiers) {
  db::Operation o = Select();
  o.collection = "t4111111111111111";
  o.query_text = "SELECT * FROM t4111111111111111 WHERE a = ?";
  o.query_summary = "SELECT t4111111111111111";
  const std::string line = FormatDbEvent(o, Meta(), "shop", 0, 1000 * kMs);
  EXPECT_EQ(line.find("4111111111111111"), std::string::npos) << line;
}

}  // namespace
}  // namespace redtap::exporter

// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/db_store.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "userspace/exposition/registry.h"

namespace redtap::metrics {
namespace {

constexpr uint64_t kMs = 1'000'000ull;
constexpr uint64_t kSec = 1'000'000'000ull;
constexpr uint64_t kT0 = 10'000 * kSec;

db::Operation Op(db::System sys, std::string op, std::string coll, uint64_t dur_ns,
                 std::string error = "", bool replied = true) {
  db::Operation o;
  o.system = sys;
  o.operation = std::move(op);
  o.collection = std::move(coll);
  o.query_summary = o.operation + (o.collection.empty() ? "" : " " + o.collection);
  o.error_type = error;
  o.status_code = error;
  o.request_ts = 5 * kSec;
  o.response_ts = o.request_ts + dur_ns;
  o.has_response = replied;
  return o;
}

ConnMeta Client(uint16_t port) {
  ConnMeta m;
  m.pid = 300;
  m.command = "shop";
  m.role = Role::kClient;
  m.local = {"127.0.0.1", 40000};
  m.remote = {"127.0.0.1", port};
  return m;
}

class DbStoreTest : public ::testing::Test {
 protected:
  DbStoreTest() : store_(config::DefaultConfig()) {}
  void Record(db::Operation op, uint16_t port = 5432, uint64_t now = kT0) {
    enrich::EnrichedDb e;
    ConnMeta meta = Client(port);
    e.op = &op;
    e.meta = &meta;
    e.service = "shop";
    e.now_ns = now;
    store_.ConsumeDb(e);
  }
  std::string Text() const {
    exposition::Families f;
    store_.Collect(&f);
    return exposition::RenderText(f);
  }
  DbStore store_;
};

TEST_F(DbStoreTest, HistogramPerOperationCollectionAndError) {
  for (int i = 0; i < 3; ++i) Record(Op(db::System::kPostgresql, "SELECT", "orders", 2 * kMs));
  Record(Op(db::System::kPostgresql, "INSERT", "orders", 4 * kMs, "23"));
  Record(Op(db::System::kRedis, "GET", "", kMs / 2), 6379);
  const std::string t = Text();
  EXPECT_NE(t.find("db_client_operation_duration_seconds_count{service_name=\"shop\","
                   "db_system_name=\"postgresql\",db_operation_name=\"SELECT\","
                   "db_collection_name=\"orders\",server_address=\"127.0.0.1\","
                   "server_port=\"5432\",error_type=\"\"} 3"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("db_operation_name=\"INSERT\",db_collection_name=\"orders\","
                   "server_address=\"127.0.0.1\",server_port=\"5432\",error_type=\"23\"} 1"),
            std::string::npos)
      << t;
  // 2 ms falls in the 2.5 ms bucket, cumulatively in every bucket above.
  EXPECT_NE(t.find("db_operation_name=\"SELECT\",db_collection_name=\"orders\","
                   "server_address=\"127.0.0.1\",server_port=\"5432\",error_type=\"\","
                   "le=\"0.0025\"} 3"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("db_system_name=\"redis\",db_operation_name=\"GET\",db_collection_name=\"\""),
            std::string::npos);
  EXPECT_EQ(store_.operations(), 5u);
}

TEST_F(DbStoreTest, SlowAndFailedOperationsAreCounted) {
  Record(Op(db::System::kPostgresql, "SELECT", "", 1200 * kMs));
  Record(Op(db::System::kPostgresql, "SELECT", "", 999 * kMs));
  Record(Op(db::System::kPostgresql, "SELECT", "", 0, "", /*replied=*/false));
  const std::string t = Text();
  EXPECT_NE(t.find("redtap_db_slow_operations_total{service_name=\"shop\",db_system_name="
                   "\"postgresql\",db_operation_name=\"SELECT\"} 1"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("redtap_db_operations_failed_total{service_name=\"shop\",db_system_name="
                   "\"postgresql\",db_operation_name=\"SELECT\"} 1"),
            std::string::npos)
      << t;
  // The failed one has no duration: 2 observations.
  EXPECT_NE(t.find("error_type=\"\"} 2"), std::string::npos) << t;
}

TEST_F(DbStoreTest, SeriesAreBoundedByFolding) {
  config::Config c = config::DefaultConfig();
  c.db.max_series = 10;
  DbStore small(c);
  ConnMeta meta = Client(5432);
  for (int i = 0; i < 50; ++i) {
    db::Operation op = Op(db::System::kPostgresql, "SELECT", "t" + std::to_string(i), kMs);
    enrich::EnrichedDb e;
    e.op = &op;
    e.meta = &meta;
    e.service = "shop";
    e.now_ns = kT0;
    small.ConsumeDb(e);
  }
  exposition::Families f;
  small.Collect(&f);
  const std::string t = exposition::RenderText(f);
  EXPECT_NE(t.find("db_operation_name=\"_OTHER\",db_collection_name=\"_OTHER\""),
            std::string::npos);
  EXPECT_NE(t.find("redtap_agent_series_folded_total{reason=\"db_series\"} 40"), std::string::npos)
      << t;
  const auto rows = nlohmann::json::parse(small.RenderDatabasesJson(kT0));
  EXPECT_EQ(rows.size(), 11u);
}

TEST_F(DbStoreTest, DatabasesJsonHasRatesAndQuantiles) {
  for (int i = 0; i < 60; ++i) {
    Record(Op(db::System::kMysql, "UPDATE", "stock", (i + 1) * kMs), 3306, kT0 + i * kSec);
  }
  const auto rows = nlohmann::json::parse(store_.RenderDatabasesJson(kT0 + 60 * kSec));
  ASSERT_EQ(rows.size(), 1u);
  const auto& r = rows[0];
  EXPECT_EQ(r["service"], "shop");
  EXPECT_EQ(r["db_system"], "mysql");
  EXPECT_EQ(r["operation"], "UPDATE");
  EXPECT_EQ(r["collection"], "stock");
  EXPECT_EQ(r["server_port"], 3306);
  EXPECT_EQ(r["operations_total"], 60);
  EXPECT_NEAR(r["ops_1m"].get<double>(), 1.0, 0.05);
  EXPECT_NEAR(r["p50_ms"].get<double>(), 30.0, 1.0);
  EXPECT_NEAR(r["p99_ms"].get<double>(), 60.0, 1.5);
}

}  // namespace
}  // namespace redtap::metrics

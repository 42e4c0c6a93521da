// SPDX-License-Identifier: Apache-2.0
#include "userspace/enrich/service_resolver.h"

#include <gtest/gtest.h>

#include <map>

namespace redtap::enrich {
namespace {

ConnMeta Meta(uint32_t pid, const std::string& comm, Role role, uint16_t local_port,
              uint16_t remote_port = 40000) {
  ConnMeta m;
  m.pid = pid;
  m.command = comm;
  m.role = role;
  m.local = {"10.0.0.1", local_port};
  m.remote = {"10.0.0.2", remote_port};
  return m;
}

TEST(ServiceResolverTest, RulesInOrderElseCommand) {
  std::map<uint32_t, std::string> exes = {{10, "/opt/payment/bin/gw"}, {11, "/usr/bin/python3"}};
  int reads = 0;
  ServiceResolver r(
      {
          {"shop", "php-fpm", "", 0},
          {"payment-gw", "", "/opt/payment/", 0},
          {"py-api", "", "/usr/bin/python3", 8000},
          {"catalog", "java", "", 8080},
      },
      [&](uint32_t pid) {
        ++reads;
        return exes.count(pid) ? exes[pid] : std::string();
      });
  EXPECT_EQ(r.Resolve(Meta(1, "php-fpm", Role::kServer, 80), 0), "shop");
  EXPECT_EQ(r.Resolve(Meta(10, "gw", Role::kClient, 5000, 443), 0), "payment-gw");
  EXPECT_EQ(r.Resolve(Meta(11, "python3", Role::kServer, 8000), 0), "py-api");
  EXPECT_EQ(r.Resolve(Meta(11, "python3", Role::kServer, 9000), 0), "python3");
  // Port rules name servers only: a client calling port 8080 is not "catalog".
  EXPECT_EQ(r.Resolve(Meta(12, "java", Role::kServer, 8080), 0), "catalog");
  EXPECT_EQ(r.Resolve(Meta(12, "java", Role::kClient, 8080, 8080), 0), "java");
  EXPECT_EQ(r.Resolve(Meta(13, "", Role::kServer, 1), 0), "unknown");
  // Exact exe vs prefix: "/opt/payment" (no slash) would not match /opt/payment/bin/gw.
  const int before = reads;
  EXPECT_EQ(r.Resolve(Meta(10, "gw", Role::kServer, 1), 1'000'000), "payment-gw");
  EXPECT_EQ(reads, before) << "exe cached per pid";
  EXPECT_EQ(r.Resolve(Meta(10, "gw", Role::kServer, 1), ServiceResolver::kCacheTtlNs + 1),
            "payment-gw");
  EXPECT_EQ(reads, before + 1) << "re-read after the TTL";
}

TEST(ServiceResolverTest, NoExeRuleNeverReadsProc) {
  int reads = 0;
  ServiceResolver r({{"shop", "php-fpm", "", 0}}, [&](uint32_t) {
    ++reads;
    return std::string("/x");
  });
  for (uint32_t pid = 0; pid < 100; ++pid) r.Resolve(Meta(pid, "nginx", Role::kServer, 80), 0);
  EXPECT_EQ(reads, 0);
}

TEST(ServiceResolverTest, CacheIsBounded) {
  ServiceResolver r(
      {{"x", "", "/nope", 0}}, [](uint32_t) { return std::string("/bin/a"); }, 64);
  for (uint32_t pid = 0; pid < 10000; ++pid) {
    EXPECT_EQ(r.Resolve(Meta(pid, "a", Role::kServer, 80), pid), "a");
    ASSERT_LE(r.cache_entries(), 64u);
  }
  EXPECT_EQ(r.exe_reads(), 10000u);
}

TEST(ServiceResolverTest, ReadProcExeOfSelf) {
  const std::string exe = ReadProcExe(static_cast<uint32_t>(getpid()));
  EXPECT_TRUE(exe.ends_with("enrich_test")) << exe;
  EXPECT_EQ(ReadProcExe(0), "");
}

}  // namespace
}  // namespace redtap::enrich

// SPDX-License-Identifier: Apache-2.0
// The per-program fallback of BpfObject, with a fake kernel: which programs its verifier
// rejects, and every load the library asks for.
#include <errno.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "userspace/bpf/bpf_object.h"

namespace redtap {
namespace {

using internal::FallbackOutcome;
using internal::LoadWithFallback;

class FakeKernel {
 public:
  FakeKernel(std::vector<std::string> programs, std::set<std::string> rejected)
      : programs_(std::move(programs)), rejected_(std::move(rejected)) {}

  Result<FallbackOutcome> Load(bool fallback) {
    return LoadWithFallback(
        fallback, [&] { return programs_; },
        [&](const std::vector<std::string>& skip) -> Result<int> {
          full_loads.push_back(skip);
          if (fail_open) return Status::Error("cannot open the x BPF object: boom");
          for (const auto& p : programs_) {
            bool skipped = std::find(skip.begin(), skip.end(), p) != skip.end();
            if (!skipped && (rejected_.count(p) || reject_together)) return -EACCES;
          }
          return 0;
        },
        [&](const std::string& only) -> Result<int> {
          probes.push_back(only);
          return rejected_.count(only) ? -EINVAL : 0;
        });
  }

  std::vector<std::vector<std::string>> full_loads;  // the skip list of each full load
  std::vector<std::string> probes;                   // programs loaded alone
  bool fail_open = false;
  bool reject_together = false;  // every program passes alone, not all together

 private:
  std::vector<std::string> programs_;
  std::set<std::string> rejected_;
};

TEST(LoadWithFallback, EverythingLoadsAtOnce) {
  FakeKernel k({"a", "b", "c"}, {});
  auto r = k.Load(true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->err, 0);
  EXPECT_TRUE(r->rejected.empty());
  EXPECT_EQ(k.full_loads.size(), 1u);
  EXPECT_TRUE(k.probes.empty());  // no probing when nothing failed
}

TEST(LoadWithFallback, LeavesOutTheRejectedProgramsAndReportsThem) {
  FakeKernel k({"a", "b", "c", "d"}, {"b", "d"});
  auto r = k.Load(true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->err, 0);
  ASSERT_EQ(r->rejected.size(), 2u);
  EXPECT_EQ(r->rejected[0].first, "b");
  EXPECT_EQ(r->rejected[0].second, -EINVAL);  // the error of the program alone
  EXPECT_EQ(r->rejected[1].first, "d");
  EXPECT_EQ(k.probes, (std::vector<std::string>{"a", "b", "c", "d"}));
  ASSERT_EQ(k.full_loads.size(), 2u);
  EXPECT_EQ(k.full_loads[1], (std::vector<std::string>{"b", "d"}));
}

TEST(LoadWithFallback, NothingLoadsAloneKeepsTheFirstError) {
  FakeKernel k({"a", "b"}, {"a", "b"});
  auto r = k.Load(true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->err, -EACCES);
  EXPECT_EQ(r->rejected.size(), 2u);
  EXPECT_EQ(k.full_loads.size(), 1u);  // no pointless load of nothing
}

TEST(LoadWithFallback, OffMeansTheFirstErrorIsTheAnswer) {
  FakeKernel k({"a", "b"}, {"b"});
  auto r = k.Load(false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->err, -EACCES);
  EXPECT_TRUE(r->rejected.empty());
  EXPECT_TRUE(k.probes.empty());
}

TEST(LoadWithFallback, ProgramsThatFailOnlyTogetherStayAnError) {
  FakeKernel k({"a", "b"}, {});
  k.reject_together = true;
  auto r = k.Load(true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->err, -EACCES);
  EXPECT_TRUE(r->rejected.empty());
  EXPECT_EQ(k.full_loads.size(), 2u);  // retried once without anything left out
}

TEST(LoadWithFallback, AnObjectThatDoesNotOpenIsAStatus) {
  FakeKernel k({"a"}, {});
  k.fail_open = true;
  auto r = k.Load(true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "cannot open the x BPF object: boom");
}

}  // namespace
}  // namespace redtap

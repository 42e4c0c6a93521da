// SPDX-License-Identifier: Apache-2.0
// events.select (export/event_select.h): what each choice keeps, and the count of the rest.
#include "userspace/export/event_select.h"

#include <gtest/gtest.h>

namespace redtap::exporter {
namespace {

using Select = config::EventsConfig::Select;

config::EventsConfig With(Select s, double ratio = 0.1) {
  config::EventsConfig c;
  c.select = s;
  c.sample_ratio = ratio;
  return c;
}

TEST(EventSelector, AllKeepsEverything) {
  EventSelector s(With(Select::kAll));
  EXPECT_TRUE(s.Keep(false, false));
  EXPECT_TRUE(s.Keep(true, true));
  EXPECT_EQ(s.sampled_out(), 0u);
}

TEST(EventSelector, ErrorsAndSlow) {
  EventSelector e(With(Select::kErrors));
  EXPECT_TRUE(e.Keep(true, false));
  EXPECT_FALSE(e.Keep(false, true));
  EXPECT_FALSE(e.Keep(false, false));
  EXPECT_EQ(e.sampled_out(), 2u);
  EventSelector s(With(Select::kSlow));
  EXPECT_TRUE(s.Keep(false, true));
  EXPECT_FALSE(s.Keep(true, false));
  EXPECT_EQ(s.sampled_out(), 1u);
}

TEST(EventSelector, SampleKeepsErrorsSlowAndItsShareOfTheRest) {
  EventSelector s(With(Select::kSample, 0.25));
  int kept = 0;
  for (int i = 0; i < 100000; ++i) kept += s.Keep(false, false);
  EXPECT_NEAR(kept, 25000, 1000);  // deterministic; the hash spreads the sequence evenly
  EXPECT_EQ(s.sampled_out(), 100000u - static_cast<uint64_t>(kept));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(s.Keep(true, false));
    ASSERT_TRUE(s.Keep(false, true));
  }
  EXPECT_EQ(s.sampled_out(), 100000u - static_cast<uint64_t>(kept));
}

TEST(EventSelector, SampleRatioBounds) {
  EventSelector none(With(Select::kSample, 0.0));
  EventSelector every(With(Select::kSample, 1.0));
  for (int i = 0; i < 10000; ++i) {
    ASSERT_FALSE(none.Keep(false, false));
    ASSERT_TRUE(every.Keep(false, false));
  }
  EXPECT_EQ(none.sampled_out(), 10000u);
  EXPECT_EQ(every.sampled_out(), 0u);
}

}  // namespace
}  // namespace redtap::exporter

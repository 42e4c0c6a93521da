// SPDX-License-Identifier: Apache-2.0
// The metrics registry: collectors in order, families of one name merged (two modules adding
// reasons to one counter), the helpers every module builds its families with.
#include "userspace/exposition/registry.h"

#include <gtest/gtest.h>

#include <string>

namespace redtap::exposition {
namespace {

TEST(Registry, CollectorsInOrderAndSameNamedFamiliesMerged) {
  Registry r;
  r.Add([](Families* out) {
    out->push_back(SingleCounter("redtap_agent_records_total", "Records.", 1000));
    out->push_back(ReasonCounter("redtap_agent_userspace_drops_total", "Drops, by reason.",
                                 {{"event_queue_full", 1}}));
  });
  r.Add([](Families* out) {
    out->push_back(ReasonCounter("redtap_agent_userspace_drops_total", "Drops, by reason.",
                                 {{"seq_gap", 2}, {"bad_record", 0}}));
    out->push_back(SingleGauge("redtap_agent_ready", "Ready.", 1));
  });
  EXPECT_EQ(r.Render(),
            "# HELP redtap_agent_records_total Records.\n"
            "# TYPE redtap_agent_records_total counter\n"
            "redtap_agent_records_total 1000\n"
            "# HELP redtap_agent_userspace_drops_total Drops, by reason.\n"
            "# TYPE redtap_agent_userspace_drops_total counter\n"
            "redtap_agent_userspace_drops_total{reason=\"event_queue_full\"} 1\n"
            "redtap_agent_userspace_drops_total{reason=\"seq_gap\"} 2\n"
            "redtap_agent_userspace_drops_total{reason=\"bad_record\"} 0\n"
            "# HELP redtap_agent_ready Ready.\n"
            "# TYPE redtap_agent_ready gauge\n"
            "redtap_agent_ready 1\n");
}

TEST(Registry, HistogramFromNonCumulativeCounts) {
  Families f;
  MetricFamily h = Family("x_seconds", "X.", MetricType::Histogram);
  // 1 below 0.1, 2 below 1, 3 above: cumulative 1, 3, then +Inf = count.
  h.metric.push_back(Histogram({{"a", "b"}}, {0.1, 1}, {1, 2, 3}, 7.5, 6));
  f.push_back(std::move(h));
  const std::string text = RenderText(std::move(f));
  EXPECT_NE(text.find("x_seconds_bucket{a=\"b\",le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{a=\"b\",le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{a=\"b\",le=\"+Inf\"} 6\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_sum{a=\"b\"} 7.5\n"), std::string::npos) << text;
}

TEST(Registry, LabelValuesAreEscaped) {
  Families f;
  MetricFamily c = Family("y_total", "Y.", MetricType::Counter);
  c.metric.push_back(Counter({{"route", "/a\"b\\c\nd"}}, 2));
  f.push_back(std::move(c));
  EXPECT_NE(RenderText(std::move(f)).find("y_total{route=\"/a\\\"b\\\\c\\nd\"} 2\n"),
            std::string::npos);
}

}  // namespace
}  // namespace redtap::exposition

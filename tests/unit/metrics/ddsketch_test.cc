// SPDX-License-Identifier: Apache-2.0
#include "userspace/metrics/ddsketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace redtap::metrics {
namespace {

constexpr double kQuantiles[] = {0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1};

/// The exact q-quantile of sorted `v` by nearest rank: the ceil(q * n)-th smallest sample.
double Exact(const std::vector<double>& v, double q) {
  const double nearest = std::ceil(q * static_cast<double>(v.size()) - 1e-9);
  return v[nearest < 1 ? 0 : static_cast<size_t>(nearest) - 1];
}

/// Max relative error of the sketch over kQuantiles against the exact quantiles.
double MaxRelativeError(const DDSketch& sketch, std::vector<double> values) {
  std::sort(values.begin(), values.end());
  double worst = 0;
  for (double q : kQuantiles) {
    const double exact = Exact(values, q);
    const double got = sketch.Quantile(q);
    const double err = exact == 0 ? std::abs(got) : std::abs(got - exact) / exact;
    worst = std::max(worst, err);
  }
  return worst;
}

TEST(DDSketchTest, AccuracyOnDistributions) {
  std::mt19937_64 rng(42);
  struct Dist {
    const char* name;
    std::function<double()> draw;
  };
  std::uniform_real_distribution<double> uniform(0.001, 2.0);
  std::exponential_distribution<double> expo(1 / 0.05);
  std::lognormal_distribution<double> lognormal(std::log(0.03), 1.5);
  std::uniform_real_distribution<double> u01(0, 1);
  const Dist dists[] = {
      {"uniform(1ms..2s)", [&] { return uniform(rng); }},
      {"exponential(mean 50ms)", [&] { return expo(rng); }},
      {"lognormal(median 30ms, sigma 1.5)", [&] { return lognormal(rng); }},
      {"pareto(1ms, alpha 1.2)", [&] { return 0.001 / std::pow(1 - u01(rng), 1 / 1.2); }},
      {"bimodal(2ms | 800ms)",
       [&] { return u01(rng) < 0.9 ? 0.002 * (1 + 0.1 * u01(rng)) : 0.8 * (1 + u01(rng)); }},
  };
  double overall = 0;
  for (const auto& d : dists) {
    DDSketch sketch(0.01);
    std::vector<double> values;
    for (int i = 0; i < 100000; ++i) {
      const double v = d.draw();
      values.push_back(v);
      sketch.Add(v);
    }
    const double err = MaxRelativeError(sketch, values);
    std::printf("[ DDSketch ] %-36s max relative error %.5f %% over %zu bins\n", d.name, err * 100,
                sketch.bin_count());
    EXPECT_LE(err, 0.01) << d.name;
    EXPECT_EQ(sketch.count(), 100000u);
    overall = std::max(overall, err);
  }
  std::printf("[ DDSketch ] worst measured relative error: %.5f %% (bound 1 %%)\n", overall * 100);
}

TEST(DDSketchTest, MergeEqualsOneSketch) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(std::log(0.01), 1);
  DDSketch all;
  std::vector<DDSketch> parts(20);
  std::vector<double> values;
  for (int i = 0; i < 50000; ++i) {
    const double v = dist(rng);
    values.push_back(v);
    all.Add(v);
    parts[i % parts.size()].Add(v);
  }
  DDSketch merged;
  for (const auto& p : parts) ASSERT_TRUE(merged.Merge(p));
  EXPECT_EQ(merged.count(), all.count());
  for (double q : kQuantiles) EXPECT_DOUBLE_EQ(merged.Quantile(q), all.Quantile(q)) << q;
  EXPECT_LE(MaxRelativeError(merged, values), 0.01);
  DDSketch other_accuracy(0.05);
  EXPECT_FALSE(merged.Merge(other_accuracy));
}

TEST(DDSketchTest, EdgeValues) {
  DDSketch s;
  EXPECT_TRUE(std::isnan(s.Quantile(0.5)));
  s.Add(0);
  s.Add(-1);
  s.Add(std::nan(""));
  EXPECT_EQ(s.Quantile(0.5), 0);
  s.Add(5);
  EXPECT_EQ(s.count(), 4u);
  EXPECT_EQ(s.Quantile(1), 5);  // clamped to the exact max
  EXPECT_TRUE(std::isnan(s.Quantile(1.5)));
  s.Clear();
  EXPECT_EQ(s.count(), 0u);
  s.Add(1e300);
  s.Add(1e-300);
  EXPECT_EQ(s.Quantile(1), 1e300);
}

TEST(DDSketchTest, BinsAreBoundedAndHighQuantilesStayAccurate) {
  DDSketch s(0.01, 128);
  std::vector<double> values;
  // 9 decades: far more than 128 bins can hold.
  for (int i = 0; i < 90000; ++i) {
    const double v = std::pow(10, -6 + 9.0 * i / 90000);
    values.push_back(v);
    s.Add(v);
  }
  EXPECT_LE(s.bin_count(), 128u);
  std::sort(values.begin(), values.end());
  for (double q : {0.99, 0.999}) {
    const double exact = Exact(values, q);
    EXPECT_LE(std::abs(s.Quantile(q) - exact) / exact, 0.01) << q;
  }
  // Values arriving in decreasing order collapse the same way.
  DDSketch d(0.01, 128);
  for (auto it = values.rbegin(); it != values.rend(); ++it) d.Add(*it);
  EXPECT_LE(d.bin_count(), 128u);
  EXPECT_LE(std::abs(d.Quantile(0.99) - s.Quantile(0.99)) / s.Quantile(0.99), 0.01);
}

TEST(WindowedSketchTest, ExpiresWithFakeTime) {
  constexpr uint64_t kSec = 1'000'000'000ull;
  WindowedSketch w(15 * kSec, 20);
  const uint64_t t0 = 1000 * kSec;
  for (int i = 0; i < 100; ++i) w.Add(t0, 0.010);            // 10 ms at t0
  for (int i = 0; i < 100; ++i) w.Add(t0 + 90 * kSec, 1.0);  // 1 s, 90 s later
  // 5-minute window at t0 + 90 s: both.
  DDSketch five = w.Window(t0 + 90 * kSec, 300 * kSec);
  EXPECT_EQ(five.count(), 200u);
  // 1-minute window: only the recent ones.
  DDSketch one = w.Window(t0 + 90 * kSec, 60 * kSec);
  EXPECT_EQ(one.count(), 100u);
  EXPECT_NEAR(one.Quantile(0.5), 1.0, 0.01);
  // 5 minutes after t0 + 14 s the t0 sub-window has left the window...
  EXPECT_EQ(w.Window(t0 + 314 * kSec, 300 * kSec).count(), 100u);
  // ...and 20 sub-windows later the ring slot is reused and cleared.
  w.Add(t0 + 300 * kSec, 0.5);
  EXPECT_EQ(w.Window(t0 + 300 * kSec, 300 * kSec).count(), 101u);
  EXPECT_EQ(w.Window(t0 + 10000 * kSec, 300 * kSec).count(), 0u);
  EXPECT_GT(w.MemoryBytes(), 0u);
}

}  // namespace
}  // namespace redtap::metrics

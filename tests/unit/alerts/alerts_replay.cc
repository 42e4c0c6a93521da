// SPDX-License-Identifier: Apache-2.0
// Test tool: replays series (as promtool's input_series, one value per step) through the local
// alert engine and prints, at each step, the alerts that are firing. rules_agreement_test.py
// runs the same series through promtool and the generated rules: both must agree.
//
// Input (JSON on stdin): {"config": PATH, "step_s": 15, "steps": N,
//   "series": [{"name": "metric", "labels": {...}, "values": [v0, v1, ...]}]}
// Histograms come as NAME_bucket{le=...} and NAME_count series; anything else is a counter
// or gauge. Output (JSON on stdout): [[step, "alertname", {labels}], ...] for firing alerts.
#include <cmath>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "userspace/alerts/engine.h"
#include "userspace/config/config.h"

using redtap::exposition::ClientMetric;
using redtap::exposition::Families;
using redtap::exposition::Labels;

namespace {

Labels ToLabels(const nlohmann::json& j, const char* skip) {
  std::map<std::string, std::string> sorted;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != skip) sorted[it.key()] = it.value().get<std::string>();
  }
  Labels l;
  for (const auto& [k, v] : sorted) l.push_back({k, v});
  return l;
}

Families At(const nlohmann::json& series, size_t step) {
  std::map<std::string, std::map<Labels, ClientMetric>> hist;
  std::map<std::string, std::map<Labels, ClientMetric>> plain;
  for (const auto& s : series) {
    const std::string name = s["name"];
    const auto& values = s["values"];
    if (step >= values.size() || values[step].is_null()) continue;  // absent at this step
    const double v = values[step].get<double>();
    if (name.ends_with("_bucket")) {
      const std::string base = name.substr(0, name.size() - 7);
      auto& m = hist[base][ToLabels(s["labels"], "le")];
      const std::string le = s["labels"]["le"];
      if (le == "+Inf") {
        if (!m.histogram.sample_count) m.histogram.sample_count = static_cast<uint64_t>(v);
      } else {
        m.histogram.bucket.push_back({static_cast<uint64_t>(v), std::stod(le)});
      }
    } else if (name.ends_with("_count") && [&] {
                 for (const auto& o : series)
                   if (o["name"] == name.substr(0, name.size() - 6) + "_bucket") return true;
                 return false;
               }()) {
      hist[name.substr(0, name.size() - 6)][ToLabels(s["labels"], "")].histogram.sample_count =
          static_cast<uint64_t>(v);
    } else {
      auto& m = plain[name][ToLabels(s["labels"], "")];
      m.counter.value = v;
      m.gauge.value = v;
    }
  }
  Families out;
  for (auto& [name, metrics] : hist) {
    auto f = redtap::exposition::Family(name, "", redtap::exposition::MetricType::Histogram);
    for (auto& [labels, m] : metrics) {
      m.label = labels;
      std::sort(m.histogram.bucket.begin(), m.histogram.bucket.end(),
                [](const auto& a, const auto& b) { return a.upper_bound < b.upper_bound; });
      f.metric.push_back(m);
    }
    out.push_back(std::move(f));
  }
  for (auto& [name, metrics] : plain) {
    auto f = redtap::exposition::Family(name, "", redtap::exposition::MetricType::Counter);
    for (auto& [labels, m] : metrics) {
      m.label = labels;
      f.metric.push_back(m);
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

int main() {
  nlohmann::json in = nlohmann::json::parse(std::cin);
  auto cfg = redtap::config::LoadConfigFile(in["config"].get<std::string>());
  if (!cfg.ok()) {
    std::cerr << cfg.error() << "\n";
    return 2;
  }
  redtap::alerts::Engine engine(cfg.value());
  const int64_t step_ms = in["step_s"].get<int64_t>() * 1000;
  const size_t steps = in["steps"].get<size_t>();
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < steps; i++) {
    engine.Evaluate(At(in["series"], i), static_cast<int64_t>(i) * step_ms);
    for (const auto& a : engine.Active()) {
      if (a.state != redtap::alerts::AlertState::kFiring) continue;
      out.push_back({i, a.labels.at("alertname"), a.labels});
    }
  }
  std::cout << out.dump() << "\n";
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
#include "userspace/exposition/registry.h"

#include <prometheus/text_serializer.h>

#include <unordered_map>

namespace redtap::exposition {

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric Counter(Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  return m;
}

ClientMetric Gauge(Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

ClientMetric Histogram(Labels labels, const std::vector<double>& bounds,
                       const std::vector<uint64_t>& counts, double sum, uint64_t count) {
  ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = count;
  m.histogram.sample_sum = sum;
  m.histogram.bucket.reserve(bounds.size());
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    m.histogram.bucket.push_back({cumulative, bounds[i]});
  }
  return m;  // the serializer adds le="+Inf" = sample_count
}

MetricFamily ReasonCounter(std::string name, std::string help, const Reasons& reasons,
                           const std::string& label) {
  MetricFamily f = Family(std::move(name), std::move(help), MetricType::Counter);
  for (const auto& [reason, v] : reasons) {
    f.metric.push_back(Counter({{label, reason}}, static_cast<double>(v)));
  }
  return f;
}

MetricFamily SingleCounter(std::string name, std::string help, double value) {
  MetricFamily f = Family(std::move(name), std::move(help), MetricType::Counter);
  f.metric.push_back(Counter({}, value));
  return f;
}

MetricFamily SingleGauge(std::string name, std::string help, double value) {
  MetricFamily f = Family(std::move(name), std::move(help), MetricType::Gauge);
  f.metric.push_back(Gauge({}, value));
  return f;
}

std::string RenderText(Families families) {
  Families merged;
  merged.reserve(families.size());
  std::unordered_map<std::string, size_t> index;
  for (MetricFamily& f : families) {
    auto [it, fresh] = index.try_emplace(f.name, merged.size());
    if (fresh) {
      merged.push_back(std::move(f));
    } else {
      auto& into = merged[it->second].metric;
      into.insert(into.end(), std::make_move_iterator(f.metric.begin()),
                  std::make_move_iterator(f.metric.end()));
    }
  }
  return prometheus::TextSerializer().Serialize(merged);
}

void Registry::Add(Collector collector) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collector));
}

Families Registry::Collect() const {
  std::vector<Collector> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collectors = collectors_;
  }
  Families out;
  for (const Collector& c : collectors) c(&out);
  return out;
}

std::string Registry::Render() const { return RenderText(Collect()); }

}  // namespace redtap::exposition

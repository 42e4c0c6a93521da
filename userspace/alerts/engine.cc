// SPDX-License-Identifier: Apache-2.0
#include "userspace/alerts/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace redtap::alerts {

using config::AlertRule;
using config::AlertSignal;

namespace {

// Groups (by: label sets) evaluated per rule; more are left out (and counted).
constexpr size_t kMaxGroups = 1000;
// Observations kept per rule: a long lookback (conversion_drop's 24 h baseline) is sampled
// more coarsely, never with more than this many.
constexpr int64_t kMaxSnapshots = 512;
// Values (doubles) kept per rule across its observations: ≈4 MiB. A rule with many label sets
// and histogram buckets keeps fewer, coarser observations (never fewer than 16).
constexpr size_t kMaxStoredValues = 512 * 1024;

size_t ValuesOf(const Observation& obs) {
  size_t n = 0;
  for (const auto& [k, v] : obs) n += v.size() + k.size() + 2;
  return n;
}

std::vector<double> Increase(const std::vector<double>& cur, const std::vector<double>* base) {
  std::vector<double> d(cur);
  if (!base) return d;
  for (size_t i = 0; i < d.size() && i < base->size(); i++) {
    // A counter that went down restarted: everything it holds is new.
    if (cur[i] >= (*base)[i]) d[i] = cur[i] - (*base)[i];
  }
  return d;
}

double Guard(uint64_t min_events) { return static_cast<double>(std::max<uint64_t>(min_events, 1)); }

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string Fingerprint(const LabelSet& labels) {
  std::string s;
  for (const auto& [k, v] : labels) s += k + '\xff' + v + '\xff';
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(Fnv1a(s)));
  return buf;
}

std::string FormatValue(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

}  // namespace

int64_t SpikeBaselineMinSamples(const config::AlertRule& r, int64_t interval_ms) {
  const int64_t evaluations =
      static_cast<int64_t>(r.baseline_ms) / std::max<int64_t>(interval_ms, 1);
  return std::max<int64_t>(2, evaluations / 2);
}

const char* StateName(AlertState s) {
  switch (s) {
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
    case AlertState::kResolved:
      return "resolved";
  }
  return "?";
}

std::string FormatTimeMs(int64_t unix_ms) {
  const time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

std::string RenderTemplate(const std::string& text, const LabelSet& labels, double value) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t open = text.find("{{", i);
    if (open == std::string::npos) break;
    const size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    out.append(text, i, open - i);
    std::string expr = text.substr(open + 2, close - open - 2);
    expr.erase(0, expr.find_first_not_of(' '));
    expr.erase(expr.find_last_not_of(' ') + 1);
    if (expr == "$value") {
      out += FormatValue(value);
    } else if (expr.starts_with("$labels.")) {
      auto it = labels.find(expr.substr(8));
      if (it != labels.end()) out += it->second;
    } else {
      out.append(text, open, close + 2 - open);  // not ours: kept as written
    }
    i = close + 2;
  }
  out.append(text, i, std::string::npos);
  return out;
}

struct Engine::RuleState {
  RuleState(const AlertRule& r, const config::Config& cfg)
      : rule(r),
        extractor(r, cfg),
        interval_ms(static_cast<int64_t>(cfg.alerts.evaluation_interval_ms)) {
    lookback_ms = static_cast<int64_t>(std::max(r.window_ms, r.baseline_ms));
    spacing_ms = lookback_ms / kMaxSnapshots;
  }

  /// The latest observation taken at or before `t` (null: none that old; counters then
  /// count from zero, the agent's start).
  const Observation* At(int64_t t) const {
    const Observation* found = nullptr;
    for (const auto& [ts, obs] : history) {
      if (ts > t) break;
      found = &obs;
    }
    return found;
  }

  static const std::vector<double>* Group(const Observation* obs, const GroupKey& k) {
    if (!obs) return nullptr;
    auto it = obs->find(k);
    return it == obs->end() ? nullptr : &it->second;
  }

  std::optional<double> Ratio(const std::vector<double>& d, bool complement) const {
    if (d.size() < 2 || d[1] < Guard(rule.min_events)) return std::nullopt;
    const double r = d[0] / d[1];
    return complement ? 1 - r : r;
  }

  std::optional<double> Value(const GroupKey& k, const std::vector<double>& cur, int64_t now) {
    const auto inc = [&](int64_t lookback) { return Increase(cur, Group(At(now - lookback), k)); };
    const int64_t window = static_cast<int64_t>(rule.window_ms);
    switch (rule.signal) {
      case AlertSignal::kPaymentSuccessRate:
      case AlertSignal::kErrorRate:
        return Ratio(inc(window), false);
      case AlertSignal::kLatencyP95:
      case AlertSignal::kLatencyP99:
      case AlertSignal::kClientLatencyP95: {
        const auto d = inc(window);
        if (d.empty() || d[0] < Guard(rule.min_events)) return std::nullopt;
        const double q = rule.signal == AlertSignal::kLatencyP99 ? 0.99 : 0.95;
        const double v =
            HistogramQuantile(q, extractor.bounds(), std::vector<double>(d.begin() + 1, d.end()));
        if (std::isnan(v)) return std::nullopt;
        return v;
      }
      case AlertSignal::kCartAbandonment: {
        // 1 - attempts of step 2 / successes of step 1: the ratio's terms swapped.
        const auto d = inc(window);
        if (d.size() < 2) return std::nullopt;
        return Ratio({d[1], d[0]}, true);
      }
      case AlertSignal::kConversionDrop: {
        const auto w = Ratio(inc(window), false);
        const auto b = Ratio(inc(static_cast<int64_t>(rule.baseline_ms)), false);
        if (!w || !b || *b <= 0) return std::nullopt;
        return 1 - *w / *b;
      }
      case AlertSignal::kErrorSpike: {
        const auto d = inc(window);
        if (d.size() < 2) return std::nullopt;
        const double rate = d[0] / (static_cast<double>(window) / 1000.0);
        spikes_now[k] = rate;
        if (d[0] < Guard(rule.min_events)) return std::nullopt;
        return rate;
      }
      case AlertSignal::kPoolUsage: {
        double sum = cur.empty() ? 0 : cur[0];
        int n = 1;
        for (const auto& [ts, obs] : history) {
          if (ts <= now - window) continue;
          if (const auto* g = Group(&obs, k); g && !g->empty()) {
            sum += (*g)[0];
            n++;
          }
        }
        return sum / n;
      }
    }
    return std::nullopt;
  }

  /// error_spike: mean + sigma * stddev of the group's rate over the baseline that ends where
  /// the window starts ([now - window - baseline, now - window), as avg_over_time and
  /// stddev_over_time of the recorded rate `offset window`): a spike does not raise its own
  /// bar. No limit (never fires) until the baseline holds half its evaluations.
  std::optional<double> SpikeLimit(const GroupKey& k, int64_t now) const {
    const int64_t end = now - static_cast<int64_t>(rule.window_ms);
    const int64_t start = end - static_cast<int64_t>(rule.baseline_ms);
    double sum = 0, sq = 0;
    int64_t n = 0;
    for (const auto& [ts, rates] : spikes) {
      if (ts <= start || ts > end) continue;
      auto it = rates.find(k);
      if (it == rates.end()) continue;
      sum += it->second;
      sq += it->second * it->second;
      n++;
    }
    if (n < SpikeBaselineMinSamples(rule, interval_ms)) return std::nullopt;
    const double mean = sum / static_cast<double>(n);
    const double var = std::max(0.0, sq / static_cast<double>(n) - mean * mean);
    return mean + rule.sigma * std::sqrt(var);
  }

  bool Holds(const GroupKey& k, double v, int64_t now) const {
    if (rule.signal == AlertSignal::kErrorSpike) {
      const auto limit = SpikeLimit(k, now);
      return limit && v > *limit;
    }
    return rule.has_above ? v > rule.above : v < rule.below;
  }

  LabelSet LabelsOf(const GroupKey& k) const {
    LabelSet l = rule.labels;
    for (size_t i = 0; i < rule.by.size() && i < k.size(); i++) l[rule.by[i]] = k[i];
    l["alertname"] = rule.name;
    l["severity"] = config::SeverityName(rule.severity);
    l["signal"] = config::SignalName(rule.signal);  // the family: critical inhibits warning
    return l;
  }

  void Remember(int64_t now, Observation obs) {
    // Fewer, coarser observations when each is large (bounded memory per rule).
    const size_t per = std::max<size_t>(1, ValuesOf(obs));
    const int64_t max_snapshots =
        std::clamp<int64_t>(static_cast<int64_t>(kMaxStoredValues / per), 16, kMaxSnapshots);
    spacing_ms = lookback_ms / max_snapshots;
    if (history.empty() || now - history.back().first >= spacing_ms) {
      history.emplace_back(now, std::move(obs));
    }
    // Thinned when over the bound: every other one of the older observations goes.
    while (static_cast<int64_t>(history.size()) > max_snapshots + 1) {
      for (size_t i = 1; i + 1 < history.size(); i++) history.erase(history.begin() + i);
    }
    // Keep one observation at or before the longest lookback.
    while (history.size() >= 2 && history[1].first <= now - lookback_ms) history.pop_front();
    if (rule.signal == AlertSignal::kErrorSpike) {
      spikes.emplace_back(now, std::move(spikes_now));
      spikes_now.clear();
      while (!spikes.empty() &&
             spikes.front().first <= now - static_cast<int64_t>(rule.baseline_ms + rule.window_ms))
        spikes.pop_front();
    }
  }

  const AlertRule& rule;
  Extractor extractor;
  int64_t interval_ms = 15000;
  int64_t lookback_ms = 0;
  int64_t spacing_ms = 0;
  std::deque<std::pair<int64_t, Observation>> history;  // oldest first
  std::map<GroupKey, double> spikes_now;
  std::deque<std::pair<int64_t, std::map<GroupKey, double>>> spikes;
  std::map<GroupKey, Alert> alerts;   // pending or firing
  std::map<GroupKey, double> values;  // last evaluation's values
  uint64_t groups_left_out = 0;
};

Engine::Engine(const config::Config& cfg) : cfg_(cfg) {
  for (const auto& r : cfg.alerts.rules) rules_.push_back(std::make_unique<RuleState>(r, cfg));
}

Engine::~Engine() = default;

std::vector<Alert> Engine::Evaluate(const exposition::Families& families, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  evaluations_++;
  std::vector<Alert> changed;
  for (auto& rs : rules_) {
    Observation obs = rs->extractor.Extract(families);
    while (obs.size() > kMaxGroups) {
      obs.erase(std::prev(obs.end()));
      rs->groups_left_out++;
    }
    rs->values.clear();
    std::map<GroupKey, double> holding;
    for (const auto& [k, cur] : obs) {
      auto v = rs->Value(k, cur, now_ms);
      if (!v) continue;
      rs->values[k] = *v;
      if (rs->rule.signal == AlertSignal::kErrorSpike) continue;  // after Remember (baseline)
      if (rs->Holds(k, *v, now_ms)) holding[k] = *v;
    }
    rs->Remember(now_ms, std::move(obs));
    if (rs->rule.signal == AlertSignal::kErrorSpike) {
      for (const auto& [k, v] : rs->values) {
        if (rs->Holds(k, v, now_ms)) holding[k] = v;
      }
    }
    const AlertRule& r = rs->rule;
    for (const auto& [k, v] : holding) {
      auto [it, fresh] = rs->alerts.try_emplace(k);
      Alert& a = it->second;
      if (fresh) {
        a.rule = &r;
        a.labels = rs->LabelsOf(k);
        a.fingerprint = Fingerprint(a.labels);
        a.active_at_ms = now_ms;
        a.state = AlertState::kPending;
      }
      a.value = v;
      a.annotations.clear();
      for (const auto& [name, text] : r.annotations)
        a.annotations[name] = RenderTemplate(text, a.labels, v);
      if (a.state == AlertState::kPending &&
          now_ms - a.active_at_ms >= static_cast<int64_t>(r.for_ms)) {
        a.state = AlertState::kFiring;
        a.fired_at_ms = now_ms;
        changed.push_back(a);
      }
    }
    for (auto it = rs->alerts.begin(); it != rs->alerts.end();) {
      if (holding.count(it->first)) {
        ++it;
        continue;
      }
      if (it->second.state == AlertState::kFiring) {
        Alert a = it->second;
        a.state = AlertState::kResolved;
        a.ended_at_ms = now_ms;
        changed.push_back(std::move(a));
      }
      it = rs->alerts.erase(it);
    }
  }
  return changed;
}

std::vector<Alert> Engine::Active() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Alert> out;
  for (const auto& rs : rules_) {
    for (const auto& [k, a] : rs->alerts) out.push_back(a);
  }
  return out;
}

std::string Engine::AlertsJson() const {
  nlohmann::ordered_json alerts = nlohmann::ordered_json::array();
  for (const Alert& a : Active()) {
    nlohmann::ordered_json j;
    j["labels"] = a.labels;
    j["annotations"] = a.annotations;
    j["state"] = StateName(a.state);
    j["activeAt"] = FormatTimeMs(a.active_at_ms);
    j["value"] = FormatValue(a.value);
    alerts.push_back(std::move(j));
  }
  nlohmann::ordered_json doc;
  doc["status"] = "success";
  doc["data"]["alerts"] = std::move(alerts);
  return doc.dump() + "\n";
}

void Engine::Collect(exposition::Families* out) const {
  using exposition::Family;
  using exposition::MetricType;
  std::lock_guard<std::mutex> lock(mu_);
  auto alerts = Family("redtap_alerts",
                       "1 per pending or firing alert of the agent's rules (as Prometheus's "
                       "ALERTS, with `state` for its alertstate): alertname, severity, state and "
                       "the alert's labels.",
                       MetricType::Gauge);
  auto values = Family("redtap_alert_rule_value",
                       "The last value of each rule per label set (no series: no value, e.g. "
                       "below min_events).",
                       MetricType::Gauge);
  auto left_out =
      Family("redtap_alert_groups_left_out_total",
             "Label sets of a rule not evaluated (over 1000 per rule).", MetricType::Counter);
  for (const auto& rs : rules_) {
    for (const auto& [k, a] : rs->alerts) {
      exposition::Labels l;
      for (const auto& [name, v] : a.labels) l.push_back({name, v});
      l.push_back({"state", StateName(a.state)});
      alerts.metric.push_back(exposition::Gauge(std::move(l), 1));
    }
    for (const auto& [k, v] : rs->values) {
      exposition::Labels l = {{"alertname", rs->rule.name}};
      for (size_t i = 0; i < rs->rule.by.size() && i < k.size(); i++)
        l.push_back({rs->rule.by[i], k[i]});
      values.metric.push_back(exposition::Gauge(std::move(l), v));
    }
    left_out.metric.push_back(exposition::Counter({{"alertname", rs->rule.name}},
                                                  static_cast<double>(rs->groups_left_out)));
  }
  out->push_back(std::move(alerts));
  out->push_back(std::move(values));
  out->push_back(std::move(left_out));
  out->push_back(exposition::SingleCounter("redtap_alert_evaluations_total",
                                           "Evaluations of the alert rules by the agent.",
                                           static_cast<double>(evaluations_)));
}

}  // namespace redtap::alerts

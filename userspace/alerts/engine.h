// SPDX-License-Identifier: Apache-2.0
// The local alert engine: every evaluation_interval it reads the agent's own metric families,
// computes each rule's value per `by:` label set over its window (as the PromQL of
// `redtap rules prometheus` does over the same series), and moves each alert through
// inactive -> pending -> firing -> resolved. Pure: time and families come from the caller.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "userspace/alerts/signals.h"
#include "userspace/config/config.h"
#include "userspace/exposition/registry.h"

namespace redtap::alerts {

using LabelSet = std::map<std::string, std::string>;

enum class AlertState { kPending, kFiring, kResolved };
const char* StateName(AlertState s);

/// One alert of one rule and label set, as the API and the notifiers see it.
struct Alert {
  const config::AlertRule* rule = nullptr;
  LabelSet labels;       // alertname, severity, the by: labels, the rule's labels
  LabelSet annotations;  // rendered: {{ $labels.x }} and {{ $value }} replaced
  AlertState state = AlertState::kPending;
  double value = 0;
  int64_t active_at_ms = 0;  // Unix ms: when its condition first held
  int64_t fired_at_ms = 0;   // Unix ms: when it started firing (0: pending)
  int64_t ended_at_ms = 0;   // Unix ms: when it resolved (0: not resolved)
  /// A stable id of the rule and label set (PagerDuty dedup_key, Alertmanager fingerprint).
  std::string fingerprint;
};

class Engine {
 public:
  /// `cfg` must outlive the engine.
  explicit Engine(const config::Config& cfg);
  ~Engine();

  /// Evaluates every rule on `families` taken at `now_ms` (Unix ms). Returns the alerts that
  /// started firing or resolved in this evaluation.
  std::vector<Alert> Evaluate(const exposition::Families& families, int64_t now_ms);

  /// Pending and firing alerts, ordered by rule then labels.
  std::vector<Alert> Active() const;
  /// GET /api/v1/alerts: Prometheus's answer shape ({"status":"success","data":{"alerts":[..]}}).
  std::string AlertsJson() const;
  /// redtap_alerts{alertname,severity,state,...} = 1 per pending or firing alert (Prometheus's
  /// ALERTS), redtap_alert_evaluations_total, redtap_alert_rule_value{alertname,...}.
  void Collect(exposition::Families* out) const;

  /// A rule's observations, values and alerts (engine.cc).
  struct RuleState;

 private:
  mutable std::mutex mu_;
  const config::Config& cfg_;
  std::vector<std::unique_ptr<RuleState>> rules_;
  uint64_t evaluations_ = 0;
};

/// error_spike's baseline must hold at least this many evaluations (half of them, ≥ 2).
int64_t SpikeBaselineMinSamples(const config::AlertRule& r, int64_t interval_ms);

/// {{ $labels.NAME }} and {{ $value }} (spaces optional) replaced in `text`.
std::string RenderTemplate(const std::string& text, const LabelSet& labels, double value);

/// RFC 3339 UTC with milliseconds.
std::string FormatTimeMs(int64_t unix_ms);

}  // namespace redtap::alerts

// SPDX-License-Identifier: Apache-2.0
// The config's alert rules for a fleet (`redtap rules prometheus|alertmanager`): a Prometheus
// rule file that computes each rule's value with the same formula as the local engine
// (recording rule redtap:<name>:value, as redtap_alert_rule_value; then the alert), and an
// Alertmanager config whose receivers and routes follow alerts.channels and alerts.routes.
#pragma once

#include <string>

#include "userspace/config/config.h"

namespace redtap::alerts {

/// The PromQL of a rule's value (no threshold): absent when the guard says no value.
std::string ValueExpr(const config::AlertRule& r, const config::Config& cfg);
/// The PromQL of the alert condition, reading the recorded value.
std::string AlertExpr(const config::AlertRule& r, const config::Config& cfg);
/// The recorded series of a rule's value: redtap:<name>:value.
std::string RecordName(const config::AlertRule& r);

/// A Prometheus rule file (YAML): one group "redtap", interval = alerts.evaluation_interval.
std::string PrometheusRules(const config::Config& cfg);
/// An Alertmanager config (YAML): a receiver per severity holding its routed channels,
/// critical inhibiting warning for the same signal and labels. Secrets stay in files
/// (routing_key_file, api_url_file, url_file).
std::string AlertmanagerConfig(const config::Config& cfg);

}  // namespace redtap::alerts

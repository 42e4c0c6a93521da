// SPDX-License-Identifier: Apache-2.0
// Internal to the config loader: the `alerts:` section (alerts_config.cc).
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

#include "userspace/config/config.h"

namespace redtap::config::detail {

/// Parses the `alerts:` map at `prefix` into `a`; throws KeyError (yaml_fields.h).
void ParseAlerts(const YAML::Node& node, const std::string& prefix, AlertsConfig& a);
/// What the rules need from other sections (a funnel, payments); throws KeyError.
void CheckAlertsAgainstConfig(const Config& c);

}  // namespace redtap::config::detail

// SPDX-License-Identifier: Apache-2.0
// Internal to the config loader: the `ecommerce:` section (ecommerce_config.cc).
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

#include "userspace/config/config.h"

namespace redtap::config::detail {

/// Parses the `ecommerce:` map at `prefix` into `e`; throws KeyError (yaml_fields.h).
void ParseEcommerce(const YAML::Node& node, const std::string& prefix, EcommerceConfig& e);

}  // namespace redtap::config::detail

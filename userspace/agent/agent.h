// SPDX-License-Identifier: Apache-2.0
// `redtap run`: loader + reader + tracker + exporters, wired together.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "userspace/config/config.h"

namespace redtap {

/// Runs the agent until SIGINT/SIGTERM. Returns the process exit code.
int RunAgent(const config::Config& cfg);

}  // namespace redtap

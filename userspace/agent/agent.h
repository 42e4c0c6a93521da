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

namespace pcap {
struct PcapOptions;
}
/// `redtap pcap`: decodes a capture file or a live interface through the same parsers, events
/// and metrics; serves /metrics and /api/v1/endpoints on cfg.http.listen when `serve_http`.
int RunPcapCommand(const pcap::PcapOptions& opt, const config::Config& cfg, bool serve_http);

}  // namespace redtap

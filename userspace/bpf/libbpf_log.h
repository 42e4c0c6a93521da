// SPDX-License-Identifier: Apache-2.0
// libbpf's own messages (verifier logs, attach errors), routed to spdlog.
#pragma once

namespace redtap {

/// Routes libbpf's messages to spdlog: warnings as warnings (unless `quiet`: the doctor
/// expects failures and reports them itself), the rest at debug level.
void InstallLibbpfLogger(bool quiet = false);

}  // namespace redtap

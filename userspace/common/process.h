// SPDX-License-Identifier: Apache-2.0
// Whether a process still exists (kill(pid, 0): EPERM means it does).
#pragma once

#include <signal.h>

#include <cerrno>
#include <cstdint>

namespace redtap {

inline bool ProcessAlive(uint32_t pid) {
  return pid != 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH);
}

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
// tracefs: libbpf attaches tracepoints through it, and it may not be mounted (containers,
// minimal hosts). One function, one behaviour: mount it when needed, say what was done, fail
// clearly when the tracepoints cannot be reached.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "userspace/common/status.h"

namespace redtap {

/// Makes the tracepoint groups `groups` (tracefs `events/<group>`, e.g. "syscalls", "tcp")
/// visible: when tracefs is not mounted, mounts it at /sys/kernel/tracing. Returns a message
/// saying what was done ("" when nothing was needed), or an error saying why those
/// tracepoints cannot attach (mount refused, or the kernel has no such group).
Result<std::string> EnsureTracefs(const std::vector<std::string>& groups = {"syscalls"});

namespace internal {

/// Where EnsureTracefs looks and how it mounts (tests use a temporary directory).
struct TracefsEnv {
  /// Where tracefs may be mounted; the first one is where it gets mounted.
  std::vector<std::string> dirs;
  /// Mounts tracefs at dirs[0]: 0, or -1 with errno set.
  std::function<int()> mount;
};

Result<std::string> EnsureTracefs(const std::vector<std::string>& groups, const TracefsEnv& env);

}  // namespace internal
}  // namespace redtap

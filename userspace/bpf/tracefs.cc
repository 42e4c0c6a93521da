// SPDX-License-Identifier: Apache-2.0
#include "userspace/bpf/tracefs.h"

#include <errno.h>
#include <sys/mount.h>

#include <filesystem>

#include "userspace/common/errno_text.h"

namespace redtap {
namespace {

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// "syscall tracepoints", "tcp tracepoints", "sock/tcp tracepoints".
std::string Noun(const std::vector<std::string>& groups) {
  std::string out;
  for (const auto& g : groups) {
    if (!out.empty()) out += "/";
    out += g == "syscalls" ? "syscall" : g;
  }
  return out + " tracepoints";
}

std::string MissingGroup(const std::string& group) {
  if (group == "syscalls") return "the kernel was built without CONFIG_FTRACE_SYSCALLS";
  return "the kernel has no " + group + " tracepoints";
}

// The first group not visible under `dir`, or "".
std::string FirstMissing(const std::vector<std::string>& groups, const std::string& dir) {
  for (const auto& g : groups)
    if (!Exists(dir + "/events/" + g)) return g;
  return "";
}

}  // namespace

namespace internal {

Result<std::string> EnsureTracefs(const std::vector<std::string>& groups, const TracefsEnv& env) {
  // Each group visible under one of the places tracefs lives: nothing to do.
  bool all_visible = true;
  for (const auto& g : groups) {
    bool visible = false;
    for (const auto& dir : env.dirs) visible = visible || Exists(dir + "/events/" + g);
    all_visible = all_visible && visible;
  }
  if (all_visible) return std::string();
  // Mounted, but a group is missing: mounting again would not add it.
  for (const auto& dir : env.dirs) {
    if (!Exists(dir + "/events")) continue;
    std::string missing = FirstMissing(groups, dir);
    return Status::Error("tracefs is mounted at " + dir + " but it has no events/" + missing +
                         ": " + MissingGroup(missing));
  }
  const std::string& target = env.dirs.front();
  if (env.mount() != 0) {
    return Status::Error("tracefs is not mounted and mounting it at " + target +
                         " failed: " + ErrnoText(errno) + " (" + Noun(groups) +
                         " need it; mount it or run with CAP_SYS_ADMIN)");
  }
  if (std::string missing = FirstMissing(groups, target); !missing.empty()) {
    return Status::Error("tracefs mounted at " + target + " but it has no events/" + missing +
                         ": " + MissingGroup(missing));
  }
  return "tracefs was not mounted: mounted it at " + target;
}

}  // namespace internal

Result<std::string> EnsureTracefs(const std::vector<std::string>& groups) {
  static const internal::TracefsEnv kEnv{
      {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"},
      [] { return mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr); }};
  return internal::EnsureTracefs(groups, kEnv);
}

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
// Hook tables and hook status: what an object attaches, and what came of it. Shared by every
// owner of BPF programs (capture, TCP monitor, doctor) so that /ready and the
// redtap_agent_hooks_attached gauge can combine them.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>

struct bpf_link;
struct bpf_program;

namespace redtap {

/// One row of a hook table: a program of the object and how to attach it.
struct HookSpec {
  std::string program;   // program name in the object, e.g. "read_exit"
  bool required = true;  // Ready() needs it attached
  /// For programs that bpf_program__attach cannot attach from their section alone
  /// (iterators, uprobes with a target, cgroups): returns the link, or nullptr with errno set.
  /// Empty: bpf_program__attach.
  std::function<struct bpf_link*(struct bpf_program*)> attach = nullptr;
};

/// What came of one row of a hook table.
struct HookStatus {
  std::string name;      // program name, e.g. "read_exit"
  std::string target;    // its section, e.g. "tracepoint/syscalls/sys_exit_read"
  bool required = true;  // capture (or the monitor) cannot be exact without it
  bool attached = false;
  std::string error;  // why it failed
};

/// Hooks of one or more objects, counted.
struct HookSummary {
  int attached = 0;
  int failed_required = 0;
  /// At least one hook, and every required one attached: what /ready reports.
  bool ready = false;
};

HookSummary SummarizeHooks(std::span<const HookStatus> hooks);

/// The tracefs event group a program's section attaches to: "syscalls" for
/// "tracepoint/syscalls/sys_exit_read" (also "tp/..."), "" for every other kind of program.
std::string_view TracepointGroup(std::string_view section);

}  // namespace redtap

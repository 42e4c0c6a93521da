// SPDX-License-Identifier: Apache-2.0
#include "userspace/bpf/hooks.h"

namespace redtap {

HookSummary SummarizeHooks(std::span<const HookStatus> hooks) {
  HookSummary s;
  for (const auto& h : hooks) {
    if (h.attached) {
      s.attached++;
    } else if (h.required) {
      s.failed_required++;
    }
  }
  s.ready = !hooks.empty() && s.failed_required == 0;
  return s;
}

std::string_view TracepointGroup(std::string_view section) {
  for (std::string_view prefix : {"tracepoint/", "tp/"}) {
    if (!section.starts_with(prefix)) continue;
    std::string_view rest = section.substr(prefix.size());
    size_t slash = rest.find('/');
    if (slash == 0 || slash == std::string_view::npos) return {};
    return rest.substr(0, slash);
  }
  return {};
}

}  // namespace redtap

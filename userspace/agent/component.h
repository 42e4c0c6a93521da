// SPDX-License-Identifier: Apache-2.0
// A part of `redtap run` with a lifecycle: started in order, stopped in reverse. Stopping has
// two phases so that every BPF link of every component is detached at once (each detach waits
// for an RCU grace period): BeginStop hands over links (or starts a slow stop in the
// background), FinishStop drains and joins.
#pragma once

#include <string>
#include <vector>

#include "userspace/bpf/hooks.h"
#include "userspace/common/status.h"

struct bpf_link;

namespace redtap::agent {

class Component {
 public:
  virtual ~Component() = default;
  virtual const char* name() const = 0;
  /// Loads, attaches, starts threads. An error stops the agent unless the component is
  /// optional (then it is logged and left out).
  virtual Status Start() = 0;
  virtual bool optional() const { return false; }
  /// The component's kernel hooks: /ready needs every required one attached.
  virtual void Hooks(std::vector<HookStatus>* out) const { (void)out; }
  virtual void BeginStop(std::vector<struct bpf_link*>* links) { (void)links; }
  virtual void FinishStop() {}
};

}  // namespace redtap::agent

// SPDX-License-Identifier: Apache-2.0
// Kubernetes pod names for `redtap run`: the PodWatcher reading the node's pod list into the
// enricher's metadata Resolver, when kubernetes.metadata asks for it (auto: in a pod).
// Container ids and pod uids (from /proc/PID/cgroup) need none of this. Optional: a pod list
// that cannot be read leaves the labels at container ids, never stops the agent.
#pragma once

#include <memory>
#include <vector>

#include "userspace/agent/component.h"
#include "userspace/agent/outputs.h"
#include "userspace/config/config.h"
#include "userspace/metadata/pod_watcher.h"

namespace redtap::agent {

class MetadataComponent : public Component {
 public:
  /// `others`: Resolvers of other threads (the TCP sampler's) that get the pod list too.
  MetadataComponent(const config::Config& cfg, Outputs* outputs,
                    std::vector<metadata::Resolver*> others = {});
  ~MetadataComponent() override;

  const char* name() const override { return "kubernetes"; }
  bool optional() const override { return true; }
  Status Start() override;
  void FinishStop() override;

 private:
  const config::Config& cfg_;
  Outputs* outputs_;
  std::vector<metadata::Resolver*> others_;
  std::unique_ptr<metadata::PodWatcher> watcher_;
};

}  // namespace redtap::agent

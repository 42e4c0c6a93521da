// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/metadata_component.h"

#include <spdlog/spdlog.h>

namespace redtap::agent {

MetadataComponent::MetadataComponent(const config::Config& cfg, Outputs* outputs,
                                     std::vector<metadata::Resolver*> others)
    : cfg_(cfg), outputs_(outputs), others_(std::move(others)) {}

MetadataComponent::~MetadataComponent() { FinishStop(); }

Status MetadataComponent::Start() {
  if (!metadata::PodListWanted(cfg_.kubernetes)) {
    spdlog::debug("kubernetes: not in a pod (kubernetes.metadata: auto): no pod list read");
    return Status::Ok();
  }
  std::string problem;
  std::string url = metadata::PodsUrl(cfg_.kubernetes, &problem);
  if (url.empty()) {
    return Status::Error("kubernetes: " + problem + "; series keep container ids and pod uids");
  }
  std::vector<metadata::Resolver*> resolvers = others_;
  resolvers.push_back(&outputs_->pipeline().enricher().metadata());
  watcher_ =
      std::make_unique<metadata::PodWatcher>(cfg_.kubernetes, std::move(url), std::move(resolvers));
  metadata::PodWatcher* w = watcher_.get();
  outputs_->registry().Add([w](exposition::Families* out) { w->Collect(out); });
  watcher_->Start();
  return Status::Ok();
}

void MetadataComponent::FinishStop() {
  if (watcher_) watcher_->Stop();
}

}  // namespace redtap::agent

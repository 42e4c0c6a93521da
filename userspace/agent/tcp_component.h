// SPDX-License-Identifier: Apache-2.0
// Socket saturation and TCP health (saturation::TcpMonitor) as an optional component of
// `redtap run`: its own BPF object and sampler thread, its families in the registry,
// /api/v1/listeners, and type:"tcp" events to the event writer. Capture runs without it.
#pragma once

#include <memory>
#include <thread>

#include "userspace/agent/component.h"
#include "userspace/agent/outputs.h"
#include "userspace/config/config.h"
#include "userspace/enrich/service_resolver.h"
#include "userspace/metadata/resolver.h"
#include "userspace/saturation/tcp_monitor.h"

namespace redtap::agent {

class TcpComponent : public Component {
 public:
  TcpComponent(const config::Config& cfg, Outputs* outputs);
  ~TcpComponent() override;

  const char* name() const override { return "tcp health"; }
  bool optional() const override { return true; }
  Status Start() override;
  void Hooks(std::vector<HookStatus>* out) const override;
  void BeginStop(std::vector<struct bpf_link*>* links) override;
  void FinishStop() override;

  /// The sampler thread's container lookups (the enricher's belong to the decoding thread);
  /// the MetadataComponent publishes the pod list to both.
  metadata::Resolver& metadata() { return *metadata_; }

 private:
  const config::Config& cfg_;
  Outputs* outputs_;
  // Read by HTTP threads; cleared before the monitor stops so no scrape reaches it.
  std::atomic<saturation::TcpMonitor*> live_{nullptr};
  std::unique_ptr<saturation::TcpMonitor> monitor_;
  std::shared_ptr<metadata::Resolver> metadata_ = std::make_shared<metadata::Resolver>();
  std::thread stopping_;
};

}  // namespace redtap::agent

// SPDX-License-Identifier: Apache-2.0
// The alert rules of the config as a component of `redtap run`: an evaluation thread that
// reads the registry's families every alerts.evaluation_interval (what a scrape of /metrics
// reads), GET /api/v1/alerts, redtap_alerts in /metrics, type:"alert" events on firing and
// resolve, and the notifications of the routed channels.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "userspace/agent/component.h"
#include "userspace/agent/outputs.h"
#include "userspace/alerts/engine.h"
#include "userspace/alerts/notifier.h"
#include "userspace/config/config.h"

namespace redtap::agent {

class AlertsComponent : public Component {
 public:
  AlertsComponent(const config::Config& cfg, Outputs* outputs);
  ~AlertsComponent() override;

  const char* name() const override { return "alerts"; }
  Status Start() override;
  void BeginStop(std::vector<struct bpf_link*>* links) override;
  void FinishStop() override;

 private:
  void Run();

  const config::Config& cfg_;
  Outputs* outputs_;
  alerts::Engine engine_;
  std::unique_ptr<alerts::Notifier> notifier_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace redtap::agent

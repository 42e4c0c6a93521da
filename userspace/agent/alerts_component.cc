// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/alerts_component.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "userspace/alerts/alert_event.h"

namespace redtap::agent {
namespace {

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

AlertsComponent::AlertsComponent(const config::Config& cfg, Outputs* outputs)
    : cfg_(cfg), outputs_(outputs), engine_(cfg) {
  outputs_->registry().Add([this](exposition::Families* out) {
    engine_.Collect(out);
    if (notifier_) notifier_->Collect(out);
  });
  outputs_->api().Get("/api/v1/alerts", [this] {
    return HttpResponse{200, "application/json", engine_.AlertsJson()};
  });
}

AlertsComponent::~AlertsComponent() { FinishStop(); }

Status AlertsComponent::Start() {
  if (cfg_.alerts.rules.empty()) return Status::Ok();
  auto n = alerts::Notifier::Create(cfg_.alerts);
  if (!n.ok()) return n.status();
  notifier_ = std::move(n.value());
  thread_ = std::thread([this] { Run(); });
  spdlog::info("alerts: {} rule(s) evaluated every {}", cfg_.alerts.rules.size(),
               config::FormatDuration(cfg_.alerts.evaluation_interval_ms));
  return Status::Ok();
}

void AlertsComponent::Run() {
  const auto interval = std::chrono::milliseconds(cfg_.alerts.evaluation_interval_ms);
  auto next = std::chrono::steady_clock::now() + interval;
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_until(lock, next, [this] { return stop_; })) {
    next += interval;
    lock.unlock();
    const auto families = outputs_->registry().Collect();
    const int64_t now = UnixMs();
    const auto changed = engine_.Evaluate(families, now);
    const auto active = engine_.Active();
    for (const auto& a : changed) {
      spdlog::log(
          a.state == alerts::AlertState::kFiring ? spdlog::level::warn : spdlog::level::info,
          "alert {} {}: {}", a.labels.at("alertname"), alerts::StateName(a.state),
          alerts::Describe(a));
      if (auto* w = outputs_->writer()) w->Push(alerts::FormatAlertEvent(a));
      notifier_->Notify(a, active);
    }
    notifier_->Tick(active, now);
    lock.lock();
  }
}

void AlertsComponent::BeginStop(std::vector<struct bpf_link*>*) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void AlertsComponent::FinishStop() {
  BeginStop(nullptr);
  if (thread_.joinable()) thread_.join();
  if (notifier_) notifier_->Stop();
}

}  // namespace redtap::agent

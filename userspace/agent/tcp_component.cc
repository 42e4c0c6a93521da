// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/tcp_component.h"

#include <nlohmann/json.hpp>

namespace redtap::agent {

TcpComponent::TcpComponent(const config::Config& cfg, Outputs* outputs)
    : cfg_(cfg), outputs_(outputs) {
  outputs_->registry().Add([this](exposition::Families* out) {
    if (auto* t = live_.load()) t->Collect(out);
  });
  outputs_->api().Get("/api/v1/listeners", [this] {
    auto* t = live_.load();
    return HttpResponse{
        200, "application/json",
        t ? t->ListenersJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
          : "[]"};
  });
}

TcpComponent::~TcpComponent() {
  if (stopping_.joinable()) stopping_.join();
}

Status TcpComponent::Start() {
  saturation::Options o;
  // Its own resolver: the sampler thread names listeners and connections (the pipeline's
  // enricher belongs to the decoding thread).
  auto resolver = std::make_shared<enrich::ServiceResolver>(cfg_.services);
  o.resolver = [resolver, md = metadata_](uint32_t pid, const std::string& comm, uint16_t port) {
    ConnMeta m;
    m.pid = pid;
    m.command = comm;
    m.role = port ? Role::kServer : Role::kClient;
    m.local.port = port;
    const uint64_t now = NowNs();
    // The same default name as the HTTP series: the workload or container, else the command.
    const metadata::Workload* w = md->Of(pid, now);
    const std::string_view workload = w != nullptr ? std::string_view(w->service_name) : "";
    return std::string(resolver->Resolve(m, now, workload));
  };
  for (const auto& p : cfg_.alerts.pools)
    o.pools.push_back({p.name, p.service, p.server_port, p.size});
  if (auto* w = outputs_->writer())
    o.on_event = [w](std::string line) { w->Push(std::move(line)); };
  auto started = saturation::TcpMonitor::Start(o);
  if (!started.ok()) return started.status();
  monitor_ = std::move(started.value());
  live_ = monitor_.get();
  return Status::Ok();
}

void TcpComponent::Hooks(std::vector<HookStatus>* out) const {
  if (!monitor_) return;
  out->insert(out->end(), monitor_->hooks().begin(), monitor_->hooks().end());
}

void TcpComponent::BeginStop(std::vector<struct bpf_link*>*) {
  live_ = nullptr;
  // The monitor detaches its own links; alongside the others.
  if (monitor_) stopping_ = std::thread([this] { monitor_->Stop(); });
}

void TcpComponent::FinishStop() {
  if (stopping_.joinable()) stopping_.join();
}

}  // namespace redtap::agent

// SPDX-License-Identifier: Apache-2.0
// The kernel capture as a component of `redtap run`: the capture programs (CaptureLoader),
// the ring-buffer reader thread, the connection tracker that decodes records into
// transactions for the pipeline, the housekeeping that runs on the reader thread, and the
// TLS uprobes. Adds the capture's health to the registry (redtap_agent_records_total, drops
// by reason, parse errors by reason, ring fill, tracked connections).
#pragma once

#include <memory>
#include <mutex>

#include "userspace/agent/component.h"
#include "userspace/agent/outputs.h"
#include "userspace/capture/reader.h"
#include "userspace/capture/tracker.h"
#include "userspace/config/config.h"
#include "userspace/loader/loader.h"
#include "userspace/tls/tls_attacher.h"

namespace redtap::agent {

class CaptureComponent : public Component {
 public:
  CaptureComponent(const config::Config& cfg, Outputs* outputs);
  ~CaptureComponent() override;

  const char* name() const override { return "capture"; }
  Status Start() override;
  void Hooks(std::vector<HookStatus>* out) const override;
  void BeginStop(std::vector<struct bpf_link*>* links) override;
  void FinishStop() override;

 private:
  void Tick();  // on the reader thread
  void Collect(exposition::Families* out) const;

  const config::Config& cfg_;
  Outputs* outputs_;
  std::unique_ptr<CaptureLoader> loader_;
  std::unique_ptr<ConnTracker> tracker_;
  std::unique_ptr<tls::TlsAttacher> tls_;
  RingReader reader_;
  // Reader-thread housekeeping clocks.
  std::chrono::steady_clock::time_point last_sweep_, last_gc_, last_snapshot_, last_count_;
  // What the reader thread knows, copied for the HTTP threads a few times a second.
  mutable std::mutex mu_;
  TrackerStats stats_;
  size_t user_conns_ = 0;
  size_t kernel_conns_ = 0;
};

}  // namespace redtap::agent

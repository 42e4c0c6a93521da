// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/agent.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <vector>

#include "userspace/agent/alerts_component.h"
#include "userspace/agent/capture_component.h"
#include "userspace/agent/component.h"
#include "userspace/agent/metadata_component.h"
#include "userspace/agent/outputs.h"
#include "userspace/agent/tcp_component.h"
#include "userspace/common/bpf_links.h"
#include "userspace/loader/loader.h"
#include "userspace/pcap/pcap_runner.h"
#include "userspace/pcap/summary.h"

namespace redtap {
namespace {

// The running agent: outputs, then its components, started in order and stopped together.
class Agent {
 public:
  explicit Agent(std::unique_ptr<agent::Outputs> outputs) : outputs_(std::move(outputs)) {
    HttpServer& api = outputs_->api();
    constexpr const char* kText = "text/plain; charset=utf-8";
    api.Get("/health", [] { return HttpResponse{200, kText, "ok\n"}; });
    api.Get("/ready", [this] {
      return ready_.load() ? HttpResponse{200, kText, "ready\n"}
                           : HttpResponse{503, kText, "not ready\n"};
    });
  }

  void Add(std::unique_ptr<agent::Component> c) { components_.push_back(std::move(c)); }

  // The agent's own health, after every module's families.
  void AddHealth() {
    outputs_->registry().Add([this](exposition::Families* out) {
      out->push_back(exposition::SingleGauge("redtap_agent_resident_memory_bytes",
                                             "Resident memory of the agent.",
                                             static_cast<double>(agent::ResidentBytes())));
      out->push_back(exposition::SingleGauge(
          "redtap_agent_ready", "1 when the kernel programs are loaded and attached, else 0.",
          ready_.load() ? 1 : 0));
      out->push_back(exposition::SingleGauge("redtap_agent_hooks_attached",
                                             "Kernel hooks (programs) attached.",
                                             static_cast<double>(hooks_attached_.load())));
      struct rusage ru {};
      getrusage(RUSAGE_SELF, &ru);
      const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
      out->push_back(exposition::SingleCounter(
          "redtap_agent_cpu_seconds_total",
          "CPU time of the agent (every thread, user + system). The kernel programs' time is "
          "charged to the processes they run in.",
          cpu));
    });
  }

  // Starts every component; a required one that fails stops the agent.
  Status Start() {
    for (auto& c : components_) {
      Status st = c->Start();
      if (st.ok()) {
        started_.push_back(c.get());
      } else if (c->optional()) {
        spdlog::warn("{} unavailable: {}", c->name(), st.message());
      } else {
        return st;
      }
    }
    std::vector<HookStatus> hooks;
    for (auto* c : started_) c->Hooks(&hooks);
    const HookSummary sum = SummarizeHooks(hooks);
    hooks_attached_ = sum.attached;
    ready_ = sum.ready;
    if (ready_) {
      spdlog::info("capturing: {} hooks attached; http on {}; events {}", sum.attached, listen_,
                   events_);
    } else {
      spdlog::error(
          "{} required hook(s) failed to attach: capture is incomplete, /ready is 503 "
          "(run `redtap doctor`)",
          sum.failed_required);
    }
    return Status::Ok();
  }

  // Detaches every link of every component at once, then drains and joins in reverse order.
  void Stop() {
    ready_ = false;
    outputs_->StopApi();  // no scrape may reach a component while it stops
    std::vector<struct bpf_link*> links;
    for (auto it = started_.rbegin(); it != started_.rend(); ++it) (*it)->BeginStop(&links);
    DestroyLinksInParallel(links);
    for (auto it = started_.rbegin(); it != started_.rend(); ++it) (*it)->FinishStop();
    outputs_->StopEvents();
  }

  agent::Outputs& outputs() { return *outputs_; }
  void Describe(std::string listen, std::string events) {
    listen_ = std::move(listen);
    events_ = std::move(events);
  }

 private:
  std::unique_ptr<agent::Outputs> outputs_;
  std::vector<std::unique_ptr<agent::Component>> components_;
  std::vector<agent::Component*> started_;
  std::atomic<bool> ready_{false};
  std::atomic<int> hooks_attached_{0};
  std::string listen_, events_;
};

}  // namespace

int RunPcapCommand(const pcap::PcapOptions& opt, const config::Config& cfg, bool serve_http) {
  agent::OutputOptions oo;
  oo.metrics = serve_http;  // nothing reads the store otherwise (~5 % on small answers)
  oo.events_path = cfg.events.path;
  oo.events.threaded = true;    // a file is read as fast as its events are formatted
  oo.events.wall_clock = true;  // packet times are Unix times already
  auto outputs = agent::Outputs::Build(cfg, oo);
  if (!outputs.ok()) {
    spdlog::error("{}", outputs.error());
    return 1;
  }
  agent::Outputs& out = *outputs.value();
  std::unique_ptr<pcap::SummarySink> summary;
  if (opt.summary) {
    summary = std::make_unique<pcap::SummarySink>(cfg);
    out.AddSink(summary.get());
    if (cfg.db.enabled) out.pipeline().AddDbSink(summary.get());  // after the events: reads only
  }
  if (serve_http) {
    if (auto st = out.StartApi(cfg.http.listen); !st.ok()) {
      spdlog::error("{}", st.message());
      return 1;
    }
  }
  pcap::PcapOutputs po;
  // Nothing to enrich for when nothing reads it.
  const bool consumed = serve_http || summary || out.events();
  po.sink = consumed ? &out.pipeline() : nullptr;
  if (auto* ev = out.events()) po.flush = [ev] { ev->Flush(); };
  po.finish = [&] {
    out.StopEvents();
    if (summary) summary->Print(cfg.events.path == "-" ? stderr : stdout, opt.summary_rows);
  };
  po.events = [&]() -> std::pair<uint64_t, uint64_t> {
    auto* ev = out.events();
    return ev ? std::pair{ev->written(), ev->dropped()} : std::pair<uint64_t, uint64_t>{0, 0};
  };
  return pcap::RunPcap(opt, cfg, po);
}

int RunAgent(const config::Config& cfg) {
  // Block the stop signals and SIGHUP in every thread; the main thread waits for them below.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

  if (geteuid() != 0)
    spdlog::warn("not running as root: loading BPF needs root or CAP_BPF+CAP_PERFMON");
  InstallLibbpfLogger();

  agent::OutputOptions oo;
  oo.events_path = cfg.events.path;
  auto outputs = agent::Outputs::Build(cfg, oo);
  if (!outputs.ok()) {
    spdlog::error("{}", outputs.error());
    return 1;
  }
  Agent a(std::move(outputs.value()));
  a.Describe(cfg.http.listen, cfg.events.path.empty() ? "off" : cfg.events.path);
  auto tcp = std::make_unique<agent::TcpComponent>(cfg, &a.outputs());
  metadata::Resolver* tcp_metadata = &tcp->metadata();
  // First: the pod list is read before the capture and the TCP sampler name anything.
  a.Add(std::make_unique<agent::MetadataComponent>(cfg, &a.outputs(),
                                                   std::vector<metadata::Resolver*>{tcp_metadata}));
  a.Add(std::make_unique<agent::CaptureComponent>(cfg, &a.outputs()));
  a.Add(std::move(tcp));
  a.Add(std::make_unique<agent::AlertsComponent>(cfg, &a.outputs()));
  a.AddHealth();
  if (auto st = a.outputs().StartApi(cfg.http.listen); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  if (auto st = a.Start(); !st.ok()) {
    spdlog::error("{}", st.message());
    a.Stop();
    return 1;
  }

  int sig = 0;
  while (sigwait(&stop_set, &sig) == 0 && sig == SIGHUP) {
    // Log rotation: the events file is opened again. The config is not reloaded (BPF maps,
    // filters and hooks are sized and attached from it): restart the agent to apply changes.
    if (auto* w = a.outputs().writer()) w->Reopen();
    spdlog::info(
        "SIGHUP: events file reopened; the config is not reloaded (restart to apply "
        "config changes)");
  }
  spdlog::info("{} received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  a.Stop();
  return 0;
}

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/agent.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include <prometheus/text_serializer.h>

#include "userspace/api/http_server.h"
#include "userspace/capture/reader.h"
#include "userspace/capture/tracker.h"
#include "userspace/common/clock.h"
#include "userspace/ecommerce/ecommerce.h"
#include "userspace/export/event_json.h"
#include "userspace/export/event_writer.h"
#include "userspace/export/redact.h"
#include "userspace/loader/loader.h"
#include "userspace/metrics/agent_health.h"
#include "userspace/metrics/metrics_store.h"
#include "userspace/metrics/service_resolver.h"
#include "userspace/pcap/pcap_runner.h"
#include "userspace/saturation/tcp_monitor.h"
#include "userspace/tls/tls_attacher.h"

namespace redtap {
namespace {

// Every transaction goes to the metrics store and, when events are on, becomes one NDJSON
// line queued for the writer thread. Runs on the reader thread.
class AgentSink : public TransactionSink {
 public:
  AgentSink(const config::Config& cfg, exporter::EventWriter* writer,
            metrics::MetricsStore* store, ecommerce::EcommerceView* ecommerce)
      : redactor_(cfg.redaction),
        services_(cfg.services),
        writer_(writer),
        store_(store),
        ecommerce_(ecommerce),
        offset_(MonotonicToRealtimeOffsetNs()) {}

  void OnTransaction(const http::Transaction& txn, const ConnMeta& meta) noexcept override {
    uint64_t now = static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC));
    store_->Record(txn, meta, now);
    // Without events, the e-commerce view is all that is left, and only when configured.
    if (!writer_ && !ecommerce_->enabled()) return;
    std::string service(services_.Resolve(meta, now));
    extras_.clear();
    ecommerce_->Record(txn, meta, service, now, writer_ ? &extras_ : nullptr);
    if (!writer_) return;
    // FormatHttpEvent exports no header but User-Agent, card-masked.
    writer_->Push(exporter::FormatHttpEvent(txn, meta, service, offset_, redactor_,
                                            extras_.empty() ? nullptr : &extras_));
  }

 private:
  exporter::Redactor redactor_;
  metrics::ServiceResolver services_;
  exporter::EventWriter* writer_;
  metrics::MetricsStore* store_;
  ecommerce::EcommerceView* ecommerce_;
  exporter::EventExtras extras_;
  int64_t offset_;
};

uint64_t ResidentBytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// What the reader thread knows, copied for the HTTP threads a few times a second.
struct HealthSnapshot {
  std::mutex mu;
  TrackerStats tracker;
  size_t user_conns = 0;
  size_t kernel_conns = 0;
};

// Feeds the metrics store only (pcap mode writes its own events).
class MetricsSink : public TransactionSink {
 public:
  explicit MetricsSink(metrics::MetricsStore* store) : store_(store) {}
  void OnTransaction(const http::Transaction& txn, const ConnMeta& meta) noexcept override {
    store_->Record(txn, meta, static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC)));
  }

 private:
  metrics::MetricsStore* store_;
};

}  // namespace

int RunPcapCommand(const pcap::PcapOptions& opt, const config::Config& cfg, bool serve_http) {
  metrics::MetricsStore store(cfg);
  MetricsSink sink(&store);
  HttpServer http;
  if (serve_http) {
    http.Get("/metrics", [&] {
      metrics::AgentHealth h;
      h.ready = true;
      h.rss_bytes = ResidentBytes();
      return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                          store.RenderPrometheus(h)};
    });
    http.Get("/api/v1/endpoints", [&] {
      return HttpResponse{
          200, "application/json",
          store.RenderEndpointsJson(static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC)))};
    });
    if (auto st = http.Start(cfg.http.listen); !st.ok()) {
      spdlog::error("{}", st.message());
      return 1;
    }
  }
  // The store is only read through --http: without it, recording would be wasted work
  // (~5 % of `redtap pcap` on a capture of small answers).
  return pcap::RunPcap(opt, cfg, serve_http ? &sink : nullptr);
}

int RunAgent(const config::Config& cfg) {
  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

  if (geteuid() != 0)
    spdlog::warn("not running as root: loading BPF needs root or CAP_BPF+CAP_PERFMON");
  InstallLibbpfLogger();
  auto tracefs = EnsureTracefs();
  if (!tracefs.ok()) {
    spdlog::error("{}", tracefs.error());
    return 1;
  }
  if (!tracefs.value().empty()) spdlog::info("{}", tracefs.value());

  std::unique_ptr<exporter::EventWriter> writer;
  if (!cfg.events.path.empty()) {
    auto w = exporter::EventWriter::Open(cfg.events.path, cfg.limits.event_queue);
    if (!w.ok()) {
      spdlog::error("events: {}", w.error());
      return 1;
    }
    writer = std::move(w.value());
  }

  auto loaded = CaptureLoader::Load(cfg);
  if (!loaded.ok()) {
    spdlog::error("{}", loaded.error());
    return 1;
  }
  std::unique_ptr<CaptureLoader> loader = std::move(loaded.value());

  metrics::MetricsStore store(cfg);
  ecommerce::EcommerceView ecommerce(cfg);
  AgentSink sink(cfg, writer.get(), &store, &ecommerce);
  ConnTracker tracker(cfg.limits, &sink, loader.get());
  if (ecommerce.enabled()) tracker.SetBodyPolicy(&ecommerce);
  std::atomic<bool> ready{false};
  std::atomic<int> hooks_attached{0};
  std::atomic<saturation::TcpMonitor*> tcp_ptr{nullptr};
  HealthSnapshot health;

  HttpServer http;
  constexpr const char* kText = "text/plain; charset=utf-8";
  http.Get("/health", [] { return HttpResponse{200, kText, "ok\n"}; });
  http.Get("/ready", [&] {
    return ready.load() ? HttpResponse{200, kText, "ready\n"}
                        : HttpResponse{503, kText, "not ready\n"};
  });
  http.Get("/metrics", [&] {
    metrics::AgentHealth h;
    TrackerStats s;
    {
      std::lock_guard<std::mutex> l(health.mu);
      s = health.tracker;
      h.userspace_connections = health.user_conns;
      h.kernel_connections = health.kernel_conns;
    }
    h.records_received = s.records;
    h.transactions = s.transactions;
    h.payload_moved_bytes = s.data_bytes;
    h.payload_captured_bytes = s.captured_bytes;
    for (size_t i = 0; i < s.parser.parse_error_reasons.size(); ++i) {
      h.parse_errors.emplace_back(http::ParseErrorName(static_cast<http::ParseError>(i)),
                                  s.parser.parse_error_reasons[i]);
    }
    auto drops = loader->DropCounters();
    for (int r = 0; r < REDTAP_DROP_MAX; r++)
      h.kernel_drops.emplace_back(CaptureLoader::DropReasonName(r), drops[r]);
    h.userspace_drops = {
        {"event_queue_full", writer ? writer->dropped() : 0},
        {"seq_gap", s.seq_gaps},
        {"data_without_conn", s.data_without_conn},
        {"conn_evicted_full", s.conns_evicted_full},
        {"conn_evicted_idle", s.conns_evicted_idle},
        {"bad_record", s.bad_records},
        {"truncated_head", s.parser.truncated_heads},
        {"lost_response", s.parser.lost_responses},
        {"orphan_response", s.parser.orphan_responses},
        {"pending_overflow", s.parser.pending_overflow},
    };
    h.ring_buffer_fill_bytes = loader->RingBufferFill();
    h.ring_buffer_size_bytes = loader->RingBufferSize();
    h.rss_bytes = ResidentBytes();
    h.ready = ready.load();
    h.hooks_attached = static_cast<uint64_t>(hooks_attached.load());
    std::string text = store.RenderPrometheus(h);
    text += ecommerce.RenderPrometheus(static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC)));
    if (auto* t = tcp_ptr.load()) text += prometheus::TextSerializer().Serialize(t->Collect());
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", std::move(text)};
  });
  http.Get("/api/v1/endpoints", [&] {
    return HttpResponse{200, "application/json",
                        store.RenderEndpointsJson(static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC)))};
  });
  http.Get("/api/v1/funnel", [&] {
    return HttpResponse{200, "application/json",
                        ecommerce.RenderFunnelJson(static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC)))};
  });
  http.Get("/api/v1/listeners", [&] {
    auto* t = tcp_ptr.load();
    return HttpResponse{200, "application/json",
                        t ? t->ListenersJson().dump(-1, ' ', false,
                                                    nlohmann::json::error_handler_t::replace)
                          : "[]"};
  });
  if (auto st = http.Start(cfg.http.listen); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }

  // Start draining before attaching, so nothing waits in a full ring.
  RingReader reader;
  auto last_sweep = std::chrono::steady_clock::now();
  auto last_gc = last_sweep, last_snapshot = last_sweep, last_kernel_count = last_sweep;
  auto st = reader.Start(
      loader->ring_buffer_fd(), cfg.capture.poll_interval_ms,
      [&](const void* d, size_t n) { tracker.OnRecord(d, n); },
      [&] {
        auto now = std::chrono::steady_clock::now();
        if (now - last_sweep >= std::chrono::seconds(1)) {
          tracker.Sweep(static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC)));
          last_sweep = now;
        }
        if (now - last_gc >= std::chrono::seconds(10)) {
          loader->CollectDeadProcesses();
          last_gc = now;
        }
        if (now - last_snapshot >= std::chrono::milliseconds(200)) {
          // Walking the kernel table costs a syscall per entry: every few seconds only.
          bool count_kernel = now - last_kernel_count >= std::chrono::seconds(5);
          size_t kernel_conns = count_kernel ? loader->TrackedConnections() : 0;
          std::lock_guard<std::mutex> l(health.mu);
          health.tracker = tracker.stats();
          health.user_conns = tracker.connections();
          if (count_kernel) {
            health.kernel_conns = kernel_conns;
            last_kernel_count = now;
          }
          last_snapshot = now;
        }
      });
  if (!st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }

  loader->AttachAll();
  std::unique_ptr<tls::TlsAttacher> tls_attacher;
  if (cfg.tls.enabled) {
    tls_attacher = std::make_unique<tls::TlsAttacher>(loader.get());
    tracker.SetExecHandler([t = tls_attacher.get()](uint32_t pid) { t->OnExec(pid); });
    tls_attacher->Start();
  }
  // Socket saturation and TCP health (listen backlogs, connections, resets, RTT): its own
  // BPF object and sampler thread; optional (capture runs without it).
  std::unique_ptr<saturation::TcpMonitor> tcp;
  {
    saturation::Options o;
    auto resolver = std::make_shared<metrics::ServiceResolver>(cfg.services);
    o.resolver = [resolver](uint32_t pid, const std::string& comm, uint16_t port) {
      ConnMeta m;
      m.pid = pid;
      m.command = comm;
      m.role = port ? Role::kServer : Role::kClient;
      m.local.port = port;
      return std::string(resolver->Resolve(m, static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC))));
    };
    if (writer) o.on_event = [w = writer.get()](std::string line) { w->Push(std::move(line)); };
    auto started = saturation::TcpMonitor::Start(o);
    if (started.ok()) {
      tcp = std::move(started.value());
      tcp_ptr = tcp.get();
    } else {
      spdlog::warn("tcp health (listen backlog, resets, RTT) unavailable: {}", started.error());
    }
  }
  int attached = 0, failed_required = 0;
  for (const auto& h : loader->hooks()) {
    if (h.attached) attached++;
    else if (h.required) failed_required++;
  }
  hooks_attached = attached;
  ready = loader->Ready();
  if (ready) {
    spdlog::info("capturing: {} hooks attached; http on {}; events {}", attached,
                 cfg.http.listen, cfg.events.path.empty() ? "off" : cfg.events.path);
  } else {
    spdlog::error("{} required hook(s) failed to attach: capture is incomplete, /ready is 503 "
                  "(run `redtap doctor`)",
                  failed_required);
  }

  int sig = 0;
  sigwait(&stop_set, &sig);
  spdlog::info("{} received: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  ready = false;
  tcp_ptr = nullptr;
  http.Stop();  // no scrape may reach the monitor while it stops
  {
    // Detaching waits for RCU grace periods: the TCP monitor's links, and every capture and
    // TLS link (one thread each), all at once, so the agent exits within a second.
    std::thread tcp_stop([&] {
      if (tcp) tcp->Stop();
    });
    std::vector<struct bpf_link*> links = loader->TakeLinks();
    if (tls_attacher) {
      auto t = tls_attacher->StopAndTakeLinks();
      links.insert(links.end(), t.begin(), t.end());
    }
    DestroyLinksInParallel(links);
    tcp_stop.join();
  }
  reader.Stop();  // drains what the kernel had already written
  http.Stop();
  auto s = tracker.stats();
  auto drops = loader->DropCounters();
  if (writer) writer->Stop();  // flushes
  uint64_t written = writer ? writer->written() : 0, dropped = writer ? writer->dropped() : 0;
  std::string kernel;
  for (int r = 0; r < REDTAP_DROP_MAX; r++)
    kernel += fmt::format(" {}={}", CaptureLoader::DropReasonName(r), drops[r]);
  spdlog::info(
      "stopped: {} transactions ({} unanswered), {} events written, {} events dropped "
      "(queue full), {} records, {} seq gaps, {} parse errors, {} data without conn, {} orphan "
      "responses, {} truncated heads, {} conns opened, {} muted, {} evicted; kernel drops:{}",
      s.transactions, s.unanswered, written, dropped, s.records, s.seq_gaps,
      s.parser.parse_errors, s.data_without_conn, s.parser.orphan_responses,
      s.parser.truncated_heads, s.conns_opened, s.conns_muted,
      s.conns_evicted_full + s.conns_evicted_idle, kernel);
  return 0;
}

}  // namespace redtap

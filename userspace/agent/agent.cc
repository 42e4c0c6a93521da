// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/agent.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <mutex>

#include "userspace/api/http_server.h"
#include "userspace/capture/reader.h"
#include "userspace/capture/tracker.h"
#include "userspace/common/clock.h"
#include "userspace/export/event_json.h"
#include "userspace/export/event_writer.h"
#include "userspace/export/redact.h"
#include "userspace/loader/loader.h"

namespace redtap {
namespace {

// Formats each transaction as one NDJSON event and queues it for the writer thread.
class EventSink : public TransactionSink {
 public:
  EventSink(const config::Config& cfg, exporter::EventWriter* writer)
      : redactor_(cfg.redaction), writer_(writer), offset_(MonotonicToRealtimeOffsetNs()) {}

  void OnTransaction(const http::Transaction& txn, const ConnMeta& meta) noexcept override {
    if (!writer_) return;
    // service.name: the process command until service rules exist (config, issue 3).
    writer_->Push(exporter::FormatHttpEvent(txn, meta, meta.command, offset_, redactor_));
  }

 private:
  exporter::Redactor redactor_;
  exporter::EventWriter* writer_;
  int64_t offset_;
};

}  // namespace

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

  EventSink sink(cfg, writer.get());
  ConnTracker tracker(cfg.limits, &sink, loader.get());
  std::atomic<bool> ready{false};

  HttpServer http;
  http.Get("/health", [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; });
  http.Get("/ready", [&] {
    return ready.load() ? HttpResponse{200, "text/plain; charset=utf-8", "ready\n"}
                        : HttpResponse{503, "text/plain; charset=utf-8", "not ready\n"};
  });
  if (auto st = http.Start(cfg.http.listen); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }

  // Start draining before attaching, so nothing waits in a full ring.
  RingReader reader;
  auto last_sweep = std::chrono::steady_clock::now();
  auto last_gc = last_sweep;
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
      });
  if (!st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }

  loader->AttachAll();
  int attached = 0, failed_required = 0;
  for (const auto& h : loader->hooks()) {
    if (h.attached) attached++;
    else if (h.required) failed_required++;
  }
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
  loader->DetachAll();
  reader.Stop();  // drains what the kernel had already written
  http.Stop();
  auto s = tracker.stats();
  auto drops = loader->DropCounters();
  if (writer) writer->Stop();  // flushes
  uint64_t written = writer ? writer->written() : 0, dropped = writer ? writer->dropped() : 0;
  spdlog::info(
      "stopped: {} transactions ({} unanswered), {} events written, {} events dropped "
      "(queue full), {} records, {} seq gaps, {} parse errors, {} data without conn, {} orphan "
      "responses, {} truncated heads, {} conns opened, {} muted, {} evicted; kernel drops: "
      "ringbuf_full={} conn_table_full={} read_fault={}; truncated={}",
      s.transactions, s.unanswered, written, dropped, s.records, s.seq_gaps,
      s.parser.parse_errors, s.data_without_conn, s.parser.orphan_responses,
      s.parser.truncated_heads, s.conns_opened, s.conns_muted,
      s.conns_evicted_full + s.conns_evicted_idle, drops[REDTAP_DROP_RINGBUF_FULL], drops[REDTAP_DROP_CONN_TABLE_FULL],
      drops[REDTAP_DROP_READ_FAULT], drops[REDTAP_DROP_TRUNCATED]);
  return 0;
}

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/capture_component.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "userspace/common/clock.h"

namespace redtap::agent {
namespace {

using Clock = std::chrono::steady_clock;

exposition::Reasons UserspaceDrops(const TrackerStats& s) {
  return {
      {"seq_gap", s.seq_gaps},
      {"data_without_conn", s.data_without_conn},
      {"conn_evicted_full", s.conns_evicted_full},
      {"conn_evicted_idle", s.conns_evicted_idle},
      {"bad_record", s.bad_records},
      {"truncated_head", s.parser.truncated_heads},
      {"head_too_large", s.parser.head_too_large},
      {"lost_response", s.parser.lost_responses},
      {"orphan_response", s.parser.orphan_responses},
      {"pending_overflow", s.parser.pending_overflow},
      {"db_lost_reply", s.db.lost_responses},
      {"db_orphan_reply", s.db.orphan_responses},
      {"db_pending_overflow", s.db.pending_overflow},
      {"db_oversized_message", s.db.oversized},
      {"db_statement_evicted", s.db.statements_evicted},
  };
}

}  // namespace

CaptureComponent::CaptureComponent(const config::Config& cfg, Outputs* outputs)
    : cfg_(cfg), outputs_(outputs) {}

CaptureComponent::~CaptureComponent() = default;

Status CaptureComponent::Start() {
  auto tracefs = EnsureTracefs();
  if (!tracefs.ok()) return tracefs.status();
  if (!tracefs.value().empty()) spdlog::info("{}", tracefs.value());
  auto loaded = CaptureLoader::Load(cfg_);
  if (!loaded.ok()) return loaded.status();
  loader_ = std::move(loaded.value());
  tracker_ = std::make_unique<ConnTracker>(cfg_.limits, &outputs_->pipeline(), loader_.get());
  if (const auto* policy = outputs_->body_policy()) tracker_->SetBodyPolicy(policy);
  outputs_->registry().Add([this](exposition::Families* out) { Collect(out); });

  // Start draining before attaching, so nothing waits in a full ring.
  last_sweep_ = last_gc_ = last_snapshot_ = last_count_ = Clock::now();
  REDTAP_RETURN_IF_ERROR(reader_.Start(
      loader_->ring_buffer_fd(), cfg_.capture.poll_interval_ms,
      [this](const void* d, size_t n) { tracker_->OnRecord(d, n); }, [this] { Tick(); }));
  loader_->AttachAll();
  if (cfg_.tls.enabled) {
    tls_ = std::make_unique<tls::TlsAttacher>(loader_.get(), cfg_.tls.emulated_sites, cfg_.tls.go);
    tracker_->SetExecHandler([t = tls_.get()](uint32_t pid) { t->OnExec(pid); });
    tls_->Start();
  }
  return Status::Ok();
}

void CaptureComponent::Tick() {
  const auto now = Clock::now();
  if (now - last_sweep_ >= std::chrono::seconds(1)) {
    tracker_->Sweep(static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC)));
    last_sweep_ = now;
  }
  if (now - last_gc_ >= std::chrono::seconds(10)) {
    loader_->CollectDeadProcesses();
    last_gc_ = now;
  }
  if (now - last_snapshot_ >= std::chrono::milliseconds(200)) {
    // Walking the kernel table costs a syscall per entry: every few seconds only.
    const bool count_kernel = now - last_count_ >= std::chrono::seconds(5);
    const size_t kernel_conns = count_kernel ? loader_->TrackedConnections() : 0;
    std::lock_guard<std::mutex> l(mu_);
    stats_ = tracker_->stats();
    user_conns_ = tracker_->connections();
    if (count_kernel) {
      kernel_conns_ = kernel_conns;
      last_count_ = now;
    }
    last_snapshot_ = now;
  }
}

void CaptureComponent::Collect(exposition::Families* out) const {
  using exposition::Counter;
  using exposition::Family;
  using exposition::Gauge;
  using exposition::MetricType;
  TrackerStats s;
  size_t user_conns = 0, kernel_conns = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    s = stats_;
    user_conns = user_conns_;
    kernel_conns = kernel_conns_;
  }
  out->push_back(exposition::SingleCounter("redtap_agent_records_total",
                                           "Records read from the kernel ring buffer.",
                                           static_cast<double>(s.records)));
  out->push_back(exposition::SingleCounter("redtap_agent_transactions_total",
                                           "HTTP transactions decoded.",
                                           static_cast<double>(s.transactions)));
  auto payload = Family("redtap_agent_payload_bytes_total",
                        "Payload bytes of the traced HTTP connections: moved by the syscalls "
                        "(true lengths), and captured into the ring buffer (heads, and bodies "
                        "only where needed).",
                        MetricType::Counter);
  payload.metric.push_back(Counter({{"kind", "moved"}}, static_cast<double>(s.data_bytes)));
  payload.metric.push_back(Counter({{"kind", "captured"}}, static_cast<double>(s.captured_bytes)));
  out->push_back(std::move(payload));
  exposition::Reasons kernel;
  const auto drops = loader_->DropCounters();
  for (int r = 0; r < REDTAP_DROP_MAX; r++) {
    kernel.emplace_back(CaptureLoader::DropReasonName(r), drops[r]);
  }
  out->push_back(exposition::ReasonCounter(
      "redtap_agent_kernel_drops_total", "Events the kernel programs dropped, by reason.", kernel));
  out->push_back(exposition::ReasonCounter("redtap_agent_userspace_drops_total",
                                           "Events or data the agent dropped, by reason.",
                                           UserspaceDrops(s)));
  exposition::Reasons parse;
  for (size_t i = 0; i < s.parser.parse_error_reasons.size(); ++i) {
    parse.emplace_back(http::ParseErrorName(static_cast<http::ParseError>(i)),
                       s.parser.parse_error_reasons[i]);
  }
  out->push_back(exposition::ReasonCounter(
      "redtap_agent_parse_errors_total",
      "HTTP messages that could not be parsed as sent, by reason.", parse));
  auto db_conns = Family("redtap_agent_db_connections_total",
                         "Database connections (PostgreSQL, MySQL, Redis) the kernel recognised, "
                         "by what became of them: parsed; server_side_skipped (a server's side "
                         "whose client is on this host: measured from the client); invalid (not "
                         "the protocol after all, or TLS after an SSL request).",
                         MetricType::Counter);
  db_conns.metric.push_back(
      Counter({{"outcome", "parsed"}}, static_cast<double>(s.db_conns_opened)));
  db_conns.metric.push_back(
      Counter({{"outcome", "server_side_skipped"}}, static_cast<double>(s.db_server_skipped)));
  db_conns.metric.push_back(
      Counter({{"outcome", "invalid"}}, static_cast<double>(s.db_conns_invalid)));
  out->push_back(std::move(db_conns));
  out->push_back(exposition::SingleCounter("redtap_agent_db_operations_total",
                                           "Database operations decoded.",
                                           static_cast<double>(s.db_operations)));
  out->push_back(exposition::SingleCounter(
      "redtap_agent_db_parse_errors_total",
      "Bytes of a database connection that were not its protocol where a message starts.",
      static_cast<double>(s.db.parse_errors)));
  auto conns =
      Family("redtap_agent_tracked_connections",
             "Connections tracked now, in the kernel and in the agent.", MetricType::Gauge);
  conns.metric.push_back(Gauge({{"side", "kernel"}}, static_cast<double>(kernel_conns)));
  conns.metric.push_back(Gauge({{"side", "userspace"}}, static_cast<double>(user_conns)));
  out->push_back(std::move(conns));
  out->push_back(exposition::SingleGauge("redtap_agent_ring_buffer_fill_bytes",
                                         "Bytes waiting in the kernel ring buffer.",
                                         static_cast<double>(loader_->RingBufferFill())));
  out->push_back(exposition::SingleGauge("redtap_agent_ring_buffer_size_bytes",
                                         "Size of the kernel ring buffer.",
                                         static_cast<double>(loader_->RingBufferSize())));
  if (tls_) {
    auto probes = Family("redtap_agent_tls_probes",
                         "OpenSSL functions probed, per library file and function, by placement: "
                         "emulated (no single-step, no uretprobe), or entry + uretprobe with an "
                         "emulated or a single-stepped entry.",
                         MetricType::Gauge);
    for (const auto& m : tls_->ProbeModes()) {
      probes.metric.push_back(
          Gauge({{"library", m.library}, {"function", m.function}, {"mode", m.mode}}, 1));
    }
    out->push_back(std::move(probes));
  }
}

void CaptureComponent::Hooks(std::vector<HookStatus>* out) const {
  if (!loader_) return;
  out->insert(out->end(), loader_->hooks().begin(), loader_->hooks().end());
}

void CaptureComponent::BeginStop(std::vector<struct bpf_link*>* links) {
  if (!loader_) return;
  std::vector<struct bpf_link*> l = loader_->TakeLinks();
  links->insert(links->end(), l.begin(), l.end());
  if (tls_) {
    l = tls_->StopAndTakeLinks();
    links->insert(links->end(), l.begin(), l.end());
  }
}

void CaptureComponent::FinishStop() {
  if (!loader_) return;
  reader_.Stop();  // drains what the kernel had already written
  const TrackerStats s = tracker_->stats();
  const auto drops = loader_->DropCounters();
  std::string kernel;
  for (int r = 0; r < REDTAP_DROP_MAX; r++)
    kernel += fmt::format(" {}={}", CaptureLoader::DropReasonName(r), drops[r]);
  exporter::EventWriter* w = outputs_->writer();
  outputs_->StopEvents();  // flushes: the counts below are final
  spdlog::info(
      "stopped: {} transactions ({} unanswered), {} database operations, {} events written, {} "
      "events dropped "
      "(queue full), {} records, {} seq gaps, {} parse errors, {} data without conn, {} orphan "
      "responses, {} truncated heads, {} conns opened, {} muted, {} evicted; kernel drops:{}",
      s.transactions, s.unanswered, s.db_operations, w ? w->written() : 0, w ? w->dropped() : 0,
      s.records, s.seq_gaps, s.parser.parse_errors, s.data_without_conn, s.parser.orphan_responses,
      s.parser.truncated_heads, s.conns_opened, s.conns_muted,
      s.conns_evicted_full + s.conns_evicted_idle, kernel);
}

}  // namespace redtap::agent

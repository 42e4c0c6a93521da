// SPDX-License-Identifier: Apache-2.0
#include "userspace/agent/outputs.h"

#include <unistd.h>

#include <fstream>

#include "userspace/common/clock.h"

namespace redtap::agent {

uint64_t NowNs() { return static_cast<uint64_t>(ClockNs(CLOCK_MONOTONIC)); }

uint64_t ResidentBytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

Outputs::Outputs(const config::Config& cfg, const OutputOptions& opt)
    : pipeline_(cfg), store_(cfg), db_store_(cfg), ecommerce_(cfg) {
  // Sinks run in this order: the metrics, the e-commerce view (it adds event attributes),
  // then the events.
  if (opt.metrics) pipeline_.AddSink(&store_);
  if (opt.metrics && cfg.db.enabled) pipeline_.AddDbSink(&db_store_);
  // The e-commerce view, when configured, counts and adds its event attributes; the events
  // carry the trace context the enricher reads.
  const bool events = !opt.events_path.empty();
  if (ecommerce_.enabled()) pipeline_.AddSink(&ecommerce_);
  pipeline_.enricher().set_trace_context(events);
}

Outputs::~Outputs() { StopEvents(); }

Result<std::unique_ptr<Outputs>> Outputs::Build(const config::Config& cfg, OutputOptions opt) {
  std::unique_ptr<Outputs> o(new Outputs(cfg, opt));
  if (!opt.events_path.empty()) {
    auto w = exporter::EventWriter::Open(opt.events_path, cfg.limits.event_queue);
    if (!w.ok()) return Status::Error("events: " + w.error());
    o->writer_ = std::move(w.value());
    o->events_ = std::make_unique<exporter::EventSink>(cfg, o->writer_.get(), opt.events);
    o->pipeline_.SetLastSink(o->events_.get());
    if (cfg.db.enabled) o->pipeline_.AddDbSink(o->events_.get());
  }
  Outputs* self = o.get();
  // Each module's families, in exposition order.
  o->registry_.Add([self](exposition::Families* out) { self->store_.Collect(out); });
  if (cfg.db.enabled) {
    o->registry_.Add([self](exposition::Families* out) { self->db_store_.Collect(out); });
  }
  o->registry_.Add([self](exposition::Families* out) { self->pipeline_.enricher().Collect(out); });
  o->registry_.Add([self](exposition::Families* out) {
    if (self->writer_) {
      const uint64_t lost = self->writer_->write_lost();
      out->push_back(exposition::ReasonCounter(
          "redtap_agent_userspace_drops_total", "Events or data the agent dropped, by reason.",
          {{"event_queue_full", self->writer_->dropped() - lost}, {"event_write_failed", lost}}));
      if (self->events_) {
        out->push_back(exposition::ReasonCounter(
            "redtap_agent_events_total",
            "Transactions and database operations handed to the event log, by outcome: "
            "written, sampled_out (events.select), dropped (queue full or write failed).",
            {{"written", self->events_->written()},
             {"sampled_out", self->events_->sampled_out()},
             {"dropped", self->events_->dropped()}},
            "outcome"));
      }
      out->push_back(exposition::SingleCounter(
          "redtap_agent_events_file_reopened_total",
          "Times the events file was opened again: SIGHUP (log rotation), or its path deleted "
          "or replaced.",
          static_cast<double>(self->writer_->reopened())));
    }
  });
  o->registry_.Add([self](exposition::Families* out) { self->ecommerce_.Collect(NowNs(), out); });
  constexpr const char* kJson = "application/json";
  o->api_.Get("/metrics", [self] {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", self->registry_.Render()};
  });
  o->api_.Get("/api/v1/endpoints", [self, kJson] {
    return HttpResponse{200, kJson, self->store_.RenderEndpointsJson(NowNs())};
  });
  o->api_.Get("/api/v1/databases", [self, kJson] {
    return HttpResponse{200, kJson, self->db_store_.RenderDatabasesJson(NowNs())};
  });
  o->api_.Get("/api/v1/funnel", [self, kJson] {
    return HttpResponse{200, kJson, self->ecommerce_.FunnelJson(NowNs())};
  });
  return o;
}

const http::BodyCapturePolicy* Outputs::body_policy() const {
  return ecommerce_.enabled() ? &ecommerce_ : nullptr;
}

void Outputs::StopEvents() {
  if (events_) events_->Stop();  // threaded: formats what is left
  if (writer_) writer_->Stop();  // flushes
}

}  // namespace redtap::agent

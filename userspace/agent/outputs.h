// SPDX-License-Identifier: Apache-2.0
// What `redtap run` and `redtap pcap` share, built the same way from the config: the pipeline
// (enricher, then the sinks: metrics store, e-commerce view, events), the metrics registry
// each module adds its families to, and the HTTP API each module registers its routes on.
// The sources (kernel capture, TLS, TCP monitor; or a capture file) plug into it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "userspace/api/http_server.h"
#include "userspace/common/status.h"
#include "userspace/config/config.h"
#include "userspace/ecommerce/view.h"
#include "userspace/export/event_sink.h"
#include "userspace/export/event_writer.h"
#include "userspace/exposition/registry.h"
#include "userspace/metrics/db_store.h"
#include "userspace/metrics/metrics_store.h"
#include "userspace/pipeline/pipeline.h"

namespace redtap::agent {

struct OutputOptions {
  /// Feed the metrics store (off for `redtap pcap` without --http: nothing would read it).
  bool metrics = true;
  /// Where the event writer writes ("" = no events).
  std::string events_path;
  /// How the event sink runs (threaded and wall-clock for `redtap pcap`).
  exporter::EventSink::Options events;
};

class Outputs {
 public:
  /// Opens the event writer (an error if its file cannot be opened) and wires the sinks.
  static Result<std::unique_ptr<Outputs>> Build(const config::Config& cfg, OutputOptions opt);
  ~Outputs();

  /// What sources hand their transactions to.
  pipeline::Pipeline& pipeline() { return pipeline_; }
  exposition::Registry& registry() { return registry_; }
  HttpServer& api() { return api_; }
  /// Null without events.
  exporter::EventWriter* writer() { return writer_.get(); }
  exporter::EventSink* events() { return events_.get(); }
  /// A sink of the caller's (the pcap summary), after the built-in ones, before the events.
  void AddSink(pipeline::Sink* sink) { pipeline_.AddSink(sink); }
  /// The capture keeps body prefixes for the e-commerce view only (null when it is off).
  const http::BodyCapturePolicy* body_policy() const;
  metrics::MetricsStore& store() { return store_; }
  metrics::DbStore& db_store() { return db_store_; }

  /// Serves the API on cfg.http.listen.
  Status StartApi(const std::string& listen) { return api_.Start(listen); }
  /// Stops the API first (no scrape during shutdown), then flushes and closes the events.
  void StopApi() { api_.Stop(); }
  void StopEvents();

 private:
  Outputs(const config::Config& cfg, const OutputOptions& opt);

  pipeline::Pipeline pipeline_;
  metrics::MetricsStore store_;
  metrics::DbStore db_store_;
  ecommerce::EcommerceView ecommerce_;
  std::unique_ptr<exporter::EventWriter> writer_;
  std::unique_ptr<exporter::EventSink> events_;
  exposition::Registry registry_;
  HttpServer api_;
};

/// Monotonic now, for the API handlers.
uint64_t NowNs();
/// /proc/self/statm resident set.
uint64_t ResidentBytes();

}  // namespace redtap::agent

// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/event_sink.h"

#include "userspace/common/clock.h"
#include "userspace/export/db_event.h"
#include "userspace/export/event_json.h"

namespace redtap::exporter {

EventSink::EventSink(const config::Config& config, EventWriter* writer, Options options)
    : redactor_(config.redaction),
      writer_(writer),
      offset_(options.wall_clock ? 0 : MonotonicToRealtimeOffsetNs()),
      db_slow_ns_(config.db.slow_threshold_ms * 1'000'000ull),
      http_slow_ns_(config.events.slow_threshold_ms * 1'000'000ull),
      selector_(config.events) {
  if (options.threaded) thread_ = std::make_unique<FormatThread>(config, writer, offset_);
}

EventSink::~EventSink() { Stop(); }

void EventSink::Consume(enrich::Enriched& e) noexcept {
  const http::Transaction& t = *e.txn;
  const bool error =
      !t.has_response || (t.response.status_code >= 500 && t.response.status_code <= 599);
  if (!selector_.Keep(error, t.DurationNs() >= http_slow_ns_)) return;
  // W3C trace context, for every event (after the attributes of the sinks before).
  if (!e.trace_id.empty()) {
    try {
      e.extras.push_back({"trace_id", std::string(e.trace_id)});
      e.extras.push_back({"span_id", std::string(e.span_id)});
    } catch (...) {
      // Out of memory: the event goes without them.
    }
  }
  if (!thread_) {
    FormatHttpEventTo(line_, *e.txn, *e.meta, e.service, e.route, offset_, redactor_,
                      e.extras.empty() ? nullptr : &e.extras);
    if (!line_.empty()) writer_->Push(line_);
    return;
  }
  try {
    PendingEvent& p = thread_->Next();
    if (e.owned != nullptr) {
      p.txn = std::move(*e.owned);  // the last sink: the source gave the transaction up
    } else {
      p.txn = *e.txn;
    }
    p.meta = *e.meta;
    p.service.assign(e.service);
    p.route.assign(e.route);
    p.extras.swap(e.extras);
    thread_->Commit();
  } catch (...) {
    // Out of memory: this event is lost (the slot is reused as is).
  }
}

void EventSink::ConsumeDb(enrich::EnrichedDb& e) noexcept {
  const db::Operation& op = *e.op;
  if (!selector_.Keep(!op.has_response || !op.error_type.empty(), op.DurationNs() >= db_slow_ns_))
    return;
  writer_->Push(FormatDbEvent(*e.op, *e.meta, e.service, offset_, db_slow_ns_,
                              e.extras.empty() ? nullptr : &e.extras));
}

void EventSink::Flush() noexcept {
  if (thread_) thread_->Flush();
}

void EventSink::Stop() noexcept {
  if (thread_) thread_->Stop();
}

uint64_t EventSink::written() const { return thread_ ? thread_->written() : writer_->written(); }
uint64_t EventSink::dropped() const { return thread_ ? thread_->dropped() : writer_->dropped(); }

}  // namespace redtap::exporter

// SPDX-License-Identifier: Apache-2.0
// The reader thread's whole per-transaction work, from ring-buffer records to aggregation:
// two data records (request read, response written, as the kernel writes them) through
// ConnTracker (decode, per-connection streams, HTTP parser) into a sink that does what the
// agent's sink does: MetricsStore::Record, and with events on, FormatHttpEvent too.
// Also the event formatter alone (the NDJSON line of one transaction).
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "bpf/include/redtap_abi.h"
#include "userspace/capture/tracker.h"
#include "userspace/config/config.h"
#include "userspace/export/event_json.h"
#include "userspace/export/redact.h"
#include "userspace/metrics/metrics_store.h"
#include "userspace/pipeline/pipeline.h"

namespace redtap {
namespace {

// The bench's own traffic: nginx answering /bench/tiny (what scripts/bench drives).
constexpr std::string_view kRequest =
    "GET /bench/tiny HTTP/1.1\r\n"
    "Host: 127.0.0.1:18480\r\n"
    "\r\n";
constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Wed, 25 Nov 2026 19:00:00 GMT\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Length: 2\r\n"
    "Connection: keep-alive\r\n"
    "\r\n"
    "ok";

std::vector<uint8_t> OpenRecord(uint32_t tgid, uint32_t fd) {
  redtap_conn_open_event ev{};
  ev.hdr.type = REDTAP_EV_CONN_OPEN;
  ev.hdr.version = REDTAP_ABI_VERSION;
  ev.hdr.size = sizeof(ev);
  ev.hdr.ts_ns = 1000;
  ev.id = {tgid, fd, 77};
  ev.seq = 0;
  ev.tid = tgid;
  ev.role = REDTAP_ROLE_SERVER;
  ev.source = REDTAP_SRC_ACCEPT;
  ev.family = 2;  // AF_INET
  ev.lport = 18480;
  ev.rport = 40000;
  const uint8_t lo[4] = {127, 0, 0, 1};
  std::memcpy(ev.laddr, lo, 4);
  std::memcpy(ev.raddr, lo, 4);
  std::memcpy(ev.comm, "nginx", 6);
  std::vector<uint8_t> out(sizeof(ev));
  std::memcpy(out.data(), &ev, sizeof(ev));
  return out;
}

std::vector<uint8_t> DataRecord(uint32_t tgid, uint32_t fd, uint8_t dir, std::string_view p) {
  redtap_data_event ev{};
  ev.hdr.type = REDTAP_EV_DATA;
  ev.hdr.version = REDTAP_ABI_VERSION;
  ev.hdr.size = static_cast<uint32_t>(sizeof(ev) + p.size());
  ev.id = {tgid, fd, 77};
  ev.tid = tgid;
  ev.len = static_cast<uint32_t>(p.size());
  ev.cap_len = static_cast<uint32_t>(p.size());
  ev.dir = dir;
  ev.syscall = dir == REDTAP_DIR_INGRESS ? REDTAP_SYS_RECVFROM : REDTAP_SYS_WRITEV;
  std::vector<uint8_t> out(sizeof(ev) + p.size());
  std::memcpy(out.data(), &ev, sizeof(ev));
  std::memcpy(out.data() + sizeof(ev), p.data(), p.size());
  return out;
}

void SetSeqTs(std::vector<uint8_t>& rec, uint32_t seq, uint64_t ts) {
  auto* ev = reinterpret_cast<redtap_data_event*>(rec.data());
  ev->seq = seq;
  ev->hdr.ts_ns = ts;
}

// The agent's pipeline: enrichment, the metrics store, and (with events) each transaction
// formatted as its event line, as the inline event sink does before queuing it.
class BenchSink : public pipeline::Sink {
 public:
  BenchSink(const config::Config& cfg, bool events)
      : pipeline_(
            cfg, [](uint32_t) { return std::string("nginx"); }, [this] { return now_ += 100'000; }),
        store_(cfg),
        redactor_(cfg.redaction),
        events_(events) {
    pipeline_.AddSink(&store_);
    pipeline_.SetLastSink(this);
    pipeline_.enricher().set_trace_context(events);  // as the agent: only events read it
  }
  void Consume(enrich::Enriched& e) noexcept override {
    ++count;
    if (events_) {
      std::string line =
          exporter::FormatHttpEvent(*e.txn, *e.meta, e.service, e.route, 0, redactor_);
      bytes += line.size();
      benchmark::DoNotOptimize(line);
    }
  }
  TransactionSink* input() { return &pipeline_; }
  uint64_t count = 0, bytes = 0;

 private:
  uint64_t now_ = 1'000'000'000'000ull;
  pipeline::Pipeline pipeline_;
  metrics::MetricsStore store_;
  exporter::Redactor redactor_;
  bool events_;
};

// ns per transaction = 2 records (request + response) through tracker, parser, metrics.
void BM_ReaderPipeline(benchmark::State& state) {
  config::Config cfg;
  BenchSink sink(cfg, state.range(0) != 0);
  ConnTracker tracker(cfg.limits, sink.input(), nullptr);
  const std::vector<uint8_t> open = OpenRecord(4242, 9);
  tracker.OnRecord(open.data(), open.size());
  std::vector<uint8_t> req = DataRecord(4242, 9, REDTAP_DIR_INGRESS, kRequest);
  std::vector<uint8_t> resp = DataRecord(4242, 9, REDTAP_DIR_EGRESS, kResponse);
  uint32_t seq = 1;
  uint64_t ts = 2000;
  for (auto _ : state) {
    SetSeqTs(req, seq++, ts += 1000);
    tracker.OnRecord(req.data(), req.size());
    SetSeqTs(resp, seq++, ts += 20'000);
    tracker.OnRecord(resp.data(), resp.size());
  }
  if (sink.count != static_cast<uint64_t>(state.iterations()))
    state.SkipWithError("the tracker did not pair every transaction");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReaderPipeline)->ArgName("events")->Arg(0)->Arg(1);

http::Transaction SampleTransaction() {
  http::Transaction t;
  t.request.method = "GET";
  t.request.target = "/api/cart?token=abc&x=1";
  t.request.version_minor = 1;
  t.request.headers = {{"Host", "shop.example"},
                       {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"},
                       {"Cookie", "sid=SECRET-COOKIE"}};
  t.request.first_byte_ts = 5'000'000'000;
  t.request.last_byte_ts = 5'000'001'000;
  t.has_response = true;
  t.response.status_code = 200;
  t.response.body_size = 512;
  t.response.first_byte_ts = 5'000'300'000;
  t.response.last_byte_ts = 5'000'345'678;
  return t;
}

// ns per NDJSON event line (the formatter only; redaction of path and query included).
void BM_FormatHttpEvent(benchmark::State& state) {
  const http::Transaction t = SampleTransaction();
  ConnMeta m;
  m.pid = 4242;
  m.command = "nginx";
  m.local = {"10.0.0.1", 8080};
  m.remote = {"10.0.0.2", 51234};
  const exporter::Redactor r{config::RedactionConfig{}};
  const std::string service = "shop";
  int64_t offset = 1'795'632'411'000'000'000LL;
  size_t bytes = 0;
  for (auto _ : state) {
    offset += 1000;  // a new timestamp each time
    std::string line = exporter::FormatHttpEvent(t, m, service, "/api/cart", offset, r);
    bytes += line.size();
    benchmark::DoNotOptimize(line);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_FormatHttpEvent);

}  // namespace
}  // namespace redtap

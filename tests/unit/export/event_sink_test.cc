// SPDX-License-Identifier: Apache-2.0
// The event sink in its threaded mode (`redtap pcap`) writes exactly what formatting each
// enriched transaction inline gives, in order, with the formatting thread's back pressure.
#include "userspace/export/event_sink.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "userspace/export/event_json.h"
#include "userspace/pipeline/pipeline.h"

namespace redtap::exporter {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Collects what the inline path would write for each transaction (before the event sink).
class Expect : public pipeline::Sink {
 public:
  explicit Expect(const config::Config& cfg) : redactor_(cfg.redaction) {}
  void Consume(enrich::Enriched& e) noexcept override {
    lines += FormatHttpEvent(*e.txn, *e.meta, e.service, e.route, 0, redactor_);
    lines += '\n';
  }
  std::string lines;

 private:
  Redactor redactor_;
};

// An events file in /tmp with its writer; removed at the end.
struct EventsFile {
  std::string path;
  std::unique_ptr<EventWriter> writer;
  bool Open() {
    char tmpl[] = "/tmp/redtap-event-sink-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) return false;
    close(fd);
    path = tmpl;
    auto w = EventWriter::Open(path, 1 << 20);
    if (!w.ok()) return false;
    writer = std::move(w.value());
    return true;
  }
  ~EventsFile() {
    if (!path.empty()) std::remove(path.c_str());
  }
};

TEST(EventSink, ThreadedWritesTheSameLinesInOrderWithBackPressure) {
  config::Config cfg = config::DefaultConfig();
  EventsFile f;
  ASSERT_TRUE(f.Open());
  EventWriter* writer = f.writer.get();
  const std::string& path = f.path;
  Expect expect(cfg);
  // Many more than kBatch * kMaxQueued transactions: Commit() has to wait for the thread.
  const size_t n = FormatThread::kBatch * FormatThread::kMaxQueued * 3 + 17;
  {
    EventSink sink(cfg, writer, {/*threaded=*/true, /*wall_clock=*/true});
    pipeline::Pipeline p(
        cfg, [](uint32_t) { return std::string(); }, [] { return 1ull; });
    p.AddSink(&expect);
    p.SetLastSink(&sink);
    for (size_t i = 0; i < n; ++i) {
      http::Transaction t;
      t.request.method = i % 3 ? "GET" : "POST";
      t.request.target = "/item/" + std::to_string(i) + "?card=4111111111111111";
      t.request.headers.push_back({"Host", "shop"});
      t.request.first_byte_ts = 1'700'000'000'000'000'000ull + i * 1000;
      t.has_response = i % 5 != 0;
      t.response.status_code = 200 + static_cast<int>(i % 4);
      t.response.last_byte_ts = t.request.first_byte_ts + 5000;
      ConnMeta m;  // no process: packets (the service is the server's address)
      m.local = {"10.0.0.2", 8080};
      m.remote = {"10.0.0." + std::to_string(i % 7), static_cast<uint16_t>(40000 + i % 100)};
      if (i % 2) {
        p.OnTransactionOwned(std::move(t), m);  // moved to the formatting thread
      } else {
        p.OnTransaction(t, m);  // copied
      }
    }
    sink.Stop();
    EXPECT_EQ(sink.written(), n);
    EXPECT_EQ(sink.dropped(), 0u);
  }
  writer->Stop();
  EXPECT_NE(expect.lines.find("\"service.name\":\"10.0.0.2:8080\""), std::string::npos);
  EXPECT_EQ(ReadFile(path), expect.lines);
}

// Trace context is a field of every event, with or without an e-commerce view, written
// once, after the attributes of the sinks before; a malformed traceparent gives none.
TEST(EventSink, EveryEventCarriesItsTraceContext) {
  config::Config cfg = config::DefaultConfig();
  EventsFile f;
  ASSERT_TRUE(f.Open());
  EventWriter* writer = f.writer.get();
  const std::string& path = f.path;
  for (bool threaded : {false, true}) {
    EventSink sink(cfg, writer, {threaded, /*wall_clock=*/true});
    pipeline::Pipeline p(
        cfg, [](uint32_t) { return std::string(); }, [] { return 1ull; });
    p.enricher().set_trace_context(true);
    p.SetLastSink(&sink);
    for (std::string_view tp : {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}) {
      http::Transaction t;
      t.request.method = "GET";
      t.request.target.push_back('/');  // (= "/" trips GCC 12's -Wrestrict false positive)
      t.request.headers.push_back({"traceparent", std::string(tp)});
      t.has_response = true;
      t.response.status_code = 200;
      ConnMeta m;
      m.local = {"10.0.0.2", 8080};
      m.remote = {"10.0.0.3", 40000};
      p.OnTransaction(t, m);
    }
    sink.Stop();
  }
  writer->Stop();
  const std::string out = ReadFile(path);
  std::istringstream lines(out);
  std::vector<std::string> events;
  for (std::string l; std::getline(lines, l);) events.push_back(l);
  ASSERT_EQ(events.size(), 4u) << out;
  for (size_t i : {0u, 2u}) {
    const std::string_view e = events[i];
    const size_t trace = e.find("\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"");
    EXPECT_NE(trace, std::string::npos) << e;
    EXPECT_NE(e.find("\"span_id\":\"00f067aa0ba902b7\"", trace), std::string::npos) << e;
    EXPECT_EQ(e.find("trace_id", trace + 2), std::string::npos) << e;  // once
  }
  for (size_t i : {1u, 3u}) {
    EXPECT_EQ(events[i].find("trace_id"), std::string::npos) << events[i];
  }
}

}  // namespace
}  // namespace redtap::exporter

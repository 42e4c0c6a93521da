// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the pcap path (link-layer/IP/tunnel decoding, IP fragment and TCP
// reassembly, the flow table, the HTTP parser behind it) on a raw packet stream, through
// PacketProcessor as `redtap pcap` drives it. Input layout:
//   byte 0: link type, an index into kLinks (mod its size)
//   byte 1: limits (bit 0 lenient HTTP, bit 1 response fields, bits 2-3 small flow and
//           buffer limits to reach the eviction paths)
//   then packets: 2-byte little-endian length, 1-byte time step (ms), that many bytes
//           (fewer at the end of the input).
// The sink touches every transaction; invariants: no more packets than input bytes, every
// transaction and database operation counted is handed to the sink.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "userspace/pcap/pcap_runner.h"

namespace {

using namespace redtap;

constexpr int kLinks[] = {pcap::kLinkEthernet, pcap::kLinkNull,        pcap::kLinkRaw,
                          pcap::kLinkRawBsd,   pcap::kLinkRawLinktype, pcap::kLinkLoop,
                          pcap::kLinkLinuxSll, pcap::kLinkArcnetLinux, pcap::kLinkIpv4,
                          pcap::kLinkIpv6,     pcap::kLinkNflog,       pcap::kLinkLinuxSll2};

class Touch : public TransactionSink {
 public:
  void OnTransaction(const http::Transaction& t, const ConnMeta&) noexcept override {
    sum += t.request.method.size() + t.request.target.size() + t.request.body_size +
           t.response.body_size + static_cast<uint64_t>(t.response.status_code) + t.DurationNs();
    for (const auto& h : t.request.headers) sum += h.name.size() + h.value.size();
    ++count;
  }
  void OnDbOperation(db::Operation&& op, const ConnMeta&) noexcept override {
    sum += op.operation.size() + op.query_text.size() + op.status_code.size() + op.DurationNs();
    ++db_count;
  }
  uint64_t sum = 0, count = 0, db_count = 0;
};

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int link = kLinks[data[0] % (sizeof(kLinks) / sizeof(kLinks[0]))];
  pcap::FlowLimits limits;
  limits.lenient_http = data[1] & 1;
  limits.response_fields = data[1] & 2;
  limits.db_enabled = !(data[1] & 16);  // database flows (the default ports, first messages)
  if (data[1] & 4) {
    limits.max_flows = 2;
    limits.idle_timeout_ns = 50'000'000;  // 50 ms of packet time
  }
  if (data[1] & 8) {
    limits.max_buffered_per_direction = 512;
    limits.max_buffered_total = 2048;
    limits.max_scan_bytes = 256;
    limits.http.max_head_bytes = 256;
    limits.http.max_pending_requests = 4;
  }
  Touch sink;
  pcap::PacketProcessor proc(limits, &sink);
  uint64_t ts = 1'700'000'000'000'000'000ull;
  size_t i = 2;
  while (i + 3 <= size) {
    size_t n = data[i] | static_cast<size_t>(data[i + 1]) << 8;
    ts += static_cast<uint64_t>(data[i + 2]) * 1'000'000;
    i += 3;
    if (n > size - i) n = size - i;
    proc.OnFrame(link, std::string_view(reinterpret_cast<const char*>(data + i), n), ts);
    i += n;
  }
  const pcap::PcapStats mid = proc.stats();
  Check(mid.packets <= size, "more packets than input bytes");
  proc.Finish();
  const pcap::PcapStats st = proc.stats();
  Check(st.flows.transactions == sink.count, "transactions counted != handed to the sink");
  Check(st.flows.db_operations == sink.db_count, "db operations counted != handed to the sink");
  return 0;
}

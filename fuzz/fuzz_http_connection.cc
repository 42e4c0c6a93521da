// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: HttpConnection fed both directions of one connection, the splits, gaps,
// capture cuts and unparsed feeds decided by the input. Input layout:
//   byte 0: limits (bits 0-1 max_head_bytes, 2-3 max_pending_requests, 4 lenient request
//           line, 5 HTTP/0.9, 6 response fields, 7 body prefixes kept)
//   then operations: one control byte c, and for feeds one length byte n then n data bytes
//           (fewer at the end of the input):
//     c & 1        direction (0 request, 1 response)
//     c >> 1 & 7   0..4 Feed (wire_len = n), 5 Feed with wire_len = n + (c >> 4) * 97
//                  (uncaptured tail), 6 Gap, 7 FeedUnparsed(c >> 4)
// Every transaction is drained and touched; invariants checked: counters never exceed what
// was fed, memory stays under a bound that depends only on the limits.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "parsers/http/connection.h"

namespace {

using redtap::http::Direction;
using redtap::http::HttpConnection;
using redtap::http::Transaction;

class KeepSome : public redtap::http::BodyCapturePolicy {
 public:
  size_t BodyBytesToKeep(const redtap::http::Request& head) const noexcept override {
    return head.target.size() % 3 == 0 ? 64 : 0;
  }
};
const KeepSome kPolicy;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

uint64_t sink_sum = 0;  // keeps the reads of every transaction field alive

void Drain(std::vector<Transaction>* out, uint64_t* total) {
  for (const Transaction& t : *out) {
    sink_sum += t.request.method.size() + t.request.target.size() + t.request.body_size +
                t.request.body_prefix.size() + t.response.reason.size() +
                static_cast<uint64_t>(t.response.status_code) + t.response.body_size +
                t.response.body_prefix.size() + t.DurationNs() + t.informational_responses;
    for (const auto& h : t.request.headers) sink_sum += h.name.size() + h.value.size();
    for (const auto& h : t.response.headers) sink_sum += h.name.size() + h.value.size();
    sink_sum += redtap::http::RequestHost(t.request).size();
    Check(t.request.body_prefix.size() <= 64, "request body prefix above the policy");
    Check(t.response.body_prefix.size() <= 64, "response body prefix above the policy");
  }
  *total += out->size();
  out->clear();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static constexpr size_t kHead[] = {64, 512, 4096, 32 * 1024};
  static constexpr size_t kPending[] = {1, 4, 16, 64};
  redtap::http::Limits limits;
  const uint8_t f = data[0];
  limits.max_head_bytes = kHead[f & 3];
  limits.max_pending_requests = kPending[(f >> 2) & 3];
  limits.lenient_request_line = f & 0x10;
  limits.allow_http09 = f & 0x20;
  limits.response_fields = f & 0x40;
  if (f & 0x80) limits.body_policy = &kPolicy;
  // What one connection may hold, whatever it is fed: the limits times a generous factor
  // for the copies of a head (vectors of fields) plus a constant.
  const size_t bound =
      (limits.max_pending_requests + 4) * (40 * limits.max_head_bytes + 8192) + (1u << 20);

  HttpConnection conn(limits);
  std::vector<Transaction> out;
  uint64_t fed[2] = {0, 0}, unparsed_calls = 0, total = 0, ts = 1000;
  size_t i = 1;
  while (i < size) {
    const uint8_t c = data[i++];
    const Direction dir = (c & 1) ? Direction::kResponse : Direction::kRequest;
    const int op = (c >> 1) & 7;
    ts += 1 + (c >> 4);
    if (op == 6) {
      conn.Gap(dir);
      continue;
    }
    if (op == 7) {
      conn.FeedUnparsed(c >> 4, ts, c & 0x80, &out);
      ++unparsed_calls;
      Drain(&out, &total);
      continue;
    }
    if (i >= size) break;
    size_t n = data[i++];
    if (n > size - i) n = size - i;
    const std::string_view chunk(reinterpret_cast<const char*>(data + i), n);
    i += n;
    const uint64_t wire = n + (op == 5 ? static_cast<uint64_t>(c >> 4) * 97 : 0);
    conn.Feed(dir, chunk, wire, ts, &out);
    fed[static_cast<int>(dir)] += wire;
    Drain(&out, &total);
    Check(conn.MemoryBytes() <= bound, "MemoryBytes above the bound of the limits");
    const auto& st = conn.stats();
    // A head is at least "X /\n" / "HTTP/1.1 200\n" long; the parser can never count more
    // heads than bytes.
    Check(st.requests <= fed[0], "more requests than request bytes");
    Check(st.responses <= fed[1], "more responses than response bytes");
  }
  conn.Close(ts + 1, &out);
  Drain(&out, &total);
  const auto& st = conn.stats();
  uint64_t reasons = 0;
  for (uint64_t r : st.parse_error_reasons) reasons += r;
  Check(reasons == st.parse_errors, "parse_errors is not the sum of its reasons");
  Check(st.requests <= fed[0] && st.responses <= fed[1], "counts above bytes fed");
  // Every transaction carries a parsed request head, a response, or an unparsed feed.
  Check(total <= st.requests + st.responses + unparsed_calls,
        "more transactions than requests + responses");
  return 0;
}

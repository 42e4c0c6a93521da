// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the database parsers (PostgreSQL, MySQL/MariaDB, Redis) fed both
// directions of one connection, the splits, gaps and capture cuts decided by the input, and
// the SQL summariser on the raw bytes. Input layout:
//   byte 0: bits 0-1 the protocol (0 PostgreSQL, 1 MySQL, 2 Redis, 3 the summariser only),
//           bits 2-3 max_pending (1, 4, 16, 256), bits 4-5 max_buffered_bytes (64, 512, 4096,
//           64 KiB), bit 6 max_statements 2 (else 1024)
//   then operations: one control byte c, and for feeds one length byte n then n data bytes
//           (fewer at the end of the input):
//     c & 1        direction (0 request, 1 response)
//     c >> 1 & 7   0..5 Feed (wire_len = n), 6 Feed with wire_len = n + (c >> 4) * 4099
//                  (uncaptured tail), 7 Gap
// Invariants: every operation is bounded (texts within their limits, never empty
// operation names), no run of 13 or more digits (a card number is one) reaches an operation:
// only literals could hold one, and literals never leave the parser; replies paired never
// outnumber the commands parsed.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/db/sql.h"
#include "parsers/db/types.h"

namespace {

using redtap::db::Direction;
using redtap::db::Operation;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

bool HasLongDigitRun(std::string_view s) {
  size_t run = 0;
  for (char c : s) {
    run = (c >= '0' && c <= '9') ? run + 1 : 0;
    if (run >= 13) return true;
  }
  return false;
}

uint64_t sink_sum = 0;

void CheckOp(const Operation& op) {
  Check(!op.operation.empty(), "empty operation name");
  Check(op.operation.size() <= redtap::db::kMaxNameBytes, "operation name too long");
  Check(op.collection.size() <= 2 * redtap::db::kMaxNameBytes + 1, "collection too long");
  Check(op.query_text.size() <= redtap::db::kMaxQueryText + 8, "query text too long");
  Check(op.query_summary.size() <= redtap::db::kMaxSummary + 8, "summary too long");
  Check(op.status_code.size() <= 16 && op.error_type.size() <= 16, "error code too long");
  // Literals never survive; a 13+ digit run could only come from one.
  Check(!HasLongDigitRun(op.query_text), "digit run in query text");
  Check(!HasLongDigitRun(op.collection), "digit run in collection");
  Check(!HasLongDigitRun(op.status_code), "digit run in status code");
  sink_sum += op.operation.size() + op.collection.size() + op.query_text.size() +
              op.query_summary.size() + op.DurationNs();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t f = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((f & 3) == 3) {
    for (auto d : {redtap::db::sql::Dialect::kPostgresql, redtap::db::sql::Dialect::kMysql}) {
      const auto s = redtap::db::sql::Summarize(rest, d);
      Check(s.text.size() <= redtap::db::kMaxQueryText + 8, "summary text too long");
      Check(!HasLongDigitRun(s.text) && !HasLongDigitRun(s.collection), "digit run in summary");
      sink_sum += s.operation.size() + s.summary.size();
    }
    return 0;
  }
  static constexpr size_t kPending[] = {1, 4, 16, 256};
  static constexpr size_t kBuffered[] = {64, 512, 4096, 64 * 1024};
  redtap::db::Limits limits;
  limits.max_pending = kPending[(f >> 2) & 3];
  limits.max_buffered_bytes = kBuffered[(f >> 4) & 3];
  if (f & 0x40) limits.max_statements = 2;
  static constexpr redtap::db::System kSystems[] = {
      redtap::db::System::kPostgresql, redtap::db::System::kMysql, redtap::db::System::kRedis};
  auto parser = redtap::db::MakeParser(kSystems[f & 3], limits);
  Check(parser != nullptr, "no parser");

  std::vector<Operation> out;
  uint64_t ts = 1000, fed = 0, ops = 0;
  size_t i = 1;
  while (i < size && !parser->invalid()) {
    const uint8_t c = data[i++];
    const Direction dir = (c & 1) ? Direction::kResponse : Direction::kRequest;
    const unsigned op = (c >> 1) & 7;
    if (op == 7) {
      parser->Gap(dir);
      continue;
    }
    if (i >= size) break;
    size_t n = data[i++];
    if (n > size - i) n = size - i;
    std::string_view payload(reinterpret_cast<const char*>(data + i), n);
    i += n;
    uint64_t wire = n;
    if (op == 6) wire += static_cast<uint64_t>(c >> 4) * 4099;
    ts += 1000;
    parser->Feed(dir, payload, wire, ts, &out);
    fed++;
    for (const Operation& o : out) CheckOp(o);
    ops += out.size();
    Check(out.size() <= limits.max_pending + n + 1, "more operations than possible");
    out.clear();
  }
  parser->Close(ts + 1000, &out);
  for (const Operation& o : out) CheckOp(o);
  const auto& st = parser->stats();
  Check(st.responses <= st.requests, "more replies paired than commands parsed");
  sink_sum += st.requests + st.parse_errors + ops + fed;
  return 0;
}

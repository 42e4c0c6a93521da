// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the HTTP parser tests: canonical dumps of transactions and a driver
// that feeds a script of chunks into an HttpConnection.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/http/connection.h"
#include "parsers/http/types.h"

namespace redtap::http_test {

/// One Feed call: direction, bytes, and optionally more bytes on the wire than captured.
struct Chunk {
  http::Direction dir;
  std::string data;
  uint64_t wire_len = 0;  // 0 = data.size()
};

inline Chunk Req(std::string data) { return Chunk{http::Direction::kRequest, std::move(data)}; }
inline Chunk Resp(std::string data) { return Chunk{http::Direction::kResponse, std::move(data)}; }

/// Short form used by the tables: "GET / -> 200 req=0 resp=5 info=0" or "GET / -> none".
inline std::string Summary(const http::Transaction& t) {
  std::string s =
      t.request.placeholder ? "<placeholder>" : t.request.method + " " + t.request.target;
  s += " -> ";
  s += t.has_response ? std::to_string(t.response.status_code) : "none";
  s += " req=" + std::to_string(t.request.body_size);
  if (t.has_response) s += " resp=" + std::to_string(t.response.body_size);
  if (t.informational_responses > 0) s += " info=" + std::to_string(t.informational_responses);
  return s;
}

inline std::string DumpHeaders(const std::vector<http::Header>& hs) {
  std::string s;
  for (const http::Header& h : hs) s += "[" + h.name + ": " + h.value + "]";
  return s;
}

/// Every field, for exact comparisons (split runs).
inline std::string Dump(const http::Transaction& t) {
  const http::Request& q = t.request;
  const http::Response& r = t.response;
  std::string s = Summary(t);
  s += " | req v1." + std::to_string(q.version_minor) + " head=" + std::to_string(q.head_size) +
       " ts=" + std::to_string(q.first_byte_ts) + ".." + std::to_string(q.last_byte_ts) +
       " expect=" + std::to_string(q.expect_continue) + " " + DumpHeaders(q.headers);
  if (t.has_response) {
    s += " | resp v1." + std::to_string(r.version_minor) + " '" + r.reason +
         "' head=" + std::to_string(r.head_size) + " ts=" + std::to_string(r.first_byte_ts) + ".." +
         std::to_string(r.last_byte_ts) + " " + DumpHeaders(r.headers);
  }
  return s;
}

inline std::string DumpStats(const http::ConnStats& st) {
  return "requests=" + std::to_string(st.requests) + " responses=" + std::to_string(st.responses) +
         " parse_errors=" + std::to_string(st.parse_errors) + " gaps=" + std::to_string(st.gaps) +
         " truncated=" + std::to_string(st.truncated_heads) +
         " orphan=" + std::to_string(st.orphan_responses) +
         " overflow=" + std::to_string(st.pending_overflow) +
         " too_large=" + std::to_string(st.head_too_large) +
         " unparsed_requests=" + std::to_string(st.unparsed_requests) +
         " lost_responses=" + std::to_string(st.lost_responses) +
         " informational=" + std::to_string(st.informational);
}

struct RunResult {
  std::vector<http::Transaction> txns;
  http::ConnState state = http::ConnState::kActive;
  http::ConnStats stats;
  bool req_idle = true;   // before Close
  bool resp_idle = true;  // before Close

  std::vector<std::string> Summaries() const {
    std::vector<std::string> v;
    for (const auto& t : txns) v.push_back(Summary(t));
    return v;
  }
  std::string Full() const {
    std::string s;
    for (const auto& t : txns) s += Dump(t) + "\n";
    s += DumpStats(stats) + " state=" + std::to_string(static_cast<int>(state)) +
         " idle=" + std::to_string(req_idle) + std::to_string(resp_idle);
    return s;
  }
};

/// Feeds `chunks` (chunk i at ts = (i + 1) * 1000) then closes the connection at ts 999999;
/// chunk `split_index` (if any) is fed as two Feed calls split at `offset` (same timestamp,
/// so results must be identical to the unsplit run).
inline RunResult RunScriptSplit(const std::vector<Chunk>& chunks, size_t split_index, size_t offset,
                                bool close = true, http::Limits limits = {}) {
  http::HttpConnection conn(limits);
  RunResult r;
  uint64_t ts = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    ts += 1000;
    if (i == split_index) {
      const std::string_view d = c.data;
      conn.Feed(c.dir, d.substr(0, offset), offset, ts, &r.txns);
      conn.Feed(c.dir, d.substr(offset), d.size() - offset, ts, &r.txns);
    } else {
      const uint64_t wire = c.wire_len == 0 ? c.data.size() : c.wire_len;
      conn.Feed(c.dir, c.data, wire, ts, &r.txns);
    }
  }
  r.req_idle = conn.Idle(http::Direction::kRequest);
  r.resp_idle = conn.Idle(http::Direction::kResponse);
  if (close) conn.Close(999999, &r.txns);
  r.state = conn.state();
  r.stats = conn.stats();
  return r;
}

/// The same, no chunk split.
inline RunResult RunScript(const std::vector<Chunk>& chunks, bool close = true,
                           http::Limits limits = {}) {
  return RunScriptSplit(chunks, chunks.size(), 0, close, limits);
}

}  // namespace redtap::http_test

// SPDX-License-Identifier: Apache-2.0
// HttpConnection: the public calls, the counters, and the queue of requests waiting for their
// response. The two directions are in connection_requests.cc and connection_responses.cc.
#include "parsers/http/connection.h"

#include <algorithm>
#include <utility>

#include "parsers/http/connection_impl.h"
#include "parsers/http/parser.h"

namespace redtap::http {

std::string_view ParseErrorName(ParseError e) noexcept {
  switch (e) {
    case ParseError::kNotHttp:
      return "not_http";
    case ParseError::kBadRequestHead:
      return "bad_request_head";
    case ParseError::kBadResponseHead:
      return "bad_response_head";
    case ParseError::kInvalidContentLength:
      return "invalid_content_length";
    case ParseError::kSmugglingSuspect:
      return "smuggling_suspect";
    case ParseError::kBadChunk:
      return "bad_chunk";
    case ParseError::kCount:
      break;
  }
  return "other";
}

void ConnStats::Add(const ConnStats& o) noexcept {
  requests += o.requests;
  responses += o.responses;
  parse_errors += o.parse_errors;
  for (size_t i = 0; i < parse_error_reasons.size(); ++i)
    parse_error_reasons[i] += o.parse_error_reasons[i];
  gaps += o.gaps;
  truncated_heads += o.truncated_heads;
  orphan_responses += o.orphan_responses;
  pending_overflow += o.pending_overflow;
  head_too_large += o.head_too_large;
  unparsed_requests += o.unparsed_requests;
  lost_responses += o.lost_responses;
  informational += o.informational;
  expect_skipped_bodies += o.expect_skipped_bodies;
}

HttpConnection::Impl::Pending* HttpConnection::Impl::BySeq(uint64_t seq) {
  if (seq == kNoSeq || seq < front_seq || seq - front_seq >= PendingCount()) return nullptr;
  return &pending[pending_head + (seq - front_seq)];
}

void HttpConnection::Impl::PopFront() {
  pending_mem -= pending[pending_head].mem;
  pending[pending_head] = Pending{};
  ++pending_head;
  ++front_seq;
  if (pending_head == pending.size()) {
    pending.clear();
    if (pending.capacity() > 16) std::vector<Pending>().swap(pending);  // after a burst
    pending_head = 0;
  } else if (pending_head >= 16 && pending_head * 2 >= pending.size()) {
    pending.erase(pending.begin(), pending.begin() + static_cast<ptrdiff_t>(pending_head));
    pending_head = 0;
  }
}

void HttpConnection::Impl::FlushDeferred(std::vector<Transaction>* out) {
  if (deferred.empty()) return;
  for (Transaction& t : deferred) out->push_back(std::move(t));
  deferred.clear();
}

void HttpConnection::Impl::GarbageResync(Direction dir) {
  if (++garbage_resyncs > limits.max_garbage_resyncs) {
    state = ConnState::kInvalid;
    return;
  }
  Resync(dir);
}

void HttpConnection::Impl::Resync(Direction dir) {
  if (dir == Direction::kRequest) {
    req_parser.NextMessage();
    req_seq = kNoSeq;
    req_resync = true;
    req_tentative = false;
  } else {
    resp_parser.NextMessage();
    resp_resync = true;
    resp_tentative = false;
  }
}

HttpConnection::HttpConnection(Limits limits) : impl_(std::make_unique<Impl>(limits)) {}
HttpConnection::~HttpConnection() = default;
HttpConnection::HttpConnection(HttpConnection&&) noexcept = default;
HttpConnection& HttpConnection::operator=(HttpConnection&&) noexcept = default;

void HttpConnection::Feed(Direction dir, std::string_view data, uint64_t wire_len, uint64_t ts_ns,
                          std::vector<Transaction>* out) noexcept {
  if (!impl_) return;
  Impl& c = *impl_;
  c.FlushDeferred(out);
  if (c.state != ConnState::kActive) return;
  const uint64_t uncaptured = wire_len > data.size() ? wire_len - data.size() : 0;
  if (dir == Direction::kRequest) {
    if (c.tunnel_wait) {
      // Uncaptured bytes cannot be replayed: if the CONNECT is refused, resync.
      if (uncaptured > 0) c.tunnel_held_overflow = true;
      c.HoldTunnelBytes(data, ts_ns);
      return;
    }
    if (c.req_resync) {
      const StartVerdict v = ResyncVerdict(dir, data);
      if (v == StartVerdict::kNo) return;
      c.req_resync = false;
      c.req_tentative = v == StartVerdict::kMaybe;
    }
    c.ProcessRequest(data, ts_ns);
    if (c.req_tentative && c.req_parser.StartConfirmed()) c.req_tentative = false;
  } else {
    if (c.Http09Pending()) return;  // only with Limits::allow_http09
    if (c.resp_resync) {
      const StartVerdict v = ResyncVerdict(dir, data);
      if (v == StartVerdict::kNo) return;
      c.resp_resync = false;
      c.resp_tentative = v == StartVerdict::kMaybe;
    }
    c.ProcessResponse(data, ts_ns, out);
    if (c.resp_tentative && c.resp_parser.StartConfirmed()) c.resp_tentative = false;
  }
  if (uncaptured > 0 && c.state == ConnState::kActive) {
    c.HandleUncaptured(dir, uncaptured, ts_ns, out);
  }
}

void HttpConnection::FeedUnparsed(uint64_t len, uint64_t ts_ns, bool not_http,
                                  std::vector<Transaction>* out) noexcept {
  if (!impl_ || len == 0) return;
  Impl& c = *impl_;
  c.FlushDeferred(out);
  if (c.state != ConnState::kActive) return;
  if (not_http) c.stats.CountParseError(ParseError::kNotHttp);
  // Something in progress ends here, as at a gap.
  if (!c.req_parser.AtMessageStart() && !c.req_resync) c.EndRequestInProgress();
  c.PushPlaceholder(ts_ns);
}

void HttpConnection::Gap(Direction dir) noexcept {
  if (!impl_) return;
  Impl& c = *impl_;
  ++c.stats.gaps;
  if (c.state != ConnState::kActive) return;
  if (dir == Direction::kRequest) {
    if (c.tunnel_wait) c.tunnel_held_overflow = true;  // held bytes can't be replayed
    if (c.req_resync || c.tunnel_wait) return;
    c.EndRequestInProgress();
  } else {
    if (c.resp_resync) return;
    if (c.resp_parser.InHead()) {
      c.LostResponseHead();
    } else if (c.resp_parser.InBody()) {
      // A body read to EOF stays delimited by EOF: keep counting (the lost bytes are unknown).
      if (c.resp_parser.body_mode() == BodyMode::kEof) return;
      c.OnResponseDone(&c.deferred);
    }
    c.Resync(dir);
  }
}

void HttpConnection::Close(uint64_t ts_ns, std::vector<Transaction>* out) noexcept {
  (void)ts_ns;  // an EOF-delimited body ends with its last data, not with the close
  if (!impl_) return;
  Impl& c = *impl_;
  c.FlushDeferred(out);
  // A response whose head was parsed is reported with its status: complete when delimited
  // by close, else cut short (Content-Length or chunked body incomplete: the server closed
  // mid-body or the capture ended) with the body seen so far.
  if (c.state == ConnState::kActive && !c.resp_resync && c.resp_parser.InBody()) {
    c.OnResponseDone(out);
  }
  if (c.req_parser.InBody()) c.SyncRequestBody();
  for (size_t i = c.pending_head; i < c.pending.size(); ++i) {
    Impl::Pending& p = c.pending[i];
    if (p.req.placeholder) continue;
    if (c.resp_resync) {
      // Response bytes were lost and no response head was found since: the answers of these
      // requests may be what was lost. Counted as lost, never reported as unanswered.
      ++c.stats.lost_responses;
      continue;
    }
    c.EmitFront(p, out);  // no response
  }
  std::vector<Impl::Pending>().swap(c.pending);
  c.pending_head = 0;
  c.pending_mem = 0;
  c.front_seq = 0;
  c.req_seq = kNoSeq;
  c.req_parser.NextMessage();
  c.resp_parser.NextMessage();
  c.resp = Response{};
  c.tunnel_wait = false;
  std::string().swap(c.tunnel_held);
  c.tunnel_held_overflow = false;
  c.req_resync = c.resp_resync = false;
  c.req_tentative = c.resp_tentative = false;
  c.req_body_optional = false;
}

ConnState HttpConnection::state() const noexcept {
  return impl_ ? impl_->state : ConnState::kInvalid;
}

const ConnStats& HttpConnection::stats() const noexcept {
  static const ConnStats kEmpty;
  return impl_ ? impl_->stats : kEmpty;
}

size_t HttpConnection::MemoryBytes() const noexcept {
  if (!impl_) return 0;
  const Impl& c = *impl_;
  size_t n = sizeof(Impl) + c.req_parser.MemoryBytes() + c.resp_parser.MemoryBytes();
  n += HeapBytes(c.req_parser.request());
  n += HeapBytes(c.resp_parser.response());
  n += c.pending.capacity() * sizeof(Impl::Pending) + c.pending_mem;
  n += HeapBytes(c.resp);
  n += c.deferred.capacity() * sizeof(Transaction);
  n += HeapBytes(c.tunnel_held);
  return n;
}

bool HttpConnection::Idle(Direction dir) const noexcept {
  if (!impl_) return true;
  const MessageParser& p = dir == Direction::kRequest ? impl_->req_parser : impl_->resp_parser;
  return p.AtMessageStart();
}

bool LooksLikeRequestStart(std::string_view d) noexcept {
  // Stricter than the parser (which takes any token method): for protocol inference, a
  // method is 3..32 token chars starting with an upper-case letter, then SP, then the
  // first bytes of a target.
  if (d.empty() || !IsUpperAlpha(d[0])) return false;
  if (d.starts_with("PRI * HTTP/2")) return false;  // the HTTP/2 connection preface
  size_t i = 1;
  while (i < d.size() && i <= 32 && internal::IsTokenChar(d[i])) ++i;
  if (i < 3 || i > 32 || i >= d.size() || d[i] != ' ') return false;
  ++i;
  if (i == d.size()) return true;
  const char c = d[i];
  if (!(c == '/' || c == '*' || c == '[' || IsAlnum(c))) return false;
  // The target's first bytes must be visible ASCII or obs-text, up to a SP or the end.
  for (size_t j = i; j < d.size() && j < i + 64; ++j) {
    const auto u = static_cast<unsigned char>(d[j]);
    if (u == ' ') break;
    if (u < 0x21 || u == 0x7f) return false;
  }
  return true;
}

bool LooksLikeLenientRequestStart(std::string_view d) noexcept {
  const size_t lf = d.find('\n');
  if (lf == std::string_view::npos) return false;
  std::string_view line = d.substr(0, lf);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty() || !IsUpperAlpha(line[0])) return false;
  size_t i = 1;
  while (i < line.size() && i <= 32 && internal::IsTokenChar(line[i])) ++i;
  if (i < 3 || i > 32 || i >= line.size() || line[i] != ' ') return false;
  return internal::IsRequestLine(line, internal::RequestLeniency{true, true});
}

bool LooksLikeResponseStart(std::string_view d) noexcept {
  // "HTTP/1.x NNN", as much of it as is there (at least "HTTP/").
  // The HTTP-name in any case ("http/1.1 200"), as the parser accepts it in a status line.
  if (d.size() < 5) return false;
  if (internal::CheckResponseStart(d.substr(0, 8)) == StartVerdict::kNo) return false;
  if (d.size() > 8 && d[8] != ' ') return false;
  for (size_t i = 9; i < 12 && i < d.size(); ++i) {
    if (!IsDigit(d[i])) return false;
  }
  return true;
}

}  // namespace redtap::http

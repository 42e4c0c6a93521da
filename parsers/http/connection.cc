// SPDX-License-Identifier: Apache-2.0
#include "parsers/http/connection.h"

#include <algorithm>
#include <utility>

#include "parsers/http/parser.h"

namespace redtap::http {
namespace {

using internal::MessageParser;
using Event = MessageParser::Event;
using BodyMode = MessageParser::BodyMode;
using internal::StartVerdict;

constexpr uint64_t kNoSeq = UINT64_MAX;

size_t HeapBytes(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

size_t HeapBytes(const std::vector<Header>& hs) {
  size_t n = hs.capacity() * sizeof(Header);
  for (const Header& h : hs) n += HeapBytes(h.name) + HeapBytes(h.value);
  return n;
}

size_t HeapBytes(const Request& r) {
  return HeapBytes(r.method) + HeapBytes(r.target) + HeapBytes(r.headers) +
         HeapBytes(r.body_prefix);
}

size_t HeapBytes(const Response& r) {
  return HeapBytes(r.reason) + HeapBytes(r.headers) + HeapBytes(r.body_prefix);
}

bool IsUpperAlpha(char c) { return c >= 'A' && c <= 'Z'; }
bool IsAlnum(char c) {
  return IsUpperAlpha(c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// After lost sync: does this chunk start a message (kMaybe: too short to tell)?
StartVerdict ResyncVerdict(Direction dir, std::string_view d) {
  if (d.empty()) return StartVerdict::kNo;
  if (dir == Direction::kRequest) {
    if (LooksLikeRequestStart(d)) return StartVerdict::kYes;
    if (d.size() > 32 || !IsUpperAlpha(d[0])) return StartVerdict::kNo;
    for (char c : d) {
      if (!internal::IsTokenChar(c)) return StartVerdict::kNo;
    }
    return StartVerdict::kMaybe;
  }
  if (LooksLikeResponseStart(d)) return StartVerdict::kYes;
  return d.size() < 5 && internal::CheckResponseStart(d) == StartVerdict::kMaybe
             ? StartVerdict::kMaybe
             : StartVerdict::kNo;
}

}  // namespace

std::string_view ParseErrorName(ParseError e) noexcept {
  switch (e) {
    case ParseError::kNotHttp: return "not_http";
    case ParseError::kBadRequestHead: return "bad_request_head";
    case ParseError::kBadResponseHead: return "bad_response_head";
    case ParseError::kInvalidContentLength: return "invalid_content_length";
    case ParseError::kSmugglingSuspect: return "smuggling_suspect";
    case ParseError::kBadChunk: return "bad_chunk";
    case ParseError::kCount: break;
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

struct HttpConnection::Impl {
  struct Pending {
    Request req;
    uint32_t informational = 0;
    size_t mem = 0;
    size_t body_keep = 0;  // body bytes of the request and of its response to keep
  };
  // Who a response in progress belongs to.
  enum class Owner : uint8_t { kPair, kOrphan, kPlaceholder };

  explicit Impl(const Limits& l)
      : limits(l),
        req_parser(MessageParser::Kind::kRequest, l.max_head_bytes,
                   internal::RequestLeniency{l.lenient_request_line, l.allow_http09}),
        resp_parser(MessageParser::Kind::kResponse, l.max_head_bytes, {},
                    /*framing_fields_only=*/!l.response_fields) {}

  Limits limits;
  ConnStats stats;
  ConnState state = ConnState::kActive;
  MessageParser req_parser;
  MessageParser resp_parser;

  // Requests waiting for their response, oldest first: pending[pending_head..].
  std::vector<Pending> pending;
  size_t pending_head = 0;
  uint64_t front_seq = 0;  // sequence number of pending[pending_head]
  size_t pending_mem = 0;

  uint64_t req_seq = kNoSeq;  // the request whose body is being parsed
  bool req_is_connect = false;
  bool tunnel_wait = false;   // a CONNECT was sent: request bytes are tunnel data until a
                              // non-2xx final response arrives
  // Request bytes sent while waiting for the CONNECT's answer (bounded by max_head_bytes):
  // replayed as HTTP if the CONNECT is refused, dropped if it succeeds.
  std::string tunnel_held;
  uint64_t tunnel_held_ts = 0;
  bool tunnel_held_overflow = false;
  // An Expect: 100-continue request was answered with a final error status before any of
  // its body: its client may skip the body (RFC 9110 §10.1.1). The next request bytes
  // decide, as libhtp does: a request line starts the next request, anything else is body.
  bool req_body_optional = false;
  bool req_resync = false;   // skipping chunks until one starts like a message
  bool resp_resync = false;
  // Resumed on a chunk too short to tell (e.g. "GE"): if it turns out not to be a message
  // start, go back to resync quietly instead of calling the connection invalid.
  bool req_tentative = false;
  bool resp_tentative = false;
  size_t garbage_resyncs = 0;

  Response resp;  // the response in progress (head parsed)
  Owner owner = Owner::kOrphan;

  // Transactions completed by Gap() (which has no output): flushed on the next Feed/Close.
  std::vector<Transaction> deferred;

  size_t PendingCount() const { return pending.size() - pending_head; }
  // An HTTP/0.9 request awaits its answer: what the server sends has no head (a body until
  // close); it is not parsed, and the request is reported at Close() with no response.
  bool Http09Pending() {
    return PendingCount() > 0 && pending[pending_head].req.http09 &&
           resp_parser.AtMessageStart();
  }
  Pending* Front() { return PendingCount() > 0 ? &pending[pending_head] : nullptr; }
  Pending* BySeq(uint64_t seq) {
    if (seq == kNoSeq || seq < front_seq || seq - front_seq >= PendingCount()) return nullptr;
    return &pending[pending_head + (seq - front_seq)];
  }

  uint64_t Push(Request&& req) {
    if (PendingCount() >= limits.max_pending_requests) {
      ++stats.pending_overflow;
      return kNoSeq;
    }
    if (pending.empty()) pending.reserve(4);
    Pending p;
    p.req = std::move(req);
    p.mem = HeapBytes(p.req);
    pending_mem += p.mem;
    pending.push_back(std::move(p));
    return front_seq + PendingCount() - 1;
  }

  void PopFront() {
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

  void FlushDeferred(std::vector<Transaction>* out) {
    if (deferred.empty()) return;
    for (Transaction& t : deferred) out->push_back(std::move(t));
    deferred.clear();
  }

  // Parse errors and oversized heads: resync that direction, up to a limit.
  void GarbageResync(Direction dir) {
    if (++garbage_resyncs > limits.max_garbage_resyncs) {
      state = ConnState::kInvalid;
      return;
    }
    Resync(dir);
  }

  void Resync(Direction dir) {
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

  // ---- Requests ----

  // A request head was lost (gap, cut by the capture cap, malformed, too large): keep its
  // place in the queue so that its response is discarded instead of mis-paired.
  void LostRequestHead() {
    Request ph;
    ph.placeholder = true;
    ph.first_byte_ts = ph.last_byte_ts = req_parser.first_ts();
    Push(std::move(ph));
  }

  void SyncRequestBody() {
    if (Pending* p = BySeq(req_seq)) {
      p->req.body_size = req_parser.body_size();
      p->req.last_byte_ts = req_parser.last_ts();
      if (p->body_keep > 0 && p->req.body_prefix.size() != req_parser.body_prefix().size()) {
        pending_mem -= HeapBytes(p->req.body_prefix);
        p->req.body_prefix = req_parser.body_prefix();
        pending_mem += HeapBytes(p->req.body_prefix);
      }
    }
  }

  void OnRequestHead() {
    ++stats.requests;
    const internal::HeadInfo& info = req_parser.info();
    Request& r = req_parser.request();
    BodyMode mode = BodyMode::kNone;
    bool bad_framing = false;
    if (info.has_transfer_encoding) {
      // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3 rule 3), but a request
      // carrying both is how requests are smuggled past a proxy. A request whose final
      // coding is not chunked cannot be delimited (rule 4): the server answers 400.
      if (info.has_content_length || info.invalid_content_length || !info.chunked)
        stats.CountParseError(ParseError::kSmugglingSuspect);
      if (info.chunked) {
        mode = BodyMode::kChunked;
      } else {
        bad_framing = true;
      }
    } else if (info.invalid_content_length) {
      // Rule 5: the server answers 400; no body is trusted, what follows is the next request.
      stats.CountParseError(ParseError::kInvalidContentLength);
    } else if (info.has_content_length) {
      mode = BodyMode::kLength;
    }
    r.head_size = req_parser.head_size();
    r.first_byte_ts = req_parser.first_ts();
    r.last_byte_ts = req_parser.last_ts();
    r.body_size = 0;
    r.body_prefix.clear();
    req_is_connect = r.method == "CONNECT";
    const size_t keep = limits.body_policy ? limits.body_policy->BodyBytesToKeep(r) : 0;
    Request req = std::move(r);  // leaves nothing behind in the parser, even on overflow
    req_seq = Push(std::move(req));
    if (Pending* p = BySeq(req_seq)) p->body_keep = keep;
    if (bad_framing) {
      GarbageResync(Direction::kRequest);
      return;
    }
    req_parser.StartBody(mode, info.content_length);
    if (BySeq(req_seq) != nullptr) req_parser.KeepBody(keep);
    if (mode == BodyMode::kNone || !req_parser.InBody()) OnRequestDone();
  }

  void OnRequestDone() {
    SyncRequestBody();
    // After a CONNECT, the client may send tunnel bytes before the response arrives.
    if (req_is_connect && BySeq(req_seq) != nullptr) tunnel_wait = true;
    req_is_connect = false;
    req_seq = kNoSeq;
    req_parser.NextMessage();
  }

  void HoldTunnelBytes(std::string_view data, uint64_t ts) {
    if (data.empty()) return;
    if (tunnel_held.empty()) tunnel_held_ts = ts;
    const size_t room = limits.max_head_bytes - std::min(limits.max_head_bytes, tunnel_held.size());
    if (data.size() > room) tunnel_held_overflow = true;
    tunnel_held.append(data.substr(0, room));
  }

  // The CONNECT was refused: what the client sent meanwhile was HTTP after all.
  void EndTunnelWait() {
    tunnel_wait = false;
    std::string held;
    held.swap(tunnel_held);
    const bool overflow = tunnel_held_overflow;
    tunnel_held_overflow = false;
    if (overflow) {
      Resync(Direction::kRequest);
    } else if (!held.empty() && state == ConnState::kActive) {
      ProcessRequest(held, tunnel_held_ts);
    }
  }

  // After an Expect: 100-continue request was refused: is `data` its body or the next
  // request?
  void DecideSkippedBody(std::string_view data) {
    req_body_optional = false;
    if (!req_parser.InBody() || req_parser.body_size() != 0) return;
    const StartVerdict v = ResyncVerdict(Direction::kRequest, data);
    if (v == StartVerdict::kNo) return;  // the body after all
    ++stats.expect_skipped_bodies;
    OnRequestDone();
    // Too short to tell ("GE"): if it is not a request after all, skip to the next one
    // quietly (the refused request was reported already).
    req_tentative = v == StartVerdict::kMaybe;
  }

  void ProcessRequest(std::string_view data, uint64_t ts) {
    if (req_body_optional && !data.empty()) DecideSkippedBody(data);
    while (state == ConnState::kActive) {
      if (tunnel_wait) {
        HoldTunnelBytes(data, ts);
        return;
      }
      switch (req_parser.Step(&data, ts)) {
        case Event::kNeedMore:
          return;
        case Event::kHeadDone:
          OnRequestHead();
          if (req_resync) return;
          break;
        case Event::kBodyDone:
          OnRequestDone();
          break;
        case Event::kGarbage:
          if (req_tentative) {
            req_tentative = false;
            Resync(Direction::kRequest);
            return;
          }
          // Not a request (a broken client, a scanner, a smuggled body): if the server
          // answers, that answer is reported against these bytes.
          stats.CountParseError(ParseError::kNotHttp);
          LostRequestHead();
          GarbageResync(Direction::kRequest);
          return;
        case Event::kBadHead:
          stats.CountParseError(ParseError::kBadRequestHead);
          LostRequestHead();
          GarbageResync(Direction::kRequest);
          return;
        case Event::kTooLarge:
          ++stats.head_too_large;
          LostRequestHead();
          GarbageResync(Direction::kRequest);
          return;
        case Event::kBadBody:
          stats.CountParseError(ParseError::kBadChunk);
          SyncRequestBody();
          GarbageResync(Direction::kRequest);
          return;
      }
    }
  }

  // ---- Responses ----

  // The response to the oldest pending request was lost: drop that request so that the
  // next response pairs with the right one.
  void LostResponseHead() {
    if (Pending* f = Front()) {
      if (!f->req.placeholder) ++stats.lost_responses;
      PopFront();
    }
  }

  // The response to the oldest pending request arrived but its head is malformed or too
  // large: the server did answer, so the request is reported (has_response = false) rather
  // than dropped; counted in lost_responses.
  void UnparsedResponseHead(std::vector<Transaction>* out) {
    Pending* f = Front();
    if (f == nullptr) return;
    if (!f->req.placeholder) {
      ++stats.lost_responses;
      if (req_seq == front_seq) SyncRequestBody();  // early response, body still arriving
      Transaction t;
      t.request = std::move(f->req);
      t.has_response = false;
      t.informational_responses = f->informational;
      out->push_back(std::move(t));
    }
    PopFront();
  }

  void CompleteResponse(std::vector<Transaction>* out) {
    switch (owner) {
      case Owner::kOrphan:
        break;
      case Owner::kPlaceholder: {
        // The server answered bytes we could not parse: a transaction all the same, under a
        // fixed method and target (never the raw bytes).
        Pending* f = Front();
        if (f == nullptr) break;
        ++stats.unparsed_requests;
        Transaction t;
        t.request = std::move(f->req);
        t.request.placeholder = false;
        t.request.unparsed = true;
        t.request.method.assign(kUnparsedMethod);
        t.request.target.assign(kUnparsedTarget);
        t.response = std::move(resp);
        t.has_response = true;
        t.informational_responses = f->informational;
        out->push_back(std::move(t));
        PopFront();
        break;
      }
      case Owner::kPair: {
        Pending* f = Front();
        if (f == nullptr) break;
        if (req_seq == front_seq) SyncRequestBody();  // early response, body still arriving
        Transaction t;
        t.request = std::move(f->req);
        t.response = std::move(resp);
        t.has_response = true;
        t.informational_responses = f->informational;
        const bool refused_connect = t.request.method == "CONNECT" && tunnel_wait &&
                                     t.response.status_code / 100 != 2;
        out->push_back(std::move(t));
        PopFront();
        if (refused_connect) EndTunnelWait();
        break;
      }
    }
    resp = Response{};
    owner = Owner::kOrphan;
  }

  void OnResponseHead(std::vector<Transaction>* out) {
    Response& r = resp_parser.response();
    const int code = r.status_code;
    Pending* front = Front();
    if (code >= 100 && code < 200 && code != 101) {
      // Interim response: skipped, counted on the transaction it precedes.
      ++stats.informational;
      if (front != nullptr) {
        ++front->informational;
      } else {
        ++stats.orphan_responses;
      }
      resp_parser.NextMessage();
      return;
    }
    ++stats.responses;
    if (code >= 400 && front != nullptr && req_seq == front_seq &&
        front->req.expect_continue && front->informational == 0 && req_parser.InBody() &&
        req_parser.body_size() == 0) {
      req_body_optional = true;
    }
    resp = std::move(r);
    resp.head_size = resp_parser.head_size();
    resp.first_byte_ts = resp_parser.first_ts();
    resp.last_byte_ts = resp_parser.last_ts();
    resp.body_size = 0;
    resp.body_prefix.clear();
    if (front == nullptr) {
      owner = Owner::kOrphan;
      ++stats.orphan_responses;
    } else {
      owner = front->req.placeholder ? Owner::kPlaceholder : Owner::kPair;
    }
    const std::string_view method = front != nullptr ? front->req.method : std::string_view();
    if (code == 101 || (method == "CONNECT" && code / 100 == 2)) {
      CompleteResponse(out);
      state = ConnState::kUpgraded;
      return;
    }
    // RFC 9112 §6.3.
    const internal::HeadInfo& info = resp_parser.info();
    BodyMode mode = BodyMode::kEof;
    if (method == "HEAD" || code == 204 || code == 304) {
      mode = BodyMode::kNone;
    } else if (info.has_transfer_encoding) {
      mode = info.chunked ? BodyMode::kChunked : BodyMode::kEof;
    } else if (info.has_content_length) {
      mode = BodyMode::kLength;
    }
    resp_parser.StartBody(mode, info.content_length);
    if (owner == Owner::kPair && front != nullptr) resp_parser.KeepBody(front->body_keep);
    if (!resp_parser.InBody()) OnResponseDone(out);
  }

  void OnResponseDone(std::vector<Transaction>* out) {
    resp.body_size = resp_parser.body_size();
    resp.last_byte_ts = resp_parser.last_ts();
    resp.body_prefix = resp_parser.TakeBodyPrefix();
    CompleteResponse(out);
    resp_parser.NextMessage();
  }

  void ProcessResponse(std::string_view data, uint64_t ts, std::vector<Transaction>* out) {
    while (state == ConnState::kActive) {
      switch (resp_parser.Step(&data, ts)) {
        case Event::kNeedMore:
          return;
        case Event::kHeadDone:
          OnResponseHead(out);
          break;
        case Event::kBodyDone:
          OnResponseDone(out);
          break;
        case Event::kGarbage:
          if (resp_tentative) {
            resp_tentative = false;
            Resync(Direction::kResponse);
            return;
          }
          stats.CountParseError(ParseError::kNotHttp);
          state = ConnState::kInvalid;
          return;
        case Event::kBadHead:
          stats.CountParseError(ParseError::kBadResponseHead);
          UnparsedResponseHead(out);
          GarbageResync(Direction::kResponse);
          return;
        case Event::kTooLarge:
          ++stats.head_too_large;
          UnparsedResponseHead(out);
          GarbageResync(Direction::kResponse);
          return;
        case Event::kBadBody:
          // The head was fine: report the transaction with the body seen so far.
          stats.CountParseError(ParseError::kBadChunk);
          OnResponseDone(out);
          GarbageResync(Direction::kResponse);
          return;
      }
    }
  }

  // `n` bytes after the captured data moved on the wire unseen.
  void HandleUncaptured(Direction dir, uint64_t n, uint64_t ts, std::vector<Transaction>* out) {
    const bool is_req = dir == Direction::kRequest;
    MessageParser& p = is_req ? req_parser : resp_parser;
    if ((is_req ? req_resync : resp_resync) || (is_req && tunnel_wait)) return;
    const MessageParser::SkipResult r = p.SkipUncaptured(n, ts);
    if (r.completed) {
      if (is_req) {
        OnRequestDone();
      } else {
        OnResponseDone(out);
      }
    }
    if (state != ConnState::kActive || r.absorbed == n) return;
    ++stats.gaps;
    if (is_req && tunnel_wait) return;
    if (p.AtMessageStart() || p.InHead()) {
      ++stats.truncated_heads;
      if (is_req) {
        if (p.AtMessageStart()) {
          // The whole head is unseen: stamp the placeholder with this chunk's time.
          Request ph;
          ph.placeholder = true;
          ph.first_byte_ts = ph.last_byte_ts = ts;
          Push(std::move(ph));
        } else {
          LostRequestHead();
        }
      } else {
        LostResponseHead();
      }
    } else if (p.InBody()) {
      // Chunk framing lost: the message ends here as far as we can tell.
      if (is_req) {
        SyncRequestBody();
      } else {
        OnResponseDone(out);
      }
    }
    Resync(dir);
  }
};

HttpConnection::HttpConnection(Limits limits) : impl_(std::make_unique<Impl>(limits)) {}
HttpConnection::~HttpConnection() = default;
HttpConnection::HttpConnection(HttpConnection&&) noexcept = default;
HttpConnection& HttpConnection::operator=(HttpConnection&&) noexcept = default;

void HttpConnection::Feed(Direction dir, std::string_view data, uint64_t wire_len,
                          uint64_t ts_ns, std::vector<Transaction>* out) noexcept {
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
  if (!c.req_parser.AtMessageStart() && !c.req_resync) {
    // Something was in progress: it ends here, as at a gap.
    if (c.req_parser.InHead()) {
      c.LostRequestHead();
    } else if (c.req_parser.InBody()) {
      c.SyncRequestBody();
    }
    c.Resync(Direction::kRequest);
  }
  Request ph;
  ph.placeholder = true;
  ph.first_byte_ts = ph.last_byte_ts = ts_ns;
  c.Push(std::move(ph));
}

void HttpConnection::Gap(Direction dir) noexcept {
  if (!impl_) return;
  Impl& c = *impl_;
  ++c.stats.gaps;
  if (c.state != ConnState::kActive) return;
  if (dir == Direction::kRequest) {
    if (c.tunnel_wait) c.tunnel_held_overflow = true;  // held bytes can't be replayed
    if (c.req_resync || c.tunnel_wait) return;
    if (c.req_parser.InHead()) {
      c.LostRequestHead();
    } else if (c.req_parser.InBody()) {
      c.SyncRequestBody();
    }
    c.Resync(dir);
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
    Transaction t;
    t.request = std::move(p.req);
    t.has_response = false;
    t.informational_responses = p.informational;
    out->push_back(std::move(t));
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
  const MessageParser& p =
      dir == Direction::kRequest ? impl_->req_parser : impl_->resp_parser;
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

// SPDX-License-Identifier: Apache-2.0
// Internal to parsers/http: the state of one HttpConnection, shared by connection.cc (the
// public calls, the pending-request queue), connection_requests.cc (the request direction)
// and connection_responses.cc (the response direction and the pairing).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parsers/http/connection.h"
#include "parsers/http/parser.h"

namespace redtap::http {
namespace conn_detail {

using internal::MessageParser;
using Event = MessageParser::Event;
using BodyMode = MessageParser::BodyMode;
using internal::StartVerdict;

inline constexpr uint64_t kNoSeq = UINT64_MAX;

inline size_t HeapBytes(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

inline size_t HeapBytes(const std::vector<Header>& hs) {
  size_t n = hs.capacity() * sizeof(Header);
  for (const Header& h : hs) n += HeapBytes(h.name) + HeapBytes(h.value);
  return n;
}

inline size_t HeapBytes(const Request& r) {
  return HeapBytes(r.method) + HeapBytes(r.target) + HeapBytes(r.headers) +
         HeapBytes(r.body_prefix);
}

inline size_t HeapBytes(const Response& r) {
  return HeapBytes(r.reason) + HeapBytes(r.headers) + HeapBytes(r.body_prefix);
}

inline bool IsUpperAlpha(char c) { return c >= 'A' && c <= 'Z'; }
inline bool IsAlnum(char c) {
  return IsUpperAlpha(c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
using internal::IsDigit;

// After lost sync: does this chunk start a message (kMaybe: too short to tell)?
inline StartVerdict ResyncVerdict(Direction dir, std::string_view d) {
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

}  // namespace conn_detail

// The names the three connection files share (this header is theirs alone).
using conn_detail::HeapBytes;
using conn_detail::IsAlnum;
using conn_detail::IsDigit;
using conn_detail::IsUpperAlpha;
using conn_detail::kNoSeq;
using conn_detail::ResyncVerdict;
using internal::MessageParser;
using internal::StartVerdict;
using Event = internal::MessageParser::Event;
using BodyMode = internal::MessageParser::BodyMode;

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
  bool tunnel_wait = false;  // a CONNECT was sent: request bytes are tunnel data until a
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
  bool req_resync = false;  // skipping chunks until one starts like a message
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
    return PendingCount() > 0 && pending[pending_head].req.http09 && resp_parser.AtMessageStart();
  }
  Pending* Front() { return PendingCount() > 0 ? &pending[pending_head] : nullptr; }
  Pending* BySeq(uint64_t seq);

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

  void PopFront();

  // A placeholder for request bytes seen moving but not parsed, stamped `ts`: it keeps their
  // place in the queue (their answer is reported as unparsed, never mis-paired).
  void PushPlaceholder(uint64_t ts) {
    Request ph;
    ph.placeholder = true;
    ph.first_byte_ts = ph.last_byte_ts = ts;
    Push(std::move(ph));
  }

  // The transaction of the front request, appended to `out` (the caller adds the response
  // and pops the front).
  Transaction& EmitFront(Pending& f, std::vector<Transaction>* out) {
    Transaction& t = out->emplace_back();
    t.request = std::move(f.req);
    t.informational_responses = f.informational;
    return t;
  }

  void FlushDeferred(std::vector<Transaction>* out);

  // Parse errors and oversized heads: resync that direction, up to a limit.
  void GarbageResync(Direction dir);

  void Resync(Direction dir);

  // ---- Requests ----

  // A request head was lost (gap, cut by the capture cap, malformed, too large): keep its
  // place in the queue so that its response is discarded instead of mis-paired.
  void LostRequestHead();

  void SyncRequestBody();

  // What the request direction was in the middle of ends here (a gap, unparsed bytes): the
  // head is lost or the body cut, then the parser looks for the next request.
  void EndRequestInProgress();

  void OnRequestHead();

  void OnRequestDone();

  void HoldTunnelBytes(std::string_view data, uint64_t ts);

  // The CONNECT was refused: what the client sent meanwhile was HTTP after all.
  void EndTunnelWait();

  // After an Expect: 100-continue request was refused: is `data` its body or the next
  // request?
  void DecideSkippedBody(std::string_view data);

  void ProcessRequest(std::string_view data, uint64_t ts);

  // ---- Responses ----

  // The response to the oldest pending request was lost: drop that request so that the
  // next response pairs with the right one.
  void LostResponseHead();

  // The response to the oldest pending request arrived but its head is malformed or too
  // large: the server did answer, so the request is reported (has_response = false) rather
  // than dropped; counted in lost_responses.
  void UnparsedResponseHead(std::vector<Transaction>* out);

  void CompleteResponse(std::vector<Transaction>* out);

  void OnResponseHead(std::vector<Transaction>* out);

  void OnResponseDone(std::vector<Transaction>* out);

  void ProcessResponse(std::string_view data, uint64_t ts, std::vector<Transaction>* out);

  // `n` bytes after the captured data moved on the wire unseen.
  void HandleUncaptured(Direction dir, uint64_t n, uint64_t ts, std::vector<Transaction>* out);
};

}  // namespace redtap::http

// SPDX-License-Identifier: Apache-2.0
// HttpConnection, the request direction: heads, bodies, CONNECT tunnels, lost and unparsed
// heads, Expect: 100-continue refused before the body.
#include <string_view>

#include "parsers/http/connection_impl.h"

namespace redtap::http {

void HttpConnection::Impl::LostRequestHead() { PushPlaceholder(req_parser.first_ts()); }

void HttpConnection::Impl::EndRequestInProgress() {
  if (req_parser.InHead()) {
    LostRequestHead();
  } else if (req_parser.InBody()) {
    SyncRequestBody();
  }
  Resync(Direction::kRequest);
}

void HttpConnection::Impl::SyncRequestBody() {
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

void HttpConnection::Impl::OnRequestHead() {
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

void HttpConnection::Impl::OnRequestDone() {
  SyncRequestBody();
  // After a CONNECT, the client may send tunnel bytes before the response arrives.
  if (req_is_connect && BySeq(req_seq) != nullptr) tunnel_wait = true;
  req_is_connect = false;
  req_seq = kNoSeq;
  req_parser.NextMessage();
}

void HttpConnection::Impl::HoldTunnelBytes(std::string_view data, uint64_t ts) {
  if (data.empty()) return;
  if (tunnel_held.empty()) tunnel_held_ts = ts;
  const size_t room = limits.max_head_bytes - std::min(limits.max_head_bytes, tunnel_held.size());
  if (data.size() > room) tunnel_held_overflow = true;
  tunnel_held.append(data.substr(0, room));
}

void HttpConnection::Impl::EndTunnelWait() {
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

void HttpConnection::Impl::DecideSkippedBody(std::string_view data) {
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

void HttpConnection::Impl::ProcessRequest(std::string_view data, uint64_t ts) {
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

}  // namespace redtap::http

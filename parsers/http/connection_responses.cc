// SPDX-License-Identifier: Apache-2.0
// HttpConnection, the response direction: heads and bodies, pairing with the oldest pending
// request (placeholders become unparsed transactions), interim responses, upgrades, bytes that
// moved unseen.
#include <string_view>

#include "parsers/http/connection_impl.h"

namespace redtap::http {

void HttpConnection::Impl::LostResponseHead() {
  if (Pending* f = Front()) {
    if (!f->req.placeholder) ++stats.lost_responses;
    PopFront();
  }
}

void HttpConnection::Impl::UnparsedResponseHead(std::vector<Transaction>* out) {
  Pending* f = Front();
  if (f == nullptr) return;
  if (!f->req.placeholder) {
    ++stats.lost_responses;
    if (req_seq == front_seq) SyncRequestBody();  // early response, body still arriving
    EmitFront(*f, out);                           // has_response = false
  }
  PopFront();
}

void HttpConnection::Impl::CompleteResponse(std::vector<Transaction>* out) {
  switch (owner) {
    case Owner::kOrphan:
      break;
    case Owner::kPlaceholder: {
      // The server answered bytes we could not parse: a transaction all the same, under a
      // fixed method and target (never the raw bytes).
      Pending* f = Front();
      if (f == nullptr) break;
      ++stats.unparsed_requests;
      Transaction& t = EmitFront(*f, out);
      t.request.placeholder = false;
      t.request.unparsed = true;
      t.request.method.assign(kUnparsedMethod);
      t.request.target.assign(kUnparsedTarget);
      t.response = std::move(resp);
      t.has_response = true;
      PopFront();
      break;
    }
    case Owner::kPair: {
      Pending* f = Front();
      if (f == nullptr) break;
      if (req_seq == front_seq) SyncRequestBody();  // early response, body still arriving
      Transaction& t = EmitFront(*f, out);
      t.response = std::move(resp);
      t.has_response = true;
      const bool refused_connect =
          t.request.method == "CONNECT" && tunnel_wait && t.response.status_code / 100 != 2;
      PopFront();
      if (refused_connect) EndTunnelWait();
      break;
    }
  }
  resp = Response{};
  owner = Owner::kOrphan;
}

void HttpConnection::Impl::OnResponseHead(std::vector<Transaction>* out) {
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
  if (code >= 400 && front != nullptr && req_seq == front_seq && front->req.expect_continue &&
      front->informational == 0 && req_parser.InBody() && req_parser.body_size() == 0) {
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

void HttpConnection::Impl::OnResponseDone(std::vector<Transaction>* out) {
  resp.body_size = resp_parser.body_size();
  resp.last_byte_ts = resp_parser.last_ts();
  resp.body_prefix = resp_parser.TakeBodyPrefix();
  CompleteResponse(out);
  resp_parser.NextMessage();
}

void HttpConnection::Impl::ProcessResponse(std::string_view data, uint64_t ts,
                                           std::vector<Transaction>* out) {
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

void HttpConnection::Impl::HandleUncaptured(Direction dir, uint64_t n, uint64_t ts,
                                            std::vector<Transaction>* out) {
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
        PushPlaceholder(ts);  // the whole head is unseen: this chunk's time
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

}  // namespace redtap::http

// SPDX-License-Identifier: Apache-2.0
// MessageParser: one direction of a byte stream, cut into heads (parsed by head.cc) and body
// framing (Content-Length, chunked, until close).
#include "parsers/http/parser.h"

#include <algorithm>
#include <cstring>

namespace redtap::http::internal {
namespace {

// Index just past the empty line ending a head in p[0, n), scanning LFs from `from`, or npos.
// `*lines` counts the LFs seen (a hint for reserving the header vector).
size_t FindHeadEnd(const char* p, size_t n, size_t from, size_t* lines) {
  size_t i = from;
  while (i < n) {
    const void* hit = std::memchr(p + i, '\n', n - i);
    if (hit == nullptr) return std::string_view::npos;
    i = static_cast<size_t>(static_cast<const char*>(hit) - p);
    ++*lines;
    if (i + 1 < n && p[i + 1] == '\n') return i + 2;
    if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
    ++i;
  }
  return std::string_view::npos;
}

}  // namespace

MessageParser::MessageParser(Kind kind, size_t max_head_bytes, RequestLeniency lenient,
                             bool framing_fields_only) noexcept
    : kind_(kind),
      max_head_bytes_(max_head_bytes),
      lenient_(lenient),
      framing_fields_only_(framing_fields_only) {}

bool MessageParser::InBody() const noexcept {
  return state_ != State::kStart && state_ != State::kHead && state_ != State::kHeadParsed &&
         state_ != State::kDone;
}

StartVerdict MessageParser::CheckStart(std::string_view prefix) const noexcept {
  return kind_ == Kind::kRequest ? CheckRequestStart(prefix) : CheckResponseStart(prefix);
}

void MessageParser::NextMessage() noexcept {
  state_ = State::kStart;
  mode_ = BodyMode::kNone;
  head_buf_.clear();
  // Do not keep a large buffer around on an idle connection.
  if (head_buf_.capacity() > 4096) std::string().swap(head_buf_);
  remaining_ = 0;
  chunk_digits_ = 0;
  framing_bytes_ = 0;
  head_size_ = 0;
  body_size_ = 0;
  body_keep_ = 0;
  body_prefix_.clear();
  if (body_prefix_.capacity() > 4096) std::string().swap(body_prefix_);
}

void MessageParser::KeepBodyBytes(const char* p, size_t n) noexcept {
  if (body_keep_ == 0 || n == 0) return;
  const size_t k = std::min(n, body_keep_);
  body_prefix_.append(p, k);  // bounded by the policy; small
  body_keep_ -= k;
}

void MessageParser::StartBody(BodyMode mode, uint64_t length) noexcept {
  mode_ = mode;
  body_size_ = 0;
  remaining_ = 0;
  switch (mode) {
    case BodyMode::kNone:
      state_ = State::kDone;
      break;
    case BodyMode::kLength:
      remaining_ = length;
      state_ = length == 0 ? State::kDone : State::kLength;
      break;
    case BodyMode::kChunked:
      chunk_digits_ = 0;
      state_ = State::kChunkSize;
      break;
    case BodyMode::kEof:
      state_ = State::kEof;
      break;
  }
}

MessageParser::Event MessageParser::Step(std::string_view* data, uint64_t ts) noexcept {
  switch (state_) {
    case State::kStart: {
      // RFC 9112 §2.2: empty lines before a request-line (and, in practice, a status-line)
      // are ignored.
      size_t i = 0;
      while (i < data->size() && ((*data)[i] == '\r' || (*data)[i] == '\n')) ++i;
      data->remove_prefix(i);
      if (data->empty()) return Event::kNeedMore;
      first_ts_ = ts;
      start_confirmed_ = false;
      state_ = State::kHead;
      return StepHead(data, ts);
    }
    case State::kHead:
      return StepHead(data, ts);
    case State::kHeadParsed:
    case State::kDone:
      return Event::kBodyDone;
    case State::kLength: {
      const uint64_t n = std::min<uint64_t>(remaining_, data->size());
      KeepBodyBytes(data->data(), static_cast<size_t>(n));
      data->remove_prefix(n);
      remaining_ -= n;
      body_size_ += n;
      if (n > 0) last_ts_ = ts;
      if (remaining_ == 0) {
        state_ = State::kDone;
        return Event::kBodyDone;
      }
      return Event::kNeedMore;
    }
    case State::kEof:
      if (!data->empty()) last_ts_ = ts;
      KeepBodyBytes(data->data(), data->size());
      body_size_ += data->size();
      data->remove_prefix(data->size());
      return Event::kNeedMore;
    default:
      return StepChunked(data, ts);
  }
}

MessageParser::Event MessageParser::StepHead(std::string_view* data, uint64_t ts) noexcept {
  if (head_buf_.empty()) {
    // Fast path: the whole head is in this chunk; parse it in place.
    const std::string_view d = *data;
    const size_t limit = std::min(d.size(), max_head_bytes_);
    if (kind_ == Kind::kRequest && lenient_.http09) {
      // An HTTP/0.9 request is its line alone: no empty line ends it.
      const size_t e = Http09HeadEnd(d.substr(0, limit));
      if (e != std::string_view::npos) {
        data->remove_prefix(e);
        return FinishHead(d.substr(0, e), ts, 1);
      }
    }
    size_t lines = 0;
    const size_t end = FindHeadEnd(d.data(), limit, 0, &lines);
    if (end != std::string_view::npos) {
      data->remove_prefix(end);
      return FinishHead(d.substr(0, end), ts, lines);
    }
    if (!start_confirmed_) {
      const StartVerdict v = CheckStart(d);
      if (v == StartVerdict::kNo) return Event::kGarbage;
      start_confirmed_ = v == StartVerdict::kYes;
    }
    if (d.size() >= max_head_bytes_) return Event::kTooLarge;
    head_buf_.reserve(std::min<size_t>(max_head_bytes_, std::max<size_t>(2 * d.size(), 256)));
    head_buf_.assign(d);
    data->remove_prefix(d.size());
    return Event::kNeedMore;
  }
  const size_t old = head_buf_.size();
  const size_t take = std::min(data->size(), max_head_bytes_ - std::min(old, max_head_bytes_));
  head_buf_.append(data->substr(0, take));
  if (kind_ == Kind::kRequest && lenient_.http09) {
    const size_t e = Http09HeadEnd(head_buf_);
    if (e != std::string_view::npos && e > old) {
      data->remove_prefix(e - old);
      head_buf_.resize(e);
      const Event ev = FinishHead(head_buf_, ts, 1);
      head_buf_.clear();
      return ev;
    }
  }
  size_t lines = 0;
  const size_t end =
      FindHeadEnd(head_buf_.data(), head_buf_.size(), old >= 3 ? old - 3 : 0, &lines);
  if (end != std::string_view::npos) {
    data->remove_prefix(end - old);
    head_buf_.resize(end);
    lines = static_cast<size_t>(std::count(head_buf_.begin(), head_buf_.end(), '\n'));
    const Event ev = FinishHead(head_buf_, ts, lines);
    head_buf_.clear();
    return ev;
  }
  if (!start_confirmed_) {
    const StartVerdict v = CheckStart(head_buf_);
    if (v == StartVerdict::kNo) return Event::kGarbage;
    start_confirmed_ = v == StartVerdict::kYes;
  }
  if (head_buf_.size() >= max_head_bytes_) return Event::kTooLarge;
  data->remove_prefix(take);
  return Event::kNeedMore;
}

MessageParser::Event MessageParser::FinishHead(std::string_view head, uint64_t ts,
                                               size_t lines) noexcept {
  // Lines minus the start line and the empty line: the number of header lines.
  const size_t hint = lines > 2 ? lines - 2 : 0;
  const bool ok = kind_ == Kind::kRequest
                      ? ParseRequestHead(head, &request_, &info_, hint, lenient_)
                      : ParseResponseHead(head, &response_, &info_, hint, framing_fields_only_);
  if (!ok) {
    return CheckStart(head) == StartVerdict::kNo ? Event::kGarbage : Event::kBadHead;
  }
  head_size_ = head.size();
  body_size_ = 0;
  last_ts_ = ts;
  state_ = State::kHeadParsed;
  return Event::kHeadDone;
}

// The chunked framing (RFC 9112 §7.1) as one state machine over the bytes: size, extensions,
// data, CRLFs, trailers. Kept whole on purpose (longer than our ~80-line rule): each state
// hands over to the next inside one loop, byte by byte, and split functions would have to
// pass the cursor and the state back and forth.
MessageParser::Event MessageParser::StepChunked(std::string_view* data, uint64_t ts) noexcept {
  const char* p = data->data();
  const char* const end = p + data->size();
  if (p != end) last_ts_ = ts;
  Event ev = Event::kNeedMore;
  while (p != end) {
    const char c = *p;
    switch (state_) {
      case State::kChunkSize: {
        int v = -1;
        if (c >= '0' && c <= '9')
          v = c - '0';
        else if (c >= 'a' && c <= 'f')
          v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
          v = c - 'A' + 10;
        if (v >= 0) {
          // Sizes above 2^63 are hostile (and would overflow); leading zeros are fine.
          if (remaining_ > (uint64_t{1} << 59)) {
            ev = Event::kBadBody;
            goto out;
          }
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++chunk_digits_;
          ++p;
          continue;
        }
        if (chunk_digits_ == 0) {
          ev = Event::kBadBody;
          goto out;
        }
        ++p;
        if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kChunkExt;
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (c == '\n') {
          chunk_digits_ = 0;
          state_ = remaining_ == 0 ? State::kTrailerStart : State::kChunkData;
        } else {
          ev = Event::kBadBody;
          goto out;
        }
        break;
      }
      case State::kChunkExt: {
        const auto u = static_cast<unsigned char>(c);
        ++p;
        if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (c == '\n') {
          chunk_digits_ = 0;
          state_ = remaining_ == 0 ? State::kTrailerStart : State::kChunkData;
        } else if ((u < 0x20 && c != '\t') || u == 0x7f || ++framing_bytes_ > max_head_bytes_) {
          ev = Event::kBadBody;
          goto out;
        }
        break;
      }
      case State::kChunkSizeLf:
        if (c != '\n') {
          ev = Event::kBadBody;
          goto out;
        }
        ++p;
        chunk_digits_ = 0;
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kChunkData;
        break;
      case State::kChunkData: {
        const uint64_t n = std::min<uint64_t>(remaining_, static_cast<uint64_t>(end - p));
        KeepBodyBytes(p, static_cast<size_t>(n));
        p += n;
        remaining_ -= n;
        body_size_ += n;
        if (remaining_ == 0) state_ = State::kChunkDataCr;
        break;
      }
      case State::kChunkDataCr:
        ++p;
        if (c == '\r') {
          state_ = State::kChunkDataLf;
        } else if (c == '\n') {
          state_ = State::kChunkSize;
        } else {
          ev = Event::kBadBody;
          goto out;
        }
        break;
      case State::kChunkDataLf:
        ++p;
        if (c != '\n') {
          ev = Event::kBadBody;
          goto out;
        }
        state_ = State::kChunkSize;
        break;
      case State::kTrailerStart:
        ++p;
        if (c == '\r') {
          state_ = State::kTrailerEndLf;
        } else if (c == '\n') {
          state_ = State::kDone;
          ev = Event::kBodyDone;
          goto out;
        } else if (!IsTokenChar(c) || ++framing_bytes_ > max_head_bytes_) {
          ev = Event::kBadBody;
          goto out;
        } else {
          state_ = State::kTrailerLine;
        }
        break;
      case State::kTrailerLine: {
        const void* lf = std::memchr(p, '\n', static_cast<size_t>(end - p));
        const size_t n = lf ? static_cast<size_t>(static_cast<const char*>(lf) - p) + 1
                            : static_cast<size_t>(end - p);
        framing_bytes_ += n;
        if (framing_bytes_ > max_head_bytes_) {
          ev = Event::kBadBody;
          goto out;
        }
        p += n;
        if (lf) state_ = State::kTrailerStart;
        break;
      }
      case State::kTrailerEndLf:
        ++p;
        if (c != '\n') {
          ev = Event::kBadBody;
          goto out;
        }
        state_ = State::kDone;
        ev = Event::kBodyDone;
        goto out;
      default:
        goto out;
    }
  }
out:
  data->remove_prefix(static_cast<size_t>(p - data->data()));
  return ev;
}

MessageParser::SkipResult MessageParser::SkipUncaptured(uint64_t n, uint64_t ts) noexcept {
  SkipResult r;
  switch (state_) {
    case State::kLength:
      r.absorbed = std::min(n, remaining_);
      remaining_ -= r.absorbed;
      if (remaining_ == 0) {
        state_ = State::kDone;
        r.completed = true;
      }
      break;
    case State::kChunkData:
      r.absorbed = std::min(n, remaining_);
      remaining_ -= r.absorbed;
      if (remaining_ == 0) state_ = State::kChunkDataCr;
      break;
    case State::kEof:
      r.absorbed = n;
      break;
    default:
      return r;
  }
  body_size_ += r.absorbed;
  if (r.absorbed > 0) {
    last_ts_ = ts;
    body_keep_ = 0;  // a hole: the prefix ends at the last captured byte
  }
  return r;
}

}  // namespace redtap::http::internal

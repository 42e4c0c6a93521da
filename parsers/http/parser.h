// SPDX-License-Identifier: Apache-2.0
// MessageParser: one direction of an HTTP/1.x byte stream, parsed incrementally into heads
// and body framing. Internal to parsers/http (HttpConnection drives it); exposed for tests.
//
// Only partial heads are buffered (at most max_head_bytes); body bytes are counted, never
// copied. No exceptions, no allocation beyond the head buffer and the parsed head.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "parsers/http/types.h"

namespace redtap::http::internal {

/// What a head says about the body framing (RFC 9112 §6).
struct HeadInfo {
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool has_transfer_encoding = false;
  bool chunked = false;  // "chunked" is the final transfer coding
  bool expect_continue = false;
  /// Requests only: a Content-Length that is not one valid length (not digits, beyond
  /// 2^63 - 1, differing values). has_content_length stays false: no body is trusted.
  bool invalid_content_length = false;
};

/// Parses a complete head (start line + fields + empty line; CRLF or bare LF line ends).
/// Returns false when the head is malformed. Content-Length values are validated here: an
/// invalid one fails a response head and is flagged in a request's (invalid_content_length).
/// `line_hint`: expected number of header lines (to reserve the vector), 0 if unknown.
/// Opt-in request leniency (see Limits::lenient_request_line / allow_http09). Off = strict.
struct RequestLeniency {
  bool line = false;    // any text between method and " HTTP/1.x"; colon-less header lines skipped
  bool http09 = false;  // "METHOD SP target" without a version: an HTTP/0.9 request
};
bool ParseRequestHead(std::string_view head, Request* req, HeadInfo* info, size_t line_hint = 0,
                      RequestLeniency lenient = {}) noexcept;
/// `framing_fields_only`: resp->headers keeps only Content-Length and Transfer-Encoding
/// (every line is still validated). See Limits::response_fields.
bool ParseResponseHead(std::string_view head, Response* resp, HeadInfo* info, size_t line_hint = 0,
                       bool framing_fields_only = false) noexcept;

/// With RequestLeniency::http09: when the first line of `d` is complete and is an HTTP/0.9
/// request line (not a valid HTTP/1.x one), the index just past its LF; else npos.
size_t Http09HeadEnd(std::string_view d) noexcept;
/// Whether `line` (no line end) is a request line, strict or with `lenient`.
bool IsRequestLine(std::string_view line, RequestLeniency lenient) noexcept;

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
inline constexpr std::array<bool, 256> kTokenTable = MakeTokenTable();

/// RFC 9110 tchar (inline: the head and chunk-extension loops call it per byte).
inline bool IsTokenChar(char c) noexcept { return kTokenTable[static_cast<unsigned char>(c)]; }
inline bool IsDigit(char c) noexcept { return c >= '0' && c <= '9'; }

/// Whether a (possibly short) prefix starts like a message of the given kind.
enum class StartVerdict : uint8_t { kYes, kNo, kMaybe };
StartVerdict CheckRequestStart(std::string_view prefix) noexcept;
StartVerdict CheckResponseStart(std::string_view prefix) noexcept;

class MessageParser {
 public:
  enum class Kind : uint8_t { kRequest, kResponse };

  enum class Event : uint8_t {
    kNeedMore,  // all input consumed, message not finished
    kHeadDone,  // a head was parsed: take it, then call StartBody()
    kBodyDone,  // the message is complete: read body_size()/last_ts(), then NextMessage()
    kGarbage,   // the bytes at a message start are not HTTP
    kBadHead,   // started like HTTP but the head is malformed
    kTooLarge,  // head longer than max_head_bytes
    kBadBody,   // chunked framing error
  };

  enum class BodyMode : uint8_t { kNone, kLength, kChunked, kEof };

  MessageParser(Kind kind, size_t max_head_bytes, RequestLeniency lenient = {},
                bool framing_fields_only = false) noexcept;

  /// Consumes from the front of `*data` until an event; `ts` stamps the consumed bytes.
  Event Step(std::string_view* data, uint64_t ts) noexcept;

  /// After kHeadDone: how the body is delimited. kNone completes the message at once (the
  /// caller treats it as kBodyDone without calling Step).
  void StartBody(BodyMode mode, uint64_t length) noexcept;

  struct SkipResult {
    uint64_t absorbed = 0;   // bytes counted into the body
    bool completed = false;  // the message ended inside the skipped bytes
  };
  /// `n` bytes moved on the wire but were not captured: count what belongs to the body.
  SkipResult SkipUncaptured(uint64_t n, uint64_t ts) noexcept;

  /// Back to "expecting a message start" (after kBodyDone, an error or a resync).
  void NextMessage() noexcept;

  bool AtMessageStart() const noexcept { return state_ == State::kStart; }
  /// In a head whose first bytes were checked to start like a message.
  bool StartConfirmed() const noexcept { return state_ != State::kHead || start_confirmed_; }
  bool InHead() const noexcept { return state_ == State::kHead; }
  bool InBody() const noexcept;
  BodyMode body_mode() const noexcept { return mode_; }

  // The last parsed head (valid after kHeadDone; moved out by the caller).
  Request& request() noexcept { return request_; }
  Response& response() noexcept { return response_; }
  const Request& request() const noexcept { return request_; }
  const Response& response() const noexcept { return response_; }
  const HeadInfo& info() const noexcept { return info_; }

  uint64_t head_size() const noexcept { return head_size_; }
  uint64_t body_size() const noexcept { return body_size_; }
  uint64_t first_ts() const noexcept { return first_ts_; }
  uint64_t last_ts() const noexcept { return last_ts_; }

  /// Keep up to `n` of the next body bytes (after StartBody) in body_prefix(). Bytes that
  /// are not seen (SkipUncaptured) end the prefix. NextMessage() resets it to 0.
  void KeepBody(size_t n) noexcept { body_keep_ = n; }
  const std::string& body_prefix() const noexcept { return body_prefix_; }
  std::string TakeBodyPrefix() noexcept { return std::move(body_prefix_); }

  size_t MemoryBytes() const noexcept { return head_buf_.capacity() + body_prefix_.capacity(); }

 private:
  enum class State : uint8_t {
    kStart,
    kHead,
    kHeadParsed,  // waiting for StartBody()
    kLength,
    kChunkSize,
    kChunkExt,
    kChunkSizeLf,
    kChunkData,
    kChunkDataCr,
    kChunkDataLf,
    kTrailerStart,
    kTrailerLine,
    kTrailerEndLf,
    kEof,
    kDone,
  };

  Event StepHead(std::string_view* data, uint64_t ts) noexcept;
  Event FinishHead(std::string_view head, uint64_t ts, size_t lines) noexcept;
  Event StepChunked(std::string_view* data, uint64_t ts) noexcept;
  StartVerdict CheckStart(std::string_view prefix) const noexcept;
  void KeepBodyBytes(const char* p, size_t n) noexcept;

  Kind kind_;
  State state_ = State::kStart;
  BodyMode mode_ = BodyMode::kNone;
  bool start_confirmed_ = false;
  size_t max_head_bytes_;
  RequestLeniency lenient_;
  bool framing_fields_only_ = false;  // responses: see ParseResponseHead
  std::string head_buf_;              // partial head only
  uint64_t remaining_ = 0;            // kLength: body bytes left; chunked: bytes left in the chunk
  uint32_t chunk_digits_ = 0;
  size_t framing_bytes_ = 0;  // chunk-ext / trailer bytes (bounded by max_head_bytes)
  uint64_t head_size_ = 0;
  uint64_t body_size_ = 0;
  uint64_t first_ts_ = 0;
  uint64_t last_ts_ = 0;
  Request request_;
  Response response_;
  HeadInfo info_;
  size_t body_keep_ = 0;  // body bytes still wanted in body_prefix_
  std::string body_prefix_;
};

}  // namespace redtap::http::internal

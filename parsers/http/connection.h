// SPDX-License-Identifier: Apache-2.0
// HttpConnection: both directions of one TCP connection, parsed incrementally and stitched
// into transactions. Pure: bytes in, transactions out; no clock, no I/O, no exceptions.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "parsers/http/types.h"

namespace redtap::http {

/// Which side of the exchange bytes belong to. The caller maps kernel directions to these
/// by role (server: ingress = kRequest; client: egress = kRequest).
enum class Direction : uint8_t { kRequest = 0, kResponse = 1 };

/// What the connection is doing now.
enum class ConnState : uint8_t {
  kActive,    // parsing HTTP/1.x
  kUpgraded,  // 101 Switching Protocols or a successful CONNECT: stop feeding this connection
  kInvalid,   // not HTTP (garbage where a message start was expected): stop tracking it
};

/// Memory bounds. Every one is enforced; going beyond is counted, never grows memory.
struct Limits {
  size_t max_head_bytes = 32 * 1024;  // a request/response head larger than this is invalid
  size_t max_pending_requests = 64;   // requests waiting for a response (pipelining)
  size_t max_garbage_resyncs = 4;     // lost syncs tolerated before the connection is kInvalid
  /// Which bodies to keep a prefix of (Request/Response::body_prefix). nullptr = none. Not
  /// owned; must outlive the connection.
  const BodyCapturePolicy* body_policy = nullptr;
  /// Opt-in leniency for passive captures (`redtap pcap`; the live agent never sets these).
  /// lenient_request_line: a request line ending in " HTTP/1.x" is accepted whatever lies
  /// between the method and the version (spaces, an extra token, nothing: the target is that
  /// text, trimmed), and header lines without a colon are skipped.
  bool lenient_request_line = false;
  /// allow_http09: "METHOD SP target" with no version is an HTTP/0.9 request
  /// (Request::http09: no headers; what the server sends is not parsed, the transaction is
  /// reported with has_response = false at close).
  bool allow_http09 = false;
  /// false: Response::headers keeps only the framing fields (Content-Length,
  /// Transfer-Encoding); the others are validated, not stored. The live agent exports no
  /// response header and parses every response twice on a host that runs both ends, so it
  /// saves their copies (scripts/bench: ~8 % of its CPU on nginx's 6-field answers).
  bool response_fields = true;
};

/// Why a message could not be parsed as sent (redtap_agent_parse_errors_total{reason}).
enum class ParseError : uint8_t {
  kNotHttp = 0,           // bytes at a message start that are not HTTP/1.x
  kBadRequestHead,        // a malformed request head
  kBadResponseHead,       // a malformed response head
  kInvalidContentLength,  // a request's Content-Length is not one valid length: the server
                          // must answer 400 (RFC 9112 §6.3); no body is trusted and what
                          // follows is parsed as the next request
  kSmugglingSuspect,      // a request framed in a way a server and a proxy may read
                          // differently: Transfer-Encoding with Content-Length, or a final
                          // coding other than chunked
  kBadChunk,              // chunked framing error
  kCount,
};
/// The label value of a reason ("not_http", "bad_request_head", ...).
std::string_view ParseErrorName(ParseError e) noexcept;

/// Counters a connection adds to; the caller aggregates them. Plain integers, monotonic.
struct ConnStats {
  uint64_t requests = 0;      // request heads parsed
  uint64_t responses = 0;     // final response heads parsed
  uint64_t parse_errors = 0;  // sum of parse_error_reasons
  std::array<uint64_t, static_cast<size_t>(ParseError::kCount)> parse_error_reasons{};
  uint64_t gaps = 0;                   // Gap() calls and uncaptured bytes outside a body
  uint64_t truncated_heads = 0;        // head cut by the capture cap (reported as unparsed when
                                       // answered)
  uint64_t orphan_responses = 0;       // response with no request pending (e.g. mid-stream start)
  uint64_t pending_overflow = 0;       // request dropped because max_pending_requests was reached
  uint64_t head_too_large = 0;         // head above max_head_bytes
  uint64_t unparsed_requests = 0;      // answers to requests whose head was not parsed (bytes
                                       // not HTTP, malformed, too large, cut or lost): reported
                                       // as Request::unparsed transactions
  uint64_t lost_responses = 0;         // requests whose response head was lost: dropped (gap,
                                       // capture cap) or, for a malformed or oversized head,
                                       // reported with has_response = false
  uint64_t informational = 0;          // 1xx responses other than 101 (skipped)
  uint64_t expect_skipped_bodies = 0;  // Expect: 100-continue requests answered with a final
                                       // error status whose client sent no body (RFC 9110
                                       // §10.1.1): the next bytes were its next request

  void CountParseError(ParseError e) noexcept {
    ++parse_errors;
    ++parse_error_reasons[static_cast<size_t>(e)];
  }
  /// Adds every counter of `o`.
  void Add(const ConnStats& o) noexcept;
};

class HttpConnection {
 public:
  explicit HttpConnection(Limits limits = {});
  ~HttpConnection();
  HttpConnection(HttpConnection&&) noexcept;
  HttpConnection& operator=(HttpConnection&&) noexcept;

  /// Feeds the bytes one syscall moved in direction `dir`. `data` is what was captured;
  /// `wire_len >= data.size()` is how many bytes really moved: the `wire_len - data.size()`
  /// bytes after `data` were not captured (capture cap, sendfile). Body bytes are counted
  /// without being seen; a head cut by the gap is dropped (truncated_heads) and the
  /// direction resyncs on the next Feed that starts a message. Completed transactions are
  /// appended to `out` in request order.
  void Feed(Direction dir, std::string_view data, uint64_t wire_len, uint64_t ts_ns,
            std::vector<Transaction>* out) noexcept;

  /// `len` request bytes moved at `ts` that the capture did not keep: bytes that are not HTTP
  /// (`not_http`: counted as a parse error), or bytes it never saw. The next response answers
  /// them, and is reported as an unparsed transaction starting at `ts`.
  void FeedUnparsed(uint64_t len, uint64_t ts_ns, bool not_http,
                    std::vector<Transaction>* out) noexcept;

  /// An unknown number of bytes was lost in `dir` (kernel drop): abandon the message in
  /// progress in that direction and resync on the next message start.
  void Gap(Direction dir) noexcept;

  /// The connection closed (or reached EOF) at `ts_ns`: a response whose head was parsed is
  /// completed with the body seen so far (delimited by close, or a Content-Length / chunked
  /// body cut short; its last_byte_ts is that of its last data), then every request still
  /// pending is emitted with has_response = false.
  void Close(uint64_t ts_ns, std::vector<Transaction>* out) noexcept;

  ConnState state() const noexcept;
  const ConnStats& stats() const noexcept;
  /// Bytes held by this connection (buffered partial heads, pending requests): for the
  /// caller's global memory bound.
  size_t MemoryBytes() const noexcept;
  /// True when direction `dir` is between messages (no partial head or body in progress).
  bool Idle(Direction dir) const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when `data` starts like an HTTP/1.x request line ("GET /", "POST /", any token
/// method followed by SP and a target) or a status line ("HTTP/1.").
bool LooksLikeRequestStart(std::string_view data) noexcept;
bool LooksLikeResponseStart(std::string_view data) noexcept;
/// True when `data` starts with a complete request line that the parser accepts with
/// Limits::lenient_request_line and allow_http09 ("GET /x" + LF, "GET  HTTP/1.1",
/// "GET /a b HTTP/1.1"), its method 3..32 token chars starting with an upper-case letter.
/// For callers that opted into that leniency (pcap mode); the live agent does not use it.
bool LooksLikeLenientRequestStart(std::string_view data) noexcept;

}  // namespace redtap::http

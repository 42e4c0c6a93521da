// SPDX-License-Identifier: Apache-2.0
// Decoded HTTP/1.x messages and transactions: the one type every sink consumes,
// whatever the source (eBPF capture or pcap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace redtap::http {

struct Header {
  std::string name;   // as on the wire (case preserved)
  std::string value;  // leading/trailing whitespace trimmed
};

/// A request head plus what is known of its body.
struct Request {
  std::string method;     // "GET", "POST", ... ("" for a placeholder, see `placeholder`)
  std::string target;     // request-target as sent: "/a/b?x=1", "*", "host:443", "http://h/p"
  int version_minor = 1;  // HTTP/1.<minor>
  std::vector<Header> headers;
  uint64_t head_size = 0;      // bytes of the request line + headers + empty line
  uint64_t body_size = 0;      // body bytes on the wire (chunked: decoded payload bytes)
  uint64_t first_byte_ts = 0;  // ns, timestamp of the chunk holding the first byte
  uint64_t last_byte_ts = 0;   // ns, timestamp of the chunk holding the last byte
  bool expect_continue = false;
  /// A request whose head was not seen or could not be parsed (bytes that are not HTTP, a
  /// malformed or oversized head, a head lost to a capture gap). Internal to the parser:
  /// it never reaches a sink as such. When the server answers it, the transaction carries
  /// `unparsed` instead.
  bool placeholder = false;
  /// The server answered bytes that were not a parsable request: method is kUnparsedMethod,
  /// target kUnparsedTarget (never the raw bytes), first_byte_ts the first unparsed byte.
  bool unparsed = false;
  bool http09 = false;  // an HTTP/0.9 request line (only with Limits::allow_http09)
  /// First body bytes (chunked: decoded), kept only when the connection's BodyCapturePolicy
  /// asked for them (empty by default). Stops at the first byte that was not captured.
  std::string body_prefix;

  /// First header named `name` (case-insensitive), or empty.
  std::string_view Find(std::string_view name) const;
};

/// The method and target of an `unparsed` request: "_OTHER" is OpenTelemetry's value for a
/// method it does not know; the target doubles as the route of every such request.
inline constexpr std::string_view kUnparsedMethod = "_OTHER";
inline constexpr std::string_view kUnparsedTarget = "/*unparsed";

struct Response {
  int status_code = 0;
  std::string reason;
  int version_minor = 1;
  std::vector<Header> headers;
  uint64_t head_size = 0;
  uint64_t body_size = 0;
  uint64_t first_byte_ts = 0;
  uint64_t last_byte_ts = 0;
  /// First body bytes, kept when the request's BodyCapturePolicy asked for them (see Request).
  std::string body_prefix;

  std::string_view Find(std::string_view name) const;
};

/// One request and its final response (informational 1xx responses other than 101 are
/// skipped; their count is kept). Every final response a server sends is one transaction:
/// when its request could not be parsed, the request is `unparsed`. `has_response` is false
/// when the connection closed before a response head arrived (a failure), or the response
/// head was malformed. A response whose body the close cut short is reported (body_size =
/// what was seen).
struct Transaction {
  Request request;
  Response response;
  bool has_response = false;
  uint32_t informational_responses = 0;  // e.g. one "100 Continue"
  /// Duration: request first byte -> response last byte (ns). 0 without response.
  uint64_t DurationNs() const {
    return has_response && response.last_byte_ts >= request.first_byte_ts
               ? response.last_byte_ts - request.first_byte_ts
               : 0;
  }
};

/// Decides, when a request head has been parsed, how many of its body bytes (and of its
/// response's body) to keep in body_prefix. Called on the parsing thread; must be cheap and
/// must not throw. Without a policy no body byte is ever kept.
class BodyCapturePolicy {
 public:
  virtual ~BodyCapturePolicy() = default;
  virtual size_t BodyBytesToKeep(const Request& head) const noexcept = 0;
};

/// The host a request names: the Host header, else the authority of an absolute-form target,
/// without port or IPv6 brackets ("api.stripe.com", "::1"). Empty when there is none or it
/// is not a plausible host name (only letters, digits, '.', '-', '_', ':' are accepted).
std::string_view RequestHost(const Request& r) noexcept;

}  // namespace redtap::http

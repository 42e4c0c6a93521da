// SPDX-License-Identifier: Apache-2.0
// Redaction of URL paths and queries before anything leaves the agent: secret-looking query
// parameter values and card-like numbers. Pure, linear-time, no regex.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parsers/http/types.h"
#include "userspace/config/config.h"

namespace redtap::exporter {

/// Masks secrets in URL paths and queries. Immutable after construction: safe to share
/// between threads.
class Redactor {
 public:
  /// The literal that replaces a masked query value.
  static constexpr std::string_view kRedacted = "REDACTED";

  explicit Redactor(const config::RedactionConfig& config);

  /// `query` is the part after '?' (without it). Replaces the value of every parameter whose
  /// name, percent-decoded ('+' = space), contains one of the configured substrings
  /// (case-insensitive) with REDACTED, then masks card numbers like RedactPath.
  /// "password=hunter2&x=1" -> "password=REDACTED&x=1".
  std::string RedactQuery(std::string_view query) const;

  /// Masks card-like numbers: runs of 13..19 digits (single spaces, dashes, '+', "%20" or
  /// "%2D" allowed between digits) that pass the Luhn check become "****" + their last four
  /// digits. "/cards/4111111111111111/x" -> "/cards/****1111/x". A path segment holding an
  /// e-mail address (plain or %40) becomes "{email}": "/users/a@b.io/x" -> "/users/{email}/x".
  std::string RedactPath(std::string_view path) const;

  /// A header value or a value read from a body, before it is exported: card numbers
  /// masked. Values of never-exported headers (IsNeverExportedHeader) must not get here.
  std::string RedactValue(std::string_view value) const;

  /// True when a name (query parameter, JSON key) is secret: it contains one of the
  /// configured redaction.query_keys, or is one of the built-in secrets (cvv, cvc, pin,
  /// password, token, secret, api_key), case-insensitively.
  bool IsSecretName(std::string_view name) const;

 private:
  bool IsSecretKey(std::string_view raw_key) const;

  std::vector<std::string> keys_;  // lowercased, non-empty
};

/// The card masking of RedactPath, as a free function (used for any URL-ish text).
std::string MaskCardNumbers(std::string_view text);

/// True when `text` holds a card-like number MaskCardNumbers would mask. Cheap when `text`
/// has fewer than 13 digits (no allocation).
bool HasCardNumber(std::string_view text);

/// Headers whose values are never exported, whatever the sink: Authorization,
/// Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key (case-insensitive).
bool IsNeverExportedHeader(std::string_view name);

/// True when a request header that an exporter may emit (not IsNeverExportedHeader) holds
/// a card number. Cheap: no allocation unless a value has 13 digits or more.
bool HeadersNeedRedaction(const http::Request& r);

/// Masks card numbers in every header value of `r` and blanks the values of never-exported
/// headers. Returns true when anything changed.
bool RedactRequestHeaders(http::Request* r);

/// True when `digits` (ASCII digits only) passes the Luhn checksum.
bool LuhnValid(std::string_view digits);

}  // namespace redtap::exporter

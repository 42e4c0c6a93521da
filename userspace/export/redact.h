// SPDX-License-Identifier: Apache-2.0
// Redaction of URL paths and queries before anything leaves the agent: secret-looking query
// parameter values and card-like numbers. Pure, linear-time, no regex.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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
  /// digits. "/cards/4111111111111111/x" -> "/cards/****1111/x".
  std::string RedactPath(std::string_view path) const;

 private:
  bool IsSecretKey(std::string_view raw_key) const;

  std::vector<std::string> keys_;  // lowercased, non-empty
};

/// The card masking of RedactPath, as a free function (used for any URL-ish text).
std::string MaskCardNumbers(std::string_view text);

/// True when `digits` (ASCII digits only) passes the Luhn checksum.
bool LuhnValid(std::string_view digits);

}  // namespace redtap::exporter

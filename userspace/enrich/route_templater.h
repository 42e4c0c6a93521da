// SPDX-License-Identifier: Apache-2.0
// http.route from a request target: configured patterns first, then automatic templating of
// identifier-like path segments (see README.md for the heuristic and its examples). Pure and
// immutable after construction: safe to share between threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "userspace/config/config.h"

namespace redtap::enrich {

/// What a path segment looks like to the automatic templating.
enum class SegmentClass {
  kLiteral,  // kept as is
  kId,       // {id}: a decimal number, or a long digit run
  kUuid,     // {uuid}
  kHex,      // {hex}: a long hexadecimal string
  kToken,    // {token}: a random-looking base64/base64url string
  kDate,     // {date}: 2024-01-31, 2024-01-31T10:00:00Z
  kEmail,    // {email}
  kCard,     // {card}: 13..19 digits passing the Luhn check
};

/// The placeholder of a class ("{id}"...), "" for kLiteral.
std::string_view Placeholder(SegmentClass c) noexcept;

/// Classifies one raw (percent-encoded) path segment. With `auto_template` false only the
/// privacy classes ({card}, {email}, long digit runs as {id}) are detected.
SegmentClass ClassifySegment(std::string_view segment, bool auto_template = true) noexcept;

class RouteTemplater {
 public:
  /// Longest route kept; a longer one is cut at a segment boundary and ends with "/*".
  static constexpr size_t kMaxRouteBytes = 256;
  /// Segments kept; the rest becomes "/*".
  static constexpr size_t kMaxSegments = 32;

  /// `config.patterns` must be valid (the config loader checks them); an invalid one is
  /// ignored.
  explicit RouteTemplater(const config::RoutesConfig& config);

  /// The route of `target` (a request-target: origin-form "/a/b?q", absolute-form
  /// "http://h/a", "*", or authority-form "host:443") for `service`. Writes into `out`
  /// (reusing its capacity). Never throws; the result is printable ASCII and holds no card
  /// number or e-mail address.
  void Template(std::string_view service, std::string_view target, std::string* out) const noexcept;
  std::string Template(std::string_view service, std::string_view target) const;

 private:
  struct Pattern {
    std::string service;                // "" = every service
    std::string text;                   // the pattern, which is the route it yields
    std::vector<std::string> segments;  // literal, or "" for a {param}
    std::vector<bool> is_param;
    bool catch_all = false;  // last segment was '*' or {name...}
  };
  static bool Matches(const Pattern& p, const std::string_view* segs, size_t n) noexcept;

  std::vector<Pattern> patterns_;  // service-specific first, then global; config order
  bool auto_template_;
};

}  // namespace redtap::enrich

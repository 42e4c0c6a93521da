// SPDX-License-Identifier: Apache-2.0
// Internal to the config loader (config.cc, ecommerce_config.cc): strict parsers of YAML values
// and maps. Every problem throws a KeyError naming the full dotted key; LoadConfigString turns
// it (and yaml-cpp's own exceptions) into a Result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace redtap::config::detail {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
// A kernel comm name is at most 15 characters (TASK_COMM_LEN 16 with the NUL).
constexpr size_t kMaxCommLength = 15;

/// A config error: `key` is the full dotted key ("" for the whole document).
class KeyError : public std::runtime_error {
 public:
  KeyError(std::string key, const std::string& what)
      : std::runtime_error(what), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

/// Throws KeyError(key, what).
[[noreturn]] void Fail(const std::string& key, const std::string& what);

/// "prefix.name", or "name" at the top level.
std::string Join(const std::string& prefix, std::string_view name);

/// Short description of a node for "(got ...)": numbers as is, other scalars quoted.
std::string Describe(const YAML::Node& node);

using FieldParser = std::function<void(const YAML::Node&, const std::string& key)>;
using Fields = std::vector<std::pair<std::string_view, FieldParser>>;

/// Walks a map node, dispatching every key to its parser; unknown and duplicate keys fail.
/// A null node (a section with no keys, or only comments) leaves the defaults.
void ParseMap(const YAML::Node& node, const std::string& prefix, const Fields& fields);

/// A list; `~`/empty means an empty list. Calls `item` with each element and its key.
void ForEachItem(const YAML::Node& node, const std::string& key, const std::string& what,
                 const std::function<void(const YAML::Node&, const std::string&)>& item);

/// An unsigned integer rule: [min, max], optionally a power of two.
struct UintRule {
  uint64_t min;
  uint64_t max;
  bool power_of_two = false;
  const char* suffix = "";  // appended to the bounds, e.g. " (1 MiB .. 1 GiB)"

  std::string Text() const {
    return std::string("must be ") + (power_of_two ? "a power of two" : "an integer") +
           " between " + std::to_string(min) + " and " + std::to_string(max) + suffix;
  }
};

/// A plain (unquoted) decimal integer that satisfies `rule`.
uint64_t ParseUint(const YAML::Node& node, const std::string& key, const UintRule& rule);

/// Stores ParseUint(node, key, rule) into `field`, which must outlive the parser.
FieldParser Uint32Field(uint32_t& field, UintRule rule);

/// A scalar; `~`/empty is "".
std::string ParseString(const YAML::Node& node, const std::string& key);

/// true or false, unquoted.
bool ParseBool(const YAML::Node& node, const std::string& key);

/// Stores ParseBool(node, key) into `field`, which must outlive the parser.
FieldParser BoolField(bool& field);

/// A Prometheus-style duration ("250ms", "15s", "1h30m"; units ms s m h d w) between min_ms
/// and max_ms; "0" when min_ms is 0. In milliseconds.
uint64_t ParseDurationMs(const YAML::Node& node, const std::string& key, uint64_t min_ms,
                         uint64_t max_ms);

/// A plain (unquoted) finite decimal number: 3, 0.005, 1e-3. `rule` is the error text.
double ParseNumber(const YAML::Node& node, const std::string& key, const std::string& rule);

/// A histogram bucket list: 1..64 finite numbers >= `min`, strictly increasing.
void ParseBuckets(const YAML::Node& node, const std::string& key, double min, const char* unit,
                  std::vector<double>& out);

/// A service name: 1..64 bytes, no control characters (it becomes a label value).
std::string ParseName(const YAML::Node& node, const std::string& key);

/// A label value configured by the user (gateway, pool, channel...): 1..64 of [A-Za-z0-9_.-].
std::string ParseLabelName(const YAML::Node& node, const std::string& key);

/// An HTTP method: upper-case letters, '-' and '_', 1..32 ("GET", "POST").
std::string ParseMethod(const YAML::Node& node, const std::string& key);

/// A letter, digit, '.', '-' or '_'.
bool IsHostChar(char c);

/// HOST:PORT, IPv6 hosts in brackets ([::1]:9464).
void ValidateListen(const std::string& s, const std::string& key);

/// Route pattern syntax: "/seg/{name}/seg", optionally ending with "/*" or "/{name...}".
/// Returns "" when valid, else why not.
std::string PatternProblem(std::string_view p);

/// A route pattern (PatternProblem's syntax).
std::string ParseRoutePattern(const YAML::Node& node, const std::string& key);

}  // namespace redtap::config::detail

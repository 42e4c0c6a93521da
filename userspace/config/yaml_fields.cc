// SPDX-License-Identifier: Apache-2.0
// Strict parsers of YAML values and maps for the config loader (see yaml_fields.h).
#include "userspace/config/yaml_fields.h"

#include "userspace/config/alerts.h"  // FormatDuration

#include <charconv>
#include <cmath>
#include <set>

namespace redtap::config::detail {
namespace {

bool IsPlainUnsigned(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool IsIpv6Char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

bool IsPatternNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

constexpr size_t kMaxBuckets = 64;

}  // namespace

[[noreturn]] void Fail(const std::string& key, const std::string& what) {
  throw KeyError(key, what);
}

std::string Join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& s = node.Scalar();
  std::string_view digits = s;
  if (!digits.empty() && digits[0] == '-') digits.remove_prefix(1);
  if (node.Tag() != "!" && IsPlainUnsigned(digits)) return s;
  double number = 0;
  if (node.Tag() != "!" && !s.empty()) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), number);
    if (ec == std::errc() && end == s.data() + s.size() && std::isfinite(number)) return s;
  }
  std::string out = "\"";
  for (char c : s.substr(0, 80)) {
    out += (c == '"' || c == '\\') ? std::string{'\\', c} : std::string{c};
  }
  if (s.size() > 80) out += "...";
  return out + "\"";
}

void ParseMap(const YAML::Node& node, const std::string& prefix, const Fields& fields) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    Fail(prefix, "must be a map of keys (got " + Describe(node) + ")");
  }
  std::set<std::string, std::less<>> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      Fail(prefix, "keys must be plain names (got " + Describe(kv.first) + ")");
    }
    const std::string& name = kv.first.Scalar();
    const std::string key = Join(prefix, name);
    const FieldParser* parser = nullptr;
    for (const auto& [field, p] : fields) {
      if (field == name) parser = &p;
    }
    if (parser == nullptr) {
      std::string known;
      for (const auto& f : fields) known += (known.empty() ? "" : ", ") + std::string(f.first);
      Fail(key, "unknown key (known keys" + (prefix.empty() ? "" : " of " + prefix) + ": " + known +
                    ")");
    }
    if (!seen.insert(name).second) Fail(key, "duplicate key");
    (*parser)(kv.second, key);
  }
}

void ForEachItem(const YAML::Node& node, const std::string& key, const std::string& what,
                 const std::function<void(const YAML::Node&, const std::string&)>& item) {
  if (node.IsNull()) return;
  if (!node.IsSequence()) Fail(key, "must be " + what + " (got " + Describe(node) + ")");
  size_t i = 0;
  for (const auto& element : node) {
    item(element, key + "[" + std::to_string(i++) + "]");
  }
}

uint64_t ParseUint(const YAML::Node& node, const std::string& key, const UintRule& rule) {
  const auto fail = [&] { Fail(key, rule.Text() + " (got " + Describe(node) + ")"); };
  // Quoted scalars ("4096") are strings in YAML: a type error, like a list or a map.
  if (!node.IsScalar() || node.Tag() == "!") fail();
  const std::string& s = node.Scalar();
  if (!IsPlainUnsigned(s)) fail();
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) fail();
  if (v < rule.min || v > rule.max) fail();
  if (rule.power_of_two && (v & (v - 1)) != 0) fail();
  return v;
}

FieldParser Uint32Field(uint32_t& field, UintRule rule) {
  return [&field, rule](const YAML::Node& node, const std::string& key) {
    field = static_cast<uint32_t>(ParseUint(node, key, rule));
  };
}

std::string ParseString(const YAML::Node& node, const std::string& key) {
  if (node.IsNull()) return "";
  if (!node.IsScalar()) Fail(key, "must be a string (got " + Describe(node) + ")");
  return node.Scalar();
}

bool ParseBool(const YAML::Node& node, const std::string& key) {
  if (node.IsScalar() && node.Tag() != "!") {
    if (node.Scalar() == "true") return true;
    if (node.Scalar() == "false") return false;
  }
  Fail(key, "must be true or false (got " + Describe(node) + ")");
}

FieldParser BoolField(bool& field) {
  return [&field](const YAML::Node& node, const std::string& key) { field = ParseBool(node, key); };
}

double ParseNumber(const YAML::Node& node, const std::string& key, const std::string& rule) {
  const auto fail = [&] { Fail(key, rule + " (got " + Describe(node) + ")"); };
  if (!node.IsScalar() || node.Tag() == "!") fail();
  const std::string& s = node.Scalar();
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) fail();
  return v;
}

void ParseBuckets(const YAML::Node& node, const std::string& key, double min, const char* unit,
                  std::vector<double>& out) {
  const std::string what = std::string("a list of 1 to 64 increasing numbers (") + unit + ")";
  if (!node.IsSequence() || node.size() == 0 || node.size() > kMaxBuckets) {
    Fail(key, "must be " + what + " (got " +
                  (node.IsSequence() ? std::to_string(node.size()) + " items" : Describe(node)) +
                  ")");
  }
  std::vector<double> buckets;
  ForEachItem(node, key, what, [&](const YAML::Node& n, const std::string& k) {
    const std::string rule =
        std::string("must be a number ") + (min > 0 ? "> 0" : ">= 0") + " (" + unit + ")";
    const double v = ParseNumber(n, k, rule);
    if (v < min || (min > 0 && v == 0)) Fail(k, rule + " (got " + Describe(n) + ")");
    if (!buckets.empty() && v <= buckets.back()) {
      Fail(k, "must be greater than the previous bucket (got " + Describe(n) + ")");
    }
    buckets.push_back(v);
  });
  out = std::move(buckets);
}

std::string ParseName(const YAML::Node& node, const std::string& key) {
  const auto fail = [&] {
    Fail(key, "must be a name of 1 to 64 characters, no control characters (got " + Describe(node) +
                  ")");
  };
  if (!node.IsScalar() || node.Scalar().empty() || node.Scalar().size() > 64) fail();
  for (unsigned char c : node.Scalar()) {
    if (c < 0x20 || c == 0x7f) fail();
  }
  return node.Scalar();
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

void ValidateListen(const std::string& s, const std::string& key) {
  const auto fail = [&](const std::string& why) {
    Fail(key,
         "must be HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464" + why + " (got \"" + s + "\")");
  };
  std::string_view host;
  std::string_view port;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos) fail(": missing ']'");
    host = std::string_view(s).substr(1, close - 1);
    if (host.empty()) fail(": empty host");
    // An optional zone (fe80::1%eth0) is allowed after the address.
    const size_t zone = host.find('%');
    for (char c : host.substr(0, zone)) {
      if (!IsIpv6Char(c)) fail(": invalid IPv6 address");
    }
    if (zone != std::string_view::npos) {
      for (char c : host.substr(zone + 1)) {
        if (!IsHostChar(c)) fail(": invalid IPv6 zone");
      }
    }
    if (close + 1 >= s.size() || s[close + 1] != ':') fail(": missing :PORT");
    port = std::string_view(s).substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos) fail(": missing :PORT");
    host = std::string_view(s).substr(0, colon);
    port = std::string_view(s).substr(colon + 1);
    if (host.empty()) fail(": empty host (use 0.0.0.0 for every interface)");
    if (host.find(':') != std::string_view::npos) fail(": IPv6 hosts need brackets");
    for (char c : host) {
      if (!IsHostChar(c)) fail(": invalid host");
    }
  }
  uint64_t p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (!IsPlainUnsigned(port) || ec != std::errc() || end != port.data() + port.size() || p < 1 ||
      p > 65535) {
    fail(": port must be 1..65535");
  }
}

std::string PatternProblem(std::string_view p) {
  if (p.empty() || p[0] != '/') return "must start with '/'";
  if (p.size() > 256) return "must be at most 256 characters";
  for (unsigned char c : p) {
    if (c <= 0x20 || c >= 0x7f) return "must be printable ASCII without spaces";
    if (c == '?' || c == '#') return "must not contain a query or fragment";
  }
  size_t pos = 1;
  while (pos <= p.size()) {
    size_t end = p.find('/', pos);
    if (end == std::string_view::npos) end = p.size();
    const std::string_view seg = p.substr(pos, end - pos);
    const bool last = end == p.size();
    const bool braces = seg.find_first_of("{}") != std::string_view::npos;
    if (seg == "*" || (braces && seg.size() > 5 && seg.substr(seg.size() - 4) == "...}")) {
      if (!last) return "a catch-all ('*' or '{name...}') must be the last segment";
      if (seg != "*") {
        const std::string_view name = seg.substr(1, seg.size() - 5);
        if (seg[0] != '{' || name.empty()) return "invalid catch-all segment";
        for (size_t i = 0; i < name.size(); ++i) {
          if (!IsPatternNameChar(name[i], i == 0)) return "invalid parameter name";
        }
      }
    } else if (braces) {
      if (seg.size() < 3 || seg.front() != '{' || seg.back() != '}') {
        return "a parameter must be a whole segment, like {id}";
      }
      const std::string_view name = seg.substr(1, seg.size() - 2);
      for (size_t i = 0; i < name.size(); ++i) {
        if (!IsPatternNameChar(name[i], i == 0)) return "invalid parameter name";
      }
    } else if (seg.find('*') != std::string_view::npos) {
      return "'*' must be a whole last segment";
    }
    pos = end + 1;
  }
  return "";
}

std::string ParseRoutePattern(const YAML::Node& node, const std::string& key) {
  const std::string why = node.IsScalar() ? PatternProblem(node.Scalar()) : "must be a string";
  if (!why.empty()) {
    Fail(key, "must be a route like /api/orders/{id} (" + why + ") (got " + Describe(node) + ")");
  }
  return node.Scalar();
}

/// A label value configured by the user: 1..64 of [A-Za-z0-9_.-].
std::string ParseLabelName(const YAML::Node& node, const std::string& key) {
  const auto fail = [&] {
    Fail(key,
         "must be a name of 1 to 64 letters, digits, '_', '.' or '-' (got " + Describe(node) + ")");
  };
  if (!node.IsScalar() || node.Scalar().empty() || node.Scalar().size() > 64) fail();
  for (char c : node.Scalar()) {
    if (!IsHostChar(c)) fail();
  }
  return node.Scalar();
}

std::string ParseMethod(const YAML::Node& node, const std::string& key) {
  const auto fail = [&] {
    Fail(key, "must be an upper-case HTTP method such as GET or POST (got " + Describe(node) + ")");
  };
  if (!node.IsScalar() || node.Scalar().empty() || node.Scalar().size() > 32) fail();
  for (char c : node.Scalar()) {
    if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_')) fail();
  }
  return node.Scalar();
}

/// Prometheus-style duration: one or more <integer><unit>, units ms s m h d w ("1h30m").
uint64_t ParseDurationMs(const YAML::Node& node, const std::string& key, uint64_t min_ms,
                         uint64_t max_ms) {
  const auto fail = [&] {
    Fail(key, "must be a duration such as 250ms, 15s, 5m, 1h or 1h30m, between " +
                  FormatDuration(min_ms) + " and " + FormatDuration(max_ms) + " (got " +
                  Describe(node) + ")");
  };
  if (!node.IsScalar()) fail();
  const std::string& s = node.Scalar();
  if (s == "0" && min_ms == 0) return 0;
  uint64_t total = 0;
  size_t i = 0;
  if (s.empty()) fail();
  while (i < s.size()) {
    uint64_t n = 0;
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      n = n * 10 + static_cast<uint64_t>(s[i] - '0');
      if (n > 1'000'000'000ull) fail();
      i++;
    }
    if (i == start) fail();
    uint64_t unit = 0;
    if (s.compare(i, 2, "ms") == 0) {
      unit = 1;
      i += 2;
    } else if (i < s.size()) {
      switch (s[i]) {
        case 's':
          unit = 1000;
          break;
        case 'm':
          unit = 60000;
          break;
        case 'h':
          unit = 3600000;
          break;
        case 'd':
          unit = 86400000;
          break;
        case 'w':
          unit = 7 * 86400000ull;
          break;
        default:
          fail();
      }
      i++;
    } else {
      fail();
    }
    total += n * unit;
  }
  if (total < min_ms || total > max_ms) fail();
  return total;
}

}  // namespace redtap::config::detail

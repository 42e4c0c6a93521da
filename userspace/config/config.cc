// SPDX-License-Identifier: Apache-2.0
// YAML config loader: strict (unknown keys, wrong types and out-of-range values are errors that
// name the dotted key), parsed on top of the struct defaults. yaml-cpp throws; this file uses
// exceptions internally and turns every one into a Result at the public boundary.
#include "userspace/config/config.h"
#include "redtap_abi.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace redtap::config {

// Defined in the generated redtap_yaml_text.cc (see CMakeLists.txt).
extern const char kEmbeddedConfigYaml[];

namespace {

/// A config error: `key` is the full dotted key ("" for the whole document).
class KeyError : public std::runtime_error {
 public:
  KeyError(std::string key, const std::string& what)
      : std::runtime_error(what), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

[[noreturn]] void Fail(const std::string& key, const std::string& what) {
  throw KeyError(key, what);
}

std::string Join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

bool IsPlainUnsigned(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

/// Short description of a node for "(got ...)": numbers as is, other scalars quoted.
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

std::string ParseString(const YAML::Node& node, const std::string& key) {
  if (node.IsNull()) return "";
  if (!node.IsScalar()) Fail(key, "must be a string (got " + Describe(node) + ")");
  return node.Scalar();
}

/// A list; `~`/empty means an empty list. Calls `item` with each element and its key.
void ForEachItem(const YAML::Node& node, const std::string& key, const std::string& what,
                 const std::function<void(const YAML::Node&, const std::string&)>& item) {
  if (node.IsNull()) return;
  if (!node.IsSequence()) Fail(key, "must be " + what + " (got " + Describe(node) + ")");
  size_t i = 0;
  for (const auto& element : node) {
    item(element, key + "[" + std::to_string(i++) + "]");
  }
}

using FieldParser = std::function<void(const YAML::Node&, const std::string& key)>;
using Fields = std::vector<std::pair<std::string_view, FieldParser>>;

/// Walks a map node, dispatching every key to its parser; unknown and duplicate keys fail.
/// A null node (a section with no keys, or only comments) leaves the defaults.
void ParseMap(const YAML::Node& node, const std::string& prefix, const Fields& fields) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    Fail(prefix, "must be a map of keys (got " + Describe(node) + ")");
  }
  std::set<std::string, std::less<>> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar())
      Fail(prefix, "keys must be plain names (got " + Describe(kv.first) + ")");
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

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool IsIpv6Char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.';
}

/// HOST:PORT, IPv6 hosts in brackets ([::1]:9464).
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

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
// A kernel comm name is at most 15 characters (TASK_COMM_LEN 16 with the NUL).
constexpr size_t kMaxCommLength = 15;

bool ParseBool(const YAML::Node& node, const std::string& key);

void ParseCapture(const YAML::Node& node, const std::string& prefix, CaptureConfig& c) {
  bool wakeup_set = false;
  ParseMap(node, prefix,
           {
               {"max_bytes_per_call",
                [&](const YAML::Node& n, const std::string& k) {
                  c.max_bytes_per_call = static_cast<uint32_t>(ParseUint(n, k, {64, REDTAP_MAX_CAPTURE, true}));
                }},
               {"ring_buffer_bytes",
                [&](const YAML::Node& n, const std::string& k) {
                  c.ring_buffer_bytes = ParseUint(n, k, {kMiB, kGiB, true, " (1 MiB .. 1 GiB)"});
                }},
               {"wakeup_bytes",
                [&](const YAML::Node& n, const std::string& k) {
                  c.wakeup_bytes = static_cast<uint32_t>(ParseUint(n, k, {1, kGiB - 1}));
                  wakeup_set = true;
                }},
               {"poll_interval_ms",
                [&](const YAML::Node& n, const std::string& k) {
                  c.poll_interval_ms = static_cast<uint32_t>(ParseUint(n, k, {1, 1000}));
                }},
               {"max_connections",
                [&](const YAML::Node& n, const std::string& k) {
                  c.max_connections = static_cast<uint32_t>(ParseUint(n, k, {1024, 4194304}));
                }},
               {"skip_bodies",
                [&](const YAML::Node& n, const std::string& k) { c.skip_bodies = ParseBool(n, k); }},
           });
  // Cross-field check, once both are known (either may come from the defaults).
  if (c.wakeup_bytes >= c.ring_buffer_bytes) {
    Fail(Join(prefix, "wakeup_bytes"),
         "must be less than capture.ring_buffer_bytes (" + std::to_string(c.ring_buffer_bytes) +
             ") (got " + std::to_string(c.wakeup_bytes) +
             (wakeup_set ? ")" : ", the default: lower capture.wakeup_bytes too)"));
  }
}

void ParseProcessList(const YAML::Node& node, const std::string& key,
                      std::vector<std::string>& out) {
  out.clear();
  ForEachItem(node, key, "a list of process names", [&](const YAML::Node& n, const std::string& k) {
    if (!n.IsScalar() || n.Scalar().empty() || n.Scalar().size() > kMaxCommLength) {
      Fail(k, "must be a process name of 1 to 15 characters (got " + Describe(n) + ")");
    }
    out.push_back(n.Scalar());
  });
}

void ParsePortList(const YAML::Node& node, const std::string& key, std::vector<uint16_t>& out) {
  out.clear();
  ForEachItem(node, key, "a list of ports", [&](const YAML::Node& n, const std::string& k) {
    out.push_back(static_cast<uint16_t>(ParseUint(n, k, {1, 65535})));
  });
}

void ParseFilter(const YAML::Node& node, const std::string& prefix, FilterConfig& f) {
  ParseMap(
      node, prefix,
      {
          {"include_processes",
           [&](const YAML::Node& n, const std::string& k) {
             ParseProcessList(n, k, f.include_processes);
           }},
          {"exclude_processes",
           [&](const YAML::Node& n, const std::string& k) {
             ParseProcessList(n, k, f.exclude_processes);
           }},
          {"include_ports", [&](const YAML::Node& n,
                                const std::string& k) { ParsePortList(n, k, f.include_ports); }},
          {"exclude_ports", [&](const YAML::Node& n,
                                const std::string& k) { ParsePortList(n, k, f.exclude_ports); }},
      });
}

void ParseLimits(const YAML::Node& node, const std::string& prefix, LimitsConfig& l) {
  const auto u32 = [](uint32_t& field, UintRule rule) {
    return [&field, rule](const YAML::Node& n, const std::string& k) {
      field = static_cast<uint32_t>(ParseUint(n, k, rule));
    };
  };
  ParseMap(node, prefix,
           {
               {"max_connections", u32(l.max_connections, {1, 4194304})},
               {"max_head_bytes", u32(l.max_head_bytes, {1024, kMiB})},
               {"max_pending_requests", u32(l.max_pending_requests, {1, 4096})},
               {"idle_timeout_s", u32(l.idle_timeout_s, {1, 86400})},
               {"event_queue", u32(l.event_queue, {1, 16777216})},
           });
}

bool ParseBool(const YAML::Node& node, const std::string& key) {
  if (node.IsScalar() && node.Tag() != "!") {
    if (node.Scalar() == "true") return true;
    if (node.Scalar() == "false") return false;
  }
  Fail(key, "must be true or false (got " + Describe(node) + ")");
}

/// A plain (unquoted) finite decimal number: 3, 0.005, 1e-3.
double ParseNumber(const YAML::Node& node, const std::string& key, const std::string& rule) {
  const auto fail = [&] { Fail(key, rule + " (got " + Describe(node) + ")"); };
  if (!node.IsScalar() || node.Tag() == "!") fail();
  const std::string& s = node.Scalar();
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) fail();
  return v;
}

constexpr size_t kMaxBuckets = 64;

/// A histogram bucket list: 1..64 finite numbers >= `min`, strictly increasing.
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
    const std::string rule = std::string("must be a number ") + (min > 0 ? "> 0" : ">= 0") +
                             " (" + unit + ")";
    const double v = ParseNumber(n, k, rule);
    if (v < min || (min > 0 && v == 0)) Fail(k, rule + " (got " + Describe(n) + ")");
    if (!buckets.empty() && v <= buckets.back()) {
      Fail(k, "must be greater than the previous bucket (got " + Describe(n) + ")");
    }
    buckets.push_back(v);
  });
  out = std::move(buckets);
}

/// A service name: 1..64 bytes, no control characters (it becomes a label value).
std::string ParseName(const YAML::Node& node, const std::string& key) {
  const auto fail = [&] {
    Fail(key, "must be a name of 1 to 64 characters, no control characters (got " +
                  Describe(node) + ")");
  };
  if (!node.IsScalar() || node.Scalar().empty() || node.Scalar().size() > 64) fail();
  for (unsigned char c : node.Scalar()) {
    if (c < 0x20 || c == 0x7f) fail();
  }
  return node.Scalar();
}

void ParseServices(const YAML::Node& node, const std::string& key,
                   std::vector<ServiceRule>& out) {
  out.clear();
  ForEachItem(node, key, "a list of service rules", [&](const YAML::Node& n, const std::string& k) {
    ServiceRule rule;
    bool has_name = false;
    ParseMap(n, k,
             {
                 {"name",
                  [&](const YAML::Node& v, const std::string& vk) {
                    rule.name = ParseName(v, vk);
                    has_name = true;
                  }},
                 {"process",
                  [&](const YAML::Node& v, const std::string& vk) {
                    if (!v.IsScalar() || v.Scalar().empty() || v.Scalar().size() > kMaxCommLength) {
                      Fail(vk, "must be a process name of 1 to 15 characters (got " +
                                   Describe(v) + ")");
                    }
                    rule.process = v.Scalar();
                  }},
                 {"exe",
                  [&](const YAML::Node& v, const std::string& vk) {
                    if (!v.IsScalar() || v.Scalar().size() < 2 || v.Scalar()[0] != '/' ||
                        v.Scalar().size() > 4096) {
                      Fail(vk, "must be an absolute executable path, or a directory prefix "
                               "ending in '/' (got " + Describe(v) + ")");
                    }
                    rule.exe = v.Scalar();
                  }},
                 {"port",
                  [&](const YAML::Node& v, const std::string& vk) {
                    rule.port = static_cast<uint16_t>(ParseUint(v, vk, {1, 65535}));
                  }},
             });
    if (!n.IsMap() || !has_name) {
      Fail(k, "must be a map with a name and at least one of process, exe, port (got " +
                  Describe(n) + ")");
    }
    if (rule.process.empty() && rule.exe.empty() && rule.port == 0) {
      Fail(k, "needs at least one of process, exe, port (got only a name: \"" + rule.name +
                  "\")");
    }
    out.push_back(std::move(rule));
  });
}

bool IsPatternNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

/// Route pattern syntax: "/seg/{name}/seg", optionally ending with "/*" or "/{name...}".
/// Returns "" when valid, else why not.
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

void ParseRoutes(const YAML::Node& node, const std::string& prefix, RoutesConfig& r) {
  ParseMap(
      node, prefix,
      {
          {"max_per_service",
           [&](const YAML::Node& n, const std::string& k) {
             r.max_per_service = static_cast<uint32_t>(ParseUint(n, k, {1, 100000}));
           }},
          {"auto_template",
           [&](const YAML::Node& n, const std::string& k) { r.auto_template = ParseBool(n, k); }},
          {"patterns",
           [&](const YAML::Node& n, const std::string& k) {
             r.patterns.clear();
             ForEachItem(n, k, "a list of {pattern, service} maps",
                         [&](const YAML::Node& item, const std::string& ik) {
                           RoutePattern rp;
                           bool has_pattern = false;
                           ParseMap(item, ik,
                                    {
                                        {"service",
                                         [&](const YAML::Node& v, const std::string& vk) {
                                           rp.service = ParseName(v, vk);
                                         }},
                                        {"pattern",
                                         [&](const YAML::Node& v, const std::string& vk) {
                                           const std::string why =
                                               v.IsScalar() ? PatternProblem(v.Scalar())
                                                            : "must be a string";
                                           if (!why.empty()) {
                                             Fail(vk, "must be a route like /api/orders/{id} "
                                                      "(" + why + ") (got " + Describe(v) + ")");
                                           }
                                           rp.pattern = v.Scalar();
                                           has_pattern = true;
                                         }},
                                    });
                           if (!item.IsMap() || !has_pattern) {
                             Fail(ik, "must be a map with a pattern (got " + Describe(item) +
                                          ")");
                           }
                           r.patterns.push_back(std::move(rp));
                         });
           }},
      });
}

void ParseMetrics(const YAML::Node& node, const std::string& prefix, MetricsConfig& m) {
  ParseMap(node, prefix,
           {
               {"duration_buckets",
                [&](const YAML::Node& n, const std::string& k) {
                  ParseBuckets(n, k, 1e-9, "seconds", m.duration_buckets);
                }},
               {"body_size_buckets",
                [&](const YAML::Node& n, const std::string& k) {
                  ParseBuckets(n, k, 0, "bytes", m.body_size_buckets);
                }},
           });
}


// ---- ecommerce ----

/// A label value configured by the user: 1..64 of [A-Za-z0-9_.-].
std::string ParseLabelName(const YAML::Node& node, const std::string& key) {
  const auto fail = [&] {
    Fail(key, "must be a name of 1 to 64 letters, digits, '_', '.' or '-' (got " +
                  Describe(node) + ")");
  };
  if (!node.IsScalar() || node.Scalar().empty() || node.Scalar().size() > 64) fail();
  for (char c : node.Scalar()) {
    if (!IsHostChar(c)) fail();
  }
  return node.Scalar();
}

std::string ParseMethod(const YAML::Node& node, const std::string& key) {
  const auto fail = [&] {
    Fail(key, "must be an upper-case HTTP method such as GET or POST (got " + Describe(node) +
                  ")");
  };
  if (!node.IsScalar() || node.Scalar().empty() || node.Scalar().size() > 32) fail();
  for (char c : node.Scalar()) {
    if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_')) fail();
  }
  return node.Scalar();
}

std::string ParseRoutePattern(const YAML::Node& node, const std::string& key) {
  const std::string why = node.IsScalar() ? PatternProblem(node.Scalar()) : "must be a string";
  if (!why.empty()) {
    Fail(key, "must be a route like /api/orders/{id} (" + why + ") (got " + Describe(node) + ")");
  }
  return node.Scalar();
}

/// {method, route} maps; `extra` handles the other keys of the map (name...).
EcommerceRoute ParseEcommerceRoute(const YAML::Node& node, const std::string& key, Fields extra,
                                   bool method_required) {
  EcommerceRoute r;
  bool has_route = false;
  extra.emplace_back("method", [&](const YAML::Node& v, const std::string& vk) {
    r.method = ParseMethod(v, vk);
  });
  extra.emplace_back("route", [&](const YAML::Node& v, const std::string& vk) {
    r.route = ParseRoutePattern(v, vk);
    has_route = true;
  });
  ParseMap(node, key, extra);
  if (!node.IsMap() || !has_route || (method_required && r.method.empty())) {
    Fail(key, std::string("must be a map with ") + (method_required ? "a method and " : "") +
                  "a route (got " + Describe(node) + ")");
  }
  return r;
}

/// Built-in secret field names: a body field path through one of them is refused.
constexpr std::string_view kSecretFieldNames[] = {"cvv",   "cvc",    "pin",     "password",
                                                  "token", "secret", "api_key", "card_number",
                                                  "pan",   "authorization"};

BodyField ParseBodyField(const YAML::Node& node, const std::string& key) {
  const auto fail = [&](const std::string& why) {
    Fail(key, "must be request.<key>[.<key>...] or response.<key>[...] with keys of letters, "
              "digits, '_' or '-'" + why + " (got " + Describe(node) + ")");
  };
  BodyField f;
  if (node.IsNull()) return f;  // not read
  if (!node.IsScalar() || node.Scalar().size() > 128) fail("");
  f.text = node.Scalar();
  std::string_view rest = f.text;
  if (rest.starts_with("request.")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("response.")) {
    f.response = true;
    rest.remove_prefix(9);
  } else {
    fail("");
  }
  while (true) {
    const size_t dot = rest.find('.');
    const std::string_view part = rest.substr(0, dot);
    if (part.empty() || f.path.size() >= 8) fail(": at most 8 keys, none empty");
    for (char c : part) {
      if (!IsHostChar(c) || c == '.') fail("");
    }
    std::string lower;
    for (char c : part) lower.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
    for (std::string_view secret : kSecretFieldNames) {
      if (lower == secret) fail(": secrets (cvv, pin, password, token...) are never read");
    }
    f.path.emplace_back(part);
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  return f;
}

std::vector<StatusRange> ParseStatuses(const YAML::Node& node, const std::string& key) {
  std::vector<StatusRange> out;
  ForEachItem(node, key, "a list of status codes (402) or classes (\"5xx\")",
              [&](const YAML::Node& n, const std::string& k) {
                if (n.IsScalar() && n.Scalar().size() == 3 && n.Scalar()[0] >= '1' &&
                    n.Scalar()[0] <= '5' && (n.Scalar().substr(1) == "xx" ||
                                             n.Scalar().substr(1) == "XX")) {
                  const int c = n.Scalar()[0] - '0';
                  out.push_back({c * 100, c * 100 + 99});
                  return;
                }
                const auto v = static_cast<int>(ParseUint(n, k, {100, 599, false,
                                                                 " (or a class: \"4xx\", \"5xx\")"}));
                out.push_back({v, v});
              });
  if (out.empty()) Fail(key, "must list at least one status code or class");
  return out;
}

void ParseEcommerce(const YAML::Node& node, const std::string& prefix, EcommerceConfig& e) {
  ParseMap(
      node, prefix,
      {
          {"services",
           [&](const YAML::Node& n, const std::string& k) {
             e.services.clear();
             ForEachItem(n, k, "a list of service names", [&](const YAML::Node& v,
                                                             const std::string& vk) {
               e.services.push_back(ParseName(v, vk));
             });
           }},
          {"tenant",
           [&](const YAML::Node& n, const std::string& k) {
             e.tenant.clear();
             ForEachItem(n, k, "a list of {header: NAME} or {path_segment: N} rules",
                         [&](const YAML::Node& v, const std::string& vk) {
                           TenantRule rule;
                           ParseMap(v, vk,
                                    {
                                        {"header",
                                         [&](const YAML::Node& h, const std::string& hk) {
                                           rule.header = ParseLabelName(h, hk);
                                         }},
                                        {"path_segment",
                                         [&](const YAML::Node& h, const std::string& hk) {
                                           rule.path_segment = static_cast<uint32_t>(
                                               ParseUint(h, hk, {1, 32}));
                                         }},
                                        {"prefix",
                                         [&](const YAML::Node& h, const std::string& hk) {
                                           if (!h.IsScalar() || h.Scalar().empty() ||
                                               h.Scalar()[0] != '/' || h.Scalar().size() > 256) {
                                             Fail(hk, "must be a path prefix starting with '/' "
                                                      "(got " + Describe(h) + ")");
                                           }
                                           rule.path_prefix = h.Scalar();
                                         }},
                                    });
                           if (!v.IsMap() || rule.header.empty() == (rule.path_segment == 0)) {
                             Fail(vk, "must be a map with exactly one of header, path_segment "
                                      "(got " + Describe(v) + ")");
                           }
                           if (!rule.path_prefix.empty() && rule.path_segment == 0) {
                             Fail(vk + ".prefix", "only applies to a path_segment rule");
                           }
                           e.tenant.push_back(std::move(rule));
                         });
           }},
          {"funnel",
           [&](const YAML::Node& n, const std::string& k) {
             e.funnel = FunnelConfig{};
             ParseMap(
                 n, k,
                 {
                     {"name",
                      [&](const YAML::Node& v, const std::string& vk) {
                        // "" (the default) = no funnel.
                        if (!(v.IsScalar() && v.Scalar().empty())) {
                          e.funnel.name = ParseLabelName(v, vk);
                        }
                      }},
                     {"steps",
                      [&](const YAML::Node& v, const std::string& vk) {
                        ForEachItem(v, vk, "a list of {name, method, route} steps",
                                    [&](const YAML::Node& s, const std::string& sk) {
                                      FunnelStep step;
                                      bool has_name = false;
                                      step.match = ParseEcommerceRoute(
                                          s, sk,
                                          {{"name",
                                            [&](const YAML::Node& x, const std::string& xk) {
                                              step.name = ParseLabelName(x, xk);
                                              has_name = true;
                                            }}},
                                          false);
                                      if (!has_name) Fail(sk, "needs a name");
                                      for (const auto& other : e.funnel.steps) {
                                        if (other.name == step.name) {
                                          Fail(sk + ".name", "duplicate step \"" + step.name +
                                                                 "\"");
                                        }
                                      }
                                      e.funnel.steps.push_back(std::move(step));
                                    });
                        if (e.funnel.steps.size() > 16) Fail(vk, "at most 16 steps");
                      }},
                 });
             if (!e.funnel.steps.empty() && e.funnel.name.empty()) {
               Fail(Join(k, "name"), "is required when the funnel has steps");
             }
           }},
          {"payments",
           [&](const YAML::Node& n, const std::string& k) {
             PaymentsConfig& p = e.payments;
             ParseMap(
                 n, k,
                 {
                     {"endpoints",
                      [&](const YAML::Node& v, const std::string& vk) {
                        p.endpoints.clear();
                        ForEachItem(v, vk, "a list of {method, route} maps",
                                    [&](const YAML::Node& x, const std::string& xk) {
                                      p.endpoints.push_back(ParseEcommerceRoute(x, xk, {}, false));
                                    });
                      }},
                     {"gateways",
                      [&](const YAML::Node& v, const std::string& vk) {
                        p.gateways.clear();
                        ForEachItem(
                            v, vk, "a list of {name, hosts} maps",
                            [&](const YAML::Node& x, const std::string& xk) {
                              GatewayConfig g;
                              ParseMap(x, xk,
                                       {
                                           {"name",
                                            [&](const YAML::Node& y, const std::string& yk) {
                                              g.name = ParseLabelName(y, yk);
                                              if (g.name == "self" || g.name == "_OTHER")
                                                Fail(yk, "\"" + g.name + "\" is reserved");
                                            }},
                                           {"hosts",
                                            [&](const YAML::Node& y, const std::string& yk) {
                                              ForEachItem(
                                                  y, yk, "a list of host names",
                                                  [&](const YAML::Node& h, const std::string& hk) {
                                                    std::string host = ParseLabelName(h, hk);
                                                    for (char& c : host)
                                                      if (c >= 'A' && c <= 'Z') c += 32;
                                                    g.hosts.push_back(std::move(host));
                                                  });
                                            }},
                                       });
                              if (!x.IsMap() || g.name.empty() || g.hosts.empty()) {
                                Fail(xk, "must be a map with a name and a non-empty hosts list "
                                         "(got " + Describe(x) + ")");
                              }
                              p.gateways.push_back(std::move(g));
                            });
                      }},
                     {"fields",
                      [&](const YAML::Node& v, const std::string& vk) {
                        ParseMap(v, vk,
                                 {
                                     {"amount",
                                      [&](const YAML::Node& x, const std::string& xk) {
                                        p.fields.amount = ParseBodyField(x, xk);
                                      }},
                                     {"currency",
                                      [&](const YAML::Node& x, const std::string& xk) {
                                        p.fields.currency = ParseBodyField(x, xk);
                                      }},
                                     {"reason",
                                      [&](const YAML::Node& x, const std::string& xk) {
                                        p.fields.reason = ParseBodyField(x, xk);
                                      }},
                                 });
                      }},
                 });
           }},
          {"error_categories",
           [&](const YAML::Node& n, const std::string& k) {
             e.error_categories.clear();
             ForEachItem(
                 n, k, "a list of {name, statuses, routes, kind} maps",
                 [&](const YAML::Node& v, const std::string& vk) {
                   ErrorCategory c;
                   bool has_statuses = false;
                   ParseMap(v, vk,
                            {
                                {"name",
                                 [&](const YAML::Node& x, const std::string& xk) {
                                   c.name = ParseLabelName(x, xk);
                                 }},
                                {"routes",
                                 [&](const YAML::Node& x, const std::string& xk) {
                                   ForEachItem(x, xk, "a list of route patterns",
                                               [&](const YAML::Node& r, const std::string& rk) {
                                                 c.routes.push_back(ParseRoutePattern(r, rk));
                                               });
                                 }},
                                {"statuses",
                                 [&](const YAML::Node& x, const std::string& xk) {
                                   c.statuses = ParseStatuses(x, xk);
                                   has_statuses = true;
                                 }},
                                {"kind",
                                 [&](const YAML::Node& x, const std::string& xk) {
                                   if (!x.IsScalar() ||
                                       (x.Scalar() != "server" && x.Scalar() != "client")) {
                                     Fail(xk, "must be server or client (got " + Describe(x) +
                                                  ")");
                                   }
                                   c.kind = x.Scalar();
                                 }},
                            });
                   if (!v.IsMap() || c.name.empty() || !has_statuses) {
                     Fail(vk, "must be a map with a name and statuses (got " + Describe(v) + ")");
                   }
                   e.error_categories.push_back(std::move(c));
                 });
           }},
          {"capture_bytes_per_call",
           [&](const YAML::Node& n, const std::string& k) {
             e.capture_bytes_per_call =
                 static_cast<uint32_t>(ParseUint(n, k, {64, REDTAP_MAX_CAPTURE, true}));
           }},
          {"body_bytes",
           [&](const YAML::Node& n, const std::string& k) {
             e.body_bytes = static_cast<uint32_t>(ParseUint(n, k, {0, 65536}));
           }},
          {"max_tenants",
           [&](const YAML::Node& n, const std::string& k) {
             e.max_tenants = static_cast<uint32_t>(ParseUint(n, k, {1, 10000}));
           }},
          {"max_reasons",
           [&](const YAML::Node& n, const std::string& k) {
             e.max_reasons = static_cast<uint32_t>(ParseUint(n, k, {1, 1000}));
           }},
          {"amount_buckets",
           [&](const YAML::Node& n, const std::string& k) {
             ParseBuckets(n, k, 0, "currency units", e.amount_buckets);
           }},
      });
}

constexpr size_t kMaxConfigBytes = 1 << 20;

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};

void ParseRoot(const YAML::Node& root, Config& config) {
  ParseMap(
      root, "",
      {
          {"capture",
           [&](const YAML::Node& n, const std::string& k) { ParseCapture(n, k, config.capture); }},
          {"filter",
           [&](const YAML::Node& n, const std::string& k) { ParseFilter(n, k, config.filter); }},
          {"limits",
           [&](const YAML::Node& n, const std::string& k) { ParseLimits(n, k, config.limits); }},
          {"events",
           [&](const YAML::Node& n, const std::string& k) {
             ParseMap(n, k, {{"path", [&](const YAML::Node& v, const std::string& vk) {
                                config.events.path = ParseString(v, vk);
                              }}});
           }},
          {"http",
           [&](const YAML::Node& n, const std::string& k) {
             ParseMap(n, k, {{"listen", [&](const YAML::Node& v, const std::string& vk) {
                                std::string listen = ParseString(v, vk);
                                ValidateListen(listen, vk);
                                config.http.listen = std::move(listen);
                              }}});
           }},
          {"redaction",
           [&](const YAML::Node& n, const std::string& k) {
             ParseMap(n, k, {{"query_keys", [&](const YAML::Node& v, const std::string& vk) {
                                auto& keys = config.redaction.query_keys;
                                keys.clear();
                                ForEachItem(v, vk, "a list of strings",
                                            [&](const YAML::Node& item, const std::string& ik) {
                                              if (!item.IsScalar() || item.Scalar().empty()) {
                                                Fail(ik, "must be a non-empty string (got " +
                                                             Describe(item) + ")");
                                              }
                                              keys.push_back(item.Scalar());
                                            });
                              }}});
           }},
          {"services",
           [&](const YAML::Node& n, const std::string& k) {
             ParseServices(n, k, config.services);
           }},
          {"routes",
           [&](const YAML::Node& n, const std::string& k) { ParseRoutes(n, k, config.routes); }},
          {"metrics",
           [&](const YAML::Node& n, const std::string& k) { ParseMetrics(n, k, config.metrics); }},
          {"tls",
           [&](const YAML::Node& n, const std::string& k) {
             ParseMap(n, k, {{"enabled", [&](const YAML::Node& v, const std::string& vk) {
                                config.tls.enabled = ParseBool(v, vk);
                              }}});
           }},
          {"ecommerce",
           [&](const YAML::Node& n, const std::string& k) {
             ParseEcommerce(n, k, config.ecommerce);
           }},
          {"log",
           [&](const YAML::Node& n, const std::string& k) {
             ParseMap(n, k, {{"level", [&](const YAML::Node& v, const std::string& vk) {
                                std::string level = v.IsScalar() ? v.Scalar() : "";
                                bool known = false;
                                for (auto l : kLogLevels) known = known || level == l;
                                if (!v.IsScalar() || !known) {
                                  Fail(vk, "must be one of trace, debug, info, warn, error (got " +
                                               Describe(v) + ")");
                                }
                                config.log.level = std::move(level);
                              }}});
           }},
      });
}

}  // namespace

const std::string& DefaultConfigText() {
  static const std::string text(kEmbeddedConfigYaml);
  return text;
}

Result<Config> LoadConfigString(const std::string& text, const std::string& origin) {
  try {
    const std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.size() > 1) {
      return Status::Error(origin + ": expected one YAML document, found " +
                           std::to_string(docs.size()));
    }
    Config config;
    if (!docs.empty()) ParseRoot(docs[0], config);
    return config;
  } catch (const KeyError& e) {
    return Status::Error(origin + ": " + (e.key().empty() ? "" : e.key() + ": ") + e.what());
  } catch (const YAML::Exception& e) {
    // e.msg lacks the position; mark is 0-based (and -1 when unknown).
    if (e.mark.is_null()) return Status::Error(origin + ": invalid YAML: " + e.msg);
    return Status::Error(origin + ": line " + std::to_string(e.mark.line + 1) + ", column " +
                         std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
  } catch (const std::exception& e) {
    return Status::Error(origin + ": " + e.what());
  } catch (...) {
    return Status::Error(origin + ": unexpected error while reading the config");
  }
}

Result<Config> LoadConfigFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Error(path + ": cannot open config file: " + std::strerror(errno));
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::Error(path + ": cannot read config file: " + std::strerror(err));
    }
    if (n == 0) break;
    // A config is small: refuse anything absurd rather than read a device forever.
    if (text.size() + static_cast<size_t>(n) > kMaxConfigBytes) {
      ::close(fd);
      return Status::Error(path + ": config file larger than 1 MiB");
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return LoadConfigString(text, path);
}

Config DefaultConfig() {
  Result<Config> config = LoadConfigString(DefaultConfigText(), "<embedded>");
  // The embedded text is checked by a unit test; the struct defaults are the fallback.
  return config.ok() ? std::move(config.value()) : Config{};
}

}  // namespace redtap::config

// SPDX-License-Identifier: Apache-2.0
// YAML config loader: strict (unknown keys, wrong types and out-of-range values are errors that
// name the dotted key), parsed on top of the struct defaults. yaml-cpp throws; the section
// parsers (here and in ecommerce_config.cc, built on yaml_fields.h) use exceptions internally
// and LoadConfigString turns every one into a Result at the public boundary.
#include "userspace/config/config.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <string_view>
#include <utility>

#include "redtap_abi.h"
#include "userspace/config/alerts_config.h"
#include "userspace/config/ecommerce_config.h"
#include "userspace/config/yaml_fields.h"

namespace redtap::config {

// Defined in the generated redtap_yaml_text.cc (see CMakeLists.txt).
extern const char kEmbeddedConfigYaml[];

namespace detail {
namespace {

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};

// ---- capture ----

void ParseCapture(const YAML::Node& node, const std::string& prefix, CaptureConfig& c) {
  bool wakeup_set = false;
  ParseMap(
      node, prefix,
      {
          {"max_bytes_per_call", Uint32Field(c.max_bytes_per_call, {64, REDTAP_MAX_CAPTURE, true})},
          {"ring_buffer_bytes",
           [&](const YAML::Node& n, const std::string& k) {
             c.ring_buffer_bytes = ParseUint(n, k, {kMiB, kGiB, true, " (1 MiB .. 1 GiB)"});
           }},
          {"wakeup_bytes",
           [&](const YAML::Node& n, const std::string& k) {
             c.wakeup_bytes = static_cast<uint32_t>(ParseUint(n, k, {1, kGiB - 1}));
             wakeup_set = true;
           }},
          {"poll_interval_ms", Uint32Field(c.poll_interval_ms, {1, 1000})},
          {"max_connections", Uint32Field(c.max_connections, {1024, 4194304})},
          {"skip_bodies", BoolField(c.skip_bodies)},
      });
  // Cross-field check, once both are known (either may come from the defaults).
  if (c.wakeup_bytes >= c.ring_buffer_bytes) {
    Fail(Join(prefix, "wakeup_bytes"),
         "must be less than capture.ring_buffer_bytes (" + std::to_string(c.ring_buffer_bytes) +
             ") (got " + std::to_string(c.wakeup_bytes) +
             (wakeup_set ? ")" : ", the default: lower capture.wakeup_bytes too)"));
  }
}

// ---- filter ----

/// A kernel comm name: 1..15 characters.
std::string ParseProcessName(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar() || node.Scalar().empty() || node.Scalar().size() > kMaxCommLength) {
    Fail(key, "must be a process name of 1 to 15 characters (got " + Describe(node) + ")");
  }
  return node.Scalar();
}

void ParseProcessList(const YAML::Node& node, const std::string& key,
                      std::vector<std::string>& out) {
  out.clear();
  ForEachItem(node, key, "a list of process names", [&](const YAML::Node& n, const std::string& k) {
    out.push_back(ParseProcessName(n, k));
  });
}

void ParsePortList(const YAML::Node& node, const std::string& key, std::vector<uint16_t>& out) {
  out.clear();
  ForEachItem(node, key, "a list of ports", [&](const YAML::Node& n, const std::string& k) {
    out.push_back(static_cast<uint16_t>(ParseUint(n, k, {1, 65535})));
  });
}

void ParseFilter(const YAML::Node& node, const std::string& prefix, FilterConfig& f) {
  const auto processes = [](std::vector<std::string>& out) {
    return [&out](const YAML::Node& n, const std::string& k) { ParseProcessList(n, k, out); };
  };
  const auto ports = [](std::vector<uint16_t>& out) {
    return [&out](const YAML::Node& n, const std::string& k) { ParsePortList(n, k, out); };
  };
  ParseMap(node, prefix,
           {
               {"include_processes", processes(f.include_processes)},
               {"exclude_processes", processes(f.exclude_processes)},
               {"include_ports", ports(f.include_ports)},
               {"exclude_ports", ports(f.exclude_ports)},
           });
}

// ---- limits, events, http, redaction ----

void ParseLimits(const YAML::Node& node, const std::string& prefix, LimitsConfig& l) {
  ParseMap(node, prefix,
           {
               {"max_connections", Uint32Field(l.max_connections, {1, 4194304})},
               {"max_head_bytes", Uint32Field(l.max_head_bytes, {1024, kMiB})},
               {"max_pending_requests", Uint32Field(l.max_pending_requests, {1, 4096})},
               {"idle_timeout_s", Uint32Field(l.idle_timeout_s, {1, 86400})},
               {"event_queue", Uint32Field(l.event_queue, {1, 16777216})},
           });
}

void ParseEvents(const YAML::Node& node, const std::string& prefix, EventsConfig& e) {
  ParseMap(
      node, prefix,
      {{"path", [&](const YAML::Node& n, const std::string& k) { e.path = ParseString(n, k); }},
       {"select",
        [&](const YAML::Node& n, const std::string& k) {
          const std::string v = ParseString(n, k);
          using S = EventsConfig::Select;
          for (S s : {S::kAll, S::kErrors, S::kSlow, S::kSample}) {
            if (v == SelectName(s)) {
              e.select = s;
              return;
            }
          }
          Fail(k, "must be one of all, errors, slow, sample (got \"" + v + "\")");
        }},
       {"slow_threshold",
        [&](const YAML::Node& n, const std::string& k) {
          e.slow_threshold_ms = ParseDurationMs(n, k, 1, 3600000);
        }},
       {"sample_ratio", [&](const YAML::Node& n, const std::string& k) {
          const std::string rule = "must be a number between 0 and 1";
          const double r = ParseNumber(n, k, rule);
          if (!(r >= 0 && r <= 1)) Fail(k, rule);
          e.sample_ratio = r;
        }}});
}

void ParseHttp(const YAML::Node& node, const std::string& prefix, HttpConfig& h) {
  ParseMap(node, prefix, {{"listen", [&](const YAML::Node& n, const std::string& k) {
                             std::string listen = ParseString(n, k);
                             ValidateListen(listen, k);
                             h.listen = std::move(listen);
                           }}});
}

void ParseQueryKeys(const YAML::Node& node, const std::string& key, std::vector<std::string>& out) {
  out.clear();
  ForEachItem(node, key, "a list of strings", [&](const YAML::Node& n, const std::string& k) {
    if (!n.IsScalar() || n.Scalar().empty()) {
      Fail(k, "must be a non-empty string (got " + Describe(n) + ")");
    }
    out.push_back(n.Scalar());
  });
}

void ParseRedaction(const YAML::Node& node, const std::string& prefix, RedactionConfig& r) {
  ParseMap(node, prefix, {{"query_keys", [&](const YAML::Node& n, const std::string& k) {
                             ParseQueryKeys(n, k, r.query_keys);
                           }}});
}

// ---- services ----

std::string ParseExe(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar() || node.Scalar().size() < 2 || node.Scalar()[0] != '/' ||
      node.Scalar().size() > 4096) {
    Fail(key, "must be an absolute executable path, or a directory prefix ending in '/' (got " +
                  Describe(node) + ")");
  }
  return node.Scalar();
}

/// {name, process, exe, port}: a name and at least one criterion.
ServiceRule ParseServiceRule(const YAML::Node& node, const std::string& key) {
  ServiceRule rule;
  bool has_name = false;
  ParseMap(
      node, key,
      {
          {"name",
           [&](const YAML::Node& v, const std::string& vk) {
             rule.name = ParseName(v, vk);
             has_name = true;
           }},
          {"process", [&](const YAML::Node& v,
                          const std::string& vk) { rule.process = ParseProcessName(v, vk); }},
          {"exe", [&](const YAML::Node& v, const std::string& vk) { rule.exe = ParseExe(v, vk); }},
          {"port",
           [&](const YAML::Node& v, const std::string& vk) {
             rule.port = static_cast<uint16_t>(ParseUint(v, vk, {1, 65535}));
           }},
      });
  if (!node.IsMap() || !has_name) {
    Fail(key, "must be a map with a name and at least one of process, exe, port (got " +
                  Describe(node) + ")");
  }
  if (rule.process.empty() && rule.exe.empty() && rule.port == 0) {
    Fail(key, "needs at least one of process, exe, port (got only a name: \"" + rule.name + "\")");
  }
  return rule;
}

void ParseServices(const YAML::Node& node, const std::string& key, std::vector<ServiceRule>& out) {
  out.clear();
  ForEachItem(node, key, "a list of service rules", [&](const YAML::Node& n, const std::string& k) {
    out.push_back(ParseServiceRule(n, k));
  });
}

// ---- routes, metrics ----

/// routes.patterns[i]: {pattern, service}.
RoutePattern ParsePatternRule(const YAML::Node& node, const std::string& key) {
  RoutePattern rp;
  bool has_pattern = false;
  ParseMap(node, key,
           {
               {"service",
                [&](const YAML::Node& v, const std::string& vk) { rp.service = ParseName(v, vk); }},
               {"pattern",
                [&](const YAML::Node& v, const std::string& vk) {
                  rp.pattern = ParseRoutePattern(v, vk);
                  has_pattern = true;
                }},
           });
  if (!node.IsMap() || !has_pattern) {
    Fail(key, "must be a map with a pattern (got " + Describe(node) + ")");
  }
  return rp;
}

void ParseRoutes(const YAML::Node& node, const std::string& prefix, RoutesConfig& r) {
  ParseMap(node, prefix,
           {
               {"max_per_service", Uint32Field(r.max_per_service, {1, 100000})},
               {"auto_template", BoolField(r.auto_template)},
               {"patterns",
                [&](const YAML::Node& n, const std::string& k) {
                  r.patterns.clear();
                  ForEachItem(n, k, "a list of {pattern, service} maps",
                              [&](const YAML::Node& v, const std::string& vk) {
                                r.patterns.push_back(ParsePatternRule(v, vk));
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

// ---- tls, log ----

void ParseTls(const YAML::Node& node, const std::string& prefix, TlsConfig& t) {
  ParseMap(node, prefix,
           {{"enabled", BoolField(t.enabled)},
            {"emulated_sites", BoolField(t.emulated_sites)},
            {"go", BoolField(t.go)}});
}

void ParseDb(const YAML::Node& node, const std::string& prefix, DbConfig& d) {
  ParseMap(
      node, prefix,
      {
          {"enabled", BoolField(d.enabled)},
          {"ports",
           [&](const YAML::Node& n, const std::string& key) {
             ParseMap(
                 n, key,
                 {
                     {"postgresql",
                      [&](const YAML::Node& v, const std::string& k) {
                        ParsePortList(v, k, d.postgresql_ports);
                      }},
                     {"mysql", [&](const YAML::Node& v,
                                   const std::string& k) { ParsePortList(v, k, d.mysql_ports); }},
                     {"redis", [&](const YAML::Node& v,
                                   const std::string& k) { ParsePortList(v, k, d.redis_ports); }},
                 });
           }},
          {"slow_threshold",
           [&](const YAML::Node& n, const std::string& key) {
             d.slow_threshold_ms = ParseDurationMs(n, key, 1, 3600000);
           }},
          {"max_series",
           [&](const YAML::Node& n, const std::string& key) {
             d.max_series = ParseUint(n, key, {10, 1000000});
           }},
      });
  // One protocol per port: the kernel's hint map has one value per port.
  std::vector<std::pair<uint16_t, std::string_view>> seen;
  const auto check = [&](const std::vector<uint16_t>& ports, std::string_view name) {
    for (uint16_t p : ports) {
      for (const auto& [q, other] : seen) {
        if (q == p && other != name) {
          Fail(Join(prefix, "ports"), "port " + std::to_string(p) + " is listed for both " +
                                          std::string(other) + " and " + std::string(name));
        }
      }
      seen.emplace_back(p, name);
    }
  };
  check(d.postgresql_ports, "postgresql");
  check(d.mysql_ports, "mysql");
  check(d.redis_ports, "redis");
}

void ParseKubernetes(const YAML::Node& node, const std::string& prefix, KubernetesConfig& k) {
  ParseMap(node, prefix,
           {
               {"metadata",
                [&](const YAML::Node& n, const std::string& key) {
                  const std::string v = n.IsScalar() ? n.Scalar() : "";
                  if (v == "auto") {
                    k.metadata = KubernetesConfig::Mode::kAuto;
                  } else if (v == "true" || v == "on") {
                    k.metadata = KubernetesConfig::Mode::kOn;
                  } else if (v == "false" || v == "off") {
                    k.metadata = KubernetesConfig::Mode::kOff;
                  } else {
                    Fail(key, "must be auto, true or false (got " + Describe(n) + ")");
                  }
                }},
               {"pods_url",
                [&](const YAML::Node& n, const std::string& key) {
                  k.pods_url = ParseString(n, key);
                  if (!k.pods_url.empty() && !k.pods_url.starts_with("http://") &&
                      !k.pods_url.starts_with("https://")) {
                    Fail(key,
                         "must be \"\" or an http:// or https:// URL (got " + Describe(n) + ")");
                  }
                }},
               {"refresh_interval",
                [&](const YAML::Node& n, const std::string& key) {
                  k.refresh_interval_ms = ParseDurationMs(n, key, 1000, 3600000);
                }},
               {"verify_tls", BoolField(k.verify_tls)},
               {"max_pods",
                [&](const YAML::Node& n, const std::string& key) {
                  k.max_pods = ParseUint(n, key, {1, 100000});
                }},
           });
}

std::string ParseLogLevel(const YAML::Node& node, const std::string& key) {
  std::string level = node.IsScalar() ? node.Scalar() : "";
  bool known = false;
  for (auto l : kLogLevels) known = known || level == l;
  if (!node.IsScalar() || !known) {
    Fail(key, "must be one of trace, debug, info, warn, error (got " + Describe(node) + ")");
  }
  return level;
}

void ParseLog(const YAML::Node& node, const std::string& prefix, LogConfig& l) {
  ParseMap(node, prefix, {{"level", [&](const YAML::Node& n, const std::string& k) {
                             l.level = ParseLogLevel(n, k);
                           }}});
}

// ---- the document ----

/// A FieldParser for a top-level section: `parse(node, key, section)`.
template <typename Section>
FieldParser SectionField(void (*parse)(const YAML::Node&, const std::string&, Section&),
                         Section& section) {
  return [parse, &section](const YAML::Node& n, const std::string& k) { parse(n, k, section); };
}

void ParseRoot(const YAML::Node& root, Config& config) {
  ParseMap(root, "",
           {
               {"capture", SectionField(ParseCapture, config.capture)},
               {"filter", SectionField(ParseFilter, config.filter)},
               {"limits", SectionField(ParseLimits, config.limits)},
               {"events", SectionField(ParseEvents, config.events)},
               {"http", SectionField(ParseHttp, config.http)},
               {"redaction", SectionField(ParseRedaction, config.redaction)},
               {"services", SectionField(ParseServices, config.services)},
               {"routes", SectionField(ParseRoutes, config.routes)},
               {"metrics", SectionField(ParseMetrics, config.metrics)},
               {"tls", SectionField(ParseTls, config.tls)},
               {"db", SectionField(ParseDb, config.db)},
               {"kubernetes", SectionField(ParseKubernetes, config.kubernetes)},
               {"ecommerce", SectionField(ParseEcommerce, config.ecommerce)},
               {"alerts", SectionField(ParseAlerts, config.alerts)},
               {"log", SectionField(ParseLog, config.log)},
           });
}

}  // namespace
}  // namespace detail

namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;

}  // namespace

const std::string& DefaultConfigText() {
  static const std::string text(kEmbeddedConfigYaml);
  return text;
}

namespace {

// Counts the documents of a YAML stream, stopping at `cap`: yaml-cpp 0.7's parser never
// ends on some malformed text (a stray ',' at the top level yields empty documents
// forever), so YAML::LoadAll would loop and grow without bound (found by fuzz_config).
class NullEvents : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

size_t CountDocuments(const std::string& text, size_t cap) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  NullEvents events;
  size_t n = 0;
  while (n < cap && parser.HandleNextDocument(events)) ++n;
  return n;
}

}  // namespace

const char* SelectName(EventsConfig::Select s) {
  switch (s) {
    case EventsConfig::Select::kErrors:
      return "errors";
    case EventsConfig::Select::kSlow:
      return "slow";
    case EventsConfig::Select::kSample:
      return "sample";
    case EventsConfig::Select::kAll:
      break;
  }
  return "all";
}

Result<Config> LoadConfigString(const std::string& text, const std::string& origin) {
  try {
    if (CountDocuments(text, 2) > 1) {
      return Status::Error(origin + ": expected one YAML document, found more than one");
    }
    const std::vector<YAML::Node> docs = YAML::LoadAll(text);
    Config config;
    if (!docs.empty()) detail::ParseRoot(docs[0], config);
    detail::CheckAlertsAgainstConfig(config);
    return config;
  } catch (const detail::KeyError& e) {
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

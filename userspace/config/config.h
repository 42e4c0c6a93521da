// SPDX-License-Identifier: Apache-2.0
// The agent's configuration: defaults live in config/redtap.yaml (embedded in the binary);
// every key there maps to a field here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "userspace/common/status.h"

namespace redtap::config {

struct CaptureConfig {
  uint32_t max_bytes_per_call = 4096;     // capture.max_bytes_per_call: power of two, 64..8192
  uint64_t ring_buffer_bytes = 64ull << 20;  // capture.ring_buffer_bytes: power of two >= 1 MiB
  uint32_t wakeup_bytes = 1u << 20;       // capture.wakeup_bytes: kernel wakes the reader above this fill
  uint32_t poll_interval_ms = 10;         // capture.poll_interval_ms: reader drains at least this often
  uint32_t max_connections = 65536;       // capture.max_connections: kernel connection table (LRU)
};

struct FilterConfig {
  std::vector<std::string> include_processes;  // filter.include_processes: comm names; empty = all
  std::vector<std::string> exclude_processes;  // filter.exclude_processes
  std::vector<uint16_t> include_ports;         // filter.include_ports: local or remote port; empty = all
  std::vector<uint16_t> exclude_ports;         // filter.exclude_ports
};

struct LimitsConfig {
  uint32_t max_connections = 16384;        // limits.max_connections: userspace trackers (LRU)
  uint32_t max_head_bytes = 32768;         // limits.max_head_bytes
  uint32_t max_pending_requests = 64;      // limits.max_pending_requests: per connection
  uint32_t idle_timeout_s = 300;           // limits.idle_timeout_s: tracker evicted after idle
  uint32_t event_queue = 65536;            // limits.event_queue: transactions waiting for export
};

struct EventsConfig {
  std::string path;  // events.path: "" = off, "-" = stdout, else a file (appended)
};

struct HttpConfig {
  std::string listen = "127.0.0.1:9464";  // http.listen: /health, /ready (and /metrics later)
};

struct RedactionConfig {
  // redaction.query_keys: query parameters whose values are masked (substring match,
  // case-insensitive: "token" masks access_token too).
  std::vector<std::string> query_keys = {"password", "passwd", "pwd",    "token",
                                         "card",     "cvv",    "cvc",    "secret",
                                         "key",      "auth",   "session", "pin"};
};

struct LogConfig {
  std::string level = "info";  // log.level: trace|debug|info|warn|error
};

struct Config {
  CaptureConfig capture;
  FilterConfig filter;
  LimitsConfig limits;
  EventsConfig events;
  HttpConfig http;
  RedactionConfig redaction;
  LogConfig log;
};

/// The text of config/redtap.yaml, embedded at build time.
const std::string& DefaultConfigText();
/// Parses YAML text on top of the defaults. Unknown keys and bad values are errors that name
/// the key (e.g. "config: capture.max_bytes_per_call: must be a power of two between 64 and 8192").
Result<Config> LoadConfigString(const std::string& text, const std::string& origin);
/// Reads and parses a file; a missing/unreadable file is an error naming the path.
Result<Config> LoadConfigFile(const std::string& path);
/// The embedded default, parsed (it is validated by a unit test, so this cannot fail).
Config DefaultConfig();

}  // namespace redtap::config

// SPDX-License-Identifier: Apache-2.0
// The agent's configuration: defaults live in config/redtap.yaml (embedded in the binary);
// every key there maps to a field here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "userspace/common/status.h"
#include "userspace/config/alerts.h"

namespace redtap::config {

struct CaptureConfig {
  uint32_t max_bytes_per_call = 4096;        // capture.max_bytes_per_call: power of two, 64..8192
  uint64_t ring_buffer_bytes = 16ull << 20;  // capture.ring_buffer_bytes: power of two >= 1 MiB
  uint32_t wakeup_bytes =
      1u << 20;                    // capture.wakeup_bytes: kernel wakes the reader above this fill
  uint32_t poll_interval_ms = 10;  // capture.poll_interval_ms: reader drains at least this often
  uint32_t max_connections = 65536;  // capture.max_connections: kernel connection table (LRU)
  bool skip_bodies = true;  // capture.skip_bodies: Content-Length bodies stay in the kernel
};

struct FilterConfig {
  std::vector<std::string> include_processes;  // filter.include_processes: comm names; empty = all
  std::vector<std::string> exclude_processes;  // filter.exclude_processes
  std::vector<uint16_t> include_ports;  // filter.include_ports: local or remote port; empty = all
  std::vector<uint16_t> exclude_ports;  // filter.exclude_ports
};

struct LimitsConfig {
  uint32_t max_connections = 16384;    // limits.max_connections: userspace trackers (LRU)
  uint32_t max_head_bytes = 32768;     // limits.max_head_bytes
  uint32_t max_pending_requests = 64;  // limits.max_pending_requests: per connection
  uint32_t idle_timeout_s = 300;       // limits.idle_timeout_s: tracker evicted after idle
  uint32_t event_queue = 65536;        // limits.event_queue: transactions waiting for export
};

struct EventsConfig {
  std::string path;  // events.path: "" = off, "-" = stdout, else a file (appended)
  /// events.select: which transactions and operations become events.
  enum class Select { kAll, kErrors, kSlow, kSample };
  Select select = Select::kAll;
  /// events.slow_threshold: an HTTP transaction at least this long is "slow" (a database
  /// operation: db.slow_threshold).
  uint64_t slow_threshold_ms = 500;
  /// events.sample_ratio (select: sample): the share of the other events kept, 0..1.
  double sample_ratio = 0.1;
};

/// "all", "errors", "slow", "sample".
const char* SelectName(EventsConfig::Select s);

struct HttpConfig {
  std::string listen = "127.0.0.1:9464";  // http.listen: /metrics, /health, /ready, /api/v1/*
};

struct RedactionConfig {
  // redaction.query_keys: query parameters whose values are masked (substring match,
  // case-insensitive: "token" masks access_token too).
  std::vector<std::string> query_keys = {"password", "passwd", "pwd", "token", "card",    "cvv",
                                         "cvc",      "secret", "key", "auth",  "session", "pin"};
};

/// services[i]: names the service of a transaction. Every criterion given must match; at
/// least one is required. The first matching rule wins; without one, the process command
/// name (comm) is the service name.
struct ServiceRule {
  std::string name;     // services[i].name: the service.name value (1..64 printable chars)
  std::string process;  // services[i].process: comm, exact ("" = any)
  std::string exe;      // services[i].exe: executable path, exact, or a prefix ending in '/'
  uint16_t port = 0;    // services[i].port: listening port, server transactions only (0 = any)
};

/// routes.patterns[i]: a route template tried before the automatic templating.
struct RoutePattern {
  std::string service;  // routes.patterns[i].service: "" = every service
  std::string pattern;  // routes.patterns[i].pattern: "/api/orders/{order_id}/items", "/static/*"
};

struct RoutesConfig {
  uint32_t max_per_service = 500;      // routes.max_per_service: beyond it routes fold into "/*"
  bool auto_template = true;           // routes.auto_template: {id}, {uuid}, {hex}, {token}, {date}
  std::vector<RoutePattern> patterns;  // routes.patterns: service-specific first, then global
};

struct MetricsConfig {
  // metrics.duration_buckets: histogram upper bounds in seconds (OTel defaults plus 3 s).
  std::vector<double> duration_buckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
                                          0.75,  1,    2.5,   3,    5,     7.5, 10};
  // metrics.body_size_buckets: histogram upper bounds in bytes.
  std::vector<double> body_size_buckets = {0,    32,   64,   128,   256,   512,    1024,
                                           2048, 4096, 8192, 16384, 65536, 262144, 1048576};
};

struct LogConfig {
  std::string level = "info";  // log.level: trace|debug|info|warn|error
};

struct TlsConfig {
  bool enabled = true;  // tls.enabled: OpenSSL and Go uprobes (HTTPS plaintext without keys)
  /// tls.emulated_sites: SSL_read/SSL_write probed on instructions the kernel emulates where
  /// the disassembly shows the known shape (no single-step, no uretprobe); false: entry +
  /// uretprobe everywhere.
  bool emulated_sites = true;
  /// tls.go: Go's crypto/tls ((*Conn).Read/Write) in Go executables with a symbol table.
  bool go = true;
};

/// db: PostgreSQL, MySQL/MariaDB and Redis from the same capture.
struct DbConfig {
  bool enabled = true;  // db.enabled: recognise and parse database connections
  /// db.ports: server ports that open a connection on a mid-stream message too (connections
  /// older than the agent). Strong first messages (a PostgreSQL startup, a MySQL greeting, a
  /// RESP command) are recognised on any port.
  std::vector<uint16_t> postgresql_ports = {5432};
  std::vector<uint16_t> mysql_ports = {3306};
  std::vector<uint16_t> redis_ports = {6379};
  /// db.slow_threshold: operations at least this long are logged at WARN and counted in
  /// redtap_db_slow_operations_total (the seed's "requêtes lentes (> 1s)").
  uint64_t slow_threshold_ms = 1000;
  /// db.max_operations: (service, system, operation, collection, server, error) series kept;
  /// beyond, the operation and collection fold into "_OTHER".
  size_t max_series = 5000;
};

/// kubernetes: pod names, namespaces and workloads for the k8s_* labels (container ids and
/// pod uids come from /proc/PID/cgroup whatever this says).
struct KubernetesConfig {
  enum class Mode { kAuto, kOn, kOff };
  /// auto: on when running in a pod (KUBERNETES_SERVICE_HOST and a ServiceAccount token).
  Mode metadata = Mode::kAuto;
  /// Where the node's pods are read: "" = https://$NODE_IP:10250/pods (the kubelet), else an
  /// http(s) URL answering a PodList (a kubelet's /pods, or the API server's
  /// /api/v1/pods?fieldSelector=spec.nodeName=NODE).
  std::string pods_url;
  uint64_t refresh_interval_ms = 30000;
  /// Verify the kubelet's serving certificate against the ServiceAccount CA. Kubelets often
  /// serve a self-signed certificate: false accepts it (the token still authenticates us).
  bool verify_tls = true;
  size_t max_pods = 1024;  // pods kept from one answer (a node runs at most a few hundred)
};

/// An HTTP method (upper-case token; "" = any) and a route pattern (routes.patterns syntax:
/// "/api/orders/{id}/confirmation", "/api/payment/*").
struct EcommerceRoute {
  std::string method;
  std::string route;
};

/// ecommerce.tenant[i]: where the tenant id comes from; exactly one of the two is set.
struct TenantRule {
  std::string header;         // a request header name ("X-Tenant-Id")
  uint32_t path_segment = 0;  // 1-based segment of the URL path (/t/{tenant}/...: 2)
  std::string path_prefix;    // path_segment rules: only paths starting with it ("/t/")
};

struct FunnelStep {
  std::string name;  // label value of the step
  EcommerceRoute match;
};

struct FunnelConfig {
  std::string name;               // ecommerce.funnel.name: label value ("" with no steps)
  std::vector<FunnelStep> steps;  // ecommerce.funnel.steps, in funnel order
};

struct GatewayConfig {
  std::string name;                // label value ("stripe")
  std::vector<std::string> hosts;  // host names of outbound calls (lower case, exact)
};

/// A field read from a captured JSON body: "request.amount", "response.error.code".
struct BodyField {
  bool response = false;          // which body
  std::vector<std::string> path;  // object keys, outermost first; empty = not configured
  std::string text;               // as configured
};

struct PaymentFields {
  BodyField amount{false, {"amount"}, "request.amount"};        // a JSON number or decimal string
  BodyField currency{false, {"currency"}, "request.currency"};  // 3-letter ISO 4217 code
  BodyField reason{true, {"error", "code"}, "response.error.code"};  // short code: a label
};

struct PaymentsConfig {
  std::vector<EcommerceRoute> endpoints;  // ecommerce.payments.endpoints (server side)
  std::vector<GatewayConfig> gateways;    // ecommerce.payments.gateways (outbound, by host)
  PaymentFields fields;                   // ecommerce.payments.fields
};

/// An inclusive status range: 402 is {402, 402}, "5xx" is {500, 599}.
struct StatusRange {
  int lo = 0;
  int hi = 0;
};

struct ErrorCategory {
  std::string name;                   // label value
  std::vector<std::string> routes;    // route patterns; empty = any route
  std::vector<StatusRange> statuses;  // at least one
  std::string kind;                   // where it is counted: "client", else server ("" = server)
};

struct EcommerceConfig {
  std::vector<std::string> services;  // ecommerce.services: service.name values; empty = all
  std::vector<TenantRule> tenant;     // ecommerce.tenant: first rule that yields a value wins
  FunnelConfig funnel;                // ecommerce.funnel
  PaymentsConfig payments;            // ecommerce.payments
  std::vector<ErrorCategory> error_categories;  // ecommerce.error_categories: first match wins
  uint32_t capture_bytes_per_call = 8192;       // ecommerce.capture_bytes_per_call: kernel cap for
                                                // payment endpoints and gateway calls
  uint32_t body_bytes = 4096;  // ecommerce.body_bytes: body prefix kept to read the fields
  uint32_t max_tenants = 100;  // ecommerce.max_tenants: then tenant="_OTHER"
  uint32_t max_reasons = 50;   // ecommerce.max_reasons: then reason="_OTHER"
  // ecommerce.amount_buckets: redtap_ecommerce_payment_amount histogram bounds.
  std::vector<double> amount_buckets = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

  /// Anything configured at all (else the e-commerce view is off).
  bool enabled() const {
    return !tenant.empty() || !funnel.steps.empty() || !payments.endpoints.empty() ||
           !payments.gateways.empty() || !error_categories.empty();
  }
};

struct Config {
  CaptureConfig capture;
  FilterConfig filter;
  LimitsConfig limits;
  EventsConfig events;
  HttpConfig http;
  RedactionConfig redaction;
  LogConfig log;
  std::vector<ServiceRule> services;
  RoutesConfig routes;
  MetricsConfig metrics;
  TlsConfig tls;
  DbConfig db;
  KubernetesConfig kubernetes;
  EcommerceConfig ecommerce;
  AlertsConfig alerts;
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

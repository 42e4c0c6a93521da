// SPDX-License-Identifier: Apache-2.0
#include "userspace/config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace redtap::config {
namespace {

// Field by field: a new Config field must be added here, to config/redtap.yaml and to the
// key list below, or these tests fail.
void ExpectSameConfig(const Config& a, const Config& b) {
  EXPECT_EQ(a.capture.max_bytes_per_call, b.capture.max_bytes_per_call);
  EXPECT_EQ(a.capture.ring_buffer_bytes, b.capture.ring_buffer_bytes);
  EXPECT_EQ(a.capture.wakeup_bytes, b.capture.wakeup_bytes);
  EXPECT_EQ(a.capture.poll_interval_ms, b.capture.poll_interval_ms);
  EXPECT_EQ(a.capture.max_connections, b.capture.max_connections);
  EXPECT_EQ(a.capture.skip_bodies, b.capture.skip_bodies);
  EXPECT_EQ(a.filter.include_processes, b.filter.include_processes);
  EXPECT_EQ(a.filter.exclude_processes, b.filter.exclude_processes);
  EXPECT_EQ(a.filter.include_ports, b.filter.include_ports);
  EXPECT_EQ(a.filter.exclude_ports, b.filter.exclude_ports);
  EXPECT_EQ(a.limits.max_connections, b.limits.max_connections);
  EXPECT_EQ(a.limits.max_head_bytes, b.limits.max_head_bytes);
  EXPECT_EQ(a.limits.max_pending_requests, b.limits.max_pending_requests);
  EXPECT_EQ(a.limits.idle_timeout_s, b.limits.idle_timeout_s);
  EXPECT_EQ(a.limits.event_queue, b.limits.event_queue);
  EXPECT_EQ(a.events.path, b.events.path);
  EXPECT_EQ(a.events.select, b.events.select);
  EXPECT_EQ(a.events.slow_threshold_ms, b.events.slow_threshold_ms);
  EXPECT_EQ(a.events.sample_ratio, b.events.sample_ratio);
  EXPECT_EQ(a.http.listen, b.http.listen);
  EXPECT_EQ(a.redaction.query_keys, b.redaction.query_keys);
  EXPECT_EQ(a.log.level, b.log.level);
  ASSERT_EQ(a.services.size(), b.services.size());
  for (size_t i = 0; i < a.services.size(); ++i) {
    EXPECT_EQ(a.services[i].name, b.services[i].name);
    EXPECT_EQ(a.services[i].process, b.services[i].process);
    EXPECT_EQ(a.services[i].exe, b.services[i].exe);
    EXPECT_EQ(a.services[i].port, b.services[i].port);
  }
  EXPECT_EQ(a.routes.max_per_service, b.routes.max_per_service);
  EXPECT_EQ(a.routes.auto_template, b.routes.auto_template);
  ASSERT_EQ(a.routes.patterns.size(), b.routes.patterns.size());
  for (size_t i = 0; i < a.routes.patterns.size(); ++i) {
    EXPECT_EQ(a.routes.patterns[i].service, b.routes.patterns[i].service);
    EXPECT_EQ(a.routes.patterns[i].pattern, b.routes.patterns[i].pattern);
  }
  EXPECT_EQ(a.metrics.duration_buckets, b.metrics.duration_buckets);
  EXPECT_EQ(a.metrics.body_size_buckets, b.metrics.body_size_buckets);
  EXPECT_EQ(a.tls.enabled, b.tls.enabled);
  EXPECT_EQ(a.tls.emulated_sites, b.tls.emulated_sites);
  EXPECT_EQ(a.tls.go, b.tls.go);
  EXPECT_EQ(a.db.enabled, b.db.enabled);
  EXPECT_EQ(a.db.postgresql_ports, b.db.postgresql_ports);
  EXPECT_EQ(a.db.mysql_ports, b.db.mysql_ports);
  EXPECT_EQ(a.db.redis_ports, b.db.redis_ports);
  EXPECT_EQ(a.db.slow_threshold_ms, b.db.slow_threshold_ms);
  EXPECT_EQ(a.db.max_series, b.db.max_series);
  EXPECT_EQ(a.kubernetes.metadata, b.kubernetes.metadata);
  EXPECT_EQ(a.kubernetes.pods_url, b.kubernetes.pods_url);
  EXPECT_EQ(a.kubernetes.refresh_interval_ms, b.kubernetes.refresh_interval_ms);
  EXPECT_EQ(a.kubernetes.verify_tls, b.kubernetes.verify_tls);
  EXPECT_EQ(a.kubernetes.max_pods, b.kubernetes.max_pods);
  const EcommerceConfig& ea = a.ecommerce;
  const EcommerceConfig& eb = b.ecommerce;
  EXPECT_EQ(ea.services, eb.services);
  EXPECT_EQ(ea.tenant.size(), eb.tenant.size());
  EXPECT_EQ(ea.funnel.name, eb.funnel.name);
  EXPECT_EQ(ea.funnel.steps.size(), eb.funnel.steps.size());
  EXPECT_EQ(ea.payments.endpoints.size(), eb.payments.endpoints.size());
  EXPECT_EQ(ea.payments.gateways.size(), eb.payments.gateways.size());
  EXPECT_EQ(ea.payments.fields.amount.text, eb.payments.fields.amount.text);
  EXPECT_EQ(ea.payments.fields.amount.path, eb.payments.fields.amount.path);
  EXPECT_EQ(ea.payments.fields.currency.path, eb.payments.fields.currency.path);
  EXPECT_EQ(ea.payments.fields.reason.path, eb.payments.fields.reason.path);
  EXPECT_EQ(ea.payments.fields.reason.response, eb.payments.fields.reason.response);
  EXPECT_EQ(ea.error_categories.size(), eb.error_categories.size());
  EXPECT_EQ(ea.capture_bytes_per_call, eb.capture_bytes_per_call);
  EXPECT_EQ(ea.body_bytes, eb.body_bytes);
  EXPECT_EQ(ea.max_tenants, eb.max_tenants);
  EXPECT_EQ(ea.max_reasons, eb.max_reasons);
  EXPECT_EQ(ea.amount_buckets, eb.amount_buckets);
  EXPECT_EQ(ea.enabled(), eb.enabled());
  EXPECT_EQ(a.alerts.evaluation_interval_ms, b.alerts.evaluation_interval_ms);
  EXPECT_EQ(a.alerts.repeat_interval_ms, b.alerts.repeat_interval_ms);
  EXPECT_EQ(a.alerts.rules.size(), b.alerts.rules.size());
  EXPECT_EQ(a.alerts.pools.size(), b.alerts.pools.size());
  EXPECT_EQ(a.alerts.channels.size(), b.alerts.channels.size());
  EXPECT_EQ(a.alerts.routes.size(), b.alerts.routes.size());
}

const std::vector<std::string> kAllKeys = {
    "capture.max_bytes_per_call",
    "capture.ring_buffer_bytes",
    "capture.wakeup_bytes",
    "capture.poll_interval_ms",
    "capture.max_connections",
    "capture.skip_bodies",
    "filter.include_processes",
    "filter.exclude_processes",
    "filter.include_ports",
    "filter.exclude_ports",
    "limits.max_connections",
    "limits.max_head_bytes",
    "limits.max_pending_requests",
    "limits.idle_timeout_s",
    "limits.event_queue",
    "events.path",
    "events.select",
    "events.slow_threshold",
    "events.sample_ratio",
    "http.listen",
    "redaction.query_keys",
    "log.level",
    "services",  // a list: the section itself is the key
    "routes.max_per_service",
    "routes.auto_template",
    "routes.patterns",
    "metrics.duration_buckets",
    "metrics.body_size_buckets",
    "tls.enabled",
    "tls.emulated_sites",
    "tls.go",
    "db.enabled",
    "db.ports",
    "db.slow_threshold",
    "db.max_series",
    "kubernetes.metadata",
    "kubernetes.pods_url",
    "kubernetes.refresh_interval",
    "kubernetes.verify_tls",
    "kubernetes.max_pods",
    "ecommerce.services",
    "ecommerce.tenant",
    "ecommerce.funnel",
    "ecommerce.payments",
    "ecommerce.error_categories",
    "ecommerce.capture_bytes_per_call",
    "ecommerce.body_bytes",
    "ecommerce.max_tenants",
    "ecommerce.max_reasons",
    "ecommerce.amount_buckets",
    "alerts.evaluation_interval",
    "alerts.repeat_interval",
    "alerts.rules",
    "alerts.pools",
    "alerts.channels",
    "alerts.routes",
};

std::string ErrorOf(const std::string& yaml) {
  Result<Config> r = LoadConfigString(yaml, "config.yaml");
  EXPECT_FALSE(r.ok()) << yaml;
  return r.ok() ? "" : r.error();
}

TEST(ConfigTest, EmbeddedDefaultParsesToStructDefaults) {
  Result<Config> r = LoadConfigString(DefaultConfigText(), "<embedded>");
  ASSERT_TRUE(r.ok()) << r.error();
  ExpectSameConfig(r.value(), Config{});
  ExpectSameConfig(DefaultConfig(), Config{});
}

TEST(ConfigTest, EmbeddedDefaultListsEveryKeyExactly) {
  YAML::Node root = YAML::Load(DefaultConfigText());
  size_t count = 0;
  for (const auto& section : root) {
    if (section.second.IsSequence()) {
      const std::string dotted = section.first.Scalar();
      EXPECT_NE(std::find(kAllKeys.begin(), kAllKeys.end(), dotted), kAllKeys.end()) << dotted;
      ++count;
      continue;
    }
    for (const auto& key : section.second) {
      const std::string dotted = section.first.Scalar() + "." + key.first.Scalar();
      EXPECT_NE(std::find(kAllKeys.begin(), kAllKeys.end(), dotted), kAllKeys.end()) << dotted;
      ++count;
    }
  }
  EXPECT_EQ(count, kAllKeys.size());
}

TEST(ConfigTest, DbSection) {
  Result<Config> r = LoadConfigString(
      "db:\n  ports:\n    postgresql: [5432, 6432]\n    redis: []\n  slow_threshold: 250ms\n",
      "config.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value().db.postgresql_ports, (std::vector<uint16_t>{5432, 6432}));
  EXPECT_EQ(r.value().db.mysql_ports, (std::vector<uint16_t>{3306}));  // default kept
  EXPECT_TRUE(r.value().db.redis_ports.empty());
  EXPECT_EQ(r.value().db.slow_threshold_ms, 250u);
  EXPECT_NE(ErrorOf("db:\n  ports:\n    mysql: [6379]\n")
                .find("db.ports: port 6379 is listed for both mysql and redis"),
            std::string::npos);
  EXPECT_NE(ErrorOf("db:\n  ports:\n    oracle: [1521]\n").find("db.ports.oracle"),
            std::string::npos);
  EXPECT_NE(ErrorOf("db:\n  slow_threshold: fast\n").find("db.slow_threshold"), std::string::npos);
  EXPECT_NE(ErrorOf("db:\n  ports:\n    redis: [70000]\n").find("db.ports.redis"),
            std::string::npos);
}

TEST(ConfigTest, EventsSelection) {
  Result<Config> r = LoadConfigString(
      "events:\n  select: sample\n  slow_threshold: 2s\n  sample_ratio: 0.25\n", "config.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value().events.select, EventsConfig::Select::kSample);
  EXPECT_EQ(r.value().events.slow_threshold_ms, 2000u);
  EXPECT_EQ(r.value().events.sample_ratio, 0.25);
  EXPECT_EQ(DefaultConfig().events.select, EventsConfig::Select::kAll);
  for (const char* v : {"all", "errors", "slow", "sample"}) {
    std::string yaml = "events: {select: ";
    yaml.append(v).append("}");
    Result<Config> c = LoadConfigString(yaml, "c.yaml");
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_STREQ(SelectName(c.value().events.select), v);
  }
  EXPECT_NE(ErrorOf("events: {select: some}")
                .find("events.select: must be one of all, errors, "
                      "slow, sample"),
            std::string::npos);
  EXPECT_NE(ErrorOf("events: {sample_ratio: 1.5}").find("events.sample_ratio"), std::string::npos);
  EXPECT_NE(ErrorOf("events: {sample_ratio: -0.1}").find("events.sample_ratio"), std::string::npos);
  EXPECT_NE(ErrorOf("events: {sample_ratio: half}").find("events.sample_ratio"), std::string::npos);
  EXPECT_NE(ErrorOf("events: {slow_threshold: 0ms}").find("events.slow_threshold"),
            std::string::npos);
}

TEST(ConfigTest, EmbeddedTextIsTheRepoFile) {
  EXPECT_NE(DefaultConfigText().find("SPDX-License-Identifier"), std::string::npos);
  EXPECT_NE(DefaultConfigText().find("max_bytes_per_call: 4096"), std::string::npos);
}

TEST(ConfigTest, EmptyAndCommentOnlyTextGiveDefaults) {
  for (const char* text :
       {"", "\n", "# only a comment\n  # another\n", "capture:\n  # none\n", "---\n"}) {
    Result<Config> r = LoadConfigString(text, "config.yaml");
    ASSERT_TRUE(r.ok()) << text << ": " << r.error();
    ExpectSameConfig(r.value(), Config{});
  }
}

// fuzz_config: yaml-cpp 0.7's LoadAll never returned (empty documents forever, memory
// growing) on a stray ',' at the top level; the loader must answer with an error.
TEST(ConfigTest, StrayCommaIsAnErrorNotAHang) {
  for (const std::string yaml :
       {",", ", a", ",  error_categories:  # x\n", "---\na: 1\n---\nb: 2\n"}) {
    EXPECT_NE(ErrorOf(yaml).find("expected one YAML document"), std::string::npos) << yaml;
  }
}

TEST(ConfigTest, OverridesOnTopOfDefaults) {
  Result<Config> r = LoadConfigString(R"(
capture:
  max_bytes_per_call: 8192
  ring_buffer_bytes: 1048576
  wakeup_bytes: 4096
filter:
  include_processes: [nginx, python3]
  exclude_ports:
    - 22
    - 65535
limits:
  event_queue: 1
events:
  path: "-"
http:
  listen: "[::1]:9464"
redaction:
  query_keys: [ssn]
log:
  level: debug
)",
                                      "config.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  const Config& c = r.value();
  EXPECT_EQ(c.capture.max_bytes_per_call, 8192u);
  EXPECT_EQ(c.capture.ring_buffer_bytes, 1u << 20);
  EXPECT_EQ(c.capture.wakeup_bytes, 4096u);
  EXPECT_EQ(c.capture.poll_interval_ms, 10u);  // untouched default
  EXPECT_EQ(c.filter.include_processes, (std::vector<std::string>{"nginx", "python3"}));
  EXPECT_EQ(c.filter.exclude_ports, (std::vector<uint16_t>{22, 65535}));
  EXPECT_EQ(c.limits.event_queue, 1u);
  EXPECT_EQ(c.limits.max_connections, 16384u);
  EXPECT_EQ(c.events.path, "-");
  EXPECT_EQ(c.http.listen, "[::1]:9464");
  EXPECT_EQ(c.redaction.query_keys, std::vector<std::string>{"ssn"});  // replaces the list
  EXPECT_EQ(c.log.level, "debug");
}

TEST(ConfigTest, ExampleErrorMessage) {
  EXPECT_EQ(ErrorOf("capture:\n  max_bytes_per_call: 1000\n"),
            "config.yaml: capture.max_bytes_per_call: must be a power of two between 64 and "
            "8192 (got 1000)");
}

struct BadValue {
  const char* yaml;
  const char* key;  // expected dotted key in the message
};

TEST(ConfigTest, EveryValidationErrorNamesItsKey) {
  const BadValue cases[] = {
      {"capture: {max_bytes_per_call: 32}", "capture.max_bytes_per_call"},
      {"capture: {max_bytes_per_call: 16384}", "capture.max_bytes_per_call"},
      {"capture: {max_bytes_per_call: -64}", "capture.max_bytes_per_call"},
      {"capture: {max_bytes_per_call: abc}", "capture.max_bytes_per_call"},
      {"capture: {max_bytes_per_call: \"4096\"}", "capture.max_bytes_per_call"},
      {"capture: {max_bytes_per_call: 4096.0}", "capture.max_bytes_per_call"},
      {"capture: {max_bytes_per_call: [4096]}", "capture.max_bytes_per_call"},
      {"capture: {max_bytes_per_call: }", "capture.max_bytes_per_call"},
      {"capture: {ring_buffer_bytes: 524288}", "capture.ring_buffer_bytes"},
      {"capture: {ring_buffer_bytes: 2147483648}", "capture.ring_buffer_bytes"},
      {"capture: {ring_buffer_bytes: 3145728}", "capture.ring_buffer_bytes"},
      {"capture: {ring_buffer_bytes: 99999999999999999999999}", "capture.ring_buffer_bytes"},
      {"capture: {wakeup_bytes: 67108864}", "capture.wakeup_bytes"},
      {"capture: {ring_buffer_bytes: 1048576, wakeup_bytes: 2097152}", "capture.wakeup_bytes"},
      {"capture: {wakeup_bytes: 0}", "capture.wakeup_bytes"},
      {"capture: {poll_interval_ms: 0}", "capture.poll_interval_ms"},
      {"capture: {skip_bodies: maybe}", "capture.skip_bodies"},
      {"capture: {poll_interval_ms: 1001}", "capture.poll_interval_ms"},
      {"capture: {max_connections: 1023}", "capture.max_connections"},
      {"capture: {max_connections: 4194305}", "capture.max_connections"},
      {"filter: {include_ports: [80, 0]}", "filter.include_ports[1]"},
      {"filter: {exclude_ports: [65536]}", "filter.exclude_ports[0]"},
      {"filter: {include_ports: 80}", "filter.include_ports"},
      {"filter: {include_processes: nginx}", "filter.include_processes"},
      {"filter: {exclude_processes: [a_name_longer_than_15]}", "filter.exclude_processes[0]"},
      {"filter: {exclude_processes: [{a: b}]}", "filter.exclude_processes[0]"},
      {"limits: {max_connections: 0}", "limits.max_connections"},
      {"limits: {max_head_bytes: 100}", "limits.max_head_bytes"},
      {"limits: {max_head_bytes: 2097152}", "limits.max_head_bytes"},
      {"limits: {max_pending_requests: 0}", "limits.max_pending_requests"},
      {"limits: {idle_timeout_s: 0}", "limits.idle_timeout_s"},
      {"limits: {idle_timeout_s: 86401}", "limits.idle_timeout_s"},
      {"limits: {event_queue: 0}", "limits.event_queue"},
      {"limits: {event_queue: 16777217}", "limits.event_queue"},
      {"events: {path: [a]}", "events.path"},
      {"http: {listen: localhost}", "http.listen"},
      {"http: {listen: \"::1:9464\"}", "http.listen"},
      {"http: {listen: \"[::1]\"}", "http.listen"},
      {"http: {listen: \"[::1:9464\"}", "http.listen"},
      {"http: {listen: \"[]:9464\"}", "http.listen"},
      {"http: {listen: \":9464\"}", "http.listen"},
      {"http: {listen: \"127.0.0.1:0\"}", "http.listen"},
      {"http: {listen: \"127.0.0.1:65536\"}", "http.listen"},
      {"http: {listen: \"127.0.0.1:http\"}", "http.listen"},
      {"http: {listen: \"bad host:80\"}", "http.listen"},
      {"redaction: {query_keys: [token, \"\"]}", "redaction.query_keys[1]"},
      {"redaction: {query_keys: token}", "redaction.query_keys"},
      {"log: {level: verbose}", "log.level"},
      {"log: {level: INFO}", "log.level"},
      {"log: {level: [info]}", "log.level"},
      {"services: {name: a}", "services"},
      {"services: [{name: a}]", "services[0]"},
      {"services: [{process: nginx}]", "services[0]"},
      {"services: [a]", "services[0]"},
      {"services: [{name: a, process: nginx}, {name: \"\", process: x}]", "services[1].name"},
      {"services: [{name: a, process: a_name_longer_than_15}]", "services[0].process"},
      {"services: [{name: a, exe: bin/php}]", "services[0].exe"},
      {"services: [{name: a, port: 0}]", "services[0].port"},
      {"services: [{name: \"a\\tb\", port: 80}]", "services[0].name"},
      {"routes: {max_per_service: 0}", "routes.max_per_service"},
      {"routes: {max_per_service: 100001}", "routes.max_per_service"},
      {"routes: {auto_template: yes}", "routes.auto_template"},
      {"routes: {auto_template: \"true\"}", "routes.auto_template"},
      {"routes: {patterns: /api}", "routes.patterns"},
      {"routes: {patterns: [{service: shop}]}", "routes.patterns[0]"},
      {"routes: {patterns: [{pattern: api/x}]}", "routes.patterns[0].pattern"},
      {"routes: {patterns: [{pattern: /a}, {pattern: \"/a/{id\"}]}", "routes.patterns[1].pattern"},
      {"routes: {patterns: [{pattern: \"/a/x{id}\"}]}", "routes.patterns[0].pattern"},
      {"routes: {patterns: [{pattern: \"/a/{1d}\"}]}", "routes.patterns[0].pattern"},
      {"routes: {patterns: [{pattern: \"/a/*/b\"}]}", "routes.patterns[0].pattern"},
      {"routes: {patterns: [{pattern: \"/a/{p...}/b\"}]}", "routes.patterns[0].pattern"},
      {"routes: {patterns: [{pattern: \"/a?x=1\"}]}", "routes.patterns[0].pattern"},
      {"routes: {patterns: [{pattern: \"/a b\"}]}", "routes.patterns[0].pattern"},
      {"routes: {patterns: [{pattern: /a, service: \"\"}]}", "routes.patterns[0].service"},
      {"metrics: {duration_buckets: []}", "metrics.duration_buckets"},
      {"metrics: {duration_buckets: 1}", "metrics.duration_buckets"},
      {"metrics: {duration_buckets: }", "metrics.duration_buckets"},
      {"metrics: {duration_buckets: [0, 1]}", "metrics.duration_buckets[0]"},
      {"metrics: {duration_buckets: [1, 0.5]}", "metrics.duration_buckets[1]"},
      {"metrics: {duration_buckets: [1, 1]}", "metrics.duration_buckets[1]"},
      {"metrics: {duration_buckets: [0.1, inf]}", "metrics.duration_buckets[1]"},
      {"metrics: {duration_buckets: [0.1, .inf]}", "metrics.duration_buckets[1]"},
      {"metrics: {duration_buckets: [0.1, nan]}", "metrics.duration_buckets[1]"},
      {"metrics: {duration_buckets: [\"0.1\"]}", "metrics.duration_buckets[0]"},
      {"metrics: {duration_buckets: [0.1, 1s]}", "metrics.duration_buckets[1]"},
      {"metrics: {body_size_buckets: [-1, 0]}", "metrics.body_size_buckets[0]"},
      {"metrics: {body_size_buckets: [0, 0]}", "metrics.body_size_buckets[1]"},
      {"metrics: {body_size_buckets: [[0]]}", "metrics.body_size_buckets[0]"},
      {"capture: 5", "capture"},
      {"capture: [a, b]", "capture"},
  };
  for (const auto& c : cases) {
    const std::string err = ErrorOf(c.yaml);
    EXPECT_EQ(err.rfind(std::string("config.yaml: ") + c.key + ": ", 0), 0u)
        << c.yaml << "\n  -> " << err;
    EXPECT_NE(err.find("(got "), std::string::npos) << c.yaml << "\n  -> " << err;
  }
}

TEST(ConfigTest, ValidEdgeValues) {
  for (const char* yaml : {
           "capture: {max_bytes_per_call: 64}",
           "capture: {max_bytes_per_call: 8192}",
           "capture: {ring_buffer_bytes: 1073741824}",
           "capture: {ring_buffer_bytes: 2097152, wakeup_bytes: 2097151}",
           "capture: {poll_interval_ms: 1}",
           "capture: {poll_interval_ms: 1000}",
           "capture: {max_connections: 1024}",
           "capture: {max_connections: 4194304}",
           "filter: {include_ports: [1, 65535], include_processes: [a_name_of_15ch]}",
           "filter: {include_ports: ~}",
           "events: {path: /var/log/redtap/events.ndjson}",
           "events: {path: 123}",
           "events: {path: }",
           "http: {listen: \"0.0.0.0:1\"}",
           "http: {listen: \"localhost:65535\"}",
           "http: {listen: \"[fe80::1%eth0]:9464\"}",
           "http: {listen: \"[::ffff:127.0.0.1]:9464\"}",
           "log: {level: trace}",
           "log: {level: error}",
       }) {
    Result<Config> r = LoadConfigString(yaml, "config.yaml");
    EXPECT_TRUE(r.ok()) << yaml << ": " << r.error();
  }
}

TEST(ConfigTest, SmallRingBufferNeedsSmallerWakeup) {
  EXPECT_EQ(ErrorOf("capture: {ring_buffer_bytes: 1048576}"),
            "config.yaml: capture.wakeup_bytes: must be less than capture.ring_buffer_bytes "
            "(1048576) (got 1048576, the default: lower capture.wakeup_bytes too)");
  EXPECT_TRUE(
      LoadConfigString("capture: {ring_buffer_bytes: 1048576, wakeup_bytes: 262144}", "x").ok());
}

TEST(ConfigTest, UnknownKeysAtEveryLevel) {
  EXPECT_EQ(
      ErrorOf("captur:\n  max_bytes_per_call: 64\n").rfind("config.yaml: captur: unknown key", 0),
      0u);
  const std::string err = ErrorOf("capture:\n  max_byte_per_call: 64\n");
  EXPECT_EQ(err.rfind("config.yaml: capture.max_byte_per_call: unknown key", 0), 0u) << err;
  EXPECT_NE(err.find("max_bytes_per_call"), std::string::npos) << "lists known keys: " << err;
  EXPECT_EQ(ErrorOf("events: {path: x, format: json}").rfind("config.yaml: events.format: ", 0),
            0u);
  EXPECT_EQ(ErrorOf("log: {level: info, file: x}").rfind("config.yaml: log.file: ", 0), 0u);
  EXPECT_EQ(ErrorOf("services: [{name: a, port: 80, host: x}]")
                .rfind("config.yaml: services[0].host: unknown key", 0),
            0u);
  EXPECT_EQ(ErrorOf("routes: {patterns: [{pattern: /a, method: GET}]}")
                .rfind("config.yaml: routes.patterns[0].method: unknown key", 0),
            0u);
  EXPECT_EQ(ErrorOf("metrics: {buckets: [1]}").rfind("config.yaml: metrics.buckets: unknown", 0),
            0u);
}

TEST(ConfigTest, DuplicateKey) {
  const std::string err = ErrorOf("log:\n  level: info\n  level: debug\n");
  EXPECT_EQ(err, "config.yaml: log.level: duplicate key");
}

TEST(ConfigTest, TopLevelMustBeAMap) {
  EXPECT_NE(ErrorOf("just a string").find("must be a map"), std::string::npos);
  EXPECT_NE(ErrorOf("- a\n- b\n").find("must be a map"), std::string::npos);
  EXPECT_NE(ErrorOf("a: 1\n---\nb: 2\n").find("one YAML document"), std::string::npos);
}

TEST(ConfigTest, SyntaxErrorGivesOriginLineAndColumn) {
  const std::string err = ErrorOf("capture:\n  max_bytes_per_call: 64\n  ring: [1, 2\n");
  EXPECT_EQ(err.rfind("config.yaml: line ", 0), 0u) << err;
  EXPECT_NE(err.find("column"), std::string::npos) << err;
  EXPECT_NE(err.find("invalid YAML"), std::string::npos) << err;

  const std::string err2 = ErrorOf("log:\n  level: info\n bad indent: [\n");
  EXPECT_EQ(err2.rfind("config.yaml: line ", 0), 0u) << err2;
  const std::string err3 = ErrorOf("a: b: c\n");
  EXPECT_EQ(err3.rfind("config.yaml: line 1, column ", 0), 0u) << err3;
}

TEST(ConfigTest, LoadConfigFile) {
  char path[] = "/tmp/redtap_config_testXXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << "log:\n  level: warn\n";
  }
  Result<Config> r = LoadConfigFile(path);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value().log.level, "warn");
  {
    std::ofstream out(path);
    out << "log:\n  level: loud\n";
  }
  r = LoadConfigFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rfind(std::string(path) + ": log.level: ", 0), 0u) << r.error();
  std::remove(path);

  r = LoadConfigFile("/nonexistent/redtap.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rfind("/nonexistent/redtap.yaml: cannot open", 0), 0u) << r.error();
}

}  // namespace
}  // namespace redtap::config

namespace redtap::config {
namespace {

TEST(ConfigTest, ServicesRoutesAndMetrics) {
  Result<Config> r = LoadConfigString(R"(
services:
  - {name: shop, process: php-fpm}
  - name: payment-gw
    exe: /opt/payment/
  - {name: catalog, process: java, port: 8080}
routes:
  max_per_service: 50
  auto_template: false
  patterns:
    - {pattern: "/api/products/{id}"}
    - {service: shop, pattern: "/api/orders/{order_id}/items"}
    - {pattern: /static/*}
    - {pattern: "/files/{path...}"}
metrics:
  duration_buckets: [0.001, 0.1, 1e1]
  body_size_buckets: [0, 100]
)",
                                      "config.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  const Config& c = r.value();
  ASSERT_EQ(c.services.size(), 3u);
  EXPECT_EQ(c.services[0].name, "shop");
  EXPECT_EQ(c.services[0].process, "php-fpm");
  EXPECT_EQ(c.services[1].exe, "/opt/payment/");
  EXPECT_EQ(c.services[1].port, 0u);
  EXPECT_EQ(c.services[2].port, 8080u);
  EXPECT_EQ(c.routes.max_per_service, 50u);
  EXPECT_FALSE(c.routes.auto_template);
  ASSERT_EQ(c.routes.patterns.size(), 4u);
  EXPECT_EQ(c.routes.patterns[0].service, "");
  EXPECT_EQ(c.routes.patterns[0].pattern, "/api/products/{id}");
  EXPECT_EQ(c.routes.patterns[1].service, "shop");
  EXPECT_EQ(c.routes.patterns[3].pattern, "/files/{path...}");
  EXPECT_EQ(c.metrics.duration_buckets, (std::vector<double>{0.001, 0.1, 10}));
  EXPECT_EQ(c.metrics.body_size_buckets, (std::vector<double>{0, 100}));
}

TEST(ConfigTest, DefaultBucketsAreTheIssueOnes) {
  const Config c;
  EXPECT_EQ(c.metrics.duration_buckets,
            (std::vector<double>{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 3,
                                 5, 7.5, 10}));
  EXPECT_EQ(c.metrics.body_size_buckets.size(), 14u);
  EXPECT_EQ(c.routes.max_per_service, 500u);
  EXPECT_TRUE(c.services.empty());
  EXPECT_TRUE(c.routes.patterns.empty());
}

TEST(ConfigTest, ServiceRuleNeedsACriterion) {
  EXPECT_EQ(ErrorOf("services: [{name: shop}]"),
            "config.yaml: services[0]: needs at least one of process, exe, port (got only a "
            "name: \"shop\")");
}

TEST(ConfigTest, BucketErrorMessage) {
  EXPECT_EQ(ErrorOf("metrics: {duration_buckets: [0.1, 0.05]}"),
            "config.yaml: metrics.duration_buckets[1]: must be greater than the previous bucket "
            "(got 0.05)");
}

}  // namespace
}  // namespace redtap::config

namespace redtap::config {
namespace {

std::string EcommerceErrorOf(const std::string& yaml) {
  Result<Config> r = LoadConfigString(yaml, "config.yaml");
  EXPECT_FALSE(r.ok()) << yaml;
  return r.ok() ? "" : r.error();
}

TEST(EcommerceConfigTest, DefaultIsOff) { EXPECT_FALSE(DefaultConfig().ecommerce.enabled()); }

TEST(EcommerceConfigTest, ShopExampleParses) {
  Result<Config> r = LoadConfigFile(REDTAP_SOURCE_DIR "/config/examples/shop.yaml");
  ASSERT_TRUE(r.ok()) << r.error();
  const EcommerceConfig& e = r.value().ecommerce;
  EXPECT_TRUE(e.enabled());
  EXPECT_EQ(e.services, std::vector<std::string>{"shop"});
  ASSERT_EQ(e.tenant.size(), 2u);
  EXPECT_EQ(e.tenant[0].header, "X-Tenant-Id");
  EXPECT_EQ(e.tenant[1].path_segment, 2u);
  EXPECT_EQ(e.funnel.name, "checkout");
  ASSERT_EQ(e.funnel.steps.size(), 4u);
  EXPECT_EQ(e.funnel.steps[3].name, "confirmation");
  EXPECT_EQ(e.funnel.steps[3].match.method, "GET");
  EXPECT_EQ(e.funnel.steps[3].match.route, "/api/orders/{id}/confirmation");
  ASSERT_EQ(e.payments.endpoints.size(), 1u);
  EXPECT_EQ(e.payments.endpoints[0].route, "/api/payment/process");
  ASSERT_EQ(e.payments.gateways.size(), 2u);
  EXPECT_EQ(e.payments.gateways[1].hosts,
            (std::vector<std::string>{"api.paypal.com", "api-m.paypal.com"}));
  EXPECT_EQ(e.payments.fields.reason.path, (std::vector<std::string>{"error", "code"}));
  EXPECT_TRUE(e.payments.fields.reason.response);
  EXPECT_FALSE(e.payments.fields.amount.response);
  ASSERT_EQ(e.error_categories.size(), 5u);
  EXPECT_EQ(e.error_categories[0].routes, std::vector<std::string>{"/api/payment/*"});
  ASSERT_EQ(e.error_categories[0].statuses.size(), 3u);
  EXPECT_EQ(e.error_categories[0].statuses[1].lo, 502);
  EXPECT_EQ(e.error_categories[4].kind, "client");
  EXPECT_EQ(e.error_categories[4].statuses[0].lo, 500);
  EXPECT_EQ(e.error_categories[4].statuses[0].hi, 599);
}

TEST(EcommerceConfigTest, ErrorsNameTheirKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"ecommerce: {tenant: [{header: X, path_segment: 2}]}", "ecommerce.tenant[0]"},
      {"ecommerce: {tenant: [{}]}", "ecommerce.tenant[0]"},
      {"ecommerce: {tenant: [{path_segment: 0}]}", "ecommerce.tenant[0].path_segment"},
      {"ecommerce: {tenant: [{header: \"a b\"}]}", "ecommerce.tenant[0].header"},
      {"ecommerce: {funnel: {steps: [{name: a, route: /a}]}}", "ecommerce.funnel.name"},
      {"ecommerce: {funnel: {name: f, steps: [{name: a, route: a}]}}",
       "ecommerce.funnel.steps[0].route"},
      {"ecommerce: {funnel: {name: f, steps: [{name: a, method: post, route: /a}]}}",
       "ecommerce.funnel.steps[0].method"},
      {"ecommerce: {funnel: {name: f, steps: [{route: /a}]}}", "ecommerce.funnel.steps[0]"},
      {"ecommerce: {funnel: {name: f, steps: [{name: a, route: /a}, {name: a, route: /b}]}}",
       "ecommerce.funnel.steps[1].name"},
      {"ecommerce: {funnel: {name: f, steps: [{name: a, route: /a, x: 1}]}}",
       "ecommerce.funnel.steps[0].x"},
      {"ecommerce: {payments: {gateways: [{name: self, hosts: [a]}]}}",
       "ecommerce.payments.gateways[0].name"},
      {"ecommerce: {payments: {gateways: [{name: s}]}}", "ecommerce.payments.gateways[0]"},
      {"ecommerce: {payments: {fields: {amount: body.amount}}}",
       "ecommerce.payments.fields.amount"},
      {"ecommerce: {payments: {fields: {reason: request.card.cvv}}}",
       "ecommerce.payments.fields.reason"},
      {"ecommerce: {payments: {fields: {reason: request.password}}}",
       "ecommerce.payments.fields.reason"},
      {"ecommerce: {payments: {fields: {reason: response..code}}}",
       "ecommerce.payments.fields.reason"},
      {"ecommerce: {payments: {endpoints: [{method: POST}]}}", "ecommerce.payments.endpoints[0]"},
      {"ecommerce: {error_categories: [{name: a}]}", "ecommerce.error_categories[0]"},
      {"ecommerce: {error_categories: [{name: a, statuses: [6xx]}]}",
       "ecommerce.error_categories[0].statuses[0]"},
      {"ecommerce: {error_categories: [{name: a, statuses: [99]}]}",
       "ecommerce.error_categories[0].statuses[0]"},
      {"ecommerce: {error_categories: [{name: a, statuses: []}]}",
       "ecommerce.error_categories[0].statuses"},
      {"ecommerce: {error_categories: [{name: a, statuses: [500], kind: both}]}",
       "ecommerce.error_categories[0].kind"},
      {"ecommerce: {capture_bytes_per_call: 16384}", "ecommerce.capture_bytes_per_call"},
      {"ecommerce: {body_bytes: 100000}", "ecommerce.body_bytes"},
      {"ecommerce: {max_reasons: 0}", "ecommerce.max_reasons"},
      {"ecommerce: {amount_buckets: [10, 5]}", "ecommerce.amount_buckets[1]"},
      {"ecommerce: {unknown: 1}", "ecommerce.unknown"},
  };
  for (const auto& [yaml, key] : cases) {
    const std::string err = EcommerceErrorOf(yaml);
    EXPECT_NE(err.find(std::string("config.yaml: ") + key + ":"), std::string::npos)
        << yaml << " -> " << err;
  }
}

}  // namespace
}  // namespace redtap::config

namespace redtap::config {
namespace {

TEST(ConfigTest, KubernetesSection) {
  auto ok = LoadConfigString(
      "kubernetes:\n  metadata: true\n  pods_url: http://127.0.0.1:10255/pods\n"
      "  refresh_interval: 1m\n  verify_tls: false\n  max_pods: 50\n",
      "test");
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok.value().kubernetes.metadata, KubernetesConfig::Mode::kOn);
  EXPECT_EQ(ok.value().kubernetes.pods_url, "http://127.0.0.1:10255/pods");
  EXPECT_EQ(ok.value().kubernetes.refresh_interval_ms, 60000u);
  EXPECT_FALSE(ok.value().kubernetes.verify_tls);
  EXPECT_EQ(ok.value().kubernetes.max_pods, 50u);
  EXPECT_EQ(DefaultConfig().kubernetes.metadata, KubernetesConfig::Mode::kAuto);

  const auto fails = [](const std::string& text, const std::string& key) {
    auto r = LoadConfigString(text, "test");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().find(key), std::string::npos) << r.error();
  };
  fails("kubernetes:\n  metadata: sometimes\n", "kubernetes.metadata: must be auto, true or false");
  fails("kubernetes:\n  pods_url: ftp://x/pods\n", "kubernetes.pods_url");
  fails("kubernetes:\n  refresh_interval: 10ms\n", "kubernetes.refresh_interval");
  fails("kubernetes:\n  max_pods: 0\n", "kubernetes.max_pods");
  fails("kubernetes:\n  kubelet: x\n", "kubernetes.kubelet");
}

}  // namespace
}  // namespace redtap::config

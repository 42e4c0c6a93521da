// SPDX-License-Identifier: Apache-2.0
// redtap: eBPF HTTP probe. CLI entry point.
#include <bpf/libbpf.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "userspace/agent/agent.h"
#include "userspace/alerts/rules.h"
#include "userspace/bpf/libbpf_log.h"
#include "userspace/config/config.h"
#include "userspace/doctor/doctor.h"
#include "userspace/pcap/pcap_runner.h"
#include "userspace/top/top.h"

#ifndef REDTAP_VERSION
#define REDTAP_VERSION "0.0.0"
#endif

namespace {

redtap::Result<redtap::config::Config> LoadConfig(const std::string& path) {
  if (path.empty()) return redtap::config::DefaultConfig();
  return redtap::config::LoadConfigFile(path);
}

bool SetLogLevel(const std::string& level) {
  auto l = spdlog::level::from_str(level);
  if (l == spdlog::level::off && level != "off") return false;
  spdlog::set_level(l);
  return true;
}

// Every option of every subcommand.
struct Cli {
  std::string config_path, events, http_addr, log_level, pcap_http;
  redtap::pcap::PcapOptions pcap;
  redtap::TopOptions top;
  CLI::App* run = nullptr;
  CLI::App* doctor = nullptr;
  CLI::App* check = nullptr;
  CLI::App* pcap_cmd = nullptr;
  CLI::App* top_cmd = nullptr;
  CLI::App* version = nullptr;
  CLI::App* rules_prometheus = nullptr;
  CLI::App* rules_alertmanager = nullptr;
};

void AddRules(CLI::App& app, Cli& c) {
  auto* r = app.add_subcommand("rules", "print the config's alert rules for a fleet");
  r->require_subcommand(1);
  c.rules_prometheus =
      r->add_subcommand("prometheus", "a Prometheus rule file equivalent to the agent's rules");
  c.rules_alertmanager = r->add_subcommand(
      "alertmanager", "an Alertmanager config routing by severity to alerts.channels");
  for (auto* s : {c.rules_prometheus, c.rules_alertmanager}) {
    s->add_option("-c,--config", c.config_path,
                  "YAML config (default: the embedded config/redtap.yaml)");
  }
}

void AddRun(CLI::App& app, Cli& c) {
  c.run = app.add_subcommand("run", "run the agent on this host (root)");
  c.run->add_option("-c,--config", c.config_path,
                    "YAML config (default: the embedded config/redtap.yaml)");
  c.run->add_option("--events", c.events,
                    "write one NDJSON event per transaction to FILE ('-' = stdout)");
  c.run->add_option("--http", c.http_addr,
                    "serve /metrics, /health, /ready and the API on ADDR (default "
                    "127.0.0.1:9464)");
  c.run->add_option("--log-level", c.log_level, "trace, debug, info, warn, error");
}

void AddPcap(CLI::App& app, Cli& c) {
  auto* p = app.add_subcommand(
      "pcap", "HTTP transactions from a capture file (pcap/pcapng) or a live interface (libpcap)");
  c.pcap_cmd = p;
  p->add_option("file", c.pcap.file, "pcap or pcapng file ('-' = stdin)");
  p->add_option("-i,--iface", c.pcap.iface, "capture live on this interface instead");
  p->add_option("-f,--filter", c.pcap.filter, "BPF capture filter, e.g. 'tcp port 80'");
  p->add_option("-c,--config", c.config_path, "YAML config (services, routes, limits)");
  p->add_option("--events", c.events,
                "write one NDJSON event per transaction to FILE ('-' = stdout)");
  p->add_option("--http", c.pcap_http,
                "serve /metrics and /api/v1/endpoints on ADDR while running");
  p->add_flag("--summary", c.pcap.summary, "print a per-endpoint table when done");
  p->add_flag("-q,--quiet", c.pcap.quiet, "no statistics line at the end");
  p->add_option("--vxlan-port", c.pcap.vxlan_ports,
                "UDP destination port(s) decoded as VXLAN, up to 4 (default 4789; 0 = none)")
      ->delimiter(',');
  p->add_option("--log-level", c.log_level, "trace, debug, info, warn, error");
}

void AddTop(CLI::App& app, Cli& c) {
  auto* t = app.add_subcommand("top", "live per-endpoint table from a running agent");
  c.top_cmd = t;
  t->add_option("--http", c.top.http, "the agent's --http address")->capture_default_str();
  t->add_option("-s,--sort", c.top.sort, "rate, errors or p99")
      ->check(CLI::IsMember({"rate", "errors", "p99"}))
      ->capture_default_str();
  t->add_option("-i,--interval", c.top.interval_s, "refresh period in seconds")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  t->add_option("-n,--limit", c.top.limit, "rows to show (0: fit the terminal)");
  t->add_flag("--once", c.top.once, "print one table and exit");
}

// The subcommands that read a config: check-config, rules, pcap, run.
int RunWithConfig(Cli& c) {
  auto cfg = LoadConfig(c.config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "redtap: %s\n", cfg.error().c_str());
    return 2;
  }
  if (c.check->parsed()) {
    std::printf("%s: ok\n", c.config_path.c_str());
    return 0;
  }
  if (c.rules_prometheus->parsed()) {
    std::fputs(redtap::alerts::PrometheusRules(cfg.value()).c_str(), stdout);
    return 0;
  }
  if (c.rules_alertmanager->parsed()) {
    std::fputs(redtap::alerts::AlertmanagerConfig(cfg.value()).c_str(), stdout);
    return 0;
  }
  redtap::config::Config config = cfg.value();
  if (!c.events.empty()) config.events.path = c.events;
  if (c.log_level.empty() && !SetLogLevel(config.log.level)) SetLogLevel("info");
  if (c.pcap_cmd->parsed()) {
    if (c.pcap.file.empty() == c.pcap.iface.empty()) {
      std::fprintf(stderr, "redtap pcap: give a capture FILE or --iface IF (one of them)\n");
      return 2;
    }
    if (!c.pcap_http.empty()) config.http.listen = c.pcap_http;
    return redtap::RunPcapCommand(c.pcap, config, !c.pcap_http.empty());
  }
  if (!c.http_addr.empty()) config.http.listen = c.http_addr;
  return redtap::RunAgent(config);
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr: stdout may carry events (--events -).
  auto logger = spdlog::stderr_color_mt("redtap");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

  CLI::App app{"redtap: per-endpoint HTTP RED metrics and events from the kernel, no code change"};
  app.require_subcommand(1);
  Cli c;
  AddRun(app, c);
  c.doctor = app.add_subcommand("doctor", "check what works on this host, without capturing");
  c.doctor->add_option("--log-level", c.log_level, "trace, debug, info, warn, error");
  c.check = app.add_subcommand("check-config", "validate a config file and exit");
  c.check->add_option("-c,--config", c.config_path, "YAML config to check")->required();
  AddPcap(app, c);
  AddTop(app, c);
  AddRules(app, c);
  c.version = app.add_subcommand("version", "print the version and the libbpf in use");
  CLI11_PARSE(app, argc, argv);

  if (c.version->parsed()) {
    std::printf("redtap %s (libbpf %s)\n", REDTAP_VERSION, libbpf_version_string());
    return 0;
  }
  if (c.top_cmd->parsed()) return redtap::RunTop(c.top);
  if (!c.log_level.empty() && !SetLogLevel(c.log_level)) {
    std::fprintf(stderr, "redtap: --log-level %s: expected trace, debug, info, warn or error\n",
                 c.log_level.c_str());
    return 2;
  }
  if (c.doctor->parsed()) {
    redtap::InstallLibbpfLogger(/*quiet=*/true);
    return redtap::PrintDoctor(redtap::RunDoctor());
  }
  return RunWithConfig(c);
}

// SPDX-License-Identifier: Apache-2.0
// redtap: eBPF HTTP probe. CLI entry point.
#include <bpf/libbpf.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "userspace/agent/agent.h"
#include "userspace/config/config.h"
#include "userspace/doctor/doctor.h"
#include "userspace/loader/loader.h"
#include "userspace/top/top.h"
#include "userspace/pcap/pcap_runner.h"

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

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr: stdout may carry events (--events -).
  auto logger = spdlog::stderr_color_mt("redtap");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

  CLI::App app{"redtap: per-endpoint HTTP RED metrics and events from the kernel, no code change"};
  app.require_subcommand(1);
  std::string config_path, events, http_addr, log_level;

  auto* run = app.add_subcommand("run", "run the agent on this host (root)");
  run->add_option("-c,--config", config_path, "YAML config (default: the embedded config/redtap.yaml)");
  run->add_option("--events", events, "write one NDJSON event per transaction to FILE ('-' = stdout)");
  run->add_option("--http", http_addr, "serve /health, /ready on ADDR (default 127.0.0.1:9464)");
  run->add_option("--log-level", log_level, "trace, debug, info, warn, error");

  auto* doctor = app.add_subcommand("doctor", "check what works on this host, without capturing");
  doctor->add_option("--log-level", log_level, "trace, debug, info, warn, error");

  auto* check = app.add_subcommand("check-config", "validate a config file and exit");
  check->add_option("-c,--config", config_path, "YAML config to check")->required();

  redtap::pcap::PcapOptions pcap_opt;
  std::string pcap_http;
  auto* pcap = app.add_subcommand(
      "pcap", "HTTP transactions from a capture file (pcap/pcapng) or a live interface (libpcap)");
  pcap->add_option("file", pcap_opt.file, "pcap or pcapng file ('-' = stdin)");
  pcap->add_option("-i,--iface", pcap_opt.iface, "capture live on this interface instead");
  pcap->add_option("-f,--filter", pcap_opt.filter, "BPF capture filter, e.g. 'tcp port 80'");
  pcap->add_option("-c,--config", config_path, "YAML config (services, routes, limits)");
  pcap->add_option("--events", events, "write one NDJSON event per transaction to FILE ('-' = stdout)");
  pcap->add_option("--http", pcap_http, "serve /metrics and /api/v1/endpoints on ADDR while running");
  pcap->add_flag("--summary", pcap_opt.summary, "print a per-endpoint table when done");
  pcap->add_flag("-q,--quiet", pcap_opt.quiet, "no statistics line at the end");
  pcap->add_option("--vxlan-port", pcap_opt.vxlan_ports,
                   "UDP destination port(s) decoded as VXLAN, up to 4 (default 4789; 0 = none)")
      ->delimiter(',');
  pcap->add_option("--log-level", log_level, "trace, debug, info, warn, error");

  redtap::TopOptions top_opt;
  auto* top = app.add_subcommand("top", "live per-endpoint table from a running agent");
  top->add_option("--http", top_opt.http, "the agent's --http address")->capture_default_str();
  top->add_option("-s,--sort", top_opt.sort, "rate, errors or p99")
      ->check(CLI::IsMember({"rate", "errors", "p99"}))
      ->capture_default_str();
  top->add_option("-i,--interval", top_opt.interval_s, "refresh period in seconds")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  top->add_option("-n,--limit", top_opt.limit, "rows to show (0: fit the terminal)");
  top->add_flag("--once", top_opt.once, "print one table and exit");

  auto* version = app.add_subcommand("version", "print the version and the libbpf in use");

  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::printf("redtap %s (libbpf %s)\n", REDTAP_VERSION, libbpf_version_string());
    return 0;
  }
  if (top->parsed()) return redtap::RunTop(top_opt);
  if (!log_level.empty() && !SetLogLevel(log_level)) {
    std::fprintf(stderr, "redtap: --log-level %s: expected trace, debug, info, warn or error\n",
                 log_level.c_str());
    return 2;
  }
  if (doctor->parsed()) {
    redtap::InstallLibbpfLogger(/*quiet=*/true);
    return redtap::PrintDoctor(redtap::RunDoctor());
  }
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "redtap: %s\n", cfg.error().c_str());
    return 2;
  }
  if (check->parsed()) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  redtap::config::Config c = cfg.value();
  if (!events.empty()) c.events.path = events;
  if (pcap->parsed()) {
    if (log_level.empty() && !SetLogLevel(c.log.level)) SetLogLevel("info");
    if (pcap_opt.file.empty() == pcap_opt.iface.empty()) {
      std::fprintf(stderr, "redtap pcap: give a capture FILE or --iface IF (one of them)\n");
      return 2;
    }
    if (!pcap_http.empty()) c.http.listen = pcap_http;
    return redtap::RunPcapCommand(pcap_opt, c, !pcap_http.empty());
  }
  if (!http_addr.empty()) c.http.listen = http_addr;
  if (log_level.empty() && !SetLogLevel(c.log.level)) SetLogLevel("info");
  return redtap::RunAgent(c);
}

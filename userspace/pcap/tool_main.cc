// SPDX-License-Identifier: Apache-2.0
// redtap_pcap_tool: the `redtap pcap` subcommand as a stand-alone binary (development,
// benchmarks). Same options: [pcap] FILE | --iface IF, --filter, --events, --summary,
// --vxlan-port.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "userspace/config/config.h"
#include "userspace/pcap/pcap_runner.h"

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("redtap");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  // Accept `redtap_pcap_tool pcap FILE ...` as a drop-in for `redtap pcap FILE ...`.
  std::vector<char*> args(argv, argv + argc);
  if (args.size() > 1 && std::string(args[1]) == "pcap") args.erase(args.begin() + 1);

  CLI::App app{"redtap pcap: HTTP transactions from a capture file or a live interface"};
  redtap::pcap::PcapOptions opt;
  std::string config_path, events, log_level;
  app.add_option("file", opt.file, "capture file (pcap or pcapng, '-' = stdin)");
  app.add_option("-i,--iface", opt.iface, "capture live on this interface");
  app.add_option("-f,--filter", opt.filter, "BPF filter expression");
  app.add_option("-c,--config", config_path, "YAML config");
  app.add_option("--events", events, "write one NDJSON event per transaction to FILE ('-' = stdout)");
  app.add_flag("--summary", opt.summary, "print the per-endpoint table when done");
  app.add_option("--rows", opt.summary_rows, "rows of the summary table (0 = all)");
  app.add_flag("-q,--quiet", opt.quiet, "no statistics line");
  app.add_option("--vxlan-port", opt.vxlan_ports,
                 "UDP destination port(s) decoded as VXLAN, up to 4 (default 4789; 0 = none)")
      ->delimiter(',');
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!log_level.empty()) spdlog::set_level(spdlog::level::from_str(log_level));
  auto cfg = config_path.empty() ? redtap::Result<redtap::config::Config>(redtap::config::DefaultConfig())
                                 : redtap::config::LoadConfigFile(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "redtap: %s\n", cfg.error().c_str());
    return 2;
  }
  redtap::config::Config c = cfg.value();
  if (!events.empty()) c.events.path = events;
  return redtap::pcap::RunPcap(opt, c, nullptr);
}

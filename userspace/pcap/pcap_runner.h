// SPDX-License-Identifier: Apache-2.0
// `redtap pcap` as a source: the HTTP and database decoders on a capture file (pcap or pcapng) or a
// live interface, through libpcap. Its transactions (and database operations) go to the same
// pipeline as `redtap run`'s (agent/outputs.h builds both): the same enrichment, events and
// metrics.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "userspace/capture/tracker.h"
#include "userspace/common/status.h"
#include "userspace/config/config.h"
#include "userspace/pcap/decode.h"
#include "userspace/pcap/flow_table.h"
#include "userspace/pcap/fragments.h"

namespace redtap::pcap {

/// How a capture file is read: kAuto maps classic pcap files read without a filter
/// (MappedPcapFile) and gives the rest to libpcap; kLibpcap always uses libpcap (tests).
enum class FileReader : uint8_t { kAuto, kLibpcap };

struct PcapOptions {
  std::string file;          // capture file (pcap or pcapng; "-" = stdin). Exclusive with iface
  std::string iface;         // live capture on this interface ("any" works on Linux)
  std::string filter;        // BPF filter expression (file and live), "" = everything
  bool summary = false;      // print the per-endpoint table when done (stdout, or stderr
                             // when events go to stdout)
  size_t summary_rows = 50;  // rows of the table (by count), 0 = all
  int snaplen = 262144;      // live capture only
  bool quiet = false;        // no statistics line at the end
  /// Outer UDP destination ports decoded as VXLAN (at most DecodeOptions::kMaxVxlanPorts;
  /// {0} or empty = no VXLAN).
  std::vector<uint16_t> vxlan_ports = {kVxlanPort};
  FileReader reader = FileReader::kAuto;
};

/// The decoder options of `opt`; an error when it names too many VXLAN ports.
Result<DecodeOptions> DecodeOptionsFrom(const PcapOptions& opt);

/// Counters of one run (decode + reassembly + HTTP + databases).
struct PcapStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;  // captured bytes
  uint64_t decode[static_cast<int>(DecodeResult::kCount)] = {};
  uint64_t tunnels[kEncapKinds] = {};  // packets that came through each tunnel (Encap bit)
  FragmentStats fragments;
  FlowStats flows;
  uint64_t kernel_drops = 0;  // live: pcap_stats ps_drop + ps_ifdrop
};

/// Decode → fragments → flows → HTTP / databases, one packet at a time. No I/O: the runner and the
/// tests feed it frames.
class PacketProcessor {
 public:
  PacketProcessor(const FlowLimits& limits, TransactionSink* sink,
                  const DecodeOptions& decode = {});

  void SetLocalAddresses(std::vector<IpAddrs> addrs) { flows_.SetLocalAddresses(std::move(addrs)); }
  /// One captured frame of `link_type` at `ts_ns` (ns since the Unix epoch).
  void OnFrame(int link_type, std::string_view frame, uint64_t ts_ns) noexcept;
  /// Flushes every flow (end of capture).
  void Finish() noexcept;
  /// Evicts idle flows (call with the current packet or wall time).
  void Sweep(uint64_t now_ns) noexcept { flows_.Sweep(now_ns); }

  PcapStats stats() const;
  uint64_t last_ts() const { return last_ts_; }

 private:
  void CountTunnels() noexcept;

  FlowTable flows_;
  FragmentReassembler frags_;
  DecodeOptions decode_;
  Packet pkt_;
  uint64_t last_ts_ = 0;
  uint64_t next_sweep_ = 0;
  PcapStats stats_;
};

/// Flow limits from the config: limits.max_connections, idle_timeout_s, max_head_bytes,
/// max_pending_requests; db.enabled and db.ports; out-of-order buffers use the FlowLimits
/// defaults.
FlowLimits LimitsFromConfig(const config::Config& cfg);

/// Reads a whole capture file through `sink` (the corpus tests use this). `filter` may be "".
Result<PcapStats> ProcessFile(const std::string& path, const std::string& filter,
                              const FlowLimits& limits, TransactionSink* sink,
                              const DecodeOptions& decode = {},
                              FileReader reader = FileReader::kAuto);

/// Where `redtap pcap` hands what it decodes (the pipeline the agent builds for it).
struct PcapOutputs {
  TransactionSink* sink = nullptr;  // every transaction, on this thread (may be null)
  std::function<void()> flush;      // live: about every 100 ms (events leave promptly)
  std::function<void()> finish;     // after the last packet, before the statistics line
  /// Events written and lost (queue full), for the statistics line; after `finish`.
  std::function<std::pair<uint64_t, uint64_t>()> events;
};

/// `redtap pcap`: reads the file or interface of `opt`. Live mode stops on SIGINT/SIGTERM.
/// Returns the exit code: 0 done, 1 capture could not be opened / read error, 2 bad options.
int RunPcap(const PcapOptions& opt, const config::Config& cfg, const PcapOutputs& out);

}  // namespace redtap::pcap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/pcap/pcap_runner.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>

#include "userspace/export/event_writer.h"
#include "userspace/pcap/mapped_file.h"

namespace redtap::pcap {
namespace {

constexpr uint64_t kSweepEveryNs = 1'000'000'000;

std::atomic<pcap_t*> g_live_handle{nullptr};
std::atomic<bool> g_stop{false};

void OnStopSignal(int) {
  g_stop.store(true);
  if (pcap_t* h = g_live_handle.load()) pcap_breakloop(h);
}

uint64_t TsNs(const struct pcap_pkthdr* h, bool nano) {
  return static_cast<uint64_t>(h->ts.tv_sec) * 1'000'000'000ull +
         static_cast<uint64_t>(h->ts.tv_usec) * (nano ? 1ull : 1000ull);
}

std::vector<IpAddrs> HostAddresses() {
  std::vector<IpAddrs> out;
  struct ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  for (struct ifaddrs* i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    IpAddrs a;
    if (i->ifa_addr->sa_family == AF_INET) {
      a.family = 4;
      std::memcpy(a.src, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      a.family = 6;
      std::memcpy(a.src, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    out.push_back(a);
  }
  freeifaddrs(ifa);
  return out;
}

Status ApplyFilter(pcap_t* p, const std::string& filter) {
  if (filter.empty()) return Status::Ok();
  struct bpf_program prog;
  if (pcap_compile(p, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    return Status::Error("--filter '" + filter + "': " + pcap_geterr(p));
  const int rc = pcap_setfilter(p, &prog);
  pcap_freecode(&prog);
  if (rc != 0) return Status::Error("--filter: " + std::string(pcap_geterr(p)));
  return Status::Ok();
}

Result<pcap_t*> OpenFile(const std::string& path, bool* nano) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (!p) return Status::Error(path + ": " + err);
  *nano = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
  return p;
}

// Reads packets until the end (file) or a stop (live). -1: read error.
int Loop(pcap_t* p, bool nano, PacketProcessor* proc, bool live,
         const std::function<void()>& flush) {
  const int link = pcap_datalink(p);
  struct pcap_pkthdr* h;
  const u_char* data;
  auto last_sweep = std::chrono::steady_clock::now();
  auto last_flush = last_sweep;
  while (!g_stop.load(std::memory_order_relaxed)) {
    const int rc = pcap_next_ex(p, &h, &data);
    if (rc == 1) {
      proc->OnFrame(link, std::string_view(reinterpret_cast<const char*>(data), h->caplen),
                    TsNs(h, nano));
    } else if (rc == 0) {
      // Live timeout: sweep idle flows by wall time.
    } else if (rc == PCAP_ERROR_BREAK) {
      break;
    } else {
      spdlog::error("pcap: {}", pcap_geterr(p));
      return -1;
    }
    if (live) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_sweep >= std::chrono::seconds(1)) {
        proc->Sweep(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count()));
        last_sweep = now;
      }
      if (flush && (rc == 0 || now - last_flush >= std::chrono::milliseconds(100))) {
        flush();  // live: events leave within ~100 ms
        last_flush = now;
      }
    }
  }
  return 0;
}

// Reads a mapped file to its end. -1: the file ends inside a record (as libpcap's
// "truncated dump file"; what came before it is processed).
int LoopMapped(MappedPcapFile* f, const std::string& path, PacketProcessor* proc) {
  const int link = f->link_type();
  std::string_view frame;
  uint64_t ts = 0;
  while (f->Next(&frame, &ts)) proc->OnFrame(link, frame, ts);
  if (f->truncated()) {
    spdlog::error("pcap: {}: truncated dump file (a record is cut or too long)", path);
    return -1;
  }
  return 0;
}

// A file without a filter is mapped (MappedPcapFile) unless told otherwise or not a classic
// pcap file; everything else goes through libpcap.
std::unique_ptr<MappedPcapFile> MaybeMap(const std::string& path, const std::string& filter,
                                         FileReader reader) {
  if (reader == FileReader::kLibpcap || !filter.empty()) return nullptr;
  return MappedPcapFile::Open(path);
}

}  // namespace

PacketProcessor::PacketProcessor(const FlowLimits& limits, TransactionSink* sink,
                                 const DecodeOptions& decode)
    : flows_(limits, sink), decode_(decode) {}

void PacketProcessor::OnFrame(int link_type, std::string_view frame, uint64_t ts) noexcept {
  ++stats_.packets;
  stats_.bytes += frame.size();
  if (ts > last_ts_) last_ts_ = ts;
  if (ts >= next_sweep_) {
    if (next_sweep_ != 0) flows_.Sweep(ts);
    next_sweep_ = ts + kSweepEveryNs;
  }
  DecodeResult r = DecodeFrame(link_type, frame, &pkt_, decode_);
  // A completed datagram goes on where its fragments stopped; it may hold a tunnel whose
  // inner packet is a fragment again (at most once per tunnel level).
  for (int n = 0; r == DecodeResult::kFragment; ++n) {
    ++stats_.decode[static_cast<int>(r)];
    std::string_view dgram;
    uint8_t proto = 0;
    if (!frags_.Add(pkt_.frag, ts, &dgram, &proto)) {
      CountTunnels();
      return;
    }
    if (n >= kMaxTunnelDepth) {
      r = DecodeResult::kTunnelTooDeep;
      break;
    }
    const IpAddrs ip = pkt_.frag.ip;
    r = DecodeIpPayload(ip, proto, dgram, static_cast<uint32_t>(dgram.size()), pkt_.frag.depth,
                        decode_, &pkt_);
  }
  CountTunnels();
  ++stats_.decode[static_cast<int>(r)];
  if (r == DecodeResult::kTcp) flows_.OnSegment(pkt_.tcp, ts);
}

void PacketProcessor::CountTunnels() noexcept {
  if (pkt_.encap == 0) return;
  for (int i = 0; i < kEncapKinds; ++i) {
    if (pkt_.encap & (1u << i)) ++stats_.tunnels[i];
  }
}

void PacketProcessor::Finish() noexcept { flows_.FlushAll(last_ts_); }

PcapStats PacketProcessor::stats() const {
  PcapStats s = stats_;
  s.fragments = frags_.stats();
  s.flows = flows_.stats();
  return s;
}

Result<DecodeOptions> DecodeOptionsFrom(const PcapOptions& opt) {
  DecodeOptions d;
  std::fill(std::begin(d.vxlan_ports), std::end(d.vxlan_ports), uint16_t{0});
  int n = 0;
  for (uint16_t port : opt.vxlan_ports) {
    if (port == 0) continue;
    if (n == DecodeOptions::kMaxVxlanPorts) {
      return Status::Error("--vxlan-port: at most " +
                           std::to_string(DecodeOptions::kMaxVxlanPorts) + " ports");
    }
    d.vxlan_ports[n++] = port;
  }
  return d;
}

FlowLimits LimitsFromConfig(const config::Config& cfg) {
  FlowLimits l;
  l.max_flows = cfg.limits.max_connections;
  l.idle_timeout_ns = static_cast<uint64_t>(cfg.limits.idle_timeout_s) * 1'000'000'000ull;
  l.http.max_head_bytes = cfg.limits.max_head_bytes;
  l.http.max_pending_requests = cfg.limits.max_pending_requests;
  l.db_enabled = cfg.db.enabled;
  l.postgresql_ports = cfg.db.postgresql_ports;
  l.mysql_ports = cfg.db.mysql_ports;
  l.redis_ports = cfg.db.redis_ports;
  return l;
}

Result<PcapStats> ProcessFile(const std::string& path, const std::string& filter,
                              const FlowLimits& limits, TransactionSink* sink,
                              const DecodeOptions& decode, FileReader reader) {
  // A file cut inside a record still gives what came before it (the loops log the cut).
  if (auto mapped = MaybeMap(path, filter, reader)) {
    PacketProcessor proc(limits, sink, decode);
    LoopMapped(mapped.get(), path, &proc);
    proc.Finish();
    return proc.stats();
  }
  bool nano = false;
  auto opened = OpenFile(path, &nano);
  if (!opened.ok()) return opened.status();
  pcap_t* p = opened.value();
  if (Status st = ApplyFilter(p, filter); !st.ok()) {
    pcap_close(p);
    return st;
  }
  PacketProcessor proc(limits, sink, decode);
  Loop(p, nano, &proc, /*live=*/false, {});
  proc.Finish();
  pcap_close(p);
  return proc.stats();
}

// A live capture on opt.iface, activated. Null (logged) on failure.
pcap_t* OpenLive(const PcapOptions& opt, bool* nano) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(opt.iface.c_str(), err);
  if (!p) {
    spdlog::error("pcap: {}: {}", opt.iface, err);
    return nullptr;
  }
  pcap_set_snaplen(p, opt.snaplen);
  pcap_set_promisc(p, 0);
  pcap_set_timeout(p, 100);
  pcap_set_buffer_size(p, 64 << 20);
  pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
  const int rc = pcap_activate(p);
  if (rc < 0) {
    spdlog::error("pcap: {}: {}", opt.iface, pcap_geterr(p));
    pcap_close(p);
    return nullptr;
  }
  if (rc > 0) spdlog::warn("pcap: {}: {}", opt.iface, pcap_geterr(p));
  *nano = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
  return p;
}

// The statistics line of a run.
void LogStats(const PcapStats& s, double secs, std::pair<uint64_t, uint64_t> events) {
  const auto [events_written, events_dropped] = events;
  const auto& f = s.flows;
  auto dec = [&](DecodeResult r) { return s.decode[static_cast<int>(r)]; };
  spdlog::info(
      "pcap: {} packets in {:.3f} s, {} transactions ({} unanswered, {:.0f}/s); events "
      "written {} dropped {}; flows {} (midstream {}, closed {}, flushed {}, evicted lru {} "
      "idle {}, not http {}); tcp: out-of-order {} retransmits {} overlaps {} holes {} "
      "({} bytes) forced skips {} memory skips {}; http: parse errors {} gaps {} orphan "
      "responses {} truncated heads {}; db: flows {} operations {} (unanswered {}) given up {} "
      "parse errors {} gaps {} orphan responses {}; decode: not ip {} not tcp {} truncated {} "
      "malformed {} unsupported link {} unsupported tunnel {} tunnel too deep {}; tunnels: "
      "gtp-u {} vxlan {} gre {} erspan {} ip-in-ip {}; fragments {} reassembled {} dropped {}; "
      "kernel drops {}",
      s.packets, secs, f.transactions, f.unanswered,
      secs > 0 ? static_cast<double>(f.transactions) / secs : 0.0, events_written, events_dropped,
      f.flows_created, f.midstream_flows, f.flows_closed, f.flows_flushed, f.flows_evicted_lru,
      f.flows_evicted_idle, f.flows_not_http, f.tcp.out_of_order, f.tcp.retransmits, f.tcp.overlaps,
      f.tcp.holes, f.tcp.hole_bytes, f.tcp.forced_skips, f.memory_skips, f.parser.parse_errors,
      f.parser.gaps, f.parser.orphan_responses, f.parser.truncated_heads, f.db_flows,
      f.db_operations, f.db_unanswered, f.db_flows_invalid, f.db.parse_errors, f.db.gaps,
      f.db.orphan_responses, dec(DecodeResult::kNotIp), dec(DecodeResult::kNotTcp),
      dec(DecodeResult::kTruncated), dec(DecodeResult::kMalformed),
      dec(DecodeResult::kUnsupportedLink), dec(DecodeResult::kUnsupportedTunnel),
      dec(DecodeResult::kTunnelTooDeep), s.tunnels[0], s.tunnels[1], s.tunnels[2], s.tunnels[3],
      s.tunnels[4], s.fragments.fragments, s.fragments.reassembled, s.fragments.dropped_sets,
      s.kernel_drops);
}

int RunPcap(const PcapOptions& opt, const config::Config& cfg, const PcapOutputs& out) {
  if (opt.file.empty() == opt.iface.empty()) {
    spdlog::error("pcap: give a capture FILE or --iface IF (one of them)");
    return 2;
  }
  auto decode = DecodeOptionsFrom(opt);
  if (!decode.ok()) {
    spdlog::error("pcap: {}", decode.error());
    return 2;
  }
  const bool live = !opt.iface.empty();
  bool nano = false;
  pcap_t* p = nullptr;
  std::unique_ptr<MappedPcapFile> mapped;
  if (live) {
    p = OpenLive(opt, &nano);
    if (p == nullptr) return 1;
  } else {
    mapped = MaybeMap(opt.file, opt.filter, opt.reader);
    if (!mapped) {
      auto opened = OpenFile(opt.file, &nano);
      if (!opened.ok()) {
        spdlog::error("pcap: {}", opened.error());
        return 1;
      }
      p = opened.value();
    }
  }
  if (p != nullptr) {
    if (Status st = ApplyFilter(p, opt.filter); !st.ok()) {
      spdlog::error("pcap: {}", st.message());
      pcap_close(p);
      return 2;
    }
  }
  // Closes the libpcap handle on every return below.
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> handle(p, [](pcap_t* h) {
    if (h != nullptr) pcap_close(h);
  });

  PacketProcessor proc(LimitsFromConfig(cfg), out.sink, decode.value());
  if (live) proc.SetLocalAddresses(HostAddresses());

  struct sigaction sa = {}, old_int = {}, old_term = {};
  if (live) {
    g_stop = false;
    g_live_handle = p;
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    spdlog::info("capturing on {}{}{}", opt.iface,
                 opt.filter.empty() ? "" : ", filter: ", opt.filter);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int rc =
      mapped ? LoopMapped(mapped.get(), opt.file, &proc) : Loop(p, nano, &proc, live, out.flush);
  proc.Finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  PcapStats s = proc.stats();
  if (live) {
    struct pcap_stat ps;
    if (pcap_stats(p, &ps) == 0) s.kernel_drops = ps.ps_drop + ps.ps_ifdrop;
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    g_live_handle = nullptr;
  }
  handle.reset();
  mapped.reset();
  if (out.finish) out.finish();
  if (!opt.quiet) {
    LogStats(s, secs, out.events ? out.events() : std::pair<uint64_t, uint64_t>{0, 0});
  }
  return rc < 0 ? 1 : 0;
}

}  // namespace redtap::pcap

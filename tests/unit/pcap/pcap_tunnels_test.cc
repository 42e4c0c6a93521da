// SPDX-License-Identifier: Apache-2.0
// Tunnels in userspace/pcap: VXLAN (default and configured ports), GRE (checksum, key,
// sequence number; IPv4, IPv6 and Ethernet inside), ERSPAN, IP in IP, nesting up to
// kMaxTunnelDepth, outer fragments, and truncated or unknown encapsulations as counted drops.
// Whole HTTP exchanges go through pcap files written here and read by ProcessFile (set
// REDTAP_KEEP_TEST_PCAPS=1 to keep them, e.g. to compare with tshark).
#include <gtest/gtest.h>

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/unit/pcap/crafted_packets.h"
#include "userspace/pcap/decode.h"
#include "userspace/pcap/pcap_runner.h"

namespace redtap::pcap {
namespace {

using namespace crafted;  // NOLINT(build/namespaces): the packet builders

constexpr uint32_t kClient4 = 0xc0a80001;  // 192.168.0.1
constexpr uint32_t kServer4 = 0xc0a80002;  // 192.168.0.2
constexpr uint32_t kVtepA = 0x0a000001;    // outer (tunnel) addresses
constexpr uint32_t kVtepB = 0x0a000002;

std::string InnerTcp(bool v6, const std::string& payload = Payload()) {
  const std::string tcp = Tcp(40000, 80, 1, 1, kTcpAck | kTcpPsh, payload);
  return v6 ? Ipv6(tcp, 6) : Ipv4(tcp, 6, kClient4, kServer4);
}

// Decodes `frame` (Ethernet) and expects the inner request segment.
void ExpectInner(const std::string& frame, uint8_t encap, const DecodeOptions& opt = {}) {
  Packet p;
  ASSERT_EQ(DecodeFrame(kLinkEthernet, frame, &p, opt), DecodeResult::kTcp);
  EXPECT_EQ(p.tcp.src_port, 40000);
  EXPECT_EQ(p.tcp.dst_port, 80);
  EXPECT_EQ(p.tcp.payload, Payload());
  EXPECT_EQ(p.tcp.payload_wire_len, Payload().size());
  EXPECT_EQ(p.encap, encap);
  if (p.tcp.ip.family == 4) {
    EXPECT_EQ(p.tcp.ip.src[3], 1);  // the inner addresses, not the tunnel's
    EXPECT_EQ(p.tcp.ip.src[0], 192);
  }
}

DecodeResult Decode(const std::string& frame, const DecodeOptions& opt = {}) {
  Packet p;
  const DecodeResult r = DecodeFrame(kLinkEthernet, frame, &p, opt);
  if (r == DecodeResult::kTcp) {
    EXPECT_LE(p.tcp.payload.size(), p.tcp.payload_wire_len);
  }
  return r;
}

// ---- Decoding ----

TEST(Tunnels, VxlanIpv4AndIpv6Outer) {
  ExpectInner(Eth(Ipv4(Udp(51234, 4789, Vxlan(Eth(InnerTcp(false)))), 17)), kEncapVxlan);
  ExpectInner(Eth(Ipv4(Udp(51234, 4789, Vxlan(Eth(InnerTcp(true), 0x86dd))), 17)), kEncapVxlan);
  ExpectInner(Eth(Ipv6(Udp(51234, 4789, Vxlan(Eth(InnerTcp(false)))), 17), 0x86dd), kEncapVxlan);
  // An 802.1Q tag on the inner frame.
  ExpectInner(
      Eth(Ipv4(Udp(51234, 4789, Vxlan(Eth(Be16(0x0064) + Be16(0x0800) + InnerTcp(false), 0x8100))),
               17)),
      kEncapVxlan);
  // Only the destination port selects VXLAN (the source port is a flow hash).
  EXPECT_EQ(Decode(Eth(Ipv4(Udp(4789, 51234, Vxlan(Eth(InnerTcp(false)))), 17))),
            DecodeResult::kNotTcp);
  // No I flag: the Linux driver drops it, so do we.
  EXPECT_EQ(Decode(Eth(Ipv4(Udp(51234, 4789, Vxlan(Eth(InnerTcp(false)), 42, 0x00)), 17))),
            DecodeResult::kMalformed);
}

TEST(Tunnels, VxlanConfiguredPorts) {
  const std::string on8472 = Eth(Ipv4(Udp(51234, 8472, Vxlan(Eth(InnerTcp(false)))), 17));
  const std::string on4789 = Eth(Ipv4(Udp(51234, 4789, Vxlan(Eth(InnerTcp(false)))), 17));
  EXPECT_EQ(Decode(on8472), DecodeResult::kNotTcp);  // not a VXLAN port by default
  DecodeOptions flannel;
  flannel.vxlan_ports[0] = 8472;
  ExpectInner(on8472, kEncapVxlan, flannel);
  EXPECT_EQ(Decode(on4789, flannel), DecodeResult::kNotTcp);
  DecodeOptions both;
  both.vxlan_ports[1] = 8472;
  ExpectInner(on8472, kEncapVxlan, both);
  ExpectInner(on4789, kEncapVxlan, both);

  // From the command line: repeated or comma-separated --vxlan-port, 0 = none, at most 4.
  PcapOptions o;
  auto d = DecodeOptionsFrom(o);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d.value().IsVxlanPort(4789));
  o.vxlan_ports = {8472};
  d = DecodeOptionsFrom(o);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d.value().IsVxlanPort(8472));
  EXPECT_FALSE(d.value().IsVxlanPort(4789));
  o.vxlan_ports = {0};
  d = DecodeOptionsFrom(o);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d.value().IsVxlanPort(4789));
  EXPECT_FALSE(d.value().IsVxlanPort(0));
  o.vxlan_ports = {1, 2, 3, 4, 5};
  EXPECT_FALSE(DecodeOptionsFrom(o).ok());
}

TEST(Tunnels, GreFlagsAndPayloads) {
  const std::string v4 = InnerTcp(false), v6 = InnerTcp(true);
  // No optional field; key; key + sequence; checksum + key + sequence.
  for (const uint8_t flags : {uint8_t{0}, kGreKey, uint8_t{kGreKey | kGreSeq},
                              uint8_t{kGreChecksum | kGreKey | kGreSeq}, kGreSeq}) {
    SCOPED_TRACE(static_cast<int>(flags));
    ExpectInner(Eth(Ipv4(Gre(0x0800, v4, flags), 47, kVtepA, kVtepB)), kEncapGre);
    ExpectInner(Eth(Ipv4(Gre(0x86dd, v6, flags), 47, kVtepA, kVtepB)), kEncapGre);
    ExpectInner(Eth(Ipv6(Gre(0x86dd, v6, flags), 47, 9, 10), 0x86dd), kEncapGre);
    // Transparent Ethernet bridging (gretap), with a VLAN tag inside.
    ExpectInner(Eth(Ipv4(Gre(0x6558, Eth(v4), flags), 47)), kEncapGre);
    ExpectInner(Eth(Ipv4(Gre(0x6558, Eth(Be16(7) + Be16(0x86dd) + v6, 0x8100), flags), 47)),
                kEncapGre);
  }
  // GRE behind an IPv6 extension header.
  const std::string dst_opts = std::string{static_cast<char>(47), '\0'} + std::string(6, '\0');
  ExpectInner(Eth(Ipv6(dst_opts + Gre(0x0800, v4, kGreKey), 60), 0x86dd), kEncapGre);
}

TEST(Tunnels, UnknownEncapsulationsAreCountedDrops) {
  const std::string v4 = InnerTcp(false);
  // Version 1 (PPTP enhanced GRE: PPP, key always present).
  std::string pptp = Gre(0x880b, "\xff\x03\x00\x21" + v4, kGreKey);
  pptp[1] = 0x01;
  EXPECT_EQ(Decode(Eth(Ipv4(pptp, 47))), DecodeResult::kUnsupportedTunnel);
  // Routing present (RFC 1701), as Linux: not opened.
  EXPECT_EQ(Decode(Eth(Ipv4(Gre(0x0800, v4, 0x40), 47))), DecodeResult::kUnsupportedTunnel);
  // Protocol types we do not look into: PPP, MPLS, a keepalive's 0.
  for (const uint16_t proto : {0x880b, 0x8847, 0x0000}) {
    EXPECT_EQ(Decode(Eth(Ipv4(Gre(proto, v4), 47))), DecodeResult::kUnsupportedTunnel);
  }
  // An IP header that announces less than the GRE header needs.
  EXPECT_EQ(Decode(Eth(Ipv4(Gre(0x0800, "", kGreKey | kGreSeq).substr(0, 8), 47))),
            DecodeResult::kMalformed);
}

TEST(Tunnels, TruncatedTunnelHeaders) {
  const std::string v4 = InnerTcp(false);
  const std::vector<std::string> frames = {
      Eth(Ipv4(Udp(51234, 4789, Vxlan(Eth(v4))), 17)),
      Eth(Ipv4(Gre(0x0800, v4, kGreChecksum | kGreKey | kGreSeq), 47)),
      Eth(Ipv4(Gre(0x6558, Eth(v4), kGreKey), 47)),
      Eth(Ipv6(Gre(0x86dd, InnerTcp(true), kGreSeq), 47), 0x86dd),
  };
  // Cut by the snap length anywhere: never out of bounds; once the outer IP header is
  // complete, a cut before the end of the inner TCP header is kTruncated.
  for (const std::string& f : frames) {
    const size_t outer_end = 14 + (f[12] == '\x86' ? 40 : 20);
    const size_t tcp_end = f.size() - Payload().size();
    for (size_t n = 0; n < f.size(); ++n) {
      const DecodeResult r = Decode(f.substr(0, n));
      if (n >= outer_end && n < tcp_end) {
        EXPECT_EQ(r, DecodeResult::kTruncated) << n;
      }
    }
  }
  // Exactly at the tunnel header.
  EXPECT_EQ(Decode(Eth(Ipv4(Udp(51234, 4789, Vxlan(Eth(v4))), 17)).substr(0, 14 + 20 + 8 + 5)),
            DecodeResult::kTruncated);
  EXPECT_EQ(Decode(Eth(Ipv4(Gre(0x0800, v4, kGreKey | kGreSeq), 47)).substr(0, 14 + 20 + 10)),
            DecodeResult::kTruncated);
  // Through the processor: counted as truncated, nothing reaches the flows.
  PacketProcessor proc(FlowLimits{}, nullptr);
  proc.OnFrame(kLinkEthernet, frames[0].substr(0, 14 + 20 + 8 + 5), 1);
  proc.OnFrame(kLinkEthernet, frames[1].substr(0, 14 + 20 + 6), 2);
  proc.OnFrame(kLinkEthernet, frames[2].substr(0, 14 + 20 + 8 + 10), 3);
  const PcapStats s = proc.stats();
  EXPECT_EQ(s.decode[static_cast<int>(DecodeResult::kTruncated)], 3u);
  EXPECT_EQ(s.flows.segments, 0u);
}

TEST(Tunnels, Erspan) {
  const std::string frame = Eth(InnerTcp(false));
  // Type I: GRE 0x88BE without a sequence number, the frame right away.
  ExpectInner(Eth(Ipv4(Gre(0x88be, frame), 47)), kEncapGre | kEncapErspan);
  // Type II: sequence number, 8-byte header (version 1).
  const std::string t2 = Be16(0x1000 | 10) + Be16(0x0005) + Be32(0);
  ExpectInner(Eth(Ipv4(Gre(0x88be, t2 + frame, kGreSeq), 47)), kEncapGre | kEncapErspan);
  // Type III: 12-byte header (version 2), + 8 bytes of platform data when O is set.
  const std::string t3 =
      Be16(0x2000 | 10) + Be16(0x0005) + Be32(0x11223344) + Be16(0) + std::string{'\0', '\0'};
  ExpectInner(Eth(Ipv4(Gre(0x22eb, t3 + frame, kGreSeq), 47)), kEncapGre | kEncapErspan);
  std::string t3o = t3;
  t3o[11] = 0x01;
  ExpectInner(Eth(Ipv4(Gre(0x22eb, t3o + std::string(8, '\x5a') + frame, kGreSeq), 47)),
              kEncapGre | kEncapErspan);
  // Type III carrying something other than Ethernet, a wrong version, a cut header.
  std::string t3ip = t3;
  t3ip[10] = 2 << 2;
  EXPECT_EQ(Decode(Eth(Ipv4(Gre(0x22eb, t3ip + frame, kGreSeq), 47))),
            DecodeResult::kUnsupportedTunnel);
  EXPECT_EQ(Decode(Eth(Ipv4(Gre(0x88be, t3 + frame, kGreSeq), 47))),
            DecodeResult::kUnsupportedTunnel);
  EXPECT_EQ(Decode(Eth(Ipv4(Gre(0x22eb, t3.substr(0, 6), kGreSeq), 47))), DecodeResult::kTruncated);
}

TEST(Tunnels, IpInIp) {
  ExpectInner(Eth(Ipv4(InnerTcp(false), 4, kVtepA, kVtepB)), kEncapIpInIp);
  ExpectInner(Eth(Ipv4(InnerTcp(true), 41, kVtepA, kVtepB)), kEncapIpInIp);  // 6in4
  ExpectInner(Eth(Ipv6(InnerTcp(false), 4, 9, 10), 0x86dd), kEncapIpInIp);
}

TEST(Tunnels, NestingIsBounded) {
  const std::string v4 = InnerTcp(false);
  // Four different tunnels around the segment: VXLAN in GRE in GTP-U in IP in IP.
  const std::string vxlan = Ipv4(Udp(51234, 4789, Vxlan(Eth(v4))), 17, kVtepA, kVtepB);
  const std::string gre = Ipv4(Gre(0x0800, vxlan, kGreKey), 47);
  const std::string gtp = Ipv4(Udp(2152, 2152, Gtp(gre)), 17);
  const std::string ipip = Ipv4(gtp, 4);
  static_assert(kMaxTunnelDepth == 4);
  ExpectInner(Eth(ipip), kEncapVxlan | kEncapGre | kEncapGtpU | kEncapIpInIp);
  // One more is a counted drop.
  EXPECT_EQ(Decode(Eth(Ipv4(Gre(0x0800, ipip), 47))), DecodeResult::kTunnelTooDeep);
  EXPECT_EQ(Decode(Eth(Ipv4(Gre(0x6558, Eth(ipip)), 47))), DecodeResult::kTunnelTooDeep);
  // GRE in GRE a thousand times: stops at the bound, no deep recursion.
  std::string deep = v4;
  for (int i = 0; i < 1000; ++i) deep = Ipv4(Gre(0x0800, deep.substr(0, 60000)), 47);
  EXPECT_EQ(Decode(Eth(deep.substr(0, 1500))), DecodeResult::kTunnelTooDeep);
}

TEST(Tunnels, GarbageInsideTunnelsNeverCrashes) {
  const std::vector<std::string> seeds = {
      Eth(Ipv4(Udp(51234, 4789, Vxlan(Eth(InnerTcp(false)))), 17)),
      Eth(Ipv4(Gre(0x0800, InnerTcp(false), kGreChecksum | kGreKey | kGreSeq), 47)),
      Eth(Ipv4(Gre(0x6558, Eth(InnerTcp(true), 0x86dd), kGreKey), 47)),
      Eth(Ipv4(Gre(0x22eb, std::string(12, '\x20') + Eth(InnerTcp(false)), kGreSeq), 47)),
  };
  std::mt19937 rng(3);
  DecodeOptions opt;
  opt.vxlan_ports[1] = 80;  // lets flipped bytes wander into VXLAN more often
  for (int i = 0; i < 40000; ++i) {
    std::string f = seeds[i % seeds.size()];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) f[14 + rng() % (f.size() - 14)] = static_cast<char>(rng());
    if (i % 3 == 0) f.resize(rng() % f.size());
    Decode(f, opt);
  }
}

// ---- Whole exchanges, through pcap files ----

struct Txn {
  std::string method, target, server;
  int status;
  uint16_t server_port;
};
struct Sink : TransactionSink {
  std::vector<Txn> got;
  void OnTransaction(const http::Transaction& t, const ConnMeta& m) noexcept override {
    got.push_back({t.request.method, t.request.target, m.server().address,
                   t.has_response ? t.response.status_code : 0, m.server().port});
  }
};

// Wraps one inner IP packet (from the client when `up`) into link-layer frames (one, or
// more for outer fragments).
using Wrap = std::function<std::vector<std::string>(const std::string& ip, bool up)>;

// A whole HTTP/1.1 exchange between 192.168.0.1:40000 (or ::1) and :80, each packet wrapped.
std::vector<std::pair<uint64_t, std::string>> Exchange(const Wrap& wrap, bool v6 = false) {
  const std::string req = "GET /tunnel HTTP/1.1\r\nHost: t\r\n\r\n";
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  auto ip = [&](bool up, uint32_t seq, uint32_t ack, uint8_t flags, const std::string& data) {
    const std::string tcp =
        up ? Tcp(40000, 80, seq, ack, flags, data) : Tcp(80, 40000, seq, ack, flags, data);
    if (v6) return Ipv6(tcp, 6, up ? 1 : 2, up ? 2 : 1);
    return Ipv4(tcp, 6, up ? kClient4 : kServer4, up ? kServer4 : kClient4);
  };
  const uint32_t c = 1000, s = 5000;
  const auto rq = static_cast<uint32_t>(req.size()), rs = static_cast<uint32_t>(resp.size());
  std::vector<std::pair<uint64_t, std::string>> frames;
  uint64_t t = 1'700'000'000'000'000;
  auto add = [&](bool up, const std::string& p) {
    for (std::string& f : wrap(p, up)) frames.emplace_back(t += 100, std::move(f));
  };
  add(true, ip(true, c, 0, kTcpSyn, ""));
  add(false, ip(false, s, c + 1, kTcpSyn | kTcpAck, ""));
  add(true, ip(true, c + 1, s + 1, kTcpAck, ""));
  add(true, ip(true, c + 1, s + 1, kTcpAck | kTcpPsh, req));
  add(false, ip(false, s + 1, c + 1 + rq, kTcpAck | kTcpPsh, resp));
  add(true, ip(true, c + 1 + rq, s + 1 + rs, kTcpAck | kTcpFin, ""));
  add(false, ip(false, s + 1 + rs, c + 2 + rq, kTcpAck | kTcpFin, ""));
  add(true, ip(true, c + 2 + rq, s + 2 + rs, kTcpAck, ""));
  return frames;
}

struct FileRun {
  Sink sink;
  PcapStats stats;
};

// Writes `frames` as a pcap file and reads it back through ProcessFile.
FileRun RunFile(const std::vector<std::pair<uint64_t, std::string>>& frames, const char* name,
                const DecodeOptions& opt = {}) {
  FileRun run;
  const std::string path = WriteTempFile(PcapFile(kLinkEthernet, frames), name);
  EXPECT_FALSE(path.empty());
  auto r = ProcessFile(path, "", FlowLimits{}, &run.sink, opt);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
  if (r.ok()) run.stats = r.value();
  if (std::getenv("REDTAP_KEEP_TEST_PCAPS") == nullptr) std::remove(path.c_str());
  return run;
}

void ExpectOneTransaction(const FileRun& run, int encap_bit, size_t packets = 8) {
  ASSERT_EQ(run.sink.got.size(), 1u);
  EXPECT_EQ(run.sink.got[0].method, "GET");
  EXPECT_EQ(run.sink.got[0].target, "/tunnel");
  EXPECT_EQ(run.sink.got[0].status, 200);
  EXPECT_EQ(run.sink.got[0].server_port, 80);
  EXPECT_EQ(run.stats.flows.flows_closed, 1u);
  EXPECT_EQ(run.stats.decode[static_cast<int>(DecodeResult::kTcp)], packets);
  EXPECT_EQ(run.stats.tunnels[encap_bit], packets);
}

int Bit(uint8_t encap) { return std::countr_zero(encap); }

TEST(TunnelExchanges, HttpInVxlan) {
  const Wrap vxlan = [](const std::string& ip, bool up) {
    return std::vector{Eth(Ipv4(Udp(up ? 50001 : 50002, 4789, Vxlan(Eth(ip), 1001)), 17,
                                up ? kVtepA : kVtepB, up ? kVtepB : kVtepA))};
  };
  const FileRun run = RunFile(Exchange(vxlan), "redtap-vxlan.pcap");
  ExpectOneTransaction(run, Bit(kEncapVxlan));
  EXPECT_EQ(run.sink.got[0].server, "192.168.0.2");  // the inner server, not the VTEP
}

TEST(TunnelExchanges, HttpInVxlanOnAConfiguredPort) {
  const Wrap vxlan = [](const std::string& ip, bool up) {
    return std::vector{Eth(Ipv4(Udp(up ? 50001 : 50002, 8472, Vxlan(Eth(ip))), 17,
                                up ? kVtepA : kVtepB, up ? kVtepB : kVtepA))};
  };
  const auto frames = Exchange(vxlan);
  // Not a VXLAN port by default: UDP, nothing decoded.
  const FileRun plain = RunFile(frames, "redtap-vxlan8472-default.pcap");
  EXPECT_TRUE(plain.sink.got.empty());
  EXPECT_EQ(plain.stats.decode[static_cast<int>(DecodeResult::kNotTcp)], 8u);
  PcapOptions o;
  o.vxlan_ports = {8472};
  auto opt = DecodeOptionsFrom(o);
  ASSERT_TRUE(opt.ok());
  ExpectOneTransaction(RunFile(frames, "redtap-vxlan8472.pcap", opt.value()), Bit(kEncapVxlan));
}

TEST(TunnelExchanges, HttpInGreWithKeyAndSequence) {
  uint32_t seq = 0;
  const Wrap gre = [&seq](const std::string& ip, bool up) {
    return std::vector{Eth(Ipv4(Gre(0x0800, ip, kGreKey | kGreSeq, up ? 100 : 200, ++seq), 47,
                                up ? kVtepA : kVtepB, up ? kVtepB : kVtepA))};
  };
  const FileRun run = RunFile(Exchange(gre), "redtap-gre-key-seq.pcap");
  ExpectOneTransaction(run, Bit(kEncapGre));
}

TEST(TunnelExchanges, HttpIpv6InGre) {
  const Wrap gre = [](const std::string& ip, bool up) {
    return std::vector{
        Eth(Ipv4(Gre(0x86dd, ip, kGreChecksum), 47, up ? kVtepA : kVtepB, up ? kVtepB : kVtepA))};
  };
  const FileRun run = RunFile(Exchange(gre, /*v6=*/true), "redtap-gre-ipv6.pcap");
  ExpectOneTransaction(run, Bit(kEncapGre));
  EXPECT_EQ(run.sink.got[0].server, "::2");
}

TEST(TunnelExchanges, HttpInGreTransparentEthernet) {
  const Wrap teb = [](const std::string& ip, bool up) {
    return std::vector{
        Eth(Ipv6(Gre(0x6558, Eth(ip), kGreKey), 47, up ? 9 : 10, up ? 10 : 9), 0x86dd)};
  };
  ExpectOneTransaction(RunFile(Exchange(teb), "redtap-gretap.pcap"), Bit(kEncapGre));
}

TEST(TunnelExchanges, OuterFragmentsAreReassembledFirst) {
  // Each VXLAN datagram split in two outer IPv4 fragments (the second one first): the
  // reassembled UDP datagram goes on through VXLAN to the inner TCP segment.
  uint16_t id = 0;
  const Wrap fragmented = [&id](const std::string& ip, bool up) {
    const std::string udp = Udp(50001, 4789, Vxlan(Eth(ip)));
    ++id;
    const uint32_t src = up ? kVtepA : kVtepB, dst = up ? kVtepB : kVtepA;
    return std::vector{Eth(Ipv4(udp.substr(24), 17, src, dst, id, 24 / 8)),
                       Eth(Ipv4(udp.substr(0, 24), 17, src, dst, id, 0x2000))};
  };
  const auto frames = Exchange(fragmented);
  ASSERT_EQ(frames.size(), 16u);
  const FileRun run = RunFile(frames, "redtap-vxlan-fragments.pcap");
  ExpectOneTransaction(run, Bit(kEncapVxlan));
  EXPECT_EQ(run.stats.fragments.reassembled, 8u);
  EXPECT_EQ(run.stats.decode[static_cast<int>(DecodeResult::kFragment)], 16u);
}

}  // namespace
}  // namespace redtap::pcap

// SPDX-License-Identifier: Apache-2.0
// Crafted packets through each layer of userspace/pcap: link types, VLAN/QinQ, IPv6
// extension headers, fragments, TCP reordering/retransmission/overlap/holes, mid-stream and
// response-first captures, flush at end, bounds, and garbage (never a crash).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/pcap/crafted_packets.h"
#include "userspace/pcap/decode.h"
#include "userspace/pcap/flow_table.h"
#include "userspace/pcap/fragments.h"
#include "userspace/pcap/pcap_runner.h"
#include "userspace/pcap/tcp_stream.h"

namespace redtap::pcap {
namespace {

using namespace crafted;  // NOLINT(build/namespaces): the packet builders

void ExpectTcp(int link, const std::string& frame, const std::string& payload = Payload()) {
  Packet p;
  ASSERT_EQ(DecodeFrame(link, frame, &p), DecodeResult::kTcp) << "link " << link;
  EXPECT_EQ(p.tcp.src_port, 40000);
  EXPECT_EQ(p.tcp.dst_port, 80);
  EXPECT_EQ(p.tcp.payload, payload);
  EXPECT_EQ(p.tcp.payload_wire_len, payload.size());
}

TEST(Decode, LinkTypes) {
  const std::string ip = Ipv4(Tcp(40000, 80, 1, 1, kTcpAck | kTcpPsh, Payload()));
  ExpectTcp(kLinkEthernet, Eth(ip));
  ExpectTcp(kLinkRaw, ip);
  ExpectTcp(kLinkRawLinktype, ip);
  ExpectTcp(kLinkIpv4, ip);
  // Linux cooked v1: 14 bytes, then the protocol.
  ExpectTcp(kLinkLinuxSll, std::string(14, '\0') + Be16(0x0800) + ip);
  // Linux cooked v2: protocol first, 20 bytes.
  ExpectTcp(kLinkLinuxSll2, Be16(0x0800) + std::string(18, '\0') + ip);
  // NULL: host byte order (little-endian here), LOOP: network order.
  ExpectTcp(kLinkNull, std::string("\x02\0\0\0", 4) + ip);
  ExpectTcp(kLinkLoop, std::string("\0\0\0\x02", 4) + ip);
  // NFLOG: header, a prefix TLV, then the payload TLV (length/type little-endian).
  std::string nflog("\x02\x00\x00\x00", 4);
  nflog += std::string("\x08\x00\x0a\x00", 4) + "abcd";  // NFULA_PREFIX, 8 bytes
  const uint16_t len = static_cast<uint16_t>(4 + ip.size());
  nflog += std::string{static_cast<char>(len & 0xff), static_cast<char>(len >> 8), '\x09', '\0'};
  nflog += ip;
  ExpectTcp(kLinkNflog, nflog);
  Packet p;
  EXPECT_EQ(DecodeFrame(12345, ip, &p), DecodeResult::kUnsupportedLink);
  EXPECT_EQ(DecodeFrame(kLinkEthernet, Eth("xx", 0x0806), &p), DecodeResult::kNotIp);
}

TEST(Decode, VlanAndQinQ) {
  const std::string ip = Ipv4(Tcp(40000, 80, 1, 1, kTcpAck, Payload()));
  ExpectTcp(kLinkEthernet, Eth(Be16(0x0064) + Be16(0x0800) + ip, 0x8100));
  ExpectTcp(kLinkEthernet,
            Eth(Be16(0x0064) + Be16(0x8100) + Be16(0x00c8) + Be16(0x0800) + ip, 0x88a8));
}

TEST(Decode, EthernetPaddingIsNotPayload) {
  const std::string ip = Ipv4(Tcp(40000, 80, 1, 1, kTcpAck, "ab"));
  Packet p;
  // A named frame: p.tcp.payload points into it (ASan: heap-use-after-free on a temporary).
  const std::string frame = Eth(ip) + std::string(6, '\0');
  ASSERT_EQ(DecodeFrame(kLinkEthernet, frame, &p), DecodeResult::kTcp);
  EXPECT_EQ(p.tcp.payload, "ab");
}

TEST(Decode, Ipv6ExtensionHeaders) {
  const std::string tcp = Tcp(40000, 80, 1, 1, kTcpAck, Payload());
  // hop-by-hop (8 bytes) -> destination options (16 bytes) -> atomic fragment -> TCP
  std::string hbh = std::string{static_cast<char>(60), '\0'} + std::string(6, '\0');
  std::string dst = std::string{static_cast<char>(44), '\x01'} + std::string(14, '\0');
  std::string frag = std::string{static_cast<char>(6), '\0'} + Be16(0) + Be32(7);
  ExpectTcp(kLinkEthernet, Eth(Ipv6(hbh + dst + frag + tcp, 0), 0x86dd));
  Packet p;
  EXPECT_EQ(DecodeFrame(kLinkEthernet, Eth(Ipv6("12345678", 17), 0x86dd), &p),
            DecodeResult::kNotTcp);
}

TEST(Decode, TruncatedAndGarbageNeverCrash) {
  const std::string frame = Eth(Ipv4(Tcp(40000, 80, 1, 1, kTcpAck, Payload())));
  Packet p;
  for (size_t n = 0; n < frame.size(); ++n) {
    const DecodeResult r = DecodeFrame(kLinkEthernet, frame.substr(0, n), &p);
    if (r == DecodeResult::kTcp) {
      EXPECT_LE(p.tcp.payload.size(), p.tcp.payload_wire_len);
    }
  }
  std::mt19937 rng(1);
  const int links[] = {kLinkEthernet, kLinkRaw,   kLinkLinuxSll,   kLinkLinuxSll2,
                       kLinkNull,     kLinkNflog, kLinkArcnetLinux};
  for (int i = 0; i < 20000; ++i) {
    std::string g(rng() % 120, '\0');
    for (char& c : g) c = static_cast<char>(rng());
    if (!g.empty() && i % 2) g[0] = static_cast<char>(0x45);
    DecodeFrame(links[i % 7], g, &p);
  }
}

TEST(Decode, GtpUTunnel) {
  const std::string inner =
      Ipv4(Tcp(40000, 80, 1, 1, kTcpAck | kTcpPsh, Payload()), 6, 0xc0a80001, 0xc0a80002);
  // Plain G-PDU, outer IPv4 / UDP 2152.
  ExpectTcp(kLinkEthernet, Eth(Ipv4(Udp(2152, 2152, Gtp(inner)), 17)));
  Packet p;
  ASSERT_EQ(DecodeFrame(kLinkEthernet, Eth(Ipv4(Udp(2152, 2152, Gtp(inner)), 17)), &p),
            DecodeResult::kTcp);
  EXPECT_EQ(p.tcp.ip.src[0], 0xc0);  // the inner addresses, not the tunnel's
  EXPECT_EQ(p.tcp.ip.dst[3], 0x02);
  // Sequence number flag with a PDU session container extension (1 x 4 bytes), then none.
  const std::string ext =
      Be16(7) + std::string{'\x00', '\x85'} + std::string{'\x01', '\x10', '\x05', '\x00'};
  ExpectTcp(kLinkEthernet, Eth(Ipv4(Udp(2152, 2152, Gtp(inner, 0x36, ext)), 17)));
  // Outer IPv6, inner IPv6.
  const std::string inner6 = Ipv6(Tcp(40000, 80, 1, 1, kTcpAck, Payload()), 6);
  ExpectTcp(kLinkEthernet, Eth(Ipv6(Udp(40001, 2152, Gtp(inner6)), 17), 0x86dd));
  // Not GTP-U: other UDP ports, GTP signalling (type != 255), GTPv2, empty G-PDU.
  EXPECT_EQ(DecodeFrame(kLinkEthernet, Eth(Ipv4(Udp(53, 2153, Gtp(inner)), 17)), &p),
            DecodeResult::kNotTcp);
  std::string echo = Gtp(inner);
  echo[1] = '\x01';
  EXPECT_EQ(DecodeFrame(kLinkEthernet, Eth(Ipv4(Udp(2152, 2152, echo), 17)), &p),
            DecodeResult::kNotTcp);
  EXPECT_EQ(DecodeFrame(kLinkEthernet, Eth(Ipv4(Udp(2152, 2152, Gtp(inner, 0x48)), 17)), &p),
            DecodeResult::kNotTcp);
  EXPECT_EQ(DecodeFrame(kLinkEthernet, Eth(Ipv4(Udp(2152, 2152, Gtp("")), 17)), &p),
            DecodeResult::kNotTcp);
  // GTP in GTP is decoded down to kMaxTunnelDepth tunnels, no deeper (a counted drop).
  std::string nested = inner;
  for (int i = 1; i < kMaxTunnelDepth; ++i) nested = Ipv4(Udp(2152, 2152, Gtp(nested)), 17);
  ExpectTcp(kLinkRaw, Ipv4(Udp(2152, 2152, Gtp(nested)), 17));
  nested = Ipv4(Udp(2152, 2152, Gtp(nested)), 17);
  EXPECT_EQ(DecodeFrame(kLinkRaw, Ipv4(Udp(2152, 2152, Gtp(nested)), 17), &p),
            DecodeResult::kTunnelTooDeep);
  // Truncated anywhere, or an extension of length 0: never reads out of bounds.
  const std::string full = Eth(Ipv4(Udp(2152, 2152, Gtp(inner, 0x36, ext)), 17));
  for (size_t n = 0; n < full.size(); ++n) {
    if (DecodeFrame(kLinkEthernet, full.substr(0, n), &p) == DecodeResult::kTcp) {
      EXPECT_LE(p.tcp.payload.size(), p.tcp.payload_wire_len);
    }
  }
  const std::string bad_ext =
      Be16(7) + std::string{'\x00', '\x85'} + std::string{'\x00', '\x10', '\x05', '\x00'};
  EXPECT_EQ(
      DecodeFrame(kLinkEthernet, Eth(Ipv4(Udp(2152, 2152, Gtp(inner, 0x36, bad_ext)), 17)), &p),
      DecodeResult::kMalformed);
}

TEST(Decode, SnapLengthCut) {
  const std::string ip = Ipv4(Tcp(40000, 80, 1, 1, kTcpAck, Payload()));
  Packet p;
  ASSERT_EQ(DecodeIp(ip.substr(0, ip.size() - 5), &p), DecodeResult::kTcp);
  EXPECT_EQ(p.tcp.payload.size() + 5, p.tcp.payload_wire_len);
}

TEST(Fragments, Ipv4OutOfOrderReassembly) {
  const std::string tcp = Tcp(40000, 80, 1, 1, kTcpAck, Payload() + std::string(40, 'b'));
  const std::string a = tcp.substr(0, 32), b = tcp.substr(32);
  FragmentReassembler r;
  Packet p;
  std::string_view dg;
  uint8_t proto = 0;
  // Second half first. The packets are named, not temporaries: p.frag.data points into
  // them until Add has copied it (ASan: heap-use-after-free).
  const std::string second = Ipv4(b, 6, 1, 2, 9, static_cast<uint16_t>(32 / 8));
  ASSERT_EQ(DecodeIp(second, &p), DecodeResult::kFragment);
  EXPECT_FALSE(r.Add(p.frag, 1, &dg, &proto));
  const std::string first = Ipv4(a, 6, 1, 2, 9, 0x2000);
  ASSERT_EQ(DecodeIp(first, &p), DecodeResult::kFragment);
  ASSERT_TRUE(r.Add(p.frag, 2, &dg, &proto));
  EXPECT_EQ(proto, 6);
  EXPECT_EQ(dg, tcp);
  EXPECT_EQ(r.sets(), 0u);
}

TEST(Fragments, Ipv6FragmentHeader) {
  const std::string tcp = Tcp(40000, 80, 1, 1, kTcpAck, Payload() + std::string(40, 'c'));
  FragmentReassembler r;
  Packet p;
  std::string_view dg;
  uint8_t proto = 0;
  auto frag = [&](uint16_t off, bool more, const std::string& d) {
    return Ipv6(std::string{static_cast<char>(6), '\0'} +
                    Be16(static_cast<uint16_t>((off << 3) | (more ? 1 : 0))) + Be32(77) + d,
                44);
  };
  // Named packets: p.frag.data points into them until Add has copied it.
  const std::string first = frag(0, true, tcp.substr(0, 48));
  ASSERT_EQ(DecodeIp(first, &p), DecodeResult::kFragment);
  EXPECT_FALSE(r.Add(p.frag, 1, &dg, &proto));
  const std::string second = frag(6, false, tcp.substr(48));
  ASSERT_EQ(DecodeIp(second, &p), DecodeResult::kFragment);
  ASSERT_TRUE(r.Add(p.frag, 2, &dg, &proto));
  EXPECT_EQ(dg, tcp);
}

TEST(Fragments, BoundedAndExpired) {
  FragmentReassembler r(2, 1000);
  IpFragment f;
  f.ip.family = 4;
  f.protocol = 6;
  f.more = true;
  f.data = "12345678";
  std::string_view dg;
  uint8_t proto;
  for (uint32_t id = 0; id < 5; ++id) {
    f.id = id;
    r.Add(f, 10, &dg, &proto);
  }
  EXPECT_EQ(r.sets(), 2u);
  EXPECT_EQ(r.stats().dropped_sets, 3u);
  f.id = 99;
  r.Add(f, 5000, &dg, &proto);  // the two old ones expire
  EXPECT_EQ(r.sets(), 1u);
}

// ---- TcpStream ----

struct Rec : StreamOutput {
  std::string bytes;
  uint64_t holes = 0, hole_bytes = 0;
  void OnData(std::string_view d, uint64_t wire, uint64_t) noexcept override {
    bytes.append(d);
    bytes.append(wire - d.size(), '?');
  }
  void OnHole(uint64_t len, uint64_t) noexcept override {
    ++holes;
    hole_bytes += len;
    bytes.append(len, '#');
  }
};

TEST(TcpStream, InOrderOutOfOrderRetransmitOverlap) {
  TcpStream s;
  Rec r;
  s.OnSyn(999);
  s.OnSegment(1000, "abc", 3, false, 1, &r);
  s.OnSegment(1006, "ghi", 3, false, 2, &r);  // early
  EXPECT_EQ(r.bytes, "abc");
  s.OnSegment(1000, "abc", 3, false, 3, &r);   // retransmission
  s.OnSegment(1002, "cdef", 4, false, 4, &r);  // overlap: 'c' again, then "def" fills the hole
  EXPECT_EQ(r.bytes, "abcdefghi");
  EXPECT_EQ(s.stats().retransmits, 1u);
  EXPECT_GE(s.stats().overlaps, 1u);
  EXPECT_EQ(s.stats().out_of_order, 1u);
  EXPECT_EQ(s.buffered_bytes(), 0u);
}

TEST(TcpStream, SequenceWrap) {
  TcpStream s;
  Rec r;
  s.OnSegment(0xfffffffe, "ab", 2, false, 1, &r);
  s.OnSegment(2, "ef", 2, false, 2, &r);
  s.OnSegment(0, "cd", 2, false, 3, &r);
  EXPECT_EQ(r.bytes, "abcdef");
}

TEST(TcpStream, HoleSkippedOnPeerAckAndFlush) {
  TcpStream s;
  Rec r;
  s.OnSegment(100, "aa", 2, false, 1, &r);
  s.OnSegment(105, "bb", 2, false, 2, &r);  // 3 bytes missing
  s.OnPeerAck(107, 3, &r);                  // the receiver has them: they will not come
  EXPECT_EQ(r.bytes, "aa###bb");
  EXPECT_EQ(r.holes, 1u);
  s.OnSegment(110, "cc", 2, false, 4, &r);
  s.Flush(5, &r);
  EXPECT_EQ(r.bytes, "aa###bb###cc");
}

TEST(TcpStream, BufferBoundForcesSkip) {
  TcpStream s(1024);
  Rec r;
  s.OnSegment(0, "a", 1, false, 1, &r);
  for (uint32_t i = 0; i < 40; ++i)
    s.OnSegment(100 + i * 100, std::string(100, 'x'), 100, false, 2, &r);
  EXPECT_LE(s.buffered_bytes(), 1024u);
  EXPECT_GT(s.stats().forced_skips, 0u);
}

TEST(TcpStream, FinAndJump) {
  TcpStream s;
  Rec r;
  s.OnSegment(10, "ab", 2, true, 1, &r);
  EXPECT_TRUE(s.fin_done());
  s.OnSegment(10, "ab", 2, false, 2, &r);
  EXPECT_EQ(r.bytes, "ab");
  s.OnSegment(10 + (1u << 30), "new", 3, false, 3, &r);  // 4-tuple reused, SYN not captured
  EXPECT_EQ(s.stats().jumps, 1u);
  EXPECT_EQ(r.bytes, "abnew");
}

// ---- FlowTable ----

struct Txn {
  std::string method, target;
  int status;
  Role role;
  uint16_t server_port;
  uint64_t duration;
};
struct Sink : TransactionSink {
  std::vector<Txn> got;
  void OnTransaction(const http::Transaction& t, const ConnMeta& m) noexcept override {
    got.push_back({t.request.method, t.request.target, t.has_response ? t.response.status_code : 0,
                   m.role, m.server().port, t.DurationNs()});
  }
};

TcpSegment Seg(bool from_client, uint32_t seq, uint32_t ack, uint8_t flags, std::string_view data) {
  TcpSegment s;
  s.ip.family = 4;
  const uint8_t c[4] = {10, 0, 0, 1}, sv[4] = {10, 0, 0, 2};
  std::memcpy(s.ip.src, from_client ? c : sv, 4);
  std::memcpy(s.ip.dst, from_client ? sv : c, 4);
  s.src_port = from_client ? 40000 : 8080;
  s.dst_port = from_client ? 8080 : 40000;
  s.seq = seq;
  s.ack = ack;
  s.flags = flags;
  s.payload = data;
  s.payload_wire_len = static_cast<uint32_t>(data.size());
  return s;
}

const std::string kReq1 = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
const std::string kReq2 = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
const std::string kResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const std::string kResp404 = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

TEST(FlowTable, HandshakeKeepAliveCloseAndLatency) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  const uint8_t A = kTcpAck, P = kTcpAck | kTcpPsh;
  t.OnSegment(Seg(true, 100, 0, kTcpSyn, ""), 1000);
  t.OnSegment(Seg(false, 500, 101, kTcpSyn | kTcpAck, ""), 1100);
  t.OnSegment(Seg(true, 101, 501, A, ""), 1200);
  t.OnSegment(Seg(true, 101, 501, P, kReq1), 2000);
  t.OnSegment(Seg(false, 501, 101 + kReq1.size(), P, kResp), 5000);
  const uint32_t c2 = 101 + static_cast<uint32_t>(kReq1.size());
  const uint32_t s2 = 501 + static_cast<uint32_t>(kResp.size());
  t.OnSegment(Seg(true, c2, s2, P, kReq2), 6000);
  t.OnSegment(Seg(false, s2, c2 + kReq2.size(), P, kResp404), 9000);
  t.OnSegment(Seg(true, c2 + kReq2.size(), s2 + kResp404.size(), kTcpFin | A, ""), 9500);
  t.OnSegment(Seg(false, s2 + kResp404.size(), c2 + kReq2.size() + 1, kTcpFin | A, ""), 9600);
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[0].target, "/a");
  EXPECT_EQ(sink.got[0].status, 200);
  EXPECT_EQ(sink.got[0].duration, 3000u);  // request first byte -> response last byte
  EXPECT_EQ(sink.got[0].role, Role::kServer);
  EXPECT_EQ(sink.got[0].server_port, 8080);
  EXPECT_EQ(sink.got[1].status, 404);
  EXPECT_EQ(t.flows(), 0u);
  EXPECT_EQ(t.stats().flows_closed, 1u);
}

// Every answer a server sends is a transaction: a client seen opening the connection sends
// bytes that are not a request, the server answers 400 (issue 12).
TEST(FlowTable, AnswerToBytesThatAreNotARequest) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  const uint8_t A = kTcpAck, P = kTcpAck | kTcpPsh;
  const std::string garbage("\x00\x01\x02 not a request\r\n\r\n", 22);
  const std::string k400 = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  t.OnSegment(Seg(true, 100, 0, kTcpSyn, ""), 1000);
  t.OnSegment(Seg(false, 500, 101, kTcpSyn | kTcpAck, ""), 1100);
  t.OnSegment(Seg(true, 101, 501, A, ""), 1200);
  t.OnSegment(Seg(true, 101, 501, P, garbage), 2000);
  t.OnSegment(Seg(false, 501, 101 + garbage.size(), P, k400), 5000);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].method, "_OTHER");
  EXPECT_EQ(sink.got[0].target, "/*unparsed");
  EXPECT_EQ(sink.got[0].status, 400);
  EXPECT_EQ(sink.got[0].duration, 3000u);  // from the first unparsed byte
  EXPECT_EQ(t.stats().parser.parse_errors, 1u);
  EXPECT_EQ(t.stats().flows_not_http, 0u);

  // The same bytes answered in anything but HTTP: not HTTP, nothing reported.
  Sink other;
  FlowTable u(FlowLimits{}, &other);
  u.OnSegment(Seg(true, 100, 0, kTcpSyn, ""), 1000);
  u.OnSegment(Seg(false, 500, 101, kTcpSyn | kTcpAck, ""), 1100);
  u.OnSegment(Seg(true, 101, 501, P, garbage), 2000);
  u.OnSegment(Seg(false, 501, 101 + garbage.size(), P, "\x15\x03\x03\x00\x02"), 5000);
  EXPECT_TRUE(other.got.empty());
  EXPECT_EQ(u.stats().flows_not_http, 1u);
}

TEST(FlowTable, OutOfOrderAndRetransmittedSegments) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  const uint8_t P = kTcpAck | kTcpPsh;
  t.OnSegment(Seg(true, 100, 0, kTcpSyn, ""), 1);
  const std::string a = kReq1.substr(0, 10), b = kReq1.substr(10);
  t.OnSegment(Seg(true, 101 + 10, 1, P, b), 2);  // second half first
  t.OnSegment(Seg(true, 101, 1, P, a), 3);
  t.OnSegment(Seg(true, 101, 1, P, a), 4);  // retransmission
  t.OnSegment(Seg(false, 1, 0, P, kResp.substr(0, 20)), 5);
  t.OnSegment(Seg(false, 1, 0, P, kResp.substr(0, 30)), 6);  // overlap
  t.OnSegment(Seg(false, 31, 0, P, kResp.substr(30)), 7);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].target, "/a");
  EXPECT_EQ(sink.got[0].status, 200);
  EXPECT_GE(t.stats().tcp.retransmits, 1u);
  EXPECT_EQ(t.stats().tcp.out_of_order, 1u);
}

TEST(FlowTable, GapSkipsToNextMessage) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  const uint8_t P = kTcpAck | kTcpPsh;
  // Request 1 answered; request 2's head is lost; request 3 after it is still found.
  const std::string r3 = "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  uint32_t c = 1, s = 1;
  t.OnSegment(Seg(true, c, s, P, kReq1), 10);
  c += kReq1.size();
  t.OnSegment(Seg(false, s, c, P, kResp), 20);
  s += kResp.size();
  c += kReq2.size();                               // lost
  t.OnSegment(Seg(false, s, c, P, kResp404), 30);  // its response (acks the lost bytes)
  s += kResp404.size();
  t.OnSegment(Seg(true, c, s, P, r3), 40);
  c += r3.size();
  t.OnSegment(Seg(false, s, c, P, kResp), 50);
  t.FlushAll(60);
  ASSERT_GE(sink.got.size(), 2u);
  EXPECT_EQ(sink.got.front().target, "/a");
  EXPECT_EQ(sink.got.back().target, "/c");
  EXPECT_EQ(sink.got.back().status, 200);
  EXPECT_GE(t.stats().tcp.holes, 1u);
}

TEST(FlowTable, MidStreamStartInsideABody) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  const uint8_t P = kTcpAck | kTcpPsh;
  // The capture starts with the tail of a response, then a new exchange.
  t.OnSegment(Seg(false, 5000, 77, P, "tail of a body\r\n"), 1);
  t.OnSegment(Seg(true, 77, 5016, P, "\r\nmore junk\r\n" + kReq1), 2);
  t.OnSegment(Seg(false, 5016, 77 + 13 + kReq1.size(), P, kResp), 3);
  t.FlushAll(4);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].target, "/a");
  EXPECT_EQ(sink.got[0].status, 200);
  EXPECT_EQ(sink.got[0].server_port, 8080);
  EXPECT_EQ(t.stats().midstream_flows, 1u);
}

TEST(FlowTable, ResponseFirstInfersDirection) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  const uint8_t P = kTcpAck | kTcpPsh;
  // A response with no request (orphan), then a normal exchange: the server is the side
  // that sent the status line even though its packet came first.
  t.OnSegment(Seg(false, 1, 1, P, kResp), 1);
  t.OnSegment(Seg(true, 1, 1 + kResp.size(), P, kReq2), 2);
  t.OnSegment(Seg(false, 1 + kResp.size(), 1 + kReq2.size(), P, kResp404), 3);
  t.FlushAll(4);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].target, "/b");
  EXPECT_EQ(sink.got[0].status, 404);
  EXPECT_EQ(sink.got[0].server_port, 8080);
  EXPECT_EQ(t.stats().parser.orphan_responses, 1u);
}

TEST(FlowTable, NeverClosedIsFlushedAtEnd) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  t.OnSegment(Seg(true, 1, 1, kTcpAck | kTcpPsh, kReq1), 1);
  EXPECT_TRUE(sink.got.empty());
  t.FlushAll(2);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].status, 0);  // no response
  EXPECT_EQ(t.stats().flows_flushed, 1u);
}

TEST(FlowTable, LocalAddressesMakeOutboundCallsClient) {
  Sink sink;
  FlowTable t(FlowLimits{}, &sink);
  IpAddrs local;
  local.family = 4;
  const uint8_t c[4] = {10, 0, 0, 1};
  std::memcpy(local.src, c, 4);
  t.SetLocalAddresses({local});
  t.OnSegment(Seg(true, 1, 1, kTcpAck | kTcpPsh, kReq1), 1);
  t.OnSegment(Seg(false, 1, 1 + kReq1.size(), kTcpAck | kTcpPsh, kResp), 2);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].role, Role::kClient);
  EXPECT_EQ(sink.got[0].server_port, 8080);
}

TEST(FlowTable, NotHttpIsIgnoredAndFlowsAreBounded) {
  Sink sink;
  FlowLimits l;
  l.max_flows = 4;
  FlowTable t(l, &sink);
  // A TLS-looking client after a SYN: given up at once.
  t.OnSegment(Seg(true, 1, 0, kTcpSyn, ""), 1);
  t.OnSegment(Seg(true, 2, 1, kTcpAck | kTcpPsh, std::string("\x16\x03\x01\x02\x00", 5)), 2);
  EXPECT_EQ(t.stats().flows_not_http, 1u);
  for (uint16_t i = 0; i < 20; ++i) {
    TcpSegment s = Seg(true, 1, 1, kTcpAck | kTcpPsh, kReq1);
    s.src_port = static_cast<uint16_t>(1000 + i);
    t.OnSegment(s, 10 + i);
  }
  EXPECT_LE(t.flows(), 4u);
  EXPECT_GT(t.stats().flows_evicted_lru, 0u);
  t.Sweep(10 + 20 + l.idle_timeout_ns + 1);
  EXPECT_EQ(t.flows(), 0u);
  EXPECT_GT(t.stats().flows_evicted_idle, 0u);
}

TEST(FlowTable, LenientRequestLinesAndHttp09) {
  const uint8_t P = kTcpAck | kTcpPsh;
  const std::string h09 = "GET /zeek.html\n";
  const std::string body = "<html>hi</html>\n";
  const std::string empty_target = "GET  HTTP/1.1\r\nHost: h\r\n\r\n";
  for (const bool lenient : {true, false}) {
    SCOPED_TRACE(lenient ? "lenient (pcap default)" : "lenient_http = false");
    Sink sink;
    FlowLimits l;
    l.lenient_http = lenient;
    FlowTable t(l, &sink);
    // HTTP/0.9 after a SYN: a request with no response.
    t.OnSegment(Seg(true, 100, 0, kTcpSyn, ""), 1);
    t.OnSegment(Seg(false, 500, 101, kTcpSyn | kTcpAck, ""), 2);
    t.OnSegment(Seg(true, 101, 501, P, h09), 3);
    t.OnSegment(Seg(false, 501, 101 + h09.size(), P, body), 4);
    // Another connection: an empty request-target.
    TcpSegment s = Seg(true, 1, 1, kTcpSyn, "");
    s.src_port = 40001;
    t.OnSegment(s, 5);
    s = Seg(true, 2, 1, P, empty_target);
    s.src_port = 40001;
    t.OnSegment(s, 6);
    s = Seg(false, 1, 2 + empty_target.size(), P, kResp);
    s.dst_port = 40001;
    t.OnSegment(s, 7);
    t.FlushAll(100);
    if (lenient) {
      ASSERT_EQ(sink.got.size(), 2u);
      // The HTTP/0.9 one is emitted at the flush (no response closes it): order by target.
      std::sort(sink.got.begin(), sink.got.end(),
                [](const Txn& a, const Txn& b) { return a.target > b.target; });
      EXPECT_EQ(sink.got[0].target, "/zeek.html");
      EXPECT_EQ(sink.got[0].status, 0);
      EXPECT_EQ(sink.got[1].method, "GET");
      EXPECT_EQ(sink.got[1].target, "");
      EXPECT_EQ(sink.got[1].status, 200);
    } else {
      // Strict: the empty target does not parse; its answer is reported as unparsed. The
      // HTTP/0.9 exchange has no HTTP answer at all.
      ASSERT_EQ(sink.got.size(), 1u);
      EXPECT_EQ(sink.got[0].method, "_OTHER");
      EXPECT_EQ(sink.got[0].target, "/*unparsed");
      EXPECT_EQ(sink.got[0].status, 200);
    }
  }
}

TEST(PacketProcessor, GarbageFramesAreCounted) {
  Sink sink;
  PacketProcessor p(FlowLimits{}, &sink);
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string g(rng() % 200, '\0');
    for (char& c : g) c = static_cast<char>(rng());
    if (g.size() > 20 && i % 2) {
      g = Ipv4(Tcp(static_cast<uint16_t>(rng()), 80, rng(), rng(), static_cast<uint8_t>(rng()), g));
    }
    p.OnFrame(kLinkRaw, g, static_cast<uint64_t>(i));
  }
  p.Finish();
  const PcapStats s = p.stats();
  EXPECT_EQ(s.packets, 20000u);
}

}  // namespace
}  // namespace redtap::pcap

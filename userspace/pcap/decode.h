// SPDX-License-Identifier: Apache-2.0
// Link-layer, IP and TCP decoding of one captured packet: pure functions on bytes, no
// allocation, no state. Tunnels (GTP-U, VXLAN, GRE with ERSPAN, IP in IP) are unwrapped by
// recursion, at most kMaxTunnelDepth deep. IP fragments are recognised here and reassembled
// by FragmentReassembler (fragments.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace redtap::pcap {

/// Link types handled (DLT_* / LINKTYPE_* values as libpcap reports them).
enum LinkType : int {
  kLinkNull = 0,           // DLT_NULL: 4-byte address family in the writer's byte order
  kLinkEthernet = 1,       // DLT_EN10MB, with any number of 802.1Q / 802.1ad / QinQ tags
  kLinkRaw = 12,           // DLT_RAW on Linux (LINKTYPE_RAW 101 is mapped to it by libpcap)
  kLinkRawBsd = 14,        // DLT_RAW on OpenBSD
  kLinkRawLinktype = 101,  // LINKTYPE_RAW (seen when not mapped)
  kLinkLoop = 108,         // DLT_LOOP: 4-byte address family, network byte order
  kLinkLinuxSll = 113,     // DLT_LINUX_SLL (Linux cooked v1)
  kLinkArcnetLinux = 129,  // DLT_ARCNET_LINUX
  kLinkIpv4 = 228,         // LINKTYPE_IPV4
  kLinkIpv6 = 229,         // LINKTYPE_IPV6
  kLinkNflog = 239,        // DLT_NFLOG (Linux netfilter log, payload TLV)
  kLinkLinuxSll2 = 276,    // DLT_LINUX_SLL2 (Linux cooked v2)
};

/// Why a packet was not turned into a TCP segment. Every value is counted by the caller.
enum class DecodeResult : uint8_t {
  kTcp = 0,            // `Packet::tcp` is filled
  kFragment,           // an IP fragment: `Packet::frag` is filled, feed FragmentReassembler
  kNotIp,              // ARP, LLDP, other ethertypes / families
  kNotTcp,             // UDP, ICMP, ESP, ...
  kTruncated,          // the capture ends inside a header
  kMalformed,          // impossible header values (bad IHL, TCP offset, lengths)
  kUnsupportedLink,    // a link type not in LinkType
  kUnsupportedTunnel,  // a tunnel we do not open: GRE version 1 (PPTP), GRE with routing,
                       // a GRE protocol type other than IPv4/IPv6/Ethernet/ERSPAN, ...
  kTunnelTooDeep,      // more than kMaxTunnelDepth tunnel headers nested
  kCount,
};
const char* DecodeResultName(DecodeResult r);

/// Tunnels unwrapped on the way to the TCP segment (Packet::encap bits, PcapStats::tunnels).
enum Encap : uint8_t {
  kEncapGtpU = 1 << 0,    // GTPv1-U G-PDU over UDP 2152
  kEncapVxlan = 1 << 1,   // VXLAN over UDP (DecodeOptions::vxlan_ports)
  kEncapGre = 1 << 2,     // GRE version 0 (IP protocol 47)
  kEncapErspan = 1 << 3,  // ERSPAN type I/II/III inside GRE
  kEncapIpInIp = 1 << 4,  // IPv4/IPv6 directly in IPv4/IPv6 (IP protocols 4 and 41)
};
inline constexpr int kEncapKinds = 5;
const char* EncapName(int bit_index);  // "gtp-u", "vxlan", "gre", "erspan", "ip-in-ip"

/// Tunnel headers unwrapped at most (any mix: GRE in VXLAN in GTP-U ...); one more is
/// counted as kTunnelTooDeep.
inline constexpr int kMaxTunnelDepth = 4;
inline constexpr uint16_t kVxlanPort = 4789;  // IANA

/// What the decoder looks into beyond the fixed protocols.
struct DecodeOptions {
  static constexpr int kMaxVxlanPorts = 4;
  /// Outer UDP destination ports carrying VXLAN; 0 = unused slot (all 0: no VXLAN).
  uint16_t vxlan_ports[kMaxVxlanPorts] = {kVxlanPort, 0, 0, 0};
  bool IsVxlanPort(uint16_t port) const {
    for (uint16_t p : vxlan_ports) {
      if (p != 0 && p == port) return true;
    }
    return false;
  }
};

/// Address pair of an IP packet. IPv4 addresses occupy the first 4 bytes, the other 12 are
/// zero (FlowTable keys on all 16).
struct IpAddrs {
  uint8_t family = 0;  // 4 or 6
  uint8_t src[16] = {};
  uint8_t dst[16] = {};
};

/// One TCP segment. `payload` points into the packet (or the reassembled datagram);
/// `payload_wire_len` is the payload length the IP header announces (>= payload.size()
/// when the capture was cut by the snap length).
struct TcpSegment {
  IpAddrs ip;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;  // kFin | kSyn | kRst | kPsh | kAck ...
  std::string_view payload;
  uint32_t payload_wire_len = 0;
};
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

/// One IP fragment (IPv4, or IPv6 with a Fragment extension header).
struct IpFragment {
  IpAddrs ip;
  uint32_t id = 0;         // IPv4 identification / IPv6 fragment identification
  uint8_t protocol = 0;    // upper-layer protocol (IPv6: the fragment header's next header)
  uint32_t offset = 0;     // byte offset of this fragment's data
  bool more = false;       // more fragments follow
  std::string_view data;   // the fragment's data (captured part)
  bool truncated = false;  // the capture cut this fragment's data
  uint8_t depth = 0;       // tunnel headers around this fragment (for DecodeIpPayload)
};

struct Packet {
  TcpSegment tcp;
  IpFragment frag;
  uint8_t encap = 0;  // Encap bits of the tunnels unwrapped (0: none)
};

/// Decodes a captured frame of `link_type`. Never reads outside `frame`, never recurses more
/// than kMaxTunnelDepth tunnels deep.
DecodeResult DecodeFrame(int link_type, std::string_view frame, Packet* out,
                         const DecodeOptions& opt = {}) noexcept;

/// Whether DecodeFrame knows `link_type` (the mapped reader takes only those files).
bool IsDecodableLinkType(int link_type) noexcept;

/// Decodes an IPv4 or IPv6 packet (the version nibble decides).
DecodeResult DecodeIp(std::string_view ip, Packet* out, const DecodeOptions& opt = {}) noexcept;

/// Decodes what an IP header announced as `protocol` (TCP, or a tunnel: UDP, GRE, IP in IP)
/// `depth` tunnels deep: a reassembled datagram goes on from here (IpFragment::depth).
/// `data` is the captured part of `wire_len` bytes. Adds to out->encap, does not clear it.
DecodeResult DecodeIpPayload(const IpAddrs& ip, uint8_t protocol, std::string_view data,
                             uint32_t wire_len, int depth, const DecodeOptions& opt,
                             Packet* out) noexcept;

/// Decodes a TCP header + payload carried in an IP payload of `wire_len` bytes (of which
/// `data` were captured). `ip` is copied into the segment.
DecodeResult DecodeTcp(const IpAddrs& ip, std::string_view data, uint32_t wire_len,
                       TcpSegment* out) noexcept;

}  // namespace redtap::pcap

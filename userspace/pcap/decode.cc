// SPDX-License-Identifier: Apache-2.0
#include "userspace/pcap/decode.h"

#include <cstring>

namespace redtap::pcap {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86DD;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88A8;
constexpr uint16_t kEtherQinQOld1 = 0x9100;
constexpr uint16_t kEtherQinQOld2 = 0x9200;
constexpr uint16_t kEtherPppoeSession = 0x8864;
constexpr uint16_t kGreTeb = 0x6558;      // transparent Ethernet bridging
constexpr uint16_t kGreErspan2 = 0x88BE;  // ERSPAN type I (no GRE sequence) and II
constexpr uint16_t kGreErspan3 = 0x22EB;  // ERSPAN type III
constexpr uint8_t kProtoIpIp = 4;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIpv6 = 41;
constexpr uint8_t kProtoGre = 47;
constexpr uint16_t kGtpUPort = 2152;

inline uint16_t Be16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] << 8 | u[1]);
}
inline uint32_t Be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) << 24 | static_cast<uint32_t>(u[1]) << 16 |
         static_cast<uint32_t>(u[2]) << 8 | u[3];
}
inline uint16_t Le16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[1] << 8 | u[0]);
}
inline uint32_t Le32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[3]) << 24 | static_cast<uint32_t>(u[2]) << 16 |
         static_cast<uint32_t>(u[1]) << 8 | u[0];
}

// One decoding: the options and the output, passed down every layer. `depth` (an argument
// of each layer) counts the tunnel headers already removed.
struct Ctx {
  const DecodeOptions& opt;
  Packet* out;
};

DecodeResult DecodeIpAt(Ctx& c, std::string_view d, int depth) noexcept;
DecodeResult DecodeL4(Ctx& c, const IpAddrs& ip, uint8_t proto, std::string_view d, uint32_t wire,
                      int depth) noexcept;

// An ethertype-dispatched payload, VLAN tags, PPPoE and LLC/SNAP peeled off.
DecodeResult DecodeEthertype(Ctx& c, uint16_t type, std::string_view d, int depth) noexcept {
  for (int n = 0; n < 8; ++n) {
    switch (type) {
      case kEtherIpv4:
      case kEtherIpv6:
        return DecodeIpAt(c, d, depth);
      case kEtherVlan:
      case kEtherQinQ:
      case kEtherQinQOld1:
      case kEtherQinQOld2:
        if (d.size() < 4) return DecodeResult::kTruncated;
        type = Be16(d.data() + 2);
        d.remove_prefix(4);
        continue;
      case kEtherPppoeSession: {
        if (d.size() < 8) return DecodeResult::kTruncated;
        const uint16_t ppp = Be16(d.data() + 6);
        d.remove_prefix(8);
        if (ppp == 0x0021 || ppp == 0x0057) return DecodeIpAt(c, d, depth);
        return DecodeResult::kNotIp;
      }
      default:
        if (type < 0x0600) {
          // IEEE 802.3 length field: LLC, maybe SNAP with an ethertype.
          if (d.size() < 8) return DecodeResult::kTruncated;
          const auto* u = reinterpret_cast<const unsigned char*>(d.data());
          if (u[0] == 0xAA && u[1] == 0xAA && u[2] == 0x03) {
            type = Be16(d.data() + 6);
            d.remove_prefix(8);
            continue;
          }
        }
        return DecodeResult::kNotIp;
    }
  }
  return DecodeResult::kMalformed;  // absurd tag nesting
}

DecodeResult DecodeEthernet(Ctx& c, std::string_view d, int depth) noexcept {
  if (d.size() < 14) return DecodeResult::kTruncated;
  return DecodeEthertype(c, Be16(d.data() + 12), d.substr(14), depth);
}

bool IsIpFamily(uint32_t f) {
  // AF_INET everywhere; AF_INET6 on Linux (10), BSD (24), FreeBSD (28), Darwin (30).
  return f == 2 || f == 10 || f == 24 || f == 28 || f == 30;
}

DecodeResult DecodeNflog(Ctx& c, std::string_view d) noexcept {
  if (d.size() < 4) return DecodeResult::kTruncated;
  const uint8_t family = static_cast<uint8_t>(d[0]);
  d.remove_prefix(4);
  if (family != 2 && family != 10) return DecodeResult::kNotIp;
  // TLVs: length (including this 4-byte header) and type, in the capturing host's byte
  // order (little-endian in practice; big-endian tried when the value makes no sense).
  while (d.size() >= 4) {
    uint16_t len = Le16(d.data());
    uint16_t type = Le16(d.data() + 2);
    if (len < 4 || len > d.size()) {
      len = Be16(d.data());
      type = Be16(d.data() + 2);
      if (len < 4) return DecodeResult::kMalformed;
    }
    if (type == 9) {  // NFULA_PAYLOAD
      const size_t n = len - 4u;
      std::string_view payload = d.substr(4, n);  // may be cut by the snap length
      return DecodeIpAt(c, payload, 0);
    }
    const size_t padded = (static_cast<size_t>(len) + 3u) & ~size_t{3};
    if (padded >= d.size()) break;
    d.remove_prefix(padded);
  }
  return DecodeResult::kNotIp;  // no payload TLV (or truncated before it)
}

DecodeResult DecodeArcnetLinux(Ctx& c, std::string_view d) noexcept {
  // struct arc_linux_header { shost, dhost, offset[2], type, flag, seqid[2] } (8 bytes);
  // RFC 1201 types carry 2 more bytes (10), +4 for an exception packet (flag 0xff).
  if (d.size() < 8) return DecodeResult::kTruncated;
  const auto type = static_cast<uint8_t>(d[4]);
  size_t hdr = 8;
  switch (type) {
    case 240:  // ARCTYPE_IP_OLD (RFC 1051)
    case 241:  // ARCTYPE_ARP_OLD
    case 243:  // ARCTYPE_DIAGNOSE
      hdr = 8;
      break;
    default:
      hdr = 10;
      if (static_cast<uint8_t>(d[5]) == 0xff) hdr += 4;
      break;
  }
  if (type != 240 && type != 212 && type != 196) return DecodeResult::kNotIp;
  if (d.size() < hdr) return DecodeResult::kTruncated;
  // RFC 1051 on Linux: the IP header follows the 5-byte prefix (no flag/seqid).
  if (type == 240) {
    std::string_view ip = d.substr(5);
    if (!ip.empty() && (static_cast<uint8_t>(ip[0]) >> 4) == 4) return DecodeIpAt(c, ip, 0);
  }
  return DecodeIpAt(c, d.substr(hdr), 0);
}

// GTP-U (3GPP TS 29.281): a G-PDU carries an IP packet, decoded as if captured alone.
// Anything else on the port (signalling, GTPv2, empty) is kNotTcp. `g`: the UDP payload.
DecodeResult DecodeGtpU(Ctx& c, std::string_view g, int depth) noexcept {
  if (g.size() < 8) return DecodeResult::kNotTcp;
  const auto flags = static_cast<uint8_t>(g[0]);
  // GTPv1 (version 1, PT = 1), message type 255 = G-PDU (user data).
  if ((flags >> 5) != 1 || (flags & 0x10) == 0 || static_cast<uint8_t>(g[1]) != 0xff) {
    return DecodeResult::kNotTcp;
  }
  if (depth >= kMaxTunnelDepth) return DecodeResult::kTunnelTooDeep;
  const size_t len = Be16(g.data() + 2);  // bytes after the 8-byte mandatory header
  size_t off = 8;
  if (flags & 0x07) {  // E, S or PN: sequence number, N-PDU number, next extension type
    if (g.size() < 12) return DecodeResult::kTruncated;
    uint8_t next = static_cast<uint8_t>(g[11]);
    off = 12;
    for (int n = 0; next != 0 && n < 16; ++n) {
      if (g.size() < off + 1) return DecodeResult::kTruncated;
      const size_t ext = static_cast<uint8_t>(g[off]) * 4u;
      if (ext == 0) return DecodeResult::kMalformed;
      if (g.size() < off + ext) return DecodeResult::kTruncated;
      next = static_cast<uint8_t>(g[off + ext - 1]);
      off += ext;
    }
    if (next != 0) return DecodeResult::kMalformed;
  }
  if (len + 8 < off) return DecodeResult::kMalformed;
  std::string_view inner = g.substr(off, len + 8 - off);
  if (inner.empty()) return DecodeResult::kNotTcp;
  c.out->encap |= kEncapGtpU;
  return DecodeIpAt(c, inner, depth + 1);
}

// VXLAN (RFC 7348): 8 bytes (flags with I = 0x08 for a valid VNI, 24-bit VNI), then an
// Ethernet frame. As the Linux driver does, a header without the I flag is dropped. The VNI
// does not take part in the flow key (see README.md). `v`: the UDP payload.
DecodeResult DecodeVxlan(Ctx& c, std::string_view v, int depth) noexcept {
  if (depth >= kMaxTunnelDepth) return DecodeResult::kTunnelTooDeep;
  if (v.size() < 8) return DecodeResult::kTruncated;
  if ((static_cast<uint8_t>(v[0]) & 0x08) == 0) return DecodeResult::kMalformed;
  c.out->encap |= kEncapVxlan;
  return DecodeEthernet(c, v.substr(8), depth + 1);
}

// UDP: VXLAN on the configured destination ports, GTP-U on 2152; anything else is kNotTcp.
DecodeResult DecodeUdp(Ctx& c, std::string_view d, uint32_t wire, int depth) noexcept {
  if (d.size() < 8) return wire < 8 ? DecodeResult::kMalformed : DecodeResult::kTruncated;
  const uint16_t sport = Be16(d.data()), dport = Be16(d.data() + 2);
  // The UDP length, when set, bounds the payload (the IP length did already; 0 = unset).
  const size_t ulen = Be16(d.data() + 4);
  if (ulen != 0 && ulen < 8) return DecodeResult::kMalformed;
  std::string_view payload = d.substr(8, ulen == 0 ? std::string_view::npos : ulen - 8);
  if (c.opt.IsVxlanPort(dport)) return DecodeVxlan(c, payload, depth);
  if (sport == kGtpUPort || dport == kGtpUPort) return DecodeGtpU(c, payload, depth);
  return DecodeResult::kNotTcp;
}

// ERSPAN in GRE (draft-foschiano-erspan): type I (0x88BE without a sequence number: the
// mirrored frame right away), type II (0x88BE with one: 8-byte header, version 1), type III
// (0x22EB: 12-byte header, version 2, + 8 bytes when its O flag is set; frame type 0 =
// Ethernet). `e`: the GRE payload.
DecodeResult DecodeErspan(Ctx& c, uint16_t proto, bool seq, std::string_view e,
                          int depth) noexcept {
  size_t hdr = 0;
  if (proto == kGreErspan3) {
    if (e.size() < 12) return DecodeResult::kTruncated;
    if ((static_cast<uint8_t>(e[0]) >> 4) != 2) return DecodeResult::kUnsupportedTunnel;
    if (((static_cast<uint8_t>(e[10]) >> 2) & 0x1f) != 0) {
      return DecodeResult::kUnsupportedTunnel;  // not an Ethernet frame
    }
    hdr = (static_cast<uint8_t>(e[11]) & 0x01) ? 20 : 12;
  } else if (seq) {
    if (e.size() < 8) return DecodeResult::kTruncated;
    if ((static_cast<uint8_t>(e[0]) >> 4) != 1) return DecodeResult::kUnsupportedTunnel;
    hdr = 8;
  }
  if (e.size() < hdr) return DecodeResult::kTruncated;
  c.out->encap |= kEncapErspan;
  return DecodeEthernet(c, e.substr(hdr), depth);
}

// GRE (RFC 2784, keys and sequence numbers of RFC 2890): flags C (checksum + reserved),
// K (key), S (sequence number) add 4 bytes each. Routing (RFC 1701's R flag) and version 1
// (PPTP's enhanced GRE, whose PPP payload is encrypted in practice) are not opened, as in
// Linux's ip_gre. Carries IPv4, IPv6, Ethernet (transparent bridging) or ERSPAN.
DecodeResult DecodeGre(Ctx& c, std::string_view d, uint32_t wire, int depth) noexcept {
  if (d.size() < 4) return wire < 4 ? DecodeResult::kMalformed : DecodeResult::kTruncated;
  const auto f0 = static_cast<uint8_t>(d[0]);
  const auto f1 = static_cast<uint8_t>(d[1]);
  if ((f1 & 0x07) != 0 || (f0 & 0x40) != 0) return DecodeResult::kUnsupportedTunnel;
  if (depth >= kMaxTunnelDepth) return DecodeResult::kTunnelTooDeep;
  const uint16_t proto = Be16(d.data() + 2);
  const bool seq = f0 & 0x10;
  const size_t hdr = 4 + ((f0 & 0x80) ? 4 : 0) + ((f0 & 0x20) ? 4 : 0) + (seq ? 4 : 0);
  if (hdr > wire) return DecodeResult::kMalformed;
  if (d.size() < hdr) return DecodeResult::kTruncated;
  std::string_view inner = d.substr(hdr);
  c.out->encap |= kEncapGre;
  switch (proto) {
    case kEtherIpv4:
    case kEtherIpv6:
      return DecodeIpAt(c, inner, depth + 1);
    case kGreTeb:
      return DecodeEthernet(c, inner, depth + 1);
    case kGreErspan2:
    case kGreErspan3:
      return DecodeErspan(c, proto, seq, inner, depth + 1);
    default:
      return DecodeResult::kUnsupportedTunnel;  // PPP, MPLS, keepalives, ...
  }
}

DecodeResult DecodeL4(Ctx& c, const IpAddrs& ip, uint8_t proto, std::string_view d, uint32_t wire,
                      int depth) noexcept {
  switch (proto) {
    case kProtoTcp:
      return DecodeTcp(ip, d, wire, &c.out->tcp);
    case kProtoUdp:
      return DecodeUdp(c, d, wire, depth);
    case kProtoGre:
      return DecodeGre(c, d, wire, depth);
    case kProtoIpIp:
    case kProtoIpv6:
      if (depth >= kMaxTunnelDepth) return DecodeResult::kTunnelTooDeep;
      c.out->encap |= kEncapIpInIp;
      return DecodeIpAt(c, d, depth + 1);
    default:
      return DecodeResult::kNotTcp;  // ICMP, ESP, SCTP, no next header, ...
  }
}

// An IPv4 datagram (or a fragment of one).
DecodeResult DecodeIpv4(Ctx& c, std::string_view d, int depth) noexcept {
  Packet* out = c.out;
  if (d.size() < 20) return DecodeResult::kTruncated;
  const size_t ihl = (static_cast<uint8_t>(d[0]) & 0x0f) * 4u;
  if (ihl < 20) return DecodeResult::kMalformed;
  if (d.size() < ihl) return DecodeResult::kTruncated;
  size_t total = Be16(d.data() + 2);
  if (total == 0) total = d.size();  // TSO/GSO on a local capture: length not filled in
  if (total < ihl) return DecodeResult::kMalformed;
  IpAddrs ip;
  ip.family = 4;
  std::memcpy(ip.src, d.data() + 12, 4);
  std::memcpy(ip.dst, d.data() + 16, 4);
  const uint8_t proto = static_cast<uint8_t>(d[9]);
  const uint16_t frag = Be16(d.data() + 6);
  const bool more = frag & 0x2000;
  const uint32_t offset = (frag & 0x1fffu) * 8u;
  const uint32_t wire = static_cast<uint32_t>(total - ihl);
  // Ethernet padding after the datagram is not payload: cut at the total length.
  std::string_view payload = d.substr(ihl, wire);
  if (more || offset != 0) {
    out->frag.ip = ip;
    out->frag.id = Be16(d.data() + 4);
    out->frag.protocol = proto;
    out->frag.offset = offset;
    out->frag.more = more;
    out->frag.data = payload;
    out->frag.truncated = payload.size() < wire;
    out->frag.depth = static_cast<uint8_t>(depth);
    return DecodeResult::kFragment;
  }
  if (proto == kProtoTcp) return DecodeTcp(ip, payload, wire, &out->tcp);
  return DecodeL4(c, ip, proto, payload, wire, depth);
}

// An IPv6 packet, its extension headers walked (a fragment header makes it a fragment).
DecodeResult DecodeIpv6(Ctx& c, std::string_view d, int depth) noexcept {
  Packet* out = c.out;
  if (d.size() < 40) return DecodeResult::kTruncated;
  IpAddrs ip;
  ip.family = 6;
  std::memcpy(ip.src, d.data() + 8, 16);
  std::memcpy(ip.dst, d.data() + 24, 16);
  size_t plen = Be16(d.data() + 4);
  if (plen == 0) plen = d.size() - 40;  // jumbogram or unfilled length
  uint8_t next = static_cast<uint8_t>(d[6]);
  std::string_view rest = d.substr(40, plen);
  uint32_t wire = static_cast<uint32_t>(plen);
  for (int n = 0; n < 16; ++n) {
    switch (next) {
      case 0:     // hop-by-hop options
      case 43:    // routing
      case 60:    // destination options
      case 135:   // mobility
      case 139:   // HIP
      case 140:   // shim6
      case 51: {  // authentication header: length in 4-byte units minus 2
        if (rest.size() < 2) return DecodeResult::kTruncated;
        const size_t len = next == 51 ? (static_cast<uint8_t>(rest[1]) + 2u) * 4u
                                      : (static_cast<uint8_t>(rest[1]) + 1u) * 8u;
        if (len > wire) return DecodeResult::kMalformed;
        if (rest.size() < len) return DecodeResult::kTruncated;
        next = static_cast<uint8_t>(rest[0]);
        rest.remove_prefix(len);
        wire -= static_cast<uint32_t>(len);
        continue;
      }
      case 44: {  // fragment
        if (rest.size() < 8) return DecodeResult::kTruncated;
        if (wire < 8) return DecodeResult::kMalformed;
        const uint8_t inner = static_cast<uint8_t>(rest[0]);
        const uint16_t off = Be16(rest.data() + 2);
        const uint32_t id = Be32(rest.data() + 4);
        rest.remove_prefix(8);
        wire -= 8;
        const uint32_t offset = (off >> 3) * 8u;
        const bool more = off & 1;
        if (offset == 0 && !more) {  // atomic fragment: a whole datagram
          next = inner;
          continue;
        }
        out->frag.ip = ip;
        out->frag.id = id;
        out->frag.protocol = inner;
        out->frag.offset = offset;
        out->frag.more = more;
        out->frag.data = rest;
        out->frag.truncated = rest.size() < wire;
        out->frag.depth = static_cast<uint8_t>(depth);
        return DecodeResult::kFragment;
      }
      default:
        return DecodeL4(c, ip, next, rest, wire, depth);
    }
  }
  return DecodeResult::kMalformed;
}

DecodeResult DecodeIpAt(Ctx& c, std::string_view d, int depth) noexcept {
  if (d.empty()) return DecodeResult::kTruncated;
  const uint8_t version = static_cast<uint8_t>(d[0]) >> 4;
  if (version == 4) return DecodeIpv4(c, d, depth);
  if (version == 6) return DecodeIpv6(c, d, depth);
  return DecodeResult::kMalformed;
}

}  // namespace

const char* DecodeResultName(DecodeResult r) {
  switch (r) {
    case DecodeResult::kTcp:
      return "tcp";
    case DecodeResult::kFragment:
      return "fragment";
    case DecodeResult::kNotIp:
      return "not_ip";
    case DecodeResult::kNotTcp:
      return "not_tcp";
    case DecodeResult::kTruncated:
      return "truncated";
    case DecodeResult::kMalformed:
      return "malformed";
    case DecodeResult::kUnsupportedLink:
      return "unsupported_link";
    case DecodeResult::kUnsupportedTunnel:
      return "unsupported_tunnel";
    case DecodeResult::kTunnelTooDeep:
      return "tunnel_too_deep";
    case DecodeResult::kCount:
      break;
  }
  return "?";
}

const char* EncapName(int bit_index) {
  static constexpr const char* kNames[kEncapKinds] = {"gtp-u", "vxlan", "gre", "erspan",
                                                      "ip-in-ip"};
  return bit_index >= 0 && bit_index < kEncapKinds ? kNames[bit_index] : "?";
}

DecodeResult DecodeFrame(int link_type, std::string_view d, Packet* out,
                         const DecodeOptions& opt) noexcept {
  out->encap = 0;
  Ctx c{opt, out};
  switch (link_type) {
    case kLinkEthernet:
      return DecodeEthernet(c, d, 0);
    case kLinkLinuxSll:
      if (d.size() < 16) return DecodeResult::kTruncated;
      return DecodeEthertype(c, Be16(d.data() + 14), d.substr(16), 0);
    case kLinkLinuxSll2:
      if (d.size() < 20) return DecodeResult::kTruncated;
      return DecodeEthertype(c, Be16(d.data()), d.substr(20), 0);
    case kLinkRaw:
    case kLinkRawBsd:
    case kLinkRawLinktype:
    case kLinkIpv4:
    case kLinkIpv6:
      return DecodeIpAt(c, d, 0);
    case kLinkNull:
    case kLinkLoop: {
      if (d.size() < 4) return DecodeResult::kTruncated;
      const uint32_t le = Le32(d.data()), be = Be32(d.data());
      if (!IsIpFamily(le) && !IsIpFamily(be)) return DecodeResult::kNotIp;
      return DecodeIpAt(c, d.substr(4), 0);
    }
    case kLinkNflog:
      return DecodeNflog(c, d);
    case kLinkArcnetLinux:
      return DecodeArcnetLinux(c, d);
    default:
      return DecodeResult::kUnsupportedLink;
  }
}

bool IsDecodableLinkType(int link_type) noexcept {
  // Asked of DecodeFrame itself, so the two never disagree: every link type it knows
  // answers an empty frame with something other than kUnsupportedLink.
  Packet p;
  return DecodeFrame(link_type, {}, &p, DecodeOptions{}) != DecodeResult::kUnsupportedLink;
}

DecodeResult DecodeIp(std::string_view d, Packet* out, const DecodeOptions& opt) noexcept {
  out->encap = 0;
  Ctx c{opt, out};
  return DecodeIpAt(c, d, 0);
}

DecodeResult DecodeIpPayload(const IpAddrs& ip, uint8_t protocol, std::string_view data,
                             uint32_t wire_len, int depth, const DecodeOptions& opt,
                             Packet* out) noexcept {
  Ctx c{opt, out};
  return DecodeL4(c, ip, protocol, data, wire_len, depth);
}

DecodeResult DecodeTcp(const IpAddrs& ip, std::string_view d, uint32_t wire_len,
                       TcpSegment* out) noexcept {
  if (wire_len < 20) return DecodeResult::kMalformed;
  if (d.size() < 20) return DecodeResult::kTruncated;
  const size_t off = (static_cast<uint8_t>(d[12]) >> 4) * 4u;
  if (off < 20 || off > wire_len) return DecodeResult::kMalformed;
  if (d.size() < off) return DecodeResult::kTruncated;
  out->ip = ip;
  out->src_port = Be16(d.data());
  out->dst_port = Be16(d.data() + 2);
  out->seq = Be32(d.data() + 4);
  out->ack = Be32(d.data() + 8);
  out->flags = static_cast<uint8_t>(d[13]);
  out->payload = d.substr(off);
  out->payload_wire_len = static_cast<uint32_t>(wire_len - off);
  if (out->payload.size() > out->payload_wire_len)
    out->payload = out->payload.substr(0, out->payload_wire_len);
  return DecodeResult::kTcp;
}

}  // namespace redtap::pcap

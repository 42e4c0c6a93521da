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
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint16_t kGtpUPort = 2152;
constexpr int kMaxTunnelDepth = 2;  // GTP-U inside GTP-U at most

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

// An ethertype-dispatched payload, VLAN tags, PPPoE and LLC/SNAP peeled off.
DecodeResult DecodeEthertype(uint16_t type, std::string_view d, Packet* out) {
  for (int depth = 0; depth < 8; ++depth) {
    switch (type) {
      case kEtherIpv4:
      case kEtherIpv6:
        return DecodeIp(d, out);
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
        if (ppp == 0x0021 || ppp == 0x0057) return DecodeIp(d, out);
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

bool IsIpFamily(uint32_t f) {
  // AF_INET everywhere; AF_INET6 on Linux (10), BSD (24), FreeBSD (28), Darwin (30).
  return f == 2 || f == 10 || f == 24 || f == 28 || f == 30;
}

DecodeResult DecodeNflog(std::string_view d, Packet* out) {
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
      return DecodeIp(payload, out);
    }
    const size_t padded = (static_cast<size_t>(len) + 3u) & ~size_t{3};
    if (padded >= d.size()) break;
    d.remove_prefix(padded);
  }
  return DecodeResult::kNotIp;  // no payload TLV (or truncated before it)
}

DecodeResult DecodeArcnetLinux(std::string_view d, Packet* out) {
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
    if (!ip.empty() && (static_cast<uint8_t>(ip[0]) >> 4) == 4) return DecodeIp(ip, out);
  }
  return DecodeIp(d.substr(hdr), out);
}

}  // namespace

const char* DecodeResultName(DecodeResult r) {
  switch (r) {
    case DecodeResult::kTcp: return "tcp";
    case DecodeResult::kFragment: return "fragment";
    case DecodeResult::kNotIp: return "not_ip";
    case DecodeResult::kNotTcp: return "not_tcp";
    case DecodeResult::kTruncated: return "truncated";
    case DecodeResult::kMalformed: return "malformed";
    case DecodeResult::kUnsupportedLink: return "unsupported_link";
    case DecodeResult::kCount: break;
  }
  return "?";
}

DecodeResult DecodeFrame(int link_type, std::string_view d, Packet* out) noexcept {
  switch (link_type) {
    case kLinkEthernet:
      if (d.size() < 14) return DecodeResult::kTruncated;
      return DecodeEthertype(Be16(d.data() + 12), d.substr(14), out);
    case kLinkLinuxSll:
      if (d.size() < 16) return DecodeResult::kTruncated;
      return DecodeEthertype(Be16(d.data() + 14), d.substr(16), out);
    case kLinkLinuxSll2:
      if (d.size() < 20) return DecodeResult::kTruncated;
      return DecodeEthertype(Be16(d.data()), d.substr(20), out);
    case kLinkRaw:
    case kLinkRawBsd:
    case kLinkRawLinktype:
    case kLinkIpv4:
    case kLinkIpv6:
      return DecodeIp(d, out);
    case kLinkNull:
    case kLinkLoop: {
      if (d.size() < 4) return DecodeResult::kTruncated;
      const uint32_t le = Le32(d.data()), be = Be32(d.data());
      if (!IsIpFamily(le) && !IsIpFamily(be)) return DecodeResult::kNotIp;
      return DecodeIp(d.substr(4), out);
    }
    case kLinkNflog:
      return DecodeNflog(d, out);
    case kLinkArcnetLinux:
      return DecodeArcnetLinux(d, out);
    default:
      return DecodeResult::kUnsupportedLink;
  }
}

namespace {
DecodeResult DecodeIpAt(std::string_view d, Packet* out, int depth) noexcept;

// UDP: only GTP-U (3GPP TS 29.281, port 2152) is looked into; its G-PDU carries an IP
// packet, decoded as if captured alone. Anything else is kNotTcp.
DecodeResult DecodeUdp(std::string_view d, uint32_t wire, Packet* out, int depth) noexcept {
  if (depth >= kMaxTunnelDepth) return DecodeResult::kNotTcp;
  if (d.size() < 8) return wire < 8 ? DecodeResult::kMalformed : DecodeResult::kTruncated;
  if (Be16(d.data()) != kGtpUPort && Be16(d.data() + 2) != kGtpUPort) {
    return DecodeResult::kNotTcp;
  }
  std::string_view g = d.substr(8);
  if (g.size() < 8) return DecodeResult::kNotTcp;
  const auto flags = static_cast<uint8_t>(g[0]);
  // GTPv1 (version 1, PT = 1), message type 255 = G-PDU (user data).
  if ((flags >> 5) != 1 || (flags & 0x10) == 0 || static_cast<uint8_t>(g[1]) != 0xff) {
    return DecodeResult::kNotTcp;
  }
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
  return DecodeIpAt(inner, out, depth + 1);
}
}  // namespace

DecodeResult DecodeIp(std::string_view d, Packet* out) noexcept { return DecodeIpAt(d, out, 0); }

namespace {
DecodeResult DecodeIpAt(std::string_view d, Packet* out, int depth) noexcept {
  if (d.empty()) return DecodeResult::kTruncated;
  const uint8_t version = static_cast<uint8_t>(d[0]) >> 4;
  if (version == 4) {
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
      return DecodeResult::kFragment;
    }
    if (proto == kProtoUdp) return DecodeUdp(payload, wire, out, depth);
    if (proto != kProtoTcp) return DecodeResult::kNotTcp;
    return DecodeTcp(ip, payload, wire, &out->tcp);
  }
  if (version == 6) {
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
        case kProtoTcp:
          return DecodeTcp(ip, rest, wire, &out->tcp);
        case kProtoUdp:
          return DecodeUdp(rest, wire, out, depth);
        case 0:    // hop-by-hop options
        case 43:   // routing
        case 60:   // destination options
        case 135:  // mobility
        case 139:  // HIP
        case 140:  // shim6
        case 51: { // authentication header: length in 4-byte units minus 2
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
          return DecodeResult::kFragment;
        }
        default:
          return DecodeResult::kNotTcp;  // UDP, ICMPv6, ESP, no next header, ...
      }
    }
    return DecodeResult::kMalformed;
  }
  return DecodeResult::kMalformed;
}
}  // namespace

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

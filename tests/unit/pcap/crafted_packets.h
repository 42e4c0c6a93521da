// SPDX-License-Identifier: Apache-2.0
// Builders of crafted packets for the pcap unit tests: headers as byte strings (network
// order), checksums left at 0 (nothing here verifies them), and a pcap file writer.
#pragma once

#include <unistd.h>
#include <cstdint>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "userspace/pcap/decode.h"

namespace redtap::pcap::crafted {

inline std::string Be16(uint16_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}
inline std::string Be32(uint32_t v) {
  return Be16(static_cast<uint16_t>(v >> 16)) + Be16(static_cast<uint16_t>(v));
}
inline std::string Le16(uint16_t v) {
  return {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)};
}
inline std::string Le32(uint32_t v) {
  return Le16(static_cast<uint16_t>(v)) + Le16(static_cast<uint16_t>(v >> 16));
}

inline std::string Tcp(uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack, uint8_t flags,
                       const std::string& payload) {
  std::string t = Be16(sp) + Be16(dp) + Be32(seq) + Be32(ack);
  t += static_cast<char>(5 << 4);
  t += static_cast<char>(flags);
  t += Be16(65535) + Be16(0) + Be16(0);
  return t + payload;
}

inline std::string Ipv4(const std::string& l4, uint8_t proto = 6, uint32_t src = 0x0a000001,
                        uint32_t dst = 0x0a000002, uint16_t id = 1, uint16_t frag = 0) {
  std::string h;
  h += static_cast<char>(0x45);
  h += '\0';
  h += Be16(static_cast<uint16_t>(20 + l4.size())) + Be16(id) + Be16(frag);
  h += static_cast<char>(64);
  h += static_cast<char>(proto);
  h += Be16(0) + Be32(src) + Be32(dst);
  return h + l4;
}

/// IPv6 from ::`src_last` to ::`dst_last`.
inline std::string Ipv6(const std::string& payload, uint8_t next, uint8_t src_last = 1,
                        uint8_t dst_last = 2) {
  std::string h;
  h += static_cast<char>(0x60);
  h += std::string(3, '\0');
  h += Be16(static_cast<uint16_t>(payload.size()));
  h += static_cast<char>(next);
  h += static_cast<char>(64);
  std::string src(16, '\0'), dst(16, '\0');
  src[15] = static_cast<char>(src_last);
  dst[15] = static_cast<char>(dst_last);
  return h + src + dst + payload;
}

inline std::string Eth(const std::string& l3, uint16_t type = 0x0800) {
  return std::string(12, '\x11') + Be16(type) + l3;
}

inline std::string Udp(uint16_t sp, uint16_t dp, const std::string& payload) {
  return Be16(sp) + Be16(dp) + Be16(static_cast<uint16_t>(8 + payload.size())) + Be16(0) + payload;
}

/// GTPv1-U G-PDU header; `opt` = the 4 optional bytes (seq, N-PDU, next extension) +
/// extensions.
inline std::string Gtp(const std::string& inner, uint8_t flags = 0x30,
                       const std::string& opt = "") {
  std::string h;
  h += static_cast<char>(flags);
  h += '\xff';
  h += Be16(static_cast<uint16_t>(opt.size() + inner.size())) + Be32(0x1234);
  return h + opt + inner;
}

/// VXLAN header (I flag set unless `flags` says otherwise) + the inner Ethernet frame.
inline std::string Vxlan(const std::string& inner_frame, uint32_t vni = 42, uint8_t flags = 0x08) {
  std::string h;
  h += static_cast<char>(flags);
  h += std::string(3, '\0');
  h += Be32(vni << 8);
  return h + inner_frame;
}

inline constexpr uint8_t kGreChecksum = 0x80;
inline constexpr uint8_t kGreKey = 0x20;
inline constexpr uint8_t kGreSeq = 0x10;

/// GRE version 0 with the optional fields its flags (kGre*) announce.
inline std::string Gre(uint16_t proto, const std::string& inner, uint8_t flags = 0,
                       uint32_t key = 0xdeadbeef, uint32_t seq = 7) {
  std::string h;
  h += static_cast<char>(flags);
  h += '\0';
  h += Be16(proto);
  if (flags & kGreChecksum) h += Be16(0x1234) + Be16(0);
  if (flags & kGreKey) h += Be32(key);
  if (flags & kGreSeq) h += Be32(seq);
  return h + inner;
}

inline std::string Payload() { return "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"; }

/// A classic pcap file (microsecond timestamps, little-endian) of `frames` (time in µs).
inline std::string PcapFile(int link_type,
                            const std::vector<std::pair<uint64_t, std::string>>& frames) {
  std::string f = Le32(0xa1b2c3d4) + Le16(2) + Le16(4) + Le32(0) + Le32(0) + Le32(262144) +
                  Le32(static_cast<uint32_t>(link_type));
  for (const auto& [us, frame] : frames) {
    f += Le32(static_cast<uint32_t>(us / 1000000)) + Le32(static_cast<uint32_t>(us % 1000000));
    f += Le32(static_cast<uint32_t>(frame.size())) + Le32(static_cast<uint32_t>(frame.size()));
    f += frame;
  }
  return f;
}

/// Writes `bytes` to a new file under TMPDIR (or /tmp), its name made of `name` and the
/// process id; returns its path ("" on failure).
inline std::string WriteTempFile(const std::string& bytes, const char* name) {
  const char* dir = std::getenv("TMPDIR");
  std::string path =
      std::string(dir && *dir ? dir : "/tmp") + "/" + std::to_string(getpid()) + "-" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return "";
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  std::fclose(f);
  return ok ? path : "";
}

}  // namespace redtap::pcap::crafted

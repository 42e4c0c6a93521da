// SPDX-License-Identifier: Apache-2.0
// Builds kernel records (redtap_abi.h) in memory, as the BPF programs would, for tests that
// drive the userspace capture path without a kernel.
#pragma once

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "redtap_abi.h"

namespace redtap::testing {

class EventGenerator {
 public:
  EventGenerator(uint32_t tgid, uint32_t fd, uint64_t gen, uint8_t role)
      : tgid_(tgid), fd_(fd), gen_(gen), role_(role) {}

  std::vector<uint8_t> Open(uint64_t ts, const char* comm = "nginx", uint16_t lport = 8080,
                            uint16_t rport = 40000, uint8_t proto = REDTAP_PROTO_HTTP,
                            const char* raddr = "127.0.0.2") {
    redtap_conn_open_event ev{};
    Hdr(&ev.hdr, REDTAP_EV_CONN_OPEN, sizeof(ev), ts);
    ev.id = {tgid_, fd_, gen_};
    ev.seq = seq_++;
    ev.role = role_;
    ev.source = role_ == REDTAP_ROLE_SERVER ? REDTAP_SRC_ACCEPT : REDTAP_SRC_CONNECT;
    ev.family = AF_INET;
    ev.lport = lport;
    ev.rport = rport;
    inet_pton(AF_INET, "127.0.0.1", ev.laddr);
    inet_pton(AF_INET, raddr, ev.raddr);
    ev.proto = proto;
    std::strncpy(ev.comm, comm, sizeof(ev.comm) - 1);
    return Bytes(&ev, sizeof(ev));
  }

  /// A data record: `captured` bytes seen, `len` bytes moved (>= captured).
  std::vector<uint8_t> Data(uint64_t ts, uint8_t dir, std::string_view captured, uint32_t len = 0) {
    redtap_data_event ev{};
    Hdr(&ev.hdr, REDTAP_EV_DATA, sizeof(ev) + captured.size(), ts);
    ev.id = {tgid_, fd_, gen_};
    ev.seq = seq_++;
    ev.len = len ? len : static_cast<uint32_t>(captured.size());
    ev.cap_len = static_cast<uint32_t>(captured.size());
    ev.dir = dir;
    ev.syscall = dir == REDTAP_DIR_INGRESS ? REDTAP_SYS_READ : REDTAP_SYS_WRITE;
    std::vector<uint8_t> out = Bytes(&ev, sizeof(ev));
    out.insert(out.end(), captured.begin(), captured.end());
    return out;
  }

  /// The record the kernel sends for request bytes that were not HTTP once the first answer
  /// is HTTP: their length and first time, nothing captured.
  /// `flags` adds REDTAP_DATA_F_MISSED for a TLS read missed at attach (ciphertext length).
  std::vector<uint8_t> Unparsed(uint64_t ts, uint8_t dir, uint32_t len, uint8_t flags = 0) {
    redtap_data_event ev{};
    Hdr(&ev.hdr, REDTAP_EV_DATA, sizeof(ev), ts);
    ev.id = {tgid_, fd_, gen_};
    ev.seq = seq_++;
    ev.len = len;
    ev.dir = dir;
    ev.flags = REDTAP_DATA_F_UNPARSED | flags;
    return Bytes(&ev, sizeof(ev));
  }

  std::vector<uint8_t> Close(uint64_t ts) {
    redtap_conn_close_event ev{};
    Hdr(&ev.hdr, REDTAP_EV_CONN_CLOSE, sizeof(ev), ts);
    ev.id = {tgid_, fd_, gen_};
    ev.seq = seq_++;
    return Bytes(&ev, sizeof(ev));
  }

  /// Skips a sequence number, as a record lost in a full ring buffer would.
  void Lose() { seq_++; }

 private:
  static void Hdr(redtap_event_hdr* h, uint16_t type, size_t size, uint64_t ts) {
    h->type = type;
    h->version = REDTAP_ABI_VERSION;
    h->size = static_cast<uint32_t>(size);
    h->ts_ns = ts;
  }
  static std::vector<uint8_t> Bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    return std::vector<uint8_t>(b, b + n);
  }
  uint32_t tgid_, fd_;
  uint64_t gen_;
  uint8_t role_;
  uint32_t seq_ = 0;
};

}  // namespace redtap::testing

// SPDX-License-Identifier: Apache-2.0
// FragmentReassembler: IPv4 and IPv6 fragments back into whole datagrams. Bounded: at most
// `max_sets` datagrams in progress, each at most 64 KiB, dropped after `timeout_ns` of
// packet time; everything dropped is counted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "userspace/pcap/decode.h"

namespace redtap::pcap {

struct FragmentStats {
  uint64_t fragments = 0;     // fragments received
  uint64_t reassembled = 0;   // datagrams completed
  uint64_t dropped_sets = 0;  // datagrams abandoned (timeout, table full, truncated, bad)
};

class FragmentReassembler {
 public:
  explicit FragmentReassembler(size_t max_sets = 256, uint64_t timeout_ns = 30'000'000'000ull);

  /// Adds one fragment seen at `ts_ns`. When it completes a datagram, returns true and sets
  /// `*datagram` to the reassembled upper-layer payload (valid until the next call) and
  /// `*protocol` to its protocol number.
  bool Add(const IpFragment& f, uint64_t ts_ns, std::string_view* datagram,
           uint8_t* protocol) noexcept;

  const FragmentStats& stats() const { return stats_; }
  size_t sets() const { return sets_.size(); }

 private:
  struct Set {
    IpAddrs ip;
    uint32_t id = 0;
    uint8_t protocol = 0;
    uint64_t first_ts = 0;
    uint32_t total = 0;  // known once the last fragment arrived; 0 = unknown
    std::string buf;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // [begin, end)
  };
  void Expire(uint64_t now_ns);

  size_t max_sets_;
  uint64_t timeout_ns_;
  std::vector<Set> sets_;
  std::string done_;  // the last completed datagram
  FragmentStats stats_;
};

}  // namespace redtap::pcap

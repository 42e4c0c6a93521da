// SPDX-License-Identifier: Apache-2.0
#include "userspace/pcap/fragments.h"

#include <algorithm>
#include <cstring>

namespace redtap::pcap {
namespace {

constexpr uint32_t kMaxDatagram = 65535;

bool SameIp(const IpAddrs& a, const IpAddrs& b) {
  return a.family == b.family && std::memcmp(a.src, b.src, 16) == 0 &&
         std::memcmp(a.dst, b.dst, 16) == 0;
}

}  // namespace

FragmentReassembler::FragmentReassembler(size_t max_sets, uint64_t timeout_ns)
    : max_sets_(max_sets == 0 ? 1 : max_sets), timeout_ns_(timeout_ns) {}

void FragmentReassembler::Expire(uint64_t now_ns) {
  auto it = std::remove_if(sets_.begin(), sets_.end(), [&](const Set& s) {
    return now_ns > s.first_ts && now_ns - s.first_ts > timeout_ns_;
  });
  stats_.dropped_sets += static_cast<uint64_t>(sets_.end() - it);
  sets_.erase(it, sets_.end());
}

bool FragmentReassembler::Add(const IpFragment& f, uint64_t ts_ns, std::string_view* datagram,
                              uint8_t* protocol) noexcept {
  ++stats_.fragments;
  Expire(ts_ns);
  Set* s = nullptr;
  size_t idx = 0;
  for (; idx < sets_.size(); ++idx) {
    Set& c = sets_[idx];
    if (c.id == f.id && c.protocol == f.protocol && SameIp(c.ip, f.ip)) {
      s = &c;
      break;
    }
  }
  const uint64_t end = static_cast<uint64_t>(f.offset) + f.data.size();
  const bool bad = f.truncated || end > kMaxDatagram || (f.more && f.data.size() % 8 != 0);
  if (s == nullptr) {
    if (bad) {
      ++stats_.dropped_sets;
      return false;
    }
    if (sets_.size() >= max_sets_) {  // table full: drop the oldest datagram in progress
      sets_.erase(sets_.begin());
      ++stats_.dropped_sets;
    }
    sets_.emplace_back();
    s = &sets_.back();
    idx = sets_.size() - 1;
    s->ip = f.ip;
    s->id = f.id;
    s->protocol = f.protocol;
    s->first_ts = ts_ns;
  } else if (bad) {
    sets_.erase(sets_.begin() + static_cast<std::ptrdiff_t>(idx));
    ++stats_.dropped_sets;
    return false;
  }
  if (!f.more) s->total = static_cast<uint32_t>(end);
  if (s->buf.size() < end) s->buf.resize(end);
  // Overlaps: the data that arrived first wins (copy only the parts not yet covered).
  uint32_t b = f.offset;
  const uint32_t e = static_cast<uint32_t>(end);
  std::sort(s->ranges.begin(), s->ranges.end());
  for (const auto& r : s->ranges) {
    if (b >= e) break;
    if (r.second <= b) continue;
    if (r.first >= e) break;
    if (r.first > b) std::memcpy(&s->buf[b], f.data.data() + (b - f.offset), r.first - b);
    b = std::max(b, r.second);
  }
  if (b < e) std::memcpy(&s->buf[b], f.data.data() + (b - f.offset), e - b);
  s->ranges.emplace_back(f.offset, e);
  if (s->total == 0) return false;
  // Complete when [0, total) is covered.
  std::sort(s->ranges.begin(), s->ranges.end());
  uint32_t covered = 0;
  for (const auto& r : s->ranges) {
    if (r.first > covered) return false;
    covered = std::max(covered, r.second);
  }
  if (covered < s->total) return false;
  done_.assign(s->buf.data(), s->total);
  *protocol = s->protocol;
  sets_.erase(sets_.begin() + static_cast<std::ptrdiff_t>(idx));
  ++stats_.reassembled;
  *datagram = done_;
  return true;
}

}  // namespace redtap::pcap

// SPDX-License-Identifier: Apache-2.0
// MappedPcapFile: a classic pcap file read in place through mmap, each frame a view into
// the mapping. libpcap's savefile reader copies every packet twice (kernel -> stdio buffer
// -> its own buffer) and makes two fread calls per packet, which on a capture of small
// HTTP exchanges costs as much as the TCP reassembly. pcapng, other magics, stdin and
// unmappable files are left to libpcap (Open returns null).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace redtap::pcap {

class MappedPcapFile {
 public:
  /// Maps `path` when it is a classic pcap file (microsecond or nanosecond magic, either
  /// byte order, version 2.4) whose link type is one DecodeFrame knows; else null.
  static std::unique_ptr<MappedPcapFile> Open(const std::string& path) noexcept;
  ~MappedPcapFile();
  MappedPcapFile(const MappedPcapFile&) = delete;
  MappedPcapFile& operator=(const MappedPcapFile&) = delete;

  int link_type() const { return link_type_; }

  /// The next record: its captured bytes and time (ns since the Unix epoch). False at the
  /// end of the file, or at a record cut short or longer than libpcap accepts (262144
  /// bytes): truncated(). As libpcap, a record longer than the file's snap length is cut to
  /// it.
  bool Next(std::string_view* frame, uint64_t* ts_ns) noexcept {
    if (end_ - pos_ < 16) {
      truncated_ = pos_ != end_;
      return false;
    }
    const uint32_t sec = Read32(pos_), frac = Read32(pos_ + 4), caplen = Read32(pos_ + 8);
    if (caplen > kMaxRecord || static_cast<size_t>(end_ - pos_ - 16) < caplen) {
      truncated_ = true;
      return false;
    }
    *frame = std::string_view(pos_ + 16, caplen < snaplen_ ? caplen : snaplen_);
    *ts_ns = static_cast<uint64_t>(sec) * 1'000'000'000ull + frac * frac_ns_;
    pos_ += 16 + static_cast<size_t>(caplen);
    return true;
  }
  /// The file ended inside a record (libpcap: "truncated dump file").
  bool truncated() const { return truncated_; }

 private:
  static constexpr uint32_t kMaxRecord = 262144;  // libpcap's MAXIMUM_SNAPLEN

  MappedPcapFile() = default;
  uint32_t Read32(const char* p) const noexcept {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return swap_ ? __builtin_bswap32(v) : v;
  }

  void* map_ = nullptr;
  size_t size_ = 0;
  const char* pos_ = nullptr;
  const char* end_ = nullptr;
  bool swap_ = false;
  bool truncated_ = false;
  uint64_t frac_ns_ = 1000;  // ns per unit of the second field (1000: µs, 1: ns)
  uint32_t snaplen_ = kMaxRecord;
  int link_type_ = 0;
};

}  // namespace redtap::pcap

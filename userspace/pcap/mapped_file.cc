// SPDX-License-Identifier: Apache-2.0
#include "userspace/pcap/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "userspace/pcap/decode.h"

namespace redtap::pcap {
namespace {

constexpr uint32_t kMagicMicros = 0xa1b2c3d4;
constexpr uint32_t kMagicNanos = 0xa1b23c4d;

}  // namespace

std::unique_ptr<MappedPcapFile> MappedPcapFile::Open(const std::string& path) noexcept {
  if (path.empty() || path == "-") return nullptr;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 24) {
    ::close(fd);
    return nullptr;
  }
  const auto size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return nullptr;
  std::unique_ptr<MappedPcapFile> f(new MappedPcapFile());
  f->map_ = map;
  f->size_ = size;
  const char* p = static_cast<const char*>(map);
  uint32_t magic;
  std::memcpy(&magic, p, 4);
  if (magic == kMagicMicros || magic == kMagicNanos) {
    f->swap_ = false;
  } else if (__builtin_bswap32(magic) == kMagicMicros || __builtin_bswap32(magic) == kMagicNanos) {
    f->swap_ = true;
    magic = __builtin_bswap32(magic);
  } else {
    return nullptr;  // pcapng or an exotic variant: libpcap
  }
  f->frac_ns_ = magic == kMagicNanos ? 1 : 1000;
  uint16_t major, minor;
  std::memcpy(&major, p + 4, 2);
  std::memcpy(&minor, p + 6, 2);
  if (f->swap_) {
    major = __builtin_bswap16(major);
    minor = __builtin_bswap16(minor);
  }
  if (major != 2 || minor != 4) return nullptr;
  const uint32_t snaplen = f->Read32(p + 16);
  if (snaplen != 0 && snaplen < kMaxRecord) f->snaplen_ = snaplen;
  // The link type is in the low 16 bits (the upper ones may describe an FCS).
  f->link_type_ = static_cast<int>(f->Read32(p + 20) & 0xffff);
  if (!IsDecodableLinkType(f->link_type_)) return nullptr;
  madvise(map, size, MADV_SEQUENTIAL);
  f->pos_ = p + 24;
  f->end_ = p + size;
  return f;
}

MappedPcapFile::~MappedPcapFile() {
  if (map_ != nullptr) munmap(map_, size_);
}

}  // namespace redtap::pcap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/capture/reader.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "userspace/common/errno_text.h"

namespace redtap {
namespace {

// How many consumed bytes the reader may hold back before publishing its position.
// Producers read consumer_pos on every reserve; publishing it per record (what libbpf's
// ring_buffer does) keeps its cache line bouncing between the reader's CPU and every traced
// syscall. Holding back a fraction of the ring costs nothing but that much free space.
constexpr uint64_t kPublishBytes = 256 * 1024;

}  // namespace

RingReader::~RingReader() { Stop(); }

Status RingReader::Start(int ring_fd, uint32_t poll_interval_ms, RecordFn on_record,
                         TickFn on_tick) {
  on_record_ = std::move(on_record);
  on_tick_ = std::move(on_tick);
  poll_ms_ = poll_interval_ms;

  bpf_map_info info{};
  uint32_t info_len = sizeof(info);
  if (bpf_obj_get_info_by_fd(ring_fd, &info, &info_len) != 0)
    return Status::Error("ring buffer info: " + ErrnoText(errno));
  if (info.type != BPF_MAP_TYPE_RINGBUF || info.max_entries == 0 ||
      (info.max_entries & (info.max_entries - 1)) != 0)
    return Status::Error("ring buffer: fd is not a BPF ring buffer");
  page_size_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  mask_ = info.max_entries - 1;
  // The consumer page is ours to write; the producer page and the data area (mapped twice
  // back to back, so a record that wraps reads contiguously) are read-only.
  void* cons = mmap(nullptr, page_size_, PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd, 0);
  if (cons == MAP_FAILED) return Status::Error("ring buffer mmap: " + ErrnoText(errno));
  consumer_pos_ = static_cast<uint64_t*>(cons);
  prod_map_len_ = page_size_ + 2 * static_cast<size_t>(info.max_entries);
  void* prod =
      mmap(nullptr, prod_map_len_, PROT_READ, MAP_SHARED, ring_fd, static_cast<off_t>(page_size_));
  if (prod == MAP_FAILED) {
    Status st = Status::Error("ring buffer mmap: " + ErrnoText(errno));
    Unmap();
    return st;
  }
  producer_pos_ = static_cast<const uint64_t*>(prod);
  data_ = static_cast<const uint8_t*>(prod) + page_size_;

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (epoll_fd_ < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, ring_fd, &ev) != 0) {
    Status st = Status::Error("ring buffer epoll: " + ErrnoText(errno));
    Unmap();
    return st;
  }
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

uint64_t RingReader::Drain() {
  uint64_t cons = __atomic_load_n(consumer_pos_, __ATOMIC_ACQUIRE);
  uint64_t published = cons;
  uint64_t n = 0;
  bool progress = true;
  while (progress) {
    progress = false;
    uint64_t prod = __atomic_load_n(producer_pos_, __ATOMIC_ACQUIRE);
    while (cons < prod) {
      const uint8_t* rec = data_ + (cons & mask_);
      uint32_t len = __atomic_load_n(reinterpret_cast<const uint32_t*>(rec), __ATOMIC_ACQUIRE);
      if (len & BPF_RINGBUF_BUSY_BIT) break;  // reserved, not committed yet: next pass
      progress = true;
      uint32_t size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
      cons += (static_cast<uint64_t>(size) + BPF_RINGBUF_HDR_SZ + 7) & ~uint64_t{7};
      if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
        on_record_(rec + BPF_RINGBUF_HDR_SZ, size);
        ++n;
      }
      if (cons - published >= kPublishBytes) {
        __atomic_store_n(consumer_pos_, cons, __ATOMIC_RELEASE);
        published = cons;
      }
    }
  }
  if (cons != published) __atomic_store_n(consumer_pos_, cons, __ATOMIC_RELEASE);
  return n;
}

void RingReader::Run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    // The kernel sends records without wakeups (BPF_RB_NO_WAKEUP) unless the ring fills
    // past capture.wakeup_bytes, so the timeout is what normally ends this wait; then drain.
    epoll_event ev{};
    int n = epoll_wait(epoll_fd_, &ev, 1, static_cast<int>(poll_ms_));
    if (n < 0 && errno != EINTR) spdlog::error("ring buffer poll failed: {}", ErrnoText(errno));
    Drain();
    polls_.fetch_add(1, std::memory_order_relaxed);
    if (on_tick_) on_tick_();
  }
  Drain();  // what arrived before Stop()
  if (on_tick_) on_tick_();
}

void RingReader::Unmap() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
  epoll_fd_ = -1;
  if (consumer_pos_) munmap(consumer_pos_, page_size_);
  consumer_pos_ = nullptr;
  if (producer_pos_) munmap(const_cast<uint64_t*>(producer_pos_), prod_map_len_);
  producer_pos_ = nullptr;
  data_ = nullptr;
}

void RingReader::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  Unmap();
}

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/capture/reader.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <spdlog/spdlog.h>

#include <cstring>

namespace redtap {

RingReader::~RingReader() { Stop(); }

int RingReader::Trampoline(void* ctx, void* data, size_t size) {
  static_cast<RingReader*>(ctx)->on_record_(data, size);
  return 0;  // a negative return would stop ring_buffer__poll mid-batch
}

Status RingReader::Start(int ring_fd, uint32_t poll_interval_ms, RecordFn on_record,
                         TickFn on_tick) {
  on_record_ = std::move(on_record);
  on_tick_ = std::move(on_tick);
  poll_ms_ = poll_interval_ms;
  rb_ = ring_buffer__new(ring_fd, &RingReader::Trampoline, this, nullptr);
  if (!rb_) return Status::Error(std::string("ring_buffer__new: ") + strerror(errno));
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void RingReader::Run() {
  while (!stop_.load(std::memory_order_relaxed)) {
    // The kernel sends records without wakeups (BPF_RB_NO_WAKEUP) unless the ring fills
    // past capture.wakeup_bytes, so the timeout is what normally ends this wait; then drain.
    int n = ring_buffer__poll(rb_, static_cast<int>(poll_ms_));
    if (n < 0 && n != -EINTR) {
      spdlog::error("ring buffer poll failed: {}", strerror(-n));
    }
    ring_buffer__consume(rb_);
    polls_.fetch_add(1, std::memory_order_relaxed);
    if (on_tick_) on_tick_();
  }
  ring_buffer__consume(rb_);  // what arrived before Stop()
  if (on_tick_) on_tick_();
}

void RingReader::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (rb_) {
    ring_buffer__free(rb_);
    rb_ = nullptr;
  }
}

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/format_thread.h"

#include <utility>

#include "userspace/export/event_json.h"

namespace redtap::exporter {

FormatThread::FormatThread(const config::Config& cfg, EventWriter* writer, int64_t offset_ns)
    : writer_(writer), offset_ns_(offset_ns), redactor_(cfg.redaction) {
  batch_.resize(kBatch);
  thread_ = std::thread([this] { Run(); });
}

FormatThread::~FormatThread() { Stop(); }

PendingEvent& FormatThread::Next() noexcept { return batch_[used_]; }

void FormatThread::Commit() noexcept {
  if (++used_ >= kBatch) Flush();
}

void FormatThread::Flush() noexcept {
  if (used_ == 0) return;
  std::unique_lock lock(mu_);
  space_cv_.wait(lock, [&] { return queue_.size() < kMaxQueued || stop_; });
  queue_.push_back(Batch{std::move(batch_), used_});
  if (!spare_.empty()) {
    batch_ = std::move(spare_.back());
    spare_.pop_back();
  } else {
    batch_ = std::vector<PendingEvent>(kBatch);
  }
  used_ = 0;
  lock.unlock();
  work_cv_.notify_one();
}

void FormatThread::Stop() noexcept {
  if (!thread_.joinable()) return;
  Flush();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  thread_.join();
}

void FormatThread::Run() noexcept {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and everything is formatted
    Batch batch = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    space_cv_.notify_one();
    Format(&batch.items, batch.n);
    lock.lock();
    spare_.push_back(std::move(batch.items));
  }
}

void FormatThread::Format(std::vector<PendingEvent>* batch, size_t n) noexcept {
  // One Push of '\n'-joined lines per batch (line by line would cost more hand-offs than the
  // formatting itself).
  lines_.clear();
  lines_.reserve(n * 512);
  for (size_t i = 0; i < n; ++i) {
    PendingEvent& e = (*batch)[i];
    if (i > 0) lines_.push_back('\n');
    FormatHttpEventTo(line_, e.txn, e.meta, e.service, e.route, offset_ns_, redactor_,
                      e.extras.empty() ? nullptr : &e.extras);
    lines_ += line_;
    // Free what the transaction holds here, off the decoding thread; the slot keeps its
    // capacity for the next batch.
    e.txn = http::Transaction{};
    e.extras.clear();
  }
  if (n == 0) return;
  // The writer copies the batch into its queue: both strings keep their capacity.
  if (writer_->Push(lines_)) {
    written_ += n;
  } else {
    dropped_ += n;
  }
}

}  // namespace redtap::exporter

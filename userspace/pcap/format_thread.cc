// SPDX-License-Identifier: Apache-2.0
#include "userspace/pcap/format_thread.h"

#include <utility>

#include "userspace/export/event_json.h"
#include "userspace/pcap/pcap_runner.h"

namespace redtap::pcap {

FormatThread::FormatThread(const config::Config& cfg, exporter::EventWriter* writer)
    : cfg_(cfg), writer_(writer), redactor_(cfg.redaction) {
  batch_.reserve(kBatch);
  thread_ = std::thread([this] { Run(); });
}

FormatThread::~FormatThread() { Stop(); }

void FormatThread::Take(http::Transaction&& txn, const ConnMeta& meta) noexcept {
  batch_.emplace_back(std::move(txn), meta);
  if (batch_.size() >= kBatch) Flush();
}

void FormatThread::Flush() noexcept {
  if (batch_.empty()) return;
  std::unique_lock lock(mu_);
  space_cv_.wait(lock, [&] { return queue_.size() < kMaxQueued || stop_; });
  queue_.push_back(std::move(batch_));
  if (!spare_.empty()) {
    batch_ = std::move(spare_.back());
    spare_.pop_back();
  } else {
    batch_ = std::vector<Item>();
    batch_.reserve(kBatch);
  }
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
    std::vector<Item> batch = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    space_cv_.notify_one();
    Format(&batch);
    batch.clear();  // the transactions are freed here, off the capture thread
    lock.lock();
    spare_.push_back(std::move(batch));
  }
}

const std::string& FormatThread::ServiceName(const ConnMeta& meta) {
  // Most events in a row go to one server: keep the last name.
  const Endpoint& server = meta.server();
  if (!name_valid_ || server.port != name_port_ || server.address != name_address_) {
    name_ = PcapServiceName(cfg_, meta);
    name_address_ = server.address;
    name_port_ = server.port;
    name_valid_ = true;
  }
  return name_;
}

void FormatThread::Format(std::vector<Item>* batch) noexcept {
  // One Push of '\n'-joined lines per batch (what the writer gets from `redtap run`, line by
  // line, would cost more hand-offs than the formatting itself).
  lines_.clear();
  lines_.reserve(batch->size() * 512);
  bool first = true;
  for (const Item& it : *batch) {
    if (!first) lines_.push_back('\n');
    first = false;
    // Packet timestamps are wall-clock already: no monotonic offset.
    lines_ += exporter::FormatHttpEvent(it.txn, it.meta, ServiceName(it.meta), 0, redactor_);
  }
  if (batch->empty()) return;
  if (writer_->Push(std::move(lines_))) {
    written_ += batch->size();
  } else {
    dropped_ += batch->size();
  }
  lines_ = std::string();
}

}  // namespace redtap::pcap

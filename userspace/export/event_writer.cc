// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/event_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace redtap::exporter {
namespace {

// The writer's buffer goes out in one write(2) once it holds this much.
constexpr size_t kWriteChunkBytes = 64 * 1024;
// Under sustained load (the queue never runs empty), the buffer still goes out this often.
constexpr auto kMaxWriteDelay = std::chrono::milliseconds(100);
// How long a write to a non-blocking descriptor (e.g. a stdout pipe) may wait for room.
constexpr int kWritableTimeoutMs = 1000;

}  // namespace

Result<std::unique_ptr<EventWriter>> EventWriter::Open(const std::string& path,
                                                       size_t queue_capacity) {
  if (path.empty()) return Status::Error("events: empty path (use \"-\" for stdout)");
  if (queue_capacity == 0) return Status::Error("events: queue capacity must be at least 1");
  int fd = STDOUT_FILENO;
  const bool owns_fd = path != "-";
  if (owns_fd) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      return Status::Error("events: cannot open " + path + ": " + std::strerror(errno));
    }
  }
  std::unique_ptr<EventWriter> writer(new EventWriter(fd, owns_fd, path, queue_capacity));
  try {
    writer->thread_ = std::thread(&EventWriter::Run, writer.get());
  } catch (const std::system_error& e) {
    return Status::Error(std::string("events: cannot start the writer thread: ") + e.what());
  }
  return writer;
}

EventWriter::EventWriter(int fd, bool owns_fd, std::string path, size_t capacity)
    : fd_(fd),
      owns_fd_(owns_fd),
      path_(std::move(path)),
      capacity_(capacity),
      last_write_(std::chrono::steady_clock::now()) {
  buffer_.reserve(kWriteChunkBytes + 4096);
}

EventWriter::~EventWriter() {
  Stop();
  if (owns_fd_) ::close(fd_);
}

bool EventWriter::Push(std::string line) noexcept {
  try {
    std::unique_lock lock(mu_);
    if (stop_ || in_flight_ >= capacity_) {
      lock.unlock();
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    pending_.push_back(std::move(line));
    ++in_flight_;
    ++accepted_;
    const bool was_empty = pending_.size() == 1;
    lock.unlock();
    // A non-empty queue means the writer is already awake or about to look again.
    if (was_empty) work_cv_.notify_one();
    return true;
  } catch (...) {  // bad_alloc growing the queue: drop, never throw into the reader
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
}

void EventWriter::Flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = accepted_;
  flush_requested_ = true;
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return finished_ >= target; });
}

void EventWriter::Stop() {
  std::lock_guard stop_lock(stop_mu_);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EventWriter::SetPausedForTesting(bool paused) {
  {
    std::lock_guard lock(mu_);
    paused_ = paused;
  }
  work_cv_.notify_all();
}

void EventWriter::Run() {
  // A write to a closed pipe must fail with EPIPE, not kill the agent: SIGPIPE raised by this
  // thread's write(2) stays pending on this thread instead of being delivered.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::vector<std::string> batch;
  std::unique_lock lock(mu_);
  for (;;) {
    // Wakes at least every second to notice a deleted or rotated file.
    work_cv_.wait_for(lock, std::chrono::seconds(1), [&] {
      return stop_ || reopen_requested_.load(std::memory_order_relaxed) ||
             (!paused_ && !pending_.empty());
    });
    if (pending_.empty() && stop_) break;  // stopping, and everything is taken
    if (owns_fd_) {
      lock.unlock();
      MaybeReopen(reopen_requested_.exchange(false, std::memory_order_relaxed));
      lock.lock();
    }
    if (pending_.empty() || (paused_ && !stop_)) continue;
    batch.swap(pending_);
    lock.unlock();
    for (std::string& line : batch) {
      buffer_.append(line);
      buffer_.push_back('\n');
      ++buffer_lines_;
      if (buffer_.size() >= kWriteChunkBytes) WriteBuffer();
    }
    batch.clear();  // keeps its capacity: swapped back as the next queue
    lock.lock();
    const bool idle = pending_.empty() || (paused_ && !stop_);
    const bool due = std::chrono::steady_clock::now() - last_write_ >= kMaxWriteDelay;
    if (idle || due || flush_requested_) {
      flush_requested_ = false;
      lock.unlock();
      WriteBuffer();
      lock.lock();
    }
  }
  lock.unlock();
  WriteBuffer();
}

void EventWriter::Reopen() {
  reopen_requested_.store(true, std::memory_order_relaxed);
  work_cv_.notify_all();
}

void EventWriter::MaybeReopen(bool asked) {
  const auto now = std::chrono::steady_clock::now();
  if (!asked && now - last_check_ < std::chrono::seconds(1)) return;
  last_check_ = now;
  if (!asked) {
    struct stat at_path {};
    struct stat open_file {};
    const bool same = ::stat(path_.c_str(), &at_path) == 0 && ::fstat(fd_, &open_file) == 0 &&
                      at_path.st_dev == open_file.st_dev && at_path.st_ino == open_file.st_ino;
    if (same) return;
  }
  WriteBuffer();  // what was meant for the old file goes there
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    if (!error_logged_) {
      error_logged_ = true;
      spdlog::error("events: cannot reopen {}: {}; still writing to the file opened before", path_,
                    std::strerror(errno));
    }
    return;
  }
  ::close(fd_);
  fd_ = fd;
  reopened_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("events: {} {}", path_,
               asked ? "reopened (SIGHUP)" : "was deleted or replaced: reopened");
}

void EventWriter::WriteBuffer() {
  if (buffer_lines_ == 0) return;
  size_t off = 0;
  int error = 0;
  while (off < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + off, buffer_.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd_, POLLOUT, 0};
      if (::poll(&pfd, 1, kWritableTimeoutMs) > 0) continue;
      error = EAGAIN;
      break;
    }
    error = n < 0 ? errno : EIO;
    break;
  }
  // Lines entirely written count as written; a partly written line is lost with the rest.
  const size_t lines_written =
      error == 0 ? buffer_lines_
                 : static_cast<size_t>(std::count(buffer_.begin(), buffer_.begin() + off, '\n'));
  const size_t lines_lost = buffer_lines_ - lines_written;
  written_.fetch_add(lines_written, std::memory_order_relaxed);
  if (error != 0) {
    dropped_.fetch_add(lines_lost, std::memory_order_relaxed);
    write_lost_.fetch_add(lines_lost, std::memory_order_relaxed);
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    if (!error_logged_) {
      error_logged_ = true;
      spdlog::error(
          "events: cannot write to {}: {}; lost events are counted, further write "
          "errors are not logged",
          path_ == "-" ? "stdout" : path_, std::strerror(error));
    }
  }
  const size_t lines = buffer_lines_;
  buffer_.clear();
  buffer_lines_ = 0;
  last_write_ = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    in_flight_ -= lines;
    finished_ += lines;
  }
  done_cv_.notify_all();
}

}  // namespace redtap::exporter

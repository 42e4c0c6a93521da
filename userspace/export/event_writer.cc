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

// Initial size of the queue's two buffers (they grow with the batches and keep their size).
constexpr size_t kInitialBufferBytes = 64 * 1024;
// A buffer that grew past this (a backlog: the file or pipe was slow) is given back after
// it is written, so a burst does not pin its peak size for the rest of the run.
constexpr size_t kKeptBufferBytes = 4 * 1024 * 1024;
// Once a line waits, the writer lets more join it for this long before it writes them all
// out (unless kMaxWakeLines wait first): one wake-up and a few write(2) calls per batch
// instead of one per handful of lines (a wake-up costs both threads several microseconds).
constexpr auto kLinger = std::chrono::milliseconds(20);
// Lines waiting that wake the writer before kLinger is over (at most a quarter of the queue).
constexpr size_t kMaxWakeLines = 1024;
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
      wake_lines_(std::clamp<size_t>(capacity / 4, 1, kMaxWakeLines)) {
  buffer_.reserve(kInitialBufferBytes);
  pending_.reserve(kInitialBufferBytes);
}

EventWriter::~EventWriter() {
  Stop();
  if (owns_fd_) ::close(fd_);
}

bool EventWriter::Push(std::string_view line) noexcept {
  try {
    std::unique_lock lock(mu_);
    if (stop_ || in_flight_ >= capacity_) {
      lock.unlock();
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    pending_.append(line);  // may throw (out of memory): nothing counted yet
    pending_.push_back('\n');
    ++pending_lines_;
    ++in_flight_;
    ++accepted_;
    // Wake the writer when it sleeps with nothing to do (once), or when a batch is full;
    // otherwise it is lingering, or busy, and will look again.
    const bool wake = idle_ || pending_lines_ == wake_lines_;
    idle_ = false;
    lock.unlock();
    if (wake) work_cv_.notify_one();
    return true;
  } catch (...) {  // bad_alloc growing the queue: drop, never throw into the reader
    std::lock_guard lock(mu_);
    // A line appended without its newline would join the next one: cut it back off.
    if (!pending_.empty() && pending_.back() != '\n') {
      const size_t nl = pending_.rfind('\n');
      pending_.resize(nl == std::string::npos ? 0 : nl + 1);
    }
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

  std::unique_lock lock(mu_);
  for (;;) {
    if (pending_lines_ == 0 || paused_) {
      // Nothing to take: sleep until Push() wakes an idle writer; at least every second to
      // notice a deleted or rotated file.
      idle_ = true;
      work_cv_.wait_for(lock, std::chrono::seconds(1), [&] {
        return stop_ || flush_requested_ || reopen_requested_.load(std::memory_order_relaxed) ||
               (!paused_ && pending_lines_ > 0);
      });
      idle_ = false;
    }
    if (pending_lines_ > 0 && !paused_ && !stop_ && !flush_requested_) {
      // Lines wait: let the batch fill for kLinger, or until wake_lines_ wait.
      work_cv_.wait_for(lock, kLinger, [&] {
        return stop_ || flush_requested_ || reopen_requested_.load(std::memory_order_relaxed) ||
               pending_lines_ >= wake_lines_;
      });
    }
    if (pending_lines_ == 0 && stop_) break;  // stopping, and everything is taken
    if (owns_fd_) {
      lock.unlock();
      MaybeReopen(reopen_requested_.exchange(false, std::memory_order_relaxed));
      lock.lock();
    }
    if (pending_lines_ > 0 && !(paused_ && !stop_)) {
      // Take the whole batch: the lines are already newline-terminated, and the two buffers
      // swap, keeping their capacity.
      buffer_.swap(pending_);
      buffer_lines_ = pending_lines_;
      pending_.clear();
      pending_lines_ = 0;
    }
    flush_requested_ = false;
    lock.unlock();
    WriteBuffer();
    lock.lock();
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
  if (buffer_.capacity() > kKeptBufferBytes) {
    std::string().swap(buffer_);
    buffer_.reserve(kInitialBufferBytes);
  }
  buffer_lines_ = 0;
  {
    std::lock_guard lock(mu_);
    in_flight_ -= lines;
    finished_ += lines;
  }
  done_cv_.notify_all();
}

}  // namespace redtap::exporter

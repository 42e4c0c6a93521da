// SPDX-License-Identifier: Apache-2.0
#include "userspace/saturation/tcp_monitor.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "redtap_tcp_abi.h"
#include "tcp.skel.h"
#include "userspace/common/errno_text.h"
#include "userspace/saturation/tcp_monitor_internal.h"

namespace redtap::saturation {

namespace {

static_assert(sizeof(redtap_tcp_listener_rec) == 88, "listener record layout");
static_assert(sizeof(redtap_tcp_unresolved_rec) == 24, "unresolved record layout");
static_assert(REDTAP_TCP_FAIL_MAX == kFailReasons, "fail reasons");
static_assert(REDTAP_TCP_RTT_BUCKETS == kRttBuckets, "rtt buckets");
static_assert(REDTAP_TCP_DROP_MAX == 7, "SamplerStats::kernel_drops size");

// Every program of tcp.bpf.c, all required while the monitor runs: the iterator is the
// sampler's base (listeners, live connections), the tracepoints count opens, closes,
// failures, resets and retransmits.
std::vector<HookSpec> TcpHooks() {
  return {
      {"tcp_iter", true,
       [](struct bpf_program* p) { return bpf_program__attach_iter(p, nullptr); }},
      {"inet_sock_set_state", true},
      {"tcp_retransmit_skb", true},
      {"tcp_send_reset", true},
      {"tcp_receive_reset", true},
  };
}

}  // namespace

const char* TcpMonitor::DropReasonName(int reason) {
  switch (reason) {
    case REDTAP_TCP_DROP_SOCK_MAP_FULL:
      return "sock_map_full";
    case REDTAP_TCP_DROP_AGG_MAP_FULL:
      return "agg_map_full";
    case REDTAP_TCP_DROP_LIVE_MAP_FULL:
      return "live_map_full";
    case REDTAP_TCP_DROP_LISTEN_MAP_FULL:
      return "listen_map_full";
    case REDTAP_TCP_DROP_RINGBUF_FULL:
      return "ringbuf_full";
    case REDTAP_TCP_DROP_EVENT_RATE:
      return "event_rate_limited";
    case REDTAP_TCP_DROP_SEQ_OVERFLOW:
      return "iterator_overflow";
  }
  return "unknown";
}

TcpMonitor::TcpMonitor(const Options& o)
    : opt_(o),
      limiter_(o.event_burst,
               std::chrono::duration_cast<std::chrono::nanoseconds>(o.event_period).count()) {
  if (!opt_.resolver) {
    opt_.resolver = [](uint32_t, const std::string& comm, uint16_t) { return comm; };
  }
}

TcpMonitor::~TcpMonitor() {
  Stop();
  if (self_ns_fd_ >= 0) close(self_ns_fd_);
  if (rb_) ring_buffer__free(rb_);
}

Result<std::unique_ptr<TcpMonitor>> TcpMonitor::Start(const Options& options) {
  std::unique_ptr<TcpMonitor> m(new TcpMonitor(options));
  REDTAP_RETURN_IF_ERROR(m->Load());
  m->AttachAll();
  if (!m->iter_link_) {
    std::string why;
    for (const auto& h : m->hooks())
      if (h.name == "tcp_iter") why = h.error;
    return Status::Error("tcp monitor: cannot attach the tcp iterator (iter/tcp): " + why +
                         " (needs Linux >= 5.9 with BTF)");
  }
  REDTAP_RETURN_IF_ERROR(m->SetPools());
  m->realtime_offset_ns_ = MonotonicToRealtimeOffsetNs();
  m->self_netns_ = NetnsOf("self");
  m->Sample();  // listeners and live connections are known before Start() returns
  m->thread_ = std::thread([p = m.get()] { p->Run(); });
  return m;
}

Status TcpMonitor::Load() {
  LoadOptions o;
  o.open_error = "cannot open the tcp BPF object: ";
  o.load_error = "loading the tcp programs failed: ";
  o.load_hint = " (needs root or CAP_BPF+CAP_PERFMON and kernel BTF; run `redtap doctor`)";
  auto loaded = Skeleton<struct tcp>::Load(
      [this](struct tcp* s, bool probing) -> Status {
        s->rodata->cfg_events_per_sec = opt_.kernel_events_per_sec;
        int err = bpf_map__set_max_entries(s->maps.tcp_sock_map, probing ? 1024 : opt_.max_sockets);
        if (err) return Status::Error("cannot size tcp_sock_map: " + ErrnoText(err));
        return Status::Ok();
      },
      std::move(o));
  if (!loaded.ok()) return loaded.status();
  skel_ = loaded.value()->skel();
  object_ = std::move(loaded.value());
  ncpu_ = libbpf_num_possible_cpus();
  if (ncpu_ <= 0) return Status::Error("cannot count possible CPUs: " + ErrnoText(ncpu_));
  rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.tcp_events_rb), &TcpMonitor::OnRingEvent, this,
                         nullptr);
  if (!rb_) return Status::Error("cannot open the tcp event ring buffer: " + ErrnoText(errno));
  return Status::Ok();
}

Status TcpMonitor::SetPools() {
  const int fd = bpf_map__fd(skel_->maps.tcp_pool_ports);
  const uint8_t one = 1;
  for (const auto& p : opt_.pools) {
    if (bpf_map_update_elem(fd, &p.server_port, &one, BPF_ANY) != 0) {
      return Status::Error("tcp monitor: cannot set the port of pool " + p.name + ": " +
                           ErrnoText(errno));
    }
  }
  skel_->bss->pool_ports = static_cast<uint32_t>(opt_.pools.size());
  model_.SetPools(opt_.pools);
  return Status::Ok();
}

void TcpMonitor::AttachAll() {
  object_->AttachAll(TcpHooks());
  iter_link_ = object_->Link("tcp_iter");
}

void TcpMonitor::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  iter_link_ = nullptr;
  if (object_) object_->DetachAll();  // every link at once, the iterator's included
}

const std::vector<HookStatus>& TcpMonitor::hooks() const {
  static const std::vector<HookStatus> kNone;
  return object_ ? object_->hooks() : kNone;
}

bool TcpMonitor::Ready() const { return object_ && object_->Ready(); }

SamplerStats TcpMonitor::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool TcpMonitor::WaitSamples(uint64_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t target = stats_.samples + n;
  return cv_.wait_for(lock, timeout, [&] { return stats_.samples >= target; });
}

std::optional<RawCounters> TcpMonitor::SeriesCounters(const SeriesId& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return model_.SeriesCounters(id);
}

std::optional<RawLive> TcpMonitor::SeriesLive(const SeriesId& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return model_.SeriesLive(id);
}

void TcpMonitor::Run() {
  using Clock = std::chrono::steady_clock;
  auto next = Clock::now() + opt_.interval;
  while (!stop_) {
    auto now = Clock::now();
    if (now >= next) {
      Sample();
      next += opt_.interval;
      if (next <= now) next = now + opt_.interval;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
    int ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 100));
    ring_buffer__poll(rb_, ms);
  }
}

void TcpMonitor::Sample() {
  int64_t cpu0 = ClockNs(CLOCK_THREAD_CPUTIME_ID);
  int64_t wall0 = ClockNs(CLOCK_MONOTONIC);

  // Counters first, then the pass: a connection closing in between is briefly missing from
  // both (never counted twice), and the bytes exported stay monotonic.
  std::vector<std::pair<RawKey, RawCounters>> counters;
  ReadCounters(&counters);
  gen_++;
  skel_->bss->iter_gen = gen_;
  // Walking every connection costs ~1 us per socket in the kernel (bpf_iter_tcp locks each):
  // listeners every interval, connections as often as max_cpu_fraction allows.
  bool full = wall0 >= next_full_ns_;
  skel_->bss->iter_listeners_only = full ? 0 : 1;
  int64_t iter_cpu0 = ClockNs(CLOCK_THREAD_CPUTIME_ID);
  std::vector<Listener> listeners;
  std::vector<std::pair<uint64_t, uint64_t>> unresolved;
  ReadIterator(&listeners, &unresolved);
  if (full) {
    last_live_.clear();
    ReadLive(&last_live_);
    int64_t pass_cpu = ClockNs(CLOCK_THREAD_CPUTIME_ID) - iter_cpu0;
    int64_t interval = std::chrono::duration_cast<std::chrono::nanoseconds>(opt_.interval).count();
    int64_t max_interval =
        std::chrono::duration_cast<std::chrono::nanoseconds>(opt_.max_full_interval).count();
    int64_t period = opt_.max_cpu_fraction > 0
                         ? static_cast<int64_t>(pass_cpu / opt_.max_cpu_fraction)
                         : interval;
    period = std::clamp(period, interval, std::max(interval, max_interval));
    // Due a little early so that it runs on the sample tick at or before the period.
    next_full_ns_ = wall0 + period - interval / 2;
    std::lock_guard<std::mutex> lock(mu_);
    stats_.full_passes++;
    stats_.last_full_pass_cpu_ns = pass_cpu;
    stats_.full_interval_ms = period / 1'000'000;
  }
  const auto& live = last_live_;
  ResolveOwners(&listeners, unresolved);
  auto netns = ReadNetstat(listeners);
  ListenerEvents(listeners);

  std::array<uint64_t, REDTAP_TCP_DROP_MAX> drops{};
  {
    std::vector<uint64_t> vals(ncpu_);
    for (uint32_t r = 0; r < REDTAP_TCP_DROP_MAX; r++) {
      if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.tcp_drop_stats), &r, vals.data()) == 0)
        for (auto v : vals) drops[r] += v;
    }
  }
  int64_t now = ClockNs(CLOCK_MONOTONIC);
  if (now - last_gc_ns_ >= kGcIntervalNs) {
    last_gc_ns_ = now;
    CollectGarbage(counters, live);
  }

  int64_t cpu = ClockNs(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    model_.Update(counters, live, std::move(listeners), std::move(netns),
                  [this](const RawKey& k) { return ServiceOf(k); });
    stats_.samples++;
    stats_.sample_cpu_ns += cpu;
    stats_.last_sample_cpu_ns = cpu;
    stats_.last_sample_wall_ns = ClockNs(CLOCK_MONOTONIC) - wall0;
    stats_.events_suppressed = limiter_.total_suppressed();
    for (int i = 0; i < REDTAP_TCP_DROP_MAX; i++) stats_.kernel_drops[i] = drops[i];
  }
  cv_.notify_all();
}

void TcpMonitor::Collect(exposition::Families* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& f : model_.Families()) out->push_back(std::move(f));
  out->push_back(
      exposition::SingleCounter("redtap_tcp_monitor_sampler_cpu_seconds_total",
                                "CPU time the TCP sampler spent sampling (iterator, maps, /proc)",
                                static_cast<double>(stats_.sample_cpu_ns) / 1e9));
  out->push_back(exposition::SingleCounter("redtap_tcp_monitor_samples_total", "TCP sampler passes",
                                           static_cast<double>(stats_.samples)));
  exposition::Reasons drops;
  for (int r = 0; r < REDTAP_TCP_DROP_MAX; r++) {
    drops.emplace_back(DropReasonName(r), stats_.kernel_drops[r]);
  }
  out->push_back(exposition::ReasonCounter("redtap_tcp_monitor_kernel_drops_total",
                                           "Losses in the TCP programs, by reason", drops));
  out->push_back(
      exposition::SingleCounter("redtap_tcp_monitor_events_suppressed_total",
                                "type:tcp events held back by the per-service rate limit",
                                static_cast<double>(stats_.events_suppressed)));
}

nlohmann::json TcpMonitor::ListenersJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  return model_.ListenersJson();
}

}  // namespace redtap::saturation

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

constexpr int64_t kGcIntervalNs =
    300'000'000'000;                         // leaks are rare; a walk of 20k entries costs ~50 ms
constexpr uint64_t kSockUnseenPasses = 300;  // > the longest connect (127 s by default)

int64_t Now(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

RawKey ToRawKey(const redtap_tcp_key& k) {
  RawKey r;
  r.dir = static_cast<Direction>(k.dir);
  r.netns = k.netns;
  r.tgid = k.tgid;
  r.port = k.port;
  r.comm.assign(k.comm, strnlen(k.comm, sizeof(k.comm)));
  return r;
}

redtap_tcp_key ToKernelKey(const RawKey& r) {
  redtap_tcp_key k{};
  k.dir = static_cast<uint8_t>(r.dir);
  k.netns = r.netns;
  k.tgid = r.tgid;
  k.port = r.port;
  std::strncpy(k.comm, r.comm.c_str(), sizeof(k.comm) - 1);
  return k;
}

bool ProcessAlive(uint32_t pid) {
  return pid && (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH);
}

uint32_t NetnsOf(const std::string& pid) {
  struct stat st {};
  if (stat(("/proc/" + pid + "/ns/net").c_str(), &st) != 0) return 0;
  return static_cast<uint32_t>(st.st_ino);
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
  m->realtime_offset_ns_ = Now(CLOCK_REALTIME) - Now(CLOCK_MONOTONIC);
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
  int64_t cpu0 = Now(CLOCK_THREAD_CPUTIME_ID);
  int64_t wall0 = Now(CLOCK_MONOTONIC);

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
  int64_t iter_cpu0 = Now(CLOCK_THREAD_CPUTIME_ID);
  std::vector<Listener> listeners;
  std::vector<std::pair<uint64_t, uint64_t>> unresolved;
  ReadIterator(&listeners, &unresolved);
  if (full) {
    last_live_.clear();
    ReadLive(&last_live_);
    int64_t pass_cpu = Now(CLOCK_THREAD_CPUTIME_ID) - iter_cpu0;
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
  int64_t now = Now(CLOCK_MONOTONIC);
  if (now - last_gc_ns_ >= kGcIntervalNs) {
    last_gc_ns_ = now;
    CollectGarbage(counters, live);
  }

  int64_t cpu = Now(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    model_.Update(counters, live, std::move(listeners), std::move(netns),
                  [this](const RawKey& k) { return ServiceOf(k); });
    stats_.samples++;
    stats_.sample_cpu_ns += cpu;
    stats_.last_sample_cpu_ns = cpu;
    stats_.last_sample_wall_ns = Now(CLOCK_MONOTONIC) - wall0;
    stats_.events_suppressed = limiter_.total_suppressed();
    for (int i = 0; i < REDTAP_TCP_DROP_MAX; i++) stats_.kernel_drops[i] = drops[i];
  }
  cv_.notify_all();
}

void TcpMonitor::ReadCounters(std::vector<std::pair<RawKey, RawCounters>>* out) {
  int fd = bpf_map__fd(skel_->maps.tcp_agg_map);
  std::vector<redtap_tcp_counters> vals(ncpu_);
  redtap_tcp_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    if (bpf_map_lookup_elem(fd, &key, vals.data()) != 0) continue;
    RawCounters c;
    for (const auto& v : vals) {
      c.opened += v.opened;
      c.closed += v.closed;
      for (int i = 0; i < kFailReasons; i++) c.connect_failures[i] += v.connect_failures[i];
      c.resets_sent += v.resets_sent;
      c.resets_received += v.resets_received;
      c.retransmits += v.retransmits;
      c.bytes_in += v.bytes_in;
      c.bytes_out += v.bytes_out;
      c.rtt_count += v.rtt_count;
      c.rtt_sum_us += v.rtt_sum_us;
      for (int i = 0; i < kRttBuckets; i++) c.rtt_buckets[i] += v.rtt_buckets[i];
    }
    out->emplace_back(ToRawKey(key), c);
  }
}

void TcpMonitor::ScanNamespaces() {
  std::map<uint32_t, uint32_t> found;
  if (self_netns_) found[self_netns_] = static_cast<uint32_t>(getpid());
  DIR* d = opendir("/proc");
  if (d) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      uint32_t ns = NetnsOf(e->d_name);
      if (ns && !found.count(ns))
        found[ns] = static_cast<uint32_t>(strtoul(e->d_name, nullptr, 10));
    }
    closedir(d);
  }
  netns_pid_ = std::move(found);
}

void TcpMonitor::ReadIterator(std::vector<Listener>* listeners,
                              std::vector<std::pair<uint64_t, uint64_t>>* unresolved) {
  int64_t now = Now(CLOCK_MONOTONIC);
  if (netns_pid_.empty() || (rescan_netns_ && now - last_netns_scan_ns_ >= 500'000'000) ||
      now - last_netns_scan_ns_ >=
          std::chrono::duration_cast<std::chrono::nanoseconds>(opt_.netns_scan_interval).count()) {
    last_netns_scan_ns_ = now;
    rescan_netns_ = false;
    ScanNamespaces();
  }
  if (self_ns_fd_ < 0) self_ns_fd_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  size_t sampled = 0;
  std::vector<uint32_t> gone;
  for (const auto& [ns, pid] : netns_pid_) {
    int fd = -1;
    if (ns == self_netns_ || self_ns_fd_ < 0) {
      if (ns != self_netns_) continue;
      fd = bpf_iter_create(bpf_link__fd(iter_link_));
    } else {
      // The iterator walks the namespace of the task that creates it: enter, create, leave.
      int nsfd = open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
      struct stat st {};
      if (nsfd < 0 || fstat(nsfd, &st) != 0 || static_cast<uint32_t>(st.st_ino) != ns) {
        if (nsfd >= 0) close(nsfd);
        gone.push_back(ns);  // the process left or the pid was reused: rescan later
        continue;
      }
      if (setns(nsfd, CLONE_NEWNET) == 0) {
        fd = bpf_iter_create(bpf_link__fd(iter_link_));
        setns(self_ns_fd_, CLONE_NEWNET);
      }
      close(nsfd);
    }
    if (fd < 0) continue;
    ReadIteratorFd(fd, listeners, unresolved);
    sampled++;
  }
  for (auto ns : gone) netns_pid_.erase(ns);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.namespaces = sampled;
}

void TcpMonitor::ReadIteratorFd(int fd, std::vector<Listener>* listeners,
                                std::vector<std::pair<uint64_t, uint64_t>>* unresolved) {
  iter_buf_.resize(std::max<size_t>(iter_buf_.size(), 1 << 16));
  size_t len = 0;
  for (;;) {
    if (iter_buf_.size() - len < 4096) iter_buf_.resize(iter_buf_.size() * 2);
    ssize_t n = read(fd, iter_buf_.data() + len, iter_buf_.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += n;
  }
  close(fd);
  size_t off = 0;
  while (off + sizeof(uint16_t) <= len) {
    uint16_t type;
    memcpy(&type, iter_buf_.data() + off, sizeof(type));
    if (type == REDTAP_TCP_REC_LISTENER && off + sizeof(redtap_tcp_listener_rec) <= len) {
      redtap_tcp_listener_rec r;
      memcpy(&r, iter_buf_.data() + off, sizeof(r));
      off += sizeof(r);
      Listener l;
      l.family = r.family;
      l.address = FormatAddress(r.family, r.addr);
      l.port = r.port;
      l.netns = r.netns;
      l.sk = r.sk;
      l.ino = r.ino;
      l.backlog = r.backlog;
      l.backlog_max = r.backlog_max;
      l.syn_queue = r.syn_queue;
      l.drops = r.drops;
      l.pid = r.owner_tgid;
      l.comm.assign(r.owner_comm, strnlen(r.owner_comm, sizeof(r.owner_comm)));
      listeners->push_back(std::move(l));
    } else if (type == REDTAP_TCP_REC_UNRESOLVED &&
               off + sizeof(redtap_tcp_unresolved_rec) <= len) {
      redtap_tcp_unresolved_rec r;
      memcpy(&r, iter_buf_.data() + off, sizeof(r));
      off += sizeof(r);
      unresolved->emplace_back(r.sk, r.ino);
    } else {
      break;  // unknown or truncated record: the rest cannot be framed
    }
  }
}

void TcpMonitor::ReadLive(std::vector<std::pair<RawKey, RawLive>>* out) {
  int fd = bpf_map__fd(skel_->maps.tcp_live_map);
  std::vector<redtap_tcp_key> stale;
  redtap_tcp_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    redtap_tcp_live v{};
    if (bpf_map_lookup_elem(fd, &key, &v) != 0) continue;
    if (v.gen != gen_) {
      stale.push_back(key);
      continue;
    }
    out->emplace_back(ToRawKey(key), RawLive{v.active});
  }
  for (const auto& k : stale) bpf_map_delete_elem(fd, &k);
}

void TcpMonitor::ResolveOwners(std::vector<Listener>* listeners,
                               const std::vector<std::pair<uint64_t, uint64_t>>& unresolved) {
  std::unordered_set<uint64_t> wanted;
  for (auto& l : *listeners) {
    if (l.pid && !ProcessAlive(l.pid)) l.pid = 0;  // listen() caller exited; a child holds it
    if (l.pid || !l.ino) continue;
    auto it = inode_owner_.find(l.ino);
    if (it != inode_owner_.end() && ProcessAlive(it->second.pid)) {
      l.pid = it->second.pid;
      l.comm = it->second.comm;
    } else {
      wanted.insert(l.ino);
    }
  }
  int64_t now = Now(CLOCK_MONOTONIC);
  for (const auto& [sk, ino] : unresolved) {
    if (ino && !inode_owner_.count(ino) && !inode_unowned_.count(ino)) wanted.insert(ino);
  }
  // A listener whose owner was not found (another pid namespace, a socket passed away and
  // kept by the kernel only) is looked for again every 5 minutes, not at every scan.
  for (auto it = wanted.begin(); it != wanted.end();) {
    auto u = inode_unowned_.find(*it);
    if (u != inode_unowned_.end() && now - u->second < 300'000'000'000)
      it = wanted.erase(it);
    else
      ++it;
  }
  bool scanned = false;
  if (!wanted.empty() &&
      now - last_owner_scan_ns_ >=
          std::chrono::duration_cast<std::chrono::nanoseconds>(opt_.owner_scan_interval).count()) {
    last_owner_scan_ns_ = now;
    scanned = true;
    auto found = FindSocketOwners(wanted);
    for (auto& [ino, o] : found) inode_owner_[ino] = o;
    for (auto ino : wanted)
      if (!found.count(ino)) inode_unowned_[ino] = now;
    if (inode_unowned_.size() > 100000) inode_unowned_.clear();
    std::lock_guard<std::mutex> lock(mu_);
    stats_.owner_scans++;
  }
  for (auto& l : *listeners) {
    if (!l.pid) {
      auto it = inode_owner_.find(l.ino);
      if (it != inode_owner_.end()) {
        l.pid = it->second.pid;
        l.comm = it->second.comm;
      }
    }
    l.service = l.pid ? Resolve(l.pid, l.comm, l.port) : "unknown";
  }
  // Write the owners found into the kernel entries: the socket's counters move to its process.
  int sfd = bpf_map__fd(skel_->maps.tcp_sock_map);
  for (const auto& [sk, ino] : unresolved) {
    auto it = inode_owner_.find(ino);
    bool none = !ino || (scanned && inode_unowned_.count(ino));
    if (it == inode_owner_.end() && !none) continue;
    redtap_tcp_sock v{};
    if (bpf_map_lookup_elem(sfd, &sk, &v) != 0) continue;
    if (it != inode_owner_.end()) {
      v.key.tgid = it->second.pid;
      std::memset(v.key.comm, 0, sizeof(v.key.comm));
      std::strncpy(v.key.comm, it->second.comm.c_str(), sizeof(v.key.comm) - 1);
      v.flags &= ~REDTAP_TCP_SK_UNRESOLVED;
    } else {
      v.flags |= REDTAP_TCP_SK_NO_OWNER;
    }
    bpf_map_update_elem(sfd, &sk, &v, BPF_EXIST);
  }
  listener_service_.clear();
  port_service_.clear();
  for (const auto& l : *listeners) {
    listener_service_[{l.netns, l.port}] = l.service;
    port_service_[l.port] = l.service;
  }
}

std::map<uint32_t, NetnsCounters> TcpMonitor::ReadNetstat(const std::vector<Listener>& listeners) {
  // One process per namespace with a listener to read it through (and always our own).
  std::map<uint32_t, std::string> via;
  if (self_netns_) via[self_netns_] = "self";
  for (const auto& l : listeners) {
    if (via.count(l.netns)) continue;
    auto it = netns_pid_.find(l.netns);
    if (it != netns_pid_.end())
      via[l.netns] = std::to_string(it->second);
    else if (l.pid)
      via[l.netns] = std::to_string(l.pid);
  }
  std::map<uint32_t, NetnsCounters> out;
  for (const auto& [ns, pid] : via) {
    std::ifstream f("/proc/" + pid + "/net/netstat");
    if (!f) continue;
    std::stringstream ss;
    ss << f.rdbuf();
    auto m = ParseNetstat(ss.str());
    NetnsCounters c;
    c.listen_overflows = m["TcpExt.ListenOverflows"];
    c.listen_drops = m["TcpExt.ListenDrops"];
    out[ns] = c;
  }
  return out;
}

void TcpMonitor::ListenerEvents(const std::vector<Listener>& listeners) {
  std::map<uint64_t, uint64_t> drops;
  int64_t unix_ns = Now(CLOCK_REALTIME);
  for (const auto& l : listeners) {
    drops[l.sk] = l.drops;
    auto prev = listener_drops_.find(l.sk);
    uint64_t dropped =
        prev != listener_drops_.end() && l.drops > prev->second ? l.drops - prev->second : 0;
    bool full = l.backlog_max > 0 && l.backlog >= l.backlog_max;
    if (!full && !dropped) continue;
    TcpEvent ev;
    ev.unix_ns = unix_ns;
    ev.level = "WARN";
    ev.event = "listen_queue_full";
    ev.service = l.service;
    ev.pid = l.pid;
    ev.comm = l.comm;
    ev.server_address = l.address;
    ev.server_port = l.port;
    ev.extra.push_back({"tcp.listen.backlog", "", static_cast<double>(l.backlog), true});
    ev.extra.push_back({"tcp.listen.backlog_max", "", static_cast<double>(l.backlog_max), true});
    ev.extra.push_back({"tcp.listen.drops", "", static_cast<double>(dropped), true});
    ev.message = "accept queue of " + l.service + " on port " + std::to_string(l.port) + " " +
                 (full ? "full" : "overflowed") + ": " + std::to_string(l.backlog) + "/" +
                 std::to_string(l.backlog_max) + ", " + std::to_string(dropped) +
                 " connection attempts dropped in the last interval";
    Emit(std::move(ev), "listen_queue_full/" + l.service + "/" + std::to_string(l.port));
  }
  listener_drops_ = std::move(drops);
}

void TcpMonitor::CollectGarbage(const std::vector<std::pair<RawKey, RawCounters>>& counters,
                                const std::vector<std::pair<RawKey, RawLive>>& live) {
  // Socket entries no pass has seen for minutes (a socket that died without CLOSE).
  int sfd = bpf_map__fd(skel_->maps.tcp_sock_map);
  std::vector<uint64_t> dead;
  uint64_t key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(sfd, prev, &next) == 0) {
    key = next;
    prev = &key;
    redtap_tcp_sock v{};
    if (bpf_map_lookup_elem(sfd, &key, &v) == 0 && v.seen_gen + kSockUnseenPasses < gen_)
      dead.push_back(key);
  }
  for (auto k : dead) bpf_map_delete_elem(sfd, &k);

  // Counter keys of exited processes with no live connection: their counts are folded into
  // the series already.
  std::set<RawKey> has_live;
  for (const auto& [k, l] : live) has_live.insert(k);
  int afd = bpf_map__fd(skel_->maps.tcp_agg_map);
  for (const auto& [k, c] : counters) {
    if (k.dir != Direction::kOutbound || !k.tgid || has_live.count(k) || ProcessAlive(k.tgid))
      continue;
    redtap_tcp_key kk = ToKernelKey(k);
    bpf_map_delete_elem(afd, &kk);
    {
      std::lock_guard<std::mutex> lock(mu_);
      model_.Forget(k);
    }
    key_service_.erase(k);
  }
  if (unnamed_since_.size() > 4096) unnamed_since_.clear();
  for (auto it = resolved_.begin(); it != resolved_.end();) {
    if (!ProcessAlive(std::get<0>(it->first)))
      it = resolved_.erase(it);
    else
      ++it;
  }
  for (auto it = inode_owner_.begin(); it != inode_owner_.end();) {
    if (!ProcessAlive(it->second.pid))
      it = inode_owner_.erase(it);
    else
      ++it;
  }
}

std::string TcpMonitor::Resolve(uint32_t pid, const std::string& comm, uint16_t port) {
  auto k = std::make_tuple(pid, comm, port);
  auto it = resolved_.find(k);
  if (it != resolved_.end()) return it->second;
  std::string name = opt_.resolver(pid, comm, port);
  if (name.empty()) name = comm.empty() ? "unknown" : comm;
  if (resolved_.size() > 16384) resolved_.clear();
  resolved_.emplace(k, name);
  return name;
}

std::string TcpMonitor::ServiceOf(const RawKey& key, bool final) {
  std::string name;
  if (key.dir == Direction::kOutbound) {
    if (!key.tgid) return "unknown";
    return Resolve(key.tgid, key.comm, 0);
  }
  if (key.port == 0) return "unknown";
  if (key.netns && !netns_pid_.count(key.netns)) rescan_netns_ = true;
  auto it = listener_service_.find({key.netns, key.port});
  if (it != listener_service_.end()) {
    name = it->second;
  } else if (key.netns == 0) {
    auto p = port_service_.find(key.port);
    if (p != port_service_.end()) name = p->second;
  }
  if (name.empty() || name == "unknown") {
    // The listener is gone (or its owner not found yet): keep the last name of this key.
    auto k = key_service_.find(key);
    if (k != key_service_.end()) return k->second;
    // New key of a listener not seen yet (a namespace or listener younger than the last
    // pass): wait a few samples before calling it unknown.
    auto [u, fresh] = unnamed_since_.emplace(key, gen_);
    if (!final && gen_ < u->second + 4) return "";
    return "unknown";
  }
  unnamed_since_.erase(key);
  if (key_service_.size() > 16384) key_service_.clear();
  key_service_[key] = name;
  return name;
}

void TcpMonitor::Emit(TcpEvent ev, const std::string& limit_key) {
  if (!opt_.on_event) return;
  uint64_t suppressed = 0;
  if (!limiter_.Allow(limit_key, Now(CLOCK_MONOTONIC), &suppressed)) return;
  ev.suppressed = suppressed;
  opt_.on_event(FormatEvent(ev));
  std::lock_guard<std::mutex> lock(mu_);
  stats_.events_emitted++;
}

int TcpMonitor::OnRingEvent(void* ctx, void* data, size_t size) {
  static_cast<TcpMonitor*>(ctx)->HandleRingEvent(data, size);
  return 0;  // a negative return would stop ring_buffer__poll
}

void TcpMonitor::HandleRingEvent(const void* data, size_t size) {
  if (size < sizeof(redtap_tcp_event)) return;
  redtap_tcp_event e;
  memcpy(&e, data, sizeof(e));
  RawKey key = ToRawKey(e.key);
  TcpEvent ev;
  ev.unix_ns = static_cast<int64_t>(e.ts_ns) + realtime_offset_ns_;
  ev.service = ServiceOf(key, /*final=*/true);
  std::string local = FormatAddress(e.family, e.laddr);
  std::string remote = FormatAddress(e.family, e.raddr);
  bool local_is_server = key.dir == Direction::kInbound;
  if (key.dir == Direction::kOutbound && key.tgid) {
    ev.pid = key.tgid;
    ev.comm = key.comm;
  }
  std::string limit;
  switch (e.type) {
    case REDTAP_TCP_EV_CONNECT_FAILED: {
      local_is_server = false;
      ev.level = "WARN";
      ev.event = "connect_failed";
      ev.reason = FailReasonName(e.reason);
      ev.extra.push_back({"error.code", "", static_cast<double>(e.err), true});
      ev.message = "connect from " + ev.service + " to " + remote + ":" + std::to_string(e.rport) +
                   " failed: " + ev.reason;
      limit = "connect_failed/" + ev.service;
      break;
    }
    case REDTAP_TCP_EV_RESET_SENT:
    case REDTAP_TCP_EV_RESET_RECEIVED: {
      bool sent = e.type == REDTAP_TCP_EV_RESET_SENT;
      ev.level = sent ? "INFO" : "WARN";
      ev.event = "reset";
      ev.direction = sent ? "sent" : "received";
      ev.message = std::string("TCP reset ") + (sent ? "sent to " : "received from ") + remote +
                   ":" + std::to_string(e.rport) + " on " + local + ":" + std::to_string(e.lport) +
                   " (" + ev.service + ")";
      limit = "reset/" + ev.direction + "/" + ev.service;
      break;
    }
    default:
      return;
  }
  if (local_is_server) {
    ev.server_address = local;
    ev.server_port = e.lport;
    ev.client_address = remote;
    ev.client_port = e.rport;
  } else {
    ev.server_address = remote;
    ev.server_port = e.rport;
    ev.client_address = local;
    ev.client_port = e.lport;
  }
  Emit(std::move(ev), limit);
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

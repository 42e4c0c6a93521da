// SPDX-License-Identifier: Apache-2.0
// TcpMonitor: socket saturation and TCP health per service (issue #4). Loads tcp.bpf.o
// through the BPF loading library (userspace/bpf/: per-program fallback, one attach loop,
// hook statuses like the capture loader's), and samples the kernel maps and a tcp iterator
// once a second on its own thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "userspace/bpf/bpf_object.h"
#include "userspace/common/status.h"
#include "userspace/saturation/model.h"
#include "userspace/saturation/proc_owner.h"

struct tcp;
struct bpf_link;
struct ring_buffer;

namespace redtap::saturation {

struct Options {
  /// Service name of a process (pid, comm) and, for listeners, its port. Default: comm.
  Resolver resolver;
  /// Receives one NDJSON line per notable moment (type "tcp"); called on the sampler thread.
  std::function<void(std::string json_line)> on_event;
  std::chrono::milliseconds interval{1000};
  /// Sockets tracked in the kernel (listeners + connections + connects in flight).
  uint32_t max_sockets = 65536;
  /// Kernel budget of ring-buffer events per CPU per second.
  uint32_t kernel_events_per_sec = 100;
  /// Userspace limit per (event, service): a burst, then one per period.
  double event_burst = 5;
  std::chrono::milliseconds event_period{10'000};
  /// How often /proc may be scanned for owners of sockets older than the agent.
  std::chrono::milliseconds owner_scan_interval{5'000};
  /// How often /proc/*/ns/net is scanned for network namespaces to sample.
  std::chrono::milliseconds netns_scan_interval{5'000};
  /// Listeners (backlog) are sampled every interval. Connections (active gauge, bytes of live
  /// connections, RTT) are walked every interval too, unless that walk would cost more than
  /// this fraction of one core: then less often (at most every max_full_interval).
  double max_cpu_fraction = 0.005;
  std::chrono::milliseconds max_full_interval{30'000};
  /// Connection pools (alerts.pools) counted at each connections walk.
  std::vector<Pool> pools;
};

/// Cost and health of the sampler.
struct SamplerStats {
  uint64_t samples = 0;
  uint64_t sample_cpu_ns = 0;  // thread CPU time spent sampling (iterator + maps + /proc)
  uint64_t last_sample_cpu_ns = 0;
  uint64_t last_sample_wall_ns = 0;
  uint64_t owner_scans = 0;
  uint64_t namespaces = 0;   // network namespaces sampled in the last pass
  uint64_t full_passes = 0;  // passes that walked connections too
  uint64_t last_full_pass_cpu_ns = 0;
  uint64_t full_interval_ms = 0;  // current period of connection walks
  uint64_t events_emitted = 0;
  uint64_t events_suppressed = 0;          // by the userspace rate limit
  std::array<uint64_t, 7> kernel_drops{};  // enum redtap_tcp_drop_reason
};

class TcpMonitor {
 public:
  ~TcpMonitor();
  TcpMonitor(const TcpMonitor&) = delete;
  TcpMonitor& operator=(const TcpMonitor&) = delete;

  /// Loads and attaches everything, takes a first sample, starts the sampler thread. Fatal:
  /// the object does not load, or the iterator (the sampler's base) cannot attach. A failed
  /// tracepoint (or one the verifier rejects) is reported in hooks(), Ready() is false, and
  /// the rest keeps running.
  static Result<std::unique_ptr<TcpMonitor>> Start(const Options& options);
  /// Stops the sampler and detaches every program (idempotent; also done by the destructor).
  void Stop();

  /// Every redtap_tcp_* family, plus redtap_tcp_monitor_* (the monitor's own health).
  void Collect(exposition::Families* out) const;
  /// One object per listening socket: service, address, port, backlog, backlog_max,
  /// fill_ratio, syn_queue, drops_total, netns counters.
  nlohmann::json ListenersJson() const;

  /// The iterator and every tracepoint, all required (the agent's /ready counts them).
  /// Read them after Start() and before Stop(), from the thread that calls those.
  const std::vector<HookStatus>& hooks() const;
  /// True while every required hook is attached.
  bool Ready() const;
  SamplerStats stats() const;
  /// Blocks until `n` more samples have completed (tools and tests), or `timeout`.
  bool WaitSamples(uint64_t n, std::chrono::milliseconds timeout) const;
  /// Accumulated counters and live sums of one series (tools and tests).
  std::optional<RawCounters> SeriesCounters(const SeriesId& id) const;
  std::optional<RawLive> SeriesLive(const SeriesId& id) const;

  static const char* DropReasonName(int reason);

 private:
  explicit TcpMonitor(const Options& o);
  Status Load();
  Status SetPools();
  void AttachAll();
  void Run();
  void Sample();
  void ReadCounters(std::vector<std::pair<RawKey, RawCounters>>* out);
  void ScanNamespaces();
  void ReadIterator(std::vector<Listener>* listeners,
                    std::vector<std::pair<uint64_t, uint64_t>>* unresolved);
  void ReadIteratorFd(int fd, std::vector<Listener>* listeners,
                      std::vector<std::pair<uint64_t, uint64_t>>* unresolved);
  void ReadLive(std::vector<std::pair<RawKey, RawLive>>* out);
  void ResolveOwners(std::vector<Listener>* listeners,
                     const std::vector<std::pair<uint64_t, uint64_t>>& unresolved);
  std::map<uint32_t, NetnsCounters> ReadNetstat(const std::vector<Listener>& listeners);
  void ListenerEvents(const std::vector<Listener>& listeners);
  void CollectGarbage(const std::vector<std::pair<RawKey, RawCounters>>& counters,
                      const std::vector<std::pair<RawKey, RawLive>>& live);
  /// The service of a key; "" while an inbound key's listener is not known yet (a few
  /// samples at most: then "unknown"), unless `final` asks for a name now.
  std::string ServiceOf(const RawKey& key, bool final = false);
  std::string Resolve(uint32_t pid, const std::string& comm, uint16_t port);
  void Emit(TcpEvent ev, const std::string& limit_key);
  static int OnRingEvent(void* ctx, void* data, size_t size);
  void HandleRingEvent(const void* data, size_t size);

  Options opt_;
  std::unique_ptr<BpfObject> object_;     // a Skeleton<struct tcp>
  struct tcp* skel_ = nullptr;            // owned by object_
  struct bpf_link* iter_link_ = nullptr;  // owned by object_
  struct ring_buffer* rb_ = nullptr;
  int ncpu_ = 1;
  uint64_t gen_ = 0;
  int64_t realtime_offset_ns_ = 0;
  uint32_t self_netns_ = 0;

  // Sampler-thread state.
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::vector<char> iter_buf_;
  std::map<std::pair<uint32_t, uint16_t>, std::string> listener_service_;  // (netns, port)
  std::map<uint16_t, std::string> port_service_;                           // any netns
  std::map<RawKey, std::string> key_service_;                              // sticky names
  std::map<RawKey, uint64_t> unnamed_since_;  // inbound keys waiting for their listener (gen)
  bool rescan_netns_ = false;                 // a key names a namespace not sampled yet
  // (pid, comm, port) → name, and when it was resolved: names are asked again after
  // kResolveTtlNs (a pod list read since may name the process's workload).
  static constexpr int64_t kResolveTtlNs = 30'000'000'000;
  std::map<std::tuple<uint32_t, std::string, uint16_t>, std::pair<std::string, int64_t>> resolved_;
  std::unordered_map<uint64_t, Owner> inode_owner_;  // sockets older than the agent
  std::map<uint64_t, int64_t> inode_unowned_;        // looked for and not found: when
  std::map<uint64_t, uint64_t> listener_drops_;      // sk -> sk_drops at the last sample
  // Network namespaces: a tcp iterator only walks the namespace it was created in, so the
  // sampler enters each one (setns) to create its iterator. inode -> a process inside it.
  std::map<uint32_t, uint32_t> netns_pid_;
  int64_t last_netns_scan_ns_ = 0;
  int self_ns_fd_ = -1;
  int64_t next_full_ns_ = 0;                           // next pass that walks connections
  std::vector<std::pair<RawKey, RawLive>> last_live_;  // live sums of the last full pass
  int64_t last_owner_scan_ns_ = 0;
  int64_t last_gc_ns_ = 0;
  RateLimiter limiter_;

  // Shared with readers.
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  Model model_;
  SamplerStats stats_;
};

}  // namespace redtap::saturation

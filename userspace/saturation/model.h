// SPDX-License-Identifier: Apache-2.0
// The pure part of the TCP monitor: what one sample of the kernel maps means per service.
// No BPF, no I/O: raw per-key counters in, Prometheus families and listener JSON out.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "userspace/common/format.h"
#include "userspace/export/event_builder.h"
#include "userspace/exposition/registry.h"

namespace redtap::saturation {

/// Names a service from its process and, for servers, its listening port.
/// Default: the process command name (comm).
using Resolver = std::function<std::string(uint32_t pid, const std::string& comm, uint16_t port)>;

inline constexpr int kFailReasons = 6;  // enum redtap_tcp_fail_reason
inline constexpr int kRttBounds = 16;   // REDTAP_TCP_RTT_BOUNDS
inline constexpr int kRttBuckets = kRttBounds + 1;
/// Upper bounds of the RTT histogram in microseconds (REDTAP_TCP_RTT_BOUNDS_US).
inline constexpr std::array<uint32_t, kRttBounds> kRttBoundsUs = {
    25,    50,    100,   250,    500,    1000,   2500,    5000,
    10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
const char* FailReasonName(int reason);

/// kPool: live sums only, the outbound connections of one owner to a pool's port.
enum class Direction : uint8_t { kListen = 0, kInbound = 1, kOutbound = 2, kPool = 3 };

/// alerts.pools[i]: the established outbound connections of `service` to `server_port`.
struct Pool {
  std::string name;
  std::string service;
  uint16_t server_port = 0;
  uint32_t size = 0;
};

/// One aggregation key of the kernel maps (struct redtap_tcp_key).
struct RawKey {
  Direction dir = Direction::kInbound;
  uint32_t netns = 0;
  uint32_t tgid = 0;
  uint16_t port = 0;
  std::string comm;
  auto Tie() const { return std::tie(dir, netns, tgid, port, comm); }
  bool operator<(const RawKey& o) const { return Tie() < o.Tie(); }
  bool operator==(const RawKey& o) const { return Tie() == o.Tie(); }
};

/// struct redtap_tcp_counters summed over CPUs. Every field only grows while the key lives.
struct RawCounters {
  uint64_t opened = 0;
  uint64_t closed = 0;
  std::array<uint64_t, kFailReasons> connect_failures{};
  uint64_t resets_sent = 0;
  uint64_t resets_received = 0;
  uint64_t retransmits = 0;
  uint64_t bytes_in = 0;   // payload received, counted at each pass and at close
  uint64_t bytes_out = 0;  // payload sent and acknowledged, the same way
  uint64_t rtt_count = 0;
  uint64_t rtt_sum_us = 0;
  std::array<uint64_t, kRttBuckets> rtt_buckets{};
};

/// Adds `b` to `a` field by field: another RawCounters, or one CPU's struct
/// redtap_tcp_counters (same field names).
template <typename Counters>
void AddCounters(RawCounters& a, const Counters& b) {
  a.opened += b.opened;
  a.closed += b.closed;
  for (int i = 0; i < kFailReasons; i++) a.connect_failures[i] += b.connect_failures[i];
  a.resets_sent += b.resets_sent;
  a.resets_received += b.resets_received;
  a.retransmits += b.retransmits;
  a.bytes_in += b.bytes_in;
  a.bytes_out += b.bytes_out;
  a.rtt_count += b.rtt_count;
  a.rtt_sum_us += b.rtt_sum_us;
  for (int i = 0; i < kRttBuckets; i++) a.rtt_buckets[i] += b.rtt_buckets[i];
}

/// struct redtap_tcp_live: the live connections of one key in the last iterator pass.
struct RawLive {
  uint64_t active = 0;
};

/// One listening socket in the last pass.
struct Listener {
  std::string service;
  int family = 2;  // AF_INET / AF_INET6
  std::string address;
  uint16_t port = 0;
  uint32_t netns = 0;
  uint64_t sk = 0;
  uint64_t ino = 0;
  uint32_t backlog = 0;
  uint32_t backlog_max = 0;
  uint32_t syn_queue = 0;
  uint64_t drops = 0;  // sk_drops: listen drops (overflows included) of this socket
  uint32_t pid = 0;    // owner, 0 when unknown
  std::string comm;
};

/// TcpExt ListenOverflows/ListenDrops of one network namespace.
struct NetnsCounters {
  uint64_t listen_overflows = 0;
  uint64_t listen_drops = 0;
};

/// Parses /proc/net/netstat ("TcpExt: names" / "TcpExt: values" line pairs) into
/// "TcpExt.ListenOverflows" -> value. Malformed pairs are skipped.
std::map<std::string, uint64_t> ParseNetstat(std::string_view text);

/// One aggregated series: a service, a connection direction, and the listening port for
/// inbound connections (0: none, or outbound).
struct SeriesId {
  std::string service;
  Direction dir = Direction::kInbound;
  uint16_t port = 0;
  auto Tie() const { return std::tie(service, dir, port); }
  bool operator<(const SeriesId& o) const { return Tie() < o.Tie(); }
};

/// Accumulates samples into per-service series. Not thread-safe (the monitor locks).
class Model {
 public:
  /// Folds one sample. `counters` are the cumulative values of every key now in the kernel
  /// map; `live` the live sums of the pass; `service_of` names a raw key, or returns "" when
  /// the name is not known yet: that key is then left for a later sample (its counts are not
  /// lost, they go to the right service once it is named).
  void Update(const std::vector<std::pair<RawKey, RawCounters>>& counters,
              const std::vector<std::pair<RawKey, RawLive>>& live, std::vector<Listener> listeners,
              std::map<uint32_t, NetnsCounters> netns,
              const std::function<std::string(const RawKey&)>& service_of);
  /// The kernel key was deleted (its counts stay in the series).
  void Forget(const RawKey& key) { last_.erase(key); }
  /// The connection pools whose usage the model exports (redtap_connection_pool_*).
  void SetPools(std::vector<Pool> pools) { pools_ = std::move(pools); }
  /// Live connections of pools_[i] in the last pass.
  uint64_t PoolActive(size_t i) const { return i < pool_active_.size() ? pool_active_[i] : 0; }

  /// Every redtap_tcp_* family (plus the monitor's own, given as extra).
  std::vector<exposition::MetricFamily> Families() const;
  /// One object per listener: service, address, port, backlog, backlog_max, fill_ratio, ...
  nlohmann::json ListenersJson() const;

  const std::vector<Listener>& listeners() const { return listeners_; }
  /// Accumulated counters of a series (for tests and the tool).
  std::optional<RawCounters> SeriesCounters(const SeriesId& id) const;
  std::optional<RawLive> SeriesLive(const SeriesId& id) const;

 private:
  void AddListeners(struct TcpFamilies* f) const;
  void AddSeries(struct TcpFamilies* f) const;
  struct Series {
    RawCounters acc;  // folded deltas
    RawLive live;     // this pass
  };
  std::map<RawKey, RawCounters> last_;
  std::map<SeriesId, Series> series_;
  std::vector<Listener> listeners_;
  std::map<uint32_t, NetnsCounters> netns_;
  std::vector<Pool> pools_;
  std::vector<uint64_t> pool_active_;
};

/// Token bucket per key (e.g. "connect_failed/checkout"): `burst` events at once, then one per
/// `period_ns`. Counts what it refuses so the next allowed event can say how many were held.
class RateLimiter {
 public:
  RateLimiter(double burst, int64_t period_ns, size_t max_keys = 4096)
      : burst_(burst), period_ns_(period_ns), max_keys_(max_keys) {}
  /// True when an event of `key` may go out at `now_ns`; *suppressed receives how many were
  /// refused for that key since the last allowed one.
  bool Allow(const std::string& key, int64_t now_ns, uint64_t* suppressed = nullptr);
  uint64_t total_suppressed() const { return total_suppressed_; }

 private:
  struct Bucket {
    double tokens;
    int64_t last_ns;
    uint64_t suppressed;
  };
  double burst_;
  int64_t period_ns_;
  size_t max_keys_;
  std::unordered_map<std::string, Bucket> buckets_;
  uint64_t total_suppressed_ = 0;
};

/// A type:"tcp" event before serialization.
struct TcpEvent {
  int64_t unix_ns = 0;
  std::string level = "WARN";
  std::string event;  // listen_queue_full | connect_failed | reset
  std::string message;
  std::string service;
  uint32_t pid = 0;  // 0: omitted
  std::string comm;
  std::string server_address;
  uint16_t server_port = 0;
  std::string client_address;
  uint16_t client_port = 0;
  std::string reason;           // connect_failed: refused|reset|timeout|unreachable|aborted|other
  std::string direction;        // reset: sent|received
  exporter::EventExtras extra;  // after the standard fields (tcp.listen.*, error.code)
  uint64_t suppressed = 0;      // events of the same kind and service held back before this one
};

/// One NDJSON line (no trailing newline), built like every event (exporter::EventBuilder).
std::string FormatEvent(const TcpEvent& ev);

}  // namespace redtap::saturation

// SPDX-License-Identifier: Apache-2.0
// TcpMonitor, names and moments: the service of a key, ring-buffer events (connect
// failures, resets) and full listen queues as rate-limited type "tcp" events.
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

std::string TcpMonitor::Resolve(uint32_t pid, const std::string& comm, uint16_t port) {
  auto k = std::make_tuple(pid, comm, port);
  const int64_t now = ClockNs(CLOCK_MONOTONIC);
  auto it = resolved_.find(k);
  if (it != resolved_.end() && now - it->second.second < kResolveTtlNs) return it->second.first;
  std::string name = opt_.resolver(pid, comm, port);
  if (name.empty()) name = comm.empty() ? "unknown" : comm;
  if (resolved_.size() > 16384) resolved_.clear();
  resolved_[k] = {name, now};
  return name;
}

std::string TcpMonitor::ServiceOf(const RawKey& key, bool final) {
  std::string name;
  if (key.dir == Direction::kOutbound || key.dir == Direction::kPool) {
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
  if ((name.empty() || name == "unknown") && key.tgid) {
    // No listener in the last pass (it and its process may be gone already, or its namespace
    // not scanned yet): the caller of listen(), which the kernel copied into the key.
    name = Resolve(key.tgid, key.comm, key.port);
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
  if (!limiter_.Allow(limit_key, ClockNs(CLOCK_MONOTONIC), &suppressed)) return;
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

}  // namespace redtap::saturation

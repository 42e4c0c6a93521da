// SPDX-License-Identifier: Apache-2.0
// TcpMonitor, reading the kernel side: per-CPU counters, the iterator's listener and
// unresolved-owner records, live sums, socket owners by inode, netstat, stale entries.
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
    for (const auto& v : vals) AddCounters(c, v);
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
  int64_t now = ClockNs(CLOCK_MONOTONIC);
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
  int64_t now = ClockNs(CLOCK_MONOTONIC);
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
  int64_t unix_ns = ClockNs(CLOCK_REALTIME);
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

}  // namespace redtap::saturation

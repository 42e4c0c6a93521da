// SPDX-License-Identifier: Apache-2.0
// Internal to the TCP monitor: what tcp_monitor.cc (lifecycle, sampling loop, exposition),
// tcp_monitor_read.cc (maps, iterator, owners, netstat, garbage) and tcp_monitor_events.cc
// (service names, ring events, listener events) share.
#pragma once

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <cstring>
#include <string>

#include "redtap_tcp_abi.h"
#include "userspace/common/clock.h"
#include "userspace/common/process.h"
#include "userspace/saturation/model.h"

namespace redtap::saturation {

inline constexpr int64_t kGcIntervalNs =
    300'000'000'000;  // leaks are rare; a walk of 20k entries costs ~50 ms
inline constexpr uint64_t kSockUnseenPasses = 300;  // > the longest connect (127 s by default)

inline RawKey ToRawKey(const redtap_tcp_key& k) {
  RawKey r;
  r.dir = static_cast<Direction>(k.dir);
  r.netns = k.netns;
  r.tgid = k.tgid;
  r.port = k.port;
  r.comm.assign(k.comm, strnlen(k.comm, sizeof(k.comm)));
  return r;
}

inline redtap_tcp_key ToKernelKey(const RawKey& r) {
  redtap_tcp_key k{};
  k.dir = static_cast<uint8_t>(r.dir);
  k.netns = r.netns;
  k.tgid = r.tgid;
  k.port = r.port;
  std::strncpy(k.comm, r.comm.c_str(), sizeof(k.comm) - 1);
  return k;
}

inline uint32_t NetnsOf(const std::string& pid) {
  struct stat st {};
  if (stat(("/proc/" + pid + "/ns/net").c_str(), &st) != 0) return 0;
  return static_cast<uint32_t>(st.st_ino);
}

}  // namespace redtap::saturation

// SPDX-License-Identifier: Apache-2.0
// service.name of a transaction: the first config rule (process, exe, port) that matches,
// else the process command name. Executable paths come from an injectable reader (the
// default reads /proc/<pid>/exe), cached per pid in a bounded cache with a time to live.
// Not thread-safe (the metrics store calls it under its lock).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "userspace/capture/conn_meta.h"
#include "userspace/config/config.h"

namespace redtap::enrich {

/// Returns the absolute path of the executable of `pid`, "" when unknown. Must not throw.
using ExeReader = std::function<std::string(uint32_t pid)>;

/// readlink("/proc/<pid>/exe"), "" on error (process gone, no permission).
std::string ReadProcExe(uint32_t pid);

class ServiceResolver {
 public:
  static constexpr size_t kDefaultCacheSize = 4096;
  /// A cached exe path is re-read after this long (pids are reused, processes exec).
  static constexpr uint64_t kCacheTtlNs = 60'000'000'000ull;

  explicit ServiceResolver(std::vector<config::ServiceRule> rules,
                           ExeReader exe_reader = ReadProcExe,
                           size_t cache_size = kDefaultCacheSize);

  /// The service name for a transaction seen on `meta` at `now_ns` (monotonic): the first
  /// rule that matches, else `workload` (the name of the process's Kubernetes workload or
  /// container, "" off containers), else the command name ("unknown" when empty). Without a process
  /// (pid 0 and no command: packets read by `redtap pcap`) only port rules apply, to the flow's
  /// server port, and the fallback is "<server address>:<port>" ("[v6]:port").
  std::string_view Resolve(const ConnMeta& meta, uint64_t now_ns,
                           std::string_view workload = {}) noexcept;

  size_t cache_entries() const noexcept { return cache_.size(); }
  uint64_t exe_reads() const noexcept { return exe_reads_; }

 private:
  const std::string& Exe(uint32_t pid, uint64_t now_ns) noexcept;
  std::string_view AddressName(const Endpoint& server) noexcept;

  struct CacheEntry {
    std::string exe;
    uint64_t read_ns = 0;
  };
  std::vector<config::ServiceRule> rules_;
  ExeReader exe_reader_;
  size_t cache_size_;
  bool needs_exe_ = false;
  std::unordered_map<uint32_t, CacheEntry> cache_;
  uint64_t exe_reads_ = 0;
  std::string address_, address_name_;  // AddressName of the last server seen
  uint16_t address_port_ = 0;
};

}  // namespace redtap::enrich

// SPDX-License-Identifier: Apache-2.0
#include "userspace/enrich/service_resolver.h"

#include <unistd.h>

#include <climits>

namespace redtap::enrich {

std::string ReadProcExe(uint32_t pid) {
  char path[32];
  snprintf(path, sizeof(path), "/proc/%u/exe", pid);
  char buf[PATH_MAX];
  const ssize_t n = readlink(path, buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string exe(buf, static_cast<size_t>(n));
  // A replaced or deleted binary reads "/usr/bin/x (deleted)".
  constexpr std::string_view kDeleted = " (deleted)";
  if (exe.size() > kDeleted.size() && exe.ends_with(kDeleted)) {
    exe.resize(exe.size() - kDeleted.size());
  }
  return exe;
}

ServiceResolver::ServiceResolver(std::vector<config::ServiceRule> rules, ExeReader exe_reader,
                                 size_t cache_size)
    : rules_(std::move(rules)),
      exe_reader_(std::move(exe_reader)),
      cache_size_(cache_size == 0 ? 1 : cache_size) {
  for (const auto& r : rules_) needs_exe_ = needs_exe_ || !r.exe.empty();
}

const std::string& ServiceResolver::Exe(uint32_t pid, uint64_t now_ns) noexcept {
  static const std::string kEmpty;
  try {
    auto it = cache_.find(pid);
    if (it != cache_.end() && now_ns - it->second.read_ns < kCacheTtlNs) return it->second.exe;
    if (it == cache_.end() && cache_.size() >= cache_size_) {
      // Full: drop expired entries; if none expired, start over (bounded, rare).
      std::erase_if(cache_,
                    [&](const auto& kv) { return now_ns - kv.second.read_ns >= kCacheTtlNs; });
      if (cache_.size() >= cache_size_) cache_.clear();
    }
    ++exe_reads_;
    CacheEntry& e = cache_[pid];
    e.exe = exe_reader_ ? exe_reader_(pid) : std::string();
    e.read_ns = now_ns;
    return e.exe;
  } catch (...) {
    return kEmpty;
  }
}

std::string_view ServiceResolver::Resolve(const ConnMeta& meta, uint64_t now_ns,
                                          std::string_view workload) noexcept {
  // Transactions read from packets (`redtap pcap`) have no process: port rules name the
  // server of the flow, and the fallback is its address.
  const bool no_process = meta.pid == 0 && meta.command.empty();
  for (const auto& r : rules_) {
    if (no_process && (!r.process.empty() || !r.exe.empty() || r.port == 0)) continue;
    if (!r.process.empty() && r.process != meta.command) continue;
    if (r.port != 0 && no_process && meta.server().port != r.port) continue;
    if (r.port != 0 && !no_process && (meta.role != Role::kServer || meta.local.port != r.port)) {
      continue;
    }
    if (!r.exe.empty()) {
      const std::string& exe = Exe(meta.pid, now_ns);
      if (exe.empty()) continue;
      if (r.exe.back() == '/' ? !exe.starts_with(r.exe) : exe != r.exe) continue;
    }
    return r.name;
  }
  if (no_process) return AddressName(meta.server());
  if (!workload.empty()) return workload;
  if (meta.command.empty()) return "unknown";
  return meta.command;
}

std::string_view ServiceResolver::AddressName(const Endpoint& server) noexcept {
  // Most transactions in a row go to one server: keep the last name.
  if (address_port_ != server.port || address_ != server.address || address_name_.empty()) {
    try {
      address_.assign(server.address);
      address_port_ = server.port;
      address_name_.clear();
      const bool v6 = server.address.find(':') != std::string::npos;
      if (v6) address_name_.push_back('[');
      address_name_.append(server.address);
      if (v6) address_name_.push_back(']');
      address_name_.push_back(':');
      address_name_.append(std::to_string(server.port));
    } catch (...) {
      address_name_.clear();
      return "unknown";
    }
  }
  return address_name_;
}

}  // namespace redtap::enrich

// SPDX-License-Identifier: Apache-2.0
// Socket inode -> owning process, by scanning /proc/*/fd for "socket:[ino]". Only for sockets
// older than the agent (the kernel records the owner of newer ones at listen()/connect()).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace redtap::saturation {

struct Owner {
  uint32_t pid = 0;
  std::string comm;
};

/// Reads /proc/<pid>/comm ("" when the process is gone).
std::string ReadComm(uint32_t pid);

/// Walks /proc/<pid>/fd of every process once and returns the owner of each wanted inode it
/// finds (the first process holding it). Stops early when all are found. `proc` is the procfs
/// root (tests pass a fake tree).
std::unordered_map<uint64_t, Owner> FindSocketOwners(const std::unordered_set<uint64_t>& wanted,
                                                     const std::string& proc = "/proc");

}  // namespace redtap::saturation

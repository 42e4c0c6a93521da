// SPDX-License-Identifier: Apache-2.0
#include "userspace/saturation/proc_owner.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace redtap::saturation {
namespace {

bool AllDigits(const char* s) {
  if (!*s) return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

}  // namespace

std::string ReadComm(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(f, comm);
  return comm;
}

std::unordered_map<uint64_t, Owner> FindSocketOwners(const std::unordered_set<uint64_t>& wanted,
                                                     const std::string& proc) {
  std::unordered_map<uint64_t, Owner> found;
  if (wanted.empty()) return found;
  DIR* pd = opendir(proc.c_str());
  if (!pd) return found;
  while (struct dirent* pe = readdir(pd)) {
    if (!AllDigits(pe->d_name)) continue;
    std::string fd_dir = proc + "/" + pe->d_name + "/fd";
    DIR* fdd = opendir(fd_dir.c_str());
    if (!fdd) continue;  // gone, or not ours to read
    uint32_t pid = static_cast<uint32_t>(strtoul(pe->d_name, nullptr, 10));
    while (struct dirent* fe = readdir(fdd)) {
      if (fe->d_name[0] == '.') continue;
      char target[64];
      std::string link = fd_dir + "/" + fe->d_name;
      ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 8) continue;
      target[n] = '\0';
      if (strncmp(target, "socket:[", 8) != 0) continue;
      uint64_t ino = strtoull(target + 8, nullptr, 10);
      if (!wanted.count(ino) || found.count(ino)) continue;
      Owner o;
      o.pid = pid;
      std::ifstream cf(proc + "/" + pe->d_name + "/comm");
      std::getline(cf, o.comm);
      found.emplace(ino, std::move(o));
    }
    closedir(fdd);
    if (found.size() == wanted.size()) break;
  }
  closedir(pd);
  return found;
}

}  // namespace redtap::saturation

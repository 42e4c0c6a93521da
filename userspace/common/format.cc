// SPDX-License-Identifier: Apache-2.0
#include "userspace/common/format.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>

namespace redtap {

std::string FormatAddress(int family, const uint8_t* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    inet_ntop(AF_INET, addr, buf, sizeof(buf));
    return buf;
  }
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(addr, kMapped, sizeof(kMapped)) == 0) {
    inet_ntop(AF_INET, addr + 12, buf, sizeof(buf));
    return buf;
  }
  inet_ntop(AF_INET6, addr, buf, sizeof(buf));
  return buf;
}

std::string FormatRfc3339Micros(int64_t unix_ns) {
  constexpr int64_t kNsPerSec = 1'000'000'000;
  constexpr int64_t kSecPerDay = 86'400;
  int64_t secs = unix_ns / kNsPerSec;
  int64_t ns = unix_ns % kNsPerSec;
  if (ns < 0) {
    ns += kNsPerSec;
    --secs;
  }
  int64_t days = secs / kSecPerDay;
  int64_t sec_of_day = secs % kSecPerDay;
  if (sec_of_day < 0) {
    sec_of_day += kSecPerDay;
    --days;
  }
  const std::chrono::year_month_day ymd{
      std::chrono::sys_days{std::chrono::days{static_cast<int>(days)}}};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(sec_of_day / 3600),
                static_cast<int>(sec_of_day / 60 % 60), static_cast<int>(sec_of_day % 60),
                static_cast<int>(ns / 1000));
  return buf;
}

void AppendRfc3339Micros(std::string& out, int64_t unix_ns) {
  constexpr int64_t kNsPerSec = 1'000'000'000;
  int64_t secs = unix_ns / kNsPerSec;
  int64_t ns = unix_ns % kNsPerSec;
  if (ns < 0) {
    ns += kNsPerSec;
    --secs;
  }
  thread_local int64_t cached_secs = INT64_MIN;
  thread_local std::string cached_prefix;  // up to and including the '.'
  if (secs != cached_secs) {
    std::string full = FormatRfc3339Micros(secs * kNsPerSec);
    cached_prefix = full.substr(0, full.size() - 7);  // drop "000000Z"
    cached_secs = secs;
  }
  out.append(cached_prefix);
  char us[7];
  int v = static_cast<int>(ns / 1000);
  for (int i = 5; i >= 0; --i) {
    us[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  us[6] = 'Z';
  out.append(us, 7);
}

}  // namespace redtap

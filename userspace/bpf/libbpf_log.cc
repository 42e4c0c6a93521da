// SPDX-License-Identifier: Apache-2.0
#include "userspace/bpf/libbpf_log.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace redtap {
namespace {

bool g_libbpf_quiet = false;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  if (n > 0 && buf[std::min<int>(n, sizeof(buf) - 1) - 1] == '\n')
    buf[std::min<int>(n, sizeof(buf) - 1) - 1] = '\0';
  if (level == LIBBPF_WARN && !g_libbpf_quiet)
    spdlog::warn("libbpf: {}", buf);
  else
    spdlog::debug("libbpf: {}", buf);
  return 0;
}

}  // namespace

void InstallLibbpfLogger(bool quiet) {
  g_libbpf_quiet = quiet;
  libbpf_set_print(LibbpfPrint);
}

}  // namespace redtap

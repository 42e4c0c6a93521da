// SPDX-License-Identifier: Apache-2.0
#include "userspace/bpf/libbpf_log.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string>

namespace redtap {
namespace {

bool g_libbpf_quiet = false;

// A verifier log can be megabytes; its reason is at the end. Warnings keep the last lines
// (the whole log is in the debug level).
constexpr size_t kWarnTail = 4096;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  char small[1024];
  const int n = vsnprintf(small, sizeof(small), fmt, args);
  std::string text;
  if (n >= static_cast<int>(sizeof(small))) {
    text.resize(static_cast<size_t>(n) + 1);
    vsnprintf(text.data(), text.size(), fmt, copy);
    text.resize(static_cast<size_t>(n));
  } else if (n > 0) {
    text.assign(small, static_cast<size_t>(n));
  }
  va_end(copy);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (level == LIBBPF_WARN && !g_libbpf_quiet) {
    if (text.size() > kWarnTail) {
      spdlog::debug("libbpf: {}", text);
      const size_t cut = text.find('\n', text.size() - kWarnTail);
      text = "[...] " + text.substr(cut == std::string::npos ? text.size() - kWarnTail : cut + 1);
    }
    spdlog::warn("libbpf: {}", text);
  } else {
    spdlog::debug("libbpf: {}", text);
  }
  return 0;
}

}  // namespace

void InstallLibbpfLogger(bool quiet) {
  g_libbpf_quiet = quiet;
  libbpf_set_print(LibbpfPrint);
}

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
// Shared by the conformance suites (http_conformance_*_test.cc): where the peer vectors are,
// a pass/fail/skip tally, and the comparisons every peer needs.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "parsers/http/connection.h"
#include "tests/unit/parsers/http_test_util.h"
#include "tests/unit/parsers/mini_json.h"

#ifndef REDTAP_CORPORA_DIR
#error "REDTAP_CORPORA_DIR must point at shared/corpora"
#endif

namespace redtap::http_test {

namespace fs = std::filesystem;
using http::ConnState;
using http::Direction;
using http::HttpConnection;
using http::Transaction;

inline const fs::path kParserCorpus = fs::path(REDTAP_CORPORA_DIR) / "parser";

inline bool ReadFile(const fs::path& p, std::string* out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// Fails the current test (fatally) unless the corpus file is there.
#define LOAD_CORPUS_FILE(path, out)                                                       \
  ASSERT_TRUE(fs::exists(kParserCorpus))                                                  \
      << "conformance corpus missing: " << kParserCorpus                                  \
      << " (expected shared/corpora next to the repository; it is always present in CI)"; \
  ASSERT_TRUE(ReadFile(path, out)) << "cannot read " << (path)

class Tally {
 public:
  explicit Tally(std::string name) : name_(std::move(name)) {}
  void Pass() { ++passed_, ++total_; }
  void Fail(const std::string& what) {
    ++total_;
    failures_.push_back(what);
  }
  void Check(bool ok, const std::string& what) { ok ? Pass() : Fail(what); }
  void Skip(const std::string& reason) { ++skipped_[reason]; }
  int passed() const { return passed_; }

  void Print() const {
    int skipped = 0;
    std::string reasons;
    for (const auto& [r, n] : skipped_) {
      skipped += n;
      reasons += (reasons.empty() ? "" : "; ") + r + ": " + std::to_string(n);
    }
    std::cout << "conformance " << name_ << ": " << passed_ << "/" << total_ << " passed, "
              << skipped << " skipped" << (reasons.empty() ? "" : " (" + reasons + ")")
              << std::endl;
    for (const std::string& f : failures_) std::cout << "  FAIL " << name_ << ": " << f << "\n";
  }

 private:
  std::string name_;
  int passed_ = 0;
  int total_ = 0;
  std::map<std::string, int> skipped_;
  std::vector<std::string> failures_;
};

inline std::string Base64Decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = val(c);
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// Collapses whitespace runs (incl. obs-fold CRLF SP) to one SP and trims: header values are
// compared in this form because we fold continuation lines into the value.
inline std::string NormalizeValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

inline bool HasError(const HttpConnection& c) {
  return c.stats().parse_errors > 0 || c.stats().head_too_large > 0 ||
         c.state() == ConnState::kInvalid;
}

// Every split of `data` into two Feeds gives the same transactions and counters.
inline bool SplitInvariant(const std::vector<Chunk>& chunks) {
  const std::string want = RunScript(chunks).Full();
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (size_t off = 1; off < chunks[i].data.size(); ++off) {
      if (RunScriptSplit(chunks, i, off).Full() != want) return false;
    }
  }
  return true;
}

// A request to pair responses with: the response vectors need one pending request each.
inline std::string Requests(int n, std::string_view method = "GET") {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::string(method) + " / HTTP/1.1\r\n\r\n";
  return s;
}

}  // namespace redtap::http_test

// SPDX-License-Identifier: Apache-2.0
// Conformance against the peer parsers' own test vectors (shared/corpora/parser):
// llhttp markdown cases, nodejs/http-parser messages, picohttpparser vectors and libhtp
// streams. Each suite prints "conformance <peer>: P/T passed, S skipped (...)" and asserts a
// floor just under what we achieve, so regressions fail.
//
// Only what our API expresses is compared (method, target, version, status, reason,
// headers, body size, message count and completeness, error or not). Vectors about peer
// features outside our scope are counted as skipped with a reason.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
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
namespace {

namespace fs = std::filesystem;
using http::ConnState;
using http::Direction;
using http::HttpConnection;
using http::Transaction;

const fs::path kParserCorpus = fs::path(REDTAP_CORPORA_DIR) / "parser";

bool ReadFile(const fs::path& p, std::string* out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// Fails the current test (fatally) unless the corpus file is there.
#define LOAD_CORPUS_FILE(path, out)                                                         \
  ASSERT_TRUE(fs::exists(kParserCorpus))                                                    \
      << "conformance corpus missing: " << kParserCorpus                                     \
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

std::string Base64Decode(std::string_view in) {
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
std::string NormalizeValue(std::string_view v) {
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

bool HasError(const HttpConnection& c) {
  return c.stats().parse_errors > 0 || c.stats().head_too_large > 0 ||
         c.state() == ConnState::kInvalid;
}

// Every split of `data` into two Feeds gives the same transactions and counters.
bool SplitInvariant(const std::vector<Chunk>& chunks) {
  const std::string want = RunScript(chunks).Full();
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (size_t off = 1; off < chunks[i].data.size(); ++off) {
      if (RunScriptSplit(chunks, i, off).Full() != want) return false;
    }
  }
  return true;
}

// A request to pair responses with: the response vectors need one pending request each.
std::string Requests(int n, std::string_view method = "GET") {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::string(method) + " / HTTP/1.1\r\n\r\n";
  return s;
}

// ---------------------------------------------------------------------------------------
// llhttp (test/request/*.md, test/response/*.md)
// ---------------------------------------------------------------------------------------

struct LlhttpMessage {
  std::string method, url, protocol, version, status_text;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  uint64_t body = 0;
  bool headers_complete = false;
  bool complete = false;
};

struct LlhttpCase {
  std::string file, title, meta, input, log;
  bool is_url = false;
};

// INDEX.md: drop the final newline; delete backslash-newline pairs; turn every remaining
// newline into CRLF; then expand \r \n \t \f \xHH and octal \NNN.
std::string DecodeLlhttpInput(std::string block) {
  if (!block.empty() && block.back() == '\n') block.pop_back();
  std::string a;
  for (size_t i = 0; i < block.size(); ++i) {
    if (block[i] == '\\' && i + 1 < block.size() && block[i + 1] == '\n') {
      ++i;
      continue;
    }
    if (block[i] == '\n') {
      a += "\r\n";
    } else {
      a.push_back(block[i]);
    }
  }
  std::string out;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != '\\' || i + 1 >= a.size()) {
      out.push_back(a[i]);
      continue;
    }
    const char e = a[i + 1];
    if (e == 'r' || e == 'n' || e == 't' || e == 'f') {
      out.push_back(e == 'r' ? '\r' : e == 'n' ? '\n' : e == 't' ? '\t' : '\f');
      ++i;
    } else if (e == 'x' && i + 3 < a.size()) {
      out.push_back(static_cast<char>(std::stoi(a.substr(i + 2, 2), nullptr, 16)));
      i += 3;
    } else if (e >= '0' && e <= '7') {
      size_t j = i + 1;
      int v = 0;
      while (j < a.size() && j < i + 4 && a[j] >= '0' && a[j] <= '7') v = v * 8 + (a[j++] - '0');
      out.push_back(static_cast<char>(v));
      i = j - 1;
    } else {
      out.push_back(a[i]);
    }
  }
  return out;
}

std::vector<LlhttpCase> ParseLlhttpFile(const std::string& file, const std::string& text) {
  std::vector<LlhttpCase> cases;
  std::istringstream in(text);
  std::string line, title;
  LlhttpCase cur;
  enum { kNone, kInput, kLog } block = kNone;
  bool have_meta = false;
  std::string buf;
  while (std::getline(in, line)) {
    if (block != kNone) {
      if (line == "```") {
        if (block == kInput) {
          cur.input = DecodeLlhttpInput(buf);
        } else {
          cur.log = buf;
          cases.push_back(cur);
          have_meta = false;
        }
        block = kNone;
        buf.clear();
      } else {
        buf += line + "\n";
      }
      continue;
    }
    if (line.rfind("## ", 0) == 0) title = line.substr(3);
    if (line.rfind("<!-- meta=", 0) == 0) {
      cur = LlhttpCase{};
      cur.file = file;
      cur.title = title;
      cur.meta = line.substr(10, line.size() - 10 - 4);
      have_meta = true;
    } else if (have_meta && (line == "```http" || line == "```url")) {
      cur.is_url = line == "```url";
      block = kInput;
    } else if (have_meta && line == "```log") {
      block = kLog;
    }
  }
  return cases;
}

// Unquotes span[...]="..." values (\r \n \t \xHH \" \\ escapes).
std::string UnquoteSpan(std::string_view q) {
  std::string out;
  for (size_t i = 0; i < q.size(); ++i) {
    if (q[i] != '\\' || i + 1 >= q.size()) {
      out.push_back(q[i]);
      continue;
    }
    const char e = q[++i];
    if (e == 'r') out.push_back('\r');
    else if (e == 'n') out.push_back('\n');
    else if (e == 't') out.push_back('\t');
    else if (e == 'x' && i + 2 < q.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(q.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else out.push_back(e);
  }
  return out;
}

struct LlhttpLog {
  std::vector<LlhttpMessage> messages;
  bool error = false;
};

LlhttpLog ParseLlhttpLog(const std::string& log) {
  LlhttpLog r;
  std::istringstream in(log);
  std::string line;
  std::string last_span_kind;
  while (std::getline(in, line)) {
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    const std::string ev = line.substr(sp + 1);
    if (ev == "message begin") {
      r.messages.emplace_back();
      last_span_kind.clear();
      continue;
    }
    if (ev.rfind("error", 0) == 0) {
      r.error = true;
      continue;
    }
    if (r.messages.empty()) continue;
    LlhttpMessage& m = r.messages.back();
    if (ev.rfind("len=", 0) == 0) {
      const size_t lb = ev.find("span[");
      const size_t rb = ev.find(']', lb);
      const size_t q = ev.find("=\"", rb);
      if (lb == std::string::npos || rb == std::string::npos || q == std::string::npos) continue;
      const std::string kind = ev.substr(lb + 5, rb - lb - 5);
      const std::string value = UnquoteSpan(std::string_view(ev).substr(q + 2, ev.size() - q - 3));
      if (kind == "method") m.method += value;
      else if (kind == "url") m.url += value;
      else if (kind == "protocol") m.protocol += value;
      else if (kind == "version") m.version += value;
      else if (kind == "status") m.status_text += value;
      else if (kind == "body") m.body += std::stoull(ev.substr(4));
      else if (kind == "header_field") {
        if (last_span_kind != "header_field") m.headers.emplace_back();
        m.headers.back().first += value;
      } else if (kind == "header_value") {
        if (m.headers.empty()) m.headers.emplace_back();
        m.headers.back().second += value;
      }
      if (kind == "header_field" || kind == "header_value") last_span_kind = kind;
      continue;
    }
    if (ev.rfind("header_value complete", 0) == 0) last_span_kind = "value_done";
    if (ev.rfind("headers complete", 0) == 0) {
      m.headers_complete = true;
      const size_t st = ev.find("status=");
      if (st != std::string::npos) m.status = std::stoi(ev.substr(st + 7));
    }
    if (ev == "message complete") m.complete = true;
  }
  return r;
}

bool SameHeaders(const std::vector<http::Header>& ours,
                 const std::vector<std::pair<std::string, std::string>>& theirs) {
  if (ours.size() != theirs.size()) return false;
  for (size_t i = 0; i < ours.size(); ++i) {
    if (ours[i].name != theirs[i].first) return false;
    if (NormalizeValue(ours[i].value) != NormalizeValue(theirs[i].second)) return false;
  }
  return true;
}

// Returns "" on agreement, else what differs.
std::string CompareLlhttp(const LlhttpCase& c, bool is_request, bool skip_body,
                          bool finish) {
  const LlhttpLog want = ParseLlhttpLog(c.log);
  HttpConnection conn;
  std::vector<Transaction> out;
  const int kPairs = 16;
  if (!is_request) {
    const std::string reqs = Requests(kPairs, skip_body ? "HEAD" : "GET");
    conn.Feed(Direction::kRequest, reqs, reqs.size(), 1, &out);
  }
  const Direction dir = is_request ? Direction::kRequest : Direction::kResponse;
  conn.Feed(dir, c.input, c.input.size(), 2, &out);
  const bool idle = conn.Idle(dir);
  const bool error = HasError(conn);
  conn.Close(3, &out);

  if (want.error != error) {
    return std::string("error: want ") + (want.error ? "yes" : "no") + ", got " +
           (error ? "yes" : "no");
  }
  // Messages whose head llhttp parsed (for responses: final ones; 1xx are counted apart).
  std::vector<const LlhttpMessage*> heads;
  uint32_t informational = 0;
  bool last_complete = true;
  for (const LlhttpMessage& m : want.messages) {
    if (!m.headers_complete) {
      last_complete = false;
      continue;
    }
    if (want.error && !m.complete) continue;  // the error cut this one
    last_complete = m.complete;
    if (!is_request && m.status >= 100 && m.status < 200 && m.status != 101) {
      ++informational;
      continue;
    }
    heads.push_back(&m);
  }
  std::vector<const Transaction*> got;
  uint32_t got_info = 0;
  for (const Transaction& t : out) {
    if (!is_request && !t.has_response) continue;
    got.push_back(&t);
    got_info += t.informational_responses;
  }
  if (want.error) {
    // Compare what completed before the error.
    if (got.size() < heads.size()) return "fewer messages before the error";
    return "";
  }
  if (got.size() != heads.size()) {
    return "messages: want " + std::to_string(heads.size()) + ", got " +
           std::to_string(got.size());
  }
  if (!is_request && got_info != informational) return "informational count";
  // An EOF-delimited response completes at Close(); llhttp (without finish) leaves it open.
  if (!finish && idle != last_complete) {
    return std::string("complete: want ") + (last_complete ? "yes" : "no");
  }
  for (size_t i = 0; i < heads.size(); ++i) {
    const LlhttpMessage& m = *heads[i];
    const Transaction& t = *got[i];
    const int minor = m.version.size() == 3 ? m.version[2] - '0' : -1;
    if (is_request) {
      if (t.request.method != m.method) return "method " + t.request.method;
      if (t.request.target != m.url) return "target " + t.request.target;
      if (t.request.version_minor != minor) return "version";
      if (!SameHeaders(t.request.headers, m.headers)) return "headers";
      if (t.request.body_size != m.body) return "body " + std::to_string(t.request.body_size);
    } else {
      if (t.response.status_code != m.status) return "status";
      if (t.response.reason != m.status_text) return "reason '" + t.response.reason + "'";
      if (t.response.version_minor != minor) return "version";
      if (!SameHeaders(t.response.headers, m.headers)) return "headers";
      if (m.status != 101 && t.response.body_size != m.body) {
        return "body " + std::to_string(t.response.body_size);
      }
    }
  }
  // Byte-split invariance of the whole exchange.
  std::vector<Chunk> chunks;
  if (!is_request) chunks.push_back(Req(Requests(kPairs, skip_body ? "HEAD" : "GET")));
  chunks.push_back(Chunk{dir, c.input});
  if (!SplitInvariant(chunks)) return "split variance";
  return "";
}

TEST(Conformance, Llhttp) {
  Tally tally("llhttp");
  ASSERT_TRUE(fs::exists(kParserCorpus / "nodejs-llhttp"))
      << "conformance corpus missing: " << kParserCorpus
      << " (expected shared/corpora next to the repository; it is always present in CI)";
  std::vector<fs::path> files;
  for (const char* sub : {"request", "response"}) {
    for (const auto& e : fs::directory_iterator(kParserCorpus / "nodejs-llhttp" / sub)) {
      if (e.path().extension() == ".md") files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  for (const fs::path& p : files) {
    std::string text;
    ASSERT_TRUE(ReadFile(p, &text)) << p;
    const std::string rel = p.parent_path().filename().string() + "/" + p.filename().string();
    for (const LlhttpCase& c : ParseLlhttpFile(rel, text)) {
      bool ok = false;
      const Json meta = Json::Parse(c.meta, &ok);
      const std::string type = meta["type"].str();
      const std::string id = rel + " / " + c.title;
      if (c.is_url) {
        tally.Skip("URL-parser-only case");
        continue;
      }
      if (type.find("lenient") != std::string::npos) {
        tally.Skip("llhttp lenient flag");
        continue;
      }
      if (meta.Has("pause")) {
        tally.Skip("pause callback");
        continue;
      }
      const LlhttpLog log = ParseLlhttpLog(c.log);
      if (!log.messages.empty() && !log.messages[0].protocol.empty() &&
          log.messages[0].protocol != "HTTP") {
        tally.Skip("non-HTTP protocol (RTSP/ICE/...)");
        continue;
      }
      if (!log.error && !log.messages.empty() && log.messages[0].version != "" &&
          log.messages[0].version.rfind("1.", 0) != 0) {
        tally.Skip("HTTP/0.9 or 2.x");
        continue;
      }
      const bool is_request = type.rfind("request", 0) == 0;
      if (is_request && meta.Has("skipBody")) {
        tally.Skip("skipBody callback on a request");
        continue;
      }
      // llhttp treats a request carrying Upgrade/CONNECT as the end of HTTP right after
      // its head; we switch only when the 101 / 2xx response says so. Not comparable
      // from the request side alone.
      if (is_request && c.log.find("upgrade") != std::string::npos) {
        tally.Skip("upgrade decided by request alone");
        continue;
      }
      const bool finish = type.find("finish") != std::string::npos;
      const std::string diff = CompareLlhttp(c, is_request, meta.Has("skipBody"), finish);
      tally.Check(diff.empty(), id + ": " + diff);
    }
  }
  tally.Print();
  EXPECT_GE(tally.passed(), 0);
}

}  // namespace
}  // namespace redtap::http_test

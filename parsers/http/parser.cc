// SPDX-License-Identifier: Apache-2.0
#include "parsers/http/parser.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace redtap::http {
namespace {

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kToken = MakeTokenTable();

inline bool IsToken(char c) { return kToken[static_cast<unsigned char>(c)]; }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
inline bool IsOws(char c) { return c == ' ' || c == '\t'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// field-value bytes: HT, SP, VCHAR, obs-text. Any other control (incl. a bare CR) is invalid.
bool ValidFieldValue(std::string_view v) {
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

// Splits off one line ending in LF (CR before it removed). False when no LF is left.
bool NextLine(std::string_view* rest, std::string_view* line) {
  const size_t lf = rest->find('\n');
  if (lf == std::string_view::npos) return false;
  std::string_view l = rest->substr(0, lf);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  *line = l;
  rest->remove_prefix(lf + 1);
  return true;
}

// Content-Length: 1*DIGIT, or a list of identical values ("5, 5", RFC 9110 §8.6).
bool ParseContentLength(std::string_view v, uint64_t* out) {
  bool have = false;
  uint64_t first = 0;
  while (true) {
    const size_t comma = v.find(',');
    std::string_view item = TrimOws(v.substr(0, comma));
    if (item.empty()) return false;
    uint64_t n = 0;
    for (char c : item) {
      if (!IsDigit(c)) return false;
      const uint64_t d = static_cast<uint64_t>(c - '0');
      // Cap at 2^63 - 1: a larger length cannot be honest and would overflow counters.
      if (n > (INT64_MAX - d) / 10) return false;
      n = n * 10 + d;
    }
    if (have && n != first) return false;
    first = n;
    have = true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  *out = first;
  return true;
}

// Transfer-Encoding: a coding list; records whether "chunked" is the final coding.
void ParseTransferEncoding(std::string_view v, internal::HeadInfo* info) {
  info->has_transfer_encoding = true;
  bool last_chunked = false;
  bool any = false;
  while (true) {
    const size_t comma = v.find(',');
    std::string_view item = TrimOws(v.substr(0, comma));
    // Drop transfer-parameters (";q=..."), keep the coding name.
    const size_t semi = item.find(';');
    if (semi != std::string_view::npos) item = TrimOws(item.substr(0, semi));
    if (!item.empty()) {
      last_chunked = EqualsIgnoreCase(item, "chunked");
      any = true;
    }
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  // A later Transfer-Encoding header line appends to the list (RFC 9110 §5.3).
  if (any) info->chunked = last_chunked;
}

// Parses header lines after the start line, up to and including the empty line.
// Bytes that end or invalidate a field value: LF, and every control other than HT (a CR
// is only valid right before the LF), and DEL.
constexpr std::array<bool, 256> MakeValueStopTable() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = c != '\t';
  t[0x7f] = true;
  return t;
}
constexpr std::array<bool, 256> kValueStop = MakeValueStopTable();

// Parses header lines after the start line, up to and including the empty line, in one
// pass over the bytes.
// `skip_bad_lines` (opt-in leniency): a line that is not a field (no colon after a token
// name), and any fold continuing it, is skipped instead of failing the head.
// `framing_only`: every line is validated the same, but only the fields that frame a body
// (Content-Length, Transfer-Encoding, Expect) are stored.
bool IsFramingField(std::string_view name) {
  const size_t n = name.size();
  return (n == 14 && EqualsIgnoreCase(name, "Content-Length")) ||
         (n == 17 && EqualsIgnoreCase(name, "Transfer-Encoding")) ||
         (n == 6 && EqualsIgnoreCase(name, "Expect"));
}

template <bool framing_only = false>
bool ParseFields(std::string_view rest, std::vector<Header>* headers, size_t line_hint,
                 bool skip_bad_lines = false) {
  if constexpr (!framing_only) headers->reserve(line_hint);
  const char* p = rest.data();
  const char* const end = p + rest.size();
  bool skipping = false;  // the previous line was skipped (skip_bad_lines)
  [[maybe_unused]] bool any_field = false;  // framing_only: a field line was read
  [[maybe_unused]] bool stored = false;     // framing_only: the last field line was stored
  while (p < end) {
    // Empty line: end of the head.
    if (*p == '\n') return p + 1 == end;
    if (*p == '\r') return p + 2 == end && p[1] == '\n';
    const bool fold = *p == ' ' || *p == '\t';
    const char* name_end = p;
    if (!fold) {
      while (name_end < end && kToken[static_cast<unsigned char>(*name_end)]) ++name_end;
    }
    // Includes an empty name and whitespace before the colon (§5.1).
    const bool bad = fold ? ((framing_only ? !any_field : headers->empty()) || skipping)
                          : (name_end == p || name_end == end || *name_end != ':');
    if (bad) {
      if (!skip_bad_lines) return false;
      const void* lf = std::memchr(p, '\n', static_cast<size_t>(end - p));
      if (lf == nullptr) return false;
      p = static_cast<const char*>(lf) + 1;
      skipping = true;
      continue;
    }
    skipping = false;
    const char* v = fold ? p : name_end + 1;
    const char* e = v;
    while (e < end && !kValueStop[static_cast<unsigned char>(*e)]) ++e;
    if (e == end) return false;
    const char* next;
    if (*e == '\n') {
      next = e + 1;
    } else if (*e == '\r' && e + 1 < end && e[1] == '\n') {
      next = e + 2;
    } else {
      return false;  // a control byte or a bare CR in the value
    }
    const std::string_view value = TrimOws(std::string_view(v, static_cast<size_t>(e - v)));
    if (fold) {
      // obs-fold (RFC 9112 §5.2): replace the fold with a single SP.
      if ((!framing_only || stored) && !value.empty()) {
        Header& h = headers->back();
        if (!h.value.empty()) h.value.push_back(' ');
        h.value.append(value);
      }
    } else {
      if constexpr (framing_only) {
        any_field = true;
        stored = IsFramingField(std::string_view(p, static_cast<size_t>(name_end - p)));
      }
      if (!framing_only || stored) {
        Header& h = headers->emplace_back();
        h.name.assign(p, static_cast<size_t>(name_end - p));
        h.value.assign(value);
      }
    }
    p = next;
  }
  return false;  // no empty line
}

// Framing fields, read once the values are complete (after any obs-fold).
bool ReadFramingFields(const std::vector<Header>& headers, internal::HeadInfo* info,
                       bool is_request) {
  for (const Header& h : headers) {
    const size_t n = h.name.size();
    if (n == 14 && EqualsIgnoreCase(h.name, "Content-Length")) {
      uint64_t v = 0;
      if (!ParseContentLength(h.value, &v) ||
          (info->has_content_length && info->content_length != v)) {
        // A response is dropped (RFC 9112 §6.3 rule 5: the client discards it); a request is
        // answered 400 by the server: kept, with no body trusted, so that what follows is
        // parsed as the next request (a smuggled one shows).
        if (!is_request) return false;
        info->invalid_content_length = true;
        continue;
      }
      info->has_content_length = true;
      info->content_length = v;
    } else if (n == 17 && EqualsIgnoreCase(h.name, "Transfer-Encoding")) {
      ParseTransferEncoding(h.value, info);
    } else if (is_request && n == 6 && EqualsIgnoreCase(h.name, "Expect")) {
      info->expect_continue = EqualsIgnoreCase(h.value, "100-continue");
    }
  }
  if (info->invalid_content_length) {
    info->has_content_length = false;
    info->content_length = 0;
  }
  return true;
}

// "HTTP/1.<digit>" at the front of s; returns the minor version or -1. `any_case`: the
// HTTP-name may be in any case ("http/1.1"): case-sensitive per RFC 9112 §2.3, but clients
// accept it in a status line (curl, browsers, Zeek, libhtp).
int ParseVersion(std::string_view s, bool any_case = false) {
  if (s.size() != 8 || !IsDigit(s[7])) return -1;
  const std::string_view name = s.substr(0, 7);
  if (!(any_case ? EqualsIgnoreCase(name, "HTTP/1.") : name == "HTTP/1.")) return -1;
  return s[7] - '0';
}

}  // namespace

std::string_view RequestHost(const Request& r) noexcept {
  std::string_view h = r.Find("Host");
  if (h.empty()) {
    // Absolute-form: scheme://authority/path
    std::string_view t = r.target;
    size_t sep = t.find("://");
    if (sep == std::string_view::npos || t.empty() || t[0] == '/') return {};
    h = t.substr(sep + 3);
    h = h.substr(0, std::min(h.find('/'), h.find('?')));
    if (size_t at = h.rfind('@'); at != std::string_view::npos) h = h.substr(at + 1);
  }
  if (!h.empty() && h.front() == '[') {
    size_t close = h.find(']');
    if (close == std::string_view::npos) return {};
    h = h.substr(1, close - 1);
  } else if (size_t colon = h.find(':'); colon != std::string_view::npos &&
                                         h.find(':', colon + 1) == std::string_view::npos) {
    h = h.substr(0, colon);  // host:port (a single colon; more means a bare IPv6 literal)
  }
  if (h.empty() || h.size() > 253) return {};
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':';
    if (!ok) return {};
  }
  return h;
}

std::string_view Request::Find(std::string_view name) const {
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return {};
}

std::string_view Response::Find(std::string_view name) const {
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return {};
}

namespace internal {

namespace {

// request-line = method SP request-target SP HTTP-version (RFC 9112 §3). Runs of SP
// between the three tokens are tolerated (§3: a recipient MAY split on whitespace).
bool SplitRequestLine(std::string_view line, std::string_view* method_out,
                      std::string_view* target_out, int* minor_out) {
  size_t i = 0;
  while (i < line.size() && IsToken(line[i])) ++i;
  if (i == 0 || i >= line.size() || line[i] != ' ') return false;
  const std::string_view method = line.substr(0, i);
  std::string_view rest = line.substr(i + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  const size_t sp = rest.find(' ');
  if (sp == 0 || sp == std::string_view::npos) return false;  // HTTP/0.9 has no version
  const std::string_view target = rest.substr(0, sp);
  for (char ch : target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) return false;
  }
  rest.remove_prefix(sp);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  const int minor = ParseVersion(rest);
  if (minor < 0) return false;
  *method_out = method;
  *target_out = target;
  *minor_out = minor;
  return true;
}

// Opt-in leniency, tried only when SplitRequestLine failed. `*http09` tells which form.
//   line:   method SP *anything* SP HTTP/1.x: target = the text between, SP-trimmed (may hold
//           spaces or be empty); no control bytes.
//   http09: method SP target, no version (target "/..." with no SP or control).
bool SplitRequestLineLenient(std::string_view line, RequestLeniency lenient,
                             std::string_view* method_out, std::string_view* target_out,
                             int* minor_out, bool* http09) {
  size_t i = 0;
  while (i < line.size() && IsToken(line[i])) ++i;
  if (i == 0 || i >= line.size() || line[i] != ' ') return false;
  std::string_view rest = line.substr(i + 1);
  for (char ch : rest) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return false;
  }
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  const size_t last = rest.rfind(' ');
  const std::string_view last_token = last == std::string_view::npos ? rest : rest.substr(last + 1);
  const int minor = ParseVersion(last_token);
  std::string_view target;
  if (minor >= 0) {
    if (!lenient.line) return false;
    target = last == std::string_view::npos ? std::string_view() : rest.substr(0, last);
    while (!target.empty() && target.front() == ' ') target.remove_prefix(1);
    while (!target.empty() && target.back() == ' ') target.remove_suffix(1);
    *minor_out = minor;
    *http09 = false;
  } else {
    if (!lenient.http09) return false;
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty() || rest.find(' ') != std::string_view::npos) return false;
    // Origin-form only ("/path"): HTTP/0.9 had nothing else, and it keeps line protocols
    // ("HELO host", "MAIL FROM:<a>") from reading as HTTP/0.9.
    if (rest.front() != '/') return false;
    target = rest;
    *minor_out = 9;
    *http09 = true;
  }
  *method_out = line.substr(0, i);
  *target_out = target;
  return true;
}

}  // namespace

bool IsRequestLine(std::string_view line, RequestLeniency lenient) noexcept {
  std::string_view m, t;
  int minor = 0;
  bool h09 = false;
  return SplitRequestLine(line, &m, &t, &minor) ||
         ((lenient.line || lenient.http09) &&
          SplitRequestLineLenient(line, lenient, &m, &t, &minor, &h09));
}

size_t Http09HeadEnd(std::string_view d) noexcept {
  const size_t lf = d.find('\n');
  if (lf == std::string_view::npos) return std::string_view::npos;
  std::string_view line = d.substr(0, lf);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string_view m, t;
  int minor = 0;
  bool h09 = false;
  if (SplitRequestLine(line, &m, &t, &minor)) return std::string_view::npos;
  if (!SplitRequestLineLenient(line, RequestLeniency{false, true}, &m, &t, &minor, &h09) || !h09) {
    return std::string_view::npos;
  }
  return lf + 1;
}

bool ParseRequestHead(std::string_view head, Request* req, HeadInfo* info,
                      size_t line_hint, RequestLeniency lenient) noexcept {
  *info = HeadInfo{};
  std::string_view line;
  if (!NextLine(&head, &line)) return false;
  std::string_view method, target;
  int minor = 0;
  bool http09 = false;
  if (!SplitRequestLine(line, &method, &target, &minor)) {
    if (!(lenient.line || lenient.http09) ||
        !SplitRequestLineLenient(line, lenient, &method, &target, &minor, &http09)) {
      return false;
    }
  }

  req->method.assign(method);
  req->target.assign(target);
  req->version_minor = http09 ? 9 : minor;
  req->http09 = http09;
  req->headers.clear();
  if (http09) {
    // HTTP/0.9: the request is the line alone (an empty line may follow).
    if (!(head.empty() || head == "\n" || head == "\r\n")) return false;
    req->expect_continue = false;
    return true;
  }
  if (!ParseFields(head, &req->headers, line_hint, lenient.line) ||
      !ReadFramingFields(req->headers, info, /*is_request=*/true)) {
    return false;
  }
  req->expect_continue = info->expect_continue;
  return true;
}

namespace {

// RFC 9112 §2.2: a recipient may replace each bare CR (one not followed by LF) with SP.
// Copies `head` into `out` with that done; false (out untouched) when there is none.
bool ReplaceBareCr(std::string_view head, std::string* out) {
  bool any = false;
  for (size_t i = head.find('\r'); i != std::string_view::npos; i = head.find('\r', i + 1)) {
    if (i + 1 < head.size() && head[i + 1] == '\n') continue;
    if (!any) out->assign(head);
    any = true;
    (*out)[i] = ' ';
  }
  return any;
}

bool ParseResponseHeadStrict(std::string_view head, Response* resp, HeadInfo* info,
                             size_t line_hint, bool framing_fields_only) noexcept;

}  // namespace

bool ParseResponseHead(std::string_view head, Response* resp, HeadInfo* info,
                       size_t line_hint, bool framing_fields_only) noexcept {
  if (ParseResponseHeadStrict(head, resp, info, line_hint, framing_fields_only)) return true;
  // Bare CRs in a response head (line ends, inside values) are what clients tolerate
  // (HTTP Evader): retry with them read as SP. Only on the failure path: the common case
  // pays nothing. Requests stay strict (llhttp rejects bare CR in a request head).
  std::string fixed;
  return ReplaceBareCr(head, &fixed) &&
         ParseResponseHeadStrict(fixed, resp, info, line_hint, framing_fields_only);
}

namespace {

bool ParseResponseHeadStrict(std::string_view head, Response* resp, HeadInfo* info,
                             size_t line_hint, bool framing_fields_only) noexcept {
  *info = HeadInfo{};
  std::string_view line;
  if (!NextLine(&head, &line)) return false;
  // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4). Tolerated:
  // a missing SP after the code when there is no reason, runs of spaces between tokens,
  // and an HTTP-name in any case ("http/1.1 200").
  if (line.size() < 12) return false;
  const int minor = ParseVersion(line.substr(0, 8), /*any_case=*/true);
  if (minor < 0 || line[8] != ' ') return false;
  std::string_view rest = line.substr(9);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.size() < 3 || !IsDigit(rest[0]) || !IsDigit(rest[1]) || !IsDigit(rest[2])) {
    return false;
  }
  const int code = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  if (code < 100) return false;
  rest.remove_prefix(3);
  if (!rest.empty()) {
    if (rest.front() != ' ') return false;
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  }
  if (!ValidFieldValue(rest)) return false;

  resp->status_code = code;
  resp->reason.assign(rest);
  resp->version_minor = minor;
  resp->headers.clear();
  return (framing_fields_only ? ParseFields<true>(head, &resp->headers, line_hint)
                              : ParseFields<false>(head, &resp->headers, line_hint)) &&
         ReadFramingFields(resp->headers, info, /*is_request=*/false);
}

}  // namespace

bool IsTokenChar(char c) noexcept { return IsToken(c); }

StartVerdict CheckRequestStart(std::string_view p) noexcept {
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ' ') return i > 0 ? StartVerdict::kYes : StartVerdict::kNo;
    if (!IsToken(p[i])) return StartVerdict::kNo;
  }
  return StartVerdict::kMaybe;
}

StartVerdict CheckResponseStart(std::string_view p) noexcept {
  constexpr std::string_view kPrefix = "HTTP/1.";
  const size_t n = std::min(p.size(), kPrefix.size());
  if (!EqualsIgnoreCase(p.substr(0, n), kPrefix.substr(0, n))) return StartVerdict::kNo;
  if (p.size() <= kPrefix.size()) return StartVerdict::kMaybe;
  return IsDigit(p[kPrefix.size()]) ? StartVerdict::kYes : StartVerdict::kNo;
}

namespace {

// Index just past the empty line ending a head in p[0, n), scanning LFs from `from`, or npos.
// `*lines` counts the LFs seen (a hint for reserving the header vector).
size_t FindHeadEnd(const char* p, size_t n, size_t from, size_t* lines) {
  size_t i = from;
  while (i < n) {
    const void* hit = std::memchr(p + i, '\n', n - i);
    if (hit == nullptr) return std::string_view::npos;
    i = static_cast<size_t>(static_cast<const char*>(hit) - p);
    ++*lines;
    if (i + 1 < n && p[i + 1] == '\n') return i + 2;
    if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
    ++i;
  }
  return std::string_view::npos;
}

}  // namespace

MessageParser::MessageParser(Kind kind, size_t max_head_bytes, RequestLeniency lenient,
                             bool framing_fields_only) noexcept
    : kind_(kind),
      max_head_bytes_(max_head_bytes),
      lenient_(lenient),
      framing_fields_only_(framing_fields_only) {}

bool MessageParser::InBody() const noexcept {
  return state_ != State::kStart && state_ != State::kHead && state_ != State::kHeadParsed &&
         state_ != State::kDone;
}

StartVerdict MessageParser::CheckStart(std::string_view prefix) const noexcept {
  return kind_ == Kind::kRequest ? CheckRequestStart(prefix) : CheckResponseStart(prefix);
}

void MessageParser::NextMessage() noexcept {
  state_ = State::kStart;
  mode_ = BodyMode::kNone;
  head_buf_.clear();
  // Do not keep a large buffer around on an idle connection.
  if (head_buf_.capacity() > 4096) std::string().swap(head_buf_);
  remaining_ = 0;
  chunk_digits_ = 0;
  framing_bytes_ = 0;
  head_size_ = 0;
  body_size_ = 0;
  body_keep_ = 0;
  body_prefix_.clear();
  if (body_prefix_.capacity() > 4096) std::string().swap(body_prefix_);
}

void MessageParser::KeepBodyBytes(const char* p, size_t n) noexcept {
  if (body_keep_ == 0 || n == 0) return;
  const size_t k = std::min(n, body_keep_);
  body_prefix_.append(p, k);  // bounded by the policy; small
  body_keep_ -= k;
}

void MessageParser::StartBody(BodyMode mode, uint64_t length) noexcept {
  mode_ = mode;
  body_size_ = 0;
  remaining_ = 0;
  switch (mode) {
    case BodyMode::kNone:
      state_ = State::kDone;
      break;
    case BodyMode::kLength:
      remaining_ = length;
      state_ = length == 0 ? State::kDone : State::kLength;
      break;
    case BodyMode::kChunked:
      chunk_digits_ = 0;
      state_ = State::kChunkSize;
      break;
    case BodyMode::kEof:
      state_ = State::kEof;
      break;
  }
}

MessageParser::Event MessageParser::Step(std::string_view* data, uint64_t ts) noexcept {
  switch (state_) {
    case State::kStart: {
      // RFC 9112 §2.2: empty lines before a request-line (and, in practice, a status-line)
      // are ignored.
      size_t i = 0;
      while (i < data->size() && ((*data)[i] == '\r' || (*data)[i] == '\n')) ++i;
      data->remove_prefix(i);
      if (data->empty()) return Event::kNeedMore;
      first_ts_ = ts;
      start_confirmed_ = false;
      state_ = State::kHead;
      return StepHead(data, ts);
    }
    case State::kHead:
      return StepHead(data, ts);
    case State::kHeadParsed:
    case State::kDone:
      return Event::kBodyDone;
    case State::kLength: {
      const uint64_t n = std::min<uint64_t>(remaining_, data->size());
      KeepBodyBytes(data->data(), static_cast<size_t>(n));
      data->remove_prefix(n);
      remaining_ -= n;
      body_size_ += n;
      if (n > 0) last_ts_ = ts;
      if (remaining_ == 0) {
        state_ = State::kDone;
        return Event::kBodyDone;
      }
      return Event::kNeedMore;
    }
    case State::kEof:
      if (!data->empty()) last_ts_ = ts;
      KeepBodyBytes(data->data(), data->size());
      body_size_ += data->size();
      data->remove_prefix(data->size());
      return Event::kNeedMore;
    default:
      return StepChunked(data, ts);
  }
}

MessageParser::Event MessageParser::StepHead(std::string_view* data, uint64_t ts) noexcept {
  if (head_buf_.empty()) {
    // Fast path: the whole head is in this chunk; parse it in place.
    const std::string_view d = *data;
    const size_t limit = std::min(d.size(), max_head_bytes_);
    if (kind_ == Kind::kRequest && lenient_.http09) {
      // An HTTP/0.9 request is its line alone: no empty line ends it.
      const size_t e = Http09HeadEnd(d.substr(0, limit));
      if (e != std::string_view::npos) {
        data->remove_prefix(e);
        return FinishHead(d.substr(0, e), ts, 1);
      }
    }
    size_t lines = 0;
    const size_t end = FindHeadEnd(d.data(), limit, 0, &lines);
    if (end != std::string_view::npos) {
      data->remove_prefix(end);
      return FinishHead(d.substr(0, end), ts, lines);
    }
    if (!start_confirmed_) {
      const StartVerdict v = CheckStart(d);
      if (v == StartVerdict::kNo) return Event::kGarbage;
      start_confirmed_ = v == StartVerdict::kYes;
    }
    if (d.size() >= max_head_bytes_) return Event::kTooLarge;
    head_buf_.reserve(std::min<size_t>(max_head_bytes_, std::max<size_t>(2 * d.size(), 256)));
    head_buf_.assign(d);
    data->remove_prefix(d.size());
    return Event::kNeedMore;
  }
  const size_t old = head_buf_.size();
  const size_t take = std::min(data->size(), max_head_bytes_ - std::min(old, max_head_bytes_));
  head_buf_.append(data->substr(0, take));
  if (kind_ == Kind::kRequest && lenient_.http09) {
    const size_t e = Http09HeadEnd(head_buf_);
    if (e != std::string_view::npos && e > old) {
      data->remove_prefix(e - old);
      head_buf_.resize(e);
      const Event ev = FinishHead(head_buf_, ts, 1);
      head_buf_.clear();
      return ev;
    }
  }
  size_t lines = 0;
  const size_t end =
      FindHeadEnd(head_buf_.data(), head_buf_.size(), old >= 3 ? old - 3 : 0, &lines);
  if (end != std::string_view::npos) {
    data->remove_prefix(end - old);
    head_buf_.resize(end);
    lines = static_cast<size_t>(std::count(head_buf_.begin(), head_buf_.end(), '\n'));
    const Event ev = FinishHead(head_buf_, ts, lines);
    head_buf_.clear();
    return ev;
  }
  if (!start_confirmed_) {
    const StartVerdict v = CheckStart(head_buf_);
    if (v == StartVerdict::kNo) return Event::kGarbage;
    start_confirmed_ = v == StartVerdict::kYes;
  }
  if (head_buf_.size() >= max_head_bytes_) return Event::kTooLarge;
  data->remove_prefix(take);
  return Event::kNeedMore;
}

MessageParser::Event MessageParser::FinishHead(std::string_view head, uint64_t ts,
                                               size_t lines) noexcept {
  // Lines minus the start line and the empty line: the number of header lines.
  const size_t hint = lines > 2 ? lines - 2 : 0;
  const bool ok = kind_ == Kind::kRequest ? ParseRequestHead(head, &request_, &info_, hint, lenient_)
                                          : ParseResponseHead(head, &response_, &info_, hint,
                                                              framing_fields_only_);
  if (!ok) {
    return CheckStart(head) == StartVerdict::kNo ? Event::kGarbage : Event::kBadHead;
  }
  head_size_ = head.size();
  body_size_ = 0;
  last_ts_ = ts;
  state_ = State::kHeadParsed;
  return Event::kHeadDone;
}

MessageParser::Event MessageParser::StepChunked(std::string_view* data, uint64_t ts) noexcept {
  const char* p = data->data();
  const char* const end = p + data->size();
  if (p != end) last_ts_ = ts;
  Event ev = Event::kNeedMore;
  while (p != end) {
    const char c = *p;
    switch (state_) {
      case State::kChunkSize: {
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        if (v >= 0) {
          // Sizes above 2^63 are hostile (and would overflow); leading zeros are fine.
          if (remaining_ > (uint64_t{1} << 59)) {
            ev = Event::kBadBody;
            goto out;
          }
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++chunk_digits_;
          ++p;
          continue;
        }
        if (chunk_digits_ == 0) {
          ev = Event::kBadBody;
          goto out;
        }
        ++p;
        if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kChunkExt;
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (c == '\n') {
          chunk_digits_ = 0;
          state_ = remaining_ == 0 ? State::kTrailerStart : State::kChunkData;
        } else {
          ev = Event::kBadBody;
          goto out;
        }
        break;
      }
      case State::kChunkExt: {
        const auto u = static_cast<unsigned char>(c);
        ++p;
        if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (c == '\n') {
          chunk_digits_ = 0;
          state_ = remaining_ == 0 ? State::kTrailerStart : State::kChunkData;
        } else if ((u < 0x20 && c != '\t') || u == 0x7f || ++framing_bytes_ > max_head_bytes_) {
          ev = Event::kBadBody;
          goto out;
        }
        break;
      }
      case State::kChunkSizeLf:
        if (c != '\n') {
          ev = Event::kBadBody;
          goto out;
        }
        ++p;
        chunk_digits_ = 0;
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kChunkData;
        break;
      case State::kChunkData: {
        const uint64_t n = std::min<uint64_t>(remaining_, static_cast<uint64_t>(end - p));
        KeepBodyBytes(p, static_cast<size_t>(n));
        p += n;
        remaining_ -= n;
        body_size_ += n;
        if (remaining_ == 0) state_ = State::kChunkDataCr;
        break;
      }
      case State::kChunkDataCr:
        ++p;
        if (c == '\r') {
          state_ = State::kChunkDataLf;
        } else if (c == '\n') {
          state_ = State::kChunkSize;
        } else {
          ev = Event::kBadBody;
          goto out;
        }
        break;
      case State::kChunkDataLf:
        ++p;
        if (c != '\n') {
          ev = Event::kBadBody;
          goto out;
        }
        state_ = State::kChunkSize;
        break;
      case State::kTrailerStart:
        ++p;
        if (c == '\r') {
          state_ = State::kTrailerEndLf;
        } else if (c == '\n') {
          state_ = State::kDone;
          ev = Event::kBodyDone;
          goto out;
        } else if (!IsToken(c) || ++framing_bytes_ > max_head_bytes_) {
          ev = Event::kBadBody;
          goto out;
        } else {
          state_ = State::kTrailerLine;
        }
        break;
      case State::kTrailerLine: {
        const void* lf = std::memchr(p, '\n', static_cast<size_t>(end - p));
        const size_t n = lf ? static_cast<size_t>(static_cast<const char*>(lf) - p) + 1
                            : static_cast<size_t>(end - p);
        framing_bytes_ += n;
        if (framing_bytes_ > max_head_bytes_) {
          ev = Event::kBadBody;
          goto out;
        }
        p += n;
        if (lf) state_ = State::kTrailerStart;
        break;
      }
      case State::kTrailerEndLf:
        ++p;
        if (c != '\n') {
          ev = Event::kBadBody;
          goto out;
        }
        state_ = State::kDone;
        ev = Event::kBodyDone;
        goto out;
      default:
        goto out;
    }
  }
out:
  data->remove_prefix(static_cast<size_t>(p - data->data()));
  return ev;
}

MessageParser::SkipResult MessageParser::SkipUncaptured(uint64_t n, uint64_t ts) noexcept {
  SkipResult r;
  switch (state_) {
    case State::kLength:
      r.absorbed = std::min(n, remaining_);
      remaining_ -= r.absorbed;
      if (remaining_ == 0) {
        state_ = State::kDone;
        r.completed = true;
      }
      break;
    case State::kChunkData:
      r.absorbed = std::min(n, remaining_);
      remaining_ -= r.absorbed;
      if (remaining_ == 0) state_ = State::kChunkDataCr;
      break;
    case State::kEof:
      r.absorbed = n;
      break;
    default:
      return r;
  }
  body_size_ += r.absorbed;
  if (r.absorbed > 0) {
    last_ts_ = ts;
    body_keep_ = 0;  // a hole: the prefix ends at the last captured byte
  }
  return r;
}

}  // namespace internal
}  // namespace redtap::http

// SPDX-License-Identifier: Apache-2.0
// Heads: request and status lines, header fields, framing fields (RFC 9110/9112), and the
// checks of whether bytes start a message. MessageParser (parser.cc) cuts a byte stream into
// heads and bodies and calls these.
#include "parsers/http/parser.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace redtap::http {
namespace {

using internal::IsDigit;
inline bool IsToken(char c) { return internal::IsTokenChar(c); }
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

// The first byte in [p, end) that kValueStop marks, or end. Eight bytes at a time while none
// is a control (< 0x20, HT included: the byte loop decides it) or DEL (SWAR: a borrow can
// only mark bytes after a real match, so "any" is exact).
const char* SkipValueBytes(const char* p, const char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  while (end - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    const uint64_t ctl = (w - kOnes * 0x20) & ~w;
    const uint64_t del = w ^ (kOnes * 0x7f);
    if ((ctl | ((del - kOnes) & ~del)) & kHigh) break;
    p += 8;
  }
  while (p < end && !kValueStop[static_cast<unsigned char>(*p)]) ++p;
  return p;
}

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
  bool skipping = false;                    // the previous line was skipped (skip_bad_lines)
  [[maybe_unused]] bool any_field = false;  // framing_only: a field line was read
  [[maybe_unused]] bool stored = false;     // framing_only: the last field line was stored
  while (p < end) {
    // Empty line: end of the head.
    if (*p == '\n') return p + 1 == end;
    if (*p == '\r') return p + 2 == end && p[1] == '\n';
    const bool fold = *p == ' ' || *p == '\t';
    const char* name_end = p;
    if (!fold) {
      while (name_end < end && IsToken(*name_end)) ++name_end;
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
    e = SkipValueBytes(e, end);
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
  } else if (size_t colon = h.find(':');
             colon != std::string_view::npos && h.find(':', colon + 1) == std::string_view::npos) {
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

bool ParseRequestHead(std::string_view head, Request* req, HeadInfo* info, size_t line_hint,
                      RequestLeniency lenient) noexcept {
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

bool ParseResponseHead(std::string_view head, Response* resp, HeadInfo* info, size_t line_hint,
                       bool framing_fields_only) noexcept {
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

}  // namespace internal
}  // namespace redtap::http

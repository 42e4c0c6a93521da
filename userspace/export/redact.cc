// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/redact.h"

#include <cstddef>
#include <utility>

namespace redtap::exporter {
namespace {

constexpr size_t kMinCardDigits = 13;
constexpr size_t kMaxCardDigits = 19;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Length of the separator allowed between two digits of a card number at text[pos]
/// (' ', '-', '+', "%20", "%2D"), or 0.
size_t SeparatorAt(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  const char c = text[pos];
  if (c == ' ' || c == '-' || c == '+') return 1;
  if (c == '%' && pos + 2 < text.size() && text[pos + 1] == '2' &&
      (text[pos + 2] == '0' || text[pos + 2] == 'd' || text[pos + 2] == 'D')) {
    return 3;
  }
  return 0;
}

/// A maximal sequence of digits inside a run: text[begin, end).
struct Group {
  size_t begin;
  size_t end;
};

}  // namespace

bool LuhnValid(std::string_view digits) {
  if (digits.empty()) return false;
  unsigned sum = 0;
  bool twice = false;
  for (size_t i = digits.size(); i-- > 0;) {
    unsigned d = static_cast<unsigned>(digits[i] - '0');
    if (d > 9) return false;
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

// A "run" is digit groups joined by single separators ("4111 1111-1111%201111"). Within a
// run, every window of whole consecutive groups holding 13..19 digits is a candidate; from
// each starting group the longest Luhn-valid window is masked. A group is at least one digit,
// so each start has at most 19 candidate windows of at most 19 digits: linear time.
namespace {

// One masking pass. Not idempotent: the last four digits it keeps can join the digits that
// follow into a new card-like run ("4111...1111-0000-0000-0000-0000"), so MaskCardNumbers
// repeats it.
std::string MaskCardNumbersOnce(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;  // text[0, copied) is already in `out`
  std::vector<Group> groups;
  std::string digits;
  size_t pos = 0;
  while (pos < text.size()) {
    if (!IsDigit(text[pos])) {
      ++pos;
      continue;
    }
    // Collect the run starting here.
    groups.clear();
    for (;;) {
      const size_t begin = pos;
      while (pos < text.size() && IsDigit(text[pos])) ++pos;
      groups.push_back({begin, pos});
      const size_t sep = SeparatorAt(text, pos);
      if (sep == 0 || pos + sep >= text.size() || !IsDigit(text[pos + sep])) break;
      pos += sep;
    }
    // Mask the card numbers inside the run.
    for (size_t i = 0; i < groups.size();) {
      size_t best = groups.size();  // index of the last group of the best window
      size_t count = 0;
      digits.clear();
      for (size_t j = i; j < groups.size(); ++j) {
        count += groups[j].end - groups[j].begin;
        if (count > kMaxCardDigits) break;
        digits.append(text.substr(groups[j].begin, groups[j].end - groups[j].begin));
        if (count >= kMinCardDigits && LuhnValid(digits)) best = j;
      }
      if (best == groups.size()) {
        ++i;
        continue;
      }
      // Recompute the last four digits of the chosen window (it may be shorter than `digits`).
      std::string last4;
      for (size_t j = best + 1; j-- > i && last4.size() < 4;) {
        for (size_t k = groups[j].end; k-- > groups[j].begin && last4.size() < 4;) {
          last4.insert(last4.begin(), text[k]);
        }
      }
      out.append(text.substr(copied, groups[i].begin - copied));
      out.append("****");
      out.append(last4);
      copied = groups[best].end;
      i = best + 1;
    }
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace

std::string MaskCardNumbers(std::string_view text) {
  std::string out = MaskCardNumbersOnce(text);
  // Each pass that changes something replaces >= 13 digits with 4: this ends. Found by
  // fuzz_redact_route ("0-00-00000-0000-000-00000-0000-00-0": ****0000 + "-00000-...").
  for (std::string next = MaskCardNumbersOnce(out); next != out; next = MaskCardNumbersOnce(out)) {
    out = std::move(next);
  }
  return out;
}

Redactor::Redactor(const config::RedactionConfig& config) {
  for (const std::string& key : config.query_keys) {
    if (key.empty()) continue;  // would match everything; the config loader rejects it
    std::string lower;
    lower.reserve(key.size());
    for (char c : key) lower.push_back(ToLower(c));
    keys_.push_back(std::move(lower));
  }
}

bool Redactor::IsSecretKey(std::string_view raw_key) const {
  std::string key;
  key.reserve(raw_key.size());
  for (size_t i = 0; i < raw_key.size(); ++i) {
    char c = raw_key[i];
    if (c == '%' && i + 2 < raw_key.size() && HexValue(raw_key[i + 1]) >= 0 &&
        HexValue(raw_key[i + 2]) >= 0) {
      c = static_cast<char>(HexValue(raw_key[i + 1]) * 16 + HexValue(raw_key[i + 2]));
      i += 2;
    } else if (c == '+') {
      c = ' ';
    }
    key.push_back(ToLower(c));
  }
  for (const std::string& k : keys_) {
    if (key.find(k) != std::string::npos) return true;
  }
  return false;
}

std::string Redactor::RedactQuery(std::string_view query) const {
  std::string out;
  out.reserve(query.size());
  size_t pos = 0;
  for (;;) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    const std::string_view param = query.substr(pos, amp - pos);
    const size_t eq = param.find('=');
    if (eq != std::string_view::npos && IsSecretKey(param.substr(0, eq))) {
      out.append(param.substr(0, eq + 1));
      out.append(kRedacted);
    } else {
      out.append(param);
    }
    if (amp == query.size()) break;
    out.push_back('&');
    pos = amp + 1;
  }
  return MaskCardNumbers(out);
}

namespace {

/// An e-mail address in a raw path segment: "x@y" with something on both sides ('@' or %40).
bool SegmentHasEmail(std::string_view seg) {
  for (size_t i = 0; i < seg.size(); ++i) {
    size_t after = 0;
    if (seg[i] == '@') {
      after = i + 1;
    } else if (seg[i] == '%' && i + 2 < seg.size() && seg[i + 1] == '4' && seg[i + 2] == '0') {
      after = i + 3;
    } else {
      continue;
    }
    if (i > 0 && after < seg.size()) return true;
  }
  return false;
}

constexpr std::string_view kBuiltinSecrets[] = {"cvv",   "cvc",    "pin",     "password",
                                                "token", "secret", "api_key", "apikey"};

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLower(a[i]) != ToLower(b[i])) return false;
  }
  return true;
}

size_t CountDigits(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += IsDigit(c);
  return n;
}

}  // namespace

std::string Redactor::RedactPath(std::string_view path) const {
  std::string masked = MaskCardNumbers(path);
  if (masked.find('@') == std::string::npos && masked.find("%40") == std::string::npos) {
    return masked;
  }
  std::string out;
  out.reserve(masked.size());
  size_t pos = 0;
  while (pos <= masked.size()) {
    size_t slash = masked.find('/', pos);
    if (slash == std::string::npos) slash = masked.size();
    const std::string_view seg = std::string_view(masked).substr(pos, slash - pos);
    out.append(SegmentHasEmail(seg) ? std::string_view("{email}") : seg);
    if (slash == masked.size()) break;
    out.push_back('/');
    pos = slash + 1;
  }
  return out;
}

std::string Redactor::RedactValue(std::string_view value) const { return MaskCardNumbers(value); }

bool Redactor::IsSecretName(std::string_view name) const {
  for (std::string_view s : kBuiltinSecrets) {
    if (EqualsNoCase(name, s)) return true;
  }
  return IsSecretKey(name);
}

bool HasCardNumber(std::string_view text) {
  if (CountDigits(text) < kMinCardDigits) return false;
  return MaskCardNumbers(text) != text;
}

bool IsNeverExportedHeader(std::string_view name) {
  return EqualsNoCase(name, "authorization") || EqualsNoCase(name, "proxy-authorization") ||
         EqualsNoCase(name, "cookie") || EqualsNoCase(name, "set-cookie") ||
         EqualsNoCase(name, "x-api-key");
}

bool HeadersNeedRedaction(const http::Request& r) {
  for (const http::Header& h : r.headers) {
    if (!IsNeverExportedHeader(h.name) && HasCardNumber(h.value)) return true;
  }
  return false;
}

bool RedactRequestHeaders(http::Request* r) {
  bool changed = false;
  for (http::Header& h : r->headers) {
    if (IsNeverExportedHeader(h.name)) {
      if (!h.value.empty()) {
        h.value.clear();
        changed = true;
      }
    } else if (HasCardNumber(h.value)) {
      h.value = MaskCardNumbers(h.value);
      changed = true;
    }
  }
  return changed;
}

}  // namespace redtap::exporter

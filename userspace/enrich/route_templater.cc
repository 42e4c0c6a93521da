// SPDX-License-Identifier: Apache-2.0
#include "userspace/enrich/route_templater.h"

#include <array>

#include "userspace/export/redact.h"

namespace redtap::enrich {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (IsUpper(c)) c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

int TwoDigits(std::string_view s, size_t at) { return (s[at] - '0') * 10 + (s[at + 1] - '0'); }

/// 2024-01-31, optionally followed by a time ("T10:00:00Z", "T10:00:00.123+02:00").
bool IsDate(std::string_view s) {
  if (s.size() < 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!IsDigit(s[i])) return false;
  }
  const int month = TwoDigits(s, 5);
  const int day = TwoDigits(s, 8);
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  if (s.size() == 10) return true;
  if (s[10] != 'T' && s[10] != 't' && s[10] != '_') return false;
  for (char c : s.substr(11)) {
    if (!IsDigit(c) && c != ':' && c != '.' && c != 'Z' && c != 'z' && c != '+' && c != '-' &&
        c != '%') {
      return false;
    }
  }
  return true;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!IsHex(s[i])) {
      return false;
    }
  }
  return true;
}

/// Long hex strings (hashes, object ids): >= 16 hex chars, or >= 8 mixing digits and letters.
bool IsHexId(std::string_view s) {
  if (s.size() < 8) return false;
  bool digit = false;
  bool letter = false;
  for (char c : s) {
    if (!IsHex(c)) return false;
    (IsDigit(c) ? digit : letter) = true;
  }
  return s.size() >= 16 || (digit && letter);
}

/// Random-looking base64 / base64url / base36 strings of >= 16 characters. Words in
/// camelCase, snake_case or kebab-case rarely have adjacent upper-case letters or
/// letter/digit boundaries; random strings have many: we count those "noise pairs".
bool IsToken(std::string_view s) {
  if (s.size() < 16) return false;
  size_t noise = 0;
  size_t letters = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = IsLower(c) || IsUpper(c);
    if (!alpha && !IsDigit(c) && c != '-' && c != '_' && c != '+' && c != '=' && c != '~') {
      return false;
    }
    letters += alpha;
    if (i == 0) continue;
    const char p = s[i - 1];
    const bool p_alpha = IsLower(p) || IsUpper(p);
    if ((IsUpper(p) && IsUpper(c)) || (p_alpha && IsDigit(c)) || (IsDigit(p) && alpha)) ++noise;
  }
  const size_t needed = s.size() / 8 > 3 ? s.size() / 8 : 3;
  return letters > 0 && noise >= needed;
}

/// Longest run of consecutive ASCII digits and the total digit count.
void DigitRuns(std::string_view s, size_t* longest, size_t* total) {
  size_t run = 0;
  *longest = *total = 0;
  for (char c : s) {
    if (IsDigit(c)) {
      ++run;
      ++*total;
      if (run > *longest) *longest = run;
    } else {
      run = 0;
    }
  }
}

bool HasEmail(std::string_view s) {
  size_t at = s.find('@');
  size_t after = at + 1;
  if (at == std::string_view::npos) {
    // Percent-encoded '@'.
    for (size_t i = 0; i + 2 < s.size(); ++i) {
      if (s[i] == '%' && s[i + 1] == '4' && s[i + 2] == '0') {
        at = i;
        after = i + 3;
        break;
      }
    }
  }
  return at != std::string_view::npos && at > 0 && after < s.size();
}

/// The segment classes that may replace one dot-separated part of a segment
/// ("app.3f2a9c1b7d.js" -> "app.{hex}.js").
SegmentClass ClassifyPart(std::string_view part) {
  if (IsDate(part)) return SegmentClass::kDate;
  if (IsUuid(part)) return SegmentClass::kUuid;
  if (IsHexId(part)) return SegmentClass::kHex;
  if (IsToken(part)) return SegmentClass::kToken;
  return SegmentClass::kLiteral;
}

void AppendLiteral(std::string_view s, std::string* out) {
  static constexpr char kHexDigits[] = "0123456789ABCDEF";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) {
      out->push_back('%');
      out->push_back(kHexDigits[c >> 4]);
      out->push_back(kHexDigits[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
}

void AppendSegmentText(std::string_view seg, bool auto_template, std::string* out) {
  const SegmentClass c = ClassifySegment(seg, auto_template);
  if (c != SegmentClass::kLiteral) {
    out->append(Placeholder(c));
    return;
  }
  if (!auto_template || seg.find('.') == std::string_view::npos) {
    AppendLiteral(seg, out);
    return;
  }
  // Dotted segment: template each part on its own. "12345.jpg" -> "{id}.jpg" (a number
  // followed by one short alphabetic extension); "hello.world", "v1.2.3" stay.
  const size_t first_dot = seg.find('.');
  const std::string_view head = seg.substr(0, first_dot);
  const std::string_view ext = seg.substr(first_dot + 1);
  if (AllDigits(head) && !ext.empty() && ext.size() <= 5 &&
      ext.find('.') == std::string_view::npos) {
    bool alpha = true;
    for (char e : ext) alpha = alpha && (IsLower(e) || IsUpper(e));
    if (alpha) {
      out->append(Placeholder(SegmentClass::kId));
      out->push_back('.');
      out->append(ext);
      return;
    }
  }
  size_t pos = 0;
  while (pos <= seg.size()) {
    size_t end = seg.find('.', pos);
    if (end == std::string_view::npos) end = seg.size();
    const std::string_view part = seg.substr(pos, end - pos);
    const SegmentClass pc = ClassifyPart(part);
    if (pc == SegmentClass::kLiteral) {
      AppendLiteral(part, out);
    } else {
      out->append(Placeholder(pc));
    }
    if (end < seg.size()) out->push_back('.');
    pos = end + 1;
  }
}

// The segment as it is written into the route, checked once more as written: escaping
// can join digits a raw byte kept apart ("1111\xCA 1111" -> "1111%CA%201111", whose
// "%20" digits the card scan reads), found by fuzz_redact_route.
void AppendSegment(std::string_view seg, bool auto_template, std::string* out) {
  const size_t start = out->size();
  AppendSegmentText(seg, auto_template, out);
  bool card = true;
  try {
    card = exporter::HasCardNumber(std::string_view(*out).substr(start));
  } catch (...) {  // out of memory: be safe
  }
  if (card) {
    out->resize(start);
    out->append(Placeholder(SegmentClass::kCard));
  }
}

bool IsParamSegment(std::string_view seg) {
  return seg.size() >= 3 && seg.front() == '{' && seg.back() == '}';
}

}  // namespace

std::string_view Placeholder(SegmentClass c) noexcept {
  switch (c) {
    case SegmentClass::kLiteral:
      return "";
    case SegmentClass::kId:
      return "{id}";
    case SegmentClass::kUuid:
      return "{uuid}";
    case SegmentClass::kHex:
      return "{hex}";
    case SegmentClass::kToken:
      return "{token}";
    case SegmentClass::kDate:
      return "{date}";
    case SegmentClass::kEmail:
      return "{email}";
    case SegmentClass::kCard:
      return "{card}";
  }
  return "";
}

SegmentClass ClassifySegment(std::string_view seg, bool auto_template) noexcept {
  if (seg.empty()) return SegmentClass::kLiteral;
  // Fast path for the common case, a short word: without digits or '@' (plain or %40), a
  // segment under 16 characters cannot be in any class.
  if (seg.size() < 16) {
    bool plain = true;
    for (char c : seg) {
      if (IsDigit(c) || c == '@') {
        plain = false;
        break;
      }
    }
    if (plain) return SegmentClass::kLiteral;
  }
  // Privacy classes first: they apply even with auto_template off.
  if (HasEmail(seg)) return SegmentClass::kEmail;
  size_t longest = 0;
  size_t total = 0;
  DigitRuns(seg, &longest, &total);
  if (total >= 13) {
    if (AllDigits(seg) && seg.size() <= 19 && exporter::LuhnValid(seg)) return SegmentClass::kCard;
    // Card numbers written with separators or inside a longer segment. MaskCardNumbers
    // allocates, but only segments with >= 13 digits get here.
    try {
      if (exporter::MaskCardNumbers(seg) != seg) return SegmentClass::kCard;
    } catch (...) {
      return SegmentClass::kCard;  // out of memory: be safe
    }
  }
  if (AllDigits(seg)) {
    if (auto_template || seg.size() >= 9) return SegmentClass::kId;
    return SegmentClass::kLiteral;
  }
  if (!auto_template) return longest >= 9 ? SegmentClass::kId : SegmentClass::kLiteral;
  if (IsDate(seg)) return SegmentClass::kDate;
  if (IsUuid(seg)) return SegmentClass::kUuid;
  if (IsHexId(seg)) return SegmentClass::kHex;
  if (IsToken(seg)) return SegmentClass::kToken;
  if (longest >= 9) return SegmentClass::kId;
  return SegmentClass::kLiteral;
}

RouteTemplater::RouteTemplater(const config::RoutesConfig& config)
    : auto_template_(config.auto_template) {
  // Service-specific patterns first, then the global ones, each in config order.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& rp : config.patterns) {
      if ((pass == 0) == rp.service.empty()) continue;
      const std::string_view text = rp.pattern;
      if (text.empty() || text[0] != '/') continue;
      Pattern p;
      p.service = rp.service;
      p.text = rp.pattern;
      std::string_view rest = text.substr(1);
      bool valid = true;
      while (true) {
        const size_t slash = rest.find('/');
        const std::string_view seg = rest.substr(0, slash);
        const bool last = slash == std::string_view::npos;
        if (seg == "*" ||
            (IsParamSegment(seg) && seg.size() > 5 && seg.substr(seg.size() - 4) == "...}")) {
          if (!last) valid = false;
          p.catch_all = true;
          break;
        }
        if (!(last && seg.empty() && !p.segments.empty())) {  // ignore a trailing '/'
          p.is_param.push_back(IsParamSegment(seg));
          p.segments.emplace_back(IsParamSegment(seg) ? std::string_view() : seg);
        }
        if (last) break;
        rest = rest.substr(slash + 1);
      }
      if (valid) patterns_.push_back(std::move(p));
    }
  }
}

bool RouteTemplater::Matches(const Pattern& p, const std::string_view* segs, size_t n) noexcept {
  if (p.catch_all ? n < p.segments.size() : n != p.segments.size()) return false;
  for (size_t i = 0; i < p.segments.size(); ++i) {
    if (p.is_param[i]) {
      if (segs[i].empty()) return false;
    } else if (segs[i] != p.segments[i]) {
      return false;
    }
  }
  return true;
}

void RouteTemplater::Template(std::string_view service, std::string_view target,
                              std::string* out) const noexcept {
  out->clear();
  std::string_view path;
  if (!target.empty() && target[0] == '/') {
    path = target;
  } else if (StartsWithNoCase(target, "http://") || StartsWithNoCase(target, "https://")) {
    const size_t authority = target.find("//") + 2;
    const size_t slash = target.find_first_of("/?#", authority);
    path = slash == std::string_view::npos || target[slash] != '/' ? "/" : target.substr(slash);
  } else if (target == "*") {
    out->push_back('*');  // OPTIONS *
    return;
  } else {
    out->append("{authority}");  // CONNECT host:port, or a target we cannot read
    return;
  }
  path = path.substr(0, path.find_first_of("?#"));
  if (path.empty()) path = "/";

  // Split into at most kMaxSegments segments (the leading '/' is skipped).
  std::array<std::string_view, kMaxSegments> segs;
  size_t n = 0;
  bool truncated = false;
  std::string_view rest = path.substr(1);
  while (true) {
    if (n == kMaxSegments) {
      truncated = true;
      break;
    }
    const size_t slash = rest.find('/');
    segs[n++] = rest.substr(0, slash);
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  // Patterns ignore one trailing '/' ("/a/b/" matches "/a/b").
  const size_t match_n = (!truncated && n > 1 && segs[n - 1].empty()) ? n - 1 : n;
  for (const Pattern& p : patterns_) {
    if (!p.service.empty() && p.service != service) continue;
    if (truncated && !p.catch_all) continue;
    if (Matches(p, segs.data(), match_n)) {
      out->append(p.text);
      return;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t before = out->size();
    out->push_back('/');
    AppendSegment(segs[i], auto_template_, out);
    if (out->size() > kMaxRouteBytes - 2) {  // keep room for "/*"
      out->resize(before);
      truncated = true;
      break;
    }
  }
  if (truncated) out->append("/*");
}

std::string RouteTemplater::Template(std::string_view service, std::string_view target) const {
  std::string out;
  Template(service, target, &out);
  return out;
}

}  // namespace redtap::enrich

// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/event_builder.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
// Only nlohmann's shortest round-trip double printer (nlohmann::detail::to_chars) is used, so
// numbers print exactly as they did when events were built with nlohmann::ordered_json.
#include <nlohmann/json.hpp>

#include "userspace/common/format.h"

namespace redtap::exporter {
namespace {

// Strings: '"' '\\' \b \f \n \r \t escaped by name, other control bytes as \u00xx, DEL and
// non-ASCII copied; invalid UTF-8 replaced by U+FFFD exactly as nlohmann's replace handler
// does (one U+FFFD per maximal invalid prefix; the byte that broke a sequence is read
// again). Floats use nlohmann's own shortest round-trip printer.

// 1 for bytes that need the slow path of AppendJsonString.
constexpr std::array<uint8_t, 256> kSpecial = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) ? 1 : 0;
  return t;
}();

// Length of the well-formed UTF-8 sequence starting at s[i] (Unicode Table 3-7), or, when it
// is not one, the negated number of bytes that belong to the broken prefix (at least 1): the
// first of them is a lead byte or a stray byte, the rest valid continuations so far.
int Utf8Sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return -1;  // 0x80..0xC1, 0xF5..0xFF: never valid as a first byte
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return -k;  // truncated at the end of the string
    const uint8_t x = b(i + k);
    const bool ok = k == 1 ? (x >= lo && x <= hi) : (x >= 0x80 && x <= 0xBF);
    if (!ok) return -k;
  }
  return need + 1;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    size_t j = i;
    // 8 bytes at a time while none needs attention (SWAR: a byte < 0x20, '"', '\\' or >= 0x80).
    constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
    while (j + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s.data() + j, 8);
      const uint64_t lt20 = (w - kOnes * 0x20) & ~w;
      const uint64_t q = w ^ (kOnes * '"'), bs = w ^ (kOnes * '\\');
      const uint64_t eq = ((q - kOnes) & ~q) | ((bs - kOnes) & ~bs);
      if ((lt20 | eq | w) & kHigh) break;
      j += 8;
    }
    while (j < n && !kSpecial[static_cast<uint8_t>(s[j])]) ++j;
    out.append(s.data() + i, j - i);
    if (j == n) break;
    const uint8_t c = static_cast<uint8_t>(s[j]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\f':
          out.append("\\f");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out.append(esc, 6);
        }
      }
      i = j + 1;
      continue;
    }
    const int len = Utf8Sequence(s, j);
    if (len > 0) {
      out.append(s.data() + j, static_cast<size_t>(len));
      i = j + static_cast<size_t>(len);
    } else {
      out.append("\xEF\xBF\xBD");
      // One U+FFFD for the broken prefix; the byte that broke it is read again (a bad first
      // byte is just skipped, a sequence cut by the end of the string ends it).
      i = j + static_cast<size_t>(-len);
    }
  }
  out.push_back('"');
}

namespace {

template <typename Int>
void AppendInt(std::string& out, Int v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

}  // namespace

void AppendJsonInt(std::string& out, int64_t v) { AppendInt(out, v); }
void AppendJsonUint(std::string& out, uint64_t v) { AppendInt(out, v); }

void AppendJsonDouble(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[64];
  char* end = nlohmann::detail::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, static_cast<size_t>(end - buf));
}

// "%.1f ms" / "%.3f ms" without printf.
void AppendDurationMs(std::string& out, double ms) {
  char buf[64];
  const auto r =
      std::to_chars(buf, buf + sizeof(buf), ms, std::chars_format::fixed, ms >= 1.0 ? 1 : 3);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
  out.append(" ms");
}

EventBuilder::EventBuilder(std::string& out, int64_t unix_ns, std::string_view level,
                           std::string_view type)
    : out_(out) {
  out_.push_back('{');
  Key("timestamp");
  out_.push_back('"');
  AppendRfc3339Micros(out_, unix_ns);
  out_.push_back('"');
  End();
  Str("level", level);
  Str("type", type);
}

void EventBuilder::Process(std::string_view service, uint32_t pid, std::string_view command,
                           bool always) {
  Str("service.name", service);
  if (always || pid != 0) Uint("process.pid", pid);
  if (always || !command.empty()) Str("process.command", command);
}

void EventBuilder::Key(std::string_view k) {
  // `,"key":` written in place after one resize (one capacity check instead of five; bytes
  // staged in a local buffer and appended stalled on store forwarding).
  const size_t pos = out_.size();
  const size_t comma = n_ > 0 ? 1 : 0;
  out_.resize(pos + comma + k.size() + 3);
  char* p = out_.data() + pos;
  if (comma) *p++ = ',';
  *p++ = '"';
  std::memcpy(p, k.data(), k.size());
  p += k.size();
  p[0] = '"';
  p[1] = ':';
  cur_key_ = k;
  cur_dup_ = -1;
  start_ = out_.size();
}

// Starts an extra member: any key, maybe one already written.
void EventBuilder::ExtraKey(std::string_view k) {
  cur_key_ = k;
  cur_dup_ = Find(k);
  if (cur_dup_ < 0) {
    if (n_ > 0) out_.push_back(',');
    AppendJsonString(out_, k);
    out_.push_back(':');
  }
  start_ = out_.size();  // a duplicate's value is rendered at the end, then moved into place
}

void EventBuilder::End() {
  if (cur_dup_ < 0) {
    if (n_ < kMax) slots_[n_] = {cur_key_, start_, out_.size()};
    ++n_;
    return;
  }
  Slot& s = slots_[cur_dup_];
  const std::string value = out_.substr(start_);
  out_.resize(start_);
  const size_t old_len = s.end - s.begin;
  out_.replace(s.begin, old_len, value);
  const ptrdiff_t shift = static_cast<ptrdiff_t>(value.size()) - static_cast<ptrdiff_t>(old_len);
  s.end = s.begin + value.size();
  for (size_t i = 0; i < std::min(n_, kMax); ++i) {
    if (slots_[i].begin > s.begin) {
      slots_[i].begin += shift;
      slots_[i].end += shift;
    }
  }
}

void EventBuilder::Extras(const EventExtras& extras) {
  for (const auto& a : extras) {
    ExtraKey(a.key);
    if (a.is_number) {
      AppendJsonDouble(out_, a.num);
    } else {
      AppendJsonString(out_, a.str);
    }
    End();
  }
}

int EventBuilder::Find(std::string_view k) const {
  for (size_t i = 0; i < std::min(n_, kMax); ++i) {
    if (slots_[i].key == k) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace redtap::exporter

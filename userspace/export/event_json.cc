// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/event_json.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <exception>
// Only nlohmann's shortest round-trip double printer (nlohmann::detail::to_chars) is used, so
// numbers print exactly as they did when events were built with nlohmann::ordered_json.
#include <nlohmann/json.hpp>
#include <string_view>

namespace redtap::exporter {
namespace {

// User agents are free text from the wire: keep events bounded.
constexpr size_t kMaxUserAgentBytes = 512;

bool IsSchemeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

const char* LevelOf(const http::Transaction& t) {
  if (!t.has_response) return "ERROR";
  if (t.response.status_code >= 500 && t.response.status_code <= 599) return "ERROR";
  if (t.response.status_code >= 400 && t.response.status_code <= 499) return "WARN";
  return "INFO";
}

}  // namespace

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

TargetParts SplitTarget(std::string_view target) {
  TargetParts parts;
  if (const size_t hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  std::string_view path = target;
  if (const size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    parts.query = target.substr(q + 1);
    parts.has_query = true;
  }
  // Absolute-form: scheme "://" authority [path].
  if (!path.empty() && path[0] != '/') {
    const size_t sep = path.find("://");
    bool scheme_ok = sep != std::string_view::npos && sep > 0;
    for (size_t i = 0; scheme_ok && i < sep; ++i) scheme_ok = IsSchemeChar(path[i]);
    if (scheme_ok) {
      const size_t slash = path.find('/', sep + 3);
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
  }
  parts.path = path;
  return parts;
}

namespace {

// ---- The event line writer: a hand-written JSON emitter for this fixed, flat schema.
// Byte-identical to what nlohmann::ordered_json::dump(-1, ' ', false, replace) printed before
// (the goldens in tests/unit/export pin it), at ~1/10 of the cost: no DOM, no per-key heap
// nodes, one output buffer. Strings: '"' '\\' \b \f \n \r \t escaped by name, other control
// bytes as \u00xx, DEL and non-ASCII copied; invalid UTF-8 replaced by U+FFFD exactly as
// nlohmann's replace handler does (one U+FFFD per maximal invalid prefix; the byte that broke
// a sequence is read again). Floats use nlohmann's own shortest round-trip printer.

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
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\b': out.append("\\b"); break;
        case '\f': out.append("\\f"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
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

template <typename Int>
void AppendInt(std::string& out, Int v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

void AppendDouble(std::string& out, double v) {
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
  const auto r = std::to_chars(buf, buf + sizeof(buf), ms, std::chars_format::fixed,
                               ms >= 1.0 ? 1 : 3);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
  out.append(" ms");
}

// Writes "key":value pairs into one object. Remembers where each value sits, so that a key
// written twice (an extra attribute named like a standard one) replaces the earlier value in
// place, as an ordered JSON object would.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }

  // Starts a standard member (a literal key: distinct, nothing to escape).
  void Key(std::string_view k) {
    if (n_ > 0) out_.push_back(',');
    out_.push_back('"');
    out_.append(k);
    out_.append("\":", 2);
    cur_key_ = k;
    cur_dup_ = -1;
    start_ = out_.size();
  }
  // Starts an extra member: any key, maybe one already written.
  void ExtraKey(std::string_view k) {
    cur_key_ = k;
    cur_dup_ = Find(k);
    if (cur_dup_ < 0) {
      if (n_ > 0) out_.push_back(',');
      AppendJsonString(out_, k);
      out_.push_back(':');
      start_ = out_.size();
    } else {
      start_ = out_.size();  // value rendered at the end, then moved into place
    }
  }
  void End() {
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
  void Close() { out_.push_back('}'); }

  void Str(std::string_view k, std::string_view v) { Key(k); AppendJsonString(out_, v); End(); }
  template <typename I>
  void Int(std::string_view k, I v) { Key(k); AppendInt(out_, v); End(); }
  void Double(std::string_view k, double v) { Key(k); AppendDouble(out_, v); End(); }
  void Bool(std::string_view k, bool v) { Key(k); out_.append(v ? "true" : "false"); End(); }
  std::string& out() { return out_; }

 private:
  struct Slot {
    std::string_view key;
    size_t begin = 0, end = 0;
  };
  static constexpr size_t kMax = 64;

  int Find(std::string_view k) const {
    for (size_t i = 0; i < std::min(n_, kMax); ++i)
      if (slots_[i].key == k) return static_cast<int>(i);
    return -1;
  }

  std::string& out_;
  std::array<Slot, kMax> slots_{};
  size_t n_ = 0;
  std::string_view cur_key_;
  int cur_dup_ = -1;
  size_t start_ = 0;
};

// The timestamp of the previous event, per thread: events come in time order, so the date
// and time of day ("2026-11-25T18:46:51.") usually repeat and only the microseconds change.
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

}  // namespace

std::string FormatHttpEvent(const http::Transaction& t, const ConnMeta& meta,
                            const std::string& service_name, int64_t ktime_to_realtime_offset_ns,
                            const Redactor& r, const EventExtras* extras) noexcept {
  try {
    const http::Request& req = t.request;
    const TargetParts target = SplitTarget(req.target);
    const std::string path = r.RedactPath(target.path);
    const double duration_ms =
        std::round(static_cast<double>(t.DurationNs()) / 1e3) / 1e3;  // µs precision
    const std::string_view method = req.method.empty() ? std::string_view("-") : req.method;

    std::string out;
    out.reserve(384 + path.size() + req.target.size() + meta.command.size() +
                service_name.size());
    ObjectWriter w(out);
    w.Key("timestamp");
    out.push_back('"');
    AppendRfc3339Micros(out, static_cast<int64_t>(req.first_byte_ts) + ktime_to_realtime_offset_ns);
    out.push_back('"');
    w.End();
    w.Str("level", LevelOf(t));
    w.Str("type", "http");
    w.Str("kind", meta.role == Role::kClient ? "client" : "server");
    {
      // The message is built in place: method, path, then status and duration.
      w.Key("message");
      std::string message;
      message.reserve(method.size() + path.size() + 40);
      message.append(method).push_back(' ');
      message.append(path);
      if (t.has_response) {
        message.push_back(' ');
        AppendInt(message, t.response.status_code);
        message.push_back(' ');
        AppendDurationMs(message, duration_ms);
      } else {
        message.append(": no response (connection closed)");
      }
      AppendJsonString(out, message);
      w.End();
    }
    if (t.has_response) w.Double("duration_ms", duration_ms);
    w.Str("service.name", service_name);
    w.Int("process.pid", meta.pid);
    w.Str("process.command", meta.command);
    w.Str("http.request.method", req.method);
    if (req.unparsed) {
      // Answered bytes that were not a request: a fixed route, never the bytes.
      w.Str("http.route", http::kUnparsedTarget);
    } else {
      w.Str("url.path", path);
    }
    if (target.has_query && !target.query.empty()) w.Str("url.query", r.RedactQuery(target.query));
    if (t.has_response) w.Int("http.response.status_code", t.response.status_code);
    if (!req.unparsed) {
      w.Key("network.protocol.version");
      std::string v = req.http09 ? "0." : "1.";
      AppendInt(v, req.version_minor);
      AppendJsonString(out, v);
      w.End();
    }
    // A client call is named by the host it asked for (Host header / absolute URI: an
    // outbound call to api.stripe.com says so); the peer's IP stays in network.peer.address.
    const std::string_view host = http::RequestHost(req);
    if (meta.role == Role::kClient && !host.empty()) {
      w.Str("server.address", host);
      w.Str("url.domain", host);
      w.Str("network.peer.address", meta.server().address);
    } else {
      w.Str("server.address", meta.server().address);
    }
    w.Int("server.port", meta.server().port);
    w.Str("client.address", meta.client().address);
    w.Int("client.port", meta.client().port);
    w.Int("http.request.body.size", req.body_size);
    if (t.has_response) w.Int("http.response.body.size", t.response.body_size);
    if (const std::string_view ua = req.Find("User-Agent"); !ua.empty()) {
      // The only header exported: never with a card number in it.
      const std::string_view v = ua.substr(0, kMaxUserAgentBytes);
      if (HasCardNumber(v))
        w.Str("user_agent.original", MaskCardNumbers(v));
      else
        w.Str("user_agent.original", v);
    }
    if (meta.tls) w.Bool("tls", true);
    if (extras) {
      for (const auto& a : *extras) {
        w.ExtraKey(a.key);
        if (a.is_number)
          AppendDouble(out, a.num);
        else
          AppendJsonString(out, a.str);
        w.End();
      }
    }
    w.Close();
    return out;
  } catch (...) {
    return R"({"type":"http","level":"ERROR","message":"redtap: event formatting failed"})";
  }
}

}  // namespace redtap::exporter

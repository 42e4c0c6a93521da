// SPDX-License-Identifier: Apache-2.0
// One event line: a flat JSON object (OpenTelemetry attribute names as keys) written by hand
// into one buffer, for every event type (http transactions, tcp moments). The builder owns
// the fields every event starts with (timestamp, level, type) and the process fields; each
// event type adds its own. Byte-identical to nlohmann::ordered_json::dump(-1, ' ', false,
// replace) (the goldens in tests/unit/export pin it), at ~1/10 of the cost.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace redtap::exporter {

/// Extra attributes appended to an event (enrichment: tenant, e-commerce fields, trace ids;
/// tcp details). Keys are emitted as given, after the standard ones; values are strings or
/// numbers.
struct EventAttr {
  std::string key;
  std::string str;  // used when !is_number
  double num = 0;
  bool is_number = false;
};
using EventExtras = std::vector<EventAttr>;

/// JSON string (quoted): control bytes escaped, invalid UTF-8 replaced by U+FFFD.
void AppendJsonString(std::string& out, std::string_view s);
void AppendJsonInt(std::string& out, int64_t v);
void AppendJsonUint(std::string& out, uint64_t v);
/// Shortest round-trip form; null for NaN and infinities.
void AppendJsonDouble(std::string& out, double v);
/// "%.1f ms" (>= 1 ms) or "%.3f ms".
void AppendDurationMs(std::string& out, double ms);

class EventBuilder {
 public:
  /// Starts the object in `out` with the common fields: "timestamp" (RFC 3339 UTC, us),
  /// "level", "type".
  EventBuilder(std::string& out, int64_t unix_ns, std::string_view level, std::string_view type);

  /// "service.name", "process.pid", "process.command"; unless `always`, the pid is left out
  /// when 0 and the command when empty (events not tied to one process).
  void Process(std::string_view service, uint32_t pid, std::string_view command,
               bool always = false);

  void Str(std::string_view k, std::string_view v) {
    Key(k);
    AppendJsonString(out_, v);
    End();
  }
  void Int(std::string_view k, int64_t v) {
    Key(k);
    AppendJsonInt(out_, v);
    End();
  }
  void Uint(std::string_view k, uint64_t v) {
    Key(k);
    AppendJsonUint(out_, v);
    End();
  }
  void Double(std::string_view k, double v) {
    Key(k);
    AppendJsonDouble(out_, v);
    End();
  }
  void Bool(std::string_view k, bool v) {
    Key(k);
    out_.append(v ? "true" : "false");
    End();
  }
  /// A member whose value the caller appends to out() between Key and End.
  void Key(std::string_view k);
  void End();
  /// Appends `extras` after the standard members; a key already written is replaced in
  /// place, as an ordered JSON object would.
  void Extras(const EventExtras& extras);
  /// Closes the object.
  void Close() { out_.push_back('}'); }
  std::string& out() { return out_; }

 private:
  struct Slot {
    std::string_view key;
    size_t begin = 0, end = 0;
  };
  static constexpr size_t kMax = 64;
  void ExtraKey(std::string_view k);
  int Find(std::string_view k) const;

  std::string& out_;
  std::array<Slot, kMax> slots_{};
  size_t n_ = 0;
  std::string_view cur_key_;
  int cur_dup_ = -1;
  size_t start_ = 0;
};

}  // namespace redtap::exporter

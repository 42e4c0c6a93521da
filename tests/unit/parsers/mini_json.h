// SPDX-License-Identifier: Apache-2.0
// A small JSON reader for the conformance vectors (test-only: trusted input, no streaming).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace redtap::http_test {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  static Json Parse(std::string_view text, bool* ok);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  const std::string& str() const { return str_; }
  double num() const { return num_; }
  int64_t integer() const { return static_cast<int64_t>(num_); }
  bool boolean() const { return bool_; }
  const std::vector<Json>& items() const { return items_; }
  const std::map<std::string, Json>& members() const { return members_; }

  bool Has(const std::string& key) const { return members_.count(key) > 0; }
  /// Member `key`, or a null value.
  const Json& operator[](const std::string& key) const;
  const Json& operator[](size_t i) const { return items_[i]; }
  size_t size() const { return is_array() ? items_.size() : members_.size(); }

 private:
  struct Reader;
  Type type_ = Type::kNull;
  bool bool_ = false;
  double num_ = 0;
  std::string str_;
  std::vector<Json> items_;
  std::map<std::string, Json> members_;
};

struct Json::Reader {
  std::string_view s;
  size_t i = 0;
  bool ok = true;

  void Ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  }
  static void PutUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  uint32_t Hex4() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      if (i >= s.size()) {
        ok = false;
        return 0;
      }
      const char c = s[i++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        ok = false;
    }
    return v;
  }
  std::string String() {
    std::string out;
    ++i;  // opening quote
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i >= s.size()) break;
      c = s[i++];
      switch (c) {
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'u': {
          uint32_t cp = Hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < s.size() && s[i] == '\\' && s[i + 1] == 'u') {
            i += 2;
            const uint32_t lo = Hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          PutUtf8(&out, cp);
          break;
        }
        default:
          out.push_back(c);
          break;
      }
    }
    if (i >= s.size()) ok = false;
    ++i;  // closing quote
    return out;
  }
  Json Value() {
    Json v;
    Ws();
    if (i >= s.size()) {
      ok = false;
      return v;
    }
    const char c = s[i];
    if (c == '{') {
      v.type_ = Type::kObject;
      ++i;
      Ws();
      if (i < s.size() && s[i] == '}') {
        ++i;
        return v;
      }
      while (ok && i < s.size()) {
        Ws();
        if (i >= s.size() || s[i] != '"') {
          ok = false;
          break;
        }
        std::string key = String();
        Ws();
        if (i >= s.size() || s[i] != ':') {
          ok = false;
          break;
        }
        ++i;
        v.members_[key] = Value();
        Ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == '}') {
          ++i;
          break;
        }
        ok = false;
      }
    } else if (c == '[') {
      v.type_ = Type::kArray;
      ++i;
      Ws();
      if (i < s.size() && s[i] == ']') {
        ++i;
        return v;
      }
      while (ok && i < s.size()) {
        v.items_.push_back(Value());
        Ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == ']') {
          ++i;
          break;
        }
        ok = false;
      }
    } else if (c == '"') {
      v.type_ = Type::kString;
      v.str_ = String();
    } else if (s.substr(i, 4) == "null") {
      i += 4;
    } else if (s.substr(i, 4) == "true") {
      v.type_ = Type::kBool;
      v.bool_ = true;
      i += 4;
    } else if (s.substr(i, 5) == "false") {
      v.type_ = Type::kBool;
      i += 5;
    } else {
      v.type_ = Type::kNumber;
      const size_t start = i;
      while (i < s.size() && (s[i] == '-' || s[i] == '+' || s[i] == '.' || s[i] == 'e' ||
                              s[i] == 'E' || (s[i] >= '0' && s[i] <= '9'))) {
        ++i;
      }
      if (i == start) {
        ok = false;
        return v;
      }
      v.num_ = std::stod(std::string(s.substr(start, i - start)));
    }
    return v;
  }
};

inline Json Json::Parse(std::string_view text, bool* ok) {
  Reader r{text};
  Json v = r.Value();
  *ok = r.ok;
  return v;
}

inline const Json& Json::operator[](const std::string& key) const {
  static const Json kNull;
  auto it = members_.find(key);
  return it == members_.end() ? kNull : it->second;
}

}  // namespace redtap::http_test

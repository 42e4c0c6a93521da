// SPDX-License-Identifier: Apache-2.0
// Control-plane error handling: Status and Result<T> (std::expected-shaped).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace redtap {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }
  bool ok() const { return !message_.has_value(); }
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }

 private:
  explicit Status(std::string m) : message_(std::move(m)) {}
  std::optional<std::string> message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}       // NOLINT: implicit on purpose
  Result(Status error) : v_(std::move(error)) {}  // NOLINT; must be an error
  bool ok() const { return std::holds_alternative<T>(v_); }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  const std::string& error() const { return status().message(); }

 private:
  std::variant<T, Status> v_;
};

#define REDTAP_RETURN_IF_ERROR(expr) \
  do {                               \
    ::redtap::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)

}  // namespace redtap

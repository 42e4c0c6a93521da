// SPDX-License-Identifier: Apache-2.0
#include "userspace/metadata/runtime_names.h"

#include <nlohmann/json.hpp>

#include "userspace/metadata/cgroup.h"

namespace redtap::metadata {
namespace {

using nlohmann::json;

// Parses `text` keeping only the keys `wanted` accepts (at every depth): the parser drops the
// others with their values as it reads, so large state files stay small in memory.
template <typename Wanted>
json ParseKeeping(std::string_view text, Wanted wanted) {
  return json::parse(
      text.begin(), text.end(),
      [&](int, json::parse_event_t event, json& parsed) {
        return event != json::parse_event_t::key || wanted(parsed.get_ref<const std::string&>());
      },
      /*allow_exceptions=*/true);
}

void Fail(std::string* error, std::string_view what) noexcept {
  if (error == nullptr) return;
  try {
    error->assign(what);
  } catch (...) {
    error->clear();
  }
}

}  // namespace

bool ParseContainersStorageJson(std::string_view text,
                                std::unordered_map<std::string, std::string>* id_to_name,
                                std::string* error, size_t max_entries) noexcept {
  if (id_to_name == nullptr) {
    Fail(error, "no output map");
    return false;
  }
  try {
    const json doc =
        ParseKeeping(text, [](const std::string& k) { return k == "id" || k == "names"; });
    if (!doc.is_array()) {
      Fail(error, "containers.json is not a JSON array");
      return false;
    }
    std::unordered_map<std::string, std::string> names;
    for (const json& entry : doc) {
      if (names.size() >= max_entries) break;
      if (!entry.is_object()) continue;
      const auto id = entry.find("id");
      const auto list = entry.find("names");
      if (id == entry.end() || !id->is_string() || list == entry.end() || !list->is_array() ||
          list->empty() || !list->front().is_string()) {
        continue;
      }
      const std::string& id_text = id->get_ref<const std::string&>();
      const std::string& name = list->front().get_ref<const std::string&>();
      if (!IsContainerId(id_text) || name.empty()) continue;
      names.insert_or_assign(id_text, name);
    }
    *id_to_name = std::move(names);
    return true;
  } catch (const std::exception& e) {  // json::parse_error, std::bad_alloc
    Fail(error, e.what());
  } catch (...) {
    Fail(error, "unknown error");
  }
  return false;
}

std::string ParseDockerConfigV2Name(std::string_view text) noexcept {
  try {
    // Only the top-level "Name" survives: every other top-level key goes with its subtree.
    const json doc = ParseKeeping(text, [](const std::string& k) { return k == "Name"; });
    if (!doc.is_object()) return {};
    const auto name = doc.find("Name");
    if (name == doc.end() || !name->is_string()) return {};
    std::string_view n = name->get_ref<const std::string&>();
    if (n.starts_with('/')) n.remove_prefix(1);
    return std::string(n);
  } catch (...) {
    return {};
  }
}

}  // namespace redtap::metadata

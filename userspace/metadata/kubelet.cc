// SPDX-License-Identifier: Apache-2.0
#include "userspace/metadata/kubelet.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "userspace/metadata/cgroup.h"

namespace redtap::metadata {
namespace {

using nlohmann::json;

// The only keys ParsePodList reads. The parser drops every other key with its value as it
// reads, so a node's full pod specs (env, volumes, managedFields, ...) never become a DOM.
bool WantedKey(std::string_view key) noexcept {
  static constexpr std::string_view kKeys[] = {
      "kind",
      "items",
      "metadata",
      "name",
      "namespace",
      "uid",
      "labels",
      "pod-template-hash",
      "ownerReferences",
      "controller",
      "status",
      "containerStatuses",
      "initContainerStatuses",
      "ephemeralContainerStatuses",
      "containerID",
  };
  return std::find(std::begin(kKeys), std::end(kKeys), key) != std::end(kKeys);
}

// obj[key] when obj is an object and the member has the type asked for, else null.
const json* Member(const json& obj, const char* key, json::value_t type) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  if (it == obj.end() || it->type() != type) return nullptr;
  return &*it;
}

std::string_view StringMember(const json& obj, const char* key) {
  const json* v = Member(obj, key, json::value_t::string);
  return v ? std::string_view(v->get_ref<const std::string&>()) : std::string_view();
}

void Fail(std::string* error, std::string_view what) noexcept {
  if (error == nullptr) return;
  try {
    error->assign(what);
  } catch (...) {
    error->clear();
  }
}

// The workload fields of `pod` from its controller ownerReference.
void SetWorkload(std::string_view kind, std::string_view name, std::string_view template_hash,
                 PodInfo* pod) {
  if (kind == "ReplicaSet") {
    pod->replicaset = name;
    // The Deployment controller names its ReplicaSets "<deployment>-<pod-template-hash>".
    // Without that suffix the ReplicaSet was made by hand (or by another controller): no
    // deployment is invented.
    if (!template_hash.empty() && name.size() > template_hash.size() + 1 &&
        name.ends_with(template_hash) && name[name.size() - template_hash.size() - 1] == '-') {
      pod->deployment = name.substr(0, name.size() - template_hash.size() - 1);
    }
  } else if (kind == "StatefulSet") {
    pod->statefulset = name;
  } else if (kind == "DaemonSet") {
    pod->daemonset = name;
  } else if (kind == "Job") {
    pod->job = name;
    // The CronJob controller names its Jobs "<cronjob>-<scheduled time in Unix minutes>".
    const size_t dash = name.rfind('-');
    if (dash != std::string_view::npos && dash > 0 && dash + 1 < name.size() &&
        std::all_of(name.begin() + dash + 1, name.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      pod->cronjob = name.substr(0, dash);
    }
  }
}

}  // namespace

bool ParsePodList(std::string_view text, PodTable* out, std::string* error, size_t* skipped,
                  const ParseLimits& limits) noexcept {
  if (skipped != nullptr) *skipped = 0;
  if (out == nullptr) {
    Fail(error, "no output table");
    return false;
  }
  try {
    if (text.size() > limits.max_bytes) {
      Fail(error, "PodList of " + std::to_string(text.size()) + " bytes is over the limit of " +
                      std::to_string(limits.max_bytes));
      return false;
    }
    const json doc = json::parse(
        text.begin(), text.end(),
        [](int, json::parse_event_t event, json& parsed) {
          return event != json::parse_event_t::key ||
                 WantedKey(parsed.get_ref<const std::string&>());
        },
        /*allow_exceptions=*/true);
    if (!doc.is_object()) {
      Fail(error, "not a JSON object");
      return false;
    }
    const auto kind = doc.find("kind");
    if (kind != doc.end() && !(kind->is_string() && *kind == "PodList")) {
      Fail(error, "kind is " + kind->dump().substr(0, 64) + ", not \"PodList\"");
      return false;
    }
    const auto items = doc.find("items");
    // A Go nil slice: the kubelet answers "items":null on a node without pods.
    const bool no_items = items != doc.end() && items->is_null() && kind != doc.end();
    if (!no_items && (items == doc.end() || !items->is_array())) {
      Fail(error, "no \"items\" array");
      return false;
    }
    PodTable table;
    size_t left_out = 0;
    for (size_t i = 0; !no_items && i < items->size(); ++i) {
      const json& item = (*items)[i];
      const json* meta = Member(item, "metadata", json::value_t::object);
      const std::string_view uid = meta ? StringMember(*meta, "uid") : std::string_view();
      if (uid.empty()) {
        Fail(error, "items[" + std::to_string(i) + "] has no metadata.uid");
        return false;
      }
      std::string key(uid);
      if (table.pods_by_uid.size() >= limits.max_pods && !table.pods_by_uid.contains(key)) {
        ++left_out;
        continue;
      }
      PodInfo pod;
      pod.uid = key;
      pod.name = StringMember(*meta, "name");
      pod.namespace_name = StringMember(*meta, "namespace");
      std::string_view template_hash;
      if (const json* labels = Member(*meta, "labels", json::value_t::object)) {
        template_hash = StringMember(*labels, "pod-template-hash");
      }
      if (const json* refs = Member(*meta, "ownerReferences", json::value_t::array)) {
        for (const json& ref : *refs) {
          const json* controller = Member(ref, "controller", json::value_t::boolean);
          if (controller == nullptr || !controller->get<bool>()) continue;
          SetWorkload(StringMember(ref, "kind"), StringMember(ref, "name"), template_hash, &pod);
          break;  // at most one controller
        }
      }
      if (const json* status = Member(item, "status", json::value_t::object)) {
        for (const char* list :
             {"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
          const json* statuses = Member(*status, list, json::value_t::array);
          if (statuses == nullptr) continue;
          for (const json& cs : *statuses) {
            // "containerd://<id>", "cri-o://<id>", "docker://<id>"; absent until started.
            std::string_view id = StringMember(cs, "containerID");
            const size_t scheme = id.find("://");
            if (scheme == std::string_view::npos) continue;
            id.remove_prefix(scheme + 3);
            if (!IsContainerId(id)) continue;
            std::string id_key(id);
            if (table.containers_by_id.size() >= limits.max_containers &&
                !table.containers_by_id.contains(id_key)) {
              ++left_out;
              continue;
            }
            table.containers_by_id.insert_or_assign(
                std::move(id_key), ContainerInfo{std::string(StringMember(cs, "name")), key});
          }
        }
      }
      table.pods_by_uid.insert_or_assign(std::move(key), std::move(pod));
    }
    *out = std::move(table);
    if (skipped != nullptr) *skipped = left_out;
    return true;
  } catch (const json::exception& e) {
    Fail(error, e.what());
  } catch (const std::exception& e) {  // std::bad_alloc
    Fail(error, e.what());
  } catch (...) {
    Fail(error, "unknown error");
  }
  return false;
}

std::string_view WorkloadName(const PodInfo& pod) noexcept {
  for (const std::string* name : {&pod.deployment, &pod.statefulset, &pod.daemonset, &pod.cronjob,
                                  &pod.job, &pod.replicaset}) {
    if (!name->empty()) return *name;
  }
  return {};
}

}  // namespace redtap::metadata

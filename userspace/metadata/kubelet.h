// SPDX-License-Identifier: Apache-2.0
// The pods of a node and their containers, from the JSON the kubelet answers on `GET /pods`
// (a v1 PodList; the API server's `GET /api/v1/pods?fieldSelector=spec.nodeName=<node>`
// answers the same shape). Pure: the caller fetches the text. Container ids key the table
// so that a process's cgroup (cgroup.h) finds its pod, container name and workload.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace redtap::metadata {

struct PodInfo {
  std::string uid, name, namespace_name;
  /// The workload, from the pod's controller ownerReference (see ParsePodList); "" if none.
  std::string deployment, replicaset, statefulset, daemonset, job, cronjob;
  bool operator==(const PodInfo&) const = default;
};

struct ContainerInfo {
  std::string name;
  std::string pod_uid;
  bool operator==(const ContainerInfo&) const = default;
};

struct PodTable {
  std::unordered_map<std::string, PodInfo> pods_by_uid;
  /// Key: the 64-hex id without its "containerd://", "cri-o://", "docker://" prefix.
  /// Regular, init and ephemeral containers; containers not started yet have no id and are
  /// not here.
  std::unordered_map<std::string, ContainerInfo> containers_by_id;
  bool operator==(const PodTable&) const = default;
};

struct ParseLimits {
  size_t max_pods = 1024;
  size_t max_containers = 8192;
  size_t max_bytes = 64 << 20;
};

/// Replaces *out with the pods of `json` and returns true. On malformed JSON, a document
/// larger than max_bytes or the wrong shape (not an object, `kind` other than "PodList",
/// `items` not an array, an item without a `metadata` object and a non-empty string
/// `metadata.uid`) returns false, leaves *out alone and says why in *error (may be null).
/// Pods past max_pods (with their containers) and containers past max_containers are left
/// out, one count each in *skipped (may be null). Optional fields of the wrong type count as
/// absent. The workload: ReplicaSet owner → replicaset, and deployment = its name minus
/// "-<pod-template-hash label>" when it ends with it; StatefulSet, DaemonSet; Job → job, and
/// cronjob = the job name minus a "-<digits>" scheduled-time suffix.
bool ParsePodList(std::string_view json, PodTable* out, std::string* error,
                  size_t* skipped = nullptr, const ParseLimits& limits = {}) noexcept;

/// The one workload name of a pod: deployment, else statefulset, daemonset, cronjob, job,
/// replicaset, else "" (a bare pod).
std::string_view WorkloadName(const PodInfo& pod) noexcept;

}  // namespace redtap::metadata

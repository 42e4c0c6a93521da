// SPDX-License-Identifier: Apache-2.0
// The container and the pod a process runs in, for the labels of its series and the
// attributes of its events: container id and pod uid from /proc/PID/cgroup (cgroup.h), the
// pod's name, namespace and workload from the node's pod list (kubelet.h, published by the
// PodWatcher), the container's name from the runtime's own files (runtime_names.h).
//
// Lookups run on the thread that enriches transactions: a per-pid cache (bounded, with a time
// to live, like the executable paths of ServiceResolver) in front of one read of
// /proc/PID/cgroup. A process in no container costs a cache hit per transaction.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "userspace/metadata/cgroup.h"
#include "userspace/metadata/kubelet.h"

namespace redtap::metadata {

/// What is known of the container of a process. Immutable once built; every field may be "".
struct Workload {
  std::string container_id;    // 64 hex digits
  std::string container_name;  // the pod's container name, or the plain container's name
  std::string pod_uid, pod_name, namespace_name;
  std::string deployment, statefulset, daemonset, replicaset, cronjob, job;
  /// The default service.name: the workload (deployment, statefulset, daemonset, cronjob,
  /// job, replicaset), else the container's name; "" when neither is known.
  std::string service_name;
  /// Identity in the metrics store: "c:" + container id, else "p:" + pod uid.
  std::string key;
  /// Prometheus labels (container_id, k8s_pod_uid, k8s_pod_name, k8s_namespace_name,
  /// k8s_deployment_name, ...), only the known ones, in that order.
  std::vector<std::pair<std::string, std::string>> labels;
  /// The same as event attributes with their OpenTelemetry names (container.id, k8s.pod.uid,
  /// ...).
  std::vector<std::pair<std::string, std::string>> attributes;
};

/// Reads at most `max` bytes of a file; "" when it cannot be read. Must not throw.
using FileReader = std::function<std::string(const std::string& path, size_t max)>;
std::string ReadFileBounded(const std::string& path, size_t max);

/// Builds the Workload of `ref` from what the pod table and the runtime names say.
Workload BuildWorkload(const CgroupRef& ref, const PodTable* pods,
                       std::string_view runtime_container_name);

class Resolver {
 public:
  struct Options {
    size_t max_pids = 4096;
    uint64_t ttl_ns = 30'000'000'000ull;  // a pid's cgroup is read again after this long
    size_t max_workloads = 4096;
    /// podman / CRI-O container names, and docker's per-container config.
    std::string containers_storage =
        "/var/lib/containers/storage/overlay-containers/containers.json";
    std::string docker_containers = "/var/lib/docker/containers";
    std::string proc = "/proc";
  };

  explicit Resolver(FileReader reader = ReadFileBounded);
  Resolver(FileReader reader, Options options);
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// The workload of `pid` at `now_ns` (monotonic), null when it runs in no container or pod.
  /// Valid until the next call. One thread (the enricher's).
  const Workload* Of(uint32_t pid, uint64_t now_ns) noexcept;

  /// Publishes the node's pods (any thread). Workloads are rebuilt on their next lookup.
  void SetPods(std::shared_ptr<const PodTable> pods) noexcept;

  struct Stats {
    uint64_t cgroup_reads = 0;
    size_t pids = 0;
    size_t workloads = 0;
  };
  Stats GetStats() const noexcept;

 private:
  std::shared_ptr<const Workload> Lookup(uint32_t pid, uint64_t now_ns);
  std::string RuntimeName(const CgroupRef& ref, uint64_t now_ns);

  struct PidEntry {
    std::shared_ptr<const Workload> workload;
    uint64_t read_ns = 0;
    uint64_t generation = 0;
  };
  FileReader reader_;
  Options options_;
  std::unordered_map<uint32_t, PidEntry> pids_;
  std::unordered_map<std::string, std::shared_ptr<const Workload>> workloads_;  // by key
  uint64_t generation_ = 0;  // of pods_ when workloads_ was built

  mutable std::mutex mu_;  // guards pods_
  std::shared_ptr<const PodTable> pods_;
  std::atomic<uint64_t> pods_generation_{0};
  std::shared_ptr<const PodTable> snapshot_;  // the enricher thread's copy of pods_

  // podman's containers.json, read again at most every 5 s when an unknown id shows up.
  std::unordered_map<std::string, std::string> storage_names_;
  uint64_t storage_read_ns_ = 0;
  bool storage_read_ = false;

  std::atomic<uint64_t> cgroup_reads_{0};
  std::atomic<size_t> pid_count_{0}, workload_count_{0};
};

}  // namespace redtap::metadata

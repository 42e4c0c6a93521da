// SPDX-License-Identifier: Apache-2.0
#include "userspace/metadata/resolver.h"

#include <fcntl.h>
#include <unistd.h>

#include "userspace/metadata/runtime_names.h"

namespace redtap::metadata {
namespace {

constexpr size_t kMaxCgroupFile = 64 * 1024;
constexpr size_t kMaxStorageFile = 32 << 20;
constexpr size_t kMaxDockerConfig = 1 << 20;
constexpr uint64_t kStorageRereadNs = 5'000'000'000ull;

}  // namespace

std::string ReadFileBounded(const std::string& path, size_t max) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  try {
    char buf[8192];
    while (out.size() < max) {
      const ssize_t n = read(fd, buf, std::min(sizeof(buf), max - out.size()));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  } catch (...) {
    out.clear();
  }
  close(fd);
  return out;
}

Workload BuildWorkload(const CgroupRef& ref, const PodTable* pods,
                       std::string_view runtime_container_name) {
  Workload w;
  w.container_id = ref.container_id;
  w.pod_uid = ref.pod_uid;
  if (pods != nullptr) {
    if (!w.container_id.empty()) {
      if (auto c = pods->containers_by_id.find(w.container_id); c != pods->containers_by_id.end()) {
        w.container_name = c->second.name;
        if (w.pod_uid.empty()) w.pod_uid = c->second.pod_uid;
      }
    }
    if (!w.pod_uid.empty()) {
      if (auto p = pods->pods_by_uid.find(w.pod_uid); p != pods->pods_by_uid.end()) {
        const PodInfo& pod = p->second;
        w.pod_name = pod.name;
        w.namespace_name = pod.namespace_name;
        w.deployment = pod.deployment;
        w.statefulset = pod.statefulset;
        w.daemonset = pod.daemonset;
        w.replicaset = pod.replicaset;
        w.cronjob = pod.cronjob;
        w.job = pod.job;
        w.service_name = std::string(WorkloadName(pod));
        if (w.service_name.empty()) w.service_name = pod.name;  // a bare pod
      }
    }
  }
  if (w.container_name.empty()) w.container_name.assign(runtime_container_name);
  if (w.service_name.empty()) w.service_name = w.container_name;
  w.key = !w.container_id.empty() ? "c:" + w.container_id : "p:" + w.pod_uid;

  const auto add = [&](const char* label, const char* attribute, const std::string& v) {
    if (v.empty()) return;
    w.labels.emplace_back(label, v);
    w.attributes.emplace_back(attribute, v);
  };
  add("container_id", "container.id", w.container_id);
  add("container_name", "container.name", w.container_name);
  add("k8s_pod_uid", "k8s.pod.uid", w.pod_uid);
  add("k8s_pod_name", "k8s.pod.name", w.pod_name);
  add("k8s_namespace_name", "k8s.namespace.name", w.namespace_name);
  add("k8s_deployment_name", "k8s.deployment.name", w.deployment);
  add("k8s_statefulset_name", "k8s.statefulset.name", w.statefulset);
  add("k8s_daemonset_name", "k8s.daemonset.name", w.daemonset);
  add("k8s_replicaset_name", "k8s.replicaset.name", w.replicaset);
  add("k8s_cronjob_name", "k8s.cronjob.name", w.cronjob);
  add("k8s_job_name", "k8s.job.name", w.job);
  // The metrics store keys series by this: a container whose pod name arrives later gets a
  // new series set with the new labels (the old one keeps what was known then).
  for (size_t i = 1; i < w.labels.size(); ++i) {
    w.key.push_back('\x1e');
    w.key.append(w.labels[i].second);
  }
  return w;
}

Resolver::Resolver(FileReader reader) : Resolver(std::move(reader), Options{}) {}

Resolver::Resolver(FileReader reader, Options options)
    : reader_(std::move(reader)), options_(std::move(options)) {
  if (options_.max_pids == 0) options_.max_pids = 1;
  if (options_.max_workloads == 0) options_.max_workloads = 1;
}

void Resolver::SetPods(std::shared_ptr<const PodTable> pods) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  pods_ = std::move(pods);
  pods_generation_.fetch_add(1, std::memory_order_release);
}

Resolver::Stats Resolver::GetStats() const noexcept {
  return {cgroup_reads_.load(std::memory_order_relaxed), pid_count_.load(std::memory_order_relaxed),
          workload_count_.load(std::memory_order_relaxed)};
}

const Workload* Resolver::Of(uint32_t pid, uint64_t now_ns) noexcept {
  if (pid == 0) return nullptr;
  try {
    return Lookup(pid, now_ns).get();
  } catch (...) {
    return nullptr;  // out of memory: no labels rather than no transaction
  }
}

std::shared_ptr<const Workload> Resolver::Lookup(uint32_t pid, uint64_t now_ns) {
  const uint64_t gen = pods_generation_.load(std::memory_order_acquire);
  if (gen != generation_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      snapshot_ = pods_;
    }
    generation_ = gen;
    workloads_.clear();  // rebuilt from the new pod list on their next lookup
  }
  auto it = pids_.find(pid);
  if (it != pids_.end() && now_ns - it->second.read_ns < options_.ttl_ns &&
      it->second.generation == gen) {
    return it->second.workload;
  }
  if (it == pids_.end() && pids_.size() >= options_.max_pids) {
    std::erase_if(pids_,
                  [&](const auto& kv) { return now_ns - kv.second.read_ns >= options_.ttl_ns; });
    if (pids_.size() >= options_.max_pids) pids_.clear();
  }
  cgroup_reads_.fetch_add(1, std::memory_order_relaxed);
  const CgroupRef ref = ParseProcCgroup(
      reader_(options_.proc + "/" + std::to_string(pid) + "/cgroup", kMaxCgroupFile));
  std::shared_ptr<const Workload> w;
  if (!ref.container_id.empty() || !ref.pod_uid.empty()) {
    const std::string key =
        !ref.container_id.empty() ? "c:" + ref.container_id : "p:" + ref.pod_uid;
    auto wit = workloads_.find(key);
    if (wit != workloads_.end()) {
      w = wit->second;
    } else {
      w = std::make_shared<const Workload>(
          BuildWorkload(ref, snapshot_.get(), RuntimeName(ref, now_ns)));
      if (workloads_.size() >= options_.max_workloads) workloads_.clear();
      workloads_.emplace(key, w);
    }
  }
  PidEntry& e = pids_[pid];
  e.workload = w;
  e.read_ns = now_ns;
  e.generation = gen;
  pid_count_.store(pids_.size(), std::memory_order_relaxed);
  workload_count_.store(workloads_.size(), std::memory_order_relaxed);
  return w;
}

std::string Resolver::RuntimeName(const CgroupRef& ref, uint64_t now_ns) {
  if (ref.container_id.empty() || !ref.pod_uid.empty()) return "";  // pods: the kubelet names
  if (ref.runtime == "docker") {
    return ParseDockerConfigV2Name(reader_(
        options_.docker_containers + "/" + ref.container_id + "/config.v2.json", kMaxDockerConfig));
  }
  // podman (and CRI-O outside Kubernetes) share containers/storage.
  auto it = storage_names_.find(ref.container_id);
  if (it != storage_names_.end()) return it->second;
  if (!storage_read_ || now_ns - storage_read_ns_ >= kStorageRereadNs) {
    storage_read_ = true;
    storage_read_ns_ = now_ns;
    storage_names_.clear();
    std::string error;
    ParseContainersStorageJson(reader_(options_.containers_storage, kMaxStorageFile),
                               &storage_names_, &error);
    it = storage_names_.find(ref.container_id);
    if (it != storage_names_.end()) return it->second;
  }
  return "";
}

}  // namespace redtap::metadata

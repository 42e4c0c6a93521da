// SPDX-License-Identifier: Apache-2.0
// The per-pid Resolver: /proc/PID/cgroup → container id and pod uid, named by the pod table
// or the runtime's files; cached per pid (bounded, with a TTL), rebuilt when pods change.
#include "userspace/metadata/resolver.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace redtap::metadata {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

constexpr uint64_t kSec = 1'000'000'000ull;
constexpr uint64_t kTtl = 10 * kSec;

constexpr std::string_view kId = "de96e43b82e1c3d2d665ad183d5d370e3e47df58792360bed1876dc5954d3a9d";
constexpr std::string_view kId2 =
    "4c44d7c28ec0f6ca3e2624c6af1d3be324576d01ef6f6c2dc0af7e61664b8c2c";
constexpr std::string_view kPod = "0d2b9f7a-6c3e-4b1d-9a8f-2e5c7d1b4a63";

std::string S(std::string_view s) { return std::string(s); }

// Files by path; every read is counted, per path too.
struct FakeFs {
  std::map<std::string, std::string> files;
  std::map<std::string, int> reads_by_path;
  int reads = 0;

  FileReader Reader() {
    return [this](const std::string& path, size_t max) {
      ++reads;
      ++reads_by_path[path];
      auto it = files.find(path);
      if (it == files.end()) return std::string();
      return it->second.substr(0, max);
    };
  }
  void SetCgroup(uint32_t pid, const std::string& text) {
    files["/fakeproc/" + std::to_string(pid) + "/cgroup"] = text;
  }
  int CgroupReads(uint32_t pid) {
    return reads_by_path["/fakeproc/" + std::to_string(pid) + "/cgroup"];
  }
};

Resolver::Options FakeOptions(size_t max_pids = 64) {
  Resolver::Options o;
  o.max_pids = max_pids;
  o.ttl_ns = kTtl;
  o.proc = "/fakeproc";
  o.containers_storage = "/fake/containers.json";
  o.docker_containers = "/fake/docker";
  return o;
}

std::string ContainersJson() {
  return R"([{"id":")" + S(kId) +
         R"(","names":["shopfront"],"image":"abc","layer":"def"},)"
         R"({"id":")" +
         S(kId2) + R"(","names":["cart","cart-alias"]}])";
}

TEST(ResolverTest, ProcessInNoContainerIsNullAndCached) {
  FakeFs fs;
  fs.SetCgroup(10, "0::/user.slice/user-1000.slice/session-2.scope\n");
  // This sandbox's own cgroup: a 32-hex id under /process_api is not a container.
  fs.SetCgroup(11,
               "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/"
               "2e2c6331a0ffd82896eb9274e4570127\n1:cpu:/\n0::/\n");
  Resolver r(fs.Reader(), FakeOptions());
  const uint64_t t0 = 100 * kSec;
  EXPECT_EQ(r.Of(10, t0), nullptr);
  EXPECT_EQ(r.Of(11, t0), nullptr);
  EXPECT_EQ(fs.reads, 2);
  EXPECT_EQ(r.GetStats().cgroup_reads, 2u);
  EXPECT_EQ(r.GetStats().pids, 2u);
  EXPECT_EQ(r.GetStats().workloads, 0u);

  // Within the TTL: from the cache.
  EXPECT_EQ(r.Of(10, t0 + kTtl - 1), nullptr);
  EXPECT_EQ(r.Of(11, t0 + kTtl - 1), nullptr);
  EXPECT_EQ(fs.reads, 2);
  // After it: read again.
  EXPECT_EQ(r.Of(10, t0 + kTtl), nullptr);
  EXPECT_EQ(fs.CgroupReads(10), 2);
  EXPECT_EQ(fs.CgroupReads(11), 1);
  EXPECT_EQ(r.GetStats().cgroup_reads, 3u);
  // Nothing but cgroup files was read (no container: no runtime file).
  EXPECT_EQ(fs.reads, 3);
}

TEST(ResolverTest, PodmanContainerNamedFromContainersStorage) {
  FakeFs fs;
  fs.files["/fake/containers.json"] = ContainersJson();
  fs.SetCgroup(4242, "4:memory:/libpod_parent/libpod-" + S(kId) + "\n0::/\n");
  Resolver r(fs.Reader(), FakeOptions());
  const Workload* w = r.Of(4242, kSec);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->container_id, kId);
  EXPECT_EQ(w->container_name, "shopfront");
  EXPECT_EQ(w->service_name, "shopfront");
  EXPECT_TRUE(w->key.starts_with("c:" + S(kId))) << w->key;
  EXPECT_EQ(w->pod_uid, "");
  EXPECT_EQ(w->pod_name, "");
  EXPECT_EQ(w->labels, (Labels{{"container_id", S(kId)}, {"container_name", "shopfront"}}));
  EXPECT_EQ(w->attributes, (Labels{{"container.id", S(kId)}, {"container.name", "shopfront"}}));
  EXPECT_EQ(fs.reads_by_path["/fake/containers.json"], 1);

  // A second process of the same container shares the workload, without reading the storage.
  fs.SetCgroup(4243, "0::/machine.slice/libpod-" + S(kId) + ".scope/container\n");
  const Workload* w2 = r.Of(4243, kSec);
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(w2->container_name, "shopfront");
  EXPECT_EQ(r.GetStats().workloads, 1u);
  EXPECT_EQ(fs.reads_by_path["/fake/containers.json"], 1);

  // Another container of the same storage file: its first name, no new read within 5 s.
  fs.SetCgroup(4244, "0::/machine.slice/libpod-" + S(kId2) + ".scope\n");
  const Workload* w3 = r.Of(4244, 2 * kSec);
  ASSERT_NE(w3, nullptr);
  EXPECT_EQ(w3->container_name, "cart");
  EXPECT_EQ(fs.reads_by_path["/fake/containers.json"], 1);
  EXPECT_EQ(r.GetStats().workloads, 2u);
}

TEST(ResolverTest, DockerContainerNamedFromItsConfig) {
  FakeFs fs;
  fs.files["/fake/docker/" + S(kId) + "/config.v2.json"] =
      R"({"ID":")" + S(kId) + R"(","Name":"/shop","State":{"Running":true}})";
  fs.SetCgroup(7, "0::/system.slice/docker-" + S(kId) + ".scope\n");
  Resolver r(fs.Reader(), FakeOptions());
  const Workload* w = r.Of(7, kSec);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->container_id, kId);
  EXPECT_EQ(w->container_name, "shop");
  EXPECT_EQ(w->service_name, "shop");
  EXPECT_EQ(w->labels, (Labels{{"container_id", S(kId)}, {"container_name", "shop"}}));
  EXPECT_EQ(fs.reads_by_path["/fake/containers.json"], 0) << "docker: not podman's storage";
  EXPECT_EQ(fs.reads_by_path["/fake/docker/" + S(kId) + "/config.v2.json"], 1);

  // An unknown docker container: labelled by its id only, the service left to the caller.
  fs.SetCgroup(8, "0::/system.slice/docker-" + S(kId2) + ".scope\n");
  const Workload* u = r.Of(8, kSec);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->container_name, "");
  EXPECT_EQ(u->service_name, "");
  EXPECT_EQ(u->labels, (Labels{{"container_id", S(kId2)}}));
}

TEST(ResolverTest, KubernetesContainerNamedOncePodsArePublished) {
  FakeFs fs;
  fs.files["/fake/containers.json"] = ContainersJson();  // never consulted for pods
  fs.SetCgroup(500, "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                        std::string("0d2b9f7a_6c3e_4b1d_9a8f_2e5c7d1b4a63") +
                        ".slice/cri-containerd-" + S(kId) + ".scope\n");
  Resolver r(fs.Reader(), FakeOptions());
  const Workload* before = r.Of(500, kSec);
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(before->container_id, kId);
  EXPECT_EQ(before->pod_uid, kPod);
  EXPECT_EQ(before->service_name, "");
  EXPECT_EQ(before->container_name, "");
  EXPECT_TRUE(before->key.starts_with("c:" + S(kId))) << before->key;
  const std::string before_key = before->key;
  EXPECT_EQ(before->labels, (Labels{{"container_id", S(kId)}, {"k8s_pod_uid", S(kPod)}}));
  EXPECT_EQ(before->attributes, (Labels{{"container.id", S(kId)}, {"k8s.pod.uid", S(kPod)}}));
  EXPECT_EQ(fs.reads_by_path["/fake/containers.json"], 0);
  EXPECT_EQ(r.Of(500, 2 * kSec), before) << "cached";
  EXPECT_EQ(fs.CgroupReads(500), 1);

  auto pods = std::make_shared<PodTable>();
  PodInfo pod;
  pod.uid = S(kPod);
  pod.name = "checkout-7d4b9c8f6-x2x9z";
  pod.namespace_name = "shop";
  pod.deployment = "checkout";
  pod.replicaset = "checkout-7d4b9c8f6";
  pods->pods_by_uid.emplace(pod.uid, pod);
  pods->containers_by_id.emplace(S(kId), ContainerInfo{"app", S(kPod)});
  r.SetPods(pods);

  // Within the TTL, yet rebuilt from the new pod table.
  const Workload* after = r.Of(500, 3 * kSec);
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->container_id, kId);
  EXPECT_EQ(after->container_name, "app");
  EXPECT_EQ(after->pod_uid, kPod);
  EXPECT_EQ(after->pod_name, "checkout-7d4b9c8f6-x2x9z");
  EXPECT_EQ(after->namespace_name, "shop");
  EXPECT_EQ(after->deployment, "checkout");
  EXPECT_EQ(after->service_name, "checkout");
  EXPECT_TRUE(after->key.starts_with("c:" + S(kId))) << after->key;
  // New labels, a new series set: the metrics store keys services by this.
  EXPECT_NE(after->key, before_key);
  EXPECT_EQ(after->labels, (Labels{{"container_id", S(kId)},
                                   {"container_name", "app"},
                                   {"k8s_pod_uid", S(kPod)},
                                   {"k8s_pod_name", "checkout-7d4b9c8f6-x2x9z"},
                                   {"k8s_namespace_name", "shop"},
                                   {"k8s_deployment_name", "checkout"},
                                   {"k8s_replicaset_name", "checkout-7d4b9c8f6"}}));
  EXPECT_EQ(after->attributes, (Labels{{"container.id", S(kId)},
                                       {"container.name", "app"},
                                       {"k8s.pod.uid", S(kPod)},
                                       {"k8s.pod.name", "checkout-7d4b9c8f6-x2x9z"},
                                       {"k8s.namespace.name", "shop"},
                                       {"k8s.deployment.name", "checkout"},
                                       {"k8s.replicaset.name", "checkout-7d4b9c8f6"}}));
  EXPECT_EQ(fs.reads_by_path["/fake/containers.json"], 0) << "pods are named by the kubelet";
  // And cached again until the TTL or the next pod table.
  const int reads = fs.CgroupReads(500);
  EXPECT_EQ(r.Of(500, 4 * kSec), after);
  EXPECT_EQ(fs.CgroupReads(500), reads);
}

TEST(ResolverTest, PodLevelCgroupIsKeyedByPodUid) {
  FakeFs fs;
  fs.SetCgroup(600, "0::/kubepods/besteffort/pod" + S(kPod) + "\n");
  Resolver r(fs.Reader(), FakeOptions());
  const Workload* w = r.Of(600, kSec);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->container_id, "");
  EXPECT_EQ(w->pod_uid, kPod);
  EXPECT_TRUE(w->key.starts_with("p:" + S(kPod))) << w->key;
  EXPECT_EQ(w->labels, (Labels{{"k8s_pod_uid", S(kPod)}}));

  // With the pod known: a bare pod (no controller) is its own service.
  auto pods = std::make_shared<PodTable>();
  PodInfo pod;
  pod.uid = S(kPod);
  pod.name = "debug";
  pod.namespace_name = "default";
  pods->pods_by_uid.emplace(pod.uid, pod);
  r.SetPods(pods);
  const Workload* named = r.Of(600, kSec);
  ASSERT_NE(named, nullptr);
  EXPECT_TRUE(named->key.starts_with("p:" + S(kPod))) << named->key;
  EXPECT_EQ(named->service_name, "debug");
  EXPECT_EQ(named->labels, (Labels{{"k8s_pod_uid", S(kPod)},
                                   {"k8s_pod_name", "debug"},
                                   {"k8s_namespace_name", "default"}}));
}

TEST(ResolverTest, PidCacheIsBounded) {
  FakeFs fs;
  fs.files["/fake/containers.json"] = ContainersJson();
  Resolver r(fs.Reader(), FakeOptions(4));
  // Pids alternate between two containers and the host.
  const auto expected = [](uint32_t pid) -> std::string_view {
    switch (pid % 3) {
      case 0:
        return kId;
      case 1:
        return kId2;
      default:
        return "";
    }
  };
  for (uint32_t pid = 1; pid <= 200; ++pid) {
    const std::string_view id = expected(pid);
    fs.SetCgroup(pid, id.empty() ? std::string("0::/user.slice\n")
                                 : "0::/machine.slice/libpod-" + S(id) + ".scope\n");
  }
  uint64_t now = kSec;
  for (int round = 0; round < 3; ++round) {
    for (uint32_t pid = 1; pid <= 200; ++pid) {
      now += 1000;  // all within one TTL: eviction must not rely on expiry
      const Workload* w = r.Of(pid, now);
      const std::string_view id = expected(pid);
      if (id.empty()) {
        EXPECT_EQ(w, nullptr) << pid;
      } else {
        ASSERT_NE(w, nullptr) << pid;
        EXPECT_EQ(w->container_id, id) << pid;
        EXPECT_EQ(w->container_name, id == kId ? "shopfront" : "cart") << pid;
      }
      ASSERT_LE(r.GetStats().pids, 4u) << pid;
    }
  }
  EXPECT_LE(r.GetStats().workloads, 2u);
  // Every lookup of a pid not cached reads its cgroup; at least all the first ones.
  EXPECT_GE(r.GetStats().cgroup_reads, 200u);
  EXPECT_EQ(fs.reads_by_path["/fake/containers.json"], 1);

  // Pid 0 (packets, no process): no answer, no read.
  const int reads = fs.reads;
  EXPECT_EQ(r.Of(0, now), nullptr);
  EXPECT_EQ(fs.reads, reads);
}

TEST(ResolverTest, UnreadableCgroupIsNoContainer) {
  FakeFs fs;  // no file at all: the process exited
  Resolver r(fs.Reader(), FakeOptions());
  EXPECT_EQ(r.Of(99, kSec), nullptr);
  EXPECT_EQ(fs.reads, 1);
}

}  // namespace
}  // namespace redtap::metadata

// SPDX-License-Identifier: Apache-2.0
// /proc/<pid>/cgroup as the runtimes leave it: cgroup v1 (one line per hierarchy), v2 (one
// `0::` line) and hybrid, with the cgroupfs and the systemd drivers.
#include "userspace/metadata/cgroup.h"

#include <gtest/gtest.h>

#include <string>

namespace redtap::metadata {
namespace {

// A real podman container id from a cgroup v1 host (libpod_parent, cgroupfs manager).
constexpr std::string_view kId = "de96e43b82e1c3d2d665ad183d5d370e3e47df58792360bed1876dc5954d3a9d";
constexpr std::string_view kId2 =
    "4c44d7c28ec0f6ca3e2624c6af1d3be324576d01ef6f6c2dc0af7e61664b8c2c";
constexpr std::string_view kPod = "0d2b9f7a-6c3e-4b1d-9a8f-2e5c7d1b4a63";
constexpr std::string_view kPodSystemd = "0d2b9f7a_6c3e_4b1d_9a8f_2e5c7d1b4a63";

std::string S(std::string_view s) { return std::string(s); }

// A cgroup v1 file: the same path on every hierarchy, then the hybrid `0::` line.
std::string V1(const std::string& path, const std::string& v2_path = "/") {
  std::string out;
  for (const char* h :
       {"12:pids:", "11:hugetlb:", "10:net_cls,net_prio:", "9:perf_event:", "8:cpuset:", "7:blkio:",
        "6:freezer:", "5:devices:", "4:memory:", "3:cpu,cpuacct:", "2:rdma:", "1:name=systemd:"}) {
    out += h + path + "\n";
  }
  return out + "0::" + v2_path + "\n";
}

void ExpectRef(const CgroupRef& ref, std::string_view id, std::string_view pod,
               std::string_view runtime) {
  EXPECT_EQ(ref.container_id, id);
  EXPECT_EQ(ref.pod_uid, pod);
  EXPECT_EQ(ref.runtime, runtime);
}

TEST(ParseProcCgroupTest, PodmanCgroupfsV1) {
  // What podman writes on this machine (cgroup v1, cgroupfs manager).
  ExpectRef(ParseProcCgroup(V1("/libpod_parent/libpod-" + S(kId))), kId, "", "podman");
  ExpectRef(ParseProcCgroup("4:memory:/libpod_parent/libpod-" + S(kId)), kId, "", "podman");
}

TEST(ParseProcCgroupTest, PodmanSystemd) {
  ExpectRef(ParseProcCgroup("0::/machine.slice/libpod-" + S(kId) + ".scope\n"), kId, "", "podman");
  ExpectRef(ParseProcCgroup("0::/machine.slice/libpod-" + S(kId) + ".scope/container\n"), kId, "",
            "podman");
  ExpectRef(ParseProcCgroup(V1("/machine.slice/libpod-" + S(kId) + ".scope")), kId, "", "podman");
  // Rootless, cgroup v2.
  ExpectRef(ParseProcCgroup("0::/user.slice/user-1000.slice/user@1000.service/user.slice/"
                            "libpod-" +
                            S(kId) + ".scope/container\n"),
            kId, "", "podman");
}

TEST(ParseProcCgroupTest, ConmonIsNotInTheContainer) {
  EXPECT_EQ(ParseProcCgroup("0::/machine.slice/libpod-conmon-" + S(kId) + ".scope\n").container_id,
            "");
  EXPECT_EQ(ParseProcCgroup(V1("/machine.slice/libpod-conmon-" + S(kId) + ".scope")).container_id,
            "");
  // CRI-O's monitor sits in the pod but outside the container.
  ExpectRef(ParseProcCgroup("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                            S(kPodSystemd) + ".slice/crio-conmon-" + S(kId) + ".scope\n"),
            "", kPod, "");
}

TEST(ParseProcCgroupTest, Docker) {
  ExpectRef(ParseProcCgroup(V1("/docker/" + S(kId))), kId, "", "docker");
  ExpectRef(ParseProcCgroup("0::/system.slice/docker-" + S(kId) + ".scope\n"), kId, "", "docker");
  ExpectRef(ParseProcCgroup(V1("/system.slice/docker-" + S(kId) + ".scope",
                               "/system.slice/docker-" + S(kId) + ".scope")),
            kId, "", "docker");
  // Docker in docker: the innermost container.
  ExpectRef(ParseProcCgroup("0::/docker/" + S(kId2) + "/docker/" + S(kId) + "\n"), kId, "",
            "docker");
}

TEST(ParseProcCgroupTest, RuntimeDaemonsAreNoContainer) {
  ExpectRef(ParseProcCgroup("0::/system.slice/containerd.service\n"), "", "", "");
  ExpectRef(ParseProcCgroup(V1("/system.slice/docker.service")), "", "", "");
  ExpectRef(ParseProcCgroup("0::/init.scope\n"), "", "", "");
}

TEST(ParseProcCgroupTest, KubepodsCgroupfs) {
  ExpectRef(ParseProcCgroup(V1("/kubepods/burstable/pod" + S(kPod) + "/" + S(kId))), kId, kPod, "");
  ExpectRef(ParseProcCgroup(V1("/kubepods/besteffort/pod" + S(kPod) + "/" + S(kId))), kId, kPod,
            "");
  // Guaranteed QoS pods sit right under kubepods.
  ExpectRef(ParseProcCgroup(V1("/kubepods/pod" + S(kPod) + "/" + S(kId))), kId, kPod, "");
  ExpectRef(ParseProcCgroup("0::/kubepods/burstable/pod" + S(kPod) + "/" + S(kId) + "\n"), kId,
            kPod, "");
  // CRI-O with the cgroupfs manager.
  ExpectRef(ParseProcCgroup(V1("/kubepods/besteffort/pod" + S(kPod) + "/crio-" + S(kId))), kId,
            kPod, "cri-o");
}

TEST(ParseProcCgroupTest, KubepodsSystemd) {
  const std::string burstable = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                                S(kPodSystemd) + ".slice/";
  ExpectRef(ParseProcCgroup("0::" + burstable + "cri-containerd-" + S(kId) + ".scope\n"), kId, kPod,
            "containerd");
  ExpectRef(ParseProcCgroup(V1(burstable + "crio-" + S(kId) + ".scope")), kId, kPod, "cri-o");
  ExpectRef(ParseProcCgroup(V1(burstable + "docker-" + S(kId) + ".scope")), kId, kPod, "docker");
  ExpectRef(ParseProcCgroup("0::/kubepods.slice/kubepods-besteffort.slice/"
                            "kubepods-besteffort-pod" +
                            S(kPodSystemd) + ".slice/cri-containerd-" + S(kId) + ".scope\n"),
            kId, kPod, "containerd");
  // Guaranteed.
  ExpectRef(ParseProcCgroup("0::/kubepods.slice/kubepods-pod" + S(kPodSystemd) +
                            ".slice/cri-containerd-" + S(kId) + ".scope\n"),
            kId, kPod, "containerd");
  // containerd's systemd driver on a nested node (kind): "<pod slice>:cri-containerd:<id>".
  ExpectRef(ParseProcCgroup("0::/system.slice/containerd.service/kubepods-burstable-pod" +
                            S(kPodSystemd) + ".slice:cri-containerd:" + S(kId) + "\n"),
            kId, kPod, "containerd");
}

TEST(ParseProcCgroupTest, PodWithoutContainer) {
  // The pod-level cgroup (a process placed there, or the sandbox before its container).
  ExpectRef(ParseProcCgroup("0::/kubepods.slice/kubepods-burstable.slice/"
                            "kubepods-burstable-pod" +
                            S(kPodSystemd) + ".slice\n"),
            "", kPod, "");
  ExpectRef(ParseProcCgroup(V1("/kubepods/besteffort/pod" + S(kPod))), "", kPod, "");
  // A v1 pod line beats nothing; a container anywhere beats a pod alone.
  ExpectRef(ParseProcCgroup("4:memory:/kubepods/pod" + S(kPod) + "\n3:pids:/kubepods/pod" +
                            S(kPod) + "/" + S(kId) + "\n0::/\n"),
            kId, kPod, "");
}

TEST(ParseProcCgroupTest, PodUidNormalised) {
  std::string upper(kPod);
  for (char& c : upper) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  ExpectRef(ParseProcCgroup("0::/kubepods/pod" + upper + "/" + S(kId)), kId, kPod, "");
}

TEST(ParseProcCgroupTest, PodUidOnlyUnderKubepods) {
  ExpectRef(ParseProcCgroup("0::/somewhere/pod" + S(kPod) + "/" + S(kId) + "\n"), kId, "", "");
  ExpectRef(ParseProcCgroup("0::/machine.slice/machine-pod" + S(kPodSystemd) + ".slice\n"), "", "",
            "");
  // Malformed UIDs: dashes misplaced, not hex, too short.
  ExpectRef(ParseProcCgroup("0::/kubepods/pod0d2b9f7a6-c3e-4b1d-9a8f-2e5c7d1b4a63/" + S(kId)), kId,
            "", "");
  ExpectRef(ParseProcCgroup("0::/kubepods/pod0d2b9f7a-6c3e-4b1d-9a8f-2e5c7d1b4a6z/" + S(kId)), kId,
            "", "");
  ExpectRef(ParseProcCgroup("0::/kubepods/pod0d2b9f7a-6c3e-4b1d-9a8f/" + S(kId)), kId, "", "");
}

TEST(ParseProcCgroupTest, BareIdElsewhereHasNoRuntime) {
  // containerd without Kubernetes (nerdctl, namespace "default"), ECS tasks.
  ExpectRef(ParseProcCgroup("0::/default/" + S(kId) + "\n"), kId, "", "");
  ExpectRef(ParseProcCgroup(V1("/ecs/2e2c6331a0ffd82896eb9274e4570127/" + S(kId))), kId, "", "");
}

TEST(ParseProcCgroupTest, V2LineWinsElseFirstV1) {
  // Hybrid with both naming a container: the v2 line.
  ExpectRef(ParseProcCgroup("4:memory:/docker/" + S(kId2) + "\n0::/system.slice/docker-" + S(kId) +
                            ".scope\n"),
            kId, "", "docker");
  // v2 without a container: the first v1 line that names one.
  ExpectRef(ParseProcCgroup("5:devices:/\n4:memory:/libpod_parent/libpod-" + S(kId) +
                            "\n3:pids:/libpod_parent/libpod-" + S(kId2) + "\n0::/\n"),
            kId, "", "podman");
  // v2 first in the file changes nothing.
  ExpectRef(ParseProcCgroup("0::/\n1:name=systemd:/docker/" + S(kId) + "\n"), kId, "", "docker");
}

TEST(ParseProcCgroupTest, NotAContainerId) {
  // This sandbox's own cgroup: 32 hex digits are not a container id.
  const std::string sandbox =
      "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n"
      "4:memory:/process_api/2e2c6331a0ffd82896eb9274e4570127\n3:cpuset:/\n2:cpuacct:/\n"
      "1:cpu:/\n0::/\n";
  ExpectRef(ParseProcCgroup(sandbox), "", "", "");
  std::string upper(kId);
  upper[0] = 'D';
  ExpectRef(ParseProcCgroup("0::/docker/" + upper + "\n"), "", "", "");
  ExpectRef(ParseProcCgroup("0::/docker/" + S(kId.substr(1)) + "\n"), "", "", "");
  ExpectRef(ParseProcCgroup("0::/docker/" + S(kId) + "0\n"), "", "", "");
  ExpectRef(ParseProcCgroup("0::/system.slice/docker-" + S(kId) + "x.scope\n"), "", "", "");
  ExpectRef(ParseProcCgroup("0::/system.slice/docker-" + S(kId) + ".scopex\n"), "", "", "");
  ExpectRef(ParseProcCgroup("0::/system.slice/" + S(kId).insert(10, "-") + "\n"), "", "", "");
}

TEST(ParseProcCgroupTest, MalformedInput) {
  ExpectRef(ParseProcCgroup(""), "", "", "");
  ExpectRef(ParseProcCgroup("\n\n\n"), "", "", "");
  ExpectRef(ParseProcCgroup("garbage without colons " + S(kId)), "", "", "");
  ExpectRef(ParseProcCgroup("0:" + S(kId)), "", "", "");
  // No trailing newline, CR line ends (the id check rejects the '\r').
  ExpectRef(ParseProcCgroup("0::/docker/" + S(kId)), kId, "", "docker");
  ExpectRef(ParseProcCgroup("0::/docker/" + S(kId) + "\r\n"), "", "", "");
  // The path may contain ':'.
  ExpectRef(ParseProcCgroup("0::/a:b:c/docker/" + S(kId)), kId, "", "docker");
  std::string binary;
  for (int i = 0; i < 4096; ++i) binary.push_back(static_cast<char>(i * 37 % 256));
  ExpectRef(ParseProcCgroup(binary), "", "", "");
}

TEST(ParseProcCgroupTest, HostileSizes) {
  // One 16 MiB line, many slashes, many lines: linear work, no crash.
  std::string line = "0::" + std::string(8 << 20, '/') + std::string(8 << 20, 'a');
  ExpectRef(ParseProcCgroup(line), "", "", "");
  std::string lines;
  for (int i = 0; i < 200000; ++i) lines += "4:memory:/kubepods/pod/x\n";
  ExpectRef(ParseProcCgroup(lines + "0::/docker/" + S(kId) + "\n"), kId, "", "docker");
  std::string components;
  for (int i = 0; i < 100000; ++i) components += "/kubepods-pod" + S(kPodSystemd) + ".slice";
  ExpectRef(ParseProcCgroup("0::" + components + "/crio-" + S(kId) + ".scope"), kId, kPod, "cri-o");
}

}  // namespace
}  // namespace redtap::metadata

// SPDX-License-Identifier: Apache-2.0
// Which container (and Kubernetes pod) a process runs in, from the text of its
// /proc/<pid>/cgroup. Pure: the caller reads the file. The layouts recognised are those the
// runtimes write with the cgroupfs and the systemd cgroup drivers, cgroup v1, v2 and hybrid:
//
//   docker      /docker/<id>                      /system.slice/docker-<id>.scope
//   podman      /libpod_parent/libpod-<id>        /machine.slice/libpod-<id>.scope[/container]
//               rootless:
//               /user.slice/user-1000.slice/user@1000.service/user.slice/libpod-<id>.scope
//   kubernetes  /kubepods[/burstable|/besteffort]/pod<uid>/[crio-]<id>
//               /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<u_i_d>.slice/
//                 {cri-containerd,crio,docker}-<id>.scope
//               /system.slice/containerd.service/kubepods-...-pod<u_i_d>.slice:cri-containerd:<id>
//
// Monitor processes (`libpod-conmon-<id>.scope`, `crio-conmon-<id>.scope`) are not in the
// container and get no id.
#pragma once

#include <string>
#include <string_view>

namespace redtap::metadata {

struct CgroupRef {
  /// 64 lower-case hex digits, "" when the process is in no recognised container.
  std::string container_id;
  /// Kubernetes pod UID, canonical 8-4-4-4-12 lower-case with dashes; "" outside a pod. Set
  /// without a container id for pod-level cgroups (the pause process, pod sandboxes).
  std::string pod_uid;
  /// "docker", "containerd", "cri-o", "podman", or "" (unknown: a bare id, no container).
  /// Points to a string literal.
  std::string_view runtime;
};

/// Parses the text of /proc/<pid>/cgroup (`hierarchy-id:controllers:path` lines). The v2
/// line (`0::path`) wins when it names a container, else the first v1 line that does; with
/// no container anywhere, the pod of the first line that names one. Linear in the input, no
/// limit on line length; an empty CgroupRef for anything unrecognised.
CgroupRef ParseProcCgroup(std::string_view proc_pid_cgroup_text) noexcept;

/// True when `s` is exactly 64 lower-case hex digits (a docker/OCI container id).
bool IsContainerId(std::string_view s) noexcept;

}  // namespace redtap::metadata

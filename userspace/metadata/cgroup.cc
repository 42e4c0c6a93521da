// SPDX-License-Identifier: Apache-2.0
#include "userspace/metadata/cgroup.h"

namespace redtap::metadata {
namespace {

constexpr std::string_view kDocker = "docker";
constexpr std::string_view kContainerd = "containerd";
constexpr std::string_view kCrio = "cri-o";
constexpr std::string_view kPodman = "podman";

bool IsLowerHex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// A pod UID from one path component under kubepods: `pod<uid>` (cgroupfs driver) or
// `kubepods[-<qos>]-pod<u_i_d>.slice` (systemd driver, which turns the UID's dashes into
// underscores). Writes the canonical form to *uid.
bool PodUidFromComponent(std::string_view c, std::string* uid) {
  std::string_view raw;
  if (c.ends_with(".slice")) {
    c.remove_suffix(6);
    const size_t p = c.rfind("-pod");
    if (p == std::string_view::npos) return false;
    raw = c.substr(p + 4);
  } else if (c.starts_with("pod")) {
    raw = c.substr(3);
  } else {
    return false;
  }
  if (raw.size() != 36) return false;
  char out[36];
  for (size_t i = 0; i < 36; ++i) {
    char ch = raw[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-' && ch != '_') return false;
      out[i] = '-';
      continue;
    }
    if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
    if (!IsLowerHex(ch)) return false;
    out[i] = ch;
  }
  uid->assign(out, sizeof(out));
  return true;
}

struct Found {
  std::string_view id;
  std::string_view runtime;
};

// The container one path component names: `<prefix><id>[.scope]` with a runtime prefix, or a
// bare id (docker's cgroupfs `/docker/<id>`, kubepods' `/pod<uid>/<id>`, whose runtime the
// path does not say). `libpod-conmon-<id>` and `crio-conmon-<id>` fail the id check: the
// monitor runs outside the container.
bool ContainerFromComponent(std::string_view c, std::string_view parent, Found* out) noexcept {
  static constexpr struct {
    std::string_view prefix, runtime;
  } kPrefixes[] = {
      {"docker-", kDocker},
      {"cri-containerd-", kContainerd},
      {"crio-", kCrio},
      {"libpod-", kPodman},
  };
  for (const auto& p : kPrefixes) {
    if (!c.starts_with(p.prefix)) continue;
    std::string_view id = c.substr(p.prefix.size());
    if (id.ends_with(".scope")) id.remove_suffix(6);
    if (!IsContainerId(id)) return false;
    *out = {id, p.runtime};
    return true;
  }
  if (!IsContainerId(c)) return false;
  *out = {c, parent == "docker" ? kDocker : std::string_view()};
  return true;
}

// One cgroup path. The last component naming a container wins (docker in docker:
// /docker/<outer>/docker/<inner>); podman's systemd layouts put the id one level up
// (`libpod-<id>.scope/container`).
CgroupRef ParsePath(std::string_view path) {
  CgroupRef ref;
  Found last;
  bool in_kube = false;
  std::string_view parent;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view c = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (c.empty()) continue;
    if (c.starts_with("kubepods")) in_kube = true;
    // containerd's systemd driver when it does not own the slice (kind, nested nodes):
    // "kubepods-<qos>-pod<u_i_d>.slice:cri-containerd:<id>".
    const size_t colon = c.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view slice = c.substr(0, colon);
      const std::string_view rest = c.substr(colon + 1);
      const size_t colon2 = rest.find(':');
      if (colon2 != std::string_view::npos) {
        const std::string_view prefix = rest.substr(0, colon2);
        const std::string_view id = rest.substr(colon2 + 1);
        std::string_view runtime;
        if (prefix == "cri-containerd") runtime = kContainerd;
        if (prefix == "crio") runtime = kCrio;
        if (prefix == "docker") runtime = kDocker;
        if (!runtime.empty() && IsContainerId(id)) {
          if (in_kube) PodUidFromComponent(slice, &ref.pod_uid);
          last = {id, runtime};
        }
      }
      parent = c;
      continue;
    }
    if (in_kube) PodUidFromComponent(c, &ref.pod_uid);
    Found f;
    if (ContainerFromComponent(c, parent, &f)) last = f;
    parent = c;
  }
  if (!last.id.empty()) {
    ref.container_id.assign(last.id);
    ref.runtime = last.runtime;
  }
  return ref;
}

}  // namespace

bool IsContainerId(std::string_view s) noexcept {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!IsLowerHex(c)) return false;
  }
  return true;
}

CgroupRef ParseProcCgroup(std::string_view text) noexcept {
  try {
    CgroupRef v1_container, v1_pod, v2_pod;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      const std::string_view line = text.substr(pos, eol - pos);
      pos = eol + 1;
      // hierarchy-id:controllers:path; the path itself may hold ':'.
      const size_t c1 = line.find(':');
      if (c1 == std::string_view::npos) continue;
      const size_t c2 = line.find(':', c1 + 1);
      if (c2 == std::string_view::npos) continue;
      const bool v2 = line.substr(0, c1) == "0" && c2 == c1 + 1;
      CgroupRef ref = ParsePath(line.substr(c2 + 1));
      if (v2) {
        if (!ref.container_id.empty()) return ref;
        if (!ref.pod_uid.empty() && v2_pod.pod_uid.empty()) v2_pod = std::move(ref);
      } else if (!ref.container_id.empty()) {
        if (v1_container.container_id.empty()) v1_container = std::move(ref);
      } else if (!ref.pod_uid.empty() && v1_pod.pod_uid.empty()) {
        v1_pod = std::move(ref);
      }
    }
    if (!v1_container.container_id.empty()) return v1_container;
    if (!v2_pod.pod_uid.empty()) return v2_pod;
    return v1_pod;
  } catch (...) {  // std::bad_alloc: nothing else throws
    return {};
  }
}

}  // namespace redtap::metadata

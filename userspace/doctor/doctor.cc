// SPDX-License-Identifier: Apache-2.0
#include "userspace/doctor/doctor.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <dirent.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "capture.skel.h"
#include "probe.skel.h"
#include "userspace/bpf/bpf_object.h"
#include "userspace/bpf/tracefs.h"
#include "userspace/common/errno_text.h"
#include "userspace/tls/elf_symbols.h"
#include "userspace/tls/go_tls.h"
#include "userspace/tls/probe_sites.h"
#include "userspace/tls/tls_attacher.h"

extern "C" __attribute__((noinline, used, visibility("default"))) void
redtap_doctor_uprobe_target() {
  asm volatile("" ::: "memory");
}

namespace redtap {
namespace {

std::string ReadFirstLine(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// The cgroup v2 mount point: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid.
std::string Cgroup2Mount() {
  std::ifstream f("/proc/self/mounts");
  std::string dev, dir, type;
  std::string rest;
  while (f >> dev >> dir >> type && std::getline(f, rest)) {
    if (type == "cgroup2") return dir;
  }
  return "";
}

uint64_t EffectiveCaps() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  }
  return 0;
}

// The capabilities redtap's features use (README "Security and reliability"), checked and
// named one by one: the DaemonSet and the systemd unit grant exactly these.
struct KnownCap {
  int bit;
  const char* name;
};
constexpr KnownCap kKnownCaps[] = {
    {21, "CAP_SYS_ADMIN"},   // uprobes (TLS), tracefs mount; or everything on kernels < 5.8
    {39, "CAP_BPF"},         // BPF programs and maps
    {38, "CAP_PERFMON"},     // tracepoints, reading process memory from BPF
    {12, "CAP_NET_ADMIN"},   // sockops, cgroup_skb, TC
    {19, "CAP_SYS_PTRACE"},  // /proc/PID/exe and /proc/PID/root of other users' processes
};

DoctorCheck CheckCaps() {
  DoctorCheck c{"capabilities", false, true, ""};
  uint64_t caps = EffectiveCaps();
  auto has = [&](int bit) { return (caps >> bit) & 1; };
  constexpr int kSysAdmin = 21, kBpf = 39, kPerfmon = 38;
  std::string list;
  for (const KnownCap& k : kKnownCaps) {
    list += std::string(list.empty() ? "" : " ") + k.name + "=" + (has(k.bit) ? "yes" : "no");
  }
  if (has(kSysAdmin) || (has(kBpf) && has(kPerfmon))) {
    c.ok = true;
    c.detail = std::string(geteuid() == 0 ? "root" : "not root") + ", " + list;
  } else {
    c.detail =
        "needs root, or CAP_BPF + CAP_PERFMON (+ CAP_SYS_ADMIN for TLS uprobes and to mount "
        "tracefs); have " +
        list;
  }
  return c;
}

DoctorCheck CheckBtf() {
  DoctorCheck c{"kernel BTF", false, true, ""};
  struct btf* btf = btf__load_vmlinux_btf();
  if (!btf) {
    c.detail = "/sys/kernel/btf/vmlinux missing or unreadable (" + ErrnoText(errno) +
               "): CO-RE needs a kernel built with CONFIG_DEBUG_INFO_BTF=y";
    return c;
  }
  c.ok = true;
  c.detail = "/sys/kernel/btf/vmlinux, " + std::to_string(btf__type_cnt(btf)) + " types";
  btf__free(btf);
  return c;
}

// Where the OpenSSL probes go in this host's system libssl, per function (tls/probe_sites.h):
// "emulated" costs two emulated traps per call; "uretprobe_stepped_entry" a single-step trap
// and a return trap (~15 us on a VM). Informational: every mode captures the same.
DoctorCheck CheckTlsProbeSites() {
  DoctorCheck c{"tls probe placement", true, false, ""};
  for (const std::string& lib : tls::SystemLibssl()) {
    auto off =
        tls::FindFunctionOffsets(lib, {"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"});
    if (!off.ok() || off->empty()) continue;
    std::string line;
    for (const char* fn : {"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"}) {
      auto it = off->find(fn);
      if (it == off->end()) continue;
      const tls::ProbeSites sites = tls::FindProbeSitesInFile(lib, it->second);
      line += std::string(line.empty() ? "" : ", ") + fn + " " + sites.Mode();
    }
    c.detail += (c.detail.empty() ? "" : "; ") + lib + ": " + line;
  }
  if (c.detail.empty()) c.detail = "no system libssl found (executables are checked at attach)";
  return c;
}

// The Go programs running now that link crypto/tls: how each would be probed, or why not
// (tls/go_tls.h). Informational; programs started later are checked at attach.
DoctorCheck CheckGoTlsProbeSites() {
  DoctorCheck c{"go tls probe placement", true, false, ""};
  std::set<std::pair<dev_t, ino_t>> seen;
  size_t shown = 0, more = 0;
  DIR* d = opendir("/proc");
  while (d != nullptr) {
    const dirent* e = readdir(d);
    if (e == nullptr) break;
    char* end = nullptr;
    const long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    const std::string exe = "/proc/" + std::to_string(pid) + "/exe";
    struct stat st {};
    if (stat(exe.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
    const tls::GoTlsBinary go = tls::InspectGoTls(exe);
    if (!go.found) continue;
    if (shown == 8) {
      ++more;
      continue;
    }
    ++shown;
    char buf[4096];
    const ssize_t n = readlink(exe.c_str(), buf, sizeof(buf) - 1);
    const std::string name = n > 0 ? std::string(buf, static_cast<size_t>(n)) : exe;
    c.detail += (c.detail.empty() ? "" : "; ") + name + ": " +
                (go.why.empty() ? "Read " + go.ReadMode() + ", Write " + go.write.sites.Mode(true)
                                : "not probed (" + go.why + ")");
  }
  if (d != nullptr) closedir(d);
  if (more) c.detail += "; and " + std::to_string(more) + " more";
  if (c.detail.empty()) c.detail = "no running Go program with crypto/tls (checked at attach)";
  return c;
}

DoctorCheck CheckLockdown() {
  DoctorCheck c{"lockdown", true, true, ""};
  std::string l = ReadFirstLine("/sys/kernel/security/lockdown");
  if (l.empty()) {
    c.detail = "no lockdown LSM (fine)";
  } else if (l.find("[confidentiality]") != std::string::npos) {
    c.ok = false;
    c.detail = l + ": BPF may not read kernel or user memory; capture cannot work";
  } else {
    c.detail = l + " (fine)";
  }
  return c;
}

DoctorCheck CheckTracefs() {
  DoctorCheck c{"tracefs", false, true, ""};
  auto r = EnsureTracefs();
  if (!r.ok()) {
    c.detail = r.error();
    return c;
  }
  c.ok = true;
  c.detail = r.value().empty() ? "mounted, syscall tracepoints visible" : r.value();
  return c;
}

// Attaches a cgroup program (sockops, cgroup_skb) to the root of the cgroup v2 hierarchy.
struct bpf_link* AttachToRootCgroup(struct bpf_program* prog) {
  std::string mnt = Cgroup2Mount();
  int cg = mnt.empty() ? -1 : open(mnt.c_str(), O_RDONLY | O_DIRECTORY);
  if (cg < 0) {
    errno = ENOENT;
    return nullptr;
  }
  struct bpf_link* link = bpf_program__attach_cgroup(prog, cg);
  int err = errno;
  close(cg);  // the link holds the cgroup
  errno = err;
  return link;
}

// Loads probe.bpf.o with only `prog` enabled, attaches it, detaches it (through the BPF
// loading library, quietly: failures are what the doctor reports).
// Whether this process runs under a seccomp filter (/proc/self/status "Seccomp: 2").
bool SeccompFiltered() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Seccomp:", 0) == 0) return line.find('2') != std::string::npos;
  }
  return false;
}

// When a hook failed with EPERM/EACCES: the capability that is missing for it, named (or the
// seccomp profile, when every capability is there). "" for other errors.
std::string MissingCapabilityHint(std::string_view prog, std::string_view error, bool attach) {
  if (error.find("Operation not permitted") == std::string_view::npos &&
      error.find("Permission denied") == std::string_view::npos) {
    return "";
  }
  const uint64_t caps = EffectiveCaps();
  const auto has = [&](int bit) { return ((caps >> bit) & 1) != 0; };
  constexpr int kSysAdmin = 21, kBpf = 39, kPerfmon = 38, kNetAdmin = 12;
  const bool cgroup = prog == "probe_sockops" || prog == "probe_cgroup_skb";
  std::vector<std::string> missing;
  if (!attach) {
    if (!has(kBpf) && !has(kSysAdmin)) missing.push_back("CAP_BPF");
    if (!cgroup && !has(kPerfmon) && !has(kSysAdmin)) missing.push_back("CAP_PERFMON");
    if (cgroup && !has(kNetAdmin) && !has(kSysAdmin)) missing.push_back("CAP_NET_ADMIN");
  } else if (prog == "probe_uprobe") {
    if (!has(kSysAdmin)) missing.push_back("CAP_SYS_ADMIN");
  } else if (cgroup) {
    if (!has(kNetAdmin)) missing.push_back("CAP_NET_ADMIN");
  } else if (!has(kPerfmon) && !has(kSysAdmin)) {
    missing.push_back("CAP_PERFMON");
  }
  if (missing.empty()) {
    // Every capability is there: a seccomp filter (a container runtime's default profile
    // refuses bpf() without CAP_SYS_ADMIN) is the usual culprit; without one, the kernel
    // itself refuses (e.g. fentry here), and no hint is better than a wrong one.
    if (!SeccompFiltered()) return "";
    return " (every capability it needs is present: this process runs under a seccomp "
           "filter, which may refuse it: run with seccomp Unconfined)";
  }
  std::string out = " (missing ";
  for (size_t i = 0; i < missing.size(); ++i) out += (i ? " and " : "") + missing[i];
  return out + ")";
}

DoctorCheck CheckHook(const char* label, const char* prog_name, bool required,
                      std::string why_needed) {
  DoctorCheck c{label, false, required, ""};
  constexpr std::string_view kOpenError = "cannot open probe object: ";
  LoadOptions o;
  o.open_error = kOpenError;
  o.load_error = "load failed: ";
  o.fallback = false;
  o.quiet = true;
  auto loaded = Skeleton<struct probe>::Load(
      [prog_name](struct probe* skel, bool) -> Status {
        bool found = false;
        struct bpf_program* p;
        bpf_object__for_each_program(p, skel->obj) {
          bool me = strcmp(bpf_program__name(p), prog_name) == 0;
          bpf_program__set_autoload(p, me);
          found = found || me;
        }
        if (!found) return Status::Error("load failed: " + ErrnoText(ENOENT));
        return Status::Ok();
      },
      std::move(o));
  if (!loaded.ok()) {
    c.detail = loaded.error();
    // An object that does not open says only that; a load failure says what the hook is for.
    if (!c.detail.starts_with(kOpenError)) {
      c.detail += MissingCapabilityHint(prog_name, c.detail, false) + " — " + why_needed;
    }
    return c;
  }
  BpfObject& obj = *loaded.value();
  std::string name = prog_name;
  bool cgroup = name == "probe_sockops" || name == "probe_cgroup_skb";
  HookSpec spec{name, required, nullptr};
  if (name == "probe_uprobe") {
    spec.attach = [](struct bpf_program* p) {
      LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = "redtap_doctor_uprobe_target");
      return bpf_program__attach_uprobe_opts(p, getpid(), "/proc/self/exe", 0, &uo);
    };
  } else if (cgroup) {
    spec.attach = AttachToRootCgroup;
  }
  obj.AttachAll({spec});
  const HookStatus& h = obj.hooks().front();
  if (!h.attached) {
    c.detail = "attach failed: " + h.error + MissingCapabilityHint(prog_name, h.error, true);
    if (cgroup && Cgroup2Mount().empty()) why_needed = "no cgroup v2 mount";
  } else {
    c.ok = true;
    c.detail = "loads and attaches";
    if (name == "probe_uprobe") redtap_doctor_uprobe_target();
    if (name == "probe_iter_tcp") {
      int it = bpf_iter_create(bpf_link__fd(obj.Link(name)));
      if (it < 0) {
        c.ok = false;
        c.detail = "attached but bpf_iter_create failed: " + ErrnoText(errno);
      } else {
        char buf[64];
        while (read(it, buf, sizeof(buf)) > 0) {
        }
        close(it);
      }
    }
  }
  obj.DetachAll();
  if (!c.ok) c.detail += " — " + why_needed;
  return c;
}

// Loads every capture program once (small maps, no fallback): does this verifier accept them?
DoctorCheck CheckCaptureLoad() {
  DoctorCheck c{"capture programs", false, true, ""};
  LoadOptions o;
  o.open_error = "cannot open: ";
  o.load_error = "the verifier rejected them: ";
  o.load_hint = " (details: --log-level debug)";
  o.fallback = false;
  o.quiet = true;
  auto loaded = Skeleton<struct capture>::Load(
      [](struct capture* skel, bool) {
        // Small maps: this only checks that the verifier accepts every program.
        bpf_map__set_max_entries(skel->maps.events_rb, 1 << 20);
        bpf_map__set_max_entries(skel->maps.conn_map, 1024);
        return Status::Ok();
      },
      std::move(o));
  if (!loaded.ok()) {
    c.detail = loaded.error();
    return c;
  }
  int n = 0;
  struct bpf_program* p;
  bpf_object__for_each_program(p, loaded.value()->object()) n++;
  c.ok = true;
  c.detail = std::to_string(n) + " programs pass the verifier";
  return c;
}

}  // namespace

std::vector<DoctorCheck> RunDoctor() {
  std::vector<DoctorCheck> out;
  out.push_back(CheckCaps());
  out.push_back(CheckBtf());
  out.push_back(CheckLockdown());
  out.push_back(CheckTracefs());
  out.push_back(CheckHook("hook tracepoint (syscalls)", "probe_tracepoint", true,
                          "capture uses syscall tracepoints"));
  out.push_back(CheckHook("hook ring buffer + task pt_regs", "probe_ringbuf", true,
                          "capture needs BPF ring buffers and bpf_task_pt_regs (5.15+)"));
  out.push_back(CheckCaptureLoad());
  out.push_back(CheckHook("hook raw_tracepoint", "probe_raw_tracepoint", false, "optional"));
  out.push_back(CheckHook("hook tp_btf", "probe_tp_btf", false, "optional"));
  out.push_back(CheckHook("hook iter/tcp", "probe_iter_tcp", false,
                          "used by saturation sampling (listen backlog)"));
  out.push_back(CheckHook("hook uprobe", "probe_uprobe", false, "used for TLS (OpenSSL)"));
  out.push_back(CheckTlsProbeSites());
  out.push_back(CheckGoTlsProbeSites());
  out.push_back(CheckHook("hook sockops", "probe_sockops", false, "used for TCP RTT"));
  out.push_back(CheckHook("hook cgroup_skb", "probe_cgroup_skb", false, "optional"));
  out.push_back(CheckHook("hook kprobe", "probe_kprobe", false,
                          "optional accelerator; redtap does not need kprobes"));
  out.push_back(CheckHook("hook fentry", "probe_fentry", false,
                          "optional accelerator; redtap does not need fentry"));
  return out;
}

int PrintDoctor(const std::vector<DoctorCheck>& checks) {
  bool capture_ok = true;
  for (const auto& c : checks) {
    const char* tag = c.ok ? "ok  " : (c.required ? "FAIL" : "no  ");
    std::printf("%s %-32s %s\n", tag, c.name.c_str(), c.detail.c_str());
    if (!c.ok && c.required) capture_ok = false;
  }
  std::printf("%s\n", capture_ok ? "capture: can run on this host"
                                 : "capture: cannot run on this host (see FAIL lines)");
  return capture_ok ? 0 : 1;
}

}  // namespace redtap

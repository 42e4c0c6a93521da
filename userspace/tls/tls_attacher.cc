// SPDX-License-Identifier: Apache-2.0
#include "userspace/tls/tls_attacher.h"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <glob.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <tuple>

#include "userspace/common/errno_text.h"
#include "userspace/loader/loader.h"
#include "userspace/tls/elf_symbols.h"
#include "userspace/tls/go_tls.h"
#include "userspace/tls/probe_sites.h"

namespace redtap::tls {
namespace {

// One probed function: its entry and return programs, and the program for the emulated
// "post" site (probe_sites.h) when the function has that shape ("" = never emulated).
struct FunctionSpec {
  const char* symbol;
  const char* enter;
  const char* exit;  // "" = entry only
  const char* post;  // "" = no emulated placement
  bool required;     // without it the file is not attached
};

constexpr FunctionSpec kFunctions[] = {
    {"SSL_read", "ssl_read_enter", "ssl_read_exit", "ssl_read_post", true},
    {"SSL_write", "ssl_write_enter", "ssl_write_exit", "ssl_write_post", true},
    {"SSL_read_ex", "ssl_read_ex_enter", "ssl_read_ex_exit", "ssl_read_post", false},
    {"SSL_write_ex", "ssl_write_ex_enter", "ssl_write_ex_exit", "ssl_write_post", false},
    {"SSL_set_fd", "ssl_set_fd_enter", "", "", false},
    {"SSL_free", "ssl_free_enter", "", "", false},
};

// Where distributions keep the system OpenSSL (merged /usr makes some of these the same file).
constexpr const char* kSystemGlobs[] = {
    "/usr/lib/x86_64-linux-gnu/libssl.so*",
    "/usr/lib/aarch64-linux-gnu/libssl.so*",
    "/lib/x86_64-linux-gnu/libssl.so*",
    "/usr/lib64/libssl.so*",
    "/usr/lib/libssl.so*",
    "/lib64/libssl.so*",
};

bool IsLibssl(const std::string& path) {
  auto slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return base.rfind("libssl.so", 0) == 0;
}

// Whether `proc_root` (/proc/<pid>/root) is our own root: then the paths a process sees
// are ours too (else they go through its root: containers).
bool SameRootAsOurs(const std::string& proc_root) {
  struct stat theirs {};
  struct stat ours {};
  return stat(proc_root.c_str(), &theirs) == 0 && stat("/", &ours) == 0 &&
         theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino;
}

}  // namespace

std::vector<std::string> SystemLibssl() {
  std::vector<std::string> out;
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const char* pattern : kSystemGlobs) {
    glob_t g{};
    if (glob(pattern, 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; i++) {
        struct stat st {};
        if (stat(g.gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
        char* real = realpath(g.gl_pathv[i], nullptr);
        out.push_back(real ? real : g.gl_pathv[i]);
        free(real);
      }
    }
    globfree(&g);
  }
  return out;
}

TlsAttacher::TlsAttacher(CaptureLoader* loader, bool emulated_sites, bool go_tls)
    : loader_(loader), emulated_sites_(emulated_sites), go_tls_(go_tls) {}

TlsAttacher::~TlsAttacher() { Stop(); }

void TlsAttacher::Start(std::chrono::seconds rescan) {
  rescan_ = rescan;
  for (const char* pattern : kSystemGlobs) {
    glob_t g{};
    if (glob(pattern, 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; i++) Consider(g.gl_pathv[i], true, nullptr);
    }
    globfree(&g);
  }
  ScanAll();
  worker_ = std::thread([this] { Worker(); });
  auto s = stats();
  spdlog::info("tls: OpenSSL probes on {} file(s){}", s.files_attached,
               s.attach_failures ? fmt::format(" ({} failed)", s.attach_failures) : "");
}

void TlsAttacher::OnExec(uint32_t pid) noexcept {
  std::lock_guard<std::mutex> l(qmu_);
  {
    std::lock_guard<std::mutex> s(mu_);
    stats_.exec_events++;
    if (queue_.size() >= 4096) {
      stats_.exec_dropped++;
      return;
    }
  }
  // The executable is known now (static OpenSSL: look at once, short-lived tools included);
  // the dynamic loader maps libraries after exec: look again shortly after, and once later.
  auto now = std::chrono::steady_clock::now();
  queue_.emplace(now, static_cast<pid_t>(pid));
  queue_.emplace(now + std::chrono::milliseconds(200), static_cast<pid_t>(pid));
  queue_.emplace(now + std::chrono::seconds(2), static_cast<pid_t>(pid));
  qcv_.notify_one();
}

void TlsAttacher::Worker() {
  auto next_rescan = std::chrono::steady_clock::now() + rescan_;
  std::unique_lock<std::mutex> l(qmu_);
  while (!stop_) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_rescan) {
      l.unlock();
      ScanAll();
      l.lock();
      next_rescan = std::chrono::steady_clock::now() + rescan_;
      continue;
    }
    if (!queue_.empty() && queue_.begin()->first <= now) {
      pid_t pid = queue_.begin()->second;
      queue_.erase(queue_.begin());
      l.unlock();
      ScanPid(pid, nullptr);
      l.lock();
      continue;
    }
    auto until = queue_.empty() ? next_rescan : std::min(next_rescan, queue_.begin()->first);
    qcv_.wait_until(l, until);
  }
}

void TlsAttacher::ScanAll() {
  std::set<FileKey> in_use;
  DIR* d = opendir("/proc");
  if (!d) return;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (*end == '\0' && pid > 0) ScanPid(static_cast<pid_t>(pid), &in_use);
  }
  closedir(d);
  // Files no process maps any more lose their probes (system libraries stay attached).
  std::lock_guard<std::mutex> l(mu_);
  stats_.scans++;
  for (auto it = attached_.begin(); it != attached_.end();) {
    if (!it->second.system && !in_use.count(it->first)) {
      for (auto* link : it->second.links) bpf_link__destroy(link);
      for (uint64_t id : it->second.go_sites) loader_->DeleteGoTlsSite(id);
      stats_.probes_attached -= it->second.links.size();
      stats_.files_attached--;
      stats_.files_detached++;
      spdlog::debug("tls: {} no longer mapped: probes removed", it->second.path);
      it = attached_.erase(it);
    } else {
      ++it;
    }
  }
}

void TlsAttacher::ScanPid(pid_t pid, std::set<FileKey>* in_use) {
  std::string root = "/proc/" + std::to_string(pid) + "/root";
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  std::set<std::string> paths;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (IsLibssl(path)) paths.insert(path);
  }
  // Paths are as the process sees them: go through its root (containers), unless it is ours.
  const bool same_root = SameRootAsOurs(root);
  for (const auto& p : paths) Consider(same_root ? p : root + p, false, in_use);
  // An executable that carries OpenSSL itself (node, statically linked servers).
  Consider("/proc/" + std::to_string(pid) + "/exe", false, in_use);
}

void TlsAttacher::Consider(const std::string& path, bool system, std::set<FileKey>* in_use) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  FileKey key{st.st_dev, st.st_ino};
  if (in_use) in_use->insert(key);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (attached_.count(key) || rejected_.count(key)) return;
  }
  // Attach through a stable path: /proc/<pid>/exe is a magic link the kernel resolves.
  std::string target = path;
  if (path.size() > 4 && path.compare(path.size() - 4, 4, "/exe") == 0) {
    char buf[4096];
    ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
    if (n <= 0) return;
    buf[n] = '\0';
    std::string exe(buf);
    if (exe.size() > 10 && exe.compare(exe.size() - 10, 10, " (deleted)") == 0) return;
    // Through the process's root (containers), unless it is ours: then the plain path, which
    // stays valid after the process exits.
    std::string proc_root = path.substr(0, path.size() - 4) + "/root";
    target = SameRootAsOurs(proc_root) ? exe : proc_root + exe;
  }
  AttachFile(key, target, system);
}

bool TlsAttacher::AttachFile(const FileKey& key, const std::string& path, bool system) {
  std::vector<std::string> names;
  for (const auto& f : kFunctions) names.push_back(f.symbol);
  auto offsets = FindFunctionOffsets(path, names);
  if (!offsets.ok() || !offsets->count("SSL_read") || !offsets->count("SSL_write")) {
    if (go_tls_ && AttachGo(key, path, system)) return true;
    std::lock_guard<std::mutex> l(mu_);
    rejected_.insert(key);  // not OpenSSL (nor Go's crypto/tls): never look at it again
    return false;
  }
  std::vector<struct bpf_link*> links;
  std::vector<std::pair<std::string, std::string>> modes;
  std::string failure;
  const auto attach = [&](const char* prog_name, bool retprobe, uint64_t offset) {
    struct bpf_program* prog = loader_->FindProgram(prog_name);
    struct bpf_link* link =
        prog ? bpf_program__attach_uprobe(prog, retprobe, -1, path.c_str(), offset) : nullptr;
    if (link) links.push_back(link);
    return link != nullptr;
  };
  for (const auto& f : kFunctions) {
    auto it = offsets->find(f.symbol);
    if (it == offsets->end()) continue;
    const uint64_t off = it->second;
    const size_t before = links.size();
    bool ok = false;
    ProbeSites sites;
    if (*f.exit != '\0') sites = FindProbeSitesInFile(path, off);
    const bool use_sites = *f.post != '\0' && emulated_sites_ && sites.emulated;
    if (use_sites) {
      // The call and the jump after it: both emulated, no uretprobe.
      ok = attach("ssl_call", false, off + sites.call_offset) &&
           attach(f.post, false, off + sites.post_offset);
    } else {
      ok = attach(f.enter, false, off) && (*f.exit == '\0' || attach(f.exit, true, off));
    }
    if (!ok) {
      const std::string err = ErrnoText(errno);
      for (size_t i = before; i < links.size(); ++i) bpf_link__destroy(links[i]);
      links.resize(before);
      if (f.required) {
        failure = std::string(f.symbol) + ": " + err;
        break;
      }
      continue;
    }
    if (*f.exit != '\0') {
      const std::string mode = use_sites              ? "emulated"
                               : sites.entry_emulated ? "uretprobe_emulated_entry"
                                                      : "uretprobe_stepped_entry";
      modes.emplace_back(f.symbol, mode);
      spdlog::debug(
          "tls: {} in {}: {}{}", f.symbol, path, mode,
          use_sites
              ? fmt::format(" (call +{:#x}, post +{:#x})", sites.call_offset, sites.post_offset)
              : " (" + (sites.why.empty() ? "tls.emulated_sites: false" : sites.why) + ")");
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  if (!failure.empty()) {
    for (auto* link : links) bpf_link__destroy(link);
    stats_.attach_failures++;
    rejected_.insert(key);
    spdlog::warn("tls: cannot attach OpenSSL probes to {}: {}", path, failure);
    return false;
  }
  stats_.files_attached++;
  stats_.probes_attached += links.size();
  std::string summary;
  for (const auto& [fn, mode] : modes) summary += (summary.empty() ? "" : ", ") + fn + " " + mode;
  spdlog::info("tls: OpenSSL probes attached to {} ({} probes: {})", path, links.size(), summary);
  attached_[key] = Attached{path, system, std::move(links), std::move(modes), {}};
  return true;
}

bool TlsAttacher::AttachGo(const FileKey& key, const std::string& path, bool system) {
  const GoTlsBinary go = InspectGoTls(path);
  if (!go.found) return false;
  if (!go.why.empty()) {
    std::lock_guard<std::mutex> l(mu_);
    stats_.attach_failures++;
    spdlog::warn("tls: Go crypto/tls in {} not probed: {}", path, go.why);
    return false;
  }
  std::vector<struct bpf_link*> links;
  std::vector<uint64_t> sites;  // go_tls_sites entries of these links
  std::string failure;
  const auto attach = [&](const char* prog_name, uint64_t file_offset, uint64_t cookie) {
    struct bpf_program* prog = loader_->FindProgram(prog_name);
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie, .retprobe = false);
    struct bpf_link* link =
        prog ? bpf_program__attach_uprobe_opts(prog, -1, path.c_str(), file_offset, &opts)
             : nullptr;
    if (link) {
      links.push_back(link);
    } else if (failure.empty()) {
      failure = std::string(prog_name) + ": " + ErrnoText(errno);
    }
  };
  // An entry probe's descriptor (cookie = its id), before its link exists.
  const auto site = [&](struct redtap_go_site d) -> uint64_t {
    const uint64_t id = next_go_site_.fetch_add(1);
    if (const int err = loader_->PutGoTlsSite(id, d); err != 0) {
      if (failure.empty()) failure = "go_tls_sites: " + ErrnoText(err);
      return 0;
    }
    sites.push_back(id);
    return id;
  };
  const auto rel = [](uint64_t to, uint64_t from) { return static_cast<int64_t>(to - from); };
  std::vector<std::pair<std::string, std::string>> modes;
  // Read: at its deferred closure's entry when verified, its other returns probed; else at
  // its returns (with the entry when the arguments are not kept in their slots).
  const GoTlsFunction& rd = go.read;
  std::vector<uint64_t> rets = rd.sites.ret_offsets;
  const bool deferred = go.read_deferred && emulated_sites_;
  const std::string read_mode = deferred ? go.ReadMode() : rd.sites.Mode(false);
  if (deferred) {
    const GoTlsFunction& cl = go.read_closure;
    const uint64_t at = cl.vaddr + cl.sites.entry_offset;
    struct redtap_go_site d = {};
    d.itab_rel = rel(go.tcpconn_itab_vaddr, at);
    d.caller_rel = rel(rd.vaddr, at);
    d.caller_size = static_cast<uint32_t>(go.read_size);
    d.result_slot = static_cast<uint32_t>(rd.sites.result_slot);
    d.frame = static_cast<uint32_t>(rd.sites.frame_size);
    d.guard_r12 = cl.sites.guard_r12;
    if (const uint64_t id = site(d)) {
      attach("go_tls_read_deferred", cl.file_offset + cl.sites.entry_offset, id);
    }
    rets = rd.sites.undeferred_ret_offsets;
  } else if (!rd.sites.args_spilled) {
    attach("go_tls_read_enter", rd.file_offset + rd.sites.entry_offset, 0);
  }
  for (uint64_t r : rets) {
    attach(rd.sites.args_spilled ? "go_tls_read_ret_spilled" : "go_tls_read_ret",
           rd.file_offset + r, GoItabCookie(go, rd.vaddr + r));
  }
  modes.emplace_back(rd.symbol, read_mode);
  // Write: its entry only (go_tls.bpf.h says why).
  const GoTlsFunction& wr = go.write;
  {
    const uint64_t at = wr.vaddr + wr.sites.entry_offset;
    struct redtap_go_site d = {};
    d.itab_rel = rel(go.tcpconn_itab_vaddr, at);
    d.guard_r12 = wr.sites.guard_r12;
    if (const uint64_t id = site(d)) {
      attach("go_tls_write_enter", wr.file_offset + wr.sites.entry_offset, id);
    }
  }
  modes.emplace_back(wr.symbol, wr.sites.Mode(true));
  std::lock_guard<std::mutex> l(mu_);
  if (!failure.empty()) {
    for (auto* link : links) bpf_link__destroy(link);
    for (uint64_t id : sites) loader_->DeleteGoTlsSite(id);
    stats_.attach_failures++;
    rejected_.insert(key);
    spdlog::warn("tls: cannot attach Go crypto/tls probes to {}: {}", path, failure);
    return true;  // a Go binary: handled (and rejected)
  }
  stats_.files_attached++;
  stats_.probes_attached += links.size();
  spdlog::info(
      "tls: Go crypto/tls probes attached to {} ({} probes: Read {}, {} returns probed{}; "
      "Write {})",
      path, links.size(), read_mode, rets.size(),
      deferred ? ""
               : " (deferred returns: " +
                     (go.read_deferred ? "tls.emulated_sites: false" : go.read_deferred_why) + ")",
      go.write.sites.Mode(true));
  attached_[key] = Attached{path, system, std::move(links), std::move(modes), std::move(sites)};
  return true;
}

void TlsAttacher::Stop() {
  auto links = StopAndTakeLinks();
  DestroyLinksInParallel(links);
}

std::vector<struct bpf_link*> TlsAttacher::StopAndTakeLinks() {
  stop_ = true;
  qcv_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::lock_guard<std::mutex> l(mu_);
  std::vector<struct bpf_link*> all;
  for (auto& [k, a] : attached_) all.insert(all.end(), a.links.begin(), a.links.end());
  stats_.probes_attached = 0;
  stats_.files_attached = 0;
  attached_.clear();
  return all;
}

TlsStats TlsAttacher::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

std::vector<ProbeMode> TlsAttacher::ProbeModes() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<ProbeMode> out;
  for (const auto& [k, a] : attached_) {
    for (const auto& [fn, mode] : a.modes) out.push_back({a.path, fn, mode});
  }
  return out;
}

std::vector<std::string> TlsAttacher::AttachedFiles() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  for (const auto& [k, a] : attached_) out.push_back(a.path);
  return out;
}

}  // namespace redtap::tls

// SPDX-License-Identifier: Apache-2.0
// TlsAttacher: finds every OpenSSL the host runs (libssl.so* files, and executables that link
// OpenSSL statically and export its symbols) and every Go executable with crypto/tls
// (tls/go_tls.h), and attaches the capture's uprobes to each file once. A uprobe on a file
// covers every process that maps it, now and later.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

struct bpf_link;

namespace redtap {
class CaptureLoader;

namespace tls {

struct TlsStats {
  uint64_t files_attached = 0;   // library/executable files with probes now
  uint64_t files_detached = 0;   // files no process maps any more: probes removed
  uint64_t attach_failures = 0;  // files whose probes could not be attached
  uint64_t probes_attached = 0;  // uprobes + uretprobes live
  uint64_t exec_events = 0;
  uint64_t exec_dropped = 0;  // exec events not queued (queue full)
  uint64_t scans = 0;
};

/// The system's libssl files (distribution paths; merged /usr makes some the same file), each
/// once, real paths.
std::vector<std::string> SystemLibssl();

/// How one function of one file is probed (ProbeSites::Mode(): "emulated",
/// "uretprobe_emulated_entry", "uretprobe_stepped_entry"; GoFunctionSites::Mode():
/// "go_emulated_entry_stepped_return").
struct ProbeMode {
  std::string library;  // the file's path
  std::string function;
  std::string mode;
};

class TlsAttacher {
 public:
  /// `emulated_sites`: place the SSL_read/SSL_write probes on emulated instructions where
  /// the disassembly allows (tls.emulated_sites); false: entry + uretprobe everywhere.
  /// `go_tls`: probe Go's crypto/tls in Go executables too (tls.go).
  explicit TlsAttacher(CaptureLoader* loader, bool emulated_sites = true, bool go_tls = true);
  ~TlsAttacher();

  /// Attaches to the system's libssl and to what running processes map, then keeps watching
  /// (exec events, and a full rescan every `rescan` for libraries loaded later with dlopen).
  void Start(std::chrono::seconds rescan = std::chrono::seconds(30));
  /// A process exec'd (from the reader thread; never blocks).
  void OnExec(uint32_t pid) noexcept;
  /// Detaches every probe and stops the worker.
  void Stop();
  /// Stops the worker and hands over the links without detaching them, so the caller can
  /// detach everything at once (shutdown time).
  std::vector<struct bpf_link*> StopAndTakeLinks();

  TlsStats stats() const;
  std::vector<std::string> AttachedFiles() const;
  /// Per attached file and probed function, the mode chosen.
  std::vector<ProbeMode> ProbeModes() const;

 private:
  struct FileKey {
    dev_t dev;
    ino_t ino;
    auto operator<=>(const FileKey&) const = default;
  };
  struct Attached {
    std::string path;
    bool system = false;  // a well-known library path: kept even when unmapped
    std::vector<struct bpf_link*> links;
    std::vector<std::pair<std::string, std::string>> modes;  // function, mode
    std::vector<uint64_t> go_sites;  // go_tls_sites entries, deleted with the links
  };

  void Worker();
  void ScanAll();
  /// Scans one process; adds the files it uses to `in_use` when given.
  void ScanPid(pid_t pid, std::set<FileKey>* in_use);
  void Consider(const std::string& path, bool system, std::set<FileKey>* in_use);
  bool AttachFile(const FileKey& key, const std::string& path, bool system);
  /// A Go executable with crypto/tls: true when it was one (attached, or refused and logged).
  bool AttachGo(const FileKey& key, const std::string& path, bool system);

  CaptureLoader* loader_;
  const bool emulated_sites_;
  const bool go_tls_;
  mutable std::mutex mu_;
  std::map<FileKey, Attached> attached_;
  std::set<FileKey> rejected_;  // checked: no OpenSSL symbols, or attach failed
  TlsStats stats_;
  std::atomic<uint64_t> next_go_site_{1};

  std::mutex qmu_;
  std::condition_variable qcv_;
  // Scans due, ordered by time (several per exec: now, +200 ms, +2 s).
  std::multimap<std::chrono::steady_clock::time_point, pid_t> queue_;
  std::atomic<bool> stop_{false};
  std::chrono::seconds rescan_{30};
  std::thread worker_;
};

}  // namespace tls
}  // namespace redtap

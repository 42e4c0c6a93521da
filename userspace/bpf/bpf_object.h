// SPDX-License-Identifier: Apache-2.0
// The one BPF loading library: opens a skeleton, configures it, loads it with per-program
// fallback (a program the verifier rejects is left out and reported, the rest loads),
// attaches a hook table (tracefs mounted when a tracepoint needs it), keeps each hook's
// status and its link. Used by the capture loader, the TCP monitor and `redtap doctor`.
//
//   auto obj = Skeleton<struct tcp>::Load(
//       [&](struct tcp* s, bool probing) { s->rodata->cfg_x = 1; return Status::Ok(); },
//       {.open_error = "cannot open the tcp BPF object: ", ...});
//   (*obj)->AttachAll({{"tcp_iter", true, AttachIter}, {"inet_sock_set_state"}});
//   (*obj)->Ready();  (*obj)->hooks();  (*obj)->skel()->maps.tcp_agg_map;
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "userspace/bpf/hooks.h"
#include "userspace/common/status.h"

struct bpf_link;
struct bpf_object;
struct bpf_program;

namespace redtap {

struct LoadOptions {
  /// Message prefixes: open_error + ErrnoText(e) when the object cannot be opened;
  /// load_error + ErrnoText(e) + load_hint when it does not load.
  std::string open_error = "cannot open the BPF object: ";
  std::string load_error = "loading the BPF programs failed: ";
  std::string load_hint;
  /// When the load fails, find the programs the verifier rejects (each loaded alone) and load
  /// without them; they are reported as failed hooks. Off: the first error is the answer.
  bool fallback = true;
  /// Log nothing (the doctor expects failures and prints them itself).
  bool quiet = false;
};

class BpfObject {
 public:
  /// How to handle one instance of a skeleton, whatever its type (Skeleton<T> fills it in).
  struct Ops {
    std::function<void*()> open;  // nullptr with errno set on failure
    std::function<int(void*)> load;
    std::function<void(void*)> destroy;
    std::function<struct bpf_object*(void*)> object;
  };
  /// Configures a freshly opened instance: rodata, map sizes, autoload (a program turned off
  /// here is never loaded nor probed). `probing`: this instance only tells whether one
  /// program passes the verifier, so maps may stay small. Called once per instance: more
  /// than once when the fallback probes programs.
  using Configure = std::function<Status(void* skel, bool probing)>;

  virtual ~BpfObject();
  BpfObject(const BpfObject&) = delete;
  BpfObject& operator=(const BpfObject&) = delete;

  /// Opens, configures and loads. Errors: the object cannot be opened or configured, or
  /// nothing loads (or the fallback is off and the load fails).
  static Result<std::unique_ptr<BpfObject>> Load(Ops ops, const Configure& configure,
                                                 LoadOptions options);

  struct bpf_object* object() const;
  void* raw() const { return skel_; }
  struct bpf_program* FindProgram(const std::string& name) const;
  /// Programs the verifier rejected, left out of the load: (name, why).
  const std::vector<std::pair<std::string, std::string>>& rejected() const { return rejected_; }

  /// Attaches every row of `table`, each on its own: failures are recorded in hooks() (and
  /// logged: required ones as errors, optional ones as warnings), never fatal here. Mounts
  /// tracefs first when a tracepoint needs it. Detaches what was attached before.
  void AttachAll(const std::vector<HookSpec>& table);
  /// Detaches everything, one thread per link (idempotent; also done by the destructor).
  void DetachAll();
  /// Hands over the links without detaching them (for one parallel detach at shutdown).
  std::vector<struct bpf_link*> TakeLinks();
  /// The link of an attached hook (an iterator's, for bpf_iter_create), or nullptr.
  struct bpf_link* Link(const std::string& program) const;

  /// One status per row of the last AttachAll, in table order.
  const std::vector<HookStatus>& hooks() const { return hooks_; }
  /// True when hooks were attached and every required one is.
  bool Ready() const;

 protected:
  BpfObject() = default;
  Status LoadInto(Ops ops, const Configure& configure, LoadOptions options);

 private:
  Result<void*> OpenConfigured(const Configure& configure, bool probing,
                               const std::vector<std::string>& skip, const std::string& only);

  Ops ops_;
  LoadOptions options_;
  void* skel_ = nullptr;
  std::vector<std::string> programs_;  // programs configure left to load
  std::vector<std::pair<std::string, std::string>> rejected_;
  std::vector<HookStatus> hooks_;
  std::vector<std::pair<std::string, struct bpf_link*>> links_;  // program name -> link
};

/// A BpfObject made from a `bpftool gen skeleton` header, with typed access to it.
template <typename Skel>
class Skeleton : public BpfObject {
 public:
  using TypedConfigure = std::function<Status(Skel* skel, bool probing)>;

  static Result<std::unique_ptr<Skeleton>> Load(const TypedConfigure& configure,
                                                LoadOptions options) {
    std::unique_ptr<Skeleton> s(new Skeleton());
    Ops ops{
        [] { return static_cast<void*>(Skel::open()); },
        [](void* p) { return Skel::load(static_cast<Skel*>(p)); },
        [](void* p) { Skel::destroy(static_cast<Skel*>(p)); },
        [](void* p) { return static_cast<Skel*>(p)->obj; },
    };
    Configure untyped = [&configure](void* p, bool probing) {
      return configure ? configure(static_cast<Skel*>(p), probing) : Status::Ok();
    };
    REDTAP_RETURN_IF_ERROR(s->LoadInto(std::move(ops), untyped, std::move(options)));
    return s;
  }

  Skel* skel() const { return static_cast<Skel*>(raw()); }
  Skel* operator->() const { return skel(); }

 private:
  Skeleton() = default;
};

namespace internal {

/// What the per-program fallback found.
struct FallbackOutcome {
  int err = 0;  // 0: loaded; else the (negative) error of the last load
  std::vector<std::pair<std::string, int>> rejected;  // programs left out, with their error
};

/// The per-program fallback, apart from libbpf. `load_without(skip)` opens a fresh instance
/// without `skip` and loads it (keeping it); `load_only(name)` loads that program alone in
/// a throwaway instance; both return 0 or a negative errno, or a Status when the object
/// cannot even be opened. `programs()` lists the programs (asked after the first failure).
Result<FallbackOutcome> LoadWithFallback(
    bool fallback, const std::function<std::vector<std::string>()>& programs,
    const std::function<Result<int>(const std::vector<std::string>& skip)>& load_without,
    const std::function<Result<int>(const std::string& only)>& load_only);

}  // namespace internal
}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/bpf/bpf_object.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "userspace/bpf/tracefs.h"
#include "userspace/common/bpf_links.h"
#include "userspace/common/errno_text.h"

namespace redtap {

namespace internal {

Result<FallbackOutcome> LoadWithFallback(
    bool fallback, const std::function<std::vector<std::string>()>& programs,
    const std::function<Result<int>(const std::vector<std::string>& skip)>& load_without,
    const std::function<Result<int>(const std::string& only)>& load_only) {
  FallbackOutcome out;
  auto first = load_without({});
  if (!first.ok()) return first.status();
  out.err = first.value();
  if (out.err == 0 || !fallback) return out;
  // Find the programs this kernel's verifier rejects, one at a time, and load without them.
  std::vector<std::string> names = programs();
  std::vector<std::string> skip;
  for (const auto& n : names) {
    auto one = load_only(n);
    if (!one.ok()) return one.status();
    if (one.value() != 0) {
      out.rejected.emplace_back(n, one.value());
      skip.push_back(n);
    }
  }
  if (skip.size() == names.size()) return out;  // nothing loads alone: the first error stands
  auto again = load_without(skip);
  if (!again.ok()) return again.status();
  out.err = again.value();
  return out;
}

}  // namespace internal

BpfObject::~BpfObject() {
  DetachAll();
  if (skel_) ops_.destroy(skel_);
}

Result<std::unique_ptr<BpfObject>> BpfObject::Load(Ops ops, const Configure& configure,
                                                   LoadOptions options) {
  std::unique_ptr<BpfObject> o(new BpfObject());
  REDTAP_RETURN_IF_ERROR(o->LoadInto(std::move(ops), configure, std::move(options)));
  return o;
}

Result<void*> BpfObject::OpenConfigured(const Configure& configure, bool probing,
                                        const std::vector<std::string>& skip,
                                        const std::string& only) {
  void* s = ops_.open();
  if (!s) return Status::Error(options_.open_error + ErrnoText(errno));
  if (configure) {
    Status st = configure(s, probing);
    if (!st.ok()) {
      ops_.destroy(s);
      return st;
    }
  }
  struct bpf_program* p;
  bpf_object__for_each_program(p, ops_.object(s)) {
    if (!bpf_program__autoload(p)) continue;  // configure turned it off
    std::string name = bpf_program__name(p);
    bool load =
        only.empty() ? std::find(skip.begin(), skip.end(), name) == skip.end() : name == only;
    bpf_program__set_autoload(p, load);
  }
  return s;
}

Status BpfObject::LoadInto(Ops ops, const Configure& configure, LoadOptions options) {
  ops_ = std::move(ops);
  options_ = std::move(options);
  auto load_without = [&](const std::vector<std::string>& skip) -> Result<int> {
    if (skel_) ops_.destroy(skel_);
    skel_ = nullptr;
    auto s = OpenConfigured(configure, /*probing=*/false, skip, "");
    if (!s.ok()) return s.status();
    skel_ = s.value();
    if (skip.empty()) {
      programs_.clear();
      struct bpf_program* p;
      bpf_object__for_each_program(p, ops_.object(skel_)) {
        if (bpf_program__autoload(p)) programs_.push_back(bpf_program__name(p));
      }
    }
    return ops_.load(skel_);
  };
  auto load_only = [&](const std::string& only) -> Result<int> {
    auto s = OpenConfigured(configure, /*probing=*/true, {}, only);
    if (!s.ok()) return s.status();
    int err = ops_.load(s.value());
    ops_.destroy(s.value());
    return err;
  };
  auto outcome = internal::LoadWithFallback(
      options_.fallback, [&] { return programs_; }, load_without, load_only);
  if (!outcome.ok()) return outcome.status();
  for (const auto& [name, err] : outcome->rejected) {
    rejected_.emplace_back(name, "the verifier rejected it: " + ErrnoText(err));
    if (!options_.quiet) {
      spdlog::error(
          "program {} failed to load: {} (left out; --log-level debug shows the verifier log)",
          name, ErrnoText(err));
    }
  }
  if (outcome->err != 0) {
    return Status::Error(options_.load_error + ErrnoText(outcome->err) + options_.load_hint);
  }
  return Status::Ok();
}

struct bpf_object* BpfObject::object() const {
  return skel_ ? ops_.object(skel_) : nullptr;
}

struct bpf_program* BpfObject::FindProgram(const std::string& name) const {
  return skel_ ? bpf_object__find_program_by_name(object(), name.c_str()) : nullptr;
}

void BpfObject::AttachAll(const std::vector<HookSpec>& table) {
  DetachAll();
  hooks_.clear();
  std::map<std::string, std::string, std::less<>> tracefs_error;  // group -> why ("" ok)
  auto fail = [&](HookStatus& h) {
    if (options_.quiet) return;
    if (h.required)
      spdlog::error("hook {} ({}) failed to attach: {}", h.name, h.target, h.error);
    else
      spdlog::warn("hook {} ({}) failed to attach: {} (optional)", h.name, h.target, h.error);
  };
  for (const auto& spec : table) {
    HookStatus h;
    h.name = spec.program;
    h.required = spec.required;
    struct bpf_program* prog = FindProgram(spec.program);
    if (prog) h.target = bpf_program__section_name(prog);
    auto rejected = std::find_if(rejected_.begin(), rejected_.end(),
                                 [&](const auto& r) { return r.first == spec.program; });
    if (!prog || rejected != rejected_.end()) {
      // Already logged when the load left it out.
      h.error =
          rejected != rejected_.end() ? rejected->second : "program not found in the BPF object";
      hooks_.push_back(std::move(h));
      continue;
    }
    if (bpf_program__fd(prog) < 0) {
      h.error = "program not loaded (turned off when the object was configured)";
      hooks_.push_back(std::move(h));
      continue;
    }
    if (std::string_view group = TracepointGroup(h.target); !group.empty()) {
      auto it = tracefs_error.find(group);
      if (it == tracefs_error.end()) {
        auto r = EnsureTracefs({std::string(group)});
        if (r.ok() && !r.value().empty() && !options_.quiet) spdlog::info("{}", r.value());
        it = tracefs_error.emplace(std::string(group), r.ok() ? "" : r.error()).first;
      }
      if (!it->second.empty()) {
        h.error = it->second;
        fail(h);
        hooks_.push_back(std::move(h));
        continue;
      }
    }
    errno = 0;
    struct bpf_link* link = spec.attach ? spec.attach(prog) : bpf_program__attach(prog);
    int err = errno;
    if (link) {
      h.attached = true;
      links_.emplace_back(spec.program, link);
    } else {
      h.error = ErrnoText(err ? err : EINVAL);
      fail(h);
    }
    hooks_.push_back(std::move(h));
  }
}

std::vector<struct bpf_link*> BpfObject::TakeLinks() {
  std::vector<struct bpf_link*> out;
  out.reserve(links_.size());
  for (const auto& [name, link] : links_) out.push_back(link);
  links_.clear();
  for (auto& h : hooks_) h.attached = false;
  return out;
}

void BpfObject::DetachAll() {
  std::vector<struct bpf_link*> links = TakeLinks();
  DestroyLinksInParallel(links);
}

struct bpf_link* BpfObject::Link(const std::string& program) const {
  for (const auto& [name, link] : links_)
    if (name == program) return link;
  return nullptr;
}

bool BpfObject::Ready() const { return SummarizeHooks(hooks_).ready; }

}  // namespace redtap

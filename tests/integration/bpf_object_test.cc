// SPDX-License-Identifier: Apache-2.0
// The BPF loading library against this kernel (label bpf, root): probe.bpf.o has one program
// per hook type, some of which a kernel may refuse (fentry gives EPERM on our 6.18 hosts), so
// loading all of it at once exercises the per-program fallback for real. Every assertion
// holds whatever this kernel supports: a program is either loaded or reported as rejected.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "probe.skel.h"
#include "userspace/bpf/bpf_object.h"
#include "userspace/common/bpf_links.h"

namespace redtap {
namespace {

class BpfObjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (geteuid() != 0) why = "needs root";
    if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) why = "needs kernel BTF";
    if (why.empty()) return;
    const char* require = std::getenv("REDTAP_REQUIRE_BPF");
    if (require && std::string(require) == "1") FAIL() << why << " but REDTAP_REQUIRE_BPF=1";
    GTEST_SKIP() << why;
  }

  static LoadOptions Options(bool fallback) {
    LoadOptions o;
    o.open_error = "cannot open the probe BPF object: ";
    o.load_error = "loading the probe programs failed: ";
    o.fallback = fallback;
    o.quiet = true;
    return o;
  }

  static bool Rejected(const BpfObject& obj, const std::string& name) {
    const auto& r = obj.rejected();
    return std::any_of(r.begin(), r.end(), [&](const auto& p) { return p.first == name; });
  }
};

struct bpf_link* AttachIter(struct bpf_program* p) {
  return bpf_program__attach_iter(p, nullptr);
}

TEST_F(BpfObjectTest, FallbackLoadsEveryProgramTheVerifierAccepts) {
  auto loaded = Skeleton<struct probe>::Load(nullptr, Options(true));
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  const BpfObject& obj = *loaded.value();
  int programs = 0;
  struct bpf_program* p;
  bpf_object__for_each_program(p, obj.object()) {
    programs++;
    std::string name = bpf_program__name(p);
    EXPECT_NE(bpf_program__fd(p) >= 0, Rejected(obj, name)) << name;
  }
  EXPECT_GT(programs, 1);
  for (const auto& [name, why] : obj.rejected())
    EXPECT_EQ(why.rfind("the verifier rejected it: ", 0), 0u) << name << ": " << why;
  // The tracepoint is what capture itself needs: it must load everywhere redtap runs.
  EXPECT_FALSE(Rejected(obj, "probe_tracepoint"));

  // Without the fallback, one rejected program fails the whole object.
  auto strict = Skeleton<struct probe>::Load(nullptr, Options(false));
  if (obj.rejected().empty()) {
    EXPECT_TRUE(strict.ok()) << strict.error();
  } else {
    ASSERT_FALSE(strict.ok());
    EXPECT_EQ(strict.error().rfind("loading the probe programs failed: ", 0), 0u) << strict.error();
  }
}

TEST_F(BpfObjectTest, AttachTableReportsEachHook) {
  auto loaded = Skeleton<struct probe>::Load(nullptr, Options(true));
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  BpfObject& obj = *loaded.value();
  obj.AttachAll({
      {"probe_tracepoint", true},
      {"probe_iter_tcp", true, AttachIter},
      {"probe_fentry", false},
      {"no_such_program", false},
  });
  const auto& hooks = obj.hooks();
  ASSERT_EQ(hooks.size(), 4u);

  EXPECT_EQ(hooks[0].name, "probe_tracepoint");
  EXPECT_EQ(hooks[0].target, "tracepoint/syscalls/sys_enter_getppid");
  EXPECT_TRUE(hooks[0].attached) << hooks[0].error;
  EXPECT_TRUE(hooks[0].required);

  EXPECT_EQ(hooks[1].target, "iter/tcp");
  ASSERT_TRUE(hooks[1].attached) << hooks[1].error;
  ASSERT_NE(obj.Link("probe_iter_tcp"), nullptr);
  int it = bpf_iter_create(bpf_link__fd(obj.Link("probe_iter_tcp")));
  ASSERT_GE(it, 0);
  char buf[64];
  while (read(it, buf, sizeof(buf)) > 0) {
  }
  close(it);

  EXPECT_EQ(hooks[2].target, "fentry/tcp_sendmsg");
  EXPECT_FALSE(hooks[2].required);
  if (Rejected(obj, "probe_fentry")) {
    EXPECT_FALSE(hooks[2].attached);
    EXPECT_EQ(hooks[2].error.rfind("the verifier rejected it: ", 0), 0u) << hooks[2].error;
  }
  EXPECT_EQ(hooks[2].attached, hooks[2].error.empty()) << hooks[2].error;

  EXPECT_FALSE(hooks[3].attached);
  EXPECT_EQ(hooks[3].error, "program not found in the BPF object");

  // Optional hooks never decide readiness.
  EXPECT_TRUE(obj.Ready());
  HookSummary s = SummarizeHooks(hooks);
  EXPECT_EQ(s.failed_required, 0);
  EXPECT_EQ(s.attached, hooks[2].attached ? 3 : 2);

  // Links handed over for one parallel detach: the hooks are no longer attached.
  std::vector<struct bpf_link*> links = obj.TakeLinks();
  EXPECT_EQ(static_cast<int>(links.size()), s.attached);
  EXPECT_EQ(obj.Link("probe_iter_tcp"), nullptr);
  DestroyLinksInParallel(links);
  EXPECT_TRUE(links.empty());
  EXPECT_FALSE(obj.Ready());
  for (const auto& h : obj.hooks()) EXPECT_FALSE(h.attached) << h.name;
}

TEST_F(BpfObjectTest, ARequiredHookTheVerifierRejectsMakesItNotReady) {
  auto loaded = Skeleton<struct probe>::Load(nullptr, Options(true));
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  BpfObject& obj = *loaded.value();
  obj.AttachAll({{"probe_tracepoint", true}, {"probe_fentry", true}});
  EXPECT_TRUE(obj.hooks()[0].attached);
  EXPECT_EQ(obj.Ready(), obj.hooks()[1].attached);
  if (Rejected(obj, "probe_fentry")) {
    EXPECT_FALSE(obj.Ready());
  }
  obj.DetachAll();
  EXPECT_FALSE(obj.Ready());
}

TEST_F(BpfObjectTest, AProgramTurnedOffInConfigureIsNeitherLoadedNorProbed) {
  int configured = 0;
  auto loaded = Skeleton<struct probe>::Load(
      [&](struct probe* s, bool probing) {
        EXPECT_FALSE(probing);  // nothing to probe: the first load succeeds
        configured++;
        bpf_program__set_autoload(s->progs.probe_fentry, false);
        bpf_program__set_autoload(s->progs.probe_kprobe, false);
        return Status::Ok();
      },
      Options(false));
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  BpfObject& obj = *loaded.value();
  EXPECT_EQ(configured, 1);
  EXPECT_TRUE(obj.rejected().empty());
  obj.AttachAll({{"probe_tracepoint", true}, {"probe_kprobe", false}});
  EXPECT_TRUE(obj.hooks()[0].attached) << obj.hooks()[0].error;
  EXPECT_FALSE(obj.hooks()[1].attached);
  EXPECT_EQ(obj.hooks()[1].error, "program not loaded (turned off when the object was configured)");
  EXPECT_TRUE(obj.Ready());
}

TEST_F(BpfObjectTest, AConfigureErrorIsTheLoadError) {
  auto loaded = Skeleton<struct probe>::Load(
      [](struct probe*, bool) { return Status::Error("cannot size probe_rb: no"); }, Options(true));
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error(), "cannot size probe_rb: no");
}

}  // namespace
}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/bpf/hooks.h"

#include <gtest/gtest.h>

#include <vector>

namespace redtap {
namespace {

HookStatus Hook(const char* name, bool required, bool attached) {
  HookStatus h;
  h.name = name;
  h.required = required;
  h.attached = attached;
  if (!attached) h.error = "Operation not permitted (errno 1)";
  return h;
}

TEST(SummarizeHooks, NoHooksIsNotReady) {
  HookSummary s = SummarizeHooks({});
  EXPECT_FALSE(s.ready);
  EXPECT_EQ(s.attached, 0);
  EXPECT_EQ(s.failed_required, 0);
}

TEST(SummarizeHooks, AFailedOptionalHookKeepsItReady) {
  std::vector<HookStatus> hooks = {Hook("read_exit", true, true),
                                   Hook("sendfile_exit", false, false),
                                   Hook("close_enter", true, true)};
  HookSummary s = SummarizeHooks(hooks);
  EXPECT_TRUE(s.ready);
  EXPECT_EQ(s.attached, 2);
  EXPECT_EQ(s.failed_required, 0);
}

TEST(SummarizeHooks, AFailedRequiredHookMakesItNotReady) {
  std::vector<HookStatus> hooks = {Hook("read_exit", true, true), Hook("write_exit", true, false),
                                   Hook("accept_exit", false, false)};
  HookSummary s = SummarizeHooks(hooks);
  EXPECT_FALSE(s.ready);
  EXPECT_EQ(s.attached, 1);
  EXPECT_EQ(s.failed_required, 1);
}

// What the agent does for /ready: the capture loader's hooks and the TCP monitor's, together.
TEST(SummarizeHooks, CombinedObjectsNeedEveryRequiredHook) {
  std::vector<HookStatus> capture = {Hook("read_exit", true, true),
                                     Hook("process_exec", false, false)};
  std::vector<HookStatus> tcp = {Hook("tcp_iter", true, true), Hook("tcp_send_reset", true, false)};
  EXPECT_TRUE(SummarizeHooks(capture).ready);
  std::vector<HookStatus> all = capture;
  all.insert(all.end(), tcp.begin(), tcp.end());
  HookSummary s = SummarizeHooks(all);
  EXPECT_FALSE(s.ready);
  EXPECT_EQ(s.attached, 2);
  EXPECT_EQ(s.failed_required, 1);
  all.back().attached = true;
  s = SummarizeHooks(all);
  EXPECT_TRUE(s.ready);
  EXPECT_EQ(s.attached, 3);
}

TEST(TracepointGroup, OfTracepointSections) {
  EXPECT_EQ(TracepointGroup("tracepoint/syscalls/sys_exit_read"), "syscalls");
  EXPECT_EQ(TracepointGroup("tracepoint/sock/inet_sock_set_state"), "sock");
  EXPECT_EQ(TracepointGroup("tp/tcp/tcp_send_reset"), "tcp");
}

TEST(TracepointGroup, EmptyForOtherPrograms) {
  for (const char* s : {"iter/tcp", "uprobe", "uretprobe", "raw_tracepoint/sys_enter",
                        "tp_btf/sys_enter", "sockops", "cgroup_skb/egress", "kprobe/tcp_sendmsg",
                        "tracepoint/", "tracepoint/syscalls", "tracepoint//x", ""}) {
    EXPECT_EQ(TracepointGroup(s), "") << s;
  }
}

}  // namespace
}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
// Go crypto/tls probe placement (tls/go_tls.h): synthetic code in Go's shapes, refusals, and a
// real Go binary (tests/integration/go/gotls.go, built by CMake with Debian's golang-go).
#include "userspace/tls/go_tls.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

namespace redtap::tls {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const Bytes kGuardRsp = {0x49, 0x3b, 0x66, 0x10};           // cmp 0x10(%r14),%rsp
const Bytes kLeaR12 = {0x4c, 0x8d, 0x64, 0x24, 0x98};       // lea -0x68(%rsp),%r12
const Bytes kGuardR12 = {0x4d, 0x3b, 0x66, 0x10};           // cmp 0x10(%r14),%r12
const Bytes kSub18 = {0x48, 0x83, 0xec, 0x18};              // sub $0x18,%rsp
const Bytes kSpillRax = {0x48, 0x89, 0x44, 0x24, 0x20};     // mov %rax,0x20(%rsp)
const Bytes kSpillRbx = {0x48, 0x89, 0x5c, 0x24, 0x28};     // mov %rbx,0x28(%rsp)
const Bytes kRcxOverSlot = {0x48, 0x89, 0x4c, 0x24, 0x20};  // mov %rcx,0x20(%rsp)
const Bytes kLeaSlot = {0x48, 0x8d, 0x54, 0x24, 0x28};      // lea 0x28(%rsp),%rdx
const Bytes kCallNext = {0xe8, 0x00, 0x00, 0x00, 0x00};     // call (the next instruction)
const Bytes kAdd18 = {0x48, 0x83, 0xc4, 0x18};              // add $0x18,%rsp
const Bytes kRet = {0xc3};
const Bytes kMorestackSpill = {0x48, 0x89, 0x44, 0x24, 0x08};  // mov %rax,0x8(%rsp)

// prologue + jbe to the morestack block + body + ret + morestack block (spill, call, jmp 0).
Bytes GoFunction(const Bytes& prologue, const Bytes& body) {
  const size_t jbe_end = prologue.size() + 2;
  const size_t morestack = jbe_end + kSub18.size() + body.size() + kAdd18.size() + kRet.size();
  const Bytes jbe = {0x76, static_cast<uint8_t>(morestack - jbe_end)};
  Bytes f = Cat({prologue, jbe, kSub18, body, kAdd18, kRet, kMorestackSpill, kCallNext});
  const size_t jmp_end = f.size() + 2;
  f.push_back(0xeb);
  f.push_back(static_cast<uint8_t>(-static_cast<int>(jmp_end)));
  f.push_back(0xcc);  // padding
  f.push_back(0xcc);
  return f;
}

TEST(GoTlsSites, SmallFrameSpilledArguments) {
  const Bytes f = GoFunction(kGuardRsp, Cat({kSpillRax, kSpillRbx, kCallNext}));
  const GoFunctionSites s = FindGoFunctionSites(f);
  ASSERT_TRUE(s.ok) << s.why;
  EXPECT_EQ(s.entry_offset, 4u);  // the jbe
  EXPECT_EQ(s.frame_size, 0x18u);
  EXPECT_TRUE(s.args_spilled);
  ASSERT_EQ(s.ret_offsets.size(), 1u);
  EXPECT_EQ(f[s.ret_offsets[0]], 0xc3);
  EXPECT_EQ(s.Mode(false), "go_stepped_return_spilled_args");
  EXPECT_EQ(s.Mode(true), "go_emulated_entry");
}

TEST(GoTlsSites, LargeFrameStackCheckThroughR12) {
  const Bytes f = GoFunction(Cat({kLeaR12, kGuardR12}), Cat({kSpillRax, kSpillRbx}));
  const GoFunctionSites s = FindGoFunctionSites(f);
  ASSERT_TRUE(s.ok) << s.why;
  EXPECT_EQ(s.entry_offset, 9u);
  EXPECT_TRUE(s.args_spilled);
}

TEST(GoTlsSites, SlotsNotTrustedUnlessOnlySpilled) {
  // One argument not spilled: the entry probe is needed.
  GoFunctionSites s = FindGoFunctionSites(GoFunction(kGuardRsp, Cat({kSpillRax, kCallNext})));
  ASSERT_TRUE(s.ok) << s.why;
  EXPECT_FALSE(s.args_spilled);
  EXPECT_EQ(s.Mode(false), "go_emulated_entry_stepped_return");
  // A slot written again after its spill.
  s = FindGoFunctionSites(GoFunction(kGuardRsp, Cat({kSpillRax, kSpillRbx, kRcxOverSlot})));
  ASSERT_TRUE(s.ok) << s.why;
  EXPECT_FALSE(s.args_spilled);
  // A slot's address taken (a callee could write it).
  s = FindGoFunctionSites(GoFunction(kGuardRsp, Cat({kSpillRax, kSpillRbx, kLeaSlot})));
  ASSERT_TRUE(s.ok) << s.why;
  EXPECT_FALSE(s.args_spilled);
  // A spill after a call: rax no longer holds the receiver.
  s = FindGoFunctionSites(GoFunction(kGuardRsp, Cat({kCallNext, kSpillRax, kSpillRbx})));
  ASSERT_TRUE(s.ok) << s.why;
  EXPECT_FALSE(s.args_spilled);
}

TEST(GoTlsSites, RefusesWhatItCannotVerify) {
  // Go < 1.17: g loaded from thread-local storage, arguments on the stack.
  const Bytes old_go = {0x64, 0x48, 0x8b, 0x0c, 0x25, 0xf8, 0xff, 0xff, 0xff,  // mov %fs:-8,%rcx
                        0x48, 0x3b, 0x61, 0x10,  // cmp 0x10(%rcx),%rsp
                        0x76, 0x01, 0xc3, 0xc3};
  GoFunctionSites s = FindGoFunctionSites(old_go);
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.why.find("register ABI"), std::string::npos) << s.why;
  // C code (a frame first, no stack check).
  s = FindGoFunctionSites(Cat({kSub18, kAdd18, kRet}));
  EXPECT_FALSE(s.ok);
  // The stack check's jump is unconditional.
  s = FindGoFunctionSites(Cat({kGuardRsp, {0xeb, 0x00}, kRet}));
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.why.find("not a conditional"), std::string::npos) << s.why;
  // A tail call out of the function skips the return probes.
  s = FindGoFunctionSites(GoFunction(kGuardRsp, {0xe9, 0x00, 0x10, 0x00, 0x00}));
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.why.find("out of the function"), std::string::npos) << s.why;
  // An indirect jump.
  s = FindGoFunctionSites(GoFunction(kGuardRsp, {0xff, 0xe0}));
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.why.find("indirect"), std::string::npos) << s.why;
  // No ret at all.
  s = FindGoFunctionSites(Cat({kGuardRsp, {0x76, 0x00}, kCallNext}));
  EXPECT_FALSE(s.ok);
  // Bytes that are not code.
  s = FindGoFunctionSites(Cat({kGuardRsp, {0x76, 0x00, 0x0f, 0x0b, 0x06}}));
  EXPECT_FALSE(s.ok);
}

TEST(GoTlsSites, NotGoIsNotFound) {
  const GoTlsBinary b = InspectGoTls("/usr/lib/x86_64-linux-gnu/libssl.so.3");
  EXPECT_FALSE(b.found);
  EXPECT_FALSE(InspectGoTls("/nonexistent/binary").found);
}

// Read's deferred call (`defer c.in.Unlock()`): n stored in a frame slot, the closure called
// through a register, then the epilogue returns that slot.
const Bytes kStoreN = {0x48, 0x89, 0x4c, 0x24, 0x08};  // mov %rcx,0x8(%rsp)
const Bytes kCallRax = {0xff, 0xd0};                   // call *%rax
const Bytes kLoadN = {0x48, 0x8b, 0x44, 0x24, 0x08};   // mov 0x8(%rsp),%rax
const Bytes kLeaFrame = {0x48, 0x8d, 0x14, 0x24};      // lea (%rsp),%rdx

TEST(GoTlsSites, DeferredReturn) {
  const Bytes f = GoFunction(kGuardRsp, Cat({kSpillRax, kSpillRbx, kStoreN, kCallRax, kLoadN}));
  const GoFunctionSites s = FindGoFunctionSites(f);
  ASSERT_TRUE(s.ok) << s.why;
  ASSERT_EQ(s.deferred_why, "");
  EXPECT_EQ(s.result_slot, 8u);
  ASSERT_EQ(s.deferred_call_rets.size(), 1u);
  EXPECT_EQ(f[s.deferred_call_rets[0]], 0x48);  // the load of n after the call
  EXPECT_TRUE(s.undeferred_ret_offsets.empty());
  EXPECT_FALSE(s.guard_r12);
  EXPECT_FALSE(s.writes_above_frame);
}

TEST(GoTlsSites, DeferredReturnRefusedUnlessVerified) {
  // the result does not come from a frame slot after the call
  const Bytes mov_rcx_rax = {0x48, 0x89, 0xc8};
  GoFunctionSites s = FindGoFunctionSites(
      GoFunction(kGuardRsp, Cat({kSpillRax, kSpillRbx, kCallRax, mov_rcx_rax})));
  ASSERT_TRUE(s.ok) << s.why;
  EXPECT_NE(s.deferred_why.find("not followed by Go's epilogue"), std::string::npos)
      << s.deferred_why;
  EXPECT_TRUE(s.deferred_call_rets.empty());
  // an address taken at or below n's slot: something else could write it
  s = FindGoFunctionSites(
      GoFunction(kGuardRsp, Cat({kSpillRax, kSpillRbx, kLeaFrame, kStoreN, kCallRax, kLoadN})));
  EXPECT_NE(s.deferred_why.find("address may be taken"), std::string::npos) << s.deferred_why;
  // the receiver and the buffer not in their slots: nothing to read them from
  s = FindGoFunctionSites(GoFunction(kGuardRsp, Cat({kStoreN, kCallRax, kLoadN})));
  EXPECT_NE(s.deferred_why.find("not kept in their argument slots"), std::string::npos)
      << s.deferred_why;
  // no indirect call at all
  s = FindGoFunctionSites(GoFunction(kGuardRsp, Cat({kSpillRax, kSpillRbx, kCallNext})));
  EXPECT_EQ(s.deferred_why, "no deferred call");
  // a large frame's stack check goes through r12: the entry probes compare that register
  s = FindGoFunctionSites(GoFunction(Cat({kLeaR12, kGuardR12}), Cat({kCallNext})));
  EXPECT_TRUE(s.guard_r12);
}

// The real thing: Debian's Go (1.19) builds gotls; its Read spills c and b, its Write keeps
// c in a local (the entry probe is needed).
TEST(GoTlsSites, RealGoBinary) {
  const std::string path = REDTAP_GOTLS_PATH;
  ASSERT_EQ(access(path.c_str(), R_OK), 0)
      << path << " missing: golang-go is not installed (scripts/setup installs it)";
  const GoTlsBinary b = InspectGoTls(path);
  ASSERT_TRUE(b.found);
  ASSERT_EQ(b.why, "");
  EXPECT_NE(b.tcpconn_itab_vaddr, 0u);
  for (const GoTlsFunction* fn : {&b.read, &b.write}) {
    EXPECT_TRUE(fn->sites.ok) << fn->symbol << ": " << fn->sites.why;
    EXPECT_GT(fn->file_offset, 0u);
    EXPECT_GE(fn->sites.ret_offsets.size(), 2u) << fn->symbol;
    EXPECT_TRUE(fn->sites.entry_offset == 4 || fn->sites.entry_offset == 9) << fn->symbol;
  }
  EXPECT_TRUE(b.read.sites.args_spilled);
  EXPECT_EQ(b.read.sites.Mode(false), "go_stepped_return_spilled_args");
  // Read defers c.in.Unlock(): its results are read at the closure's entry, and only the
  // returns that do not go through the deferred call (len(b) == 0, a handshake error, the
  // panic path) keep a return probe.
  ASSERT_TRUE(b.read_deferred) << b.read_deferred_why;
  EXPECT_EQ(b.ReadMode(), "go_emulated_deferred_return");
  EXPECT_NE(b.read_closure.vaddr, 0u);
  EXPECT_TRUE(b.read_closure.sites.ok);
  EXPECT_FALSE(b.read_closure.sites.writes_above_frame);
  const GoFunctionSites& r = b.read.sites;
  EXPECT_GE(r.deferred_call_rets.size(), 2u);
  EXPECT_LT(r.result_slot + 8, r.frame_size);
  EXPECT_GE(r.undeferred_ret_offsets.size(), 1u);
  EXPECT_EQ(r.undeferred_ret_offsets.size() + r.deferred_call_rets.size(), r.ret_offsets.size());
  EXPECT_GT(b.read_size, r.ret_offsets.back());
}

}  // namespace
}  // namespace redtap::tls

// SPDX-License-Identifier: Apache-2.0
#include "userspace/tls/probe_sites.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "userspace/tls/elf_symbols.h"

namespace redtap::tls {
namespace {

using Bytes = std::vector<uint8_t>;

// Debian 12's libssl3 SSL_read (3.0.x, gcc -O2), byte for byte up to the load after the jump.
const Bytes kDebianSslRead = {
    0x48, 0x83, 0xec, 0x18,                                // sub $0x18,%rsp
    0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00,  // mov %fs:0x28,%rax
    0x48, 0x89, 0x44, 0x24, 0x08,                          // mov %rax,0x8(%rsp)
    0x31, 0xc0,                                            // xor %eax,%eax
    0x85, 0xd2,                                            // test %edx,%edx
    0x78, 0x2f,                                            // js error
    0x48, 0x89, 0xe1,                                      // mov %rsp,%rcx
    0x48, 0x63, 0xd2,                                      // movslq %edx,%rdx
    0xe8, 0x3d, 0xfe, 0xff, 0xff,                          // call ssl_read_internal (+0x1e)
    0x85, 0xc0,                                            // test %eax,%eax
    0x7e, 0x03,                                            // jle out (+0x25)
    0x8b, 0x04, 0x24,                                      // mov (%rsp),%eax
    0x48, 0x8b, 0x54, 0x24, 0x08,                          // mov 0x8(%rsp),%rdx
};

TEST(ProbeSites, DebianSslReadShape) {
  const ProbeSites s = FindProbeSites(kDebianSslRead);
  EXPECT_TRUE(s.emulated) << s.why;
  EXPECT_EQ(s.call_offset, 0x1eu);
  EXPECT_EQ(s.post_offset, 0x25u);
  EXPECT_FALSE(s.entry_emulated);  // sub $0x18,%rsp is single-stepped
  EXPECT_EQ(s.Mode(), "emulated");
}

TEST(ProbeSites, LeaSlotWithDisplacement) {
  Bytes b = {
      0x48, 0x83, 0xec, 0x28,              // sub $0x28,%rsp
      0x48, 0x8d, 0x4c, 0x24, 0x10,        // lea 0x10(%rsp),%rcx
      0xe8, 0x00, 0x00, 0x00, 0x00,        // call (+9)
      0x85, 0xc0,                          // test %eax,%eax
      0x0f, 0x8e, 0x10, 0x00, 0x00, 0x00,  // jle rel32 (+0x10)
      0x48, 0x8b, 0x44, 0x24, 0x10,        // mov 0x10(%rsp),%rax
  };
  const ProbeSites s = FindProbeSites(b);
  EXPECT_TRUE(s.emulated) << s.why;
  EXPECT_EQ(s.call_offset, 9u);
  EXPECT_EQ(s.post_offset, 0x10u);
}

// Every variation that breaks one verified fact is refused, with the reason.
TEST(ProbeSites, RefusesWhatItCannotVerify) {
  struct Case {
    const char* name;
    Bytes code;
    const char* why;
  };
  const std::vector<Case> cases = {
      {"rdi overwritten",
       {0x48, 0x89, 0xe1, 0x48, 0x89, 0xc7, 0xe8, 0, 0, 0, 0, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04,
        0x24},
       "overwritten"},
      {"rcx not a stack slot",
       {0x48, 0x89, 0xd9, 0xe8, 0, 0, 0, 0, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24},
       "stack slot"},
      {"rsp moved after the slot was taken",
       {0x48, 0x89, 0xe1, 0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0, 0x85, 0xc0, 0x7e, 0x03, 0x8b,
        0x04, 0x24},
       "stack slot"},
      {"eax overwritten after the call",
       {0x48, 0x89, 0xe1, 0xe8, 0, 0, 0, 0, 0x31, 0xd2, 0x85, 0xc0, 0x0f, 0x48, 0xc2, 0xc3},
       "conditional jump"},
      {"another slot returned",
       {0x48, 0x89, 0xe1, 0xe8, 0, 0, 0, 0, 0x85, 0xc0, 0x7e, 0x04, 0x8b, 0x44, 0x24, 0x08},
       "slot"},
      {"tail call (jmp) before any call", {0x48, 0x89, 0xe1, 0xe9, 0, 0, 0, 0}, "leaves"},
      {"indirect call",
       {0x48, 0x89, 0xe1, 0xff, 0xd0, 0x85, 0xc0, 0x7e, 0x03, 0x8b, 0x04, 0x24},
       "indirect"},
      {"garbage", {0xff, 0xff, 0xff, 0xff}, ""},
      {"empty", {}, ""},
  };
  for (const auto& c : cases) {
    const ProbeSites s = FindProbeSites(c.code);
    EXPECT_FALSE(s.emulated) << c.name;
    EXPECT_FALSE(s.why.empty()) << c.name;
    EXPECT_NE(s.why.find(c.why), std::string::npos) << c.name << ": " << s.why;
  }
}

TEST(ProbeSites, EmulatedInstructions) {
  EXPECT_TRUE(IsEmulatedInstruction(Bytes{0x55}));                     // push %rbp
  EXPECT_TRUE(IsEmulatedInstruction(Bytes{0x41, 0x55}));               // push %r13
  EXPECT_TRUE(IsEmulatedInstruction(Bytes{0x90}));                     // nop
  EXPECT_TRUE(IsEmulatedInstruction(Bytes{0xe8, 0, 0, 0, 0}));         // call rel32
  EXPECT_TRUE(IsEmulatedInstruction(Bytes{0x7e, 0x03}));               // jle rel8
  EXPECT_TRUE(IsEmulatedInstruction(Bytes{0x0f, 0x8e, 0, 0, 0, 0}));   // jle rel32
  EXPECT_FALSE(IsEmulatedInstruction(Bytes{0x48, 0x83, 0xec, 0x18}));  // sub $0x18,%rsp
  EXPECT_FALSE(IsEmulatedInstruction(Bytes{0xf3, 0x0f, 0x1e, 0xfa}));  // endbr64
  EXPECT_FALSE(IsEmulatedInstruction(Bytes{0x41, 0x90}));              // REX + nop is not push
  EXPECT_FALSE(IsEmulatedInstruction(Bytes{}));
}

// The real libraries of this machine, disassembled as the attacher does. Skipped where the
// file is absent (another distribution).
std::map<std::string, uint64_t> Offsets(const std::string& path) {
  auto r = FindFunctionOffsets(path, {"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"});
  return r.ok() ? r.value() : std::map<std::string, uint64_t>{};
}

TEST(ProbeSites, DebianLibssl3) {
  const std::string lib = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
  if (access(lib.c_str(), R_OK) != 0) GTEST_SKIP() << lib << " absent";
  const auto off = Offsets(lib);
  ASSERT_EQ(off.size(), 4u);
  for (const char* fn : {"SSL_read", "SSL_write"}) {
    const ProbeSites s = FindProbeSitesInFile(lib, off.at(fn));
    EXPECT_TRUE(s.emulated) << fn << ": " << s.why;
    EXPECT_EQ(s.call_offset, 0x1eu) << fn;
    EXPECT_EQ(s.post_offset, 0x25u) << fn;
  }
  // SSL_read_ex / SSL_write_ex: `xor %edx,%edx; test; cmovs` after the call, then ret:
  // nothing emulated to read the status on: entry + uretprobe, entry single-stepped.
  for (const char* fn : {"SSL_read_ex", "SSL_write_ex"}) {
    const ProbeSites s = FindProbeSitesInFile(lib, off.at(fn));
    EXPECT_FALSE(s.emulated) << fn;
    EXPECT_EQ(s.Mode(), "uretprobe_stepped_entry") << fn;
  }
}

TEST(ProbeSites, NodeStaticOpenssl) {
  char buf[4096];
  const ssize_t n = readlink("/usr/bin/node", buf, sizeof(buf) - 1);
  std::string node = "/usr/bin/node";
  if (n > 0) {
    buf[n] = '\0';
    node = buf[0] == '/' ? std::string(buf) : "/usr/bin/" + std::string(buf);
  }
  if (access(node.c_str(), R_OK) != 0) GTEST_SKIP() << "node absent";
  const auto off = Offsets(node);
  if (off.empty()) GTEST_SKIP() << node << " exports no OpenSSL symbols";
  // Node's OpenSSL inlines the internal read/write: no call to probe, but its functions
  // start with `push %rbp`, which the kernel emulates.
  for (const auto& [fn, o] : off) {
    const ProbeSites s = FindProbeSitesInFile(node, o);
    EXPECT_FALSE(s.emulated) << fn;
    EXPECT_TRUE(s.entry_emulated) << fn;
    EXPECT_EQ(s.Mode(), "uretprobe_emulated_entry") << fn;
  }
}

}  // namespace
}  // namespace redtap::tls

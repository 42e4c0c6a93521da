// SPDX-License-Identifier: Apache-2.0
// Where to put the OpenSSL uprobes so that the kernel never single-steps.
//
// A uprobe on an instruction the kernel cannot emulate is executed out of line with a
// single-step trap: on a KVM guest that trap leaves the VM (~15 us per hit here), against
// ~0.75 us for the instructions x86 uprobes emulate (call, jmp, jcc, nop, push). OpenSSL 3's
// SSL_read and SSL_write start with `sub $0x18,%rsp`, and a uretprobe always needs a probe
// on the first instruction. So, per function, the disassembly (Capstone) is checked for this
// shape, the one Debian's libssl3 has:
//
//   SSL_read(s, buf, num):                      the internal call, emulated:
//     ...                  (rdi, rsi untouched)   rdi = s, rsi = buf, rcx = &readbytes
//     lea off(%rsp),%rcx   (or mov %rsp,%rcx)
//     call ssl_read_internal          <- "call" probe: the arguments
//     test %eax,%eax                  (nothing writes eax or rsp in between)
//     jle  fail                       <- "post" probe: eax = status, readbytes at off(%rsp)
//     mov  off(%rsp),%eax             the success path returns the slot: the byte count
//
// Everything is verified; anything else (inlined internals, other compilers, BoringSSL,
// tail calls) falls back to entry + uretprobe for that function. Never a guess.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace redtap::tls {

struct ProbeSites {
  /// The shape above was recognised: probe `call_offset` and `post_offset` (bytes from the
  /// function's start) instead of entry + uretprobe.
  bool emulated = false;
  uint64_t call_offset = 0;
  uint64_t post_offset = 0;
  /// Whether the function's first instruction is one the kernel emulates (then the fallback
  /// entry probe is cheap; its uretprobe still costs a trap on return).
  bool entry_emulated = false;
  /// Why the shape was not recognised ("" when it was).
  std::string why;
  /// "emulated", "uretprobe_emulated_entry" or "uretprobe_stepped_entry".
  std::string Mode() const;
};

/// Whether x86 uprobes emulate this instruction (no single-step): call rel32, jmp rel8/32,
/// jcc rel8/32, nop, push reg. `code` starts with the instruction.
bool IsEmulatedInstruction(std::span<const uint8_t> code);

/// Looks for the shape above in the machine code of one function (`code`: its first bytes,
/// 128 are enough). Pure; x86-64 only.
ProbeSites FindProbeSites(std::span<const uint8_t> code);

/// FindProbeSites on the function at `file_offset` of the ELF file at `path` (what uprobes
/// attach to; .text is mapped at its file offset).
ProbeSites FindProbeSitesInFile(const std::string& path, uint64_t file_offset);

}  // namespace redtap::tls

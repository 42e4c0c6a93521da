// SPDX-License-Identifier: Apache-2.0
// Go's crypto/tls: where to probe (*Conn).Read and (*Conn).Write in a Go binary.
//
// Go links its TLS into every binary, and uretprobes are unusable there: they rewrite the
// return address on a goroutine stack that the runtime may copy elsewhere. So, per function,
// the disassembly (Capstone) is checked for what the probes rely on:
//
//   crypto/tls.(*Conn).Read(c, b):     register ABI (Go >= 1.17): rax = c, rbx = b's data,
//     [lea -N(%rsp),%r12]              rcx = len(b); r14 = the goroutine (g)
//     cmp 0x10(%r14),%rsp|%r12         the stack-guard check against g: proof of r14 = g
//     jbe morestack          <- entry probe (a jcc: emulated); the arguments are intact
//     ...
//     ret                    <- return probes, every one: rax = n (single-stepped: no
//     ...                       emulated instruction follows the result's load in Go's
//                               epilogue `mov; add $N,%rsp; ret`)
//
// Write is probed at that entry only: b is what the application sends, and Go reads the
// answer on another goroutine, which can return it before the Write returns.
//
// When the prologue spills rax and rbx to the argument slots above the return address and no
// other instruction writes (or takes the address of) those slots, the return probes read the
// receiver and the buffer there and the entry probe is not needed: a Read that was already
// blocked when the probes attached (an idle keep-alive connection) is then seen too.
//
// Read defers `c.in.Unlock()`, and Go 1.19 compiles that as an open-coded defer: on each
// return path n is stored to a frame slot D, the closure crypto/tls.(*Conn).Read.func1 is
// called through a register, then `mov D(%rsp),%rax; ...; add $N,%rsp; ret`. The closure's own
// stack-check jump is emulated: probed there, with the return address checked to lie in Read,
// n is at 8+D(%rsp) and the spilled receiver and buffer at 8+N+8(%rsp), and Read's `ret`s
// after those calls need no probe (the others, which return without the deferred call, keep
// theirs). Verified on the code: every indirect call in Read is followed by that epilogue with
// one D, no address at or below D is taken in the frame (only Read writes n's slot), the
// arguments are spilled, Read never calls the closure directly and the closure writes nothing
// above its own frame. Else the `ret` probes, as before.
//
// The entry probes sit on the stack check's jump, which is taken when the stack must grow or
// the scheduler asks for a preemption; the runtime then runs the function again from its
// start. The probes report only the pass where the jump is not taken (g.stackguard0 read).
//
// A jump that leaves the function (a tail call) or a prologue of another shape refuses the
// binary, with the reason: never a guess. The binary must also hold the itab of *net.TCPConn
// as a net.Conn, which the return probe compares with tls.Conn.conn before it follows the
// connection to its socket (go_tls.bpf.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace redtap::tls {

struct GoFunctionSites {
  bool ok = false;
  std::string why;  // when !ok
  /// Bytes from the function's start: the stack check's conditional jump.
  uint64_t entry_offset = 0;
  /// Bytes from the function's start: every `ret`.
  std::vector<uint64_t> ret_offsets;
  /// The receiver (rax) and b's data (rbx) are spilled to their slots above the return
  /// address right after the frame is made, and nothing writes those slots again: at each
  /// `ret` they are at 8(%rsp) and 16(%rsp), so the return probes need no entry probe (and
  /// a Read already waiting when the probes attach is still seen).
  bool args_spilled = false;
  uint64_t frame_size = 0;  // the prologue's `sub $N,%rsp`
  /// The stack check compares r12 (`lea -N(%rsp),%r12` first: large frames), else rsp.
  bool guard_r12 = false;
  /// The function writes above its own frame (rsp-relative, past its return address) other
  /// than its argument spills: a closure that could change its caller's locals.
  bool writes_above_frame = false;
  /// Direct call targets, in bytes from the function's start (may be outside it).
  std::vector<int64_t> call_targets;

  /// Deferred returns (Read: `defer c.in.Unlock()`): every indirect call in the function is
  /// followed by the epilogue `mov D(%rsp),%rax; [mov X(%rsp),%rbx|%rcx|%rbp ...];
  /// add $frame,%rsp; ret`, with the same D for all, the arguments spilled (args_spilled),
  /// and no instruction taking an address at or below D+7 in the frame. Then, at the called
  /// closure's entry, the result n is at D from this function's rsp: its returns need no
  /// probe. Empty `deferred_why` when that holds.
  std::string deferred_why = "not analysed";
  uint64_t result_slot = 0;                  // D
  std::vector<uint64_t> deferred_call_rets;  // offsets of the instruction after each such call
  /// The `ret` offsets not preceded by a deferred call (early returns, the panic path): they
  /// keep their return probes.
  std::vector<uint64_t> undeferred_ret_offsets;

  /// How it is probed: Write (`write`) at its entry only, "go_emulated_entry"; Read at its
  /// returns, "go_stepped_return_spilled_args" or "go_emulated_entry_stepped_return" (or at
  /// its deferred closure's entry: GoTlsBinary::ReadMode()).
  std::string Mode(bool write) const;
};

/// Looks for the shape above in a whole function's machine code. Pure; x86-64 only.
GoFunctionSites FindGoFunctionSites(std::span<const uint8_t> code);

struct GoTlsFunction {
  std::string symbol;
  uint64_t vaddr = 0;
  uint64_t file_offset = 0;  // what a uprobe attaches to
  GoFunctionSites sites;
};

struct GoTlsBinary {
  /// The binary links Go's crypto/tls (its symbols are present).
  bool found = false;
  /// Empty when it can be probed; else why not (a function of another shape, no TCPConn
  /// itab, unreadable code).
  std::string why;
  GoTlsFunction read, write;
  /// crypto/tls.(*Conn).Read.func1: the closure Read defers. `read_deferred` when Read's
  /// results can be read at its entry (GoFunctionSites::deferred_why, and the closure is a Go
  /// function that writes nothing above its frame and that Read never calls directly).
  GoTlsFunction read_closure;
  bool read_deferred = false;
  std::string read_deferred_why;  // when !read_deferred
  uint64_t read_size = 0;
  uint64_t tcpconn_itab_vaddr = 0;  // go:itab.*net.TCPConn,net.Conn
  /// Read's mode: "go_emulated_deferred_return" when read_deferred, else
  /// read.sites.Mode(false).
  std::string ReadMode() const;
};

/// Reads the symbol table (.symtab: Go does not export these in .dynsym) and disassembles
/// both functions. A stripped binary (no .symtab) is reported as not found.
GoTlsBinary InspectGoTls(const std::string& path);

/// The cookie of a return probe at `site_vaddr`: the itab's address relative to it.
inline uint64_t GoItabCookie(const GoTlsBinary& b, uint64_t site_vaddr) {
  return b.tcpconn_itab_vaddr - site_vaddr;
}

}  // namespace redtap::tls

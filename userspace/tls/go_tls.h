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
  /// How it is probed: Write (`write`) at its entry only, "go_emulated_entry"; Read at its
  /// returns, "go_stepped_return_spilled_args" or "go_emulated_entry_stepped_return".
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
  uint64_t tcpconn_itab_vaddr = 0;  // go:itab.*net.TCPConn,net.Conn
};

/// Reads the symbol table (.symtab: Go does not export these in .dynsym) and disassembles
/// both functions. A stripped binary (no .symtab) is reported as not found.
GoTlsBinary InspectGoTls(const std::string& path);

/// The cookie of a return probe at `site_vaddr`: the itab's address relative to it.
inline uint64_t GoItabCookie(const GoTlsBinary& b, uint64_t site_vaddr) {
  return b.tcpconn_itab_vaddr - site_vaddr;
}

}  // namespace redtap::tls

// SPDX-License-Identifier: Apache-2.0
#include "userspace/tls/go_tls.h"

#include <capstone/capstone.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "userspace/common/errno_text.h"
#include "userspace/tls/probe_sites.h"

namespace redtap::tls {
namespace {

constexpr const char* kRead = "crypto/tls.(*Conn).Read";
constexpr const char* kWrite = "crypto/tls.(*Conn).Write";
constexpr const char* kReadClosure = "crypto/tls.(*Conn).Read.func1";
// Go 1.20 renamed the linker's symbols from "go." to "go:".
constexpr const char* kItabs[] = {"go:itab.*net.TCPConn,net.Conn", "go.itab.*net.TCPConn,net.Conn"};
constexpr uint64_t kMaxFunctionBytes = 64 * 1024;

bool IsReg(const cs_x86_op& op, x86_reg r) { return op.type == X86_OP_REG && op.reg == r; }

// `0x10(%r14)`: g.stackguard0.
bool IsStackGuard(const cs_x86_op& op) {
  return op.type == X86_OP_MEM && op.mem.base == X86_REG_R14 && op.mem.index == X86_REG_INVALID &&
         op.mem.segment == X86_REG_INVALID && op.mem.disp == 0x10;
}

struct Insn {
  uint64_t address;
  unsigned id;
  uint16_t size;
  bool call;
  cs_x86 x;
};

bool IsRspSlot(const cs_x86_op& op) {
  return op.type == X86_OP_MEM && op.mem.base == X86_REG_RSP && op.mem.index == X86_REG_INVALID &&
         op.mem.segment == X86_REG_INVALID;
}

// GoFunctionSites::deferred_why for a function whose shape was verified (s.ok): empty when
// every indirect call is the deferred call followed by the epilogue that returns n from one
// frame slot (go_tls.h).
std::string FindDeferredReturns(GoFunctionSites& s, const std::vector<Insn>& body) {
  if (!s.args_spilled) return "the receiver and the buffer are not kept in their argument slots";
  int64_t slot = -1;
  std::vector<uint64_t> covered;  // the epilogues' rets
  for (size_t k = 0; k < body.size(); ++k) {
    const Insn& c = body[k];
    if (!c.call || (c.x.op_count == 1 && c.x.operands[0].type == X86_OP_IMM)) continue;
    const std::string at = " at +" + std::to_string(c.address);
    if (c.x.op_count != 1 || c.x.operands[0].type != X86_OP_REG) {
      return "an indirect call through memory" + at;
    }
    // mov D(%rsp),%rax and other loads from the frame, add $frame,%rsp, ret.
    int64_t d = -1;
    bool closed = false;
    size_t j = k + 1;
    for (; j < body.size(); ++j) {
      const Insn& e = body[j];
      const cs_x86& x = e.x;
      if (e.id == X86_INS_MOV && x.op_count == 2 && x.operands[0].type == X86_OP_REG &&
          x.operands[0].size == 8 && IsRspSlot(x.operands[1])) {
        const x86_reg r = x.operands[0].reg;
        if (r == X86_REG_RSP || r == X86_REG_R14) break;
        if (r == X86_REG_RAX) {
          if (d >= 0) break;
          d = x.operands[1].mem.disp;
        }
        continue;
      }
      if (e.id == X86_INS_ADD && x.op_count == 2 && IsReg(x.operands[0], X86_REG_RSP) &&
          x.operands[1].type == X86_OP_IMM &&
          x.operands[1].imm == static_cast<int64_t>(s.frame_size) && j + 1 < body.size() &&
          body[j + 1].id == X86_INS_RET && body[j + 1].size == 1) {
        closed = true;
        covered.push_back(body[j + 1].address);
      }
      break;
    }
    if (!closed || d < 0) return "an indirect call not followed by Go's epilogue" + at;
    if (slot >= 0 && d != slot) return "two result slots" + at;
    slot = d;
    s.deferred_call_rets.push_back(k + 1 < body.size() ? body[k + 1].address : 0);
  }
  if (slot < 0) return "no deferred call";
  if (slot + 8 > static_cast<int64_t>(s.frame_size)) return "the result slot is not a local";
  // Nothing but the function itself may write n's slot: no address is taken at or below it
  // (a local's address taken below could reach it), none relative to rbp.
  for (const Insn& e : body) {
    if (e.id != X86_INS_LEA || e.x.op_count != 2 || e.x.operands[1].type != X86_OP_MEM) continue;
    const cs_x86_op& m = e.x.operands[1];
    const std::string at = " at +" + std::to_string(e.address);
    if (m.mem.base == X86_REG_RBP) return "an address taken relative to rbp" + at;
    if (m.mem.base == X86_REG_RSP && m.mem.disp < slot + 8) {
      return "the result slot's address may be taken" + at;
    }
  }
  s.result_slot = static_cast<uint64_t>(slot);
  for (uint64_t r : s.ret_offsets) {
    if (std::find(covered.begin(), covered.end(), r) == covered.end()) {
      s.undeferred_ret_offsets.push_back(r);
    }
  }
  return "";
}

}  // namespace

std::string GoTlsBinary::ReadMode() const {
  return read_deferred ? "go_emulated_deferred_return" : read.sites.Mode(false);
}

std::string GoFunctionSites::Mode(bool write) const {
  if (write) return "go_emulated_entry";
  return args_spilled ? "go_stepped_return_spilled_args" : "go_emulated_entry_stepped_return";
}

GoFunctionSites FindGoFunctionSites(std::span<const uint8_t> code) {
  GoFunctionSites s;
  csh h = 0;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK) {
    s.why = "capstone cannot disassemble x86-64";
    return s;
  }
  std::unique_ptr<csh, void (*)(csh*)> closer(&h, [](csh* p) { cs_close(p); });
  cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
  std::unique_ptr<cs_insn, void (*)(cs_insn*)> insn(cs_malloc(h),
                                                    [](cs_insn* i) { cs_free(i, 1); });
  if (!insn) {
    s.why = "out of memory";
    return s;
  }
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t addr = 0;
  bool in_prologue = true, guard_checked = false;
  // After the entry jump: the frame (`sub $N,%rsp`), then, before any call or jump, the
  // spills `mov %rax,N+8(%rsp)` and `mov %rbx,N+16(%rsp)`.
  bool framed = false, straight = true, rax_spilled = false, rbx_spilled = false;
  bool rax_clobbered = false, rbx_clobbered = false, slot_touched = false;
  uint64_t morestack = UINT64_MAX;  // the entry jump's target: the stack-growth path
  // The body's instructions (after the entry jump, before the stack-growth path), for the
  // deferred-return analysis.
  std::vector<Insn> body;
  while (left > 0) {
    if (!cs_disasm_iter(h, &p, &left, &addr, insn.get())) {
      // Go pads functions with int3 (0xcc): anything else undecodable is not Go's code.
      if (*p == 0xcc) {
        ++p;
        --left;
        ++addr;
        continue;
      }
      s.why = "undecodable instruction at +" + std::to_string(addr);
      return s;
    }
    const cs_insn& i = *insn;
    const cs_x86& x = i.detail->x86;
    bool jump = false, call = false, ret = false;
    for (uint8_t g = 0; g < i.detail->groups_count; ++g) {
      jump = jump || i.detail->groups[g] == X86_GRP_JUMP;
      call = call || i.detail->groups[g] == X86_GRP_CALL;
      ret = ret || i.detail->groups[g] == X86_GRP_RET;
    }
    if (in_prologue) {
      // Only the stack-guard check may come before the entry probe: `lea -N(%rsp),%r12`
      // (large frames) and `cmp 0x10(%r14),%rsp|%r12`, then the conditional jump.
      if (jump) {
        if (!guard_checked || i.id == X86_INS_JMP ||
            !IsEmulatedInstruction(std::span<const uint8_t>(i.bytes, i.size))) {
          s.why = guard_checked ? "the stack check's jump is not a conditional jump"
                                : "no stack check against r14 (not Go's register ABI, Go < 1.17)";
          return s;
        }
        s.entry_offset = i.address;
        if (x.op_count == 1 && x.operands[0].type == X86_OP_IMM && x.operands[0].imm > 0) {
          morestack = static_cast<uint64_t>(x.operands[0].imm);
        }
        in_prologue = false;
      } else if (i.id == X86_INS_CMP && x.op_count == 2 && IsStackGuard(x.operands[1]) &&
                 (IsReg(x.operands[0], X86_REG_RSP) || IsReg(x.operands[0], X86_REG_R12))) {
        guard_checked = true;
        s.guard_r12 = IsReg(x.operands[0], X86_REG_R12);
      } else if (i.id == X86_INS_LEA && !guard_checked && x.op_count == 2 &&
                 IsReg(x.operands[0], X86_REG_R12) && x.operands[1].type == X86_OP_MEM &&
                 x.operands[1].mem.base == X86_REG_RSP) {
        // the frame's lowest address, for the check
      } else {
        s.why = "no stack check against r14 (not Go's register ABI, Go < 1.17)";
        return s;
      }
      continue;
    }
    if (i.address < morestack) {
      // The argument slots: [N+8, N+24) from rsp once the frame is made (8 and 16 above the
      // return address). The stack-growth path at the end spills the arguments below its own
      // rsp: it is not looked at.
      if (!framed && straight && i.id == X86_INS_SUB && x.op_count == 2 &&
          IsReg(x.operands[0], X86_REG_RSP) && x.operands[1].type == X86_OP_IMM &&
          x.operands[1].imm > 0) {
        framed = true;
        s.frame_size = static_cast<uint64_t>(x.operands[1].imm);
        continue;
      }
      const int64_t lo = static_cast<int64_t>(s.frame_size) + 8, hi = lo + 16;
      for (uint8_t k = 0; k < x.op_count; ++k) {
        const cs_x86_op& op = x.operands[k];
        if (op.type != X86_OP_MEM) continue;
        const bool rsp_slot = op.mem.base == X86_REG_RSP && op.mem.index == X86_REG_INVALID &&
                              op.mem.disp + static_cast<int64_t>(op.size) > lo && op.mem.disp < hi;
        // rbp = rsp + N - 8 once the frame is made: its positive offsets reach the slots.
        const bool rbp_slot = op.mem.base == X86_REG_RBP && op.mem.disp > 0;
        const bool addressed = i.id == X86_INS_LEA;
        const bool written = (op.access & CS_AC_WRITE) != 0;
        if (!framed || !(rsp_slot || rbp_slot) || !(written || addressed)) continue;
        const bool spill =
            straight && i.id == X86_INS_MOV && k == 0 && x.op_count == 2 && op.size == 8 &&
            rsp_slot &&
            ((op.mem.disp == lo && IsReg(x.operands[1], X86_REG_RAX) && !rax_clobbered) ||
             (op.mem.disp == lo + 8 && IsReg(x.operands[1], X86_REG_RBX) && !rbx_clobbered));
        if (spill) {
          (op.mem.disp == lo ? rax_spilled : rbx_spilled) = true;
        } else {
          slot_touched = true;
        }
      }
      for (uint8_t k = 0; k < x.op_count; ++k) {
        const cs_x86_op& op = x.operands[k];
        if (framed && op.type == X86_OP_MEM && (op.access & CS_AC_WRITE) != 0 &&
            op.mem.base == X86_REG_RSP && op.mem.disp >= static_cast<int64_t>(s.frame_size) + 8 &&
            !(i.id == X86_INS_MOV && op.size == 8 && straight &&
              op.mem.disp < static_cast<int64_t>(s.frame_size) + 8 + 8 * 9)) {
          // (the register arguments' spills, straight after the frame is made, are not)
          s.writes_above_frame = true;
        }
      }
      body.push_back(Insn{i.address, i.id, i.size, call, x});
      if (call && x.op_count == 1 && x.operands[0].type == X86_OP_IMM)
        s.call_targets.push_back(x.operands[0].imm);
      if (framed && straight) {
        cs_regs rd, wr;
        uint8_t nrd = 0, nwr = 0;
        if (cs_regs_access(h, insn.get(), rd, &nrd, wr, &nwr) == CS_ERR_OK) {
          for (uint8_t k = 0; k < nwr; ++k) {
            rax_clobbered = rax_clobbered || wr[k] == X86_REG_RAX || wr[k] == X86_REG_EAX;
            rbx_clobbered = rbx_clobbered || wr[k] == X86_REG_RBX || wr[k] == X86_REG_EBX;
          }
        }
      }
      if (jump || call || ret) straight = false;
    }
    if (ret) {
      if (i.id != X86_INS_RET || i.size != 1) {
        s.why = "a return other than a near ret at +" + std::to_string(i.address);
        return s;
      }
      s.ret_offsets.push_back(i.address);
      continue;
    }
    // Every exit must be a ret: a jump out of the function (a tail call) would skip the
    // return probes.
    if (jump && !call && x.op_count == 1) {
      const cs_x86_op& op = x.operands[0];
      if (op.type != X86_OP_IMM) {
        s.why = "an indirect jump at +" + std::to_string(i.address);
        return s;
      }
      if (op.imm < 0 || static_cast<uint64_t>(op.imm) >= code.size()) {
        s.why = "a jump out of the function at +" + std::to_string(i.address);
        return s;
      }
    }
  }
  if (in_prologue) {
    s.why = "no stack check against r14 (not Go's register ABI, Go < 1.17)";
    return s;
  }
  if (s.ret_offsets.empty()) {
    s.why = "no ret";
    return s;
  }
  s.args_spilled = framed && rax_spilled && rbx_spilled && !slot_touched;
  s.ok = true;
  s.deferred_why = FindDeferredReturns(s, body);
  if (!s.deferred_why.empty()) {
    s.result_slot = 0;
    s.deferred_call_rets.clear();
  }
  return s;
}

GoTlsBinary InspectGoTls(const std::string& path) {
  GoTlsBinary out;
  out.read.symbol = kRead;
  out.write.symbol = kWrite;
  out.read_closure.symbol = kReadClosure;
  if (elf_version(EV_CURRENT) == EV_NONE) return out;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  uint64_t read_size = 0, write_size = 0, closure_size = 0;
  if (elf && elf_kind(elf) == ELF_K_ELF) {
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf, scn)) != nullptr) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || sh.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      const size_t n = sh.sh_size / sh.sh_entsize;
      for (size_t k = 0; k < n; k++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(k), &sym) || sym.st_shndx == SHN_UNDEF ||
            sym.st_value == 0) {
          continue;
        }
        const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (!name || (name[0] != 'c' && name[0] != 'g')) continue;
        GoTlsFunction* fn = nullptr;
        if (std::strcmp(name, kRead) == 0) {
          fn = &out.read;
          read_size = sym.st_size;
        } else if (std::strcmp(name, kWrite) == 0) {
          fn = &out.write;
          write_size = sym.st_size;
        } else if (std::strcmp(name, kReadClosure) == 0) {
          fn = &out.read_closure;
          closure_size = sym.st_size;
        } else {
          for (const char* itab : kItabs) {
            if (std::strcmp(name, itab) == 0) out.tcpconn_itab_vaddr = sym.st_value;
          }
          continue;
        }
        Elf_Scn* sec = elf_getscn(elf, sym.st_shndx);
        GElf_Shdr ssh;
        if (!sec || !gelf_getshdr(sec, &ssh) || GELF_ST_TYPE(sym.st_info) != STT_FUNC) continue;
        fn->vaddr = sym.st_value;
        fn->file_offset = sym.st_value - ssh.sh_addr + ssh.sh_offset;
      }
    }
  }
  if (elf) elf_end(elf);
  out.found = out.read.vaddr != 0 && out.write.vaddr != 0;
  if (!out.found) {
    close(fd);
    return out;
  }
  if (out.tcpconn_itab_vaddr == 0) out.why = "no itab of *net.TCPConn as a net.Conn";
  out.read_size = read_size;
  for (auto [fn, size] : {std::pair{&out.read, read_size}, std::pair{&out.write, write_size},
                          std::pair{&out.read_closure, closure_size}}) {
    if (fn == &out.read_closure && fn->vaddr == 0) {
      fn->sites.why = "not in the symbol table";
      continue;
    }
    if (size == 0 || size > kMaxFunctionBytes) {
      fn->sites.why = "function size " + std::to_string(size) + " out of range";
      continue;
    }
    std::vector<uint8_t> code(size);
    const ssize_t got = pread(fd, code.data(), size, static_cast<off_t>(fn->file_offset));
    if (got != static_cast<ssize_t>(size)) {
      fn->sites.why = "cannot read the function's code: " + ErrnoText(got < 0 ? errno : EIO);
      continue;
    }
    fn->sites = FindGoFunctionSites(code);
  }
  close(fd);
  // Read's results at its deferred closure's entry (go_tls.h).
  const GoFunctionSites& rs = out.read.sites;
  const GoFunctionSites& cs = out.read_closure.sites;
  const int64_t closure_rel = static_cast<int64_t>(out.read_closure.vaddr - out.read.vaddr);
  if (!rs.ok) {
    out.read_deferred_why = "Read: " + rs.why;
  } else if (!rs.deferred_why.empty()) {
    out.read_deferred_why = "Read: " + rs.deferred_why;
  } else if (!cs.ok) {
    out.read_deferred_why = std::string(kReadClosure) + ": " + cs.why;
  } else if (cs.writes_above_frame) {
    out.read_deferred_why = std::string(kReadClosure) + ": writes above its frame";
  } else if (std::find(rs.call_targets.begin(), rs.call_targets.end(), closure_rel) !=
             rs.call_targets.end()) {
    out.read_deferred_why = "Read calls its closure directly";
  } else {
    out.read_deferred = true;
  }
  if (out.why.empty()) {
    for (const GoTlsFunction* fn : {&out.read, &out.write}) {
      if (!fn->sites.ok) {
        out.why = fn->symbol + ": " + fn->sites.why;
        break;
      }
    }
  }
  return out;
}

}  // namespace redtap::tls

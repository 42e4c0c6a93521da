// SPDX-License-Identifier: Apache-2.0
#include "userspace/tls/probe_sites.h"

#include <capstone/capstone.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <vector>

namespace redtap::tls {
namespace {

constexpr size_t kWindow = 128;  // bytes decoded from the function's start
constexpr size_t kMaxInstructions = 48;

// The 64-bit register a (sub)register belongs to, for the ones the shape cares about.
x86_reg Parent(unsigned r) {
  switch (r) {
    case X86_REG_RDI:
    case X86_REG_EDI:
    case X86_REG_DI:
    case X86_REG_DIL:
      return X86_REG_RDI;
    case X86_REG_RSI:
    case X86_REG_ESI:
    case X86_REG_SI:
    case X86_REG_SIL:
      return X86_REG_RSI;
    case X86_REG_RCX:
    case X86_REG_ECX:
    case X86_REG_CX:
    case X86_REG_CL:
    case X86_REG_CH:
      return X86_REG_RCX;
    case X86_REG_RAX:
    case X86_REG_EAX:
    case X86_REG_AX:
    case X86_REG_AL:
    case X86_REG_AH:
      return X86_REG_RAX;
    case X86_REG_RSP:
    case X86_REG_ESP:
    case X86_REG_SP:
    case X86_REG_SPL:
      return X86_REG_RSP;
    default:
      return X86_REG_INVALID;
  }
}

struct Handle {
  csh h = 0;
  bool ok = false;
  Handle() {
    ok = cs_open(CS_ARCH_X86, CS_MODE_64, &h) == CS_ERR_OK &&
         cs_option(h, CS_OPT_DETAIL, CS_OPT_ON) == CS_ERR_OK;
  }
  ~Handle() {
    if (h) cs_close(&h);
  }
};

struct Insn {
  uint64_t offset = 0;
  std::vector<uint8_t> bytes;
  unsigned id = 0;
  bool jump = false, call = false, ret = false;
  std::vector<x86_reg> written;  // parents (RDI, RSI, RCX, RAX, RSP) written
  cs_x86 x86{};
};

bool Writes(const Insn& i, x86_reg r) {
  for (x86_reg w : i.written) {
    if (w == r) return true;
  }
  return false;
}

// `[rsp + disp]` as a memory operand: the displacement, else false.
bool RspSlot(const cs_x86_op& op, int64_t* disp) {
  if (op.type != X86_OP_MEM || op.mem.base != X86_REG_RSP || op.mem.index != X86_REG_INVALID ||
      op.mem.segment != X86_REG_INVALID) {
    return false;
  }
  *disp = op.mem.disp;
  return true;
}

std::vector<Insn> Decode(const Handle& cs, std::span<const uint8_t> code) {
  std::vector<Insn> out;
  const uint8_t* p = code.data();
  size_t size = std::min(code.size(), kWindow);
  uint64_t addr = 0;
  std::unique_ptr<cs_insn, void (*)(cs_insn*)> insn(cs_malloc(cs.h),
                                                    [](cs_insn* i) { cs_free(i, 1); });
  if (!insn) return out;
  while (out.size() < kMaxInstructions && cs_disasm_iter(cs.h, &p, &size, &addr, insn.get())) {
    Insn i;
    i.offset = insn->address;
    i.bytes.assign(insn->bytes, insn->bytes + insn->size);
    i.id = insn->id;
    const cs_detail* d = insn->detail;
    for (uint8_t g = 0; g < d->groups_count; ++g) {
      i.jump = i.jump || d->groups[g] == X86_GRP_JUMP;
      i.call = i.call || d->groups[g] == X86_GRP_CALL;
      i.ret = i.ret || d->groups[g] == X86_GRP_RET;
    }
    cs_regs rd, wr;
    uint8_t nrd = 0, nwr = 0;
    if (cs_regs_access(cs.h, insn.get(), rd, &nrd, wr, &nwr) == CS_ERR_OK) {
      for (uint8_t k = 0; k < nwr; ++k) {
        if (x86_reg r = Parent(wr[k]); r != X86_REG_INVALID) i.written.push_back(r);
      }
    }
    i.x86 = d->x86;
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace

std::string ProbeSites::Mode() const {
  if (emulated) return "emulated";
  return entry_emulated ? "uretprobe_emulated_entry" : "uretprobe_stepped_entry";
}

bool IsEmulatedInstruction(std::span<const uint8_t> c) {
  if (c.empty()) return false;
  size_t i = 0;
  // A REX prefix (push r8..r15 is 41 50+r).
  const bool rex = (c[0] & 0xf0) == 0x40;
  if (rex) i = 1;
  if (i >= c.size()) return false;
  const uint8_t op = c[i];
  if (op >= 0x50 && op <= 0x57) return true;  // push reg
  if (rex) return false;
  if (op == 0x90) return true;                              // nop
  if (op == 0xe8 || op == 0xe9 || op == 0xeb) return true;  // call rel32, jmp rel32/rel8
  if (op >= 0x70 && op <= 0x7f) return true;                // jcc rel8
  if (op == 0x0f && c.size() > 1 && c[1] >= 0x80 && c[1] <= 0x8f) return true;  // jcc rel32
  return false;
}

ProbeSites FindProbeSites(std::span<const uint8_t> code) {
  ProbeSites s;
  s.entry_emulated = IsEmulatedInstruction(code);
  static thread_local Handle cs;
  if (!cs.ok) {
    s.why = "capstone cannot disassemble x86-64";
    return s;
  }
  const std::vector<Insn> insns = Decode(cs, code);
  // 1. Up to the first direct call: rdi and rsi untouched, rcx last set to a stack slot,
  //    no unconditional control transfer (conditional ones leave to error paths).
  bool rcx_slot = false;
  int64_t slot = 0;
  size_t k = 0;
  for (; k < insns.size(); ++k) {
    const Insn& i = insns[k];
    if (i.call) break;
    if (i.ret || (i.jump && i.id == X86_INS_JMP)) {
      s.why = "leaves the function before any call";
      return s;
    }
    if (Writes(i, X86_REG_RDI) || Writes(i, X86_REG_RSI)) {
      s.why = "the ssl or buffer argument register is overwritten before the call";
      return s;
    }
    if (Writes(i, X86_REG_RSP) && rcx_slot) rcx_slot = false;  // the slot moved with rsp
    if (Writes(i, X86_REG_RCX)) {
      rcx_slot = false;
      const cs_x86& x = i.x86;
      if (i.id == X86_INS_LEA && x.op_count == 2 && x.operands[0].type == X86_OP_REG &&
          x.operands[0].reg == X86_REG_RCX && RspSlot(x.operands[1], &slot)) {
        rcx_slot = true;
      } else if (i.id == X86_INS_MOV && x.op_count == 2 && x.operands[0].type == X86_OP_REG &&
                 x.operands[0].reg == X86_REG_RCX && x.operands[1].type == X86_OP_REG &&
                 x.operands[1].reg == X86_REG_RSP) {
        rcx_slot = true;
        slot = 0;
      }
    }
  }
  if (k == insns.size()) {
    s.why = "no call in the first " + std::to_string(kWindow) + " bytes";
    return s;
  }
  const Insn& call = insns[k];
  if (call.bytes.empty() || call.bytes[0] != 0xe8) {
    s.why = "the first call is indirect";
    return s;
  }
  if (!rcx_slot) {
    s.why = "the call's 4th argument (rcx) is not a stack slot of this frame";
    return s;
  }
  // 2. After the call: only instructions that write neither eax nor rsp (test, cmp), then
  //    a conditional jump, which the kernel emulates.
  size_t j = k + 1;
  for (; j < insns.size(); ++j) {
    const Insn& i = insns[j];
    if (i.jump && i.id != X86_INS_JMP) break;
    if (i.jump || i.call || i.ret || Writes(i, X86_REG_RAX) || Writes(i, X86_REG_RSP)) {
      s.why = "no conditional jump right after the call (the status would be lost)";
      return s;
    }
  }
  if (j + 1 >= insns.size() || !IsEmulatedInstruction(insns[j].bytes)) {
    s.why = "no emulated instruction after the call";
    return s;
  }
  // 3. The success path returns the slot: `mov off(%rsp),%eax|%rax` right after the jump.
  const Insn& load = insns[j + 1];
  int64_t disp = 0;
  if (load.id != X86_INS_MOV || load.x86.op_count != 2 || load.x86.operands[0].type != X86_OP_REG ||
      Parent(load.x86.operands[0].reg) != X86_REG_RAX || !RspSlot(load.x86.operands[1], &disp) ||
      disp != slot) {
    s.why = "the success path does not return the call's byte-count slot";
    return s;
  }
  s.emulated = true;
  s.call_offset = call.offset;
  s.post_offset = insns[j].offset;
  return s;
}

ProbeSites FindProbeSitesInFile(const std::string& path, uint64_t file_offset) {
  std::array<uint8_t, kWindow> buf{};
  ssize_t n = -1;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(file_offset));
    close(fd);
  }
  if (n <= 0) {
    ProbeSites s;
    s.why = "cannot read the function's code";
    return s;
  }
  return FindProbeSites(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
}

}  // namespace redtap::tls

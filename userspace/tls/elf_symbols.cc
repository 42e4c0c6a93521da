// SPDX-License-Identifier: Apache-2.0
#include "userspace/tls/elf_symbols.h"

#include "userspace/common/errno_text.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <set>

namespace redtap::tls {

Result<std::map<std::string, uint64_t>> FindFunctionOffsets(const std::string& path,
                                                            const std::vector<std::string>& names) {
  if (elf_version(EV_CURRENT) == EV_NONE) return Status::Error("libelf: version mismatch");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Error(path + ": " + ErrnoText(errno));
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (!elf || elf_kind(elf) != ELF_K_ELF) {
    if (elf) elf_end(elf);
    close(fd);
    return Status::Error(path + ": not an ELF file");
  }
  std::set<std::string> wanted(names.begin(), names.end());
  std::map<std::string, uint64_t> out;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr && out.size() < wanted.size()) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB)) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || sh.sh_entsize == 0) continue;
    size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; i++) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
      if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value == 0 || sym.st_shndx == SHN_UNDEF)
        continue;
      const char* raw = elf_strptr(elf, sh.sh_link, sym.st_name);
      if (!raw) continue;
      std::string name(raw, strcspn(raw, "@"));
      if (!wanted.count(name) || out.count(name)) continue;
      // Virtual address -> file offset through the symbol's section.
      Elf_Scn* sec = elf_getscn(elf, sym.st_shndx);
      GElf_Shdr ssh;
      if (!sec || !gelf_getshdr(sec, &ssh)) continue;
      out[name] = sym.st_value - ssh.sh_addr + ssh.sh_offset;
    }
  }
  elf_end(elf);
  close(fd);
  return out;
}

}  // namespace redtap::tls

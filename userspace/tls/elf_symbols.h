// SPDX-License-Identifier: Apache-2.0
// File offsets of function symbols in an ELF file (what a uprobe attaches to).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "userspace/common/status.h"

namespace redtap::tls {

/// Looks up `names` in .dynsym and .symtab of the ELF file at `path`. Versioned names
/// ("SSL_write@@OPENSSL_3.0.0") match their base name. Returns name -> file offset for the
/// defined functions found (missing names are simply absent).
Result<std::map<std::string, uint64_t>> FindFunctionOffsets(const std::string& path,
                                                            const std::vector<std::string>& names);

}  // namespace redtap::tls

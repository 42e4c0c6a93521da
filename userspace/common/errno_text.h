// SPDX-License-Identifier: Apache-2.0
// The one way errors from the kernel and libbpf are written in messages.
#pragma once

#include <string>

namespace redtap {

/// "Operation not permitted (errno 1)" for 1 or -1: libbpf returns negative errnos, the C
/// library sets positive ones; both read the same.
std::string ErrnoText(int err);

}  // namespace redtap

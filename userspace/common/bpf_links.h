// SPDX-License-Identifier: Apache-2.0
// Helpers shared by every module that attaches BPF programs.
#pragma once

#include <vector>

struct bpf_link;

namespace redtap {

/// Destroys links concurrently and clears the vector: each detach waits for an RCU grace
/// period (tens of ms), so one thread per link keeps shutdown well under a second.
void DestroyLinksInParallel(std::vector<struct bpf_link*>& links);

}  // namespace redtap

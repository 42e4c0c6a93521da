// SPDX-License-Identifier: Apache-2.0
#include "userspace/common/bpf_links.h"

#include <bpf/libbpf.h>

#include <thread>

namespace redtap {

void DestroyLinksInParallel(std::vector<struct bpf_link*>& links) {
  std::vector<std::thread> threads;
  threads.reserve(links.size());
  for (auto* l : links) threads.emplace_back([l] { bpf_link__destroy(l); });
  for (auto& t : threads) t.join();
  links.clear();
}

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/common/errno_text.h"

#include <cstring>

namespace redtap {

std::string ErrnoText(int err) {
  if (err < 0) err = -err;
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/common/errno_text.h"

#include <errno.h>
#include <gtest/gtest.h>

#include <cstring>

namespace redtap {
namespace {

TEST(ErrnoText, NamesTheErrorAndItsNumber) {
  EXPECT_EQ(ErrnoText(EPERM), std::string(std::strerror(EPERM)) + " (errno 1)");
  EXPECT_EQ(ErrnoText(ENOENT), std::string(std::strerror(ENOENT)) + " (errno 2)");
}

TEST(ErrnoText, NegativeErrnosFromLibbpfReadTheSame) {
  EXPECT_EQ(ErrnoText(-EPERM), ErrnoText(EPERM));
  EXPECT_EQ(ErrnoText(-EACCES), ErrnoText(EACCES));
  EXPECT_NE(ErrnoText(-EACCES).find("(errno 13)"), std::string::npos);
}

}  // namespace
}  // namespace redtap

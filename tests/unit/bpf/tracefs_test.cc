// SPDX-License-Identifier: Apache-2.0
// EnsureTracefs against a fake /sys/kernel: a temporary directory and a fake mount.
#include "userspace/bpf/tracefs.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

namespace redtap {
namespace {

namespace fs = std::filesystem;

class TracefsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "redtap-tracefs-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    tracing_ = root_ + "/tracing";
    debug_ = root_ + "/debug/tracing";
    fs::create_directories(tracing_);  // an empty mount point, as on a host without tracefs
  }
  void TearDown() override { fs::remove_all(root_); }

  // A fake mount that makes `groups` appear under tracing_ (or fails with `err`).
  internal::TracefsEnv Env(std::vector<std::string> groups, int err = 0) {
    return {{tracing_, debug_}, [this, groups, err] {
              mounts_++;
              if (err) {
                errno = err;
                return -1;
              }
              fs::create_directories(tracing_ + "/events");
              for (const auto& g : groups) fs::create_directories(tracing_ + "/events/" + g);
              return 0;
            }};
  }

  std::string root_, tracing_, debug_;
  int mounts_ = 0;
};

TEST_F(TracefsTest, NothingToDoWhenTheGroupsAreVisible) {
  fs::create_directories(tracing_ + "/events/syscalls");
  fs::create_directories(tracing_ + "/events/tcp");
  auto r = internal::EnsureTracefs({"syscalls", "tcp"}, Env({}));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), "");
  EXPECT_EQ(mounts_, 0);
}

TEST_F(TracefsTest, TheDebugfsPathCountsToo) {
  fs::create_directories(debug_ + "/events/tcp");
  auto r = internal::EnsureTracefs({"tcp"}, Env({}));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), "");
  EXPECT_EQ(mounts_, 0);
}

TEST_F(TracefsTest, MountsWhenNotMountedAndSaysSo) {
  auto r = internal::EnsureTracefs({"syscalls"}, Env({"syscalls", "tcp"}));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), "tracefs was not mounted: mounted it at " + tracing_);
  EXPECT_EQ(mounts_, 1);
  // Once mounted, the next caller (another object) has nothing to do.
  r = internal::EnsureTracefs({"tcp"}, Env({}));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), "");
  EXPECT_EQ(mounts_, 1);
}

TEST_F(TracefsTest, AFailedMountIsAClearError) {
  auto r = internal::EnsureTracefs({"syscalls"}, Env({}, EPERM));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("tracefs is not mounted and mounting it at " + tracing_ + " failed: "),
            std::string::npos)
      << r.error();
  EXPECT_NE(r.error().find("(errno 1)"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("syscall tracepoints need it"), std::string::npos) << r.error();
}

TEST_F(TracefsTest, AGroupTheKernelLacksIsAClearError) {
  auto r = internal::EnsureTracefs({"syscalls"}, Env({"tcp"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "tracefs mounted at " + tracing_ +
                           " but it has no events/syscalls: the kernel was built without "
                           "CONFIG_FTRACE_SYSCALLS");
}

TEST_F(TracefsTest, MountedWithoutTheGroupDoesNotMountAgain) {
  fs::create_directories(tracing_ + "/events/syscalls");
  auto r = internal::EnsureTracefs({"tcp"}, Env({"tcp"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(mounts_, 0);
  EXPECT_EQ(r.error(), "tracefs is mounted at " + tracing_ +
                           " but it has no events/tcp: the kernel has no tcp tracepoints");
}

}  // namespace
}  // namespace redtap

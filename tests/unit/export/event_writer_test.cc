// SPDX-License-Identifier: Apache-2.0
#include "userspace/export/event_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace redtap::exporter {
namespace {

class EventWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/redtap_writer_testXXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/events.ndjson";
  }
  void TearDown() override {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  std::string ReadAll() const {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string dir_;
  std::string path_;
};

TEST_F(EventWriterTest, WritesLinesInOrder) {
  auto w = EventWriter::Open(path_, 1024);
  ASSERT_TRUE(w.ok()) << w.error();
  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    const std::string line = "{\"n\":" + std::to_string(i) + "}";
    ASSERT_TRUE((*w)->Push(line));
    expected += line + "\n";
    if (i % 300 == 0) (*w)->Flush();  // the queue is bounded: let the writer catch up
  }
  (*w)->Flush();
  EXPECT_EQ(ReadAll(), expected);
  EXPECT_EQ((*w)->written(), 1000u);
  EXPECT_EQ((*w)->dropped(), 0u);
  EXPECT_EQ((*w)->write_errors(), 0u);

  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0640, 0u);  // at most 0640 (umask may remove more)
}

TEST_F(EventWriterTest, AppendsToAnExistingFile) {
  {
    std::ofstream out(path_);
    out << "old\n";
  }
  {
    auto w = EventWriter::Open(path_, 16);
    ASSERT_TRUE(w.ok()) << w.error();
    ASSERT_TRUE((*w)->Push("new"));
  }  // the destructor drains and stops
  EXPECT_EQ(ReadAll(), "old\nnew\n");
}

TEST_F(EventWriterTest, DropsWhenTheQueueIsFull) {
  auto w = EventWriter::Open(path_, 1);
  ASSERT_TRUE(w.ok()) << w.error();
  (*w)->SetPausedForTesting(true);
  EXPECT_TRUE((*w)->Push("a"));
  EXPECT_FALSE((*w)->Push("b"));
  EXPECT_FALSE((*w)->Push("c"));
  EXPECT_EQ((*w)->dropped(), 2u);
  (*w)->SetPausedForTesting(false);
  (*w)->Flush();
  EXPECT_TRUE((*w)->Push("d"));  // room again
  (*w)->Flush();
  EXPECT_EQ(ReadAll(), "a\nd\n");
  EXPECT_EQ((*w)->written(), 2u);
  EXPECT_EQ((*w)->dropped(), 2u);
}

TEST_F(EventWriterTest, StopDrainsAPausedQueueThenDrops) {
  auto w = EventWriter::Open(path_, 8);
  ASSERT_TRUE(w.ok()) << w.error();
  (*w)->SetPausedForTesting(true);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE((*w)->Push(std::to_string(i)));
  (*w)->Stop();
  EXPECT_EQ(ReadAll(), "0\n1\n2\n3\n4\n5\n6\n7\n");
  EXPECT_FALSE((*w)->Push("late"));
  EXPECT_EQ((*w)->written(), 8u);
  EXPECT_EQ((*w)->dropped(), 1u);
  (*w)->Stop();   // idempotent
  (*w)->Flush();  // returns at once
}

TEST_F(EventWriterTest, ManyProducers) {
  auto w = EventWriter::Open(path_, 1 << 16);
  ASSERT_TRUE(w.ok()) << w.error();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&w, t] {
      for (int i = 0; i < 5000; ++i) (*w)->Push(std::to_string(t) + ":" + std::to_string(i));
    });
  }
  for (auto& t : threads) t.join();
  (*w)->Flush();
  EXPECT_EQ((*w)->written() + (*w)->dropped(), 20000u);
  const std::string text = ReadAll();
  EXPECT_EQ(static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n')), (*w)->written());
}

TEST_F(EventWriterTest, WriteErrorsAreCountedNotFatal) {
  auto w = EventWriter::Open("/dev/full", 16);
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_TRUE((*w)->Push("x"));
  (*w)->Flush();
  EXPECT_TRUE((*w)->Push("y"));
  (*w)->Flush();
  EXPECT_EQ((*w)->written(), 0u);
  EXPECT_EQ((*w)->dropped(), 2u);
  EXPECT_EQ((*w)->write_errors(), 2u);
}

TEST_F(EventWriterTest, OpenErrors) {
  auto w = EventWriter::Open(dir_ + "/missing/dir/events", 16);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().find(dir_ + "/missing/dir/events"), std::string::npos) << w.error();
  EXPECT_FALSE(EventWriter::Open("", 16).ok());
  EXPECT_FALSE(EventWriter::Open(path_, 0).ok());
}

TEST(EventWriterStdoutTest, DashIsStdout) {
  ::testing::internal::CaptureStdout();
  {
    auto w = EventWriter::Open("-", 16);
    ASSERT_TRUE(w.ok()) << w.error();
    EXPECT_TRUE((*w)->Push("{\"a\":1}"));
    EXPECT_TRUE((*w)->Push("{\"b\":2}"));
    (*w)->Flush();
    EXPECT_EQ((*w)->written(), 2u);
  }
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "{\"a\":1}\n{\"b\":2}\n");
}

}  // namespace
}  // namespace redtap::exporter

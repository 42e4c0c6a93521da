// SPDX-License-Identifier: Apache-2.0
// testdata/containers.json: podman's containers/storage state on this machine (the first
// entry verbatim), plus a container with two names and one without a name.
// testdata/docker_config.v2.json: the shape of /var/lib/docker/containers/<id>/config.v2.json
// written by dockerd for `docker run --name shop nginx:1.25`.
#include "userspace/metadata/runtime_names.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace redtap::metadata {
namespace {

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(REDTAP_METADATA_TESTDATA) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr char kShopfront[] = "a78173a4d48dc943de181cd2db4fdf2338e9d298c6f83f041275fc5e53712a41";
constexpr char kPayments[] = "8d9001d32c6a703d95921a77115050f33dd823d3f1730bd35215dcbecad6dc20";

TEST(ContainersStorageTest, PodmanState) {
  const std::string text = ReadTestdata("containers.json");
  ASSERT_FALSE(text.empty());
  std::unordered_map<std::string, std::string> names = {{"stale", "gone"}};
  std::string error;
  ASSERT_TRUE(ParseContainersStorageJson(text, &names, &error)) << error;
  EXPECT_EQ(names.size(), 2u);  // the third entry has no name
  EXPECT_EQ(names.at(kShopfront), "shopfront-test");
  EXPECT_EQ(names.at(kPayments), "payments");  // the first of its names

  ASSERT_TRUE(ParseContainersStorageJson(text, &names, &error, 1));
  EXPECT_EQ(names.size(), 1u);
  EXPECT_EQ(names.at(kShopfront), "shopfront-test");
  ASSERT_TRUE(ParseContainersStorageJson(text, &names, &error, 0));
  EXPECT_TRUE(names.empty());
}

TEST(ContainersStorageTest, EmptyStore) {
  std::unordered_map<std::string, std::string> names = {{"stale", "gone"}};
  std::string error;
  ASSERT_TRUE(ParseContainersStorageJson("[]", &names, &error));
  EXPECT_TRUE(names.empty());
}

TEST(ContainersStorageTest, OddEntriesAreLeftOut) {
  const std::string id = kShopfront;
  const std::string json = R"([1,null,"x",[],{},{"id":5,"names":["a"]},)"
                           R"({"id":"abc","names":["short-id"]},)"
                           R"({"id":")" +
                           std::string(64, 'F') +
                           R"(","names":["upper"]},)"
                           R"({"id":")" +
                           id +
                           R"(","names":"not-a-list"},)"
                           R"({"id":")" +
                           id +
                           R"(","names":[5,"b"]},)"
                           R"({"id":")" +
                           id +
                           R"(","names":[""]},)"
                           R"({"id":")" +
                           id + R"("}])";
  std::unordered_map<std::string, std::string> names;
  std::string error;
  ASSERT_TRUE(ParseContainersStorageJson(json, &names, &error)) << error;
  EXPECT_TRUE(names.empty());
}

TEST(ContainersStorageTest, Malformed) {
  const std::string text = ReadTestdata("containers.json");
  std::unordered_map<std::string, std::string> names = {{"keep", "me"}};
  for (const std::string& bad :
       {std::string(), text.substr(0, text.size() / 2), std::string("{}"),
        std::string(R"({"id":"x","names":["y"]})"), std::string("null"), std::string("42"),
        text + "]", std::string(100000, '['), std::string("\xff\xfe[]")}) {
    std::string error;
    EXPECT_FALSE(ParseContainersStorageJson(bad, &names, &error)) << bad.substr(0, 40);
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(names.size(), 1u);
  }
  EXPECT_FALSE(ParseContainersStorageJson("[]", nullptr, nullptr));
  EXPECT_FALSE(ParseContainersStorageJson("{", &names, nullptr));
}

TEST(DockerConfigTest, Name) {
  const std::string text = ReadTestdata("docker_config.v2.json");
  ASSERT_FALSE(text.empty());
  // The top-level "Name", not the "Name" label inside Config.
  EXPECT_EQ(ParseDockerConfigV2Name(text), "shop");
  EXPECT_EQ(ParseDockerConfigV2Name(R"({"Name":"/shop"})"), "shop");
  EXPECT_EQ(ParseDockerConfigV2Name(R"({"Name":"shop"})"), "shop");
  EXPECT_EQ(ParseDockerConfigV2Name(R"({"Name":"/"})"), "");
}

TEST(DockerConfigTest, Malformed) {
  const std::string text = ReadTestdata("docker_config.v2.json");
  for (const std::string& bad :
       {std::string(), text.substr(0, text.rfind('}')), std::string("[]"),
        std::string(R"(["/shop"])"), std::string(R"({"Name":5})"), std::string(R"({"Name":null})"),
        std::string(R"({"Config":{"Name":"/inner"}})"), std::string(R"({"name":"/lower"})"),
        std::string(500000, '{'), std::string(500000, '[') + std::string(500000, ']')}) {
    EXPECT_EQ(ParseDockerConfigV2Name(bad), "") << bad.substr(0, 40);
  }
}

}  // namespace
}  // namespace redtap::metadata

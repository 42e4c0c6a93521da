// SPDX-License-Identifier: Apache-2.0
// testdata/kubelet_pods.json is a kubelet `GET /pods` answer (v1 PodList) for one node,
// modelled on the examples of the Kubernetes documentation: the nginx-deployment Deployment
// (kubernetes.io/docs/concepts/workloads/controllers/deployment/), the `web` StatefulSet
// (.../controllers/statefulset/), the fluentd-elasticsearch DaemonSet
// (.../controllers/daemonset/), the `hello` CronJob (.../controllers/cron-jobs/), the
// ephemeral-demo pod (kubernetes.io/docs/tasks/debug/debug-application/debug-running-pod/)
// and myapp-pod with its init containers (kubernetes.io/docs/concepts/workloads/pods/
// init-containers/); the PodList envelope as in the list examples of the API reference
// (kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#list-list-or-watch-
// objects-of-kind-pod). Container ids are runtime-prefixed as the kubelet reports them.
#include "userspace/metadata/kubelet.h"

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

constexpr char kDeploymentPod[] = "3e8c1a4f-6b2d-4f7e-9a15-0c2b7d9e8f41";
constexpr char kStatefulPod[] = "7b1d9e60-2c4a-4b83-a0f5-61e9d3c2b8a7";
constexpr char kDaemonPod[] = "e90f4b2c-8d7a-4c15-b3e6-5a1f0d9c7e28";
constexpr char kCronPod[] = "0a6e3d8b-1f4c-4d92-a7b5-e3c8f1d6a204";
constexpr char kBarePod[] = "9c4f7a12-3e6b-4d58-b1a9-f0e2d7c5b863";
constexpr char kInitPod[] = "2f8b6d31-7c9e-4a05-9d4b-8e1a3c6f2d70";

class KubeletPodsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = ReadTestdata("kubelet_pods.json");
    ASSERT_FALSE(text_.empty());
  }
  std::string text_;
};

void ExpectWorkload(const PodInfo& p, std::string_view deployment, std::string_view replicaset,
                    std::string_view statefulset, std::string_view daemonset, std::string_view job,
                    std::string_view cronjob) {
  EXPECT_EQ(p.deployment, deployment) << p.name;
  EXPECT_EQ(p.replicaset, replicaset) << p.name;
  EXPECT_EQ(p.statefulset, statefulset) << p.name;
  EXPECT_EQ(p.daemonset, daemonset) << p.name;
  EXPECT_EQ(p.job, job) << p.name;
  EXPECT_EQ(p.cronjob, cronjob) << p.name;
}

TEST_F(KubeletPodsTest, EveryPod) {
  PodTable t;
  std::string error;
  size_t skipped = 99;
  ASSERT_TRUE(ParsePodList(text_, &t, &error, &skipped)) << error;
  EXPECT_EQ(skipped, 0u);
  ASSERT_EQ(t.pods_by_uid.size(), 6u);

  const PodInfo& d = t.pods_by_uid.at(kDeploymentPod);
  EXPECT_EQ(d.uid, kDeploymentPod);
  EXPECT_EQ(d.name, "nginx-deployment-66b6c48dd5-4jw2p");
  EXPECT_EQ(d.namespace_name, "default");
  ExpectWorkload(d, "nginx-deployment", "nginx-deployment-66b6c48dd5", "", "", "", "");
  EXPECT_EQ(WorkloadName(d), "nginx-deployment");

  const PodInfo& s = t.pods_by_uid.at(kStatefulPod);
  EXPECT_EQ(s.name, "web-0");
  ExpectWorkload(s, "", "", "web", "", "", "");
  EXPECT_EQ(WorkloadName(s), "web");

  const PodInfo& ds = t.pods_by_uid.at(kDaemonPod);
  EXPECT_EQ(ds.name, "fluentd-elasticsearch-6lp5x");
  EXPECT_EQ(ds.namespace_name, "kube-system");
  ExpectWorkload(ds, "", "", "", "fluentd-elasticsearch", "", "");
  EXPECT_EQ(WorkloadName(ds), "fluentd-elasticsearch");

  const PodInfo& c = t.pods_by_uid.at(kCronPod);
  EXPECT_EQ(c.name, "hello-28015912-abcde");
  ExpectWorkload(c, "", "", "", "", "hello-28015912", "hello");
  EXPECT_EQ(WorkloadName(c), "hello");

  const PodInfo& b = t.pods_by_uid.at(kBarePod);
  EXPECT_EQ(b.name, "ephemeral-demo");
  ExpectWorkload(b, "", "", "", "", "", "");
  EXPECT_EQ(WorkloadName(b), "");

  EXPECT_EQ(t.pods_by_uid.at(kInitPod).name, "myapp-pod");
}

TEST_F(KubeletPodsTest, EveryStartedContainer) {
  PodTable t;
  std::string error;
  ASSERT_TRUE(ParsePodList(text_, &t, &error)) << error;
  // Regular, init and ephemeral containers, whatever the runtime prefix; the two waiting
  // containers of myapp-pod have no id yet.
  const struct {
    const char* id;
    const char* name;
    const char* pod;
  } kWant[] = {
      {"515e929c98a13f9a0631106b3262acb188bab22a4d853484ca76051a62e96618", "nginx", kDeploymentPod},
      {"1ae6fac6e0a6c45234c7f9a125d492e4d3cd10dbc54fee1fd1d5bad0def85efd", "nginx", kStatefulPod},
      {"2c8f897117adde2b520d580cb478362269923d3767b89bea9bd4ddcd1cc04633", "init-web",
       kStatefulPod},
      {"0860f2616ab58a9c6152f5109d2f37cc9f210b7c80850b80348a45bc487fbee0", "fluentd-elasticsearch",
       kDaemonPod},
      {"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "hello", kCronPod},
      {"0994f13c47c38539c3ef24ff5df58646eb20d74470b6c47015d01f1d19f1e9a9", "ephemeral-demo",
       kBarePod},
      {"4c44d7c28ec0f6ca3e2624c6af1d3be324576d01ef6f6c2dc0af7e61664b8c2c", "debugger-8xzrl",
       kBarePod},
      {"eacffc0f304d996a9a600006810f23227c3430fd55e4108e4b5d03d582da0126", "init-myservice",
       kInitPod},
  };
  EXPECT_EQ(t.containers_by_id.size(), std::size(kWant));
  for (const auto& w : kWant) {
    auto it = t.containers_by_id.find(w.id);
    ASSERT_NE(it, t.containers_by_id.end()) << w.name;
    EXPECT_EQ(it->second.name, w.name);
    EXPECT_EQ(it->second.pod_uid, w.pod);
  }
}

TEST_F(KubeletPodsTest, Limits) {
  PodTable t;
  std::string error;
  size_t skipped = 0;
  ASSERT_TRUE(ParsePodList(text_, &t, &error, &skipped, {.max_pods = 2}));
  EXPECT_EQ(t.pods_by_uid.size(), 2u);
  EXPECT_EQ(skipped, 4u);
  EXPECT_EQ(t.containers_by_id.size(), 3u);  // nginx; web-0's init-web and nginx
  for (const auto& [id, c] : t.containers_by_id) EXPECT_TRUE(t.pods_by_uid.contains(c.pod_uid));

  ASSERT_TRUE(ParsePodList(text_, &t, &error, &skipped, {.max_containers = 3}));
  EXPECT_EQ(t.pods_by_uid.size(), 6u);
  EXPECT_EQ(t.containers_by_id.size(), 3u);
  EXPECT_EQ(skipped, 5u);

  ASSERT_FALSE(ParsePodList(text_, &t, &error, &skipped, {.max_bytes = text_.size() - 1}));
  EXPECT_NE(error.find("over the limit"), std::string::npos) << error;
  ASSERT_TRUE(ParsePodList(text_, &t, &error, &skipped, {.max_bytes = text_.size()}));
}

TEST_F(KubeletPodsTest, MalformedJsonLeavesTheTableAlone) {
  PodTable t;
  std::string error;
  ASSERT_TRUE(ParsePodList(text_, &t, &error));
  for (size_t cut : {size_t{0}, size_t{1}, text_.size() / 2, text_.rfind('}')}) {
    error.clear();
    EXPECT_FALSE(ParsePodList(std::string_view(text_).substr(0, cut), &t, &error)) << cut;
    EXPECT_NE(error.find("parse error"), std::string::npos) << error;
    EXPECT_EQ(t.pods_by_uid.size(), 6u);
  }
  EXPECT_FALSE(ParsePodList("{\"kind\":\"PodList\",\"items\":[]} trailing", &t, &error));
  EXPECT_FALSE(ParsePodList("{'kind':'PodList'}", &t, &error));
  EXPECT_FALSE(ParsePodList("\xff\xfe{}", &t, &error));
  EXPECT_FALSE(ParsePodList("{\"items\":[]}", nullptr, &error));
  EXPECT_FALSE(ParsePodList("", &t, nullptr));  // no error out: fine
  EXPECT_EQ(t.pods_by_uid.size(), 6u);
}

TEST(ParsePodListTest, WrongShapes) {
  const char* kBad[] = {
      "[]",
      "\"PodList\"",
      "null",
      "{}",
      // An error answer of the API server.
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403})",
      R"({"kind":"PodList","items":{}})",
      R"({"kind":"PodList","items":"x"})",
      R"({"items":null})",
      R"({"kind":["PodList"],"items":[]})",
      R"({"kind":"PodList","items":[1]})",
      R"({"kind":"PodList","items":[{"spec":{},"status":{}}]})",
      R"({"kind":"PodList","items":[{"metadata":[]}]})",
      R"({"kind":"PodList","items":[{"metadata":{"name":"a"}}]})",
      R"({"kind":"PodList","items":[{"metadata":{"name":"a","uid":""}}]})",
      R"({"kind":"PodList","items":[{"metadata":{"name":"a","uid":7}}]})",
      R"({"kind":"PodList","items":[{"metadata":{"uid":"u1"}},{"metadata":null}]})",
  };
  for (const char* json : kBad) {
    PodTable t;
    t.pods_by_uid["keep"].name = "keep";
    std::string error;
    EXPECT_FALSE(ParsePodList(json, &t, &error)) << json;
    EXPECT_FALSE(error.empty()) << json;
    EXPECT_EQ(t.pods_by_uid.size(), 1u) << json;
  }
  std::string error;
  PodTable t;
  ASSERT_FALSE(ParsePodList(R"({"items":[{"metadata":{"uid":"u1"}},{}]})", &t, &error));
  EXPECT_EQ(error, "items[1] has no metadata.uid");
}

TEST(ParsePodListTest, EmptyListsReplaceTheTable) {
  PodTable t;
  t.pods_by_uid["old"].name = "old";
  t.containers_by_id["old"].name = "old";
  std::string error;
  ASSERT_TRUE(ParsePodList(R"({"kind":"PodList","apiVersion":"v1","items":[]})", &t, &error));
  EXPECT_TRUE(t.pods_by_uid.empty());
  EXPECT_TRUE(t.containers_by_id.empty());
  // The kubelet of an empty node: a Go nil slice.
  t.pods_by_uid["old"].name = "old";
  ASSERT_TRUE(ParsePodList(R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":null})", &t,
                           &error));
  EXPECT_TRUE(t.pods_by_uid.empty());
  // Without "kind" an items array is enough.
  ASSERT_TRUE(ParsePodList(R"({"items":[{"metadata":{"uid":"u1","name":"a"}}]})", &t, &error));
  EXPECT_EQ(t.pods_by_uid.at("u1").name, "a");
}

// One pod with a controller ownerReference, through ParsePodList.
PodInfo PodOwnedBy(const std::string& owner_refs, const std::string& labels = "{}") {
  PodTable t;
  std::string error;
  const std::string json = R"({"kind":"PodList","items":[{"metadata":{"name":"p","uid":"u",)"
                           R"("labels":)" +
                           labels + R"(,"ownerReferences":)" + owner_refs + "}}]}";
  EXPECT_TRUE(ParsePodList(json, &t, &error)) << error << " " << json;
  return t.pods_by_uid.contains("u") ? t.pods_by_uid.at("u") : PodInfo{};
}

TEST(WorkloadTest, ReplicaSetNamesItsDeploymentOnlyWithTheTemplateHash) {
  const std::string rs = R"([{"kind":"ReplicaSet","name":"api-7d4b9c8f6","controller":true}])";
  PodInfo p = PodOwnedBy(rs, R"({"pod-template-hash":"7d4b9c8f6"})");
  EXPECT_EQ(p.deployment, "api");
  EXPECT_EQ(p.replicaset, "api-7d4b9c8f6");
  EXPECT_EQ(WorkloadName(p), "api");
  // A ReplicaSet made by hand: no label, or a hash it does not end with.
  for (const char* labels :
       {"{}", R"({"pod-template-hash":"5f6d7c8b9"})", R"({"pod-template-hash":"4b9c8f6"})",
        R"({"pod-template-hash":"api-7d4b9c8f6"})", R"({"pod-template-hash":""})",
        R"({"pod-template-hash":7})", R"([])"}) {
    p = PodOwnedBy(rs, labels);
    EXPECT_EQ(p.deployment, "") << labels;
    EXPECT_EQ(p.replicaset, "api-7d4b9c8f6") << labels;
    EXPECT_EQ(WorkloadName(p), "api-7d4b9c8f6") << labels;
  }
}

TEST(WorkloadTest, JobNamesItsCronJobOnlyWithADigitSuffix) {
  auto job = [](const std::string& name) {
    return PodOwnedBy(R"([{"kind":"Job","name":")" + name + R"(","controller":true}])");
  };
  PodInfo p = job("nightly-backup-28015920");
  EXPECT_EQ(p.job, "nightly-backup-28015920");
  EXPECT_EQ(p.cronjob, "nightly-backup");
  EXPECT_EQ(WorkloadName(p), "nightly-backup");
  for (const char* name : {"migrate", "migrate-v2", "migrate-", "-28015920", "db-2801x5920"}) {
    p = job(name);
    EXPECT_EQ(p.job, name);
    EXPECT_EQ(p.cronjob, "") << name;
    EXPECT_EQ(WorkloadName(p), name);
  }
}

TEST(WorkloadTest, OnlyTheControllerReference) {
  // Not the controller: ignored. The first controller wins.
  PodInfo p = PodOwnedBy(R"([{"kind":"StatefulSet","name":"a"},)"
                         R"({"kind":"DaemonSet","name":"b","controller":false},)"
                         R"({"kind":"StatefulSet","name":"c","controller":"true"},)"
                         R"({"kind":"DaemonSet","name":"d","controller":true},)"
                         R"({"kind":"StatefulSet","name":"e","controller":true}])");
  EXPECT_EQ(p.statefulset, "");
  EXPECT_EQ(p.daemonset, "d");
  // Kinds without a field (static pods are owned by their Node, custom controllers).
  p = PodOwnedBy(R"([{"kind":"Node","name":"worker-1","controller":true}])");
  EXPECT_EQ(WorkloadName(p), "");
  p = PodOwnedBy(R"([{"kind":"Rollout","name":"canary","controller":true}])");
  EXPECT_EQ(WorkloadName(p), "");
  // Wrong types count as absent.
  EXPECT_EQ(WorkloadName(PodOwnedBy(R"({"kind":"Job"})")), "");
  EXPECT_EQ(WorkloadName(PodOwnedBy(R"([1,null,[],{"kind":5,"name":"x","controller":true}])")), "");
}

TEST(WorkloadTest, Precedence) {
  PodInfo p;
  EXPECT_EQ(WorkloadName(p), "");
  p.replicaset = "rs";
  EXPECT_EQ(WorkloadName(p), "rs");
  p.job = "job";
  EXPECT_EQ(WorkloadName(p), "job");
  p.cronjob = "cron";
  EXPECT_EQ(WorkloadName(p), "cron");
  p.daemonset = "ds";
  EXPECT_EQ(WorkloadName(p), "ds");
  p.statefulset = "sts";
  EXPECT_EQ(WorkloadName(p), "sts");
  p.deployment = "deploy";
  EXPECT_EQ(WorkloadName(p), "deploy");
}

TEST(ParsePodListTest, ContainerIdsAreChecked) {
  const std::string id = "515e929c98a13f9a0631106b3262acb188bab22a4d853484ca76051a62e96618";
  const std::string json = R"({"kind":"PodList","items":[{"metadata":{"uid":"u"},"status":{)"
                           R"("containerStatuses":[)"
                           R"({"name":"ok","containerID":"containerd://)" +
                           id +
                           R"("},)"
                           R"({"name":"no-scheme","containerID":")" +
                           id.substr(0, 63) + "f" +
                           R"("},)"
                           R"({"name":"short","containerID":"docker://abc"},)"
                           R"({"name":"upper","containerID":"docker://)" +
                           std::string(64, 'A') +
                           R"("},)"
                           R"({"name":"number","containerID":5},)"
                           R"({"name":"waiting"},7,null],)"
                           R"("initContainerStatuses":{"name":"x"},)"
                           R"("ephemeralContainerStatuses":"x"}}]})";
  PodTable t;
  std::string error;
  ASSERT_TRUE(ParsePodList(json, &t, &error)) << error;
  ASSERT_EQ(t.containers_by_id.size(), 1u);
  EXPECT_EQ(t.containers_by_id.at(id).name, "ok");
  EXPECT_EQ(t.containers_by_id.at(id).pod_uid, "u");
}

TEST(ParsePodListTest, HostileInput) {
  PodTable t;
  std::string error;
  size_t skipped = 0;
  // Deep nesting: the parser and the destructor are iterative.
  std::string deep = R"({"kind":"PodList","items":[{"metadata":{"uid":"u","name":)";
  deep += std::string(500000, '[') + std::string(500000, ']') + "}}]}";
  EXPECT_TRUE(ParsePodList(deep, &t, &error)) << error;
  EXPECT_EQ(t.pods_by_uid.at("u").name, "");
  deep = std::string(500000, '[') + std::string(500000, ']');
  EXPECT_FALSE(ParsePodList(deep, &t, &error));
  // Unclosed nesting: an error, not a crash.
  EXPECT_FALSE(ParsePodList(std::string(1000000, '{'), &t, &error));
  EXPECT_FALSE(ParsePodList(std::string(1000000, '['), &t, &error));
  // Many pods: the first max_pods are kept, the rest counted.
  std::string many = R"({"kind":"PodList","items":[)";
  for (int i = 0; i < 3000; ++i) {
    if (i) many += ",";
    many += R"({"metadata":{"uid":"uid-)" + std::to_string(i) + R"(","name":"p"}})";
  }
  many += "]}";
  ASSERT_TRUE(ParsePodList(many, &t, &error, &skipped));
  EXPECT_EQ(t.pods_by_uid.size(), 1024u);
  EXPECT_EQ(skipped, 3000u - 1024u);
  EXPECT_TRUE(t.pods_by_uid.contains("uid-0"));
  EXPECT_FALSE(t.pods_by_uid.contains("uid-1024"));
  // A long name is kept as is; large unread fields are dropped while parsing.
  const std::string big(4 << 20, 'x');
  ASSERT_TRUE(ParsePodList(R"({"items":[{"metadata":{"uid":"u","name":")" + big +
                               R"(","annotations":{"a":")" + big + R"("}},"spec":{"x":")" + big +
                               R"("}}]})",
                           &t, &error));
  EXPECT_EQ(t.pods_by_uid.at("u").name.size(), big.size());
}

}  // namespace
}  // namespace redtap::metadata

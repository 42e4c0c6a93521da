// SPDX-License-Identifier: Apache-2.0
// Reads the node's pod list (the kubelet's /pods, or the API server filtered by node) every
// kubernetes.refresh_interval with the ServiceAccount's token, and publishes it to the
// Resolvers (one per thread that looks processes up). One thread; a failed read keeps the last good
// list (pods rarely change names) and is counted; the first failure is logged as a warning, later
// ones at debug level.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "userspace/config/config.h"
#include "userspace/exposition/registry.h"
#include "userspace/metadata/resolver.h"

namespace redtap::metadata {

/// Where the ServiceAccount's credentials are mounted in a pod.
inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Whether kubernetes.metadata asks for the pod list here: on, or auto inside a pod
/// (KUBERNETES_SERVICE_HOST set and a ServiceAccount token readable).
bool PodListWanted(const config::KubernetesConfig& k);

/// The URL pods are read from: kubernetes.pods_url, else https://$NODE_IP:10250/pods; "" with
/// *problem set when neither is known.
std::string PodsUrl(const config::KubernetesConfig& k, std::string* problem);

class PodWatcher {
 public:
  PodWatcher(const config::KubernetesConfig& cfg, std::string url, std::vector<Resolver*> resolvers,
             std::string service_account_dir = kServiceAccountDir);
  ~PodWatcher();
  PodWatcher(const PodWatcher&) = delete;
  PodWatcher& operator=(const PodWatcher&) = delete;

  /// Reads once (at most 3 s: the first transactions already carry pod names when the kubelet
  /// answers) and starts the refresh thread.
  void Start();
  void Stop();

  /// One read and publish; false with *error (never the token) on failure.
  bool RefreshOnce(std::string* error, long timeout_ms = 10000);

  /// redtap_agent_kubernetes_pods, redtap_agent_kubernetes_refreshes_total{outcome}.
  void Collect(exposition::Families* out) const;

 private:
  struct Outcome {
    bool ok = false;
    std::string error;
  };
  Outcome Read(long timeout_ms);
  void Record(const Outcome& o);  // counts, and logs the first failure and the recovery
  void Loop();

  const config::KubernetesConfig cfg_;
  const std::string url_;
  const std::vector<Resolver*> resolvers_;
  const std::string sa_dir_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t ok_ = 0, errors_ = 0;
  size_t pods_ = 0, skipped_ = 0;
  bool warned_ = false;
  std::shared_ptr<const PodTable> last_;  // the list published last (refresh thread only)
};

}  // namespace redtap::metadata

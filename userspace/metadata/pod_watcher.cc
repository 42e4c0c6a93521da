// SPDX-License-Identifier: Apache-2.0
#include "userspace/metadata/pod_watcher.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <memory>

namespace redtap::metadata {
namespace {

constexpr size_t kMaxAnswer = 64 << 20;  // a PodList of ~1000 pods is a few MB
constexpr long kTimeoutMs = 10000;
// The first read delays the agent's start: it gets less time.
constexpr long kFirstTimeoutMs = 3000;

struct Body {
  std::string data;
  bool too_big = false;
};

size_t Append(char* p, size_t size, size_t n, void* user) {
  auto* b = static_cast<Body*>(user);
  if (b->data.size() + size * n > kMaxAnswer) {
    b->too_big = true;
    return 0;  // aborts the transfer
  }
  b->data.append(p, size * n);
  return size * n;
}

std::string Trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

bool PodListWanted(const config::KubernetesConfig& k) {
  using Mode = config::KubernetesConfig::Mode;
  if (k.metadata == Mode::kOff) return false;
  if (k.metadata == Mode::kOn) return true;
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  return host != nullptr && *host != '\0' &&
         !ReadFileBounded(std::string(kServiceAccountDir) + "/token", 1).empty();
}

std::string PodsUrl(const config::KubernetesConfig& k, std::string* problem) {
  if (!k.pods_url.empty()) return k.pods_url;
  const char* ip = std::getenv("NODE_IP");
  if (ip == nullptr || *ip == '\0') {
    *problem =
        "kubernetes.pods_url is empty and NODE_IP is not set (the DaemonSet sets it from "
        "status.hostIP)";
    return "";
  }
  const std::string host(ip);
  return "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
         ":10250/pods";
}

PodWatcher::PodWatcher(const config::KubernetesConfig& cfg, std::string url,
                       std::vector<Resolver*> resolvers, std::string service_account_dir)
    : cfg_(cfg),
      url_(std::move(url)),
      resolvers_(std::move(resolvers)),
      sa_dir_(std::move(service_account_dir)) {}

PodWatcher::~PodWatcher() { Stop(); }

bool PodWatcher::RefreshOnce(std::string* error, long timeout_ms) {
  static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (global != CURLE_OK) {
    *error = std::string("libcurl: ") + curl_easy_strerror(global);
    return false;
  }
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) {
    *error = "curl_easy_init failed";
    return false;
  }
  // The token is read each time: projected ServiceAccount tokens rotate.
  const std::string token = Trim(ReadFileBounded(sa_dir_ + "/token", 64 * 1024));
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers_guard(headers, curl_slist_free_all);
  Body body;
  CURL* c = h.get();
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  const std::string ca = sa_dir_ + "/ca.crt";
  if (!cfg_.verify_tls) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!ReadFileBounded(ca, 1).empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
  }
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    *error = body.too_big ? "answer larger than 64 MiB" : curl_easy_strerror(rc);
    return false;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    *error = "HTTP status " + std::to_string(status) +
             (status == 401 || status == 403 ? " (the ServiceAccount needs get on nodes/proxy, "
                                               "or list on pods for the API server)"
                                             : "");
    return false;
  }
  auto table = std::make_shared<PodTable>();
  size_t skipped = 0;
  ParseLimits limits;
  limits.max_pods = cfg_.max_pods;
  if (!ParsePodList(body.data, table.get(), error, &skipped, limits)) return false;
  const size_t n = table->pods_by_uid.size();
  // Publish only a change: each publish makes every process's workload be rebuilt.
  if (!last_ || !(*last_ == *table)) {
    last_ = table;
    for (Resolver* r : resolvers_) r->SetPods(table);
  }
  std::lock_guard<std::mutex> lock(mu_);
  pods_ = n;
  skipped_ = skipped;
  return true;
}

void PodWatcher::Start() {
  spdlog::info("kubernetes: reading the node's pods from {} every {} s", url_,
               cfg_.refresh_interval_ms / 1000);
  // Once now, before the capture starts: the first transactions and TCP series already carry
  // pod names and workloads when the kubelet answers.
  Record(Read(kFirstTimeoutMs));
  thread_ = std::thread([this] { Loop(); });
}

PodWatcher::Outcome PodWatcher::Read(long timeout_ms) {
  Outcome o;
  o.ok = RefreshOnce(&o.error, timeout_ms);
  return o;
}

void PodWatcher::Record(const Outcome& o) {
  std::lock_guard<std::mutex> lock(mu_);
  if (o.ok) {
    ++ok_;
    if (warned_) spdlog::info("kubernetes: pod list read again ({} pods)", pods_);
    warned_ = false;
    return;
  }
  ++errors_;
  if (!warned_) {
    spdlog::warn(
        "kubernetes: cannot read the pod list from {}: {} (retrying every {} s; series "
        "keep container ids without pod names)",
        url_, o.error, cfg_.refresh_interval_ms / 1000);
  } else {
    spdlog::debug("kubernetes: pod list: {}", o.error);
  }
  warned_ = true;
}

void PodWatcher::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(cfg_.refresh_interval_ms),
                       [this] { return stop_; })) {
        return;
      }
    }
    Record(Read(kTimeoutMs));
  }
}

void PodWatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PodWatcher::Collect(exposition::Families* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  out->push_back(exposition::SingleGauge("redtap_agent_kubernetes_pods",
                                         "Pods of this node in the last pod list read.",
                                         static_cast<double>(pods_)));
  exposition::MetricFamily reads =
      exposition::Family("redtap_agent_kubernetes_refreshes_total",
                         "Reads of the node's pod list (kubernetes.pods_url), by outcome.",
                         exposition::MetricType::Counter);
  reads.metric.push_back(exposition::Counter({{"outcome", "ok"}}, static_cast<double>(ok_)));
  reads.metric.push_back(exposition::Counter({{"outcome", "error"}}, static_cast<double>(errors_)));
  out->push_back(std::move(reads));
}

}  // namespace redtap::metadata

// SPDX-License-Identifier: Apache-2.0
// Delivers alert notifications to the channels routed from their severity, on a thread of its
// own (never the data path): PagerDuty, Slack, webhook (Alertmanager's format), Alertmanager's
// API, e-mail over SMTP (libcurl). Retries with exponential backoff, repeats firing alerts
// every repeat_interval, re-sends them to Alertmanager before they expire, notifies resolves.
// Secrets (routing keys, webhook URLs) are read from their files once and never logged.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "userspace/alerts/engine.h"
#include "userspace/common/status.h"
#include "userspace/config/config.h"
#include "userspace/exposition/registry.h"

namespace redtap::alerts {

class Notifier {
 public:
  struct Options {
    /// Retries after the first attempt (backoff 1 s, 2 s, 4 s ... capped at 60 s).
    int max_retries = 5;
    std::chrono::milliseconds first_backoff{1000};
    /// Deliveries waiting; more are dropped (counted).
    size_t max_queue = 1000;
    /// Per-request limit (connect + transfer).
    long timeout_ms = 10000;
  };

  /// Reads the secret files of the channels (a missing one is logged by file name and its
  /// channel counts outcome="unconfigured") and starts the delivery thread.
  static Result<std::unique_ptr<Notifier>> Create(const config::AlertsConfig& cfg, Options opt);
  static Result<std::unique_ptr<Notifier>> Create(const config::AlertsConfig& cfg) {
    return Create(cfg, Options{});
  }
  ~Notifier();

  /// An alert that started firing or resolved: to every channel routed from its severity.
  /// A warning is not sent while a critical alert of the same signal and labels fires in
  /// `active` (as the generated Alertmanager config inhibits it); a resolve only goes where
  /// the firing went.
  void Notify(const Alert& a, const std::vector<Alert>& active);
  /// Called after each evaluation with the pending and firing alerts: repeats and
  /// Alertmanager re-sends that are due.
  void Tick(const std::vector<Alert>& active, int64_t now_ms);
  /// redtap_alert_notifications_total{channel,outcome}.
  void Collect(exposition::Families* out) const;
  /// Tries what is queued once more (up to 5 s), then stops the thread.
  void Stop();

  struct Channel;
  struct Delivery;

 private:
  Notifier(const config::AlertsConfig& cfg, Options opt);
  void Run();
  void Enqueue(size_t channel, const Alert& a, int64_t now_ms);
  void Count(size_t channel, const char* outcome);
  /// One attempt; `retryable` false when the receiver refused the request itself (4xx).
  bool Send(const Channel& c, const Delivery& d, std::string* error, bool* retryable) const;

  const config::AlertsConfig& cfg_;
  Options opt_;
  std::string host_;
  std::vector<std::unique_ptr<Channel>> channels_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Delivery>> queue_;
  std::map<std::pair<std::string, size_t>, int64_t> last_sent_ms_;  // (fingerprint, channel)
  std::map<std::pair<size_t, std::string>, uint64_t> counts_;       // (channel, outcome)
  bool stop_ = false;
  std::atomic<bool> stopping_{false};  // Send's timeout is 2 s then
  std::thread thread_;
};

}  // namespace redtap::alerts

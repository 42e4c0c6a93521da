// SPDX-License-Identifier: Apache-2.0
#include "userspace/alerts/notifier.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "userspace/alerts/payloads.h"

namespace redtap::alerts {

using config::ChannelType;
using Clock = std::chrono::steady_clock;

struct Notifier::Channel {
  const config::AlertChannel* cfg = nullptr;
  std::string url;          // resolved: url or the content of url_file
  std::string routing_key;  // pagerduty
  std::string problem;      // why it cannot deliver ("" = ready)
};

struct Notifier::Delivery {
  size_t channel = 0;
  std::string body;
  int attempts = 0;
  Clock::time_point next_at;
};

namespace {

constexpr int64_t kAlertmanagerResendMs = 60000;  // Prometheus's resend delay

/// The first line of a secret file, trimmed; "" when it cannot be read.
std::string ReadSecret(const std::string& path, std::string* problem) {
  std::ifstream f(path);
  if (!f) {
    *problem = "cannot read " + path + ": " + std::strerror(errno);
    return "";
  }
  std::string line;
  std::getline(f, line);
  const auto b = line.find_first_not_of(" \t\r");
  const auto e = line.find_last_not_of(" \t\r");
  if (b == std::string::npos) {
    *problem = path + " is empty";
    return "";
  }
  return line.substr(b, e - b + 1);
}

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

struct Reader {
  const std::string* data;
  size_t pos = 0;
};

size_t ReadBody(char* out, size_t size, size_t n, void* ud) {
  auto* r = static_cast<Reader*>(ud);
  const size_t len = std::min(size * n, r->data->size() - r->pos);
  std::memcpy(out, r->data->data() + r->pos, len);
  r->pos += len;
  return len;
}

struct CurlHandle {
  CURL* h = curl_easy_init();
  curl_slist* list = nullptr;
  ~CurlHandle() {
    if (list) curl_slist_free_all(list);
    if (h) curl_easy_cleanup(h);
  }
};

}  // namespace

Notifier::Notifier(const config::AlertsConfig& cfg, Options opt) : cfg_(cfg), opt_(opt) {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) host_ = host;
  if (host_.empty()) host_ = "localhost";
}

Result<std::unique_ptr<Notifier>> Notifier::Create(const config::AlertsConfig& cfg, Options opt) {
  static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (global != CURLE_OK) {
    return Status::Error(std::string("alerts: libcurl: ") + curl_easy_strerror(global));
  }
  std::unique_ptr<Notifier> n(new Notifier(cfg, opt));
  for (const auto& c : cfg.channels) {
    auto ch = std::make_unique<Channel>();
    ch->cfg = &c;
    ch->url = c.url;
    if (!c.url_file.empty()) ch->url = ReadSecret(c.url_file, &ch->problem);
    if (!c.routing_key_file.empty()) ch->routing_key = ReadSecret(c.routing_key_file, &ch->problem);
    if (ch->problem.empty() && !c.url_file.empty() && !ch->url.starts_with("http://") &&
        !ch->url.starts_with("https://")) {
      ch->problem = c.url_file + " does not hold an http:// or https:// URL";
    }
    if (!ch->problem.empty()) {
      spdlog::error("alerts: channel {} cannot deliver: {}", c.name, ch->problem);
    }
    n->channels_.push_back(std::move(ch));
  }
  n->thread_ = std::thread([p = n.get()] { p->Run(); });
  return n;
}

Notifier::~Notifier() { Stop(); }

void Notifier::Count(size_t channel, const char* outcome) {
  counts_[{channel, outcome}]++;  // mu_ held
}

void Notifier::Enqueue(size_t channel, const Alert& a, int64_t now_ms) {
  const Channel& c = *channels_[channel];
  if (!c.problem.empty()) {
    Count(channel, "unconfigured");
    return;
  }
  if (queue_.size() >= opt_.max_queue) {
    Count(channel, "dropped");
    return;
  }
  auto d = std::make_unique<Delivery>();
  d->channel = channel;
  d->next_at = Clock::now();
  switch (c.cfg->type) {
    case ChannelType::kPagerDuty:
      d->body = PagerDutyBody(a, c.routing_key, host_);
      break;
    case ChannelType::kSlack:
      d->body = SlackBody(a);
      break;
    case ChannelType::kWebhook:
      d->body = WebhookBody(a, c.cfg->name);
      break;
    case ChannelType::kAlertmanager: {
      const int64_t resend = std::max<int64_t>(kAlertmanagerResendMs,
                                               static_cast<int64_t>(cfg_.evaluation_interval_ms));
      d->body = AlertmanagerBody({a}, now_ms + 4 * resend);
      break;
    }
    case ChannelType::kEmail:
      d->body = EmailMessage(a, c.cfg->from, c.cfg->to, now_ms, host_);
      break;
  }
  queue_.push_back(std::move(d));
  cv_.notify_all();
}

namespace {

/// A warning while a critical alert of its signal and labels fires.
bool Inhibited(const Alert& a, const std::vector<Alert>& active) {
  if (a.rule->severity != config::AlertSeverity::kWarning) return false;
  const auto family = [](const Alert& x) {
    LabelSet l = x.labels;
    l.erase("alertname");
    l.erase("severity");
    return l;
  };
  const LabelSet mine = family(a);
  for (const Alert& o : active) {
    if (o.state == AlertState::kFiring && o.rule->severity == config::AlertSeverity::kCritical &&
        family(o) == mine)
      return true;
  }
  return false;
}

}  // namespace

void Notifier::Notify(const Alert& a, const std::vector<Alert>& active) {
  const bool resolved = a.state == AlertState::kResolved;
  const int64_t now_ms = resolved ? a.ended_at_ms : a.fired_at_ms;
  if (!resolved && Inhibited(a, active)) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto route = cfg_.routes.find(a.rule->severity);
  if (route == cfg_.routes.end()) return;
  for (const auto& name : route->second) {
    for (size_t i = 0; i < channels_.size(); i++) {
      if (channels_[i]->cfg->name != name) continue;
      if (resolved) {
        if (last_sent_ms_.erase({a.fingerprint, i})) Enqueue(i, a, now_ms);
      } else {
        Enqueue(i, a, now_ms);
        last_sent_ms_[{a.fingerprint, i}] = now_ms;
      }
    }
  }
}

void Notifier::Tick(const std::vector<Alert>& active, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Alert& a : active) {
    if (a.state != AlertState::kFiring || Inhibited(a, active)) continue;
    auto route = cfg_.routes.find(a.rule->severity);
    if (route == cfg_.routes.end()) continue;
    for (const auto& name : route->second) {
      for (size_t i = 0; i < channels_.size(); i++) {
        if (channels_[i]->cfg->name != name) continue;
        const bool am = channels_[i]->cfg->type == ChannelType::kAlertmanager;
        const int64_t every =
            am ? std::max<int64_t>(kAlertmanagerResendMs,
                                   static_cast<int64_t>(cfg_.evaluation_interval_ms))
               : static_cast<int64_t>(cfg_.repeat_interval_ms);
        auto it = last_sent_ms_.find({a.fingerprint, i});
        if (it != last_sent_ms_.end() && now_ms - it->second < every) continue;
        Enqueue(i, a, now_ms);
        last_sent_ms_[{a.fingerprint, i}] = now_ms;
      }
    }
  }
}

bool Notifier::Send(const Channel& c, const Delivery& d, std::string* error,
                    bool* retryable) const {
  *retryable = true;
  CurlHandle curl;
  if (!curl.h) {
    *error = "curl_easy_init failed";
    return false;
  }
  CURL* h = curl.h;
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  // While the agent stops, a last try may not hold it up for long.
  const long timeout_ms = stopping_ ? std::min(opt_.timeout_ms, 2000L) : opt_.timeout_ms;
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  Reader reader{&d.body};
  std::string url;
  if (c.cfg->type == ChannelType::kEmail) {
    url = "smtp://" + c.cfg->smtp;
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp");
    const std::string from = "<" + c.cfg->from + ">";
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
    for (const auto& t : c.cfg->to)
      curl.list = curl_slist_append(curl.list, ("<" + t + ">").c_str());
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, curl.list);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(h, CURLOPT_READDATA, &reader);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) *error = curl_easy_strerror(rc);
    return rc == CURLE_OK;
  }
  url = c.url;
  if (c.cfg->type == ChannelType::kAlertmanager) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    url += "/api/v2/alerts";
  }
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl.list = curl_slist_append(curl.list, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, curl.list);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, d.body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(d.body.size()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Discard);
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    *error = curl_easy_strerror(rc);  // never the URL: it may be the secret
    return false;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300) {
    *error = "HTTP status " + std::to_string(status);
    // The receiver refused this request (bad key, bad payload): trying again changes nothing.
    *retryable = !(status >= 400 && status < 500 && status != 408 && status != 429);
    return false;
  }
  return true;
}

void Notifier::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  Clock::time_point deadline = Clock::time_point::max();
  while (true) {
    if (stop_ && (queue_.empty() || Clock::now() >= deadline)) break;
    if (queue_.empty()) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      continue;
    }
    if (stop_ && deadline == Clock::time_point::max())
      deadline = Clock::now() + std::chrono::seconds(5);
    auto next = std::min_element(queue_.begin(), queue_.end(), [](const auto& a, const auto& b) {
      return a->next_at < b->next_at;
    });
    if (!stop_ && (*next)->next_at > Clock::now()) {
      cv_.wait_until(lock, (*next)->next_at);
      continue;
    }
    std::unique_ptr<Delivery> d = std::move(*next);
    queue_.erase(next);
    lock.unlock();
    std::string error;
    bool retryable = true;
    const Channel& c = *channels_[d->channel];
    const bool ok = Send(c, *d, &error, &retryable);
    lock.lock();
    d->attempts++;
    if (ok) {
      Count(d->channel, "sent");
      continue;
    }
    if (d->attempts > opt_.max_retries || stop_ || !retryable) {
      Count(d->channel, "failed");
      spdlog::warn("alerts: notification to channel {} failed after {} attempt(s): {}", c.cfg->name,
                   d->attempts, error);
      continue;
    }
    Count(d->channel, "retried");
    auto backoff = opt_.first_backoff * (1 << std::min(d->attempts - 1, 6));
    d->next_at = Clock::now() + std::min<Clock::duration>(backoff, std::chrono::seconds(60));
    queue_.push_back(std::move(d));
  }
  for (const auto& d : queue_) Count(d->channel, "dropped");
  queue_.clear();
}

void Notifier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Notifier::Collect(exposition::Families* out) const {
  auto f = exposition::Family("redtap_alert_notifications_total",
                              "Alert notifications by channel and outcome: sent, retried (an "
                              "attempt failed, tried again), failed (gave up), dropped (queue "
                              "full or agent stopping), unconfigured (its secret file could "
                              "not be read).",
                              exposition::MetricType::Counter);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < channels_.size(); i++) {
    for (const char* outcome : {"sent", "retried", "failed", "dropped", "unconfigured"}) {
      auto it = counts_.find({i, outcome});
      f.metric.push_back(
          exposition::Counter({{"channel", channels_[i]->cfg->name}, {"outcome", outcome}},
                              it == counts_.end() ? 0.0 : static_cast<double>(it->second)));
    }
  }
  out->push_back(std::move(f));
}

}  // namespace redtap::alerts

// SPDX-License-Identifier: Apache-2.0
#include "userspace/saturation/model.h"

#include <arpa/inet.h>
#include <time.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace redtap::saturation {
namespace {

using exposition::ClientMetric;
using exposition::Family;
using exposition::MetricFamily;
using exposition::MetricType;

std::vector<std::string> Split(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) i++;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') j++;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

const char* DirName(Direction d) {
  switch (d) {
    case Direction::kListen:
      return "listen";
    case Direction::kInbound:
      return "inbound";
    case Direction::kOutbound:
      return "outbound";
    case Direction::kPool:
      return "pool";
  }
  return "unknown";
}

// cur - last per field; a field that went down means the kernel key was deleted and created
// again, so its whole current value is new.
uint64_t D(uint64_t cur, uint64_t last) { return cur >= last ? cur - last : cur; }

RawCounters Delta(const RawCounters& cur, const RawCounters& last) {
  RawCounters d;
  d.opened = D(cur.opened, last.opened);
  d.closed = D(cur.closed, last.closed);
  for (int i = 0; i < kFailReasons; i++)
    d.connect_failures[i] = D(cur.connect_failures[i], last.connect_failures[i]);
  d.resets_sent = D(cur.resets_sent, last.resets_sent);
  d.resets_received = D(cur.resets_received, last.resets_received);
  d.retransmits = D(cur.retransmits, last.retransmits);
  d.bytes_in = D(cur.bytes_in, last.bytes_in);
  d.bytes_out = D(cur.bytes_out, last.bytes_out);
  d.rtt_count = D(cur.rtt_count, last.rtt_count);
  d.rtt_sum_us = D(cur.rtt_sum_us, last.rtt_sum_us);
  for (int i = 0; i < kRttBuckets; i++)
    d.rtt_buckets[i] = D(cur.rtt_buckets[i], last.rtt_buckets[i]);
  return d;
}

SeriesId SeriesOf(const RawKey& k, std::string service) {
  SeriesId id;
  id.service = std::move(service);
  id.dir = k.dir == Direction::kOutbound ? Direction::kOutbound : Direction::kInbound;
  id.port = id.dir == Direction::kInbound ? k.port : 0;
  return id;
}

// service_name, [server_port] (inbound series only).
exposition::Labels BaseLabels(const SeriesId& id) {
  exposition::Labels l{{"service_name", id.service}};
  if (id.dir == Direction::kInbound && id.port)
    l.push_back({"server_port", std::to_string(id.port)});
  return l;
}

// `labels` plus one more.
exposition::Labels With(exposition::Labels labels, const char* name, std::string value) {
  labels.push_back({name, std::move(value)});
  return labels;
}

void AddCounter(MetricFamily& f, exposition::Labels labels, double v) {
  f.metric.push_back(exposition::Counter(std::move(labels), v));
}

void AddGauge(MetricFamily& f, exposition::Labels labels, double v) {
  f.metric.push_back(exposition::Gauge(std::move(labels), v));
}

}  // namespace

const char* FailReasonName(int reason) {
  static const char* kNames[kFailReasons] = {"refused",     "reset",   "timeout",
                                             "unreachable", "aborted", "other"};
  return reason >= 0 && reason < kFailReasons ? kNames[reason] : "other";
}

std::map<std::string, uint64_t> ParseNetstat(std::string_view text) {
  std::map<std::string, uint64_t> out;
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  for (size_t i = 0; i + 1 < lines.size(); i++) {
    auto names = Split(lines[i]);
    auto values = Split(lines[i + 1]);
    if (names.empty() || values.empty() || names[0] != values[0] || names[0].back() != ':' ||
        names.size() != values.size())
      continue;
    std::string prefix = names[0].substr(0, names[0].size() - 1);
    bool numeric = true;
    for (size_t j = 1; j < values.size() && numeric; j++)
      numeric = !values[j].empty() && std::all_of(values[j].begin(), values[j].end(), [](char c) {
        return (c >= '0' && c <= '9') || c == '-';
      });
    if (!numeric) continue;  // a header line followed by another header
    for (size_t j = 1; j < names.size(); j++) {
      errno = 0;
      char* end = nullptr;
      unsigned long long v = strtoull(values[j].c_str(), &end, 10);
      if (end && *end == '\0') out[prefix + "." + names[j]] = v;
    }
    i++;  // consumed the values line
  }
  return out;
}

void Model::Update(const std::vector<std::pair<RawKey, RawCounters>>& counters,
                   const std::vector<std::pair<RawKey, RawLive>>& live,
                   std::vector<Listener> listeners, std::map<uint32_t, NetnsCounters> netns,
                   const std::function<std::string(const RawKey&)>& service_of) {
  for (const auto& [key, cur] : counters) {
    if (key.dir == Direction::kListen || key.dir == Direction::kPool) continue;
    std::string name = service_of(key);
    if (name.empty()) continue;  // not named yet: fold later
    auto it = last_.find(key);
    RawCounters delta = it == last_.end() ? cur : Delta(cur, it->second);
    last_[key] = cur;
    AddCounters(series_[SeriesOf(key, std::move(name))].acc, delta);
  }
  for (auto& [id, s] : series_) s.live = RawLive{};
  pool_active_.assign(pools_.size(), 0);
  for (const auto& [key, l] : live) {
    if (key.dir == Direction::kListen) continue;
    if (key.dir == Direction::kPool) {
      std::string name;
      for (size_t i = 0; i < pools_.size(); i++) {
        if (pools_[i].server_port != key.port) continue;
        if (name.empty()) name = service_of(key);
        if (name == pools_[i].service) pool_active_[i] += l.active;
      }
      continue;
    }
    std::string name = service_of(key);
    if (name.empty()) continue;
    auto& s = series_[SeriesOf(key, std::move(name))];
    s.live.active += l.active;
  }
  listeners_ = std::move(listeners);
  netns_ = std::move(netns);
}

std::optional<RawCounters> Model::SeriesCounters(const SeriesId& id) const {
  auto it = series_.find(id);
  if (it == series_.end()) return std::nullopt;
  return it->second.acc;
}

std::optional<RawLive> Model::SeriesLive(const SeriesId& id) const {
  auto it = series_.find(id);
  if (it == series_.end()) return std::nullopt;
  return it->second.live;
}

// Every redtap_tcp_* family, filled by the listeners and the series.
struct TcpFamilies {
  MetricFamily backlog = Family("redtap_tcp_listen_backlog",
                                "Connections in the accept queue of a service's listening sockets "
                                "(established, not yet accept()ed), sampled every second",
                                MetricType::Gauge);
  MetricFamily backlog_max = Family("redtap_tcp_listen_backlog_max",
                                    "Accept queue limit of a service's listening sockets "
                                    "(min(listen() backlog, net.core.somaxconn))",
                                    MetricType::Gauge);
  MetricFamily overflows =
      Family("redtap_tcp_listen_overflows_total",
             "TcpExt ListenOverflows of a network namespace: connections dropped "
             "because an accept queue was full",
             MetricType::Counter);
  MetricFamily drops =
      Family("redtap_tcp_listen_drops_total",
             "Listen drops (overflows included): per listener (scope=listener, "
             "sk_drops) and per network namespace (scope=netns, TcpExt ListenDrops)",
             MetricType::Counter);
  MetricFamily active = Family("redtap_tcp_connections_active",
                               "TCP connections in ESTABLISHED or CLOSE_WAIT, sampled every second",
                               MetricType::Gauge);
  MetricFamily opened =
      Family("redtap_tcp_connections_opened_total",
             "TCP connections established since the agent started", MetricType::Counter);
  MetricFamily closed =
      Family("redtap_tcp_connections_closed_total",
             "Established TCP connections closed since the agent started", MetricType::Counter);
  MetricFamily failures = Family("redtap_tcp_connect_failures_total",
                                 "Outbound connects that failed, by reason", MetricType::Counter);
  MetricFamily resets =
      Family("redtap_tcp_resets_total", "TCP resets sent and received", MetricType::Counter);
  MetricFamily retrans =
      Family("redtap_tcp_retransmits_total", "TCP segments retransmitted", MetricType::Counter);
  MetricFamily rtt =
      Family("redtap_tcp_rtt_seconds",
             "Smoothed RTT of TCP connections, sampled in the kernel at most once per "
             "socket per millisecond of received traffic",
             MetricType::Histogram);
  MetricFamily bytes = Family("redtap_tcp_bytes_total",
                              "Bytes received (in) and acknowledged by the peer (out) on TCP "
                              "connections, counted since the agent first saw each connection",
                              MetricType::Counter);
};

// Listeners grouped by service and port (SO_REUSEPORT groups, IPv4 + IPv6, namespaces), and
// the namespace-wide listen counters.
void Model::AddListeners(TcpFamilies* f) const {
  struct Group {
    uint64_t backlog = 0, backlog_max = 0, drops = 0;
  };
  std::map<std::pair<std::string, uint16_t>, Group> groups;
  for (const auto& l : listeners_) {
    auto& g = groups[{l.service, l.port}];
    g.backlog += l.backlog;
    g.backlog_max += l.backlog_max;
    g.drops += l.drops;
  }
  for (const auto& [k, g] : groups) {
    exposition::Labels labels{{"service_name", k.first}, {"server_port", std::to_string(k.second)}};
    AddGauge(f->backlog, labels, g.backlog);
    AddGauge(f->backlog_max, labels, g.backlog_max);
    auto l = labels;
    l.push_back({"scope", "listener"});
    AddCounter(f->drops, l, g.drops);
  }
  for (const auto& [ns, c] : netns_) {
    exposition::Labels labels{{"netns", std::to_string(ns)}, {"scope", "netns"}};
    AddCounter(f->overflows, labels, c.listen_overflows);
    AddCounter(f->drops, labels, c.listen_drops);
  }
}

void Model::AddSeries(TcpFamilies* f) const {
  // The families without an inbound/outbound label (failures, resets, retransmits, bytes,
  // RTT) are labelled by service and server port only: an inbound series without a port (RSTs
  // sent where nothing listens, named "unknown") has the labels of the service's outbound
  // series, so the two are summed into one sample (two samples with the same labels would
  // be an invalid exposition, and a scraper would keep only one of them).
  std::map<std::pair<std::string, uint16_t>, RawCounters> by_labels;  // (service, port)
  for (const auto& [id, s] : series_) {
    const auto base = BaseLabels(id);
    const char* dir = DirName(id.dir);
    AddGauge(f->active, With(base, "direction", dir), s.live.active);
    AddCounter(f->opened, With(base, "direction", dir), s.acc.opened);
    AddCounter(f->closed, With(base, "direction", dir), s.acc.closed);
    AddCounters(by_labels[{id.service, id.dir == Direction::kInbound ? id.port : uint16_t{0}}],
                s.acc);
  }
  for (const auto& [service_port, acc] : by_labels) {
    const auto& [service, port] = service_port;
    const auto base =
        BaseLabels({service, port ? Direction::kInbound : Direction::kOutbound, port});
    for (int r = 0; r < kFailReasons; r++) {
      if (acc.connect_failures[r])
        AddCounter(f->failures, With(base, "reason", FailReasonName(r)), acc.connect_failures[r]);
    }
    if (acc.resets_sent || acc.resets_received) {
      AddCounter(f->resets, With(base, "direction", "sent"), acc.resets_sent);
      AddCounter(f->resets, With(base, "direction", "received"), acc.resets_received);
    }
    AddCounter(f->retrans, base, acc.retransmits);
    AddCounter(f->bytes, With(base, "direction", "in"), acc.bytes_in);
    AddCounter(f->bytes, With(base, "direction", "out"), acc.bytes_out);
    if (acc.rtt_count) {
      std::vector<double> bounds(kRttBounds);
      for (int i = 0; i < kRttBounds; i++) bounds[i] = kRttBoundsUs[i] / 1e6;
      const std::vector<uint64_t> counts(acc.rtt_buckets.begin(), acc.rtt_buckets.end());
      f->rtt.metric.push_back(
          exposition::Histogram(base, bounds, counts, acc.rtt_sum_us / 1e6, acc.rtt_count));
    }
  }
}

std::vector<MetricFamily> Model::Families() const {
  TcpFamilies f;
  AddListeners(&f);
  AddSeries(&f);
  std::vector<MetricFamily> out;
  for (auto* m : {&f.backlog, &f.backlog_max, &f.overflows, &f.drops, &f.active, &f.opened,
                  &f.closed, &f.failures, &f.resets, &f.retrans, &f.rtt, &f.bytes}) {
    if (!m->metric.empty()) out.push_back(std::move(*m));
  }
  if (!pools_.empty()) {
    auto usage = exposition::Family("redtap_connection_pool_usage_ratio",
                                    "Established outbound connections of a pool (alerts.pools: a "
                                    "service's connections to a server port) / its size.",
                                    exposition::MetricType::Gauge);
    auto conns = exposition::Family("redtap_connection_pool_connections",
                                    "Established outbound connections of a pool, last pass.",
                                    exposition::MetricType::Gauge);
    auto size = exposition::Family("redtap_connection_pool_size", "A pool's configured size.",
                                   exposition::MetricType::Gauge);
    for (size_t i = 0; i < pools_.size(); i++) {
      const double n = static_cast<double>(PoolActive(i));
      usage.metric.push_back(exposition::Gauge({{"pool", pools_[i].name}}, n / pools_[i].size));
      conns.metric.push_back(exposition::Gauge({{"pool", pools_[i].name}}, n));
      size.metric.push_back(exposition::Gauge({{"pool", pools_[i].name}}, pools_[i].size));
    }
    out.push_back(std::move(usage));
    out.push_back(std::move(conns));
    out.push_back(std::move(size));
  }
  return out;
}

nlohmann::json Model::ListenersJson() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& l : listeners_) {
    nlohmann::json o;
    o["service"] = l.service;
    o["address"] = l.address;
    o["port"] = l.port;
    o["family"] = l.family == AF_INET6 ? "ipv6" : "ipv4";
    o["backlog"] = l.backlog;
    o["backlog_max"] = l.backlog_max;
    o["fill_ratio"] = l.backlog_max ? static_cast<double>(l.backlog) / l.backlog_max : 0.0;
    o["syn_queue"] = l.syn_queue;
    o["drops_total"] = l.drops;  // per listener: overflows are counted in it
    o["netns"] = l.netns;
    if (l.pid) o["pid"] = l.pid;
    if (!l.comm.empty()) o["process"] = l.comm;
    auto it = netns_.find(l.netns);
    if (it != netns_.end()) {
      o["netns_listen_overflows_total"] = it->second.listen_overflows;
      o["netns_listen_drops_total"] = it->second.listen_drops;
    }
    arr.push_back(std::move(o));
  }
  return arr;
}

bool RateLimiter::Allow(const std::string& key, int64_t now_ns, uint64_t* suppressed) {
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      // Too many distinct keys: forget idle full buckets (they behave like new ones).
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        if (b->second.suppressed == 0 && now_ns - b->second.last_ns > period_ns_ * burst_)
          b = buckets_.erase(b);
        else
          ++b;
      }
      if (buckets_.size() >= max_keys_) {
        total_suppressed_++;
        return false;
      }
    }
    it = buckets_.emplace(key, Bucket{burst_, now_ns, 0}).first;
  }
  Bucket& b = it->second;
  if (now_ns > b.last_ns) {
    b.tokens = std::min(burst_, b.tokens + static_cast<double>(now_ns - b.last_ns) / period_ns_);
    b.last_ns = now_ns;
  }
  if (b.tokens < 1.0) {
    b.suppressed++;
    total_suppressed_++;
    return false;
  }
  b.tokens -= 1.0;
  if (suppressed) *suppressed = b.suppressed;
  b.suppressed = 0;
  return true;
}

std::string FormatEvent(const TcpEvent& ev) {
  std::string out;
  exporter::EventBuilder b(out, ev.unix_ns, ev.level, "tcp");
  b.Str("event", ev.event);
  b.Str("message", ev.message);
  b.Process(ev.service, ev.pid, ev.comm);
  if (!ev.server_address.empty()) b.Str("server.address", ev.server_address);
  if (ev.server_port) b.Uint("server.port", ev.server_port);
  if (!ev.client_address.empty()) b.Str("client.address", ev.client_address);
  if (ev.client_port) b.Uint("client.port", ev.client_port);
  if (!ev.reason.empty()) b.Str("reason", ev.reason);
  if (!ev.direction.empty()) b.Str("direction", ev.direction);
  b.Extras(ev.extra);
  if (ev.suppressed) b.Uint("suppressed", ev.suppressed);
  b.Close();
  return out;
}

}  // namespace redtap::saturation

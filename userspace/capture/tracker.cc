// SPDX-License-Identifier: Apache-2.0
#include "userspace/capture/tracker.h"

#include <algorithm>
#include <cstring>

#include "redtap_abi.h"
#include "userspace/common/format.h"

namespace redtap {
namespace {

// The client of a database connection is on this host when the peer is a loopback address:
// its own side is (or can be) captured, and is the one the metrics are measured from.
bool IsLoopback(const std::string& address) {
  return address.starts_with("127.") || address == "::1";
}

template <typename T>
bool Decode(const void* data, size_t size, T* out) {
  if (size < sizeof(T)) return false;
  std::memcpy(out, data, sizeof(T));
  return true;
}

}  // namespace

ConnTracker::ConnTracker(const config::LimitsConfig& limits, TransactionSink* sink,
                         KernelControl* kernel)
    : limits_(limits), sink_(sink), kernel_(kernel) {
  parser_limits_.max_head_bytes = limits.max_head_bytes;
  parser_limits_.max_pending_requests = limits.max_pending_requests;
  parser_limits_.response_fields = false;  // nothing downstream reads a response header
  conns_.reserve(std::min<size_t>(limits.max_connections, 4096));
  out_.reserve(16);
  db_out_.reserve(16);
}

ConnTracker::~ConnTracker() = default;

void ConnTracker::OnRecord(const void* data, size_t size) noexcept {
  redtap_event_hdr hdr;
  if (!Decode(data, size, &hdr) || hdr.version != REDTAP_ABI_VERSION || hdr.size > size) {
    stats_.bad_records++;
    return;
  }
  stats_.records++;
  switch (hdr.type) {
    case REDTAP_EV_DATA:
      OnData(data, size);
      break;
    case REDTAP_EV_CONN_OPEN:
      OnOpen(data, size);
      break;
    case REDTAP_EV_CONN_CLOSE:
      OnClose(data, size);
      break;
    case REDTAP_EV_EXEC: {
      redtap_exec_event ev;
      if (!Decode(data, size, &ev)) {
        stats_.bad_records++;
        break;
      }
      stats_.exec_records++;
      if (on_exec_) on_exec_(ev.pid);
      break;
    }
    default:
      stats_.bad_records++;
  }
}

void ConnTracker::OnOpen(const void* data, size_t size) noexcept {
  redtap_conn_open_event ev;
  if (!Decode(data, size, &ev)) {
    stats_.bad_records++;
    return;
  }
  ConnKey key{ev.id.tgid, ev.id.fd, ev.id.gen};
  const bool is_db = ev.proto > REDTAP_PROTO_HTTP && ev.proto < REDTAP_PROTO_MAX;
  if (is_db && ev.role == REDTAP_ROLE_SERVER && IsLoopback(FormatAddress(ev.family, ev.raddr))) {
    // A database server's side whose client is on this host: measured from the client.
    stats_.db_server_skipped++;
    if (kernel_) kernel_->Mute(ev.id.tgid, ev.id.fd, ev.id.gen);
    auto stale = conns_.find(key);
    if (stale != conns_.end()) Retire(key, *stale->second), conns_.erase(stale);
    return;
  }
  if (conns_.size() >= limits_.max_connections && !conns_.count(key)) EvictOldest();
  auto c = std::make_unique<Conn>();
  if (is_db) {
    c->db = db::MakeParser(static_cast<db::System>(ev.proto), db_limits_);
    stats_.db_conns_opened++;
  } else {
    c->http = http::HttpConnection(parser_limits_);
  }
  c->meta.pid = ev.id.tgid;
  c->meta.command.assign(ev.comm, strnlen(ev.comm, sizeof(ev.comm)));
  c->meta.role = ev.role == REDTAP_ROLE_CLIENT ? Role::kClient : Role::kServer;
  c->meta.tls = ev.tls != 0;
  c->meta.local = {FormatAddress(ev.family, ev.laddr), ev.lport};
  c->meta.remote = {FormatAddress(ev.family, ev.raddr), ev.rport};
  c->next_seq = ev.seq + 1;
  c->last_ts = ev.hdr.ts_ns;
  // A stale tracker with the same (tgid, fd) but an older gen: its fd was closed unseen.
  auto it = conns_.find(key);
  if (it != conns_.end()) Retire(key, *it->second), conns_.erase(it);
  conns_.emplace(key, std::move(c));
  stats_.conns_opened++;
}

void ConnTracker::CheckSeq(Conn& c, uint32_t seq) noexcept {
  if (seq != c.next_seq) {
    // Records of this connection were lost (ring buffer full): resync both directions.
    stats_.seq_gaps++;
    if (c.db) {
      c.db->Gap(db::Direction::kRequest);
      c.db->Gap(db::Direction::kResponse);
    } else {
      c.http.Gap(http::Direction::kRequest);
      c.http.Gap(http::Direction::kResponse);
    }
  }
  c.next_seq = seq + 1;
}

void ConnTracker::OnData(const void* data, size_t size) noexcept {
  redtap_data_event ev;
  if (!Decode(data, size, &ev) || sizeof(ev) + ev.cap_len > size || ev.cap_len > ev.len) {
    stats_.bad_records++;
    return;
  }
  stats_.data_records++;
  // A TLS read missed at attach stands for ciphertext bytes: not payload moved.
  if (!(ev.flags & REDTAP_DATA_F_MISSED)) stats_.data_bytes += ev.len;
  stats_.captured_bytes += ev.cap_len;
  auto it = conns_.find(ConnKey{ev.id.tgid, ev.id.fd, ev.id.gen});
  if (it == conns_.end()) {
    // Its open record was lost, or its tracker evicted: have the kernel re-open it at the
    // next message start (no-op for muted connections).
    stats_.data_without_conn++;
    if (kernel_) kernel_->Rearm(ev.id.tgid, ev.id.fd, ev.id.gen);
    return;
  }
  Conn& c = *it->second;
  CheckSeq(c, ev.seq);
  c.last_ts = ev.hdr.ts_ns;
  c.meta.tid = ev.tid;
  if (c.db) {
    FeedDb(c, ev, data);
    if (c.db->invalid()) {
      // Not the protocol its first bytes suggested, or TLS after an SSL request: stop.
      stats_.db_conns_invalid++;
      if (kernel_) kernel_->Mute(ev.id.tgid, ev.id.fd, ev.id.gen);
      stats_.conns_muted++;
      Retire(it->first, c);
      conns_.erase(it);
    }
    return;
  }
  bool ingress = ev.dir == REDTAP_DIR_INGRESS;
  bool server = c.meta.role == Role::kServer;
  auto dir = (ingress == server) ? http::Direction::kRequest : http::Direction::kResponse;
  if (ev.flags & REDTAP_DATA_F_UNPARSED) {
    // Request bytes that were not HTTP (or not seen at all), answered with HTTP: their
    // length and time only.
    if (dir == http::Direction::kRequest) {
      c.http.FeedUnparsed(ev.len, ev.hdr.ts_ns, !(ev.flags & REDTAP_DATA_F_MISSED), &out_);
    }
  } else {
    std::string_view payload(static_cast<const char*>(data) + sizeof(ev), ev.cap_len);
    c.http.Feed(dir, payload, ev.len, ev.hdr.ts_ns, &out_);
  }
  Emit(c);
  if (c.http.state() != http::ConnState::kActive) {
    // Upgraded (WebSocket, CONNECT tunnel) or not HTTP: stop the kernel sending its bytes.
    if (kernel_) kernel_->Mute(ev.id.tgid, ev.id.fd, ev.id.gen);
    stats_.conns_muted++;
    Retire(it->first, c);
    conns_.erase(it);
  }
}

void ConnTracker::OnClose(const void* data, size_t size) noexcept {
  redtap_conn_close_event ev;
  if (!Decode(data, size, &ev)) {
    stats_.bad_records++;
    return;
  }
  auto it = conns_.find(ConnKey{ev.id.tgid, ev.id.fd, ev.id.gen});
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  CheckSeq(c, ev.seq);
  if (c.db) {
    c.db->Close(ev.hdr.ts_ns, &db_out_);
    EmitDb(c);
  } else {
    c.http.Close(ev.hdr.ts_ns, &out_);
    Emit(c);
  }
  stats_.conns_closed++;
  Retire(it->first, c);
  conns_.erase(it);
}

void ConnTracker::Emit(Conn& c) noexcept {
  for (http::Transaction& t : out_) {
    stats_.transactions++;
    if (!t.has_response) stats_.unanswered++;
    if (sink_) sink_->OnTransactionOwned(std::move(t), c.meta);
  }
  out_.clear();
}

void ConnTracker::FeedDb(Conn& c, const redtap_data_event& ev, const void* data) noexcept {
  if (ev.flags & REDTAP_DATA_F_UNPARSED) return;  // HTTP-only records
  const bool ingress = ev.dir == REDTAP_DIR_INGRESS;
  const bool server = c.meta.role == Role::kServer;
  const auto dir = (ingress == server) ? db::Direction::kRequest : db::Direction::kResponse;
  std::string_view payload(static_cast<const char*>(data) + sizeof(ev), ev.cap_len);
  c.db->Feed(dir, payload, ev.len, ev.hdr.ts_ns, &db_out_);
  if (ev.tail_len > 0 && ev.tail_len <= db::kMaxTail &&
      sizeof(ev) + ev.cap_len + ev.tail_len <= ev.hdr.size &&
      ev.cap_len + uint64_t{ev.tail_len} <= ev.len) {
    // The call's last bytes: where a large reply's status is.
    c.db->FeedTail(dir, std::string_view(payload.data() + payload.size(), ev.tail_len),
                   ev.hdr.ts_ns, &db_out_);
  }
  EmitDb(c);
}

void ConnTracker::EmitDb(Conn& c) noexcept {
  for (db::Operation& op : db_out_) {
    stats_.db_operations++;
    if (!op.has_response) stats_.db_unanswered++;
    if (sink_) sink_->OnDbOperation(std::move(op), c.meta);
  }
  db_out_.clear();
}

void ConnTracker::Retire(const ConnKey&, Conn& c) noexcept {
  if (c.db) {
    retired_db_.Add(c.db->stats());
    return;
  }
  retired_parser_.Add(c.http.stats());
}

void ConnTracker::EvictOldest() noexcept {
  auto oldest = conns_.end();
  for (auto it = conns_.begin(); it != conns_.end(); ++it)
    if (oldest == conns_.end() || it->second->last_ts < oldest->second->last_ts) oldest = it;
  if (oldest == conns_.end()) return;
  Retire(oldest->first, *oldest->second);
  if (kernel_) kernel_->Rearm(oldest->first.tgid, oldest->first.fd, oldest->first.gen);
  conns_.erase(oldest);
  stats_.conns_evicted_full++;
}

void ConnTracker::Sweep(uint64_t now_ns) noexcept {
  uint64_t idle = static_cast<uint64_t>(limits_.idle_timeout_s) * 1'000'000'000ull;
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (now_ns > it->second->last_ts && now_ns - it->second->last_ts > idle) {
      Retire(it->first, *it->second);
      if (kernel_) kernel_->Rearm(it->first.tgid, it->first.fd, it->first.gen);
      it = conns_.erase(it);
      stats_.conns_evicted_idle++;
    } else {
      ++it;
    }
  }
}

TrackerStats ConnTracker::stats() const {
  TrackerStats s = stats_;
  s.parser = retired_parser_;
  s.db = retired_db_;
  for (const auto& [k, c] : conns_) {
    if (c->db) {
      s.db.Add(c->db->stats());
    } else {
      s.parser.Add(c->http.stats());
    }
  }
  return s;
}

}  // namespace redtap

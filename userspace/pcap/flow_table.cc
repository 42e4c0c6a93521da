// SPDX-License-Identifier: Apache-2.0
#include "userspace/pcap/flow_table.h"

#include <sys/socket.h>

#include "userspace/common/format.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace redtap::pcap {
namespace {

void AddStream(StreamStats* a, const StreamStats& b) {
  a->segments += b.segments;
  a->out_of_order += b.out_of_order;
  a->retransmits += b.retransmits;
  a->overlaps += b.overlaps;
  a->holes += b.holes;
  a->hole_bytes += b.hole_bytes;
  a->forced_skips += b.forced_skips;
  a->jumps += b.jumps;
}

void AddParser(http::ConnStats* a, const http::ConnStats& b) { a->Add(b); }

// A chunk that may be the first bytes of a request line cut short ("GE").
bool MaybeRequestPrefix(std::string_view d) {
  if (d.empty() || d.size() > 7) return false;
  for (char c : d) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

}  // namespace

size_t FindRequestStart(std::string_view d) noexcept {
  if (http::LooksLikeRequestStart(d)) return 0;
  size_t i = 0;
  while (true) {
    const void* p = std::memchr(d.data() + i, '\n', d.size() - i);
    if (p == nullptr) return std::string_view::npos;
    i = static_cast<size_t>(static_cast<const char*>(p) - d.data()) + 1;
    if (i >= d.size()) return std::string_view::npos;
    if (d[i] >= 'A' && d[i] <= 'Z' && http::LooksLikeRequestStart(d.substr(i))) return i;
  }
}

size_t FindResponseStart(std::string_view d) noexcept {
  // At the start: whatever the parser accepts (it takes "http/1.1" in any case).
  if (http::LooksLikeResponseStart(d)) return 0;
  size_t from = 0;
  while (from < d.size()) {
    const size_t i = d.find("HTTP/1.", from);
    if (i == std::string_view::npos) return i;
    if ((i == 0 || d[i - 1] == '\n') && http::LooksLikeResponseStart(d.substr(i))) return i;
    from = i + 1;
  }
  return std::string_view::npos;
}

bool SniffDbFirstMessage(std::string_view d, db::System* sys, bool* from_client) noexcept {
  const size_t n = d.size();
  auto b = [&](size_t i) -> uint32_t { return static_cast<uint8_t>(d[i]); };
  auto digit = [&](size_t i) { return d[i] >= '0' && d[i] <= '9'; };
  // PostgreSQL StartupMessage (int32 length, protocol 3.0) or SSLRequest 80877103 /
  // GSSENCRequest 80877104 (length 8).
  if (n >= 8 && b(0) == 0 && b(1) == 0) {
    const uint32_t len = b(2) << 8 | b(3);
    if (b(4) == 0 && b(5) == 3 && b(6) == 0 && b(7) == 0 && len >= 8 && len <= 10000) {
      *sys = db::System::kPostgresql;
      *from_client = true;
      return true;
    }
    if (len == 8 && b(4) == 0x04 && b(5) == 0xd2 && b(6) == 0x16 &&
        (b(7) == 0x2f || b(7) == 0x30)) {
      *sys = db::System::kPostgresql;
      *from_client = true;
      return true;
    }
  }
  // MySQL greeting: 3-byte length, sequence 0, protocol 10, a version string.
  if (n >= 6 && b(2) == 0 && b(3) == 0 && b(4) == 0x0a && b(5) >= '1' && b(5) <= '9') {
    const uint32_t len = b(0) | b(1) << 8;
    if (len >= 20 && len <= 1024) {
      *sys = db::System::kMysql;
      *from_client = false;
      return true;
    }
  }
  // A Redis command: "*<count>\r\n$".
  if (n >= 5 && d[0] == '*' && digit(1) &&
      ((d[2] == '\r' && d[3] == '\n' && d[4] == '$') ||
       (n >= 6 && digit(2) && d[3] == '\r' && d[4] == '\n' && d[5] == '$'))) {
    *sys = db::System::kRedis;
    *from_client = true;
    return true;
  }
  return false;
}

size_t FlowTable::FlowKeyHash::operator()(const FlowKey& k) const noexcept {
  uint64_t a0, a1, b0, b1;
  std::memcpy(&a0, k.a, 8);
  std::memcpy(&a1, k.a + 8, 8);
  std::memcpy(&b0, k.b, 8);
  std::memcpy(&b1, k.b + 8, 8);
  uint64_t h = (a0 * 0x9E3779B97F4A7C15ull) ^ (a1 * 0xC2B2AE3D27D4EB4Full);
  h ^= (b0 + 0x165667B19E3779F9ull) * 0xD6E8FEB86659FD93ull;
  h ^= (b1 ^ (static_cast<uint64_t>(k.pa) << 16 | k.pb | static_cast<uint64_t>(k.family) << 40)) *
       0x9E3779B97F4A7C15ull;
  return static_cast<size_t>(h ^ (h >> 29));
}

FlowTable::FlowTable(const FlowLimits& limits, TransactionSink* sink)
    : limits_(limits), sink_(sink) {
  if (limits_.max_flows == 0) limits_.max_flows = 1;
  // Passive capture: log what peers (Zeek, nDPI) log for malformed request lines and
  // HTTP/0.9 (pcap only; the live agent keeps the strict defaults).
  limits_.http.lenient_request_line = limits_.lenient_http;
  limits_.http.allow_http09 = limits_.lenient_http;
  limits_.http.response_fields = limits_.response_fields;
  flows_.reserve(std::min<size_t>(limits_.max_flows, 65536));
}

FlowTable::~FlowTable() = default;

void FlowTable::SetLocalAddresses(std::vector<IpAddrs> addrs) { local_ = std::move(addrs); }

bool FlowTable::IsLocal(uint8_t family, const uint8_t* addr) const noexcept {
  const size_t n = family == 4 ? 4 : 16;
  for (const IpAddrs& l : local_) {
    if (l.family == family && std::memcmp(l.src, addr, n) == 0) return true;
  }
  return false;
}

void FlowTable::Unlink(Flow* f) noexcept {
  if (f->prev)
    f->prev->next = f->next;
  else
    lru_head_ = f->next;
  if (f->next)
    f->next->prev = f->prev;
  else
    lru_tail_ = f->prev;
  f->prev = f->next = nullptr;
}

void FlowTable::Touch(Flow* f) noexcept {
  if (lru_head_ == f) return;
  if (f->prev || f->next || lru_tail_ == f) Unlink(f);
  f->next = lru_head_;
  if (lru_head_) lru_head_->prev = f;
  lru_head_ = f;
  if (!lru_tail_) lru_tail_ = f;
}

void FlowTable::Account(Flow* f) noexcept {
  const size_t now = f->stream[0].buffered_bytes() + f->stream[1].buffered_bytes();
  buffered_total_ = buffered_total_ - f->buffered + now;
  f->buffered = now;
}

void FlowTable::SetClient(Flow* f, int side) noexcept {
  f->client = side;
  const FlowKey& k = f->key;
  const uint8_t* caddr = side == 0 ? k.a : k.b;
  const uint8_t* saddr = side == 0 ? k.b : k.a;
  const uint16_t family = k.family == 4 ? AF_INET : AF_INET6;
  Endpoint client{FormatAddress(family, caddr), side == 0 ? k.pa : k.pb};
  Endpoint server{FormatAddress(family, saddr), side == 0 ? k.pb : k.pa};
  f->meta.pid = 0;
  f->meta.command.clear();
  const bool client_local = !local_.empty() && IsLocal(k.family, caddr);
  const bool server_local = !local_.empty() && IsLocal(k.family, saddr);
  if (client_local && !server_local) {
    f->meta.role = Role::kClient;
    f->meta.local = std::move(client);
    f->meta.remote = std::move(server);
  } else {
    f->meta.role = Role::kServer;
    f->meta.local = std::move(server);
    f->meta.remote = std::move(client);
  }
}

void FlowTable::Emit(Flow* f) noexcept {
  for (http::Transaction& t : out_) {
    f->connect_ok = t.has_response && t.request.method == "CONNECT" &&
                    t.response.status_code >= 200 && t.response.status_code < 300;
    ++stats_.transactions;
    if (!t.has_response) ++stats_.unanswered;
    if (sink_) sink_->OnTransactionOwned(std::move(t), f->meta);
  }
  out_.clear();
}

void FlowTable::Side::OnData(std::string_view data, uint64_t wire_len, uint64_t ts) noexcept {
  table->Data(flow, index, data, wire_len, ts);
}
void FlowTable::Side::OnHole(uint64_t len, uint64_t ts) noexcept {
  table->Hole(flow, index, len, ts);
}

// Who is the client of a flow whose start was not seen? The side that sends a request line
// (or the other side of one that sends a status line), whichever comes first in this chunk.
// Returns where the message starts, npos when neither appears.
size_t FlowTable::FindRole(Flow* f, int side, std::string_view data) noexcept {
  const size_t rq = FindRequest(data);
  const size_t rs = FindResponseStart(data);
  if (rq != std::string_view::npos && (rs == std::string_view::npos || rq <= rs)) {
    SetClient(f, side);
    return rq;
  }
  if (rs != std::string_view::npos) {
    SetClient(f, 1 - side);
    return rs;
  }
  return std::string_view::npos;
}

size_t FlowTable::FindRequest(std::string_view d) const noexcept {
  // Request lines only the lenient parser takes ("GET /x" + LF, "GET  HTTP/1.1") count as
  // request starts in pcap mode.
  if (limits_.lenient_http && http::LooksLikeLenientRequestStart(d)) return 0;
  return FindRequestStart(d);
}

// A client seen opening the connection sent bytes that are not a request: HTTP only if the
// server answers with a status line (Answered), else not HTTP. A TLS record is not HTTP at
// once. Returns kHeld while waiting, kDead when given up.
size_t FlowTable::HoldUnparsed(Flow* f, std::string_view data, uint64_t wire_len, uint64_t ts,
                               bool first) noexcept {
  if (first && data.size() >= 3 && data[0] >= 0x14 && data[0] <= 0x18 && data[1] == 0x03) {
    return Kill(f);
  }
  if (f->unparsed_len == 0) f->unparsed_ts = ts;
  f->unparsed_len += wire_len;
  f->scanned += wire_len;
  return f->scanned > limits_.max_scan_bytes ? Kill(f) : kHeld;
}

size_t FlowTable::Kill(Flow* f) noexcept {
  f->dead = true;
  ++stats_.flows_not_http;
  return kDead;
}

// Where the HTTP bytes of a side start, once the client is known: npos to skip this chunk,
// kHeld / kDead when the chunk was consumed by the unparsed-request logic.
size_t FlowTable::FindStart(Flow* f, int side, std::string_view data, uint64_t wire_len,
                            uint64_t ts, bool first) noexcept {
  const bool is_req = side == f->client;
  const http::Direction dir = is_req ? http::Direction::kRequest : http::Direction::kResponse;
  if (!f->http.Idle(dir)) return 0;  // the parser absorbed the hole inside a body: in sync
  if (is_req && f->syn[side] && (first || f->unparsed_len > 0) &&
      (f->unparsed_len > 0 ||
       (!http::LooksLikeRequestStart(data) && !MaybeRequestPrefix(data) &&
        !(limits_.lenient_http && http::LooksLikeLenientRequestStart(data))))) {
    return HoldUnparsed(f, data, wire_len, ts, first);
  }
  if (!is_req && f->unparsed_len > 0) {
    // The answer to bytes that were not HTTP: HTTP too, or the flow is not HTTP.
    if (FindResponseStart(data) != 0) return Kill(f);
    f->http.FeedUnparsed(f->unparsed_len, f->unparsed_ts, /*not_http=*/true, &out_);
    f->unparsed_len = 0;
    f->scan[1 - side] = true;  // the client's next bytes may start a request
    return 0;
  }
  size_t pos = is_req ? FindRequest(data) : FindResponseStart(data);
  if (pos == std::string_view::npos && is_req && MaybeRequestPrefix(data)) pos = 0;
  return pos;
}

bool FlowTable::PortSystem(uint16_t port, db::System* sys) const noexcept {
  const std::pair<const std::vector<uint16_t>*, db::System> lists[] = {
      {&limits_.postgresql_ports, db::System::kPostgresql},
      {&limits_.mysql_ports, db::System::kMysql},
      {&limits_.redis_ports, db::System::kRedis},
  };
  for (const auto& [ports, s] : lists) {
    if (std::find(ports->begin(), ports->end(), port) != ports->end()) {
      *sys = s;
      return true;
    }
  }
  return false;
}

// Called with the first bytes delivered on a flow (either side): is it a database flow? A
// strong first message decides on any port (and tells the client); else the server port
// (the side opposite the SYN's sender, or, without a SYN, the one side whose port is a
// database port). Sets the parser and the client.
bool FlowTable::ChooseDb(Flow* f, int side, std::string_view data) noexcept {
  db::System sys = db::System::kPostgresql;
  int client = -1;
  bool from_client = false;
  if (SniffDbFirstMessage(data, &sys, &from_client)) {
    const int c = from_client ? side : 1 - side;
    // A RESP array may be a reply too: a command only at the start of a connection seen
    // opening. Any other pattern must agree with the SYN.
    const bool ok = sys == db::System::kRedis ? f->syn[side] && f->client == side
                                              : f->client < 0 || f->client == c;
    if (ok) client = c;
  }
  if (client < 0) {
    db::System s0 = sys, s1 = sys;
    const bool h0 = PortSystem(f->key.pa, &s0);
    const bool h1 = PortSystem(f->key.pb, &s1);
    int server;
    if (f->client >= 0) {
      server = 1 - f->client;
      if (!(server == 0 ? h0 : h1)) return false;
    } else if (h0 != h1) {
      server = h0 ? 0 : 1;
    } else if (h0) {
      server = f->key.pa <= f->key.pb ? 0 : 1;  // both: the lower port serves
    } else {
      return false;
    }
    // Without a SYN the database port may be a client's ephemeral port: HTTP stays HTTP.
    if (f->client < 0 &&
        (http::LooksLikeRequestStart(data) || http::LooksLikeResponseStart(data))) {
      return false;
    }
    sys = server == 0 ? s0 : s1;
    client = 1 - server;
  }
  std::unique_ptr<db::Parser> p = db::MakeParser(sys, limits_.db);
  if (p == nullptr) return false;  // no parser for that system
  f->db = std::move(p);
  if (f->client < 0) SetClient(f, client);
  ++stats_.db_flows;
  // Holes before the choice: that side's next bytes may start anywhere.
  for (int i = 0; i < 2; ++i) {
    if (f->lost[i]) f->db->Gap(i == f->client ? db::Direction::kRequest : db::Direction::kResponse);
  }
  return true;
}

void FlowTable::EmitDb(Flow* f) noexcept {
  for (db::Operation& op : db_out_) {
    ++stats_.db_operations;
    if (!op.has_response) ++stats_.db_unanswered;
    if (sink_) sink_->OnDbOperation(std::move(op), f->meta);
  }
  db_out_.clear();
}

// Bytes of a database flow (data empty and wire_len > 0: a hole of that size).
void FlowTable::FeedDb(Flow* f, int side, std::string_view data, uint64_t wire_len,
                       uint64_t ts) noexcept {
  const db::Direction dir = side == f->client ? db::Direction::kRequest : db::Direction::kResponse;
  f->db->Feed(dir, data, wire_len, ts, &db_out_);
  if (!db_out_.empty()) EmitDb(f);
  if (f->db->invalid()) {
    // Not that protocol, or encrypted from here on (SSL accepted): stop feeding it.
    f->dead = true;
    ++stats_.db_flows_invalid;
  }
}

void FlowTable::Data(Flow* f, int side, std::string_view data, uint64_t wire_len,
                     uint64_t ts) noexcept {
  if (f->dead) return;
  if (!f->decided) {
    f->decided = true;
    if (limits_.db_enabled) ChooseDb(f, side, data);
  }
  if (f->db) {
    f->first[side] = false;
    FeedDb(f, side, data, wire_len, ts);
    return;
  }
  const bool first = f->first[side];
  f->first[side] = false;
  if (f->scan[side]) {
    const size_t pos =
        f->client < 0 ? FindRole(f, side, data) : FindStart(f, side, data, wire_len, ts, first);
    if (pos == kHeld || pos == kDead) return;
    if (pos == std::string_view::npos) {
      stats_.skipped_bytes += wire_len;
      f->scanned += wire_len;
      if (f->client < 0 && f->scanned > limits_.max_scan_bytes) Kill(f);
      return;
    }
    f->scan[side] = false;
    if (pos > 0) {
      stats_.skipped_bytes += pos;
      data.remove_prefix(pos);
      wire_len -= pos;
    }
  }
  Feed(f, side, data, wire_len, ts);
}

// Bytes of a side in sync with its parser.
void FlowTable::Feed(Flow* f, int side, std::string_view data, uint64_t wire_len,
                     uint64_t ts) noexcept {
  const http::Direction dir =
      side == f->client ? http::Direction::kRequest : http::Direction::kResponse;
  f->http.Feed(dir, data, wire_len, ts, &out_);
  if (!out_.empty()) Emit(f);
  if (f->http.state() == http::ConnState::kActive) return;
  f->http.Close(ts, &out_);
  if (!out_.empty()) Emit(f);
  if (f->http.state() == http::ConnState::kUpgraded && f->connect_ok) {
    // A CONNECT tunnel: what it carries may be HTTP again (a proxy chain). Start over as
    // if the connection had just opened; TLS or anything else makes it dead at once.
    ++stats_.tunnels;
    AddParser(&retired_parser_, f->http.stats());
    f->http = http::HttpConnection(limits_.http);
    f->scan[0] = f->scan[1] = true;
    f->first[0] = f->first[1] = true;
    f->syn[0] = f->syn[1] = true;
    f->connect_ok = false;
    return;
  }
  // Upgraded (WebSocket, h2c) or not HTTP: stop parsing its bytes.
  Kill(f);
}

void FlowTable::Hole(Flow* f, int side, uint64_t len, uint64_t ts) noexcept {
  if (f->dead) return;
  if (f->db) {
    if (len == 0) {
      f->db->Gap(side == f->client ? db::Direction::kRequest : db::Direction::kResponse);
    } else {
      FeedDb(f, side, std::string_view(), len, ts);  // the parser skips a body exactly
    }
    return;
  }
  if (!f->decided) f->lost[side] = true;
  if (f->client < 0 || f->scan[side]) {
    f->scan[side] = true;
    return;  // nothing of this direction reached the parser yet
  }
  const http::Direction dir =
      side == f->client ? http::Direction::kRequest : http::Direction::kResponse;
  if (len == 0) {
    f->http.Gap(dir);
  } else {
    f->http.Feed(dir, std::string_view(), len, ts, &out_);
  }
  if (!out_.empty()) Emit(f);
  // The next bytes may start anywhere: look for a message boundary unless the parser
  // absorbed the hole inside a body of known length.
  f->scan[side] = true;
}

void FlowTable::Retire(Flow* f, uint64_t ts, uint64_t* counter) noexcept {
  ++*counter;
  f->stream[0].Flush(ts, &f->side[0]);
  f->stream[1].Flush(ts, &f->side[1]);
  if (f->db) {
    if (!f->dead) {
      f->db->Close(ts, &db_out_);
      if (!db_out_.empty()) EmitDb(f);
    }
    retired_db_.Add(f->db->stats());
  } else if (f->client >= 0) {
    f->http.Close(ts, &out_);
    if (!out_.empty()) Emit(f);
  }
  AddStream(&retired_tcp_, f->stream[0].stats());
  AddStream(&retired_tcp_, f->stream[1].stats());
  AddParser(&retired_parser_, f->http.stats());
  buffered_total_ -= f->buffered;
  Unlink(f);
  flows_.erase(f->key);  // destroys f
}

// The flow key of a segment (both directions give the same key) and the side it came from:
// side 0 = packets from the lower (address, port).
FlowTable::FlowKey FlowTable::KeyOf(const TcpSegment& seg, int* side) noexcept {
  FlowKey key;
  std::memset(&key, 0, sizeof(key));
  key.family = seg.ip.family;
  // All 16 bytes (an IPv4 address is followed by zeros): fixed-size copies and compares are
  // inlined, a per-packet memcmp/memcpy call each is not.
  int cmp = std::memcmp(seg.ip.src, seg.ip.dst, 16);
  if (cmp == 0) cmp = seg.src_port < seg.dst_port ? -1 : (seg.src_port > seg.dst_port ? 1 : 0);
  *side = cmp <= 0 ? 0 : 1;
  if (*side == 0) {
    std::memcpy(key.a, seg.ip.src, 16);
    std::memcpy(key.b, seg.ip.dst, 16);
    key.pa = seg.src_port;
    key.pb = seg.dst_port;
  } else {
    std::memcpy(key.a, seg.ip.dst, 16);
    std::memcpy(key.b, seg.ip.src, 16);
    key.pa = seg.dst_port;
    key.pb = seg.src_port;
  }
  return key;
}

// The flow of a segment: the tracked one, or a new one (a SYN, or data of a flow whose start
// was not captured). Null when the segment starts nothing worth tracking.
FlowTable::Flow* FlowTable::FlowOf(const FlowKey& key, const TcpSegment& seg, int side,
                                   uint64_t ts) noexcept {
  const bool syn = seg.flags & kTcpSyn;
  const bool ack = seg.flags & kTcpAck;
  auto it = flows_.find(key);
  Flow* f = it == flows_.end() ? nullptr : it->second.get();
  if (f && syn && !ack && f->stream[side].started() && f->stream[side].next_seq() != seg.seq + 1) {
    // A new connection on the same 4-tuple.
    ++stats_.port_reuse;
    Retire(f, ts, &stats_.flows_closed);
    f = nullptr;
  }
  if (f != nullptr) return f;
  if (!syn && seg.payload_wire_len == 0) return nullptr;  // ACK/FIN/RST of an untracked flow
  if (seg.flags & kTcpRst) return nullptr;
  if (flows_.size() >= limits_.max_flows && lru_tail_) {
    Retire(lru_tail_, ts, &stats_.flows_evicted_lru);
  }
  auto owned = std::make_unique<Flow>(limits_);
  f = owned.get();
  f->key = key;
  for (int i = 0; i < 2; ++i) {
    f->side[i].table = this;
    f->side[i].flow = f;
    f->side[i].index = i;
  }
  flows_.emplace(key, std::move(owned));
  ++stats_.flows_created;
  if (!syn) ++stats_.midstream_flows;
  return f;
}

void FlowTable::OnSegment(const TcpSegment& seg, uint64_t ts) noexcept {
  ++stats_.segments;
  int side = 0;
  const FlowKey key = KeyOf(seg, &side);
  Flow* f = FlowOf(key, seg, side, ts);
  if (f == nullptr) return;
  const bool syn = seg.flags & kTcpSyn;
  const bool ack = seg.flags & kTcpAck;
  const bool fin = seg.flags & kTcpFin;
  f->last_ts = ts;
  Touch(f);

  if (syn) {
    if (!f->stream[side].started()) f->syn[side] = true;
    f->stream[side].OnSyn(seg.seq);
    if (f->client < 0) SetClient(f, ack ? 1 - side : side);
    // A SYN-ACK tells where the client's data starts even if its SYN was not captured.
    if (ack && !f->stream[1 - side].started()) {
      f->stream[1 - side].OnSyn(seg.ack - 1);
      f->syn[1 - side] = true;
    }
  }
  if (ack && !syn) f->stream[1 - side].OnPeerAck(seg.ack, ts, &f->side[1 - side]);
  if (!syn && (seg.payload_wire_len > 0 || fin)) {
    f->stream[side].OnSegment(seg.seq, seg.payload, seg.payload_wire_len, fin, ts, &f->side[side]);
  }
  Account(f);
  while (buffered_total_ > limits_.max_buffered_total && f->buffered > 0) {
    ++stats_.memory_skips;
    const int fuller = f->stream[0].buffered_bytes() >= f->stream[1].buffered_bytes() ? 0 : 1;
    f->stream[fuller].ForceSkip(ts, &f->side[fuller]);
    Account(f);
  }
  if ((seg.flags & kTcpRst) != 0) f->rst = true;
  if (f->rst || (f->stream[0].fin_done() && f->stream[1].fin_done())) {
    Retire(f, ts, &stats_.flows_closed);
  }
}

void FlowTable::Sweep(uint64_t now) noexcept {
  while (lru_tail_ && now > lru_tail_->last_ts &&
         now - lru_tail_->last_ts > limits_.idle_timeout_ns) {
    Retire(lru_tail_, now, &stats_.flows_evicted_idle);
  }
}

void FlowTable::FlushAll(uint64_t now) noexcept {
  while (lru_tail_) Retire(lru_tail_, std::max(now, lru_tail_->last_ts), &stats_.flows_flushed);
}

FlowStats FlowTable::stats() const {
  FlowStats s = stats_;
  s.tcp = retired_tcp_;
  s.parser = retired_parser_;
  s.db = retired_db_;
  for (const auto& [k, f] : flows_) {
    AddStream(&s.tcp, f->stream[0].stats());
    AddStream(&s.tcp, f->stream[1].stats());
    AddParser(&s.parser, f->http.stats());
    if (f->db) s.db.Add(f->db->stats());
  }
  return s;
}

}  // namespace redtap::pcap

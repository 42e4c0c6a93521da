// SPDX-License-Identifier: Apache-2.0
// FlowTable: TCP connections of a capture, each with its two TcpStreams and one
// http::HttpConnection, or a db::Parser for a database connection (PostgreSQL, MySQL/MariaDB,
// Redis: a server port in FlowLimits' database ports, or a strong first message on any port).
// Decides who is the client (SYN, else the side that sends a request line, else the side that
// sends a status line; for a database flow the side opposite the database port, or the side
// its first message tells), finds message boundaries after holes and at a mid-connection
// start, and hands every transaction to a TransactionSink (database operations: its
// OnDbOperation). Bounded: flows (LRU), idle time (packet time), buffered out-of-order bytes
// per direction and in total; every eviction and skip is counted.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "parsers/db/types.h"
#include "parsers/http/connection.h"
#include "userspace/capture/conn_meta.h"
#include "userspace/capture/tracker.h"
#include "userspace/pcap/decode.h"
#include "userspace/pcap/tcp_stream.h"

namespace redtap::pcap {

struct FlowLimits {
  size_t max_flows = 16384;                     // LRU beyond this
  uint64_t idle_timeout_ns = 300'000'000'000;   // packet time without traffic
  size_t max_buffered_per_direction = 1 << 20;  // out-of-order bytes per direction
  size_t max_buffered_total = 256u << 20;       // out-of-order bytes over all flows
  size_t max_scan_bytes = 1 << 20;              // bytes searched for a first message start
  /// Sets http.lenient_request_line and http.allow_http09 (pcap mode: on by default).
  bool lenient_http = true;
  /// Sets http.response_fields: keep every response header field in the transactions
  /// (off: only Content-Length / Transfer-Encoding, as the live agent; nothing `redtap pcap`
  /// reports reads the others, and their copies cost ~10 % on small answers).
  bool response_fields = false;
  http::Limits http;
  /// Databases and caches (config `db`). Off: every flow is HTTP or nothing.
  bool db_enabled = true;
  /// A flow whose server port is one of these gets that system's parser, whatever its first
  /// bytes (connections whose start was not captured); the flow's other side is its client
  /// unless a SYN tells otherwise. Strong first messages (a PostgreSQL StartupMessage or
  /// SSLRequest, a MySQL greeting, a RESP command array right after a SYN) open a database
  /// flow on any port.
  std::vector<uint16_t> postgresql_ports = {5432};
  std::vector<uint16_t> mysql_ports = {3306};
  std::vector<uint16_t> redis_ports = {6379};
  db::Limits db;
};

struct FlowStats {
  uint64_t segments = 0;  // TCP segments seen
  uint64_t flows_created = 0;
  uint64_t flows_closed = 0;        // FIN both ways or RST
  uint64_t flows_evicted_lru = 0;   // max_flows reached
  uint64_t flows_evicted_idle = 0;  // idle_timeout_ns without packets
  uint64_t flows_flushed = 0;       // still open at the end of the capture
  uint64_t flows_not_http = 0;      // given up: no HTTP found, upgraded or invalid
  uint64_t port_reuse = 0;          // a new SYN on a known 4-tuple: the old flow is closed
  uint64_t midstream_flows = 0;     // no SYN seen: role inferred from the payload
  uint64_t skipped_bytes = 0;       // bytes dropped while looking for a message start
  uint64_t memory_skips = 0;        // holes skipped because max_buffered_total was reached
  uint64_t tunnels = 0;             // CONNECT tunnels whose content is parsed again
  uint64_t transactions = 0;
  uint64_t unanswered = 0;
  // Databases and caches.
  uint64_t db_flows = 0;          // flows given a database parser (port or first message)
  uint64_t db_flows_invalid = 0;  // given up: not that protocol, or encrypted (SSL accepted)
  uint64_t db_operations = 0;     // operations handed to the sink
  uint64_t db_unanswered = 0;     // of which without reply (closed, or lost to a hole)
  StreamStats tcp;                // summed over closed and live flows
  http::ConnStats parser;         // summed over closed and live flows
  db::ConnStats db;               // database parsers, the same
};

class FlowTable {
 public:
  /// Every transaction is handed over to `sink` (may be null), which may keep it.
  FlowTable(const FlowLimits& limits, TransactionSink* sink);
  ~FlowTable();

  /// Addresses of the capturing host (IpAddrs::src; IPv4 in its first 4 bytes): when a
  /// transaction's client is local and its server is not, it is reported as kind client.
  /// None (the default): every transaction is a server one.
  void SetLocalAddresses(std::vector<IpAddrs> addrs);

  /// One decoded TCP segment captured at `ts_ns` (ns since the Unix epoch).
  void OnSegment(const TcpSegment& seg, uint64_t ts_ns) noexcept;
  /// Evicts flows idle for longer than the limit.
  void Sweep(uint64_t now_ns) noexcept;
  /// End of capture: flushes every flow (pending requests become unanswered transactions).
  void FlushAll(uint64_t now_ns) noexcept;

  size_t flows() const { return flows_.size(); }
  size_t buffered_bytes() const { return buffered_total_; }
  FlowStats stats() const;

 private:
  struct FlowKey {
    uint8_t family;
    uint8_t a[16];
    uint8_t b[16];
    uint16_t pa, pb;
    bool operator==(const FlowKey& o) const {
      return family == o.family && pa == o.pa && pb == o.pb && std::memcmp(a, o.a, 16) == 0 &&
             std::memcmp(b, o.b, 16) == 0;
    }
  };
  struct FlowKeyHash {
    size_t operator()(const FlowKey& k) const noexcept;
  };
  struct Flow;
  struct Side : StreamOutput {
    FlowTable* table = nullptr;
    Flow* flow = nullptr;
    int index = 0;
    void OnData(std::string_view data, uint64_t wire_len, uint64_t ts_ns) noexcept override;
    void OnHole(uint64_t len, uint64_t ts_ns) noexcept override;
  };
  struct Flow {
    FlowKey key;
    TcpStream stream[2];
    Side side[2];
    http::HttpConnection http;
    int client = -1;               // index of the client side; -1 until known
    bool scan[2] = {true, true};   // looking for a message start in that side's bytes
    bool syn[2] = {false, false};  // that side's stream started with a SYN we saw
    bool first[2] = {true, true};  // no byte of that side delivered yet
    bool dead = false;             // not HTTP (or upgraded): ignore its bytes
    bool rst = false;
    bool connect_ok = false;  // the last transaction was a successful CONNECT
    // HTTP or a database: chosen once, at the first bytes delivered on either side.
    bool decided = false;
    bool lost[2] = {false, false};   // a hole in that side before the choice
    std::unique_ptr<db::Parser> db;  // a database flow: its parser (http unused)
    uint64_t scanned = 0;            // bytes searched before the role was known
    // A client seen opening the connection sent bytes that are not a request: their length
    // and time, until the server's first bytes tell whether it answers in HTTP (as the
    // kernel capture does: every answer a server sends is a transaction).
    uint64_t unparsed_len = 0;
    uint64_t unparsed_ts = 0;
    uint64_t last_ts = 0;
    size_t buffered = 0;  // this flow's share of buffered_total_
    ConnMeta meta;
    Flow* prev = nullptr;  // LRU: prev = more recent
    Flow* next = nullptr;
    Flow(const FlowLimits& l)
        : stream{TcpStream(l.max_buffered_per_direction), TcpStream(l.max_buffered_per_direction)},
          http(l.http) {}
  };

  void Data(Flow* f, int side, std::string_view data, uint64_t wire_len, uint64_t ts) noexcept;
  bool ChooseDb(Flow* f, int side, std::string_view data) noexcept;
  bool PortSystem(uint16_t port, db::System* sys) const noexcept;
  void FeedDb(Flow* f, int side, std::string_view data, uint64_t wire_len, uint64_t ts) noexcept;
  void EmitDb(Flow* f) noexcept;
  // Results of FindStart besides a position: the chunk was consumed.
  static constexpr size_t kHeld = std::string_view::npos - 1;  // unparsed, answer awaited
  static constexpr size_t kDead = std::string_view::npos - 2;  // the flow is not HTTP
  size_t FindRole(Flow* f, int side, std::string_view data) noexcept;
  size_t FindRequest(std::string_view d) const noexcept;
  size_t FindStart(Flow* f, int side, std::string_view data, uint64_t wire_len, uint64_t ts,
                   bool first) noexcept;
  size_t HoldUnparsed(Flow* f, std::string_view data, uint64_t wire_len, uint64_t ts,
                      bool first) noexcept;
  size_t Kill(Flow* f) noexcept;
  void Feed(Flow* f, int side, std::string_view data, uint64_t wire_len, uint64_t ts) noexcept;
  static FlowKey KeyOf(const TcpSegment& seg, int* side) noexcept;
  Flow* FlowOf(const FlowKey& key, const TcpSegment& seg, int side, uint64_t ts) noexcept;
  void Hole(Flow* f, int side, uint64_t len, uint64_t ts) noexcept;
  void SetClient(Flow* f, int side) noexcept;
  void Emit(Flow* f) noexcept;
  void Retire(Flow* f, uint64_t ts, uint64_t* counter) noexcept;
  void Touch(Flow* f) noexcept;
  void Unlink(Flow* f) noexcept;
  void Account(Flow* f) noexcept;
  bool IsLocal(uint8_t family, const uint8_t* addr) const noexcept;

  FlowLimits limits_;
  TransactionSink* sink_;
  std::vector<IpAddrs> local_;
  std::unordered_map<FlowKey, std::unique_ptr<Flow>, FlowKeyHash> flows_;
  Flow* lru_head_ = nullptr;  // most recent
  Flow* lru_tail_ = nullptr;  // least recent
  size_t buffered_total_ = 0;
  std::vector<http::Transaction> out_;
  std::vector<db::Operation> db_out_;
  FlowStats stats_;
  StreamStats retired_tcp_;
  http::ConnStats retired_parser_;
  db::ConnStats retired_db_;
};

/// Where the first HTTP request line starts in `d` (at 0 or right after a '\n'), or npos.
size_t FindRequestStart(std::string_view d) noexcept;
/// Where the first status line ("HTTP/1.x NNN") starts in `d` (at 0 or after a '\n'), or npos.
size_t FindResponseStart(std::string_view d) noexcept;

/// Whether `d`, the first bytes one side of a connection sent, is a database first message
/// that opens a database flow on any port: a PostgreSQL StartupMessage (int32 length, protocol
/// 3.x) or SSLRequest / GSSENCRequest (client), a MySQL protocol-10 greeting (server), a RESP
/// array of bulk strings ("*<n>\r\n$", client; only trusted at a connection's true start).
/// The same patterns as the kernel's (bpf/lib/db_sniff.bpf.h). `*from_client`: which side
/// sends that message.
bool SniffDbFirstMessage(std::string_view d, db::System* sys, bool* from_client) noexcept;

}  // namespace redtap::pcap

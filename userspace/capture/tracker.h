// SPDX-License-Identifier: Apache-2.0
// ConnTracker: decodes kernel records and keeps, per connection, the two byte streams and
// their HTTP parser; completed transactions go to a sink. Runs on the reader thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "parsers/db/types.h"
#include "parsers/http/connection.h"
#include "userspace/capture/conn_meta.h"
#include "userspace/config/config.h"
#include "userspace/pipeline/transaction_sink.h"

struct redtap_data_event;

namespace redtap {

/// Userspace counters (monotonic). Kernel drops are counted in the kernel.
struct TrackerStats {
  uint64_t records = 0;      // records decoded
  uint64_t bad_records = 0;  // too short, unknown type or version
  uint64_t conns_opened = 0;
  uint64_t conns_closed = 0;
  uint64_t data_records = 0;
  uint64_t data_bytes = 0;          // bytes moved by traced syscalls (true lengths)
  uint64_t captured_bytes = 0;      // of which captured (sent through the ring buffer)
  uint64_t data_without_conn = 0;   // data for a connection not (or no longer) tracked
  uint64_t seq_gaps = 0;            // records lost between kernel and us (ring full)
  uint64_t conns_evicted_full = 0;  // trackers evicted because max_connections was reached
  uint64_t conns_evicted_idle = 0;  // trackers evicted after idle_timeout_s
  uint64_t conns_muted = 0;         // upgraded or not HTTP: kernel told to stop sending
  uint64_t exec_records = 0;
  uint64_t transactions = 0;
  uint64_t unanswered = 0;  // requests whose connection closed without a response
  http::ConnStats parser;   // summed over closed and live connections
  // Databases and caches (PostgreSQL, MySQL, Redis).
  uint64_t db_conns_opened = 0;
  uint64_t db_operations = 0;
  uint64_t db_unanswered = 0;      // operations whose connection closed without a reply
  uint64_t db_server_skipped = 0;  // a database server's side of a connection whose client is
                                   // on this host (loopback): the client side is parsed
  uint64_t db_conns_invalid = 0;   // not the protocol recognised, or TLS after an SSL request
  db::ConnStats db;                // summed over closed and live database connections
};

/// What the tracker asks of the kernel side (implemented by CaptureLoader).
class KernelControl {
 public:
  virtual ~KernelControl() = default;
  /// Stop sending records of this connection (upgraded or not HTTP).
  virtual void Mute(uint32_t tgid, uint32_t fd, uint64_t gen) noexcept = 0;
  /// Its tracker was evicted: sniff its next bytes again and send a fresh open record when
  /// they start an HTTP message, so a long-idle keep-alive connection is picked up again.
  virtual void Rearm(uint32_t tgid, uint32_t fd, uint64_t gen) noexcept = 0;
};

class ConnTracker {
 public:
  ConnTracker(const config::LimitsConfig& limits, TransactionSink* sink,
              KernelControl* kernel = nullptr);
  ~ConnTracker();

  /// One ring-buffer record, as the kernel wrote it. Never throws; bad input is counted.
  void OnRecord(const void* data, size_t size) noexcept;

  /// Called for each process exec record (TLS library discovery). Must not block.
  void SetExecHandler(std::function<void(uint32_t pid)> fn) { on_exec_ = std::move(fn); }

  /// Which request bodies to keep a prefix of (http::Request/Response::body_prefix). Applies
  /// to connections opened afterwards; call before the first record. Not owned.
  void SetBodyPolicy(const http::BodyCapturePolicy* policy) { parser_limits_.body_policy = policy; }

  /// Evicts trackers idle for longer than the configured timeout (`now_ns` in kernel time).
  void Sweep(uint64_t now_ns) noexcept;

  size_t connections() const { return conns_.size(); }
  /// Counters including the parser counters of live connections.
  TrackerStats stats() const;

 private:
  struct ConnKey {
    uint32_t tgid;
    uint32_t fd;
    uint64_t gen;
    bool operator==(const ConnKey&) const = default;
  };
  struct ConnKeyHash {
    size_t operator()(const ConnKey& k) const noexcept {
      uint64_t h = (static_cast<uint64_t>(k.tgid) << 32 | k.fd) * 0x9E3779B97F4A7C15ull;
      return static_cast<size_t>(h ^ (k.gen * 0xC2B2AE3D27D4EB4Full));
    }
  };
  struct Conn {
    ConnMeta meta;
    http::HttpConnection http;
    std::unique_ptr<db::Parser> db;  // set for a database connection (http unused)
    uint32_t next_seq = 0;
    uint64_t last_ts = 0;
  };

  void OnOpen(const void* data, size_t size) noexcept;
  void OnData(const void* data, size_t size) noexcept;
  void OnClose(const void* data, size_t size) noexcept;
  void CheckSeq(Conn& c, uint32_t seq) noexcept;
  void Emit(Conn& c) noexcept;
  void EmitDb(Conn& c) noexcept;
  void FeedDb(Conn& c, const redtap_data_event& ev, const void* data) noexcept;
  void Retire(const ConnKey& key, Conn& c) noexcept;
  void EvictOldest() noexcept;

  config::LimitsConfig limits_;
  http::Limits parser_limits_;
  TransactionSink* sink_;
  KernelControl* kernel_;
  std::function<void(uint32_t)> on_exec_;
  std::unordered_map<ConnKey, std::unique_ptr<Conn>, ConnKeyHash> conns_;
  std::vector<http::Transaction> out_;
  std::vector<db::Operation> db_out_;
  db::Limits db_limits_;
  TrackerStats stats_;
  http::ConnStats retired_parser_;  // parser counters of connections already gone
  db::ConnStats retired_db_;
};

}  // namespace redtap

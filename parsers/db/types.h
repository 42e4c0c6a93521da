// SPDX-License-Identifier: Apache-2.0
// Database and cache operations decoded from one connection's two byte streams: the type
// every database parser (PostgreSQL, MySQL/MariaDB, Redis) produces and every sink reads.
// Pure: bytes in, operations out; no clock, no I/O, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace redtap::db {

/// db.system.name values (OpenTelemetry database semantic conventions).
enum class System : uint8_t { kPostgresql = 1, kMysql = 2, kRedis = 3 };
/// "postgresql", "mysql", "redis".
std::string_view SystemName(System s) noexcept;

/// Which side bytes belong to: kRequest = client to server (frontend), kResponse = server to
/// client. The caller maps kernel directions to these by role.
enum class Direction : uint8_t { kRequest = 0, kResponse = 1 };

/// Bounds on the text an operation carries (bytes).
inline constexpr size_t kMaxQueryText = 1024;  // db.query.text, cut at a token boundary
inline constexpr size_t kMaxSummary = 128;     // db.query.summary
inline constexpr size_t kMaxNameBytes = 64;    // db.operation.name, db.collection.name
inline constexpr size_t kMaxTail = 64;         // Parser::FeedTail: the end of a large record

/// One operation: a client command and the server's reply to it. Nothing in it is a value
/// the client sent or the server returned: literals are replaced by '?', only keywords,
/// identifiers and error codes are kept.
struct Operation {
  System system = System::kPostgresql;
  /// db.operation.name, upper case, never empty: "SELECT", "INSERT", "BEGIN", "COPY",
  /// "EXECUTE" (a prepared statement whose text was not seen), "GET", "SET", "MULTI", ...
  std::string operation;
  /// db.collection.name: the table when the statement names exactly one; "" otherwise
  /// (and always "" for Redis).
  std::string collection;
  /// db.query.text with every literal replaced by '?', comments removed, whitespace folded,
  /// at most kMaxQueryText bytes. Redis: the command name then one '?' per argument.
  std::string query_text;
  /// db.query.summary: "{operation} {collection}" ("SELECT orders", "COMMIT", "GET").
  std::string query_summary;
  /// db.response.status_code: PostgreSQL's SQLSTATE ("23505"), MySQL's error number
  /// ("1062"), the Redis error prefix ("WRONGTYPE", "ERR"); "" on success.
  std::string status_code;
  /// The metric's error_type: PostgreSQL's SQLSTATE class ("23"), MySQL's error number,
  /// the Redis error prefix; "" on success.
  std::string error_type;
  uint64_t request_ts = 0;   // ns, record holding the request's first byte
  uint64_t response_ts = 0;  // ns, record holding the reply's last byte (0 without reply)
  /// false when the connection closed (or a capture gap swallowed the reply) first.
  bool has_response = false;
  /// Execution of a prepared statement (PostgreSQL Bind/Execute, MySQL COM_STMT_EXECUTE).
  bool prepared = false;

  uint64_t DurationNs() const {
    return has_response && response_ts >= request_ts ? response_ts - request_ts : 0;
  }
};

/// Memory bounds of one connection's parser. Every one is enforced; going beyond is
/// counted, never grows memory.
struct Limits {
  size_t max_pending = 256;               // operations waiting for their reply (pipelining)
  size_t max_message_bytes = 1 << 20;     // a message buffered whole beyond this is skipped
  size_t max_buffered_bytes = 64 * 1024;  // bytes kept per direction while a message is cut
  size_t max_statements = 1024;           // prepared statements remembered per connection
};

/// Counters a connection adds to; the caller aggregates them. Plain integers, monotonic.
struct ConnStats {
  uint64_t requests = 0;            // client commands parsed
  uint64_t responses = 0;           // replies paired with a command
  uint64_t parse_errors = 0;        // bytes that are not this protocol where a message starts
  uint64_t gaps = 0;                // Gap() calls and uncaptured bytes that broke the framing
  uint64_t orphan_responses = 0;    // a reply with no command pending (mid-stream start)
  uint64_t pending_overflow = 0;    // commands dropped because max_pending was reached
  uint64_t lost_responses = 0;      // commands whose reply was lost to a gap (reported
                                    // without reply)
  uint64_t oversized = 0;           // messages above max_message_bytes (skipped, not parsed)
  uint64_t statements_evicted = 0;  // prepared statements forgotten (max_statements)

  void Add(const ConnStats& o) {
    requests += o.requests;
    responses += o.responses;
    parse_errors += o.parse_errors;
    gaps += o.gaps;
    orphan_responses += o.orphan_responses;
    pending_overflow += o.pending_overflow;
    lost_responses += o.lost_responses;
    oversized += o.oversized;
    statements_evicted += o.statements_evicted;
  }
};

/// One connection of one protocol. Feed it the bytes of each direction in order; completed
/// operations are appended to `out` in the order the client sent them.
class Parser {
 public:
  virtual ~Parser() = default;
  /// `payload` holds the first captured bytes of `len` bytes one syscall moved (len >=
  /// payload.size(): the rest was not captured). `ts_ns` is the record's time.
  virtual void Feed(Direction dir, std::string_view payload, uint64_t len, uint64_t ts_ns,
                    std::vector<Operation>* out) noexcept = 0;
  /// The last bytes of the record just fed (after Feed, same `dir` and `ts_ns`), when the
  /// record was longer than what was captured of its start: `tail` is its final
  /// tail.size() bytes (at most kMaxTail), not contiguous with the payload unless
  /// len == payload.size() + tail.size(). It lets a parser that lost the framing inside a large
  /// reply see how that reply ends (a PostgreSQL CommandComplete + ReadyForQuery, a MySQL
  /// terminator). Parsers that have no use for it ignore it.
  virtual void FeedTail(Direction dir, std::string_view tail, uint64_t ts_ns,
                        std::vector<Operation>* out) noexcept {
    (void)dir;
    (void)tail;
    (void)ts_ns;
    (void)out;
  }
  /// Records of `dir` were lost: resynchronise (commands pending across it are reported
  /// without reply and counted in lost_responses).
  virtual void Gap(Direction dir) noexcept = 0;
  /// The connection closed: commands still pending are reported with has_response = false.
  virtual void Close(uint64_t ts_ns, std::vector<Operation>* out) noexcept = 0;
  /// The bytes are not this protocol (too many parse errors): stop feeding it.
  virtual bool invalid() const noexcept = 0;
  virtual System system() const noexcept = 0;
  const ConnStats& stats() const { return stats_; }

 protected:
  ConnStats stats_;
};

std::unique_ptr<Parser> MakePostgresParser(const Limits& limits);
std::unique_ptr<Parser> MakeMysqlParser(const Limits& limits);
std::unique_ptr<Parser> MakeRedisParser(const Limits& limits);
std::unique_ptr<Parser> MakeParser(System s, const Limits& limits);

}  // namespace redtap::db

// SPDX-License-Identifier: Apache-2.0
// PostgreSQL frontend/backend protocol v3 (simple and extended query, COPY, startup and
// authentication), parsed from one connection's two byte streams into db::Operations.
//
// What an operation is:
//  - a simple Query ('Q'): one operation, whatever number of statements its string holds (the
//    summary is the first one's), completed by the ReadyForQuery that ends its reply; its
//    status is the SQLSTATE of the first ErrorResponse of that reply;
//  - an Execute ('E') of the extended protocol: the statement bound to the executed portal;
//    completed by CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse.
//    prepared = the statement is named, or was parsed in an earlier batch (Sync). A statement
//    whose Parse was not seen (the agent started after it) is "EXECUTE" with no text;
//  - a FunctionCall ('F', libpq's large-object fast path): "FUNCTION_CALL", no text;
//  - an error at Parse, Bind or Describe: the server skips everything up to Sync. The first
//    later Execute of the batch that uses the same statement carries the SQLSTATE; if there
//    is none (a syntax error at Parse, nothing executed), one operation is built from the
//    failing message's statement. Other Executes of the batch were not run: they are not
//    reported, only counted (skipped_executes()). An error at Execute fails that Execute.
// Startup, authentication (whose 'p' messages are never read), ParameterStatus,
// BackendKeyData, NoticeResponse and NotificationResponse are tracked or ignored, never
// operations. An SSLRequest or GSSENCRequest the server accepts makes the connection
// invalid(): the rest is encrypted.
//
// A statement the SQL summariser cannot name gets the operation "QUERY" (or "COPY" when the
// server answered with a COPY response): never a word taken from the text.
//
// Values never leave the parser: query texts go through sql::Summarize, bind parameters,
// DataRow, CopyData and password messages are skipped unread, and of an ErrorResponse only
// the SQLSTATE field ('C') is read. An error whose SQLSTATE is missing, malformed or not
// captured has error_type "_OTHER" and no status_code.
//
// Large replies: each syscall record carries only its first bytes (the capture cap), so a
// result set spanning records loses the framing of the response direction as soon as a
// DataRow header falls in an uncaptured tail. With exactly one operation pending (a Query, or
// an Execute with at most its Sync after it), later response records are scanned for a
// resynchronisation point: an offset from which every captured byte parses as a chain of
// backend messages consistent with that reply (DataRows with the result's column count and
// column lengths adding up exactly, CopyData, CommandComplete with a plausible tag,
// ErrorResponse fields, ReadyForQuery ending the record...). Two whole messages, or one
// ending the record, are needed; a ReadyForQuery must end its record. Parsing resumes there.
// What it completes is held until the client's next record (or Close, or a Gap): an invalid
// header before the ReadyForQuery, or anything but an asynchronous message after it, proves
// the chain was forged by row data; the resync is then undone and the search goes on. With several
// operations pending (a pipeline) nothing would tell whose reply a chain belongs to: the operations
// are reported without reply, as before, and so is any operation whose reply has no resync point
// before the client's next record. When a record's end is not captured, FeedTail's bytes are
// a resync point only if they end exactly with a successful reply's end ([CopyDone]
// CommandComplete ReadyForQuery, or EmptyQueryResponse ReadyForQuery), held the same way; an
// error there is too long to be seen whole, so such a reply stays lost. A Query whose ReadyForQuery
// follows a resync without a CommandComplete or ErrorResponse in between is also reported without
// reply: the lost bytes may have held its error.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "parsers/db/types.h"

namespace redtap::db {

class PostgresParser final : public Parser {
 public:
  explicit PostgresParser(const Limits& limits);
  ~PostgresParser() override;
  PostgresParser(const PostgresParser&) = delete;
  PostgresParser& operator=(const PostgresParser&) = delete;

  void Feed(Direction dir, std::string_view payload, uint64_t len, uint64_t ts_ns,
            std::vector<Operation>* out) noexcept override;
  void FeedTail(Direction dir, std::string_view tail, uint64_t ts_ns,
                std::vector<Operation>* out) noexcept override;
  void Gap(Direction dir) noexcept override;
  void Close(uint64_t ts_ns, std::vector<Operation>* out) noexcept override;
  bool invalid() const noexcept override;
  System system() const noexcept override { return System::kPostgresql; }

  /// Executes the server skipped because an earlier message of their batch failed: not
  /// operations (nothing ran), counted here.
  uint64_t skipped_executes() const noexcept;
  /// Prepared statements and named portals currently remembered (each map is bounded by
  /// Limits::max_statements).
  size_t statements() const noexcept;
  size_t portals() const noexcept;
  /// Times the response direction resynchronised inside a reply after lost framing (counted
  /// in ConnStats::gaps), and times such a resync was abandoned (a later header was invalid:
  /// the chain had been found inside row data).
  uint64_t resyncs() const noexcept;
  uint64_t resync_aborts() const noexcept;
  /// Resyncs made at the end of a record's uncaptured part (FeedTail), counted in resyncs()
  /// too.
  uint64_t tail_resyncs() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redtap::db

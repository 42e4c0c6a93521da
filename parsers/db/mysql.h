// SPDX-License-Identifier: Apache-2.0
// MySQL client/server protocol (MySQL 8, MariaDB 10.x), parsed from one connection's two byte
// streams into db::Operations.
//
// What an operation is: one client command the server answers.
//  - COM_QUERY: the statement summarised by sql::Summarize (operation, table, text); a text
//    the summariser cannot name is "QUERY" (as in the PostgreSQL parser: never a word taken
//    from the text). A multi-statement query or a CALL is one operation, completed by the
//    last result (the one without SERVER_MORE_RESULTS_EXISTS); an ERR ends it. Query
//    attributes (CLIENT_QUERY_ATTRIBUTES) in front of the text are skipped, never read.
//  - COM_STMT_PREPARE: "PREPARE", with the statement's table and text; the statement id of
//    the server's PREPARE_OK is remembered (at most Limits::max_statements, oldest
//    forgotten first).
//  - COM_STMT_EXECUTE (and MariaDB's COM_STMT_BULK_EXECUTE): the prepared statement's
//    operation, table and text, prepared = true. A statement whose prepare was not seen is
//    "EXECUTE" with no text. Id 0xFFFFFFFF (MariaDB: the statement prepared last, used by
//    pipelining connectors) is the last COM_STMT_PREPARE sent.
//  - COM_PING "PING", COM_INIT_DB "USE" (the schema name is not kept), COM_RESET_CONNECTION
//    "RESET_CONNECTION", COM_SET_OPTION "SET_OPTION", COM_STMT_RESET "STMT_RESET",
//    COM_FIELD_LIST "FIELD_LIST", COM_STATISTICS "STATISTICS", COM_PROCESS_KILL
//    "PROCESS_KILL"; other answered legacy commands (COM_CREATE_DB, COM_REFRESH, ...) "_OTHER".
// Not operations: the connection phase (greeting, HandshakeResponse, auth switch and more
// data, its OK or ERR) and COM_CHANGE_USER (a new authentication); COM_STMT_FETCH (rows of
// an executed statement's cursor); commands without a reply: COM_QUIT, COM_STMT_CLOSE (the
// id is forgotten), COM_STMT_SEND_LONG_DATA.
// An ERR sets status_code and error_type to the decimal error number ("1062"); an ERR whose
// number was not captured has error_type "_OTHER". MariaDB progress reports (ERR 0xFFFF) are
// not errors.
//
// The connection becomes invalid() when what follows cannot be read: an SSLRequest (TLS),
// compression (CLIENT_COMPRESS, zstd), replication and clone streams (COM_BINLOG_DUMP,
// COM_REGISTER_SLAVE, COM_CLONE, ...), MariaDB's COM_MULTI, or repeated garbage.
//
// Capabilities: CLIENT_DEPRECATE_EOF and CLIENT_QUERY_ATTRIBUTES are the intersection of the
// greeting's and the HandshakeResponse's. Started mid-stream (no greeting), both are unknown:
// DEPRECATE_EOF is learnt from the first result set (after the column definitions an EOF is
// 5 bytes, an OK at least 7), query attributes from the first query's bytes (SQL does not
// start with a control byte). The optional metadata byte of a column count packet
// (CLIENT_OPTIONAL_RESULTSET_METADATA, MARIADB_CLIENT_CACHE_METADATA) is recognised by the
// packet's length.
//
// LOCAL INFILE: the file's packets are skipped unread up to the client's empty packet; the
// server's OK or ERR completes the query.
//
// Large result sets: each syscall record carries only its first bytes (the capture cap), so a
// result spanning records loses the framing of the response direction as soon as a packet
// header falls in an uncaptured tail. With exactly one command pending (a COM_QUERY or
// COM_STMT_EXECUTE in the rows of a result set whose column count and DEPRECATE_EOF are
// known), later response records are searched (a bounded scan of each record's captured
// bytes) for a resync point: an offset from which packets chain with consecutive sequence ids,
// each a row of this result (text: exactly N length-encoded strings or NULLs filling the
// payload; binary: 0x00, a NULL bitmap with its reserved and trailing bits clear, values not
// checked), a terminator (EOF of 5 bytes, or OK 0xfe with DEPRECATE_EOF, with plausible status
// flags) or an ERR (a number >= 1000, '#', a SQLSTATE). Needed: two whole packets (three in the
// binary protocol), or one text row ending a fully captured record; a terminator ending the
// reply or an ERR must end a fully captured record, since nothing follows the reply's last
// packet. That holds for a terminator found alone after lost bytes too: an ERR in the lost
// bytes would have ended the reply, so the last terminator is the reply's status. A terminator
// with SERVER_MORE_RESULTS_EXISTS chains into the next result, which the normal parser reads
// (its first packet is checked); the rows of a result whose start was lost have another column
// count and are not searched for: such a reply is lost unless its final terminator ends a
// captured record. Parsing resumes at the resync point; what it completes is held until the
// client's next record (or Close, or a Gap): a sequence id or header that does not follow, or
// any response byte after the completion, proves the chain was found inside row data; the
// resync is undone and the search goes on (resyncs(), resync_aborts()). With several commands
// pending nothing would tell whose reply a chain belongs to: they are reported without reply,
// as is a reply without a resync point before the client's next record. The search runs within
// one Feed call's bytes (a record fed in pieces is searched piece by piece).
// Residual risk of a false status: a chain's first sequence id is not known (packets were
// lost), so a row value can carry a valid forged chain. It is caught unless its terminator or
// ERR ends a record after which the server writes nothing, i.e. the real reply ends there too:
// the real last packet (an ERR's message, an OK's info) would have to end with the nine bytes
// of a forged EOF ("05 00 00 ss fe ww ww st st") or a whole forged OK/ERR; MySQL escapes such
// bytes in error messages. A server-initiated ERR right after a reply (e.g. an interaction
// timeout before the client's next command) makes a correct resync be undone: lost.
// The reply's last record itself cut by the capture (clients read ~16 KiB at a time) leaves no
// captured packet to resync at: FeedTail gives that record's last bytes. While searching for
// a resync point (the same conditions), a tail ending with a whole final terminator (an EOF of
// 5 bytes, or with DEPRECATE_EOF an OK whose length ends it exactly at the tail's end, its
// fields well formed), with plausible status flags and no SERVER_MORE_RESULTS_EXISTS, completes
// the command with success at that record's time, held and undone as a resync's completion.
// Anything else in the tail leaves the search (and the loss) as it was. Request tails are
// ignored.
//
// Values never leave the parser: query texts go through sql::Summarize; HandshakeResponse
// (only its capability flags are read), auth data, execute parameters, long data, rows and
// file contents are skipped unread; of an ERR only the error number is read.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "parsers/db/types.h"

namespace redtap::db {

class MysqlParser final : public Parser {
 public:
  explicit MysqlParser(const Limits& limits);
  ~MysqlParser() override;
  MysqlParser(const MysqlParser&) = delete;
  MysqlParser& operator=(const MysqlParser&) = delete;

  void Feed(Direction dir, std::string_view payload, uint64_t len, uint64_t ts_ns,
            std::vector<Operation>* out) noexcept override;
  void FeedTail(Direction dir, std::string_view tail, uint64_t ts_ns,
                std::vector<Operation>* out) noexcept override;
  void Gap(Direction dir) noexcept override;
  void Close(uint64_t ts_ns, std::vector<Operation>* out) noexcept override;
  bool invalid() const noexcept override;
  System system() const noexcept override { return System::kMysql; }

  /// Prepared statements currently remembered (bounded by Limits::max_statements).
  size_t statements() const noexcept;
  /// CLIENT_DEPRECATE_EOF as negotiated or learnt: 1 on, 0 off, -1 not known yet.
  int deprecate_eof() const noexcept;
  /// Times the response direction resynchronised inside a result set after lost framing
  /// (counted in ConnStats::gaps; a final terminator found by FeedTail counts too), and times such
  /// a resync was abandoned (later bytes showed the chain had been found inside row data).
  uint64_t resyncs() const noexcept;
  uint64_t resync_aborts() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redtap::db

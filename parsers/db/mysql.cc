// SPDX-License-Identifier: Apache-2.0
// MySQL protocol: packet framing of both directions (3-byte length and sequence id; a payload
// of 0xFFFFFF bytes goes on in the next packet), the connection phase, the replies of the
// command phase (OK, ERR, EOF, result sets, PREPARE_OK) and the queue that pairs them with
// the client's commands. A message is classified from its first bytes (kept in a small head
// buffer); the rest of it is skipped unread, captured or not.
#include "parsers/db/mysql.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

#include "parsers/db/sql.h"

namespace redtap::db {
namespace {

constexpr std::string_view kFallbackOperation = "QUERY";  // the summariser found no keyword
constexpr std::string_view kUnseenStatement = "EXECUTE";  // its prepare was not seen
constexpr std::string_view kPrepareOperation = "PREPARE";
constexpr std::string_view kOtherCommand = "_OTHER";
constexpr std::string_view kUnknownError = "_OTHER";  // an ERR whose number was not captured

constexpr uint32_t kMaxPacket = 0xFFFFFF;
constexpr size_t kHeadMax = 160;   // a greeting's version string and capability flags
constexpr size_t kReplyHead = 32;  // OK / EOF: header, two length-encoded ints, status flags
constexpr int kMaxConsecutiveErrors = 4;
constexpr size_t kMaxQueryAttributes = 1024;

constexpr uint32_t kCapCompress = 0x20;
constexpr uint32_t kCapProtocol41 = 0x200;
constexpr uint32_t kCapSsl = 0x800;
constexpr uint32_t kCapDeprecateEof = 0x01000000;
constexpr uint32_t kCapZstd = 0x04000000;
constexpr uint32_t kCapQueryAttributes = 0x08000000;

constexpr uint16_t kStatusMoreResults = 0x0008;
constexpr uint16_t kStatusCursorExists = 0x0040;
constexpr uint16_t kStatusSessionStateChanged = 0x4000;

constexpr uint64_t kMaxColumns = 4096;  // MySQL's limit of a table's columns

constexpr uint32_t kLastPrepared = 0xFFFFFFFF;  // MariaDB: the statement prepared last

enum Cmd : uint8_t {
  kComQuit = 0x01,
  kComInitDb = 0x02,
  kComQuery = 0x03,
  kComFieldList = 0x04,
  kComStatistics = 0x09,
  kComProcessKill = 0x0c,
  kComPing = 0x0e,
  kComChangeUser = 0x11,
  kComStmtPrepare = 0x16,
  kComStmtExecute = 0x17,
  kComStmtSendLongData = 0x18,
  kComStmtClose = 0x19,
  kComStmtReset = 0x1a,
  kComSetOption = 0x1b,
  kComStmtFetch = 0x1c,
  kComResetConnection = 0x1f,
  kComStmtBulkExecute = 0xfa,
};

uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Le24(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16);
}
uint32_t Le32(const uint8_t* p) { return Le24(p) | (uint32_t{p[3]} << 24); }

// A length-encoded integer at p[*pos..n): false when it is not one or is cut.
bool LenEnc(const uint8_t* p, size_t n, size_t* pos, uint64_t* v) {
  if (*pos >= n) return false;
  const uint8_t b = p[*pos];
  size_t size = 0;
  if (b < 0xfb) {
    *v = b;
    ++*pos;
    return true;
  }
  if (b == 0xfc) {
    size = 2;
  } else if (b == 0xfd) {
    size = 3;
  } else if (b == 0xfe) {
    size = 8;
  } else {
    return false;  // 0xfb (NULL) and 0xff are not integers
  }
  if (n - *pos < size + 1) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < size; ++i) x |= uint64_t{p[*pos + 1 + i]} << (8 * i);
  *v = x;
  *pos += size + 1;
  return true;
}

// Whether a message of `len` bytes starting with `c` is a command; lengths as the server
// checks them.
bool ValidCommand(uint8_t c, uint64_t len) {
  switch (c) {
    case kComQuit:
    case kComStatistics:
    case 0x0a:  // COM_PROCESS_INFO
    case 0x0d:  // COM_DEBUG
    case kComPing:
    case 0x0f:  // COM_TIME
    case kComResetConnection:
      return len == 1;
    case kComInitDb:
    case 0x05:  // COM_CREATE_DB, COM_DROP_DB
    case 0x06:
    case kComFieldList:
    case kComChangeUser:
      return len >= 2;
    case kComQuery:
    case kComStmtPrepare:
      return len >= 1;
    case 0x07:  // COM_REFRESH
      return len == 2;
    case 0x08:  // COM_SHUTDOWN
      return len <= 2;
    case kComProcessKill:
    case kComStmtClose:
    case kComStmtReset:
      return len == 5;
    case kComStmtExecute:
      return len >= 10;
    case kComStmtSendLongData:
      return len >= 7;
    case kComSetOption:
      return len == 3;
    case kComStmtFetch:
      return len == 9;
    case kComStmtBulkExecute:
      return len >= 7;
    case 0x12:  // COM_BINLOG_DUMP, COM_TABLE_DUMP, COM_REGISTER_SLAVE, COM_BINLOG_DUMP_GTID
    case 0x13:
    case 0x15:
    case 0x1e:
    case 0x20:  // COM_CLONE, COM_SUBSCRIBE_GROUP_REPLICATION_STREAM
    case 0x21:
    case 0xfe:  // MariaDB's COM_MULTI
      return len >= 1;
    default:
      return false;
  }
}

// Commands after which the stream is not made of replies we can read.
bool Unreadable(uint8_t c) {
  return c == 0x12 || c == 0x13 || c == 0x15 || c == 0x1e || c == 0x20 || c == 0x21 || c == 0xfe;
}

std::string_view CommandName(uint8_t c) {
  switch (c) {
    case kComInitDb:
      return "USE";
    case kComFieldList:
      return "FIELD_LIST";
    case kComStatistics:
      return "STATISTICS";
    case kComProcessKill:
      return "PROCESS_KILL";
    case kComPing:
      return "PING";
    case kComStmtReset:
      return "STMT_RESET";
    case kComSetOption:
      return "SET_OPTION";
    case kComResetConnection:
      return "RESET_CONNECTION";
    default:
      return kOtherCommand;
  }
}

// Bytes of a binary-protocol value of `type` at p[*pos..n) skipped (never read); false when
// the type is unknown or the value is cut.
bool SkipBinaryValue(uint8_t type, const uint8_t* p, size_t n, size_t* pos) {
  size_t size = 0;
  switch (type) {
    case 6:  // NULL
      return true;
    case 1:  // TINY
      size = 1;
      break;
    case 2:   // SHORT
    case 13:  // YEAR
      size = 2;
      break;
    case 3:  // LONG, FLOAT, INT24
    case 4:
    case 9:
      size = 4;
      break;
    case 5:  // DOUBLE, LONGLONG
    case 8:
      size = 8;
      break;
    case 7:  // TIMESTAMP, DATE, TIME, DATETIME and their variants: a one-byte length
    case 10:
    case 11:
    case 12:
    case 14:
    case 17:
    case 18:
    case 19:
      if (*pos >= n) return false;
      size = size_t{p[*pos]} + 1;
      break;
    case 0:  // DECIMAL, VARCHAR, BIT, JSON and the string types: length-encoded strings
    case 15:
    case 16:
    case 245:
    case 246:
    case 247:
    case 248:
    case 249:
    case 250:
    case 251:
    case 252:
    case 253:
    case 254:
    case 255: {
      uint64_t len = 0;
      if (!LenEnc(p, n, pos, &len)) return false;
      if (len > n - *pos) return false;
      size = static_cast<size_t>(len);
      break;
    }
    default:
      return false;
  }
  if (size > n - *pos) return false;
  *pos += size;
  return true;
}

// The offset of the SQL text of a COM_QUERY body (after the command byte) sent with
// CLIENT_QUERY_ATTRIBUTES: the attributes' names and values are stepped over, never copied.
// false when they cannot be (cut by the capture, unknown type).
bool SkipQueryAttributes(std::string_view body, size_t* text_at) {
  const auto* p = reinterpret_cast<const uint8_t*>(body.data());
  const size_t n = body.size();
  size_t pos = 0;
  uint64_t count = 0;
  uint64_t sets = 0;
  if (!LenEnc(p, n, &pos, &count) || !LenEnc(p, n, &pos, &sets)) return false;
  if (count == 0) {
    *text_at = pos;
    return true;
  }
  if (count > kMaxQueryAttributes) return false;
  const size_t bitmap_at = pos;
  pos += static_cast<size_t>((count + 7) / 8);
  if (pos >= n || p[pos] != 1) return false;  // the types must be sent
  ++pos;
  uint8_t types[kMaxQueryAttributes];
  for (size_t i = 0; i < count; ++i) {
    if (n - pos < 2) return false;
    types[i] = p[pos];
    pos += 2;
    uint64_t name_len = 0;
    if (!LenEnc(p, n, &pos, &name_len) || name_len > n - pos) return false;
    pos += static_cast<size_t>(name_len);
  }
  for (size_t i = 0; i < count; ++i) {
    if (p[bitmap_at + i / 8] & (1u << (i % 8))) continue;  // NULL: no value
    if (!SkipBinaryValue(types[i], p, n, &pos)) return false;
  }
  *text_at = pos;
  return true;
}

// What a statement is, summarised once and shared by the commands that run it.
struct Stmt {
  std::string operation;
  std::string collection;
  std::string text;
  std::string summary;
};
using StmtPtr = std::shared_ptr<const Stmt>;

StmtPtr MakeStmt(std::string_view text) {
  sql::Summary s = sql::Summarize(text, sql::Dialect::kMysql);
  auto st = std::make_shared<Stmt>();
  st->operation = s.operation.empty() ? std::string(kFallbackOperation) : std::move(s.operation);
  st->collection = std::move(s.collection);
  st->text = std::move(s.text);
  st->summary = std::move(s.summary);
  // The summariser bounds these; the bounds of types.h are the contract, so enforce them.
  if (st->operation.size() > kMaxNameBytes) st->operation.resize(kMaxNameBytes);
  if (st->collection.size() > kMaxNameBytes) st->collection.clear();
  if (st->text.size() > kMaxQueryText) st->text.resize(kMaxQueryText);
  if (st->summary.empty() || st->summary.size() > kMaxSummary) {
    st->summary = st->operation;
    if (!st->collection.empty()) st->summary += ' ' + st->collection;
  }
  return st;
}

// Statement ids -> statements, the oldest forgotten first beyond `max`.
class StmtMap {
 public:
  void Put(uint32_t id, StmtPtr v, size_t max, uint64_t* evicted) {
    Erase(id);
    if (max == 0) {
      ++*evicted;
      return;
    }
    while (order_.size() >= max) {
      index_.erase(order_.front().first);
      order_.pop_front();
      ++*evicted;
    }
    order_.emplace_back(id, std::move(v));
    index_.emplace(id, std::prev(order_.end()));
  }
  StmtPtr Get(uint32_t id) const {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : it->second->second;
  }
  void Erase(uint32_t id) {
    auto it = index_.find(id);
    if (it == index_.end()) return;
    order_.erase(it->second);
    index_.erase(it);
  }
  void Clear() {
    index_.clear();
    order_.clear();
  }
  size_t size() const { return order_.size(); }

 private:
  std::list<std::pair<uint32_t, StmtPtr>> order_;
  std::unordered_map<uint32_t, std::list<std::pair<uint32_t, StmtPtr>>::iterator> index_;
};

// The shape of the reply a command gets.
enum class Kind : uint8_t {
  kAuth,        // authentication exchange until OK or ERR (connection phase, COM_CHANGE_USER)
  kCommand,     // OK, ERR, EOF or result sets
  kPrepare,     // PREPARE_OK and definitions, or ERR
  kFieldList,   // column definitions up to an EOF
  kStatistics,  // one string packet
  kFetch,       // binary rows up to an EOF
};

// A command waiting for its reply.
struct Item {
  Kind kind = Kind::kCommand;
  bool op = false;       // reported as an operation
  bool dropped = false;  // not reported (max_pending): kept only to pair its reply
  bool prepared = false;
  bool binary = false;    // result rows in the binary protocol (COM_STMT_EXECUTE)
  uint8_t reply_seq = 1;  // sequence id of the reply's first packet
  uint64_t request_ts = 0;
  StmtPtr stmt;
  std::string_view name;  // the command's own name when it has no statement
};

struct Stream {
  enum class State : uint8_t { kHeader, kBody, kLost };
  State state = State::kHeader;
  bool resync = false;  // the current message starts a record after lost framing
  // Framing was lost inside the record of time lost_ts: later pieces of it are dropped.
  bool lost_in_record = false;
  uint64_t lost_ts = 0;
  uint8_t hdr[4] = {};
  uint8_t hdr_len = 0;
  uint8_t seq = 0;         // the current packet's
  uint64_t remaining = 0;  // payload bytes of the current packet still to come
  bool more = false;       // the current packet is 0xFFFFFF bytes: the payload goes on
  bool in_msg = false;     // the next header continues the current message
  // The message (one payload over one or more packets).
  uint64_t first_ts = 0;
  uint32_t first_len = 0;
  uint8_t first_seq = 0;
  uint8_t head[kHeadMax] = {};
  size_t head_len = 0;
  size_t head_need = 1;
  bool classified = false;

  void NextMessage() {
    state = State::kHeader;
    hdr_len = 0;
    remaining = 0;
    more = false;
    in_msg = false;
    head_len = 0;
    head_need = 1;
    classified = false;
  }
};

enum class Tri : int8_t { kUnknown = -1, kNo = 0, kYes = 1 };

// ---- Resynchronisation inside a result set ----
//
// What the chain validator knows of the result set being searched.
struct ChainCtx {
  uint64_t cols = 0;
  bool binary = false;
  bool deprecate_eof = false;
};

// Status flags a terminator of rows may carry: none of the unused bit 0x0004, CURSOR_EXISTS
// (only after definitions) or the undefined 0x8000.
bool PlausibleStatus(uint16_t status) { return (status & 0x8044) == 0; }

enum class Pkt : uint8_t { kBad, kRow, kMore, kFinal };

// One packet's payload (`have` captured of `total`) against the rows phase of the result set:
// a row, a terminator (kMore: SERVER_MORE_RESULTS_EXISTS) or an ERR. A terminator or ERR must
// be captured whole; a row only as far as captured.
Pkt ChainPacket(const uint8_t* b, size_t have, size_t total, const ChainCtx& c, size_t* steps) {
  if (have == 0) return total == 0 ? Pkt::kBad : Pkt::kRow;
  const uint8_t h = b[0];
  if (h == 0xff) {
    // ERR: error number, '#', SQLSTATE (5 digits or capitals), message (never read).
    if (have != total || total < 9 || b[3] != '#') return Pkt::kBad;
    const uint16_t code = Le16(b + 1);
    if (code < 1000 || code == 0xffff) return Pkt::kBad;
    for (size_t k = 4; k < 9; ++k) {
      if (!((b[k] >= '0' && b[k] <= '9') || (b[k] >= 'A' && b[k] <= 'Z'))) return Pkt::kBad;
    }
    return Pkt::kFinal;
  }
  if (h == 0xfe) {  // a row starts with 0xfe only in a 0xffffff packet, refused by the caller
    if (have != total) return Pkt::kBad;
    uint16_t status = 0;
    if (!c.deprecate_eof) {
      if (total != 5) return Pkt::kBad;  // EOF: header, warnings, status
      status = Le16(b + 3);
    } else {
      size_t pos = 1;  // OK: header, affected rows, last insert id, status, warnings, info
      uint64_t v = 0;
      if (total < 7 || !LenEnc(b, total, &pos, &v) || !LenEnc(b, total, &pos, &v) ||
          total - pos < 4)
        return Pkt::kBad;
      status = Le16(b + pos);
    }
    if (!PlausibleStatus(status)) return Pkt::kBad;
    return (status & kStatusMoreResults) ? Pkt::kMore : Pkt::kFinal;
  }
  if (c.binary) {
    // 0x00, a NULL bitmap whose two first bits are reserved (0) and whose bits after the last
    // column are 0, then the values (their types are not known: not checked).
    const size_t nb = static_cast<size_t>((c.cols + 9) / 8);
    if (h != 0x00 || total < 1 + nb) return Pkt::kBad;
    if (have < 1 + nb) return Pkt::kRow;
    if (b[1] & 0x03) return Pkt::kBad;
    const uint64_t bits = c.cols + 2;
    if (bits % 8 != 0 && (b[nb] >> (bits % 8)) != 0) return Pkt::kBad;
    bool all_null = true;
    for (uint64_t k = 2; k < bits && all_null; ++k) {
      all_null = (b[1 + k / 8] >> (k % 8)) & 1;
    }
    if (all_null != (total == 1 + nb)) return Pkt::kBad;  // a value is at least a byte
    return Pkt::kRow;
  }
  // Text row: exactly `cols` length-encoded strings or NULLs (0xfb), filling the payload.
  size_t pos = 0;
  for (uint64_t k = 0; k < c.cols; ++k) {
    if (*steps == 0) return Pkt::kBad;
    --*steps;
    if (pos >= total) return Pkt::kBad;
    if (pos >= have) return Pkt::kRow;  // the rest is not captured: consistent so far
    if (b[pos] == 0xfb) {
      ++pos;
      continue;
    }
    if (b[pos] == 0xff) return Pkt::kBad;
    uint64_t n = 0;
    if (!LenEnc(b, have, &pos, &n)) return have < total ? Pkt::kRow : Pkt::kBad;
    if (n > total - pos) return Pkt::kBad;
    pos += static_cast<size_t>(n);
  }
  return pos == total ? Pkt::kRow : Pkt::kBad;
}

// Whether a chain of packets starting at q[o] (q: `have` captured bytes of a record's
// `total`) belongs to the rows phase: consecutive sequence ids, each payload valid; at least
// `need` whole packets, or one text row ending exactly at the end of a fully captured
// record; a terminator or ERR ending the result must end a fully captured record (nothing
// follows the last packet of a reply).
bool ValidChain(const uint8_t* q, size_t have, uint64_t total, size_t o, const ChainCtx& c,
                size_t* steps) {
  const int need = c.binary ? 3 : 2;
  int whole = 0;
  size_t at = o;
  uint8_t seq = 0;
  bool after_more = false;
  for (;;) {
    if (have - at < 4) {
      // The captured bytes end here (a cut header may go on in the next record).
      if (at == have && have == total && whole >= 1 && !c.binary) return true;
      return whole >= need;
    }
    if (*steps == 0) return false;
    --*steps;
    const uint32_t plen = Le24(q + at);
    const uint8_t s = q[at + 3];
    if (at != o && s != static_cast<uint8_t>(seq + 1)) return false;
    if (plen == kMaxPacket) return false;  // rows of 16 MiB and more are not validated
    const size_t bh = std::min<size_t>(plen, have - at - 4);
    const bool w = bh == plen;
    if (at == o && !w) return false;  // a chain starts with a whole packet
    if (w && have - at - 4 - plen >= 4) {
      // Cheap first: the next header's sequence id.
      if (q[at + 4 + plen + 3] != static_cast<uint8_t>(s + 1)) return false;
    }
    if (after_more) {
      // The next result's first packet: a column count, an OK or an ERR; the grammar from
      // there is the normal parser's.
      const uint8_t b0 = bh > 0 ? q[at + 4] : 0;
      if (plen == 0 || b0 == 0xfb || b0 == 0xfe) return false;
      return whole + 1 >= need;
    }
    const Pkt k = ChainPacket(q + at + 4, bh, plen, c, steps);
    if (k == Pkt::kBad) return false;
    if (k == Pkt::kFinal) return at + 4 + plen == have && have == total;
    if (!w) return whole >= need;
    ++whole;
    seq = s;
    at += 4 + plen;
    if (k == Pkt::kMore) after_more = true;
  }
}

// An OK packet's payload (`total` bytes, captured whole) ending rows with DEPRECATE_EOF:
// 0xfe, affected rows, last insert id, status, warnings, then nothing, or the info string and,
// when the session state changed (then required), the state block, filling the payload
// exactly.
bool ValidTailOk(const uint8_t* b, size_t total, uint16_t* status) {
  size_t pos = 1;
  uint64_t v = 0;
  if (total < 7 || b[0] != 0xfe || !LenEnc(b, total, &pos, &v) || !LenEnc(b, total, &pos, &v) ||
      total - pos < 4)
    return false;
  *status = Le16(b + pos);
  pos += 4;
  // A server that reports session state changes sends them (after the info).
  if (pos == total) return (*status & kStatusSessionStateChanged) == 0;
  if (!LenEnc(b, total, &pos, &v) || v > total - pos) return false;  // info
  pos += static_cast<size_t>(v);
  if (*status & kStatusSessionStateChanged) {
    if (!LenEnc(b, total, &pos, &v) || v != total - pos) return false;
    pos += static_cast<size_t>(v);
  }
  return pos == total;
}

// Whether `t`, the last bytes of a response record, ends with a whole terminator of rows whose
// status flags are plausible and without SERVER_MORE_RESULTS_EXISTS. Its sequence id cannot be
// checked (the packets before it were lost). With DEPRECATE_EOF, every offset whose 3-byte
// length makes an OK end exactly at the end is a candidate; one of them saying more results
// follow makes the end ambiguous: no.
bool TailEndsReply(std::string_view t, bool deprecate_eof) {
  const auto* q = reinterpret_cast<const uint8_t*>(t.data());
  const size_t n = t.size();
  if (!deprecate_eof) {
    if (n < 9) return false;
    const uint8_t* e = q + n - 9;  // 05 00 00 seq fe warnings status
    if (Le24(e) != 5 || e[4] != 0xfe) return false;
    const uint16_t status = Le16(e + 7);
    return PlausibleStatus(status) && (status & kStatusMoreResults) == 0;
  }
  bool found = false;
  for (size_t o = 0; o + 11 <= n; ++o) {
    if (Le24(q + o) != n - o - 4) continue;
    uint16_t status = 0;
    if (!ValidTailOk(q + o + 4, n - o - 4, &status) || !PlausibleStatus(status)) continue;
    if (status & kStatusMoreResults) return false;
    found = true;
  }
  return found;
}

}  // namespace

struct MysqlParser::Impl {
  Impl(const Limits& l, ConnStats* s) : limits(l), stats(*s) {}

  Limits limits;
  ConnStats& stats;
  bool invalid = false;
  int consecutive_errors = 0;

  Stream req;
  Stream resp;

  // Connection phase and capabilities.
  bool greeted = false;
  bool req_seen = false;          // a request message was parsed
  bool greeting_msg = false;      // the response message being read is the greeting
  bool expect_handshake = false;  // the next request message is the HandshakeResponse
  uint32_t server_caps = 0;
  bool server_caps_known = false;
  Tri deprecate_eof = Tri::kUnknown;
  Tri query_attrs = Tri::kUnknown;

  // The request message being read.
  uint8_t cmd = 0;
  bool cmd_data = false;  // auth data or file content, not a command
  bool collect = false;   // its text is collected (COM_QUERY, COM_STMT_PREPARE)
  bool text_over = false;
  std::string text;
  bool infile = false;    // LOCAL INFILE: client packets are the file until an empty one
  size_t auth_items = 0;  // kAuth items queued: client packets with seq != 0 are auth data

  StmtMap statements;
  StmtPtr last_prepared;

  // Replies pending, oldest first, and the state of the head's reply.
  std::deque<Item> items;
  size_t ops_pending = 0;
  bool await_request = false;  // pairing lost: replies are dropped until the client sends
  enum class Rs : uint8_t { kStart, kDefs, kAfterDefs, kRows, kPrepDefs, kPrepEof };
  Rs rs = Rs::kStart;
  bool rs_started = false;  // a packet of the head's reply was read: expect_seq is set
  uint8_t expect_seq = 0;
  uint64_t defs_left = 0;
  uint64_t columns = 0;          // of the current result set: what a resync checks rows against
  uint32_t prep_blocks[2] = {};  // parameter and column definitions of a PREPARE_OK
  int prep_block = 0;
  enum class Finish : uint8_t { kNone, kOk, kError };
  Finish finish = Finish::kNone;  // the message being read ends the head's reply
  bool err_known = false;
  uint16_t err_code = 0;
  // A prepare's reply ended with its last definition while DEPRECATE_EOF is unknown: an EOF
  // may still follow; the next reply packet tells.
  bool tentative = false;
  uint64_t tentative_ts = 0;

  // Response framing lost in the rows of the reply of the one command pending: records are
  // searched for a resync point until the client's next record.
  bool hunting = false;
  bool resynced = false;  // parsing from a resync point, the reply not complete yet
  // The reply completed from a resync point: any later response byte before the client's
  // next record proves the chain was found inside row data.
  bool held = false;
  std::vector<Operation> held_ops;  // delivered when confirmed, dropped when abandoned
  struct Snapshot {                 // what a resync changes, restored when it is abandoned
    std::deque<Item> items;
    size_t ops_pending = 0;
    uint64_t responses = 0;
    uint64_t columns = 0;
  } snapshot;
  uint64_t resyncs = 0;
  uint64_t resync_aborts = 0;

  std::vector<Operation> deferred;  // completed by Gap(), which has no output
  bool in_feed = false;             // inside Feed(), at a record of time feed_ts
  uint64_t feed_ts = 0;
  // The last record fed was a response record of time cut_ts longer than its capture: a
  // FeedTail of that time gives its end.
  bool cut = false;
  uint64_t cut_ts = 0;

  Stream& StreamOf(Direction d) { return d == Direction::kRequest ? req : resp; }

  void Feed(Direction dir, std::string_view p, uint64_t len, uint64_t ts,
            std::vector<Operation>* out);
  void Header(Direction dir, uint64_t ts, std::vector<Operation>* out);
  void Payload(Direction dir, std::string_view data, std::vector<Operation>* out);
  void EndPacket(Direction dir, uint64_t ts, std::vector<Operation>* out);
  void Classify(Direction dir, bool truncated, std::vector<Operation>* out);
  void ClassifyRequest(bool truncated, std::vector<Operation>* out);
  void ClassifyResponse(bool truncated, std::vector<Operation>* out);
  void Reply(bool truncated, std::vector<Operation>* out);
  void Terminator(bool truncated);
  bool Status(uint16_t* status) const;
  void NextPrepBlock();
  void EndRequest(std::vector<Operation>* out);
  void EndResponse(uint64_t ts, std::vector<Operation>* out);
  std::string_view QueryText();
  bool Want(Stream& s, size_t n, bool truncated);
  void ParseError(Direction dir, std::vector<Operation>* out);
  void Lose(Direction dir, std::vector<Operation>* out);
  void LostHeader(Direction dir, std::vector<Operation>* out);
  void SetAwait();
  bool CanHunt() const;
  void Hunt();
  size_t FindResync(std::string_view p, size_t from, uint64_t len, size_t* steps) const;
  void Resync(uint8_t seq);
  void Abandon();
  void Commit(std::vector<Operation>* out);
  void FeedTail(std::string_view tail, uint64_t ts, std::vector<Operation>* out);
  void Drain(bool lost, std::vector<Operation>* out);
  void Push(Item&& it, std::vector<Operation>* out);
  void Pop();
  void ResetReply();
  void Complete(uint64_t ts, std::vector<Operation>* out);
  void Emit(const Item& it, bool has_response, uint64_t response_ts, bool error,
            std::vector<Operation>* out);
};

// ---- Framing ----

void MysqlParser::Impl::Feed(Direction dir, std::string_view p, uint64_t len, uint64_t ts,
                             std::vector<Operation>* out) {
  Stream& s = StreamOf(dir);
  if (len < p.size()) len = p.size();
  if (dir == Direction::kRequest) {
    // The client moved on: what a resync completed stands; with no resync point, the reply
    // is lost.
    Commit(out);
    if (hunting) {
      hunting = false;
      Lose(Direction::kResponse, out);
    }
  }
  const bool hunt = dir == Direction::kResponse && hunting;
  if (s.state == Stream::State::kLost && !hunt) {
    // Replies to commands already reported lost: wait until the client sends a command,
    // then resynchronise at the start of the next record (clients wait for replies).
    if (dir == Direction::kResponse && await_request) return;
    // The rest of the record in which framing was lost (fed in pieces) starts nothing.
    if (s.lost_in_record && ts == s.lost_ts) return;
    s.NextMessage();
    s.resync = true;
    s.lost_in_record = false;
  }
  size_t i = 0;
  // Bounds the resync search of this record: a few walks over its captured bytes.
  size_t steps = 8 * p.size() + 1024;
  size_t resync_at = std::string_view::npos;  // the last resync point found in this record
  for (;;) {
    if (dir == Direction::kResponse && hunting) {
      const size_t at = FindResync(p, i, len, &steps);
      if (at == std::string_view::npos) return;
      Resync(static_cast<uint8_t>(p[at + 3]));
      resync_at = at;
      i = at;
    }
    const uint64_t aborts = resync_aborts;
    while (i < p.size() && !invalid && s.state != Stream::State::kLost) {
      if (dir == Direction::kResponse && held) {
        Abandon();  // the server wrote after the last packet of the reply: it was not
        break;
      }
      if (s.state == Stream::State::kHeader) {
        if (s.hdr_len == 0 && !s.in_msg) s.first_ts = ts;
        const size_t take = std::min<size_t>(4 - s.hdr_len, p.size() - i);
        std::memcpy(s.hdr + s.hdr_len, p.data() + i, take);
        s.hdr_len = static_cast<uint8_t>(s.hdr_len + take);
        i += take;
        if (s.hdr_len == 4) Header(dir, ts, out);
      } else {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(s.remaining, p.size() - i));
        s.remaining -= n;
        Payload(dir, p.substr(i, n), out);
        i += n;
        if (!invalid && s.state == Stream::State::kBody && s.remaining == 0) {
          EndPacket(dir, ts, out);
        }
      }
    }
    if (!(dir == Direction::kResponse && hunting && !invalid)) break;
    // A resync abandoned: search on, from just after a point found in this record.
    if (resync_aborts != aborts && resync_at != std::string_view::npos) {
      i = resync_at + 1;
      resync_at = std::string_view::npos;
    }
    if (i >= p.size()) return;
  }
  if (invalid || s.state == Stream::State::kLost) return;
  uint64_t uncaptured = len - p.size();
  if (uncaptured == 0) return;
  if (s.state == Stream::State::kBody) {
    // Payload bytes need not be seen: skip them exactly.
    const uint64_t skip = std::min(uncaptured, s.remaining);
    s.remaining -= skip;
    uncaptured -= skip;
    if (!s.classified) Classify(dir, /*truncated=*/true, out);
    if (invalid || s.state == Stream::State::kLost) return;
    // The text is its captured prefix: bytes after a hole could start inside a literal.
    if (dir == Direction::kRequest) collect = false;
    if (s.remaining == 0) EndPacket(dir, ts, out);
    if (invalid || s.state == Stream::State::kLost || uncaptured == 0) return;
  }
  // A packet header was not captured: framing is lost in this direction.
  ++stats.gaps;
  if (dir == Direction::kResponse && held) {
    Abandon();  // a real terminator or ERR is the last byte the server wrote
    return;
  }
  if (dir == Direction::kResponse && CanHunt()) {
    Hunt();
    return;
  }
  Lose(dir, out);
}

// Resyncing is exact only when the bytes after the loss belong to one reply, in the rows of
// a result set whose column count is known. With more commands pending, a chain found later
// could be any of their replies.
bool MysqlParser::Impl::CanHunt() const {
  if (invalid || await_request || infile || held || items.size() != 1) return false;
  const Item& it = items.front();
  if (it.kind != Kind::kCommand || columns == 0 || columns > kMaxColumns ||
      deprecate_eof == Tri::kUnknown)
    return false;
  return rs == Rs::kRows || rs == Rs::kAfterDefs;
}

void MysqlParser::Impl::Hunt() {
  resp.NextMessage();
  resp.state = Stream::State::kLost;
  hunting = true;
  resynced = false;
}

// The first offset of p[from..] where a chain of packets of the result set starts; npos if
// none within the step budget.
size_t MysqlParser::Impl::FindResync(std::string_view p, size_t from, uint64_t len,
                                     size_t* steps) const {
  if (items.empty()) return std::string_view::npos;
  ChainCtx c;
  c.cols = columns;
  c.binary = items.front().binary;
  c.deprecate_eof = deprecate_eof == Tri::kYes;
  const auto* q = reinterpret_cast<const uint8_t*>(p.data());
  for (size_t o = from; o + 4 <= p.size(); ++o) {
    if (*steps == 0) break;
    --*steps;
    if (ValidChain(q, p.size(), len, o, c, steps)) return o;
  }
  return std::string_view::npos;
}

void MysqlParser::Impl::Resync(uint8_t seq) {
  ++resyncs;
  hunting = false;
  resynced = true;
  held = false;
  snapshot.items = items;
  snapshot.ops_pending = ops_pending;
  snapshot.responses = stats.responses;
  snapshot.columns = columns;
  resp.NextMessage();
  ResetReply();
  rs = Rs::kRows;  // the definitions' EOF, if any, was in the lost bytes
  rs_started = true;
  expect_seq = seq;
}

// The chain was found inside row data: undo what it completed and search on.
void MysqlParser::Impl::Abandon() {
  ++resync_aborts;
  held = false;
  resynced = false;
  held_ops.clear();
  items = std::move(snapshot.items);
  snapshot.items.clear();
  ops_pending = snapshot.ops_pending;
  stats.responses = snapshot.responses;
  columns = snapshot.columns;
  ResetReply();
  rs = Rs::kRows;
  Hunt();
}

void MysqlParser::Impl::Commit(std::vector<Operation>* out) {
  resynced = false;
  held = false;
  snapshot.items.clear();
  if (out == &held_ops || held_ops.empty()) return;
  for (Operation& op : held_ops) out->push_back(std::move(op));
  held_ops.clear();
}

// The end of a record cut by the capture while searching for a resync point: the reply may
// end in its uncaptured bytes, with no packet left to resync at. A final terminator ending the
// record proves success: an ERR ends a reply (nothing follows it), so had the command failed,
// the reply's last bytes would be that ERR, not a terminator; and a terminator without
// SERVER_MORE_RESULTS_EXISTS is the last packet of the reply. What the tail cannot rule out is
// a terminator forged in a row value that happens to end the record: the completion is held
// exactly as a resync's, and undone by any response byte before the client's next record.
void MysqlParser::Impl::FeedTail(std::string_view tail, uint64_t ts, std::vector<Operation>* out) {
  if (!cut || ts != cut_ts) return;
  cut = false;
  if (!hunting || !CanHunt()) return;
  if (tail.size() > kMaxTail) tail.remove_prefix(tail.size() - kMaxTail);
  if (!TailEndsReply(tail, deprecate_eof == Tri::kYes)) return;
  Resync(0);
  finish = Finish::kOk;
  Complete(ts, out);  // held
}

void MysqlParser::Impl::Header(Direction dir, uint64_t ts, std::vector<Operation>* out) {
  Stream& s = StreamOf(dir);
  s.hdr_len = 0;
  const uint32_t plen = Le24(s.hdr);
  const uint8_t seq = s.hdr[3];
  if (s.in_msg) {
    if (seq != static_cast<uint8_t>(s.seq + 1)) {
      ParseError(dir, out);
      return;
    }
  } else {
    s.first_len = plen;
    s.first_seq = seq;
    s.head_len = 0;
    s.head_need = 1;
    s.classified = false;
  }
  s.seq = seq;
  s.more = plen == kMaxPacket;
  s.remaining = plen;
  s.state = Stream::State::kBody;
  if (plen == 0) EndPacket(dir, ts, out);
}

void MysqlParser::Impl::Payload(Direction dir, std::string_view data, std::vector<Operation>* out) {
  Stream& s = StreamOf(dir);
  size_t i = 0;
  while (!s.classified && i < data.size()) {
    const size_t take = std::min(s.head_need - s.head_len, data.size() - i);
    std::memcpy(s.head + s.head_len, data.data() + i, take);
    s.head_len += take;
    i += take;
    if (s.head_len == s.head_need) {
      Classify(dir, /*truncated=*/false, out);
      if (invalid || s.state == Stream::State::kLost) return;
    }
  }
  if (i < data.size() && dir == Direction::kRequest && collect) {
    const size_t room =
        limits.max_buffered_bytes - std::min(limits.max_buffered_bytes, text.size());
    const size_t take = std::min(room, data.size() - i);
    text.append(data.data() + i, take);
    if (data.size() - i > take) text_over = true;
  }
}

void MysqlParser::Impl::EndPacket(Direction dir, uint64_t ts, std::vector<Operation>* out) {
  Stream& s = StreamOf(dir);
  s.state = Stream::State::kHeader;
  if (s.more) {
    s.in_msg = true;
    return;
  }
  s.in_msg = false;
  if (!s.classified) {
    Classify(dir, /*truncated=*/false, out);  // an empty message
    if (invalid || s.state == Stream::State::kLost) return;
  }
  s.resync = false;
  consecutive_errors = 0;
  if (dir == Direction::kRequest) {
    EndRequest(out);
  } else {
    EndResponse(ts, out);
  }
}

// Whether the head needs more bytes (at most the first packet's) before it can be
// classified; a truncated head is classified with what it has.
bool MysqlParser::Impl::Want(Stream& s, size_t n, bool truncated) {
  n = std::min({n, static_cast<size_t>(s.first_len), kHeadMax});
  if (s.head_len >= n || truncated) return false;
  s.head_need = n;
  s.classified = false;
  return true;
}

void MysqlParser::Impl::Classify(Direction dir, bool truncated, std::vector<Operation>* out) {
  StreamOf(dir).classified = true;
  if (dir == Direction::kRequest) {
    ClassifyRequest(truncated, out);
  } else {
    ClassifyResponse(truncated, out);
  }
}

void MysqlParser::Impl::ParseError(Direction dir, std::vector<Operation>* out) {
  if (dir == Direction::kResponse && resynced) {
    Abandon();  // no parse error: the resync point was inside row data
    return;
  }
  ++stats.parse_errors;
  if (++consecutive_errors >= kMaxConsecutiveErrors) invalid = true;
  Lose(dir, out);
}

// The bytes that would tell what a message is were not captured.
void MysqlParser::Impl::LostHeader(Direction dir, std::vector<Operation>* out) {
  ++stats.gaps;
  if (dir == Direction::kResponse && CanHunt()) {
    Hunt();
    return;
  }
  Lose(dir, out);
}

void MysqlParser::Impl::Lose(Direction dir, std::vector<Operation>* out) {
  Stream& s = StreamOf(dir);
  hunting = false;  // the reply searched for is drained below
  resynced = false;
  s.NextMessage();
  s.state = Stream::State::kLost;
  s.lost_in_record = in_feed;
  s.lost_ts = feed_ts;
  if (dir == Direction::kRequest) {
    infile = false;
    expect_handshake = false;
    cmd_data = false;
    collect = false;
  }
  Drain(/*lost=*/true, out);
  SetAwait();
}

void MysqlParser::Impl::SetAwait() {
  await_request = true;
  resp.NextMessage();
  resp.state = Stream::State::kLost;
}

// ---- Requests ----

void MysqlParser::Impl::ClassifyRequest(bool truncated, std::vector<Operation>* out) {
  Stream& s = req;
  const uint8_t* h = s.head;
  const size_t hl = s.head_len;
  cmd_data = false;
  collect = false;
  req_seen = true;
  if (infile && !s.resync) {  // the file's content, never read
    cmd_data = true;
    return;
  }
  if (expect_handshake) {
    // HandshakeResponse41 or SSLRequest: only the capability flags are read.
    if (s.first_seq != 1) {
      ParseError(Direction::kRequest, out);
      return;
    }
    if (Want(s, 4, truncated)) return;
    expect_handshake = false;
    cmd_data = true;
    if (hl < 4) return;  // capabilities stay unknown
    uint32_t caps = Le32(h);
    if ((caps & kCapProtocol41) == 0) caps &= 0xffff;  // HandshakeResponse320
    if (caps & kCapSsl) {
      invalid = true;  // TLS follows
      return;
    }
    const uint32_t eff = server_caps_known ? caps & server_caps : caps;
    if (eff & (kCapCompress | kCapZstd)) {
      invalid = true;  // compressed packets follow authentication
      return;
    }
    deprecate_eof = (eff & kCapDeprecateEof) ? Tri::kYes : Tri::kNo;
    query_attrs = (eff & kCapQueryAttributes) ? Tri::kYes : Tri::kNo;
    return;
  }
  if (s.first_seq != 0) {
    if (auth_items > 0 && !s.resync) {  // auth switch response, more auth data
      cmd_data = true;
      return;
    }
    ParseError(Direction::kRequest, out);  // not a command start
    return;
  }
  if (hl == 0) {
    if (truncated) {
      LostHeader(Direction::kRequest, out);
    } else {
      ParseError(Direction::kRequest, out);  // an empty packet is not a command
    }
    return;
  }
  const uint8_t c = h[0];
  if (!ValidCommand(c, s.first_len)) {
    ParseError(Direction::kRequest, out);
    return;
  }
  if (Unreadable(c)) {
    invalid = true;
    return;
  }
  cmd = c;
  switch (c) {
    case kComQuery:
    case kComStmtPrepare:
      collect = true;
      text_over = false;
      text.clear();
      // A long query leaves its buffer behind: give big ones back.
      if (text.capacity() > 4096) std::string().swap(text);
      return;
    case kComStmtExecute:
    case kComStmtBulkExecute:
    case kComStmtClose:
    case kComStmtReset:
    case kComStmtSendLongData:
    case kComStmtFetch:
      (void)Want(s, 5, truncated);  // the statement id; parameters are never read
      return;
    default:
      return;
  }
}

// The SQL of the COM_QUERY just read, its query attributes stepped over.
std::string_view MysqlParser::Impl::QueryText() {
  std::string_view body = text;
  if (cmd != kComQuery) return body;
  bool attrs = query_attrs == Tri::kYes;
  if (query_attrs == Tri::kUnknown && body.size() >= 2) {
    // Started mid-stream: SQL never starts with a control byte, attributes do (their count,
    // then a parameter set count of 1).
    const auto b0 = static_cast<uint8_t>(body[0]);
    attrs = (b0 < 0x09 || (b0 > 0x0d && b0 < 0x20)) && body[1] == 1;
    query_attrs = attrs ? Tri::kYes : Tri::kNo;
  }
  if (!attrs) return body;
  size_t at = 0;
  if (!SkipQueryAttributes(body, &at)) return {};
  return body.substr(at);
}

void MysqlParser::Impl::EndRequest(std::vector<Operation>* out) {
  Stream& s = req;
  if (cmd_data) {
    cmd_data = false;
    if (infile && s.first_len == 0) {  // the file's end: the server's OK or ERR follows
      infile = false;
      expect_seq = static_cast<uint8_t>(s.seq + 1);
    }
    return;
  }
  Item it;
  it.request_ts = s.first_ts;
  it.reply_seq = static_cast<uint8_t>(s.seq + 1);
  const bool have_id = s.head_len >= 5;
  const uint32_t id = have_id ? Le32(s.head + 1) : 0;
  switch (cmd) {
    case kComQuery:
    case kComStmtPrepare:
      ++stats.requests;
      if (text_over) ++stats.oversized;  // summarised from its first max_buffered_bytes
      it.op = true;
      it.stmt = MakeStmt(QueryText());
      collect = false;
      if (cmd == kComStmtPrepare) {
        it.kind = Kind::kPrepare;
        last_prepared = it.stmt;
      }
      break;
    case kComStmtExecute:
    case kComStmtBulkExecute:
      ++stats.requests;
      it.op = true;
      it.prepared = true;
      it.binary = true;
      if (have_id) it.stmt = id == kLastPrepared ? last_prepared : statements.Get(id);
      it.name = kUnseenStatement;
      break;
    case kComStmtClose:
      if (have_id) statements.Erase(id);
      return;
    case kComQuit:
    case kComStmtSendLongData:
      return;  // no reply
    case kComChangeUser:
      // A new session: its statements are gone. The password hash is never read.
      statements.Clear();
      last_prepared.reset();
      it.kind = Kind::kAuth;
      break;
    case kComStmtFetch:
      it.kind = Kind::kFetch;
      break;
    case kComResetConnection:
      statements.Clear();
      last_prepared.reset();
      [[fallthrough]];
    default:
      ++stats.requests;
      it.op = true;
      it.name = CommandName(cmd);
      if (cmd == kComFieldList) it.kind = Kind::kFieldList;
      if (cmd == kComStatistics) it.kind = Kind::kStatistics;
      break;
  }
  Push(std::move(it), out);
}

void MysqlParser::Impl::Push(Item&& it, std::vector<Operation>* out) {
  await_request = false;
  const size_t max_items = 4 * limits.max_pending + 8;
  if (items.size() >= max_items) {
    // Not even the reply's shape can be kept: pairing is given up until the next command.
    if (it.op) ++stats.pending_overflow;
    Drain(/*lost=*/true, out);
    SetAwait();
    return;
  }
  if (it.op && ops_pending >= limits.max_pending) {
    ++stats.pending_overflow;
    it.dropped = true;
    it.stmt.reset();
  }
  if (it.op && !it.dropped) ++ops_pending;
  if (it.kind == Kind::kAuth) ++auth_items;
  items.push_back(std::move(it));
}

void MysqlParser::Impl::Pop() {
  if (!items.empty()) {
    const Item& f = items.front();
    if (f.op && !f.dropped) --ops_pending;
    if (f.kind == Kind::kAuth && auth_items > 0) --auth_items;
    items.pop_front();
  }
  ResetReply();
}

void MysqlParser::Impl::ResetReply() {
  rs = Rs::kStart;
  rs_started = false;
  defs_left = 0;
  finish = Finish::kNone;
  err_known = false;
  err_code = 0;
  tentative = false;
  tentative_ts = 0;
}

// ---- Responses ----

void MysqlParser::Impl::ClassifyResponse(bool truncated, std::vector<Operation>* out) {
  Stream& s = resp;
  const uint8_t* h = s.head;
  const size_t hl = s.head_len;
  greeting_msg = false;
  if (!greeted && !req_seen && items.empty() && s.first_seq == 0 && hl >= 1) {
    if (h[0] == 0x0a && s.first_len >= 16) {
      // Protocol 10 greeting: version, thread id, auth data (not read), capability flags.
      if (Want(s, kHeadMax, truncated)) return;
      greeting_msg = true;
      const void* nul = std::memchr(h + 1, 0, hl - 1);
      if (nul != nullptr) {
        const size_t caps_at = static_cast<size_t>(static_cast<const uint8_t*>(nul) - h) + 14;
        if (caps_at + 7 <= hl) {
          server_caps = Le16(h + caps_at) | (uint32_t{Le16(h + caps_at + 5)} << 16);
          server_caps_known = true;
        }
      }
      return;
    }
    if (h[0] == 0xff) return;  // the server refused the connection ("Too many connections")
  }
  if (items.empty()) {
    ++stats.orphan_responses;  // started mid-stream, or a reply no command expects
    SetAwait();
    return;
  }
  if (hl == 0) {
    if (truncated) {
      LostHeader(Direction::kResponse, out);
    } else {
      ParseError(Direction::kResponse, out);  // an empty packet starts nothing
    }
    return;
  }
  Reply(truncated, out);
}

// Status flags of the OK or EOF in the head.
bool MysqlParser::Impl::Status(uint16_t* status) const {
  const uint8_t* h = resp.head;
  const size_t hl = resp.head_len;
  if (h[0] == 0xfe && resp.first_len < 7) {  // EOF: header, warnings, status
    if (hl < 5) return false;
    *status = Le16(h + 3);
    return true;
  }
  size_t pos = 1;  // OK: header, affected rows, last insert id, status
  uint64_t v = 0;
  if (!LenEnc(h, hl, &pos, &v) || !LenEnc(h, hl, &pos, &v) || hl - pos < 2) return false;
  *status = Le16(h + pos);
  return true;
}

// An OK or EOF ending a result: another follows when the server says so.
void MysqlParser::Impl::Terminator(bool truncated) {
  if (Want(resp, kReplyHead, truncated)) return;
  uint16_t status = 0;
  if (Status(&status) && (status & kStatusMoreResults)) {
    rs = Rs::kStart;
    return;
  }
  finish = Finish::kOk;
}

void MysqlParser::Impl::NextPrepBlock() {
  while (prep_block < 2 && prep_blocks[prep_block] == 0) ++prep_block;
  if (prep_block == 2) {
    finish = Finish::kOk;
    return;
  }
  rs = Rs::kPrepDefs;
  defs_left = prep_blocks[prep_block];
  ++prep_block;
}

void MysqlParser::Impl::Reply(bool truncated, std::vector<Operation>* out) {
  Stream& s = resp;
  const uint8_t* h = s.head;
  const size_t hl = s.head_len;
  const uint32_t len = s.first_len;
  const uint8_t b = h[0];
  if (tentative) {
    if (s.first_seq == expect_seq && b == 0xfe && len < 7) {
      deprecate_eof = Tri::kNo;  // the EOF ending the prepare's definitions
      finish = Finish::kOk;
      return;
    }
    deprecate_eof = Tri::kYes;  // no EOF: the prepare's reply had ended
    Complete(tentative_ts, out);
    if (items.empty()) {
      ++stats.orphan_responses;
      SetAwait();
      return;
    }
  }
  const Item& it = items.front();
  if (it.kind == Kind::kAuth) {
    if (b == 0x00) {
      finish = Finish::kOk;
    } else if (b == 0xff) {
      finish = Finish::kError;  // a refused login: not an operation
    }
    return;  // auth switch (0xfe), more data (0x01): the exchange goes on
  }
  const uint8_t want = rs_started ? expect_seq : it.reply_seq;
  if (s.first_seq != want) {
    ParseError(Direction::kResponse, out);
    return;
  }
  if (b == 0xff) {
    if (Want(s, 3, truncated)) return;  // the error number; SQLSTATE and message never read
    if (hl >= 3 && Le16(h + 1) == 0xffff) return;  // MariaDB progress report
    finish = Finish::kError;
    err_known = hl >= 3;
    err_code = err_known ? Le16(h + 1) : 0;
    return;
  }
  if (it.kind == Kind::kStatistics) {
    finish = Finish::kOk;
    return;
  }
  if (it.kind == Kind::kPrepare) {
    switch (rs) {
      case Rs::kStart: {
        if (b != 0x00) {
          ParseError(Direction::kResponse, out);
          return;
        }
        if (Want(s, 13, truncated)) return;
        if (hl < 9) {
          if (truncated) {
            LostHeader(Direction::kResponse, out);
          } else {
            ParseError(Direction::kResponse, out);
          }
          return;
        }
        const uint32_t id = Le32(h + 1);
        prep_blocks[0] = Le16(h + 7);  // parameters, then columns
        prep_blocks[1] = Le16(h + 5);
        // CLIENT_OPTIONAL_RESULTSET_METADATA: a last byte of 0 says no column definitions.
        if (len >= 13 && hl >= 13 && h[12] == 0) prep_blocks[1] = 0;
        prep_block = 0;
        if (!it.dropped && it.stmt != nullptr) {
          statements.Put(id, it.stmt, limits.max_statements, &stats.statements_evicted);
        }
        NextPrepBlock();
        return;
      }
      case Rs::kPrepEof:
        if (b == 0xfe && len < 7 && deprecate_eof != Tri::kYes) {
          deprecate_eof = Tri::kNo;
          NextPrepBlock();
          return;
        }
        if (deprecate_eof == Tri::kNo) {
          ParseError(Direction::kResponse, out);
          return;
        }
        deprecate_eof = Tri::kYes;  // no EOF: this is the next block's first definition
        NextPrepBlock();
        if (finish != Finish::kNone) return;
        [[fallthrough]];
      case Rs::kPrepDefs:
        if (--defs_left > 0) return;
        if (deprecate_eof == Tri::kYes) {
          NextPrepBlock();
        } else if (deprecate_eof == Tri::kNo) {
          rs = Rs::kPrepEof;
        } else {
          int next = prep_block;
          while (next < 2 && prep_blocks[next] == 0) ++next;
          if (next < 2) {
            rs = Rs::kPrepEof;
          } else {
            tentative = true;
          }
        }
        return;
      default:
        ParseError(Direction::kResponse, out);
        return;
    }
  }
  if (rs == Rs::kStart && (it.kind == Kind::kFetch || it.kind == Kind::kFieldList)) {
    rs = Rs::kRows;  // rows or definitions up to an EOF
  }
  switch (rs) {
    case Rs::kStart: {
      if (b == 0x00 || b == 0xfe) {
        Terminator(truncated);
        return;
      }
      if (b == 0xfb) {  // LOCAL INFILE request: the client sends the file (skipped unread)
        if (it.kind != Kind::kCommand) {
          ParseError(Direction::kResponse, out);
          return;
        }
        infile = true;
        return;
      }
      if (Want(s, 10, truncated)) return;
      size_t pos = 0;
      uint64_t count = 0;
      if (!LenEnc(h, hl, &pos, &count)) {
        if (truncated && hl < 9) {
          LostHeader(Direction::kResponse, out);
        } else {
          ParseError(Direction::kResponse, out);
        }
        return;
      }
      // A column count, maybe followed by a "metadata follows" byte (optional metadata).
      if (count == 0 || (len != pos && len != pos + 1)) {
        ParseError(Direction::kResponse, out);
        return;
      }
      columns = count;
      if (len == pos + 1 && hl > pos && h[pos] == 0) {
        rs = Rs::kAfterDefs;
      } else {
        rs = Rs::kDefs;
        defs_left = count;
      }
      return;
    }
    case Rs::kDefs:
      if (--defs_left == 0) rs = Rs::kAfterDefs;
      return;
    case Rs::kAfterDefs:
      if (b == 0xfe && len < kMaxPacket) {
        if (Want(s, kReplyHead, truncated)) return;
        // An EOF (5 bytes) ends the definitions; an OK (7 or more) ends a result without rows.
        const bool eof = deprecate_eof == Tri::kNo || (deprecate_eof == Tri::kUnknown && len < 7);
        if (!eof) {
          deprecate_eof = Tri::kYes;
          Terminator(truncated);
          return;
        }
        deprecate_eof = Tri::kNo;
        uint16_t status = 0;
        if (Status(&status) && (status & kStatusCursorExists)) {
          finish = Finish::kOk;  // a cursor: rows come with COM_STMT_FETCH
        } else {
          rs = Rs::kRows;
        }
        return;
      }
      if (deprecate_eof == Tri::kUnknown) deprecate_eof = Tri::kYes;  // rows right away
      rs = Rs::kRows;
      return;
    case Rs::kRows:
      // A row never starts with 0xfe unless it is at least 0xffffff bytes long.
      if (b == 0xfe && len < kMaxPacket) Terminator(truncated);
      return;
    default:
      ParseError(Direction::kResponse, out);
      return;
  }
}

void MysqlParser::Impl::EndResponse(uint64_t ts, std::vector<Operation>* out) {
  if (greeting_msg) {
    greeting_msg = false;
    greeted = true;
    expect_handshake = true;
    Item it;
    it.kind = Kind::kAuth;
    it.reply_seq = 2;
    Push(std::move(it), out);
    return;
  }
  if (items.empty()) return;  // the server refused the connection
  rs_started = true;
  expect_seq = static_cast<uint8_t>(resp.seq + 1);
  if (finish != Finish::kNone) {
    Complete(ts, out);
  } else if (tentative) {
    tentative_ts = ts;
  }
}

void MysqlParser::Impl::Complete(uint64_t ts, std::vector<Operation>* out) {
  if (items.empty()) return;
  if (resynced) {
    // Completed from a resync point: held until nothing the server writes contradicts it.
    resynced = false;
    held = true;
    out = &held_ops;
  }
  const Item& it = items.front();
  if (it.op && !it.dropped) Emit(it, true, ts, finish == Finish::kError, out);
  Pop();
}

void MysqlParser::Impl::Emit(const Item& it, bool has_response, uint64_t response_ts, bool error,
                             std::vector<Operation>* out) {
  Operation& op = out->emplace_back();
  op.system = System::kMysql;
  op.request_ts = it.request_ts;
  op.prepared = it.prepared;
  if (it.kind == Kind::kPrepare) {
    op.operation = kPrepareOperation;
    if (it.stmt != nullptr) {
      op.collection = it.stmt->collection;
      op.query_text = it.stmt->text;
    }
    op.query_summary = op.operation;
    if (!op.collection.empty()) op.query_summary += ' ' + op.collection;
  } else if (it.stmt != nullptr) {
    op.operation = it.stmt->operation;
    op.collection = it.stmt->collection;
    op.query_text = it.stmt->text;
    op.query_summary = it.stmt->summary;
  } else {
    op.operation = it.name.empty() ? kOtherCommand : it.name;
    op.query_summary = op.operation;
  }
  op.has_response = has_response;
  if (has_response) {
    ++stats.responses;
    op.response_ts = response_ts;
  }
  if (error) {
    if (err_known) {
      op.status_code = std::to_string(err_code);
      op.error_type = op.status_code;
    } else {
      op.error_type = kUnknownError;
    }
  }
}

// Every command pending is reported without reply (a prepare whose reply was seen whole but
// for a possible EOF keeps its reply).
void MysqlParser::Impl::Drain(bool lost, std::vector<Operation>* out) {
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    if (!it.op || it.dropped) continue;
    if (i == 0 && tentative) {
      Emit(it, true, tentative_ts, false, out);
      continue;
    }
    if (lost) ++stats.lost_responses;
    Emit(it, false, 0, false, out);
  }
  items.clear();
  ops_pending = 0;
  auth_items = 0;
  ResetReply();
}

MysqlParser::MysqlParser(const Limits& limits) : impl_(std::make_unique<Impl>(limits, &stats_)) {}

MysqlParser::~MysqlParser() = default;

void MysqlParser::Feed(Direction dir, std::string_view payload, uint64_t len, uint64_t ts_ns,
                       std::vector<Operation>* out) noexcept {
  Impl& m = *impl_;
  if (!m.deferred.empty()) {
    for (Operation& op : m.deferred) out->push_back(std::move(op));
    m.deferred.clear();
  }
  if (m.invalid) return;
  m.in_feed = true;
  m.feed_ts = ts_ns;
  m.cut = dir == Direction::kResponse && len > payload.size();
  m.cut_ts = ts_ns;
  m.Feed(dir, payload, len, ts_ns, out);
  m.in_feed = false;
  // Held operations whose resync ended otherwise (a loss drained them): deliver.
  if (!m.resynced && !m.held && !m.held_ops.empty()) m.Commit(out);
}

void MysqlParser::FeedTail(Direction dir, std::string_view tail, uint64_t ts_ns,
                           std::vector<Operation>* out) noexcept {
  Impl& m = *impl_;
  if (m.invalid || dir != Direction::kResponse) return;  // a request's end tells nothing
  m.FeedTail(tail, ts_ns, out);
}

void MysqlParser::Gap(Direction dir) noexcept {
  Impl& m = *impl_;
  m.cut = false;
  ++stats_.gaps;
  m.Commit(&m.deferred);  // nothing after the gap can refute what was parsed before it
  if (m.invalid) return;
  m.Lose(dir, &m.deferred);
}

void MysqlParser::Close(uint64_t ts_ns, std::vector<Operation>* out) noexcept {
  (void)ts_ns;  // pending commands have no reply: nothing to time
  Impl& m = *impl_;
  for (Operation& op : m.deferred) out->push_back(std::move(op));
  m.deferred.clear();
  m.Commit(out);
  // Still searching for a resync point: the capture lost the reply.
  m.Drain(/*lost=*/m.hunting, out);
  m.hunting = false;
}

bool MysqlParser::invalid() const noexcept { return impl_->invalid; }

size_t MysqlParser::statements() const noexcept { return impl_->statements.size(); }

int MysqlParser::deprecate_eof() const noexcept { return static_cast<int>(impl_->deprecate_eof); }

uint64_t MysqlParser::resyncs() const noexcept { return impl_->resyncs; }

uint64_t MysqlParser::resync_aborts() const noexcept { return impl_->resync_aborts; }

std::unique_ptr<Parser> MakeMysqlParser(const Limits& limits) {
  return std::make_unique<MysqlParser>(limits);
}

}  // namespace redtap::db

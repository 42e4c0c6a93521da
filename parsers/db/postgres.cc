// SPDX-License-Identifier: Apache-2.0
// PostgreSQL protocol v3: framing of both directions (typed messages, the untyped startup
// packets, the one-byte SSL/GSS answers), the statement and portal maps of the extended
// protocol, and the queue that pairs replies with the client's commands.
#include "parsers/db/postgres.h"

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
constexpr std::string_view kUnseenStatement = "EXECUTE";  // its Parse was not seen
constexpr std::string_view kFunctionCallOperation = "FUNCTION_CALL";
constexpr std::string_view kUnknownError = "_OTHER";  // an error without a usable SQLSTATE

constexpr uint32_t kMaxMessage = 1u << 30;  // the server's own bound (MaxAllocSize)
constexpr uint32_t kMaxStartup = 10000;     // MAX_STARTUP_PACKET_LENGTH
constexpr uint32_t kSslRequest = 80877103;
constexpr uint32_t kGssEncRequest = 80877104;
constexpr uint32_t kCancelRequest = 80877102;
constexpr size_t kMaxName = 256;  // statement/portal names kept (the server keeps 63 bytes)
constexpr int kMaxConsecutiveErrors = 4;

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Frontend messages: the smallest valid length (including the length field itself), and
// whether that length is the only one.
bool ValidRequestHeader(uint8_t type, uint32_t len) {
  if (len < 4 || len > kMaxMessage) return false;
  switch (type) {
    case 'S':  // Sync
    case 'H':  // Flush
    case 'X':  // Terminate
    case 'c':  // CopyDone
      return len == 4;
    case 'Q':  // Query: at least the terminating NUL
    case 'f':  // CopyFail
      return len >= 5;
    case 'P':  // Parse: name, query, int16 count
      return len >= 8;
    case 'B':  // Bind: portal, statement, three int16 counts
      return len >= 12;
    case 'D':  // Describe, Close: kind byte and name
    case 'C':
      return len >= 6;
    case 'E':  // Execute: portal, int32 row limit
      return len >= 9;
    case 'F':  // FunctionCall
      return len >= 14;
    case 'p':  // PasswordMessage, SASL and GSS responses
    case 'd':  // CopyData
      return true;
    default:
      return false;
  }
}

bool ValidResponseHeader(uint8_t type, uint32_t len) {
  if (len < 4 || len > kMaxMessage) return false;
  switch (type) {
    case '1':  // ParseComplete
    case '2':  // BindComplete
    case '3':  // CloseComplete
    case 'n':  // NoData
    case 'I':  // EmptyQueryResponse
    case 's':  // PortalSuspended
    case 'c':  // CopyDone
      return len == 4;
    case 'Z':  // ReadyForQuery: the transaction status byte
      return len == 5;
    case 'K':  // BackendKeyData: pid and key (longer keys since protocol 3.2)
      return len >= 12 && len <= 12 + 256;
    case 'R':  // Authentication*
      return len >= 8;
    case 'E':  // ErrorResponse, NoticeResponse: at least the terminator
    case 'N':
    case 'C':  // CommandComplete: the tag
      return len >= 5;
    case 'S':  // ParameterStatus: two strings
    case 'T':  // RowDescription, DataRow, ParameterDescription: an int16 count
    case 'D':
    case 't':
      return len >= 6;
    case 'G':  // CopyIn/Out/BothResponse: format and an int16 count
    case 'H':
    case 'W':
      return len >= 7;
    case 'A':  // NotificationResponse: pid and two strings
      return len >= 10;
    case 'V':  // FunctionCallResponse
      return len >= 8;
    case 'v':  // NegotiateProtocolVersion
      return len >= 12;
    case 'd':  // CopyData
      return true;
    default:
      return false;
  }
}

bool ValidSqlState(std::string_view code) {
  if (code.size() != 5) return false;
  for (char c : code) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

// ---- Resynchronisation inside a reply ----
//
// What the chain validator knows of the reply being searched.
struct ChainCtx {
  bool query = false;          // a simple Query (several statements may follow each other)
  bool has_sync = false;       // an Execute followed by its Sync: a ReadyForQuery will come
  int32_t cols = -1;           // columns of the current result (-1: unknown, DataRows refused)
  bool copy_out = false;       // inside COPY TO STDOUT
  uint8_t copy_format = 0xff;  // CopyOutResponse's overall format (0 text, 1 binary)
  int32_t copy_cols = -1;
};

enum class Phase : uint8_t { kStart, kRows, kAfterComplete, kAfterError, kAfterCopyDone, kEnd };

int32_t Be32s(const uint8_t* p) { return static_cast<int32_t>(Be32(p)); }
uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

constexpr uint32_t kMaxColumns = 1664;  // MaxTupleAttributeNumber
constexpr size_t kMaxTag = 64;          // CommandComplete tags are short

// Start bytes worth a chain check: the messages a reply's tail is made of. ParameterStatus and
// NotificationResponse are accepted inside a chain, not as its start ('S', 'A' are common in
// text).
bool ResyncStart(uint8_t c) {
  switch (c) {
    case 'D':
    case 'd':
    case 'c':
    case 'C':
    case 'E':
    case 'N':
    case 'Z':
    case 'I':
    case 's':
      return true;
    default:
      return false;
  }
}

// A tuple (DataRow body, binary COPY row) of `cols` columns: int16 count, then per column an
// int32 length (-1: NULL) and the value. `b` is the captured prefix of `total` bytes; whole
// tuples must add up exactly. `*steps` bounds the work.
bool ValidTuple(const uint8_t* b, size_t have, size_t total, int32_t cols, size_t* steps) {
  if (have < 2) return have < total;
  if (Be16(b) != static_cast<uint32_t>(cols)) return false;
  size_t off = 2;
  for (int32_t k = 0; k < cols; ++k) {
    if (*steps == 0) return false;
    --*steps;
    if (off + 4 > have) return off + 4 <= total && have < total;  // cut by the capture
    const int32_t n = Be32s(b + off);
    off += 4;
    if (n == -1) continue;
    if (n < 0 || static_cast<uint64_t>(n) > total - off) return false;
    off += static_cast<size_t>(n);
    if (off > have) return true;  // the rest is not captured: consistent so far
  }
  return off == total;
}

// A NUL-terminated string of `b[off..]` within the captured `have` bytes; false if cut.
bool CString(const uint8_t* b, size_t have, size_t* off) {
  const void* nul = std::memchr(b + *off, 0, have - *off);
  if (nul == nullptr) return false;
  *off = static_cast<size_t>(static_cast<const uint8_t*>(nul) - b) + 1;
  return true;
}

bool ValidTag(const uint8_t* b, size_t have, size_t total) {
  if (total > kMaxTag || total < 2) return false;
  bool digits = false;
  for (size_t k = 0; k < have; ++k) {
    const uint8_t c = b[k];
    if (k + 1 == total) return c == 0;
    if (k == 0) {
      if (c < 'A' || c > 'Z') return false;
    } else if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == ' ') {
    } else if (c < 'A' || c > 'Z' || digits) {
      return false;
    }
  }
  return true;  // cut by the capture
}

// ErrorResponse / NoticeResponse: fields of a known type, severity first, a final NUL.
bool ValidFields(const uint8_t* b, size_t have, size_t total, size_t* steps) {
  static constexpr std::string_view kFieldTypes = "SVCMDHPpqWstcdnFLR";
  size_t off = 0;
  while (off < have) {
    if (*steps == 0) return false;
    --*steps;
    const uint8_t t = b[off];
    if (t == 0) return off > 0 && off + 1 == total;
    if (off == 0 ? t != 'S' : kFieldTypes.find(static_cast<char>(t)) == std::string_view::npos)
      return false;
    ++off;
    if (!CString(b, have, &off)) return have < total;
    if (off >= total) return false;
  }
  return have < total;
}

// Checks one message (header at `m`, `avail` captured bytes from there) against the reply's
// grammar and updates `ctx` and `phase`. `*whole`: the message lies entirely in the captured
// bytes.
bool ValidChainMessage(const uint8_t* m, size_t avail, ChainCtx* ctx, Phase* phase, bool* whole,
                       size_t* steps) {
  const uint8_t type = m[0];
  const uint32_t len = Be32(m + 1);
  if (!ValidResponseHeader(type, len)) return false;
  const size_t total = len - 4;
  const uint8_t* b = m + 5;
  const size_t have = std::min<size_t>(total, avail - 5);
  *whole = have == total;
  const Phase ph = *phase;
  const bool rows = ph == Phase::kStart || ph == Phase::kRows;
  switch (type) {
    case 'D':
      if (!rows || ctx->copy_out || ctx->cols < 0) return false;
      if (!ValidTuple(b, have, total, ctx->cols, steps)) return false;
      *phase = Phase::kRows;
      return true;
    case 'd': {
      if (!rows || !ctx->copy_out) return false;
      if (ctx->copy_format == 0) {
        if (*whole && (total == 0 || b[total - 1] != '\n')) return false;  // one row a message
      } else if (ctx->copy_format == 1 && ctx->copy_cols >= 0) {
        static constexpr uint8_t kSig[] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
        size_t off = 0;
        if (have >= sizeof(kSig) && std::memcmp(b, kSig, sizeof(kSig)) == 0) {
          off = sizeof(kSig) + 8;  // flags and header extension length
          if (off > total) return false;
          if (off > have) return *whole == false;
        }
        if (have - off >= 2 && Be16(b + off) == 0xffff) {
          if (total - off != 2) return false;  // the trailer
        } else if (!ValidTuple(b + off, have - off, total - off, ctx->copy_cols, steps)) {
          return false;
        }
      } else if (*whole) {
        return false;  // nothing to check it against
      }
      *phase = Phase::kRows;
      return true;
    }
    case 'c':
      if (!rows || !ctx->copy_out) return false;
      ctx->copy_out = false;
      *phase = Phase::kAfterCopyDone;
      return true;
    case 'C':
      if (!(ph == Phase::kStart || (ph == Phase::kRows && !ctx->copy_out) ||
            ph == Phase::kAfterCopyDone || (ph == Phase::kAfterComplete && ctx->query)))
        return false;
      if (!ValidTag(b, have, total)) return false;
      ctx->cols = -1;
      ctx->copy_out = false;
      *phase = Phase::kAfterComplete;
      return true;
    case 'I':
      if (!(ph == Phase::kStart || (ph == Phase::kAfterComplete && ctx->query))) return false;
      *phase = Phase::kAfterComplete;
      return true;
    case 's':
      if (ctx->query || !rows || ctx->copy_out) return false;
      *phase = Phase::kAfterComplete;
      return true;
    case 'T': {
      if (!ctx->query || ph != Phase::kAfterComplete || have < 2) return false;
      const uint32_t n = Be16(b);
      if (n > kMaxColumns) return false;
      size_t off = 2;
      for (uint32_t k = 0; k < n && off < have; ++k) {
        if (*steps == 0) return false;
        --*steps;
        if (!CString(b, have, &off)) return have < total;
        off += 18;  // table, column, type, size, modifier, format
      }
      if (*whole && off != total) return false;
      ctx->cols = static_cast<int32_t>(n);
      *phase = Phase::kRows;
      return true;
    }
    case 'E':
      if (ph == Phase::kEnd || ph == Phase::kAfterError) return false;
      if (!ValidFields(b, have, total, steps)) return false;
      ctx->copy_out = false;
      *phase = Phase::kAfterError;
      return true;
    case 'N':
      return ph != Phase::kEnd && ValidFields(b, have, total, steps);
    case 'S': {  // ParameterStatus: a name of identifier characters, a value
      if (ph == Phase::kEnd) return false;
      size_t off = 0;
      while (off < have && b[off] != 0) {
        const uint8_t c = b[off];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
          return false;
        ++off;
      }
      if (off == 0 && have > 0) return false;
      if (off >= have) return have < total;
      ++off;
      if (!CString(b, have, &off)) return have < total;
      return off == total;
    }
    case 'A': {  // NotificationResponse: pid, channel, payload
      if (ph == Phase::kEnd) return false;
      size_t off = 4;
      if (have < off) return have < total;
      if (!CString(b, have, &off) || !CString(b, have, &off)) return have < total;
      return off == total;
    }
    case 'Z':
      if (!(ph == Phase::kStart || ph == Phase::kAfterComplete || ph == Phase::kAfterError))
        return false;
      if (!ctx->query && !ctx->has_sync) return false;
      if (have == 1 && b[0] != 'I' && b[0] != 'T' && b[0] != 'E') return false;
      *phase = Phase::kEnd;
      return true;
    default:
      return false;
  }
}

// Whether the reply can be parsed from q[o]: every message whose header is captured fits the
// reply, and there are two whole messages, or one whole and the next one's header, or one
// ending the record. A ReadyForQuery must end the record (one command pending: nothing else
// can follow it).
bool ValidChain(std::string_view q, size_t o, bool record_end, ChainCtx ctx, size_t* steps) {
  const auto* d = reinterpret_cast<const uint8_t*>(q.data());
  Phase phase = Phase::kStart;
  int whole_msgs = 0;
  bool cut = false;
  size_t pos = o;
  while (pos < q.size()) {
    if (*steps == 0) return false;
    --*steps;
    const size_t avail = q.size() - pos;
    if (avail < 5) break;  // a header cut by the capture or by the record
    bool whole = false;
    if (!ValidChainMessage(d + pos, avail, &ctx, &phase, &whole, steps)) return false;
    if (!whole) {
      cut = true;
      break;
    }
    ++whole_msgs;
    pos += 1 + size_t{Be32(d + pos + 1)};
    if (phase == Phase::kEnd) return pos == q.size() && record_end;
  }
  if (whole_msgs >= 2) return true;
  if (whole_msgs == 1 && cut) return true;
  return whole_msgs == 1 && pos == q.size() && record_end;
}

// Where the end of a reply starts in `t`, a large record's last bytes: a ReadyForQuery ending
// the record, right after a whole CommandComplete (after CopyDone when `copy_out`) or an
// EmptyQueryResponse. Anything else (an ErrorResponse, whose message rarely fits, a notice)
// is not taken: npos. `ready`: a ReadyForQuery may answer the pending command.
size_t TailEnd(std::string_view t, bool ready, bool copy_out) {
  const auto* d = reinterpret_cast<const uint8_t*>(t.data());
  const size_t n = t.size();
  if (!ready || n < 6) return std::string_view::npos;
  const size_t z = n - 6;
  const uint8_t status = d[n - 1];
  if (d[z] != 'Z' || Be32(d + z + 1) != 5 || (status != 'I' && status != 'T' && status != 'E'))
    return std::string_view::npos;
  if (!copy_out && z >= 5 && d[z - 5] == 'I' && Be32(d + z - 4) == 4) return z - 5;
  // CommandComplete: 'C', its length, a tag of at least one letter and its NUL.
  for (size_t o = z >= 7 ? z - 7 + 1 : 0; o-- > 0;) {
    if (d[o] != 'C' || Be32(d + o + 1) != z - o - 1) continue;
    const size_t total = z - o - 5;
    if (!ValidTag(d + o + 5, total, total)) continue;
    if (!copy_out) return o;
    if (o >= 5 && d[o - 5] == 'c' && Be32(d + o - 4) == 4) return o - 5;
  }
  return std::string_view::npos;
}

// What a statement is, summarised once at Parse (or Query) time and shared by the portals
// and commands that use it.
struct Stmt {
  std::string operation;
  std::string collection;
  std::string text;
  std::string summary;
  bool named = false;
  uint64_t batch = 0;  // Syncs the client had sent when it parsed the statement
};
using StmtPtr = std::shared_ptr<const Stmt>;

StmtPtr MakeStmt(std::string_view text, bool named, uint64_t batch) {
  sql::Summary s = sql::Summarize(text, sql::Dialect::kPostgresql);
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
  st->named = named;
  st->batch = batch;
  return st;
}

// Names -> statements (or portals), the oldest forgotten first beyond `max`.
class NameMap {
 public:
  void Put(std::string_view name, StmtPtr v, size_t max, uint64_t* evicted) {
    Erase(name);
    if (max == 0) {
      ++*evicted;
      return;
    }
    while (order_.size() >= max) {
      index_.erase(order_.front().name);
      order_.pop_front();
      ++*evicted;
    }
    order_.push_back(Node{std::string(name), std::move(v)});
    auto it = std::prev(order_.end());
    index_.emplace(it->name, it);
  }
  // Found: the statement (nullptr for a portal bound to an unseen statement).
  bool Get(std::string_view name, StmtPtr* v) const {
    auto it = index_.find(name);
    if (it == index_.end()) return false;
    *v = it->second->value;
    return true;
  }
  void Erase(std::string_view name) {
    auto it = index_.find(name);
    if (it == index_.end()) return;
    auto node = it->second;
    index_.erase(it);
    order_.erase(node);
  }
  size_t size() const { return order_.size(); }

 private:
  struct Node {
    std::string name;
    StmtPtr value;
  };
  std::list<Node> order_;
  // Keys view the names held by the list's nodes, which never move.
  std::unordered_map<std::string_view, std::list<Node>::iterator> index_;
};

enum class Kind : uint8_t {
  kStartup,  // StartupMessage: authentication until the first ReadyForQuery
  kQuery,
  kFunctionCall,
  kParse,
  kBind,
  kDescribe,
  kExecute,
  kClose,
  kSync,
  kDropped,  // commands not queued (max_pending): their replies are eaten through `syncs` 'Z's
};

bool IsOperation(Kind k) {
  return k == Kind::kQuery || k == Kind::kFunctionCall || k == Kind::kExecute;
}

// A client message waiting for its reply.
struct Item {
  Kind kind = Kind::kSync;
  bool prepared = false;
  bool copy = false;       // the server answered with CopyIn/CopyOut
  bool has_error = false;  // kQuery, kFunctionCall: an ErrorResponse was part of the reply
  uint64_t request_ts = 0;
  uint64_t error_ts = 0;
  uint64_t syncs = 0;  // kDropped: ReadyForQuery still to come for the dropped commands
  std::string sqlstate;
  StmtPtr stmt;
};

struct Stream {
  enum class State : uint8_t { kHeader, kBody, kLost };
  State state = State::kHeader;
  bool resync = false;  // the next header starts a record after lost framing
  bool quiet = false;   // resyncing inside COPY data: garbage is expected, not an error
  uint8_t hdr[8] = {};
  uint8_t hdr_len = 0;
  uint8_t hdr_need = 5;
  bool untyped = false;
  uint8_t type = 0;
  uint32_t code = 0;       // untyped: the request code
  uint64_t remaining = 0;  // body bytes still to come
  bool cut = false;        // part of the body was not captured
  uint64_t first_ts = 0;   // record holding the message's first byte

  void NextMessage() {
    state = State::kHeader;
    hdr_len = 0;
    untyped = false;
    remaining = 0;
    cut = false;
  }
};

}  // namespace

struct PostgresParser::Impl {
  Impl(const Limits& l, ConnStats* s) : limits(l), stats(*s) {}

  Limits limits;
  ConnStats& stats;
  bool invalid = false;
  int consecutive_errors = 0;
  uint64_t skipped_executes = 0;

  Stream req;
  Stream resp;
  // The request direction may carry an untyped packet next: at the start, and after the
  // server refused encryption.
  bool expect_untyped = true;
  bool fresh = true;  // nothing parsed in the request direction yet
  enum class Encryption : uint8_t { kNone, kSsl, kGss };
  Encryption enc_pending = Encryption::kNone;  // the one-byte answer is the next response
  bool copy_in = false;                        // the server asked for COPY data (CopyInResponse)

  // Request body: up to two NUL-terminated leading fields (after an optional kind byte).
  uint8_t rq_nfields = 0;
  uint8_t rq_field = 0;
  bool rq_lead = false;  // Describe and Close start with 'S' or 'P'
  bool rq_lead_done = false;
  uint8_t rq_kind = 0;
  bool rq_done[2] = {};
  bool rq_over[2] = {};
  size_t rq_cap[2] = {};
  std::string rq_f[2];

  // ErrorResponse: fields are skipped up to 'C', whose value is kept, and nothing after it.
  enum class ErrState : uint8_t { kType, kSkip, kCode, kDone };
  ErrState err_state = ErrState::kType;
  bool err_code_done = false;
  std::string err_code;

  // Extended protocol state, as the server will have it when it reaches the next message.
  NameMap statements;
  NameMap portals;
  StmtPtr unnamed_stmt;
  bool unnamed_stmt_known = false;
  StmtPtr unnamed_portal;
  bool unnamed_portal_known = false;
  uint64_t batch = 0;  // Syncs sent
  bool group_open = false;
  uint64_t group_ts = 0;  // first byte of the messages preparing the next Execute

  // Replies pending, oldest first.
  std::deque<Item> items;
  size_t ops_pending = 0;
  bool dropping = false;             // max_pending reached: commands are not queued until a Sync
  bool dropped_batch_ended = false;  // the last command not queued ended its batch
  bool await_request = false;        // pairing lost: replies are dropped until the client sends
  // An extended-protocol message failed: the server skips everything up to Sync.
  bool skipping = false;
  struct Failure {
    Item item;
    std::string sqlstate;
    uint64_t ts = 0;
    bool attributed = false;  // an operation already carries the error
  } failure;

  std::vector<Operation> deferred;  // completed by Gap(), which has no output

  // The reply being parsed, as far as a resync needs it.
  int32_t row_cols = -1;  // columns of the current result (RowDescription, DataRow)
  bool copy_out = false;  // between CopyOutResponse and CopyDone
  uint8_t copy_format = 0xff;
  int32_t copy_cols = -1;
  uint8_t lead[3] = {};  // first body bytes of RowDescription, DataRow, CopyOutResponse
  uint8_t lead_len = 0;
  // Response framing lost inside the reply of the one operation pending: records are
  // searched for a resync point until the client's next record.
  bool hunting = false;
  bool tentative = false;  // parsing from a resync point, until ReadyForQuery
  bool settled = false;    // a completion (CommandComplete, error...) parsed since the resync
  // ReadyForQuery reached from a resync point: only asynchronous messages may follow until
  // the client's next record. Anything else proves the chain was found inside row data.
  bool held = false;
  // Operations completed from a resync point, delivered once it is confirmed (the client's
  // next record, Close, Gap) or dropped if it is abandoned.
  std::vector<Operation> held_ops;
  // What a resync point changes, restored when it is abandoned.
  struct Snapshot {
    std::deque<Item> items;
    size_t ops_pending = 0;
    uint64_t responses = 0;
    uint64_t lost_responses = 0;
    uint64_t orphan_responses = 0;
    uint64_t skipped_executes = 0;
    int32_t row_cols = -1;
    bool copy_out = false;
  } snapshot;
  uint64_t resyncs = 0;
  uint64_t resync_aborts = 0;
  uint64_t tail_resyncs = 0;

  Stream& StreamOf(Direction d) { return d == Direction::kRequest ? req : resp; }

  void Feed(Direction dir, std::string_view p, uint64_t len, uint64_t ts,
            std::vector<Operation>* out);
  void FeedTail(std::string_view tail, uint64_t ts, std::vector<Operation>* out);
  size_t Header(Direction dir, std::string_view data, uint64_t ts, std::vector<Operation>* out);
  void BeginBody(Direction dir);
  void BodyBytes(Direction dir, std::string_view data);
  void EndMessage(Direction dir, uint64_t ts, std::vector<Operation>* out);
  void OnRequest(std::vector<Operation>* out);
  void OnResponse(uint8_t type, uint64_t ts, std::vector<Operation>* out);
  void ParseError(Direction dir, std::vector<Operation>* out);
  void Lose(Direction dir, std::vector<Operation>* out);
  bool CanHunt() const;
  void Hunt();
  void Resync();
  void Abandon();
  void Commit(std::vector<Operation>* out);
  std::vector<Operation>* Sink(std::vector<Operation>* out) {
    return tentative || held ? &held_ops : out;
  }
  size_t FindResync(std::string_view q, bool record_end, size_t* steps) const;
  void TrackReply(uint8_t type);
  void Drain(bool lost, std::vector<Operation>* out);
  void EndSkip(bool at_ready, std::vector<Operation>* out);
  void Push(Item&& it);
  void Pop();
  Operation MakeOp(const Item& it) const;
  void Emit(const Item& it, bool has_response, uint64_t response_ts, std::string_view sqlstate,
            bool error, std::vector<Operation>* out);
  StmtPtr Statement(std::string_view name, bool* known) const;
  StmtPtr Portal(std::string_view name, bool* known) const;
  uint64_t CommandTs(uint64_t own_ts) {
    if (!group_open) {
      group_open = true;
      group_ts = own_ts;
    }
    return group_ts;
  }
};

// ---- Framing ----

void PostgresParser::Impl::Feed(Direction dir, std::string_view p, uint64_t len, uint64_t ts,
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
    s.NextMessage();
    s.resync = true;
  }
  size_t i = 0;
  // Bounds the resync search of this record: a few walks over its captured bytes.
  size_t steps = 8 * p.size() + 1024;
  for (;;) {
    if (dir == Direction::kResponse && hunting) {
      const size_t at = FindResync(p.substr(i), len == p.size(), &steps);
      if (at == std::string_view::npos) return;
      Resync();
      i += at;
    }
    while (i < p.size() && !invalid && s.state != Stream::State::kLost) {
      if (s.state == Stream::State::kHeader) {
        i += Header(dir, p.substr(i), ts, Sink(out));
      } else {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(s.remaining, p.size() - i));
        BodyBytes(dir, p.substr(i, n));
        s.remaining -= n;
        i += n;
        if (s.remaining == 0) EndMessage(dir, ts, Sink(out));
      }
    }
    // A resync abandoned inside this record: search the rest of it.
    if (!(dir == Direction::kResponse && hunting && i < p.size() && !invalid)) break;
  }
  if (invalid || s.state == Stream::State::kLost) return;
  uint64_t uncaptured = len - p.size();
  if (uncaptured == 0) return;
  if (s.state == Stream::State::kBody) {
    // Body bytes need not be seen: skip them exactly.
    const uint64_t skip = std::min(uncaptured, s.remaining);
    s.remaining -= skip;
    uncaptured -= skip;
    s.cut = true;
    if (s.remaining == 0) EndMessage(dir, ts, Sink(out));
    if (invalid || uncaptured == 0) return;
  }
  // A message header was not captured: framing is lost in this direction.
  ++stats.gaps;
  if (dir == Direction::kResponse && held) {
    Abandon();  // a real ReadyForQuery is the last byte the server wrote
    return;
  }
  if (dir == Direction::kResponse && CanHunt()) {
    Hunt();
    return;
  }
  Lose(dir, Sink(out));
}

// The record just fed lost the response framing and holds the reply's end in its uncaptured
// part (libpq reads 16 KiB, the capture keeps 4 KiB): its last bytes are a resync point when
// they are exactly the end of a successful reply. That completion is held like any other
// resync's: more response bytes before the client's next record undo it.
void PostgresParser::Impl::FeedTail(std::string_view tail, uint64_t ts,
                                    std::vector<Operation>* out) {
  if (!hunting || !CanHunt()) return;
  const bool ready = items.front().kind == Kind::kQuery || items.size() == 2;
  const size_t at = TailEnd(tail, ready, copy_out);
  if (at == std::string_view::npos) return;
  Resync();
  ++tail_resyncs;
  const std::string_view end = tail.substr(at);
  Feed(Direction::kResponse, end, end.size(), ts, out);
}

// Resyncing is exact only when the bytes after the loss can belong to one operation: a
// Query, or an Execute with at most its Sync after it (its rows, then CommandComplete or an
// error, then ReadyForQuery). With more pending, a chain found later could be any of their
// replies.
bool PostgresParser::Impl::CanHunt() const {
  if (invalid || skipping || await_request || copy_in || items.empty()) return false;
  const Kind k = items.front().kind;
  if (k == Kind::kQuery) return items.size() == 1;
  if (k == Kind::kExecute) {
    return items.size() == 1 || (items.size() == 2 && items[1].kind == Kind::kSync);
  }
  return false;
}

void PostgresParser::Impl::Hunt() {
  resp.NextMessage();
  resp.state = Stream::State::kLost;
  hunting = true;
  tentative = false;
  settled = false;
}

void PostgresParser::Impl::Resync() {
  ++resyncs;
  hunting = false;
  tentative = true;
  settled = false;
  resp.NextMessage();
  snapshot.items = items;
  snapshot.ops_pending = ops_pending;
  snapshot.responses = stats.responses;
  snapshot.lost_responses = stats.lost_responses;
  snapshot.orphan_responses = stats.orphan_responses;
  snapshot.skipped_executes = skipped_executes;
  snapshot.row_cols = row_cols;
  snapshot.copy_out = copy_out;
}

// The chain was found inside row data: undo what it completed and search on.
void PostgresParser::Impl::Abandon() {
  ++resync_aborts;
  held = false;
  held_ops.clear();
  items = std::move(snapshot.items);
  snapshot.items.clear();
  ops_pending = snapshot.ops_pending;
  stats.responses = snapshot.responses;
  stats.lost_responses = snapshot.lost_responses;
  stats.orphan_responses = snapshot.orphan_responses;
  skipped_executes = snapshot.skipped_executes;
  row_cols = snapshot.row_cols;
  copy_out = snapshot.copy_out;
  skipping = false;
  failure = Failure{};
  Hunt();
}

void PostgresParser::Impl::Commit(std::vector<Operation>* out) {
  tentative = false;
  held = false;
  snapshot.items.clear();
  if (out == &held_ops || held_ops.empty()) return;
  for (Operation& op : held_ops) out->push_back(std::move(op));
  held_ops.clear();
}

// The first offset of `q` (a record's captured bytes, or their rest) from which the reply
// parses as a valid chain; npos if none within the step budget.
size_t PostgresParser::Impl::FindResync(std::string_view q, bool record_end, size_t* steps) const {
  if (items.empty()) return std::string_view::npos;
  ChainCtx ctx;
  ctx.query = items.front().kind == Kind::kQuery;
  ctx.has_sync = items.size() == 2;
  ctx.cols = row_cols;
  ctx.copy_out = copy_out;
  ctx.copy_format = copy_format;
  ctx.copy_cols = copy_cols;
  for (size_t o = 0; o < q.size(); ++o) {
    if (!ResyncStart(static_cast<uint8_t>(q[o]))) continue;
    if (*steps == 0) break;
    --*steps;
    if (ValidChain(q, o, record_end, ctx, steps)) return o;
  }
  return std::string_view::npos;
}

size_t PostgresParser::Impl::Header(Direction dir, std::string_view data, uint64_t ts,
                                    std::vector<Operation>* out) {
  Stream& s = StreamOf(dir);
  const auto first = static_cast<uint8_t>(data[0]);
  if (s.hdr_len == 0) {
    s.first_ts = ts;
    s.untyped = false;
    s.hdr_need = 5;
    if (dir == Direction::kRequest) {
      if (expect_untyped && first == 0) {
        s.untyped = true;
        s.hdr_need = 8;
      } else if (fresh && first == 0x16) {
        // A TLS ClientHello (sslnegotiation=direct): nothing here is readable.
        invalid = true;
        return data.size();
      }
    } else if (enc_pending != Encryption::kNone) {
      s.hdr_need = 1;
    }
  }
  const size_t take = std::min<size_t>(s.hdr_need - s.hdr_len, data.size());
  std::memcpy(s.hdr + s.hdr_len, data.data(), take);
  s.hdr_len = static_cast<uint8_t>(s.hdr_len + take);
  if (s.hdr_len < s.hdr_need) return take;

  if (s.hdr_need == 1) {  // the server's answer to SSLRequest / GSSENCRequest
    const uint8_t answer = s.hdr[0];
    const Encryption asked = enc_pending;
    enc_pending = Encryption::kNone;
    if ((asked == Encryption::kSsl && answer == 'S') ||
        (asked == Encryption::kGss && answer == 'G')) {
      invalid = true;  // TLS / GSSAPI encryption follows
    } else if (answer == 'N') {
      s.NextMessage();
      consecutive_errors = 0;
    } else if (answer == 'E') {
      s.hdr_need = 5;  // a server without encryption support answers with an error
    } else {
      ParseError(dir, out);
    }
    return take;
  }

  bool valid;
  if (s.untyped) {
    const uint32_t len = Be32(s.hdr);
    s.code = Be32(s.hdr + 4);
    s.type = 0;
    if (s.code == kSslRequest || s.code == kGssEncRequest) {
      valid = len == 8;
    } else if (s.code == kCancelRequest) {
      valid = len >= 16 && len <= 12 + 256;
    } else {
      valid = (s.code >> 16) == 3 && len >= 8 && len <= kMaxStartup;  // protocol 3.x
    }
    s.remaining = valid ? len - 8 : 0;
  } else {
    s.type = s.hdr[0];
    const uint32_t len = Be32(s.hdr + 1);
    valid = dir == Direction::kRequest ? ValidRequestHeader(s.type, len)
                                       : ValidResponseHeader(s.type, len);
    s.remaining = valid ? len - 4 : 0;
  }
  if (dir == Direction::kResponse && (tentative || held)) {
    // After a resync, an invalid header proves the chain was found inside row data; after
    // its ReadyForQuery, so does anything but an asynchronous message (a FATAL error, e.g.
    // idle_session_timeout, is one).
    const bool async = s.type == 'N' || s.type == 'S' || s.type == 'A' || s.type == 'E';
    if (!valid || (held && !async)) {
      Abandon();
      return take;
    }
  }
  if (!valid) {
    if (s.resync && s.quiet) {
      s.state = Stream::State::kLost;  // still inside COPY data: try the next record
      s.hdr_len = 0;
    } else {
      ParseError(dir, out);
    }
    return take;
  }
  if (dir == Direction::kRequest && !s.untyped) expect_untyped = false;
  s.state = Stream::State::kBody;
  s.cut = false;
  BeginBody(dir);
  if (s.remaining == 0) EndMessage(dir, ts, out);
  return take;
}

void PostgresParser::Impl::BeginBody(Direction dir) {
  if (dir == Direction::kResponse) {
    lead_len = 0;
    err_state = ErrState::kType;
    err_code_done = false;
    err_code.clear();
    return;
  }
  rq_nfields = 0;
  rq_field = 0;
  rq_lead = false;
  rq_lead_done = false;
  rq_kind = 0;
  for (int f = 0; f < 2; ++f) {
    rq_done[f] = rq_over[f] = false;
    rq_f[f].clear();
    // A long query leaves its buffer behind: give big ones back.
    if (rq_f[f].capacity() > 4096) std::string().swap(rq_f[f]);
  }
  if (req.untyped) return;  // startup parameters, cancel keys: not needed
  switch (req.type) {
    case 'Q':
      rq_nfields = 1;
      rq_cap[0] = limits.max_buffered_bytes;
      break;
    case 'P':
      rq_nfields = 2;
      rq_cap[0] = kMaxName;
      rq_cap[1] = limits.max_buffered_bytes > kMaxName ? limits.max_buffered_bytes - kMaxName : 0;
      break;
    case 'B':  // portal and statement; the parameters that follow are never read
      rq_nfields = 2;
      rq_cap[0] = rq_cap[1] = kMaxName;
      break;
    case 'E':
      rq_nfields = 1;
      rq_cap[0] = kMaxName;
      break;
    case 'D':
    case 'C':
      rq_lead = true;
      rq_nfields = 1;
      rq_cap[0] = kMaxName;
      break;
    default:  // passwords, SASL, CopyData, function arguments: skipped unread
      break;
  }
}

void PostgresParser::Impl::BodyBytes(Direction dir, std::string_view data) {
  size_t i = 0;
  if (dir == Direction::kResponse) {
    if (resp.type == 'T' || resp.type == 'D' || resp.type == 'H') {
      // Column counts (never the values): what a resync checks DataRows against.
      while (lead_len < sizeof(lead) && i < data.size()) {
        lead[lead_len++] = static_cast<uint8_t>(data[i++]);
      }
      return;
    }
    if (resp.type != 'E') return;  // only ErrorResponse has something we read
    while (i < data.size() && err_state != ErrState::kDone) {
      switch (err_state) {
        case ErrState::kType:
          if (data[i] == 0) {
            err_state = ErrState::kDone;
          } else {
            err_state = data[i] == 'C' ? ErrState::kCode : ErrState::kSkip;
          }
          ++i;
          break;
        case ErrState::kSkip: {  // a field other than the code: never looked at
          const void* nul = std::memchr(data.data() + i, 0, data.size() - i);
          if (nul == nullptr) return;
          i = static_cast<size_t>(static_cast<const char*>(nul) - data.data()) + 1;
          err_state = ErrState::kType;
          break;
        }
        case ErrState::kCode:
          if (data[i] == 0) {
            err_code_done = true;
            err_state = ErrState::kDone;  // nothing after the code is read
          } else if (err_code.size() < 6) {
            err_code.push_back(data[i]);
          }
          ++i;
          break;
        case ErrState::kDone:
          break;
      }
    }
    return;
  }
  if (rq_lead && !rq_lead_done && i < data.size()) {
    rq_kind = static_cast<uint8_t>(data[i++]);
    rq_lead_done = true;
  }
  while (i < data.size() && rq_field < rq_nfields) {
    const void* nul = std::memchr(data.data() + i, 0, data.size() - i);
    const size_t end =
        nul ? static_cast<size_t>(static_cast<const char*>(nul) - data.data()) : data.size();
    std::string& f = rq_f[rq_field];
    const size_t room = rq_cap[rq_field] - std::min(rq_cap[rq_field], f.size());
    const size_t take = std::min(end - i, room);
    f.append(data.data() + i, take);
    if (end - i > take) rq_over[rq_field] = true;
    i = end;
    if (nul != nullptr) {
      rq_done[rq_field] = true;
      ++rq_field;
      ++i;
    }
  }
}

void PostgresParser::Impl::EndMessage(Direction dir, uint64_t ts, std::vector<Operation>* out) {
  Stream& s = StreamOf(dir);
  const uint8_t type = s.type;
  s.state = Stream::State::kHeader;
  s.hdr_len = 0;
  s.resync = false;
  s.quiet = false;
  consecutive_errors = 0;
  if (dir == Direction::kRequest) {
    fresh = false;
    OnRequest(out);
  } else {
    TrackReply(type);
    OnResponse(type, ts, out);
    if (type == 'Z') {
      if (tentative) held = true;
      tentative = false;
      settled = false;
      row_cols = -1;
      copy_out = false;
    }
  }
}

void PostgresParser::Impl::TrackReply(uint8_t type) {
  switch (type) {
    case 'T':
    case 'D':
      if (lead_len >= 2) row_cols = Be16(lead);
      return;
    case 'H':
      copy_out = true;
      copy_format = lead_len >= 1 ? lead[0] : 0xff;
      copy_cols = lead_len >= 3 ? Be16(lead + 1) : -1;
      return;
    case 'c':
      copy_out = false;
      return;
    case 'C':
    case 'E':
    case 'I':
    case 's':
      if (tentative) settled = true;
      row_cols = -1;
      copy_out = false;
      return;
    default:
      return;
  }
}

void PostgresParser::Impl::ParseError(Direction dir, std::vector<Operation>* out) {
  ++stats.parse_errors;
  if (++consecutive_errors >= kMaxConsecutiveErrors) invalid = true;
  Lose(dir, out);
}

void PostgresParser::Impl::Lose(Direction dir, std::vector<Operation>* out) {
  Stream& s = StreamOf(dir);
  s.NextMessage();
  s.state = Stream::State::kLost;
  if (dir == Direction::kRequest) {
    expect_untyped = false;
    if (copy_in) {
      // COPY data lost: CopyData gets no reply, so pairing is intact; records are expected
      // to start inside a CopyData until the client's CopyDone.
      s.quiet = true;
      return;
    }
  } else {
    enc_pending = Encryption::kNone;
  }
  Drain(/*lost=*/true, out);
  await_request = true;
}

// ---- Requests ----

StmtPtr PostgresParser::Impl::Statement(std::string_view name, bool* known) const {
  StmtPtr st;
  if (name.empty()) {
    *known = unnamed_stmt_known;
    return unnamed_stmt;
  }
  *known = statements.Get(name, &st);
  return st;
}

StmtPtr PostgresParser::Impl::Portal(std::string_view name, bool* known) const {
  StmtPtr st;
  if (name.empty()) {
    *known = unnamed_portal_known;
    return unnamed_portal;
  }
  *known = portals.Get(name, &st);
  return st;
}

void PostgresParser::Impl::OnRequest(std::vector<Operation>* out) {
  (void)out;
  const uint64_t ts = req.first_ts;
  if (req.untyped) {
    if (req.code == kSslRequest) {
      enc_pending = Encryption::kSsl;
    } else if (req.code == kGssEncRequest) {
      enc_pending = Encryption::kGss;
    } else if (req.code != kCancelRequest) {
      expect_untyped = false;
      Item it;
      it.kind = Kind::kStartup;
      it.request_ts = ts;
      Push(std::move(it));
    }
    return;
  }
  Item it;
  it.request_ts = ts;
  bool known = false;
  switch (req.type) {
    case 'Q': {
      ++stats.requests;
      if (rq_over[0]) ++stats.oversized;  // summarised from its first max_buffered_bytes
      it.kind = Kind::kQuery;
      it.stmt = MakeStmt(rq_f[0], false, batch);
      // A simple Query destroys the unnamed statement and portal.
      unnamed_stmt.reset();
      unnamed_stmt_known = false;
      unnamed_portal.reset();
      unnamed_portal_known = false;
      group_open = false;
      Push(std::move(it));
      return;
    }
    case 'P': {
      if (rq_over[1]) ++stats.oversized;
      it.kind = Kind::kParse;
      it.request_ts = CommandTs(ts);
      // A name cut by the capture cannot be told from another: the statement stays unknown.
      if (!rq_done[0] && req.cut) {
        Push(std::move(it));
        return;
      }
      const bool named = !rq_f[0].empty();
      it.stmt = MakeStmt(rq_f[1], named, batch);
      it.prepared = named;
      if (named) {
        statements.Put(rq_f[0], it.stmt, limits.max_statements, &stats.statements_evicted);
      } else {
        unnamed_stmt = it.stmt;
        unnamed_stmt_known = true;
      }
      Push(std::move(it));
      return;
    }
    case 'B': {
      it.kind = Kind::kBind;
      it.request_ts = CommandTs(ts);
      if (rq_done[1]) it.stmt = Statement(rq_f[1], &known);
      if (rq_done[0] || !req.cut) {
        if (rq_f[0].empty()) {
          unnamed_portal = it.stmt;
          unnamed_portal_known = true;
        } else {
          portals.Put(rq_f[0], it.stmt, limits.max_statements, &stats.statements_evicted);
        }
      }
      Push(std::move(it));
      return;
    }
    case 'D': {
      it.kind = Kind::kDescribe;
      it.request_ts = CommandTs(ts);
      if (rq_done[0])
        it.stmt = rq_kind == 'S' ? Statement(rq_f[0], &known) : Portal(rq_f[0], &known);
      Push(std::move(it));
      return;
    }
    case 'E': {
      ++stats.requests;
      it.kind = Kind::kExecute;
      it.request_ts = CommandTs(ts);
      group_open = false;
      if (rq_done[0]) it.stmt = Portal(rq_f[0], &known);
      // Unknown statement: a prepared statement whose text was not seen.
      it.prepared = it.stmt == nullptr || it.stmt->named || it.stmt->batch != batch;
      Push(std::move(it));
      return;
    }
    case 'C': {
      it.kind = Kind::kClose;
      it.request_ts = CommandTs(ts);
      if (rq_done[0]) {
        if (rq_kind == 'S') {
          if (rq_f[0].empty()) {
            unnamed_stmt.reset();
            unnamed_stmt_known = false;
          } else {
            statements.Erase(rq_f[0]);
          }
        } else if (rq_kind == 'P') {
          if (rq_f[0].empty()) {
            unnamed_portal.reset();
            unnamed_portal_known = false;
          } else {
            portals.Erase(rq_f[0]);
          }
        }
      }
      Push(std::move(it));
      return;
    }
    case 'S':
      it.kind = Kind::kSync;
      ++batch;
      group_open = false;
      Push(std::move(it));
      return;
    case 'F':
      ++stats.requests;
      it.kind = Kind::kFunctionCall;
      group_open = false;
      Push(std::move(it));
      return;
    case 'c':  // CopyDone, CopyFail: the COPY's reply follows
    case 'f':
      copy_in = false;
      return;
    default:  // Flush, Terminate, CopyData, password and SASL messages: no reply of their own
      return;
  }
}

void PostgresParser::Impl::Push(Item&& it) {
  await_request = false;
  const bool op = IsOperation(it.kind);
  const size_t max_items = 4 * limits.max_pending + 8;
  const bool ends_batch =
      it.kind == Kind::kSync || it.kind == Kind::kQuery || it.kind == Kind::kFunctionCall;
  const bool full = (op && ops_pending >= limits.max_pending) || items.size() >= max_items;
  // Queue again once there is room, from a batch's first message on.
  if (dropping && dropped_batch_ended && !full) dropping = false;
  if (!dropping && full) dropping = true;
  if (dropping) {
    // Not queued; its replies must still be told from the next commands' ones: they end at
    // the ReadyForQuery that answers the Sync (or Query) closing this batch.
    if (op) ++stats.pending_overflow;
    if (items.empty() || items.back().kind != Kind::kDropped) {
      Item d;
      d.kind = Kind::kDropped;
      items.push_back(std::move(d));
    }
    if (ends_batch) ++items.back().syncs;
    dropped_batch_ended = ends_batch;
    return;
  }
  if (op) ++ops_pending;
  items.push_back(std::move(it));
}

void PostgresParser::Impl::Pop() {
  if (items.empty()) return;
  if (IsOperation(items.front().kind)) --ops_pending;
  items.pop_front();
}

// ---- Responses ----

Operation PostgresParser::Impl::MakeOp(const Item& it) const {
  Operation op;
  op.system = System::kPostgresql;
  op.request_ts = it.request_ts;
  op.prepared = it.prepared;
  if (it.kind == Kind::kFunctionCall) {
    op.operation = kFunctionCallOperation;
    op.query_summary = kFunctionCallOperation;
  } else if (it.stmt == nullptr) {
    op.operation = kUnseenStatement;
    op.query_summary = kUnseenStatement;
  } else {
    op.operation = it.stmt->operation;
    op.collection = it.stmt->collection;
    op.query_text = it.stmt->text;
    op.query_summary = it.stmt->summary;
    if (it.copy && op.operation == kFallbackOperation) {
      op.operation = "COPY";
      op.query_summary = op.collection.empty() ? "COPY" : "COPY " + op.collection;
    }
  }
  return op;
}

void PostgresParser::Impl::Emit(const Item& it, bool has_response, uint64_t response_ts,
                                std::string_view sqlstate, bool error,
                                std::vector<Operation>* out) {
  Operation& op = out->emplace_back(MakeOp(it));
  op.has_response = has_response;
  // A statement that failed at Parse/Bind/Describe with no Execute after it is reported as
  // an operation of its own: it is a command too (fuzz_db: replies paired <= commands).
  if (!IsOperation(it.kind)) ++stats.requests;
  if (has_response) {
    ++stats.responses;
    op.response_ts = response_ts;
  }
  if (error) {
    if (ValidSqlState(sqlstate)) {
      op.status_code = sqlstate;
      op.error_type = sqlstate.substr(0, 2);
    } else {
      op.error_type = kUnknownError;
    }
  }
}

void PostgresParser::Impl::OnResponse(uint8_t type, uint64_t ts, std::vector<Operation>* out) {
  switch (type) {
    case 'S':  // ParameterStatus, NoticeResponse, NotificationResponse: not replies
    case 'N':
    case 'A':
    case 'R':  // authentication exchange, session key, protocol negotiation
    case 'K':
    case 'v':
      return;
    case 'W':  // CopyBothResponse: streaming replication, not queries
      invalid = true;
      return;
    default:
      break;
  }
  if (await_request) return;  // replies to commands already reported lost
  std::string sqlstate;
  if (type == 'E') sqlstate = err_code_done ? err_code : std::string();
  if (items.empty()) {
    if (type == 'Z') ++stats.orphan_responses;
    return;
  }
  if (skipping) {
    if (type == 'Z') EndSkip(/*at_ready=*/true, out);
    return;
  }
  Item& head = items.front();
  switch (head.kind) {
    case Kind::kStartup:
      if (type == 'Z') Pop();
      return;
    case Kind::kQuery:
    case Kind::kFunctionCall:
      if (type == 'E' && !head.has_error) {
        head.has_error = true;
        head.sqlstate = std::move(sqlstate);
        head.error_ts = ts;
      } else if (type == 'G' || type == 'H') {
        head.copy = true;
        copy_in = type == 'G';
      } else if (type == 'Z') {
        copy_in = false;
        if (tentative && !settled && !head.has_error) {
          // Resynced at the end of the reply: the lost bytes may have held its error.
          ++stats.lost_responses;
          Emit(head, false, 0, {}, false, out);
        } else {
          Emit(head, true, ts, head.sqlstate, head.has_error, out);
        }
        Pop();
      }
      return;
    case Kind::kDropped:
      if (type == 'Z') {
        if (head.syncs > 1) {
          --head.syncs;
        } else {
          Pop();
        }
      }
      return;
    default:
      break;
  }
  if (type == 'E') {
    copy_in = false;
    if (head.kind == Kind::kSync) return;  // e.g. a deferred constraint failing at commit
    skipping = true;
    failure.item = std::move(head);
    failure.sqlstate = std::move(sqlstate);
    failure.ts = ts;
    failure.attributed = failure.item.kind == Kind::kExecute;
    if (failure.attributed) Emit(failure.item, true, ts, failure.sqlstate, true, out);
    Pop();
    return;
  }
  bool done = false;
  bool known = true;
  switch (head.kind) {
    case Kind::kParse:
      done = type == '1';
      known = done;
      break;
    case Kind::kBind:
      done = type == '2';
      known = done;
      break;
    case Kind::kDescribe:
      done = type == 'T' || type == 'n';
      known = done || type == 't';
      break;
    case Kind::kClose:
      done = type == '3';
      known = done;
      break;
    case Kind::kSync:
      done = type == 'Z';
      known = done;
      break;
    case Kind::kExecute:
      if (type == 'C' || type == 'I' || type == 's') {
        copy_in = false;
        Emit(head, true, ts, {}, false, out);
        done = true;
      } else if (type == 'G' || type == 'H') {
        head.copy = true;
        copy_in = type == 'G';
        // The server ignores Sync during COPY FROM STDIN (libpq sends one after Execute
        // without knowing the statement is a COPY, and another after CopyDone): the Syncs
        // the client sent with the Execute get no ReadyForQuery.
        while (copy_in && items.size() > 1 && items[1].kind == Kind::kSync) {
          items.erase(items.begin() + 1);
        }
      } else {
        known = type == 'D' || type == 'd' || type == 'c';
      }
      break;
    default:
      break;
  }
  if (done) {
    Pop();
    return;
  }
  if (known) return;
  if (type == 'Z') {
    // The queue lost track of a batch: what precedes its Sync was answered, unseen.
    while (!items.empty()) {
      const Kind k = items.front().kind;
      if (IsOperation(k)) {
        ++stats.lost_responses;
        Emit(items.front(), false, 0, {}, false, out);
      }
      Pop();
      if (k == Kind::kSync) break;
    }
    return;
  }
  ++stats.orphan_responses;  // a reply no queued message expects
}

// The server skipped every message after the failing one up to the batch's Sync: pop them.
// The first Execute of the same statement carries the error; without one, the failing
// message's statement does. Other Executes did not run.
void PostgresParser::Impl::EndSkip(bool at_ready, std::vector<Operation>* out) {
  skipping = false;
  const Kind k = failure.item.kind;
  const bool statement_failed = k == Kind::kParse || k == Kind::kBind || k == Kind::kDescribe;
  while (!items.empty()) {
    Item& it = items.front();
    if (it.kind == Kind::kSync) {
      Pop();
      break;
    }
    if (it.kind == Kind::kDropped) {
      if (at_ready) {
        if (it.syncs > 1) {
          --it.syncs;
        } else {
          Pop();
        }
      }
      break;
    }
    if (it.kind == Kind::kExecute && statement_failed && !failure.attributed &&
        it.stmt == failure.item.stmt) {
      failure.attributed = true;
      Emit(it, true, failure.ts, failure.sqlstate, true, out);
    } else if (IsOperation(it.kind)) {
      ++skipped_executes;
    }
    Pop();
  }
  if (statement_failed && !failure.attributed) {
    failure.item.prepared = failure.item.stmt != nullptr && failure.item.stmt->named;
    Emit(failure.item, true, failure.ts, failure.sqlstate, true, out);
  }
  failure = Failure{};
}

// Every command pending is reported without reply (a Query whose reply already held an
// error keeps it: that error was the server's answer).
void PostgresParser::Impl::Drain(bool lost, std::vector<Operation>* out) {
  if (skipping) EndSkip(/*at_ready=*/false, out);
  for (const Item& it : items) {
    if (!IsOperation(it.kind)) continue;
    if (it.has_error) {
      Emit(it, true, it.error_ts, it.sqlstate, true, out);
      continue;
    }
    if (lost) ++stats.lost_responses;
    Emit(it, false, 0, {}, false, out);
  }
  items.clear();
  ops_pending = 0;
  hunting = false;
  tentative = false;
  held = false;
  settled = false;
  snapshot.items.clear();
  row_cols = -1;
  copy_out = false;
  dropping = false;
  dropped_batch_ended = false;
  copy_in = false;
}

PostgresParser::PostgresParser(const Limits& limits)
    : impl_(std::make_unique<Impl>(limits, &stats_)) {}

PostgresParser::~PostgresParser() = default;

void PostgresParser::Feed(Direction dir, std::string_view payload, uint64_t len, uint64_t ts_ns,
                          std::vector<Operation>* out) noexcept {
  Impl& m = *impl_;
  if (!m.deferred.empty()) {
    for (Operation& op : m.deferred) out->push_back(std::move(op));
    m.deferred.clear();
  }
  if (m.invalid) return;
  m.Feed(dir, payload, len, ts_ns, out);
  // Held operations whose resync ended otherwise (a loss drained them): deliver.
  if (!m.tentative && !m.held && !m.held_ops.empty()) m.Commit(out);
}

void PostgresParser::FeedTail(Direction dir, std::string_view tail, uint64_t ts_ns,
                              std::vector<Operation>* out) noexcept {
  Impl& m = *impl_;
  if (dir != Direction::kResponse || m.invalid || tail.size() > kMaxTail) return;
  if (!m.deferred.empty()) {
    for (Operation& op : m.deferred) out->push_back(std::move(op));
    m.deferred.clear();
  }
  m.FeedTail(tail, ts_ns, out);
  if (!m.tentative && !m.held && !m.held_ops.empty()) m.Commit(out);
}

void PostgresParser::Gap(Direction dir) noexcept {
  Impl& m = *impl_;
  ++stats_.gaps;
  m.Commit(&m.deferred);  // nothing after the gap can refute what was parsed before it
  if (m.invalid) return;
  m.Lose(dir, &m.deferred);
}

void PostgresParser::Close(uint64_t ts_ns, std::vector<Operation>* out) noexcept {
  (void)ts_ns;  // pending commands have no reply: nothing to time
  Impl& m = *impl_;
  for (Operation& op : m.deferred) out->push_back(std::move(op));
  m.deferred.clear();
  m.Commit(out);
  // Still searching for a resync point: the capture lost the reply.
  m.Drain(/*lost=*/m.hunting, out);
}

bool PostgresParser::invalid() const noexcept { return impl_->invalid; }

uint64_t PostgresParser::skipped_executes() const noexcept { return impl_->skipped_executes; }

size_t PostgresParser::statements() const noexcept { return impl_->statements.size(); }

size_t PostgresParser::portals() const noexcept { return impl_->portals.size(); }

uint64_t PostgresParser::resyncs() const noexcept { return impl_->resyncs; }

uint64_t PostgresParser::resync_aborts() const noexcept { return impl_->resync_aborts; }

uint64_t PostgresParser::tail_resyncs() const noexcept { return impl_->tail_resyncs; }

std::unique_ptr<Parser> MakePostgresParser(const Limits& limits) {
  return std::make_unique<PostgresParser>(limits);
}

}  // namespace redtap::db

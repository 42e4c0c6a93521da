// SPDX-License-Identifier: Apache-2.0
// Redis: RESP2 and RESP3 commands and replies of one connection, paired FIFO.
//
// Choices (see also redis.h):
// - operation: the command name upper-cased when it is a known Redis command (or a module
//   command "JSON.SET", "FT.SEARCH", ...), else "_OTHER": a name outside the table may be a
//   key or value sent where a command belongs, and those never leave the parser. Container
//   commands (CLIENT, CONFIG, CLUSTER, COMMAND, SCRIPT, XINFO, XGROUP, OBJECT, MEMORY,
//   FUNCTION, ACL, PUBSUB, SLOWLOG, LATENCY, MODULE) followed by a known subcommand become
//   "CLIENT SETNAME"; an unknown subcommand leaves just "CLIENT".
//   query_text = the operation then " ?" per remaining argument, cut whole at kMaxQueryText.
// - Transactions: MULTI and EXEC/DISCARD are operations; the commands between them are
//   reported when the transaction ends, in order, before the EXEC/DISCARD. A command
//   answered +QUEUED takes its outcome from its EXEC element and the EXEC reply's time; one
//   rejected at queue time keeps that error and time. EXEC answered null (WATCH) reports
//   the queued commands with status "ABORTED" (EXEC itself succeeded: ""); EXEC answered
//   -EXECABORT gives them "EXECABORT"; DISCARD (and RESET) gives them "DISCARDED".
// - Pub/Sub: one (un)subscribe confirmation per channel argument; the command pairs with the
//   first, the rest are consumed. Without arguments, UNSUBSCRIBE-style commands consume
//   confirmations of their kind until the count reaches 0. Messages and RESP3 pushes are
//   counted in RedisCounters::pushes, never as replies or orphans.
// - CLIENT REPLY OFF/SKIP: the commands the server will not answer are reported without a
//   reply (RedisCounters::unanswered), so later replies stay paired. MONITOR lines and
//   (RESP2, subscribed) pub/sub messages are not replies either.
// - Memory: only the first kMaxNameBytes + 1 bytes of a line or bulk string are kept; bulk
//   bodies are skipped by length, captured or not; a header or inline line longer than
//   min(64 KiB, max_buffered_bytes) is a parse error. Nothing is buffered whole, so
//   max_message_bytes does not apply. Commands beyond max_pending (held = waiting for a
//   reply or inside an open MULTI) are dropped (pending_overflow) and their replies consumed
//   in order.
// - Synchronisation: both directions start resynchronising (the connection may be tracked
//   mid-stream). The request side accepts a record starting with "*<n>\r\n$<digit>" or a
//   known command word (or a prefix of either cut by the record end); other records are parse
//   errors. The response side accepts a record starting with a well-formed RESP header; before
//   that, other records are dropped silently, except when a command seen whole is waiting
//   for its reply (then the server's first bytes must start one). After a loss it waits for a
//   command completed after the loss first. 4 parse errors in a row make the parser invalid.
#include "parsers/db/redis.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace redtap::db {
namespace {

constexpr size_t kMaxDepth = 32;                       // nested aggregates
constexpr size_t kMaxLineBytes = 64 * 1024;            // a header/inline line (Redis: 64 KiB)
constexpr uint64_t kMaxBulkBytes = uint64_t{1} << 32;  // above any proto-max-bulk-len in use
constexpr int64_t kMaxElements = INT32_MAX;
constexpr int kMaxConsecutiveErrors = 4;
constexpr size_t kKeep = kMaxNameBytes + 1;  // bytes of a line/bulk kept: a name and 1 more
constexpr size_t kMaxStatusBytes = 16;       // an error prefix longer than this is "ERR"

// clang-format off
constexpr std::string_view kCommandNames[] = {
    "ACL", "APPEND", "ASKING", "AUTH", "BGREWRITEAOF", "BGSAVE", "BITCOUNT", "BITFIELD",
    "BITFIELD_RO", "BITOP", "BITPOS", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP",
    "BZPOPMAX", "BZPOPMIN", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "COPY", "DBSIZE", "DEBUG",
    "DECR", "DECRBY", "DEL", "DISCARD", "DUMP", "ECHO", "EVAL", "EVALSHA", "EVALSHA_RO", "EVAL_RO",
    "EXEC", "EXISTS", "EXPIRE", "EXPIREAT", "EXPIRETIME", "FAILOVER", "FCALL", "FCALL_RO",
    "FLUSHALL", "FLUSHDB", "FUNCTION", "GEOADD", "GEODIST", "GEOHASH", "GEOPOS", "GEORADIUS",
    "GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO", "GEORADIUS_RO", "GEOSEARCH", "GEOSEARCHSTORE",
    "GET", "GETBIT", "GETDEL", "GETEX", "GETRANGE", "GETSET", "HDEL", "HELLO", "HEXISTS", "HEXPIRE",
    "HEXPIREAT", "HEXPIRETIME", "HGET", "HGETALL", "HGETDEL", "HGETEX", "HINCRBY", "HINCRBYFLOAT",
    "HKEYS", "HLEN", "HMGET", "HMSET", "HPERSIST", "HPEXPIRE", "HPEXPIREAT", "HPEXPIRETIME",
    "HPTTL", "HRANDFIELD", "HSCAN", "HSET", "HSETEX", "HSETNX", "HSTRLEN", "HTTL", "HVALS", "INCR",
    "INCRBY", "INCRBYFLOAT", "INFO", "KEYS", "LASTSAVE", "LATENCY", "LCS", "LINDEX", "LINSERT",
    "LLEN", "LMOVE", "LMPOP", "LOLWUT", "LPOP", "LPOS", "LPUSH", "LPUSHX", "LRANGE", "LREM", "LSET",
    "LTRIM", "MEMORY", "MGET", "MIGRATE", "MODULE", "MONITOR", "MOVE", "MSET", "MSETNX", "MULTI",
    "OBJECT", "PERSIST", "PEXPIRE", "PEXPIREAT", "PEXPIRETIME", "PFADD", "PFCOUNT", "PFDEBUG",
    "PFMERGE", "PFSELFTEST", "PING", "PSETEX", "PSUBSCRIBE", "PSYNC", "PTTL", "PUBLISH", "PUBSUB",
    "PUNSUBSCRIBE", "QUIT", "RANDOMKEY", "READONLY", "READWRITE", "RENAME", "RENAMENX", "REPLCONF",
    "REPLICAOF", "RESET", "RESTORE", "RESTORE-ASKING", "ROLE", "RPOP", "RPOPLPUSH", "RPUSH",
    "RPUSHX", "SADD", "SAVE", "SCAN", "SCARD", "SCRIPT", "SDIFF", "SDIFFSTORE", "SELECT",
    "SENTINEL", "SET", "SETBIT", "SETEX", "SETNX", "SETRANGE", "SHUTDOWN", "SINTER", "SINTERCARD",
    "SINTERSTORE", "SISMEMBER", "SLAVEOF", "SLOWLOG", "SMEMBERS", "SMISMEMBER", "SMOVE", "SORT",
    "SORT_RO", "SPOP", "SPUBLISH", "SRANDMEMBER", "SREM", "SSCAN", "SSUBSCRIBE", "STRALGO",
    "STRLEN", "SUBSCRIBE", "SUBSTR", "SUNION", "SUNIONSTORE", "SUNSUBSCRIBE", "SWAPDB", "SYNC",
    "TIME", "TOUCH", "TTL", "TYPE", "UNLINK", "UNSUBSCRIBE", "UNWATCH", "VADD", "VCARD", "VDIM",
    "VEMB", "VGETATTR", "VINFO", "VLINKS", "VRANDMEMBER", "VREM", "VSETATTR", "VSIM", "WAIT",
    "WAITAOF", "WATCH", "XACK", "XACKDEL", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL", "XDELEX",
    "XGROUP", "XINFO", "XLEN", "XPENDING", "XRANGE", "XREAD", "XREADGROUP", "XREVRANGE", "XSETID",
    "XTRIM", "ZADD", "ZCARD", "ZCOUNT", "ZDIFF", "ZDIFFSTORE", "ZINCRBY", "ZINTER", "ZINTERCARD",
    "ZINTERSTORE", "ZLEXCOUNT", "ZMPOP", "ZMSCORE", "ZPOPMAX", "ZPOPMIN", "ZRANDMEMBER", "ZRANGE",
    "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANGESTORE", "ZRANK", "ZREM", "ZREMRANGEBYLEX",
    "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE",
    "ZREVRANK", "ZSCAN", "ZSCORE", "ZUNION", "ZUNIONSTORE",
};
// clang-format on

// Subcommands of the container commands (one table for all of them).
// clang-format off
constexpr std::string_view kSubcommandNames[] = {
    "ADDSLOTS", "ADDSLOTSRANGE", "BUMPEPOCH", "CACHING", "CAT", "CHANNELS", "CONSUMERS", "COUNT",
    "COUNT-FAILURE-REPORTS", "COUNTKEYSINSLOT", "CREATE", "CREATECONSUMER", "DELCONSUMER", "DELETE",
    "DELSLOTS", "DELSLOTSRANGE", "DELUSER", "DESTROY", "DOCS", "DOCTOR", "DRYRUN", "DUMP",
    "ENCODING", "EXISTS", "FAILOVER", "FLUSH", "FLUSHSLOTS", "FORGET", "FREQ", "GENPASS", "GET",
    "GETKEYS", "GETKEYSANDFLAGS", "GETKEYSINSLOT", "GETNAME", "GETREDIR", "GETUSER", "GRAPH",
    "GROUPS", "HELP", "HISTOGRAM", "HISTORY", "ID", "IDLETIME", "INFO", "KEYSLOT", "KILL", "LATEST",
    "LEN", "LINKS", "LIST", "LOAD", "LOADEX", "LOG", "MALLOC-STATS", "MEET", "MYID", "MYSHARDID",
    "NO-EVICT", "NO-TOUCH", "NODES", "NUMPAT", "NUMSUB", "PAUSE", "PURGE", "REFCOUNT", "REPLICAS",
    "REPLICATE", "REPLY", "RESET", "RESETSTAT", "RESTORE", "REWRITE", "SAVE", "SAVECONFIG", "SET",
    "SET-CONFIG-EPOCH", "SETID", "SETINFO", "SETNAME", "SETSLOT", "SETUSER", "SHARDCHANNELS",
    "SHARDNUMSUB", "SHARDS", "SLAVES", "SLOTS", "STATS", "STREAM", "TRACKING", "TRACKINGINFO",
    "UNBLOCK", "UNLOAD", "UNPAUSE", "USAGE", "USERS", "WHOAMI",
};
// clang-format on

constexpr std::string_view kContainers[] = {
    "ACL",    "CLIENT", "CLUSTER", "COMMAND", "CONFIG",  "FUNCTION", "LATENCY", "MEMORY",
    "MODULE", "OBJECT", "PUBSUB",  "SCRIPT",  "SLOWLOG", "XGROUP",   "XINFO",
};

// Module command prefixes ("JSON.SET").
constexpr std::string_view kModules[] = {"AI",   "BF", "CF",      "CMS",  "FT", "GRAPH",
                                         "JSON", "RG", "TDIGEST", "TOPK", "TS"};

template <size_t N>
constexpr std::array<std::string_view, N> SortedTable(const std::string_view (&in)[N]) {
  std::array<std::string_view, N> a{};
  for (size_t i = 0; i < N; ++i) a[i] = in[i];
  std::sort(a.begin(), a.end());
  return a;
}
constexpr auto kCommands = SortedTable(kCommandNames);
constexpr auto kSubcommands = SortedTable(kSubcommandNames);

bool InTable(std::string_view s, const auto& table) {
  return std::binary_search(table.begin(), table.end(), s);
}

char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// Upper-cases a name into `buf` (kMaxNameBytes); false when it is too long or holds bytes no
// command name has.
bool NormalizeName(std::string_view in, char* buf, size_t* n) {
  if (in.empty() || in.size() > kMaxNameBytes) return false;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = Upper(in[i]);
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
    buf[i] = c;
  }
  *n = in.size();
  return true;
}

bool IsModuleCommand(std::string_view name) {
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot + 1 >= name.size()) return false;
  // Module command names are letters and '_' ("FT._LIST", "GRAPH.RO_QUERY"): nothing that
  // could hold a number.
  const std::string_view rest = name.substr(dot + 1);
  if (rest.size() > 32) return false;
  for (char c : rest) {
    if (!((c >= 'A' && c <= 'Z') || c == '_')) return false;
  }
  return std::find(std::begin(kModules), std::end(kModules), name.substr(0, dot)) !=
         std::end(kModules);
}

// The canonical command name of `token`, or "" when it is no known command.
std::string_view KnownCommand(std::string_view token, char* buf) {
  size_t n = 0;
  if (!NormalizeName(token, buf, &n)) return {};
  const std::string_view name(buf, n);
  if (InTable(name, kCommands) || IsModuleCommand(name)) return name;
  return {};
}

// A small prefix of a token, line or bulk string, and its full length.
struct Capture {
  std::array<char, kKeep> buf{};
  size_t kept = 0;
  uint64_t len = 0;

  void Clear() {
    kept = 0;
    len = 0;
  }
  void Add(const char* p, size_t n) {
    const size_t take = std::min(n, buf.size() - kept);
    if (take > 0) memcpy(buf.data() + kept, p, take);
    kept += take;
    len += n;
  }
  bool complete() const { return kept == len; }
  std::string_view view() const { return {buf.data(), kept}; }
};

enum class LineResult : uint8_t { kMore, kDone, kBad };

// A CRLF-terminated header line read incrementally: only its first bytes are kept.
struct LineReader {
  Capture cap;
  bool last_cr = false;

  void Reset() {
    cap.Clear();
    last_cr = false;
  }
  LineResult Feed(const char*& p, const char* end, size_t max_len) {
    const char* nl = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* stop = nl ? nl : end;
    const size_t n = static_cast<size_t>(stop - p);
    if (n > 0) {
      cap.Add(p, n);
      last_cr = p[n - 1] == '\r';
    }
    p = stop;
    if (cap.len > max_len + 1) return LineResult::kBad;
    if (!nl) return LineResult::kMore;
    ++p;
    if (!last_cr) return LineResult::kBad;
    cap.len -= 1;  // the CR
    cap.kept = std::min<uint64_t>(cap.kept, cap.len);
    return LineResult::kDone;
  }
};

// "[+-]digits" (at most 19 digits): RESP integers and lengths.
bool ParseInteger(const Capture& c, int64_t* v) {
  if (!c.complete() || c.kept == 0) return false;
  const std::string_view s = c.view();
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
  }
  if (i == s.size() || s.size() - i > 19) return false;
  uint64_t acc = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    acc = acc * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  if (acc > static_cast<uint64_t>(INT64_MAX)) return false;
  *v = neg ? -static_cast<int64_t>(acc) : static_cast<int64_t>(acc);
  return true;
}

// The Redis error prefix of an error text of `full_len` bytes whose first bytes are `text`.
std::string_view ErrorPrefix(std::string_view text, uint64_t full_len) {
  const size_t sp = text.find(' ');
  if (sp == std::string_view::npos && text.size() < full_len) return "ERR";  // word cut
  const std::string_view word = text.substr(0, sp);
  if (word.empty() || word.size() > kMaxStatusBytes) return "ERR";
  for (char c : word) {
    if (c < 'A' || c > 'Z') return "ERR";
  }
  return word;
}

bool IsTypeByte(char c) {
  switch (c) {
    case '+':
    case '-':
    case ':':
    case '$':
    case '*':
    case '_':
    case '#':
    case ',':
    case '(':
    case '!':
    case '=':
    case '%':
    case '~':
    case '|':
    case '>':
      return true;
    default:
      return false;
  }
}

bool IsResp3Type(char c) { return c != '+' && c != '-' && c != ':' && c != '$' && c != '*'; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

enum class Verdict : uint8_t { kNo, kMaybe, kYes };

// Whether a client record starts like a command: kMaybe when it ends before that is known
// (a command cut by the writer's split is parsed tentatively: errors are still counted).
Verdict CommandStart(std::string_view d) {
  if (d.empty()) return Verdict::kMaybe;
  if (d[0] == '*') {
    size_t i = 1;
    while (i < d.size() && i <= 10 && IsDigit(d[i])) ++i;
    if (d.size() > 1 && (i == 1 || d[1] == '0')) return Verdict::kNo;
    if (i == d.size()) return Verdict::kMaybe;
    static constexpr std::string_view kSep = "\r\n$";
    for (size_t k = 0; k < kSep.size(); ++k, ++i) {
      if (i == d.size()) return Verdict::kMaybe;
      if (d[i] != kSep[k]) return Verdict::kNo;
    }
    if (i == d.size()) return Verdict::kMaybe;
    return IsDigit(d[i]) ? Verdict::kYes : Verdict::kNo;
  }
  size_t i = 0;
  while (i < d.size() && i <= kMaxNameBytes && d[i] != ' ' && d[i] != '\t' && d[i] != '\r' &&
         d[i] != '\n')
    ++i;
  if (i == 0 || i > kMaxNameBytes) return Verdict::kNo;
  char buf[kMaxNameBytes];
  size_t n = 0;
  if (!NormalizeName(d.substr(0, i), buf, &n)) return Verdict::kNo;
  const std::string_view token(buf, n);
  if (i < d.size()) return KnownCommand(token, buf).empty() ? Verdict::kNo : Verdict::kYes;
  // The word goes on past the record: some command (or module prefix) must start with it.
  const auto it = std::lower_bound(kCommands.begin(), kCommands.end(), token);
  if (it != kCommands.end() && it->starts_with(token)) return Verdict::kMaybe;
  for (std::string_view m : kModules) {
    if (m.starts_with(token) || token.starts_with(m)) return Verdict::kMaybe;
  }
  return Verdict::kNo;
}

// Whether a server record starts like a RESP value; a header cut by the record end counts
// when what is visible of it is well formed.
bool ReplyStart(std::string_view d) {
  if (d.empty() || !IsTypeByte(d[0])) return false;
  const char t = d[0];
  // The visible part of the header line: all of it when its CR is in `d`.
  const size_t cr = d.find('\r', 1);
  const bool whole = cr != std::string_view::npos;
  if (whole && cr + 1 < d.size() && d[cr + 1] != '\n') return false;
  const std::string_view h = d.substr(1, whole ? cr - 1 : std::string_view::npos);
  if (h.size() > 1024) return false;
  if (h.empty() && !whole) return true;
  switch (t) {
    case '+':
    case '-':
      if (t == '-' && h.empty()) return false;
      for (char c : h) {
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return false;
      }
      return true;
    case '_':
      return h.empty();
    case '#':
      return h == "t" || h == "f";
    case ':':
    case '(':
    case ',':
      if (h.empty()) return false;
      for (size_t i = 0; i < h.size(); ++i) {
        const char c = h[i];
        const bool ok = IsDigit(c) || ((c == '-' || c == '+') && i == 0) ||
                        (t == ',' && (c == '.' || c == 'e' || c == 'E' || c == 'i' || c == 'n' ||
                                      c == 'f' || c == 'a' || c == '-' || c == '+'));
        if (!ok) return false;
      }
      return true;
    default:  // lengths and counts
      if (h.empty() || h.size() > 11) return false;
      if (h[0] == '-') return (t == '$' || t == '*') && (h == "-" || h == "-1");
      for (char c : h) {
        if (!IsDigit(c)) return false;
      }
      return true;
  }
}

enum class Kind : uint8_t {
  kNormal,
  kMulti,
  kExec,
  kDiscard,
  kReset,
  kMonitor,
  kHello,
  kSubscribe,
  kPsubscribe,
  kSsubscribe,
  kUnsubscribe,
  kPunsubscribe,
  kSunsubscribe,
};

Kind KindOf(std::string_view name) {
  static constexpr std::pair<std::string_view, Kind> kKinds[] = {
      {"MULTI", Kind::kMulti},
      {"EXEC", Kind::kExec},
      {"DISCARD", Kind::kDiscard},
      {"RESET", Kind::kReset},
      {"MONITOR", Kind::kMonitor},
      {"HELLO", Kind::kHello},
      {"SUBSCRIBE", Kind::kSubscribe},
      {"PSUBSCRIBE", Kind::kPsubscribe},
      {"SSUBSCRIBE", Kind::kSsubscribe},
      {"UNSUBSCRIBE", Kind::kUnsubscribe},
      {"PUNSUBSCRIBE", Kind::kPunsubscribe},
      {"SUNSUBSCRIBE", Kind::kSunsubscribe},
  };
  for (const auto& [n, k] : kKinds) {
    if (n == name) return k;
  }
  return Kind::kNormal;
}

// The (un)subscribe kind a confirmation's first element names; kNormal for none.
Kind SubKindOfWord(std::string_view w) {
  static constexpr std::pair<std::string_view, Kind> kWords[] = {
      {"subscribe", Kind::kSubscribe},       {"psubscribe", Kind::kPsubscribe},
      {"ssubscribe", Kind::kSsubscribe},     {"unsubscribe", Kind::kUnsubscribe},
      {"punsubscribe", Kind::kPunsubscribe}, {"sunsubscribe", Kind::kSunsubscribe},
  };
  for (const auto& [n, k] : kWords) {
    if (n == w) return k;
  }
  return Kind::kNormal;
}

bool IsSubscribeKind(Kind k) {
  return k == Kind::kSubscribe || k == Kind::kPsubscribe || k == Kind::kSsubscribe;
}

struct Pending {
  Operation op;
  Kind kind = Kind::kNormal;
  uint64_t nargs = 0;        // arguments after the command name
  uint64_t skip_before = 0;  // replies of commands dropped (max_pending) sent just before it
  bool no_reply = false;     // CLIENT REPLY OFF/SKIP: the server sends nothing
};

struct Queued {
  Operation op;
  bool queued = false;  // answered +QUEUED: its outcome is its EXEC element
};

// The top-level reply being read: only what pairing needs.
struct Reply {
  static constexpr size_t kWord = 15;
  char type = 0;
  bool null = false;
  std::string err;  // error prefix of a '-' or '!' reply
  std::array<char, kWord> simple{};
  size_t simple_len = 0;  // bytes of `simple` valid (a '+' reply's first bytes)
  bool simple_whole = false;
  int64_t count = -1;  // elements of a top-level aggregate
  std::array<char, kWord> elem0{};
  size_t elem0_len = 0;
  bool elem0_ok = false;  // element 0 is a short string held whole
  int64_t elem2 = 0;
  bool elem2_ok = false;              // element 2 is an integer
  std::vector<std::string> statuses;  // depth-1 elements' error prefixes (EXEC), bounded
  size_t status_cap = 0;

  void Reset(char t) {
    type = t;
    null = false;
    err.clear();
    simple_len = 0;
    simple_whole = false;
    count = -1;
    elem0_len = 0;
    elem0_ok = false;
    elem2_ok = false;
    statuses.clear();
    status_cap = 0;
  }
  std::string_view Simple() const { return {simple.data(), simple_len}; }
  std::string_view Elem0() const {
    return elem0_ok ? std::string_view(elem0.data(), elem0_len) : "";
  }
  bool IsMessage() const {
    if (type != '*' || !elem0_ok) return false;
    const std::string_view w = Elem0();
    return ((w == "message" || w == "smessage") && count == 3) || (w == "pmessage" && count == 4);
  }
  Kind SubKind() const {
    if ((type != '*' && type != '>') || count != 3 || !elem2_ok) return Kind::kNormal;
    return SubKindOfWord(Elem0());
  }
};

// A completed scalar (or aggregate, text == nullptr).
struct Value {
  char type = 0;
  bool null = false;
  const Capture* text = nullptr;
  int64_t integer = 0;
};

class RedisParser final : public Parser {
 public:
  explicit RedisParser(const Limits& limits)
      : max_line_(std::min(kMaxLineBytes, std::max<size_t>(limits.max_buffered_bytes, 16))),
        max_pending_(std::max<size_t>(limits.max_pending, 1)) {}

  void Feed(Direction dir, std::string_view payload, uint64_t len, uint64_t ts,
            std::vector<Operation>* out) noexcept override;
  void Gap(Direction dir) noexcept override;
  void Close(uint64_t ts, std::vector<Operation>* out) noexcept override;
  bool invalid() const noexcept override { return invalid_; }
  System system() const noexcept override { return System::kRedis; }
  const RedisCounters& counters() const { return counters_; }

 private:
  enum class Req : uint8_t { kStart, kArrayLine, kElemType, kElemLine, kBody, kBodyCrlf, kInline };
  enum class Resp : uint8_t { kType, kLine, kBody, kBodyCrlf };
  enum class ReplyMode : uint8_t { kOn, kOff, kSkipNext };
  struct Frame {
    uint64_t remaining = 0;
    uint64_t index = 0;
    char type = 0;
  };
  struct Leftover {  // (un)subscribe confirmations still due to the last paired command
    Kind kind = Kind::kNormal;
    uint64_t remaining = 0;
    bool open = false;  // no channel argument: until the count reaches 0
  };

  void ParseError();
  void FlushDeferred(std::vector<Operation>* out);
  void LoseAll(std::vector<Operation>* out);
  size_t Held() const { return pending_.size() + txn_.size(); }

  // Request side.
  void ResetRequest();
  bool RequestBytes(const char* p, const char* end, uint64_t ts, std::vector<Operation>* out);
  bool InlineBytes(const char*& p, const char* end, std::vector<Operation>* out);
  void ElementDone(std::vector<Operation>* out);
  void RequestUncaptured(uint64_t n, uint64_t ts, std::vector<Operation>* out);
  void CommandDone(uint64_t nelems, std::vector<Operation>* out);
  void DrainNoReply(std::vector<Operation>* out);

  // Response side.
  void ResetResponse();
  bool ResponseBytes(const char* p, const char* end, uint64_t ts, std::vector<Operation>* out);
  bool ResponseLine(uint64_t ts, std::vector<Operation>* out);
  void ValueDone(Value v, uint64_t ts, std::vector<Operation>* out);
  void RecordElement(uint64_t index, const Value& v);
  void ResponseUncaptured(uint64_t n, uint64_t ts, std::vector<Operation>* out);
  void Pair(uint64_t ts, std::vector<Operation>* out);
  void SubscribeReply(Kind kind, int64_t count, uint64_t ts, std::vector<Operation>* out);
  bool FrontIs(Kind k) const {
    return !pending_.empty() && pending_.front().kind == k && pending_.front().skip_before == 0;
  }
  void Queue(Pending p, bool queued, std::string_view status, uint64_t ts);
  void SkippedReply(uint64_t ts, std::vector<Operation>* out);
  void EndTransaction(std::string_view queued_status, uint64_t ts, std::vector<Operation>* out);
  void Emit(Pending& p, std::string_view status, uint64_t ts, std::vector<Operation>* out);

  size_t max_line_;
  size_t max_pending_;
  RedisCounters counters_;
  bool invalid_ = false;
  bool closed_ = false;
  int consecutive_errors_ = 0;
  std::vector<Operation> deferred_;  // lost at a Gap(): reported at the next call with `out`

  // Request side.
  Req rq_ = Req::kStart;
  bool rq_resync_ = true;  // a connection may be tracked mid-stream
  uint64_t rq_ts_ = 0;
  LineReader rq_line_;
  int64_t rq_elems_ = 0;
  int64_t rq_index_ = 0;
  uint64_t rq_body_ = 0;
  uint8_t rq_crlf_ = 0;
  std::array<Capture, 3> rq_tok_;  // first three elements: command, subcommand, argument
  uint64_t rq_ntok_ = 0;           // inline: tokens so far
  uint64_t rq_inline_len_ = 0;
  bool rq_in_tok_ = false;
  char rq_quote_ = 0;
  bool rq_escape_ = false;
  ReplyMode reply_mode_ = ReplyMode::kOn;
  uint64_t next_seq_ = 0;  // commands completed so far

  // Response side.
  Resp rs_ = Resp::kType;
  bool rs_resync_ = true;         // validate the record start before parsing
  bool rs_wait_request_ = false;  // ... once a command completed after a loss
  uint64_t rs_wait_seq_ = 0;
  char rs_type_ = 0;
  LineReader rs_line_;
  uint64_t rs_body_ = 0;
  uint8_t rs_crlf_ = 0;
  Capture rs_bulk_;
  std::array<Frame, kMaxDepth> stack_{};
  size_t depth_ = 0;
  Reply reply_;

  // Pairing.
  std::deque<Pending> pending_;
  uint64_t dropped_tail_ = 0;  // commands dropped (max_pending) after the last pending one
  std::vector<Queued> txn_;    // commands of the open MULTI, in order
  size_t txn_queued_ = 0;      // of which answered +QUEUED
  bool txn_active_ = false;
  bool subscribed_ = false;  // RESP2 subscribed mode: arrays may be pub/sub messages
  bool monitor_ = false;
  bool resp3_ = false;
  Leftover leftover_;
};

void RedisParser::ParseError() {
  ++stats_.parse_errors;
  if (++consecutive_errors_ >= kMaxConsecutiveErrors) invalid_ = true;
}

void RedisParser::FlushDeferred(std::vector<Operation>* out) {
  if (deferred_.empty()) return;
  for (Operation& op : deferred_) out->push_back(std::move(op));
  deferred_.clear();
}

// Framing was lost: no reply can be trusted to belong to a command sent before now.
void RedisParser::LoseAll(std::vector<Operation>* out) {
  for (Queued& q : txn_) {
    if (q.queued) ++stats_.lost_responses;  // else: its queue-time error is its outcome
    deferred_.push_back(std::move(q.op));
  }
  txn_.clear();
  txn_queued_ = 0;
  txn_active_ = false;
  for (Pending& p : pending_) {
    if (p.no_reply) {
      ++counters_.unanswered;
    } else {
      ++stats_.lost_responses;
    }
    deferred_.push_back(std::move(p.op));
  }
  pending_.clear();
  dropped_tail_ = 0;
  leftover_ = {};
  ResetResponse();
  rs_resync_ = true;
  rs_wait_request_ = true;
  rs_wait_seq_ = next_seq_;
  if (out != nullptr) FlushDeferred(out);
}

void RedisParser::Feed(Direction dir, std::string_view payload, uint64_t len, uint64_t ts,
                       std::vector<Operation>* out) noexcept {
  if (closed_ || out == nullptr) return;
  FlushDeferred(out);
  if (invalid_) return;
  const uint64_t uncaptured = len > payload.size() ? len - payload.size() : 0;
  const char* p = payload.data();
  const char* end = p + payload.size();
  if (dir == Direction::kRequest) {
    if (rq_resync_) {
      if (payload.empty()) return;
      if (CommandStart(payload) == Verdict::kNo) {
        ParseError();
        return;
      }
      rq_resync_ = false;
      ResetRequest();
    }
    if (!RequestBytes(p, end, ts, out)) {
      // Redis closes the connection after a protocol error: nothing to pair any more.
      ParseError();
      ResetRequest();
      rq_resync_ = true;
      return;
    }
    if (uncaptured > 0) RequestUncaptured(uncaptured, ts, out);
  } else {
    if (rs_resync_) {
      if (rs_wait_request_ && next_seq_ <= rs_wait_seq_) return;  // replies to lost commands
      if (payload.empty()) {
        // A command seen from its start waits and its reply's header was not captured.
        if (uncaptured > 0 && !rs_wait_request_ && !pending_.empty()) {
          ++stats_.gaps;
          LoseAll(out);
        }
        return;
      }
      if (!ReplyStart(payload)) {
        // The rest of a reply (reads split anywhere), unless a command seen from its start
        // waits: then the server's first bytes must start its reply.
        if (!rs_wait_request_ && !pending_.empty()) {
          ParseError();
          LoseAll(out);
        }
        return;
      }
      rs_resync_ = false;
      rs_wait_request_ = false;
      ResetResponse();
    }
    if (!ResponseBytes(p, end, ts, out)) {
      ParseError();
      LoseAll(out);
      return;
    }
    if (uncaptured > 0) ResponseUncaptured(uncaptured, ts, out);
  }
}

void RedisParser::Gap(Direction dir) noexcept {
  if (closed_) return;
  ++stats_.gaps;
  if (dir == Direction::kRequest) {
    ResetRequest();
    rq_resync_ = true;
  }
  LoseAll(nullptr);
}

void RedisParser::Close(uint64_t ts, std::vector<Operation>* out) noexcept {
  (void)ts;
  if (closed_ || out == nullptr) return;
  closed_ = true;
  FlushDeferred(out);
  for (Queued& q : txn_) out->push_back(std::move(q.op));
  txn_.clear();
  for (Pending& p : pending_) {
    if (p.no_reply) ++counters_.unanswered;
    out->push_back(std::move(p.op));
  }
  pending_.clear();
}

// ---- Request side ----

void RedisParser::ResetRequest() {
  rq_ = Req::kStart;
  rq_line_.Reset();
  rq_elems_ = rq_index_ = 0;
  rq_body_ = 0;
  rq_crlf_ = 0;
  for (Capture& c : rq_tok_) c.Clear();
  rq_ntok_ = rq_inline_len_ = 0;
  rq_in_tok_ = false;
  rq_quote_ = 0;
  rq_escape_ = false;
}

bool RedisParser::RequestBytes(const char* p, const char* end, uint64_t ts,
                               std::vector<Operation>* out) {
  while (p < end) {
    switch (rq_) {
      case Req::kStart:
        rq_ts_ = ts;
        for (Capture& c : rq_tok_) c.Clear();
        if (*p == '*') {
          ++p;
          rq_line_.Reset();
          rq_ = Req::kArrayLine;
        } else {
          rq_ntok_ = rq_inline_len_ = 0;
          rq_in_tok_ = false;
          rq_quote_ = 0;
          rq_escape_ = false;
          rq_ = Req::kInline;
        }
        break;
      case Req::kArrayLine: {
        const LineResult r = rq_line_.Feed(p, end, max_line_);
        if (r == LineResult::kBad) return false;
        if (r == LineResult::kMore) break;
        int64_t n = 0;
        if (!ParseInteger(rq_line_.cap, &n) || n > kMaxElements) return false;
        if (n <= 0) {
          rq_ = Req::kStart;  // Redis ignores an empty multibulk
          break;
        }
        rq_elems_ = n;
        rq_index_ = 0;
        rq_ = Req::kElemType;
        break;
      }
      case Req::kElemType:
        if (*p != '$') return false;
        ++p;
        rq_line_.Reset();
        rq_ = Req::kElemLine;
        break;
      case Req::kElemLine: {
        const LineResult r = rq_line_.Feed(p, end, max_line_);
        if (r == LineResult::kBad) return false;
        if (r == LineResult::kMore) break;
        int64_t n = 0;
        if (!ParseInteger(rq_line_.cap, &n) || n < 0 || static_cast<uint64_t>(n) > kMaxBulkBytes)
          return false;
        rq_body_ = static_cast<uint64_t>(n);
        rq_crlf_ = 0;
        rq_ = rq_body_ > 0 ? Req::kBody : Req::kBodyCrlf;
        break;
      }
      case Req::kBody: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(rq_body_, end - p));
        if (rq_index_ < 3) rq_tok_[static_cast<size_t>(rq_index_)].Add(p, n);
        p += n;
        rq_body_ -= n;
        if (rq_body_ == 0) rq_ = Req::kBodyCrlf;
        break;
      }
      case Req::kBodyCrlf:
        if (*p != "\r\n"[rq_crlf_]) return false;
        ++p;
        if (++rq_crlf_ == 2) ElementDone(out);
        break;
      case Req::kInline:
        if (!InlineBytes(p, end, out)) return false;
        break;
    }
  }
  return true;
}

void RedisParser::ElementDone(std::vector<Operation>* out) {
  rq_crlf_ = 0;
  if (++rq_index_ < rq_elems_) {
    rq_ = Req::kElemType;
    return;
  }
  rq_ = Req::kStart;
  CommandDone(static_cast<uint64_t>(rq_elems_), out);
}

// An inline command: blank-separated words, quotes as in redis-cli (sdssplitargs).
bool RedisParser::InlineBytes(const char*& p, const char* end, std::vector<Operation>* out) {
  while (p < end) {
    const char c = *p++;
    if (c == '\n') {
      if (rq_quote_ != 0) return false;  // Redis: unbalanced quotes
      rq_ = Req::kStart;
      if (rq_ntok_ > 0) CommandDone(rq_ntok_, out);  // an empty line is no command
      return true;
    }
    if (++rq_inline_len_ > max_line_) return false;
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\r') || u == 0x7f) return false;
    if (rq_quote_ != 0) {
      if (rq_escape_) {
        rq_escape_ = false;
      } else if (c == '\\' && rq_quote_ == '"') {
        rq_escape_ = true;
        continue;
      } else if (c == rq_quote_) {
        rq_quote_ = 0;
        continue;
      }
    } else if (c == ' ' || c == '\t' || c == '\r') {
      rq_in_tok_ = false;
      continue;
    } else {
      if (!rq_in_tok_) {
        rq_in_tok_ = true;
        ++rq_ntok_;
      }
      if (c == '"' || c == '\'') {
        rq_quote_ = c;
        continue;
      }
    }
    if (rq_ntok_ >= 1 && rq_ntok_ <= 3) rq_tok_[rq_ntok_ - 1].Add(&c, 1);
  }
  return true;
}

void RedisParser::RequestUncaptured(uint64_t n, uint64_t ts, std::vector<Operation>* out) {
  (void)ts;
  if (rq_ == Req::kBody) {
    if (n < rq_body_) {
      if (rq_index_ < 3) rq_tok_[static_cast<size_t>(rq_index_)].len += n;
      rq_body_ -= n;
      return;
    }
    if (rq_index_ < 3) rq_tok_[static_cast<size_t>(rq_index_)].len += rq_body_;
    n -= rq_body_;
    rq_body_ = 0;
    rq_ = Req::kBodyCrlf;
  }
  if (rq_ == Req::kBodyCrlf && n > 0) {
    const uint64_t need = 2u - rq_crlf_;
    if (n < need) {
      rq_crlf_ = static_cast<uint8_t>(rq_crlf_ + n);
      return;
    }
    n -= need;
    ElementDone(out);
  }
  if (n == 0) return;
  // A header fell in the uncaptured bytes: the request framing is lost.
  ++stats_.gaps;
  ResetRequest();
  rq_resync_ = true;
  LoseAll(out);
}

void RedisParser::CommandDone(uint64_t nelems, std::vector<Operation>* out) {
  ++stats_.requests;
  ++next_seq_;
  consecutive_errors_ = 0;

  char cmd_buf[kMaxNameBytes];
  char sub_buf[kMaxNameBytes];
  const Capture& t0 = rq_tok_[0];
  std::string_view name = t0.complete() ? KnownCommand(t0.view(), cmd_buf) : std::string_view();
  uint64_t args = nelems - 1;
  std::string_view sub;
  if (!name.empty() && args > 0 &&
      std::find(std::begin(kContainers), std::end(kContainers), name) != std::end(kContainers) &&
      rq_tok_[1].complete()) {
    size_t n = 0;
    if (NormalizeName(rq_tok_[1].view(), sub_buf, &n) && InTable({sub_buf, n}, kSubcommands) &&
        name.size() + 1 + n <= kMaxNameBytes) {
      sub = std::string_view(sub_buf, n);
      --args;
    }
  }

  Pending p;
  p.op.system = System::kRedis;
  if (name.empty()) {
    p.op.operation = "_OTHER";
  } else {
    p.op.operation.assign(name);
    if (!sub.empty()) {
      p.op.operation += ' ';
      p.op.operation.append(sub);
    }
  }
  p.op.query_text = p.op.operation;
  for (uint64_t i = 0; i < args && p.op.query_text.size() + 2 <= kMaxQueryText; ++i)
    p.op.query_text += " ?";
  p.op.query_summary = p.op.operation;
  p.op.request_ts = rq_ts_;
  p.kind = name.empty() ? Kind::kNormal : KindOf(name);
  p.nargs = nelems - 1;

  // CLIENT REPLY OFF/SKIP silence the server (and RESET turns replies back on).
  if (p.op.operation == "CLIENT REPLY" && rq_tok_[2].complete() && rq_tok_[2].kept <= 4) {
    char arg[4];
    size_t n = 0;
    NormalizeName(rq_tok_[2].view(), arg, &n);
    const std::string_view mode(arg, n);
    if (mode == "ON") {
      reply_mode_ = ReplyMode::kOn;
    } else if (mode == "OFF") {
      reply_mode_ = ReplyMode::kOff;
      p.no_reply = true;
    } else if (mode == "SKIP") {
      p.no_reply = true;
      if (reply_mode_ == ReplyMode::kOn) reply_mode_ = ReplyMode::kSkipNext;
    }
  } else if (p.kind == Kind::kReset) {
    reply_mode_ = ReplyMode::kOn;
  } else if (reply_mode_ == ReplyMode::kOff) {
    p.no_reply = true;
  } else if (reply_mode_ == ReplyMode::kSkipNext) {
    p.no_reply = true;
    reply_mode_ = ReplyMode::kOn;
  }

  if (Held() >= max_pending_) {
    ++stats_.pending_overflow;
    if (!p.no_reply) ++dropped_tail_;
    return;
  }
  p.skip_before = dropped_tail_;
  dropped_tail_ = 0;
  pending_.push_back(std::move(p));
  DrainNoReply(out);
}

void RedisParser::DrainNoReply(std::vector<Operation>* out) {
  while (!pending_.empty() && pending_.front().no_reply && pending_.front().skip_before == 0) {
    ++counters_.unanswered;
    out->push_back(std::move(pending_.front().op));
    pending_.pop_front();
  }
}

// ---- Response side ----

void RedisParser::ResetResponse() {
  rs_ = Resp::kType;
  rs_line_.Reset();
  rs_body_ = 0;
  rs_crlf_ = 0;
  rs_bulk_.Clear();
  depth_ = 0;
}

bool RedisParser::ResponseBytes(const char* p, const char* end, uint64_t ts,
                                std::vector<Operation>* out) {
  while (p < end) {
    switch (rs_) {
      case Resp::kType: {
        const char c = *p++;
        if (!IsTypeByte(c)) return false;
        rs_type_ = c;
        rs_line_.Reset();
        rs_ = Resp::kLine;
        if (depth_ == 0 && c != '|') reply_.Reset(c);
        break;
      }
      case Resp::kLine: {
        const LineResult r = rs_line_.Feed(p, end, max_line_);
        if (r == LineResult::kBad) return false;
        if (r == LineResult::kDone && !ResponseLine(ts, out)) return false;
        break;
      }
      case Resp::kBody: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(rs_body_, end - p));
        rs_bulk_.Add(p, n);
        p += n;
        rs_body_ -= n;
        if (rs_body_ == 0) rs_ = Resp::kBodyCrlf;
        break;
      }
      case Resp::kBodyCrlf:
        if (*p != "\r\n"[rs_crlf_]) return false;
        ++p;
        if (++rs_crlf_ == 2) {
          rs_ = Resp::kType;
          ValueDone({rs_type_, false, &rs_bulk_, 0}, ts, out);
        }
        break;
    }
  }
  return true;
}

bool RedisParser::ResponseLine(uint64_t ts, std::vector<Operation>* out) {
  const Capture& line = rs_line_.cap;
  const std::string_view text = line.view();
  rs_ = Resp::kType;
  int64_t n = 0;
  switch (rs_type_) {
    case '+':
    case '-':
      ValueDone({rs_type_, false, &line, 0}, ts, out);
      return true;
    case ':':
      if (!ParseInteger(line, &n)) return false;
      ValueDone({rs_type_, false, nullptr, n}, ts, out);
      return true;
    case '_':
      if (line.len != 0) return false;
      ValueDone({rs_type_, true, nullptr, 0}, ts, out);
      return true;
    case '#':
      if (!line.complete() || (text != "t" && text != "f")) return false;
      ValueDone({rs_type_, false, nullptr, text == "t"}, ts, out);
      return true;
    case ',':
    case '(':
      if (line.len == 0) return false;
      for (char c : text) {
        const bool ok =
            (c >= '0' && c <= '9') || c == '-' || c == '+' ||
            (rs_type_ == ',' && (c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')));
        if (!ok) return false;
      }
      ValueDone({rs_type_, false, nullptr, 0}, ts, out);
      return true;
    case '$':
    case '!':
    case '=':
      if (!ParseInteger(line, &n)) return false;
      if (n == -1 && rs_type_ == '$') {
        ValueDone({rs_type_, true, nullptr, 0}, ts, out);
        return true;
      }
      if (n < 0 || static_cast<uint64_t>(n) > kMaxBulkBytes) return false;
      rs_bulk_.Clear();
      rs_body_ = static_cast<uint64_t>(n);
      rs_crlf_ = 0;
      rs_ = rs_body_ > 0 ? Resp::kBody : Resp::kBodyCrlf;
      return true;
    default:  // '*', '~', '%', '|', '>'
      if (!ParseInteger(line, &n)) return false;
      if (n == -1 && rs_type_ == '*') {
        ValueDone({rs_type_, true, nullptr, 0}, ts, out);
        return true;
      }
      if (n < 0 || n > kMaxElements) return false;
      if (depth_ == 0 && rs_type_ != '|') {
        reply_.count = n;
        if (rs_type_ == '*') reply_.status_cap = txn_queued_;
      }
      if (n == 0) {
        ValueDone({rs_type_, false, nullptr, 0}, ts, out);
        return true;
      }
      if (depth_ == kMaxDepth) return false;
      const bool pairs = rs_type_ == '%' || rs_type_ == '|';
      stack_[depth_++] = {static_cast<uint64_t>(n) * (pairs ? 2 : 1), 0, rs_type_};
      return true;
  }
}

void RedisParser::ValueDone(Value v, uint64_t ts, std::vector<Operation>* out) {
  for (;;) {
    if (depth_ == 0) {
      if (v.type == '|') return;  // an attribute describes the reply that follows
      if (v.null) reply_.null = true;
      if (v.text != nullptr) {
        if (v.type == '-' || v.type == '!') {
          reply_.err.assign(ErrorPrefix(v.text->view(), v.text->len));
        } else if (v.type == '+') {
          reply_.simple_len = std::min(v.text->kept, reply_.simple.size());
          memcpy(reply_.simple.data(), v.text->buf.data(), reply_.simple_len);
          reply_.simple_whole = reply_.simple_len == v.text->len;
        }
      }
      consecutive_errors_ = 0;
      if (IsResp3Type(reply_.type)) resp3_ = true;
      Pair(ts, out);
      return;
    }
    if (v.type == '|') return;  // not an element of its parent
    Frame& f = stack_[depth_ - 1];
    if (depth_ == 1 && f.type != '|') RecordElement(f.index, v);
    ++f.index;
    if (--f.remaining > 0) return;
    v = Value{f.type, false, nullptr, 0};
    --depth_;
  }
}

void RedisParser::RecordElement(uint64_t index, const Value& v) {
  if (index == 0 && (v.type == '+' || v.type == '$') && v.text != nullptr && v.text->complete() &&
      v.text->len <= reply_.elem0.size()) {
    reply_.elem0_len = v.text->kept;
    memcpy(reply_.elem0.data(), v.text->buf.data(), reply_.elem0_len);
    reply_.elem0_ok = true;
  } else if (index == 2 && v.type == ':') {
    reply_.elem2 = v.integer;
    reply_.elem2_ok = true;
  }
  if (reply_.statuses.size() < reply_.status_cap) {
    if ((v.type == '-' || v.type == '!') && v.text != nullptr) {
      reply_.statuses.emplace_back(ErrorPrefix(v.text->view(), v.text->len));
    } else {
      reply_.statuses.emplace_back();
    }
  }
}

void RedisParser::ResponseUncaptured(uint64_t n, uint64_t ts, std::vector<Operation>* out) {
  if (rs_ == Resp::kBody) {
    if (n < rs_body_) {
      rs_bulk_.len += n;
      rs_body_ -= n;
      return;
    }
    rs_bulk_.len += rs_body_;
    n -= rs_body_;
    rs_body_ = 0;
    rs_ = Resp::kBodyCrlf;
  }
  if (rs_ == Resp::kBodyCrlf && n > 0) {
    const uint64_t need = 2u - rs_crlf_;
    if (n < need) {
      rs_crlf_ = static_cast<uint8_t>(rs_crlf_ + n);
      return;
    }
    n -= need;
    rs_ = Resp::kType;
    ValueDone({rs_type_, false, &rs_bulk_, 0}, ts, out);
  }
  if (n == 0) return;
  ++stats_.gaps;
  LoseAll(out);
}

void RedisParser::Emit(Pending& p, std::string_view status, uint64_t ts,
                       std::vector<Operation>* out) {
  p.op.status_code.assign(status);
  p.op.error_type.assign(status);
  p.op.response_ts = ts;
  p.op.has_response = true;
  out->push_back(std::move(p.op));
}

void RedisParser::Pair(uint64_t ts, std::vector<Operation>* out) {
  const Reply& r = reply_;
  const Kind sub = r.SubKind();
  if (r.type == '>') {  // RESP3: never a reply, except (un)subscribe confirmations
    if (sub != Kind::kNormal) {
      SubscribeReply(sub, r.elem2, ts, out);
    } else {
      ++counters_.pushes;
    }
    return;
  }
  if (!resp3_ && r.IsMessage() && (subscribed_ || (pending_.empty() && !txn_active_))) {
    subscribed_ = true;
    ++counters_.pushes;
    return;
  }
  if (r.type == '*' && sub != Kind::kNormal &&
      (subscribed_ || FrontIs(sub) || leftover_.kind == sub)) {
    SubscribeReply(sub, r.elem2, ts, out);
    return;
  }
  if (monitor_ && r.type == '+' && r.simple_len > 0 && r.simple[0] >= '0' && r.simple[0] <= '9') {
    ++counters_.pushes;  // a MONITOR line
    return;
  }
  // Replies to commands dropped at the max_pending bound.
  if (!pending_.empty() && pending_.front().skip_before > 0) {
    --pending_.front().skip_before;
    SkippedReply(ts, out);
    DrainNoReply(out);
    return;
  }
  if (pending_.empty()) {
    if (dropped_tail_ > 0) {
      --dropped_tail_;
      SkippedReply(ts, out);
    } else {
      ++stats_.orphan_responses;
    }
    return;
  }
  leftover_ = {};
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  ++stats_.responses;
  const std::string_view status = (r.type == '-' || r.type == '!') ? std::string_view(r.err) : "";
  const bool queued = r.type == '+' && r.simple_whole && r.Simple() == "QUEUED";
  if (queued && !txn_active_) txn_active_ = true;  // tracked from inside a transaction
  if (txn_active_ && p.kind != Kind::kExec && p.kind != Kind::kDiscard && p.kind != Kind::kReset) {
    Queue(std::move(p), queued, status, ts);
    DrainNoReply(out);
    return;
  }
  switch (p.kind) {
    case Kind::kExec:
      if (txn_active_) {
        if (!status.empty()) {
          EndTransaction(status, ts, out);  // EXECABORT
        } else if (r.null) {
          EndTransaction("ABORTED", ts, out);  // a WATCHed key changed
        } else {
          EndTransaction({}, ts, out);
        }
      }
      break;
    case Kind::kDiscard:
      if (txn_active_ && status.empty()) EndTransaction("DISCARDED", ts, out);
      break;
    case Kind::kReset:
      if (txn_active_) EndTransaction("DISCARDED", ts, out);
      subscribed_ = monitor_ = resp3_ = false;
      break;
    case Kind::kMulti:
      if (status.empty()) txn_active_ = true;
      break;
    case Kind::kMonitor:
      if (status.empty()) monitor_ = true;
      break;
    case Kind::kHello:
      if (r.type == '%') resp3_ = true;
      if (r.type == '*') resp3_ = false;
      break;
    default:
      break;
  }
  Emit(p, status, ts, out);
  DrainNoReply(out);
}

void RedisParser::SubscribeReply(Kind kind, int64_t count, uint64_t ts,
                                 std::vector<Operation>* out) {
  if (IsSubscribeKind(kind)) {
    if (count > 0) subscribed_ = true;
  } else if (count == 0) {
    subscribed_ = false;
  }
  if (leftover_.kind == kind && !(leftover_.open && FrontIs(kind))) {
    if (leftover_.open ? count == 0 : --leftover_.remaining == 0) leftover_ = {};
    return;
  }
  leftover_ = {};
  if (!FrontIs(kind)) {
    ++counters_.pushes;  // nobody waits for it (tracked mid-stream, or a gap)
    return;
  }
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  ++stats_.responses;
  if (p.nargs > 1) {
    leftover_ = {kind, p.nargs - 1, false};
  } else if (p.nargs == 0 && !IsSubscribeKind(kind) && count > 0) {
    leftover_ = {kind, 0, true};
  }
  Emit(p, "", ts, out);
  DrainNoReply(out);
}

// A reply to a command dropped at the max_pending bound. Inside a transaction, the dropped
// command may have been its EXEC or DISCARD: judged by the reply's shape, so that the
// commands kept are not held until the connection closes.
void RedisParser::SkippedReply(uint64_t ts, std::vector<Operation>* out) {
  if (!txn_active_) return;
  const Reply& r = reply_;
  if (r.type == '+') {
    if (r.simple_whole && (r.Simple() == "OK" || r.Simple() == "RESET"))
      EndTransaction("DISCARDED", ts, out);
  } else if (r.type == '-' || r.type == '!') {
    if (r.err == "EXECABORT") EndTransaction("EXECABORT", ts, out);
  } else if (r.null) {
    EndTransaction("ABORTED", ts, out);
  } else if (r.type == '*') {
    EndTransaction({}, ts, out);
  }
}

// Held() does not grow here: the command moves from pending_ to txn_ (max_pending holds).
void RedisParser::Queue(Pending p, bool queued, std::string_view status, uint64_t ts) {
  if (!queued) {
    p.op.status_code.assign(status);
    p.op.error_type.assign(status);
    p.op.response_ts = ts;
    p.op.has_response = true;
  }
  txn_.push_back({std::move(p.op), queued});
  if (queued) ++txn_queued_;
}

// Reports the transaction's commands. `queued_status` empty: each takes its EXEC element.
void RedisParser::EndTransaction(std::string_view queued_status, uint64_t ts,
                                 std::vector<Operation>* out) {
  const bool from_exec = queued_status.empty();
  size_t k = 0;
  for (Queued& q : txn_) {
    if (q.queued) {
      if (!from_exec) {
        q.op.status_code.assign(queued_status);
        q.op.error_type.assign(queued_status);
        q.op.response_ts = ts;
        q.op.has_response = true;
      } else if (k < reply_.statuses.size()) {
        q.op.status_code = reply_.statuses[k];
        q.op.error_type = reply_.statuses[k];
        q.op.response_ts = ts;
        q.op.has_response = true;
      } else {
        ++stats_.lost_responses;  // EXEC answered fewer elements than commands queued
      }
      ++k;
    }
    out->push_back(std::move(q.op));
  }
  txn_.clear();
  txn_queued_ = 0;
  txn_active_ = false;
}

}  // namespace

const RedisCounters* RedisCountersOf(const Parser& p) noexcept {
  if (p.system() != System::kRedis) return nullptr;
  return &static_cast<const RedisParser&>(p).counters();
}

bool LooksLikeRedisCommandStart(std::string_view d) noexcept {
  return CommandStart(d) == Verdict::kYes;
}

bool LooksLikeRedisReplyStart(std::string_view d) noexcept {
  return d.size() >= 2 && ReplyStart(d);
}

std::unique_ptr<Parser> MakeRedisParser(const Limits& limits) {
  return std::make_unique<RedisParser>(limits);
}

}  // namespace redtap::db

// SPDX-License-Identifier: Apache-2.0
// MySQL / MariaDB protocol parser: byte streams built with a small encoder (greeting,
// HandshakeResponse, commands, OK, ERR, EOF, column definitions, text and binary rows,
// PREPARE_OK) as MySQL 8 and MariaDB 10.11 send them, each scenario fed whole, split in two
// at every offset of every record, and byte by byte, with identical operations. No value a
// client or server sent may appear in any operation field.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/db/mysql.h"
#include "parsers/db/types.h"

namespace redtap::db {
namespace {

// ---- Encoder ----

constexpr uint32_t kLongPassword = 0x1;
constexpr uint32_t kFoundRows = 0x2;
constexpr uint32_t kLongFlag = 0x4;
constexpr uint32_t kConnectWithDb = 0x8;
constexpr uint32_t kCompress = 0x20;
constexpr uint32_t kLocalFiles = 0x80;
constexpr uint32_t kProtocol41 = 0x200;
constexpr uint32_t kSsl = 0x800;
constexpr uint32_t kTransactions = 0x2000;
constexpr uint32_t kSecureConnection = 0x8000;
constexpr uint32_t kMultiStatements = 0x10000;
constexpr uint32_t kMultiResults = 0x20000;
constexpr uint32_t kPsMultiResults = 0x40000;
constexpr uint32_t kPluginAuth = 0x80000;
constexpr uint32_t kConnectAttrs = 0x100000;
constexpr uint32_t kPluginAuthLenenc = 0x200000;
constexpr uint32_t kSessionTrack = 0x800000;
constexpr uint32_t kDeprecateEof = 0x1000000;
constexpr uint32_t kQueryAttributes = 0x8000000;

constexpr uint32_t kBaseCaps = kLongPassword | kFoundRows | kLongFlag | kConnectWithDb |
                               kLocalFiles | kProtocol41 | kTransactions | kSecureConnection |
                               kMultiStatements | kMultiResults | kPsMultiResults | kPluginAuth |
                               kConnectAttrs | kPluginAuthLenenc | kSessionTrack;
// MySQL 8 server and libmysqlclient 8: DEPRECATE_EOF and query attributes.
constexpr uint32_t kMysql8Caps = kBaseCaps | kDeprecateEof | kQueryAttributes | kSsl;
// MariaDB 10.11 server (offers DEPRECATE_EOF), mariadb client (does not ask for it).
constexpr uint32_t kMariaServerCaps = (kBaseCaps & ~kLongPassword) | kDeprecateEof | kSsl;
constexpr uint32_t kMariaClientCaps = kBaseCaps;

constexpr uint16_t kAutocommit = 0x0002;
constexpr uint16_t kMoreResults = 0x0008;
constexpr uint16_t kCursorExists = 0x0040;

std::string Le16(uint16_t v) { return {static_cast<char>(v), static_cast<char>(v >> 8)}; }
std::string Le24(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16)};
}
std::string Le32(uint32_t v) { return Le16(static_cast<uint16_t>(v)) + Le16(v >> 16); }
std::string LenEnc(uint64_t v) {
  if (v < 251) return std::string(1, static_cast<char>(v));
  if (v < 65536) return std::string(1, '\xfc') + Le16(static_cast<uint16_t>(v));
  if (v < (1u << 24)) return std::string(1, '\xfd') + Le24(static_cast<uint32_t>(v));
  return std::string(1, '\xfe') + Le32(static_cast<uint32_t>(v)) +
         Le32(static_cast<uint32_t>(v >> 32));
}
std::string LenStr(std::string_view s) { return LenEnc(s.size()) + std::string(s); }
std::string Nul(std::string_view s) { return std::string(s) + '\0'; }
std::string Packet(uint8_t seq, std::string_view payload) {
  return Le24(static_cast<uint32_t>(payload.size())) + static_cast<char>(seq) +
         std::string(payload);
}

// Server, connection phase.
std::string Greeting(uint32_t caps, std::string_view version = "8.0.36") {
  std::string b = "\x0a" + Nul(version) + Le32(42) + "abcdefgh" + '\0' +
                  Le16(static_cast<uint16_t>(caps)) + '\x2d' + Le16(kAutocommit) +
                  Le16(static_cast<uint16_t>(caps >> 16)) + '\x15' + std::string(10, '\0') +
                  Nul("ijklmnopqrst") + Nul("caching_sha2_password");
  return Packet(0, b);
}
std::string AuthSwitch(uint8_t seq) {
  return Packet(
      seq, std::string(1, '\xfe') + Nul("mysql_native_password") + Nul("01234567890123456789"));
}
std::string AuthMoreData(uint8_t seq, std::string_view data) {
  return Packet(seq, std::string(1, '\x01') + std::string(data));
}

// Client, connection phase.
std::string HandshakeResponse(uint32_t caps) {
  std::string attrs =
      LenStr("_client_name") + LenStr("libmysql") + LenStr("note") + LenStr("alice@example.com");
  std::string b = Le32(caps) + Le32(16777216) + '\x2d' + std::string(23, '\0') +
                  Nul("bob-the-builder") + LenStr("hunter2-scrambled") + Nul("shop") +
                  Nul("caching_sha2_password") + LenStr(attrs);
  return Packet(1, b);
}
std::string SslRequest(uint32_t caps) {
  return Packet(1, Le32(caps | kSsl) + Le32(16777216) + '\x2d' + std::string(23, '\0'));
}
std::string AuthData(uint8_t seq, std::string_view data) { return Packet(seq, data); }

// Client, commands.
std::string Command(uint8_t c, std::string_view body = "") {
  return Packet(0, std::string(1, static_cast<char>(c)) + std::string(body));
}
std::string Query(std::string_view text) { return Command(0x03, text); }
// With CLIENT_QUERY_ATTRIBUTES and no attribute: a count of 0 and one parameter set.
std::string QueryA(std::string_view text) {
  return Command(0x03, std::string("\x00\x01", 2) + std::string(text));
}
std::string Prepare(std::string_view text) { return Command(0x16, text); }
// String parameters (MYSQL_TYPE_VAR_STRING), never read by the parser.
std::string Execute(uint32_t id, const std::vector<std::string>& params = {}, uint8_t flags = 0) {
  std::string b = Le32(id) + static_cast<char>(flags) + Le32(1);
  if (!params.empty()) {
    b += std::string((params.size() + 7) / 8, '\0') + '\x01';
    for (size_t i = 0; i < params.size(); ++i) b += std::string("\xfd\x00", 2);
    for (const std::string& v : params) b += LenStr(v);
  }
  return Command(0x17, b);
}
std::string CloseStmt(uint32_t id) { return Command(0x19, Le32(id)); }
std::string ResetStmt(uint32_t id) { return Command(0x1a, Le32(id)); }
std::string LongData(uint32_t id, std::string_view data) {
  return Command(0x18, Le32(id) + Le16(0) + std::string(data));
}
std::string Fetch(uint32_t id, uint32_t rows) { return Command(0x1c, Le32(id) + Le32(rows)); }
std::string Ping() { return Command(0x0e); }
std::string Quit() { return Command(0x01); }
std::string InitDb(std::string_view db) { return Command(0x02, db); }
std::string SetOption(uint16_t opt) { return Command(0x1b, Le16(opt)); }
std::string ResetConnection() { return Command(0x1f); }
std::string Statistics() { return Command(0x09); }

// Server, replies.
std::string OkBody(uint16_t status = kAutocommit, uint64_t affected = 0, uint64_t id = 0,
                   char header = '\0') {
  return std::string(1, header) + LenEnc(affected) + LenEnc(id) + Le16(status) + Le16(0);
}
std::string Ok(uint8_t seq, uint16_t status = kAutocommit, uint64_t affected = 0, uint64_t id = 0) {
  return Packet(seq, OkBody(status, affected, id));
}
std::string EofBody(uint16_t status = kAutocommit) {
  return std::string(1, '\xfe') + Le16(0) + Le16(status);
}
std::string Eof(uint8_t seq, uint16_t status = kAutocommit) { return Packet(seq, EofBody(status)); }
std::string ErrBody(uint16_t code, std::string_view state, std::string_view msg) {
  return std::string(1, '\xff') + Le16(code) + "#" + std::string(state) + std::string(msg);
}
std::string Err(uint8_t seq, uint16_t code, std::string_view state, std::string_view msg) {
  return Packet(seq, ErrBody(code, state, msg));
}
std::string ColumnDef(std::string_view name) {
  return LenStr("def") + LenStr("shop") + LenStr("users") + LenStr("users") + LenStr(name) +
         LenStr(name) + '\x0c' + Le16(0x2d) + Le32(1020) + '\xfd' + Le16(0) + '\0' + Le16(0);
}
std::string TextRow(const std::vector<std::string>& vals) {
  std::string b;
  for (const std::string& v : vals) b += LenStr(v);
  return b;
}
std::string BinaryRow(const std::vector<std::string>& vals) {
  std::string b = std::string(1, '\0') + std::string((vals.size() + 9) / 8, '\0');
  for (const std::string& v : vals) b += LenStr(v);
  return b;
}
std::string PrepareOkBody(uint32_t id, uint16_t cols, uint16_t params) {
  return std::string(1, '\0') + Le32(id) + Le16(cols) + Le16(params) + '\0' + Le16(0);
}

struct RsOpts {
  bool deprecate_eof = false;
  bool binary = false;
  uint16_t status = kAutocommit;  // of the terminator
};
// A result set from `*seq` on: column count, definitions, [EOF], rows, terminator.
std::string ResultSet(uint8_t* seq, const std::vector<std::string>& cols,
                      const std::vector<std::vector<std::string>>& rows, RsOpts o = {}) {
  std::string s = Packet((*seq)++, LenEnc(cols.size()));
  for (const std::string& c : cols) s += Packet((*seq)++, ColumnDef(c));
  if (!o.deprecate_eof) s += Packet((*seq)++, EofBody());
  for (const auto& r : rows) s += Packet((*seq)++, o.binary ? BinaryRow(r) : TextRow(r));
  s += Packet((*seq)++, o.deprecate_eof ? OkBody(o.status, 0, 0, '\xfe') : EofBody(o.status));
  return s;
}
// A PREPARE_OK and its definitions.
std::string PrepareReply(uint32_t id, uint16_t cols, uint16_t params, bool deprecate_eof) {
  uint8_t seq = 1;
  std::string s = Packet(seq++, PrepareOkBody(id, cols, params));
  for (uint16_t i = 0; i < params; ++i) s += Packet(seq++, ColumnDef("?"));
  if (params && !deprecate_eof) s += Packet(seq++, EofBody());
  for (uint16_t i = 0; i < cols; ++i) s += Packet(seq++, ColumnDef("c" + std::to_string(i)));
  if (cols && !deprecate_eof) s += Packet(seq++, EofBody());
  return s;
}

// ---- Values that must never leave the parser ----

constexpr std::string_view kCard = "4111111111111111";
constexpr std::string_view kEmail = "alice@example.com";
const std::vector<std::string_view> kSecrets = {kCard,
                                                kEmail,
                                                "hunter2",
                                                "bob-the-builder",
                                                "Duplicate entry",
                                                "for key",
                                                "x-secret-note",
                                                "abcdefgh",
                                                "ijklmnopqrst",
                                                "syntax",
                                                "secret.csv",
                                                "file-content",
                                                "long-data-blob",
                                                "23000"};

// ---- Scenario runner ----

struct Rec {
  Direction dir = Direction::kRequest;
  std::string bytes;  // captured
  uint64_t len = 0;   // bytes the syscall moved (0: bytes.size())
  bool gap = false;   // a Gap(dir) instead of bytes
};
Rec C(std::string b, uint64_t len = 0) { return Rec{Direction::kRequest, std::move(b), len}; }
Rec S(std::string b, uint64_t len = 0) { return Rec{Direction::kResponse, std::move(b), len}; }
Rec GapIn(Direction d) { return Rec{d, "", 0, true}; }

void ExpectNoSecrets(const std::vector<Operation>& ops) {
  for (const Operation& op : ops) {
    for (const std::string* f : {&op.operation, &op.collection, &op.query_text, &op.query_summary,
                                 &op.status_code, &op.error_type}) {
      for (std::string_view secret : kSecrets) {
        EXPECT_EQ(f->find(secret), std::string::npos) << "leak of " << secret << " in " << *f;
      }
    }
    EXPECT_FALSE(op.operation.empty());
    EXPECT_LE(op.operation.size(), kMaxNameBytes);
    EXPECT_LE(op.query_text.size(), kMaxQueryText);
    EXPECT_EQ(op.system, System::kMysql);
  }
}

struct Result {
  std::vector<Operation> ops;
  ConnStats stats;
  bool invalid = false;
  size_t statements = 0;
  int deprecate_eof = -1;
};

enum class Mode { kWhole, kSplit, kBytes };

uint64_t TsOf(size_t i) { return 1000 * (i + 1); }

Result Play(const std::vector<Rec>& recs, Mode mode, size_t k = 0, const Limits& limits = {},
            bool close = true) {
  MysqlParser p(limits);
  Result r;
  uint64_t last_ts = 0;
  for (size_t i = 0; i < recs.size(); ++i) {
    const Rec& rec = recs[i];
    if (rec.gap) {
      p.Gap(rec.dir);
      continue;
    }
    const uint64_t ts = TsOf(i);
    last_ts = ts;
    const std::string_view b = rec.bytes;
    const uint64_t len = rec.len ? rec.len : b.size();
    if (mode == Mode::kSplit && k > 0 && k < b.size()) {
      p.Feed(rec.dir, b.substr(0, k), k, ts, &r.ops);
      p.Feed(rec.dir, b.substr(k), len - k, ts, &r.ops);
    } else if (mode == Mode::kBytes && b.size() > 1) {
      for (size_t j = 0; j < b.size(); ++j) {
        const uint64_t n = j + 1 == b.size() ? len - j : 1;
        p.Feed(rec.dir, b.substr(j, 1), n, ts, &r.ops);
      }
    } else {
      p.Feed(rec.dir, b, len, ts, &r.ops);
    }
  }
  if (close) p.Close(last_ts + 1, &r.ops);
  ExpectNoSecrets(r.ops);
  r.stats = p.stats();
  r.invalid = p.invalid();
  r.statements = p.statements();
  r.deprecate_eof = p.deprecate_eof();
  return r;
}

std::string Dump(const Operation& op) {
  return op.operation + "|" + op.collection + "|" + op.query_text + "|" + op.query_summary + "|" +
         op.status_code + "|" + op.error_type + "|" + std::to_string(op.request_ts) + "|" +
         std::to_string(op.response_ts) + "|" + (op.has_response ? "R" : "-") +
         (op.prepared ? "P" : "-");
}
std::vector<std::string> DumpAll(const std::vector<Operation>& ops) {
  std::vector<std::string> v;
  for (const Operation& op : ops) v.push_back(Dump(op));
  return v;
}
std::string DumpStats(const ConnStats& s) {
  return std::to_string(s.requests) + "/" + std::to_string(s.responses) + "/" +
         std::to_string(s.parse_errors) + "/" + std::to_string(s.gaps) + "/" +
         std::to_string(s.orphan_responses) + "/" + std::to_string(s.pending_overflow) + "/" +
         std::to_string(s.lost_responses) + "/" + std::to_string(s.oversized) + "/" +
         std::to_string(s.statements_evicted);
}

// Feeds the scenario whole, split at every offset, byte by byte: the same operations and
// counters every time. Returns the whole run.
Result Check(const std::vector<Rec>& recs, const Limits& limits = {}) {
  Result whole = Play(recs, Mode::kWhole, 0, limits);
  size_t max = 0;
  for (const Rec& r : recs) max = std::max(max, r.bytes.size());
  const std::vector<std::string> want = DumpAll(whole.ops);
  const std::string want_stats = DumpStats(whole.stats);
  for (size_t k = 1; k < max; ++k) {
    Result split = Play(recs, Mode::kSplit, k, limits);
    EXPECT_EQ(DumpAll(split.ops), want) << "split at " << k;
    EXPECT_EQ(DumpStats(split.stats), want_stats) << "split at " << k;
    EXPECT_EQ(split.invalid, whole.invalid) << "split at " << k;
    EXPECT_EQ(split.statements, whole.statements) << "split at " << k;
    if (::testing::Test::HasFailure()) return whole;
  }
  Result bytes = Play(recs, Mode::kBytes, 0, limits);
  EXPECT_EQ(DumpAll(bytes.ops), want) << "byte by byte";
  EXPECT_EQ(DumpStats(bytes.stats), want_stats) << "byte by byte";
  EXPECT_EQ(bytes.invalid, whole.invalid);
  return whole;
}

void ExpectStmt(const Operation& op, std::string_view operation, std::string_view collection) {
  EXPECT_EQ(op.operation, operation);
  EXPECT_EQ(op.collection, collection);
  EXPECT_EQ(op.query_summary, collection.empty()
                                  ? std::string(operation)
                                  : std::string(operation) + " " + std::string(collection));
}
void ExpectOk(const Operation& op) {
  EXPECT_TRUE(op.has_response);
  EXPECT_EQ(op.status_code, "");
  EXPECT_EQ(op.error_type, "");
}
void ExpectError(const Operation& op, std::string_view code) {
  EXPECT_TRUE(op.has_response);
  EXPECT_EQ(op.status_code, code);
  EXPECT_EQ(op.error_type, code);
}

// Greeting, HandshakeResponse, OK: records 0-2.
std::vector<Rec> Handshake(uint32_t server_caps, uint32_t client_caps) {
  return {S(Greeting(server_caps)), C(HandshakeResponse(client_caps)), S(Ok(2))};
}
std::vector<Rec> Mysql8() { return Handshake(kMysql8Caps, kMysql8Caps & ~kSsl); }
std::vector<Rec> Maria() { return Handshake(kMariaServerCaps, kMariaClientCaps); }
std::vector<Rec> operator+(std::vector<Rec> a, const std::vector<Rec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const char* kSelectPii =
    "SELECT id, name FROM users WHERE email = 'alice@example.com' AND card = '4111111111111111'";
const char* kSelectPiiText = "SELECT id, name FROM users WHERE email = ? AND card = ?";
const std::vector<std::vector<std::string>> kPiiRows = {{"1", "alice@example.com"},
                                                        {"2", "4111111111111111"}};

// ---- Connection phase and text queries ----

TEST(MysqlQuery, Mysql8HandshakeAndSelectWithDeprecateEof) {
  uint8_t seq = 1;
  const auto recs =
      Mysql8() + std::vector<Rec>{C(QueryA(kSelectPii)),
                                  S(ResultSet(&seq, {"id", "name"}, kPiiRows, {true})), C(Quit())};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "users");
  EXPECT_EQ(r.ops[0].query_text, kSelectPiiText);
  ExpectOk(r.ops[0]);
  EXPECT_FALSE(r.ops[0].prepared);
  EXPECT_EQ(r.ops[0].request_ts, TsOf(3));
  EXPECT_EQ(r.ops[0].response_ts, TsOf(4));
  EXPECT_EQ(r.deprecate_eof, 1);
  EXPECT_EQ(DumpStats(r.stats), "1/1/0/0/0/0/0/0/0");
  EXPECT_FALSE(r.invalid);
}

TEST(MysqlQuery, MariaDbHandshakeAndSelectWithEofPackets) {
  uint8_t seq = 1;
  const auto recs = Maria() + std::vector<Rec>{C(Query(kSelectPii)),
                                               S(ResultSet(&seq, {"id", "name"}, kPiiRows))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "users");
  EXPECT_EQ(r.ops[0].query_text, kSelectPiiText);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.deprecate_eof, 0);
  EXPECT_EQ(DumpStats(r.stats), "1/1/0/0/0/0/0/0/0");
}

TEST(MysqlQuery, EmptyResultSetsWithAndWithoutDeprecateEof) {
  for (bool dep : {false, true}) {
    uint8_t seq = 1;
    const auto recs =
        (dep ? Mysql8() : Maria()) +
        std::vector<Rec>{
            C(dep ? QueryA("SELECT * FROM t WHERE 0") : Query("SELECT * FROM t WHERE 0")),
            S(ResultSet(&seq, {"a"}, {}, {dep})), C(dep ? QueryA("SELECT 1") : Query("SELECT 1"))};
    Result r = Check(recs);
    ASSERT_EQ(r.ops.size(), 2u) << dep;
    ExpectStmt(r.ops[0], "SELECT", "t");
    ExpectOk(r.ops[0]);
    EXPECT_FALSE(r.ops[1].has_response);  // Close: pending, not lost
    EXPECT_EQ(r.stats.lost_responses, 0u);
  }
}

TEST(MysqlAuth, AuthSwitchAndMoreDataAreNotOperations) {
  const std::vector<Rec> recs = {S(Greeting(kMysql8Caps)),
                                 C(HandshakeResponse(kMysql8Caps & ~kSsl)),
                                 S(AuthSwitch(2)),
                                 C(AuthData(3, "hunter2-native-scramble")),
                                 S(AuthMoreData(4, "\x04")),
                                 C(AuthData(5, "hunter2\0")),
                                 S(Ok(6)),
                                 C(Ping()),
                                 S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "PING", "");
  EXPECT_EQ(r.ops[0].query_text, "");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(DumpStats(r.stats), "1/1/0/0/0/0/0/0/0");
}

TEST(MysqlAuth, RefusedLoginIsNotAnOperation) {
  const std::vector<Rec> recs = {
      S(Greeting(kMariaServerCaps)), C(HandshakeResponse(kMariaClientCaps)),
      S(Err(2, 1045, "28000", "Access denied for user 'bob-the-builder'"))};
  Result r = Check(recs);
  EXPECT_TRUE(r.ops.empty());
  EXPECT_EQ(DumpStats(r.stats), "0/0/0/0/0/0/0/0/0");
  EXPECT_FALSE(r.invalid);
  // A server refusing the connection before any greeting.
  r = Check({S(Err(0, 1040, "08004", "Too many connections"))});
  EXPECT_TRUE(r.ops.empty());
  EXPECT_EQ(r.stats.orphan_responses, 0u);
}

TEST(MysqlAuth, ChangeUserIsAnAuthenticationNotAnOperation) {
  const auto recs =
      Maria() +
      std::vector<Rec>{C(Prepare("SELECT a FROM t")),
                       S(PrepareReply(1, 1, 0, false)),
                       C(Command(0x11, Nul("bob-the-builder") + LenStr("hunter2") + Nul("shop") +
                                           Le16(0x2d) + Nul("mysql_native_password"))),
                       S(AuthSwitch(1)),
                       C(AuthData(2, "hunter2-scrambled")),
                       S(Ok(3)),
                       C(Execute(1)),
                       S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "PREPARE", "t");
  ExpectStmt(r.ops[1], "EXECUTE", "");  // a new session: its statements are gone
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.parse_errors, 0u);
}

TEST(MysqlAuth, SslRequestMakesTheConnectionInvalid) {
  const std::vector<Rec> recs = {S(Greeting(kMysql8Caps)), C(SslRequest(kMysql8Caps)),
                                 S("\x16\x03\x03\x00\x40" + std::string(64, 'x')),
                                 C("\x16\x03\x01\x02\x00" + std::string(64, 'y'))};
  Result r = Check(recs);
  EXPECT_TRUE(r.invalid);
  EXPECT_TRUE(r.ops.empty());
}

TEST(MysqlAuth, CompressionMakesTheConnectionInvalid) {
  const std::vector<Rec> recs = {S(Greeting(kMysql8Caps | kCompress)),
                                 C(HandshakeResponse(kBaseCaps | kCompress)), S(Ok(2))};
  Result r = Check(recs);
  EXPECT_TRUE(r.invalid);
  EXPECT_TRUE(r.ops.empty());
}

TEST(MysqlQuery, InsertOkDuplicateKeyAndSyntaxError) {
  const auto recs =
      Maria() +
      std::vector<Rec>{
          C(Query(
              "INSERT INTO users (email, card) VALUES ('alice@example.com', '4111111111111111')")),
          S(Ok(1, kAutocommit, 1, 7)),
          C(Query("INSERT INTO users (email) VALUES ('alice@example.com')")),
          S(Err(1, 1062, "23000", "Duplicate entry 'alice@example.com' for key 'users.email'")),
          C(Query("SELEC * FRM users WHERE card = '4111111111111111'")),
          S(Err(1, 1064, "42000",
                "You have an error in your SQL syntax near 'FRM users WHERE card = "
                "'4111111111111111''")),
      };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 3u);
  ExpectStmt(r.ops[0], "INSERT", "users");
  EXPECT_EQ(r.ops[0].query_text, "INSERT INTO users (email, card) VALUES (?, ?)");
  ExpectOk(r.ops[0]);
  ExpectStmt(r.ops[1], "INSERT", "users");
  ExpectError(r.ops[1], "1062");
  EXPECT_EQ(r.ops[1].response_ts, TsOf(6));
  // Not SQL the summariser knows: no word of it is kept.
  ExpectStmt(r.ops[2], "QUERY", "");
  EXPECT_EQ(r.ops[2].query_text, "");
  ExpectError(r.ops[2], "1064");
  EXPECT_EQ(DumpStats(r.stats), "3/3/0/0/0/0/0/0/0");
}

TEST(MysqlQuery, ErrorInsideAResultSetEndsIt) {
  std::string rs = Packet(1, LenEnc(1)) + Packet(2, ColumnDef("a")) + Packet(3, EofBody()) +
                   Packet(4, TextRow({"alice@example.com"}));
  rs += Err(5, 1317, "70100", "Query execution was interrupted");
  const auto recs =
      Maria() + std::vector<Rec>{C(Query("SELECT a FROM t")), S(rs), C(Query("DO 1")), S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectError(r.ops[0], "1317");
  ExpectOk(r.ops[1]);
}

TEST(MysqlQuery, QueryAttributesAreSkippedUnread) {
  // One attribute, its value a secret.
  std::string body = std::string("\x01\x01", 2) + std::string(1, '\0') + '\x01' +
                     std::string("\xfd\x00", 2) + LenStr("trace") + LenStr("x-secret-note") +
                     "SELECT * FROM orders WHERE id = 5";
  const auto recs = Mysql8() + std::vector<Rec>{C(Command(0x03, body)), S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "orders");
  EXPECT_EQ(r.ops[0].query_text, "SELECT * FROM orders WHERE id = ?");
}

TEST(MysqlQuery, MultiResultsCompleteAtTheLastResult) {
  for (bool dep : {false, true}) {
    uint8_t seq = 1;
    std::string reply =
        ResultSet(&seq, {"a"}, {{"alice@example.com"}}, {dep, false, kAutocommit | kMoreResults});
    const std::string second =
        ResultSet(&seq, {"b"}, {{"4111111111111111"}}, {dep, false, kAutocommit | kMoreResults});
    const std::string last = Ok(seq++);
    const auto recs =
        (dep ? Mysql8() : Maria()) +
        std::vector<Rec>{C(dep ? QueryA("CALL get_user(5)") : Query("CALL get_user(5)")), S(reply),
                         S(second + last), C(dep ? QueryA("SELECT 1") : Query("SELECT 1")),
                         S(Packet(1, LenEnc(1)) + Packet(2, ColumnDef("1")) + (dep ? "" : Eof(3)) +
                           Packet(dep ? 3 : 4, TextRow({"1"})) +
                           (dep ? Packet(4, OkBody(kAutocommit, 0, 0, '\xfe')) : Eof(5)))};
    Result r = Check(recs);
    ASSERT_EQ(r.ops.size(), 2u) << dep;
    ExpectStmt(r.ops[0], "CALL", "");
    ExpectOk(r.ops[0]);
    EXPECT_EQ(r.ops[0].response_ts, TsOf(5));
    ExpectOk(r.ops[1]);
    EXPECT_EQ(r.ops[1].response_ts, TsOf(7));
    EXPECT_EQ(r.stats.parse_errors, 0u);
  }
}

TEST(MysqlQuery, MultiStatementsWithOkResults) {
  const auto recs =
      Maria() + std::vector<Rec>{C(Query("UPDATE a SET x = 1; UPDATE b SET y = 2")),
                                 S(Ok(1, kAutocommit | kMoreResults, 1)), S(Ok(2, kAutocommit, 1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "UPDATE", "a");
  EXPECT_EQ(r.ops[0].response_ts, TsOf(5));
}

TEST(MysqlQuery, OtherCommands) {
  const auto recs =
      Maria() + std::vector<Rec>{C(InitDb("shop_alice@example.com")),
                                 S(Ok(1)),
                                 C(SetOption(0)),
                                 S(Eof(1)),
                                 C(ResetConnection()),
                                 S(Ok(1)),
                                 C(Statistics()),
                                 S(Packet(1, "Uptime: 4111111111111111  Threads: 1")),
                                 C(Command(0x04, "users" + std::string(1, '\0'))),
                                 S(Packet(1, ColumnDef("a")) + Packet(2, ColumnDef("b")) + Eof(3)),
                                 C(Command(0x0c, Le32(77))),
                                 S(Err(1, 1094, "HY000", "Unknown thread id: 77")),
                                 C(Command(0x07, "\x01")),
                                 S(Ok(1)),
                                 C(Ping()),
                                 S(Ok(1)),
                                 C(Quit())};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 8u);
  const char* names[] = {"USE",        "SET_OPTION",   "RESET_CONNECTION", "STATISTICS",
                         "FIELD_LIST", "PROCESS_KILL", "_OTHER",           "PING"};
  for (size_t i = 0; i < 8; ++i) {
    ExpectStmt(r.ops[i], names[i], "");
    EXPECT_EQ(r.ops[i].query_text, "");
    EXPECT_TRUE(r.ops[i].has_response);
  }
  ExpectError(r.ops[5], "1094");
  EXPECT_EQ(r.stats.parse_errors, 0u);
  EXPECT_EQ(r.stats.lost_responses, 0u);
}

TEST(MysqlQuery, LocalInfileContentIsSkipped) {
  const auto recs =
      Maria() +
      std::vector<Rec>{
          C(Query("LOAD DATA LOCAL INFILE '/tmp/secret.csv' INTO TABLE users")),
          S(Packet(1, "\xfb/tmp/secret.csv")),
          C(Packet(2, "alice@example.com,4111111111111111\n") + Packet(3, "file-content\n")),
          C(Packet(4, "")),
          S(Ok(5, kAutocommit, 2)),
          C(Query("SELECT 1")),
          S(Err(1, 1064, "42000", "syntax")),
      };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "LOAD", "users");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(7));
  ExpectError(r.ops[1], "1064");
  EXPECT_EQ(r.stats.parse_errors, 0u);
}

TEST(MysqlQuery, MariaDbProgressReportIsNotAnError) {
  const auto recs =
      Maria() + std::vector<Rec>{
                    C(Query("ALTER TABLE users ADD COLUMN z INT")),
                    S(Packet(1, "\xff\xff\xff\x01\x01\x02" + Le24(500) + "\x05stage")),
                    S(Ok(2)),
                };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "ALTER", "users");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(5));
}

// ---- Prepared statements ----

void PreparedScenario(bool dep) {
  const uint32_t id = 7;
  uint8_t s1 = 1;
  uint8_t s2 = 1;
  auto q = [&](const char* t) { return dep ? QueryA(t) : Query(t); };
  (void)q;
  const auto recs =
      (dep ? Mysql8() : Maria()) +
      std::vector<Rec>{
          C(Prepare("SELECT id, email, card FROM users WHERE email = ? AND card = ?")),
          S(PrepareReply(id, 3, 2, dep)),
          C(LongData(id, "long-data-blob alice@example.com")),
          C(Execute(id, {"alice@example.com", "4111111111111111"})),
          S(ResultSet(&s1, {"id", "email", "card"},
                      {{"1", "alice@example.com", "4111111111111111"}}, {dep, true})),
          C(Execute(id, {"bob@example.com", "4111111111111111"})),
          S(ResultSet(&s2, {"id", "email", "card"}, {}, {dep, true})),
          C(ResetStmt(id)),
          S(Ok(1)),
          C(CloseStmt(id)),
          C(Execute(id)),
          S(Err(1, 1243, "HY000",
                "Unknown prepared statement handler (7) given to mysqld_stmt_execute")),
      };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 5u) << dep;
  ExpectStmt(r.ops[0], "PREPARE", "users");
  EXPECT_EQ(r.ops[0].query_text, "SELECT id, email, card FROM users WHERE email = ? AND card = ?");
  EXPECT_FALSE(r.ops[0].prepared);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(4));
  for (int i : {1, 2}) {
    ExpectStmt(r.ops[i], "SELECT", "users");
    EXPECT_EQ(r.ops[i].query_text,
              "SELECT id, email, card FROM users WHERE email = ? AND card = ?");
    EXPECT_TRUE(r.ops[i].prepared);
    ExpectOk(r.ops[i]);
  }
  EXPECT_EQ(r.ops[1].request_ts, TsOf(6));
  EXPECT_EQ(r.ops[1].response_ts, TsOf(7));
  ExpectStmt(r.ops[3], "STMT_RESET", "");
  // After COM_STMT_CLOSE the id is forgotten.
  ExpectStmt(r.ops[4], "EXECUTE", "");
  EXPECT_EQ(r.ops[4].query_text, "");
  EXPECT_TRUE(r.ops[4].prepared);
  ExpectError(r.ops[4], "1243");
  EXPECT_EQ(r.statements, 0u);
  EXPECT_EQ(r.deprecate_eof, dep ? 1 : 0);
  EXPECT_EQ(DumpStats(r.stats), "5/5/0/0/0/0/0/0/0");
}

TEST(MysqlPrepared, PrepareExecuteTwiceCloseWithDeprecateEof) { PreparedScenario(true); }
TEST(MysqlPrepared, PrepareExecuteTwiceCloseWithEofPackets) { PreparedScenario(false); }

TEST(MysqlPrepared, ExecuteOfAnUnknownStatement) {
  const std::vector<Rec> recs = {C(Execute(99, {"4111111111111111"})), S(Ok(1, kAutocommit, 1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "EXECUTE", "");
  EXPECT_EQ(r.ops[0].query_text, "");
  EXPECT_TRUE(r.ops[0].prepared);
  ExpectOk(r.ops[0]);
}

TEST(MysqlPrepared, PrepareErrorAndPipelinedExecuteOfTheLastPrepared) {
  const auto recs =
      Maria() + std::vector<Rec>{
                    C(Prepare("SELEC x")),
                    S(Err(1, 1064, "42000", "syntax")),
                    // MariaDB connectors pipeline prepare and execute (id 0xffffffff).
                    C(Prepare("DELETE FROM carts WHERE id = ?") + Execute(0xffffffff, {"42"})),
                    S(PrepareReply(3, 0, 1, false) + Ok(1, kAutocommit, 1)),
                };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 3u);
  ExpectStmt(r.ops[0], "PREPARE", "");
  ExpectError(r.ops[0], "1064");
  ExpectStmt(r.ops[1], "PREPARE", "carts");
  ExpectOk(r.ops[1]);
  ExpectStmt(r.ops[2], "DELETE", "carts");
  EXPECT_TRUE(r.ops[2].prepared);
  ExpectOk(r.ops[2]);
  EXPECT_EQ(r.statements, 1u);
}

TEST(MysqlPrepared, CursorAndFetch) {
  const uint32_t id = 1;
  std::string exec_reply =
      Packet(1, LenEnc(1)) + Packet(2, ColumnDef("email")) + Eof(3, kAutocommit | kCursorExists);
  std::string fetch_reply = Packet(1, BinaryRow({"alice@example.com"})) +
                            Packet(2, BinaryRow({"4111111111111111"})) + Eof(3, kAutocommit | 0x80);
  const auto recs = Maria() + std::vector<Rec>{C(Prepare("SELECT email FROM users")),
                                               S(PrepareReply(id, 1, 0, false)),
                                               C(Execute(id, {}, 1)),
                                               S(exec_reply),
                                               C(Fetch(id, 10)),
                                               S(fetch_reply),
                                               C(Ping()),
                                               S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 3u);
  ExpectStmt(r.ops[1], "SELECT", "users");
  EXPECT_EQ(r.ops[1].response_ts, TsOf(6));
  ExpectStmt(r.ops[2], "PING", "");
  EXPECT_EQ(r.stats.parse_errors, 0u);
}

TEST(MysqlPrepared, MidStreamPrepareLearnsDeprecateEof) {
  // No greeting: DEPRECATE_EOF unknown. A prepare whose last definition may be followed by
  // an EOF: the next reply packet tells.
  std::vector<Rec> with_eof = {C(Prepare("SELECT a FROM t")), S(PrepareReply(1, 1, 0, false)),
                               C(Execute(1)), S(Ok(1))};
  Result r = Check(with_eof);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "PREPARE", "t");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(1));
  ExpectStmt(r.ops[1], "SELECT", "t");
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.deprecate_eof, 0);
  // The EOF in a record of its own.
  const std::string reply = PrepareReply(1, 1, 0, false);
  const std::string eof = Eof(3);
  std::vector<Rec> eof_later = {C(Prepare("SELECT a FROM t")),
                                S(reply.substr(0, reply.size() - eof.size())), S(eof),
                                C(Execute(1)), S(Ok(1))};
  r = Check(eof_later);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(2));
  ExpectStmt(r.ops[1], "SELECT", "t");
  EXPECT_EQ(r.stats.parse_errors, 0u);

  std::vector<Rec> without = {C(Prepare("SELECT a FROM t")), S(PrepareReply(1, 1, 0, true)),
                              C(Execute(1)), S(Ok(1))};
  r = Check(without);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(1));
  ExpectStmt(r.ops[1], "SELECT", "t");
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.deprecate_eof, 1);
  EXPECT_EQ(r.stats.parse_errors, 0u);
  // The connection closes right after: the prepare had its reply.
  r = Check({C(Prepare("SELECT a FROM t")), S(PrepareReply(1, 1, 0, true))});
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(1));
}

// ---- Large and partly captured messages ----

TEST(MysqlLarge, MultiPacketQueryWithUncapturedBytes) {
  // A 16 MiB + 100 byte COM_QUERY: the first packet (0xffffff bytes) captured 4 KiB, the
  // second one whole; the reply's sequence id follows the last packet's.
  std::string prefix = "\x03INSERT INTO blobs (data, note) VALUES ('";
  prefix += std::string(4096 - prefix.size(), 'z');
  std::string first = Le24(0xffffff) + '\0' + prefix;
  std::string second = Packet(1, std::string(80, 'z') + "', 'alice@example.com 4111111111111111')");
  ASSERT_LT(second.size() - 4, 0xffffffu);
  const auto recs =
      Maria() + std::vector<Rec>{C(first, 4 + 0xffffff), C(second), S(Ok(2)), C(Ping()), S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "INSERT", "blobs");
  EXPECT_EQ(r.ops[0].query_text, "INSERT INTO blobs (data, note) VALUES (?");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].request_ts, TsOf(3));
  EXPECT_EQ(r.ops[0].response_ts, TsOf(5));
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.gaps, 0u);
  EXPECT_EQ(r.stats.parse_errors, 0u);
}

TEST(MysqlLarge, MultiPacketRowAndUncapturedRowTails) {
  for (bool dep : {false, true}) {
    std::string head =
        Packet(1, LenEnc(2)) + Packet(2, ColumnDef("id")) + Packet(3, ColumnDef("doc"));
    uint8_t seq = 4;
    if (!dep) head += Eof(seq++);
    // A 16 MiB + 50 byte row: its first byte is 0xfe (a length-encoded string of 8-byte
    // length) in a 0xffffff packet, not a terminator.
    const uint64_t doc = 0xffffff + 50;
    std::string row_start =
        Le24(0xffffff) + static_cast<char>(seq++) + LenStr("1") + LenEnc(doc) + "alice@example.com";
    const uint64_t row_first_len = 4 + 0xffffff;
    head += row_start;
    const uint64_t rec1_len = head.size() - row_start.size() + row_first_len;
    const uint64_t rest = 2 + 9 + doc - 0xffffff;  // row bytes in the second packet
    std::string cont = Le24(static_cast<uint32_t>(rest)) + static_cast<char>(seq++) +
                       std::string(static_cast<size_t>(rest), 'q');
    // Then a row whose tail was not captured, and one captured whole, and the end.
    std::string row2 =
        Packet(seq++, LenStr("2") + LenStr(std::string(3000, 'x') + "4111111111111111"));
    std::string rec2 = cont + row2.substr(0, 100);
    const uint64_t rec2_len = cont.size() + row2.size();
    std::string rec3 = Packet(seq++, TextRow({"3", "alice@example.com"}));
    rec3 += Packet(seq++, dep ? OkBody(kAutocommit, 0, 0, '\xfe') : EofBody());
    const auto recs =
        (dep ? Mysql8() : Maria()) + std::vector<Rec>{C(dep ? QueryA("SELECT id, doc FROM docs")
                                                            : Query("SELECT id, doc FROM docs")),
                                                      S(head, rec1_len),
                                                      S(rec2, rec2_len),
                                                      S(rec3),
                                                      C(Ping()),
                                                      S(Ok(1))};
    Result r = Check(recs);
    ASSERT_EQ(r.ops.size(), 2u) << dep;
    ExpectStmt(r.ops[0], "SELECT", "docs");
    ExpectOk(r.ops[0]);
    EXPECT_EQ(r.ops[0].response_ts, TsOf(6));
    ExpectOk(r.ops[1]);
    EXPECT_EQ(r.stats.gaps, 0u);
    EXPECT_EQ(r.stats.parse_errors, 0u);
  }
}

TEST(MysqlLarge, OversizedQueryIsSummarisedFromItsPrefix) {
  Limits l;
  l.max_buffered_bytes = 64;
  const auto recs =
      Maria() +
      std::vector<Rec>{C(Query("SELECT id FROM users WHERE email = 'alice@example.com' "
                               "AND card = '4111111111111111' AND note = 'x-secret-note'")),
                       S(Ok(1))};
  Result r = Check(recs, l);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "users");
  EXPECT_EQ(r.stats.oversized, 1u);
}

// ---- Mid-stream start, gaps, close ----

TEST(MysqlStream, MidStreamStartOrphansThenSyncs) {
  for (bool dep : {false, true}) {
    uint8_t seq = 1;
    const std::vector<Rec> recs = {
        // The tail of a reply to a command sent before the agent started.
        S(Packet(9, TextRow({"alice@example.com"})) + Eof(10)),
        C(dep ? QueryA(kSelectPii) : Query(kSelectPii)),
        S(ResultSet(&seq, {"id", "name"}, kPiiRows, {dep})),
        C(dep ? QueryA("COMMIT") : Query("COMMIT")),
        S(Ok(1)),
    };
    Result r = Check(recs);
    ASSERT_EQ(r.ops.size(), 2u) << dep;
    ExpectStmt(r.ops[0], "SELECT", "users");
    EXPECT_EQ(r.ops[0].query_text, kSelectPiiText);
    ExpectOk(r.ops[0]);
    ExpectStmt(r.ops[1], "COMMIT", "");
    ExpectOk(r.ops[1]);
    EXPECT_EQ(r.stats.orphan_responses, 1u);
    EXPECT_EQ(r.stats.parse_errors, 0u);
    EXPECT_EQ(r.deprecate_eof, dep ? 1 : 0);
  }
}

TEST(MysqlStream, MidStreamLearnsDeprecateEofFromAnEmptyResult) {
  for (bool dep : {false, true}) {
    uint8_t seq = 1;
    const std::vector<Rec> recs = {C(Query("SELECT a FROM t WHERE 0")),
                                   S(ResultSet(&seq, {"a"}, {}, {dep})), C(Query("SELECT 1")),
                                   S(Ok(1))};
    Result r = Check(recs);
    ASSERT_EQ(r.ops.size(), 2u) << dep;
    ExpectOk(r.ops[0]);
    EXPECT_EQ(r.ops[0].response_ts, TsOf(1));
    ExpectOk(r.ops[1]);
    EXPECT_EQ(r.deprecate_eof, dep ? 1 : 0);
    EXPECT_EQ(r.stats.parse_errors, 0u);
  }
}

TEST(MysqlStream, MidStreamStartInsideARequestResyncsAtACommand) {
  const std::vector<Rec> recs = {
      C("ice@example.com', '4111111111111111')"),  // the tail of an earlier query
      C(Query("SELECT 1")),
      S(Packet(1, LenEnc(1)) + Packet(2, ColumnDef("1")) + Eof(3) + Packet(4, TextRow({"1"})) +
        Eof(5)),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.stats.parse_errors, 1u);
  EXPECT_FALSE(r.invalid);
}

TEST(MysqlStream, ResponseGapReportsThePendingCommandLost) {
  uint8_t seq = 1;
  const std::string rs = ResultSet(&seq, {"a"}, {{"alice@example.com"}, {"x"}, {"y"}});
  const auto recs =
      Maria() + std::vector<Rec>{C(Query("SELECT a FROM t")),
                                 S(rs.substr(0, 20)),
                                 GapIn(Direction::kResponse),
                                 S(rs.substr(40)),  // dropped: the client has not sent
                                 C(Query("SELECT b FROM u")),
                                 S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "SELECT", "t");
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_EQ(r.ops[0].status_code, "");
  ExpectStmt(r.ops[1], "SELECT", "u");
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.lost_responses, 1u);
  EXPECT_EQ(r.stats.gaps, 1u);
  EXPECT_EQ(r.stats.parse_errors, 0u);
}

TEST(MysqlStream, UncapturedHeaderLosesFramingOfThatDirection) {
  uint8_t seq = 1;
  const std::string rs = ResultSet(&seq, {"a"}, {{"alice@example.com"}, {"x"}, {"y"}});
  const auto recs =
      Maria() + std::vector<Rec>{C(Query("SELECT a FROM t")), S(rs.substr(0, 30), rs.size()),
                                 C(Query("SELECT b FROM u")), S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.gaps, 1u);
  EXPECT_EQ(r.stats.lost_responses, 1u);
}

TEST(MysqlStream, RequestGapReportsPendingLostAndResyncs) {
  const auto recs =
      Maria() + std::vector<Rec>{C(Query("UPDATE t SET a = 1")), GapIn(Direction::kRequest),
                                 S(Ok(1)),  // paired with nothing: dropped
                                 C(Query("DELETE FROM t")), S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "UPDATE", "t");
  EXPECT_FALSE(r.ops[0].has_response);
  ExpectStmt(r.ops[1], "DELETE", "t");
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.lost_responses, 1u);
}

TEST(MysqlStream, CloseReportsPending) {
  const auto recs = Maria() + std::vector<Rec>{C(Query("SELECT SLEEP(100)"))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "");
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_EQ(r.ops[0].response_ts, 0u);
  EXPECT_EQ(r.stats.lost_responses, 0u);
  // Without Close nothing is reported yet.
  Result open = Play(recs, Mode::kWhole, 0, {}, /*close=*/false);
  EXPECT_TRUE(open.ops.empty());
}

TEST(MysqlStream, WrongSequenceIdIsAParseError) {
  const auto recs =
      Maria() + std::vector<Rec>{C(Query("SELECT 1")), S(Ok(5)), C(Query("SELECT 2")), S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.parse_errors, 1u);
}

TEST(MysqlStream, GarbageMakesTheConnectionInvalid) {
  const std::vector<Rec> recs = {
      C("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), S("HTTP/1.1 200 OK\r\n\r\n"),
      C("GET /a HTTP/1.1\r\n\r\n"),           C("GET /b HTTP/1.1\r\n\r\n"),
      C("GET /c HTTP/1.1\r\n\r\n"),
  };
  Result r = Check(recs);
  EXPECT_TRUE(r.invalid);
  EXPECT_TRUE(r.ops.empty());
}

TEST(MysqlStream, ReplicationMakesTheConnectionInvalid) {
  const auto recs =
      Maria() + std::vector<Rec>{C(Command(0x12, Le32(4) + Le16(0) + Le32(1) + "bin.000001"))};
  EXPECT_TRUE(Check(recs).invalid);
}

// ---- Bounds ----

TEST(MysqlBounds, MaxPendingDropsButKeepsPairing) {
  Limits l;
  l.max_pending = 2;
  const auto recs =
      Maria() +
      std::vector<Rec>{C(Ping() + Query("SELECT 1") + Query("SELECT 2") + Query("SELECT 3")),
                       S(Ok(1) + Ok(1) + Ok(1)), S(Err(1, 1146, "42S02", "no such table")),
                       C(Query("SELECT 4")), S(Err(1, 1054, "42S22", "x"))};
  Result r = Check(recs, l);
  ASSERT_EQ(r.ops.size(), 3u);
  ExpectStmt(r.ops[0], "PING", "");
  ExpectOk(r.ops[0]);
  ExpectOk(r.ops[1]);
  ExpectError(r.ops[2], "1054");
  EXPECT_EQ(r.stats.pending_overflow, 2u);
  EXPECT_EQ(r.stats.parse_errors, 0u);
}

TEST(MysqlBounds, MaxStatementsEvictsTheOldest) {
  Limits l;
  l.max_statements = 2;
  const auto recs = Maria() + std::vector<Rec>{C(Prepare("SELECT a FROM t1")),
                                               S(PrepareReply(1, 1, 0, false)),
                                               C(Prepare("SELECT a FROM t2")),
                                               S(PrepareReply(2, 1, 0, false)),
                                               C(Prepare("SELECT a FROM t3")),
                                               S(PrepareReply(3, 1, 0, false)),
                                               C(Execute(1)),
                                               S(Ok(1)),
                                               C(Execute(3)),
                                               S(Ok(1))};
  Result r = Check(recs, l);
  ASSERT_EQ(r.ops.size(), 5u);
  ExpectStmt(r.ops[3], "EXECUTE", "");
  ExpectStmt(r.ops[4], "SELECT", "t3");
  EXPECT_EQ(r.stats.statements_evicted, 1u);
  EXPECT_EQ(r.statements, 2u);
}

TEST(MysqlBounds, ResetConnectionForgetsStatements) {
  const auto recs = Maria() + std::vector<Rec>{C(Prepare("SELECT a FROM t1")),
                                               S(PrepareReply(1, 1, 0, false)),
                                               C(ResetConnection()),
                                               S(Ok(1)),
                                               C(Execute(1)),
                                               S(Ok(1))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 3u);
  ExpectStmt(r.ops[2], "EXECUTE", "");
  EXPECT_EQ(r.statements, 0u);
}

TEST(MysqlFactory, MakeParser) {
  auto p = MakeParser(System::kMysql, Limits{});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->system(), System::kMysql);
}

// ---- Resynchronisation inside large result sets (records captured to their first 4 KiB) ----

constexpr size_t kCap = 4096;

struct Big {
  std::vector<Rec> recs;
  size_t last = 0;  // index of the reply's last record in recs
  uint64_t resyncs = 0;
  uint64_t aborts = 0;
  Result r;
};

// Cuts `reply` into response records of the sizes `next_size` gives (the last one at most
// 2000 bytes, so that the reply's end is captured), each captured to its first kCap bytes.
template <typename F>
std::vector<Rec> Records(const std::string& reply, F next_size) {
  std::vector<Rec> out;
  size_t off = 0;
  while (off < reply.size()) {
    size_t n = std::min(next_size(), reply.size() - off);
    const size_t left = reply.size() - off - n;
    if (left > 0 && left < 2000 && n > 2000) n -= 2000 - left;  // keep the tail small
    if (left == 0 && n > 2000) n -= 2000;
    out.push_back(S(reply.substr(off, std::min(n, kCap)), n));
    off += n;
  }
  return out;
}

// `tails` (when given) holds, for each record of `reply`, the end FeedTail gives after it ("":
// none); `after` is fed after the reply (default: the client's next command and its OK).
Big PlayBig(const std::vector<Rec>& setup, const std::vector<Rec>& reply, bool more = true,
            const std::vector<std::string>* tails = nullptr,
            const std::vector<Rec>& after = {C(Ping()), S(Ok(1))}) {
  Big b;
  b.recs = setup + reply;
  b.last = b.recs.size() - 1;
  if (more) b.recs = b.recs + after;
  MysqlParser p(Limits{});
  for (size_t i = 0; i < b.recs.size(); ++i) {
    const Rec& rec = b.recs[i];
    p.Feed(rec.dir, rec.bytes, rec.len ? rec.len : rec.bytes.size(), TsOf(i), &b.r.ops);
    if (tails != nullptr && i >= setup.size() && i - setup.size() < tails->size() &&
        !(*tails)[i - setup.size()].empty()) {
      p.FeedTail(rec.dir, (*tails)[i - setup.size()], TsOf(i), &b.r.ops);
    }
  }
  p.Close(TsOf(b.recs.size()), &b.r.ops);
  ExpectNoSecrets(b.r.ops);
  b.r.stats = p.stats();
  b.r.invalid = p.invalid();
  b.resyncs = p.resyncs();
  b.aborts = p.resync_aborts();
  return b;
}

std::vector<std::vector<std::string>> DocRows(size_t n, size_t value_bytes) {
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < n; ++i) {
    std::string v(value_bytes, static_cast<char>('a' + i % 26));
    if (i % 7 == 3) v.replace(10, kCard.size(), kCard);
    rows.push_back({std::to_string(i), v});
  }
  return rows;
}

// The command sent, with the handshake and (binary protocol) the prepare before it.
std::vector<Rec> BigSetup(bool dep, bool binary) {
  std::vector<Rec> setup = dep ? Mysql8() : Maria();
  const char* q = "SELECT id, doc FROM docs";
  if (!binary) return setup + std::vector<Rec>{C(dep ? QueryA(q) : Query(q))};
  return setup + std::vector<Rec>{C(Prepare(q)), S(PrepareReply(7, 2, 0, dep)), C(Execute(7))};
}

TEST(MysqlResync, LargeResultsTextAndBinaryWithAndWithoutDeprecateEof) {
  for (bool dep : {false, true}) {
    for (bool binary : {false, true}) {
      for (size_t rows : {size_t{100}, size_t{2000}}) {  // 100 KB, 2 MB
        SCOPED_TRACE(std::to_string(dep) + std::to_string(binary) + " " + std::to_string(rows));
        uint8_t seq = 1;
        RsOpts o;
        o.deprecate_eof = dep;
        o.binary = binary;
        const std::string reply = ResultSet(&seq, {"id", "doc"}, DocRows(rows, 1000), o);
        Big b = PlayBig(BigSetup(dep, binary), Records(reply, [] { return size_t{16384}; }));
        ASSERT_EQ(b.r.ops.size(), binary ? 3u : 2u);
        const Operation& op = b.r.ops[binary ? 1 : 0];
        ExpectStmt(op, "SELECT", "docs");
        EXPECT_EQ(op.prepared, binary);
        ExpectOk(op);
        EXPECT_EQ(op.response_ts, TsOf(b.last));
        ExpectOk(b.r.ops.back());
        EXPECT_GT(b.resyncs, 0u);
        EXPECT_EQ(b.aborts, 0u);
        EXPECT_EQ(b.r.stats.lost_responses, 0u);
        EXPECT_EQ(b.r.stats.parse_errors, 0u);
        EXPECT_FALSE(b.r.invalid);
      }
    }
  }
}

TEST(MysqlResync, ErrorAfterSomeRowsGivesItsCode) {
  for (bool dep : {false, true}) {
    for (bool binary : {false, true}) {
      SCOPED_TRACE(std::to_string(dep) + std::to_string(binary));
      uint8_t seq = 1;
      std::string reply = Packet(seq++, LenEnc(2));
      reply += Packet(seq++, ColumnDef("id"));
      reply += Packet(seq++, ColumnDef("doc"));
      if (!dep) reply += Eof(seq++);
      for (const auto& r : DocRows(300, 700)) {
        reply += Packet(seq++, binary ? BinaryRow(r) : TextRow(r));
      }
      reply += Err(seq++, 3024, "HY000", "Query execution was interrupted, maximum time");
      Big b = PlayBig(BigSetup(dep, binary), Records(reply, [] { return size_t{16384}; }));
      ASSERT_EQ(b.r.ops.size(), binary ? 3u : 2u);
      const Operation& op = b.r.ops[binary ? 1 : 0];
      ExpectError(op, "3024");
      EXPECT_EQ(op.response_ts, TsOf(b.last));
      EXPECT_GT(b.resyncs, 0u);
    }
  }
}

TEST(MysqlResync, RandomRecordSizes) {
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto rnd = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int round = 0; round < 24; ++round) {
    const bool dep = round % 2;
    const bool binary = (round / 2) % 2;
    SCOPED_TRACE(round);
    uint8_t seq = 1;
    RsOpts o;
    o.deprecate_eof = dep;
    o.binary = binary;
    std::vector<std::vector<std::string>> rows;
    for (size_t i = 0; i < 400; ++i) {
      rows.push_back({std::to_string(rnd() % 100000), std::string(rnd() % 3000, 'v')});
    }
    const std::string reply = ResultSet(&seq, {"id", "doc"}, rows, o);
    Big b = PlayBig(BigSetup(dep, binary),
                    Records(reply, [&rnd] { return static_cast<size_t>(1 + rnd() % 32768); }));
    ASSERT_EQ(b.r.ops.size(), binary ? 3u : 2u);
    const Operation& op = b.r.ops[binary ? 1 : 0];
    // The reply's end is captured: a resync point is found unless no chain lies in the
    // captured bytes of the last records; then the reply is lost, never given a status.
    if (op.has_response) {
      ExpectOk(op);
      EXPECT_EQ(op.response_ts, TsOf(b.last));
    } else {
      EXPECT_EQ(op.status_code, "");
      EXPECT_EQ(b.r.stats.lost_responses, 1u);
    }
    EXPECT_EQ(b.aborts, 0u);
    EXPECT_EQ(b.r.stats.parse_errors, 0u);
    ExpectOk(b.r.ops.back());
  }
}

TEST(MysqlResync, MultiResultsSpanningTheLoss) {
  for (bool dep : {false, true}) {
    SCOPED_TRACE(dep);
    uint8_t seq = 1;
    RsOpts more;
    more.deprecate_eof = dep;
    more.status = kAutocommit | kMoreResults;
    RsOpts last;
    last.deprecate_eof = dep;
    const std::string a = ResultSet(&seq, {"id", "doc"}, DocRows(60, 1000), more);
    const std::string b3 = ResultSet(&seq, {"id", "doc", "x"}, {}, more);  // no rows
    std::vector<std::vector<std::string>> rows3;
    for (size_t i = 0; i < 60; ++i) rows3.push_back({"1", std::string(900, 'b'), "z"});
    const std::string c = ResultSet(&seq, {"id", "doc", "x"}, rows3, last);
    const std::string reply = a + b3 + c;
    // Record boundaries put the end of the first result (its last 3000 bytes) in a captured
    // record start; the second result's rows are lost in the middle too.
    const size_t cut = a.size() - 3000;
    std::vector<Rec> recs = Records(reply.substr(0, cut), [] { return size_t{16384}; });
    std::string rest = reply.substr(cut);
    std::vector<Rec> tail = Records(rest, [] { return size_t{16384}; });
    // The first record of `tail` must not end with a small record; Records keeps the tail
    // small only at the very end, so recs' last record may be short: fine.
    recs = recs + tail;
    Big b = PlayBig(dep ? Mysql8() + std::vector<Rec>{C(QueryA("CALL report()"))}
                        : Maria() + std::vector<Rec>{C(Query("CALL report()"))},
                    recs);
    ASSERT_EQ(b.r.ops.size(), 2u);
    ExpectOk(b.r.ops[0]);
    EXPECT_EQ(b.r.ops[0].response_ts, TsOf(b.last));
    EXPECT_GE(b.resyncs, 2u);

    // The end of the first result not captured: the rows after it have another column count
    // and are never taken for rows of the first; the reply's last record, captured whole,
    // ends with the last result's terminator: nothing can follow it, its status is the
    // reply's (an ERR would have ended the reply before it).
    std::vector<Rec> lossy = Records(reply, [] { return size_t{1} << 20; });
    Big l = PlayBig(dep ? Mysql8() + std::vector<Rec>{C(QueryA("CALL report()"))}
                        : Maria() + std::vector<Rec>{C(Query("CALL report()"))},
                    lossy);
    ASSERT_EQ(l.r.ops.size(), 2u);
    ExpectOk(l.r.ops[0]);
    EXPECT_EQ(l.r.ops[0].response_ts, TsOf(l.last));
    EXPECT_EQ(l.resyncs, 1u);
    EXPECT_EQ(l.r.stats.lost_responses, 0u);
    ExpectOk(l.r.ops[1]);
    // The same with the last record cut by the capture: lost.
    lossy.back().len = lossy.back().bytes.size() + 100;
    l = PlayBig(dep ? Mysql8() + std::vector<Rec>{C(QueryA("CALL report()"))}
                    : Maria() + std::vector<Rec>{C(Query("CALL report()"))},
                lossy);
    ASSERT_EQ(l.r.ops.size(), 2u);
    EXPECT_FALSE(l.r.ops[0].has_response);
    EXPECT_EQ(l.r.stats.lost_responses, 1u);
  }
}

TEST(MysqlResync, PipelinedCommandsAreNotResynced) {
  uint8_t seq = 1;
  const std::string reply = ResultSet(&seq, {"id", "doc"}, DocRows(100, 1000)) + Ok(1);
  Big b = PlayBig(Maria() + std::vector<Rec>{C(Query("SELECT id, doc FROM docs") + Ping())},
                  Records(reply, [] { return size_t{16384}; }));
  ASSERT_EQ(b.r.ops.size(), 3u);
  EXPECT_FALSE(b.r.ops[0].has_response);
  EXPECT_FALSE(b.r.ops[1].has_response);
  ExpectOk(b.r.ops[2]);
  EXPECT_EQ(b.resyncs, 0u);
  EXPECT_EQ(b.r.stats.lost_responses, 2u);
}

TEST(MysqlResync, NoResyncPointBeforeTheClientsNextRecordIsLost) {
  uint8_t seq = 1;
  const std::string reply = ResultSet(&seq, {"id", "doc"}, DocRows(100, 1000));
  // Only the first 4 KiB of the whole reply captured: nothing to resync at.
  Big b = PlayBig(Maria() + std::vector<Rec>{C(Query("SELECT id, doc FROM docs"))},
                  {S(reply.substr(0, kCap), reply.size())});
  ASSERT_EQ(b.r.ops.size(), 2u);
  EXPECT_FALSE(b.r.ops[0].has_response);
  EXPECT_EQ(b.r.stats.lost_responses, 1u);
  ExpectOk(b.r.ops[1]);
  EXPECT_EQ(b.resyncs, 0u);
}

// Row values that carry forged packets (a row and a terminator with consecutive sequence ids,
// or an ERR) must not complete the query with a status it did not get.
TEST(MysqlResync, ForgedPacketsInRowValuesNeverCompleteFalsely) {
  for (bool dep : {false, true}) {
    for (uint8_t s0 = 0; s0 < 255; s0 = static_cast<uint8_t>(s0 + 17)) {
      SCOPED_TRACE(std::to_string(dep) + " " + std::to_string(s0));
      const std::string forged_end =
          dep ? Packet(static_cast<uint8_t>(s0 + 1), OkBody(kAutocommit, 0, 0, '\xfe'))
              : Eof(static_cast<uint8_t>(s0 + 1));
      const std::string forged = Packet(s0, TextRow({"1", "x"})) + forged_end;
      const std::string forged_err =
          Packet(s0, TextRow({"1", "x"})) + Err(static_cast<uint8_t>(s0 + 1), 1062, "23000", "dup");
      uint8_t seq = 1;
      std::string reply = Packet(seq++, LenEnc(2));
      reply += Packet(seq++, ColumnDef("id"));
      reply += Packet(seq++, ColumnDef("doc"));
      if (!dep) reply += Eof(seq++);
      std::vector<size_t> forged_ends;  // offsets just after a forged terminator
      for (size_t i = 0; i < 120; ++i) {
        std::string v = std::string(200, 'p') + forged + std::string(300, 'q') + forged_err +
                        std::string(200, 'r');
        const std::string row = Packet(seq++, TextRow({std::to_string(i), v}));
        const size_t at = reply.size() + row.find(forged_end) + forged_end.size();
        forged_ends.push_back(at);
        reply += row;
      }
      // The real end: an ERR (a false completion would show as success).
      reply += Err(seq++, 1317, "70100", "Query execution was interrupted");
      // Records end right after forged terminators (fully captured small records), and
      // in big records captured to 4 KiB.
      std::vector<Rec> recs;
      size_t off = 0;
      for (size_t k = 0; k < forged_ends.size(); k += 10) {
        const size_t end = forged_ends[k];
        if (end <= off) continue;
        if (end - off > 3000) {
          const size_t n = end - off - 1500;
          recs.push_back(S(reply.substr(off, std::min(n, kCap)), n));
          off += n;
        }
        recs.push_back(S(reply.substr(off, end - off)));  // whole, ends after a forgery
        off = end;
      }
      recs = recs + Records(reply.substr(off), [] { return size_t{16384}; });
      Big b = PlayBig(dep ? Mysql8() + std::vector<Rec>{C(QueryA("SELECT id, doc FROM docs"))}
                          : Maria() + std::vector<Rec>{C(Query("SELECT id, doc FROM docs"))},
                      recs);
      ASSERT_EQ(b.r.ops.size(), 2u);
      const Operation& op = b.r.ops[0];
      if (op.has_response) {
        ExpectError(op, "1317");
        EXPECT_EQ(op.response_ts, TsOf(b.last));
      }
      EXPECT_GT(b.aborts, 0u);
      ExpectOk(b.r.ops[1]);
    }
  }
}

// ---- The reply's end only in the tail of a record cut by the capture ----

// `reply` cut into records of `size` bytes counted from its end (the first one takes what is
// left), each captured to its first kCap bytes; `tails` gets the last kMaxTail bytes of each
// record longer than its capture.
std::vector<Rec> TailRecords(const std::string& reply, std::vector<std::string>* tails,
                             size_t size = 16384) {
  std::vector<size_t> starts;
  for (size_t end = reply.size(); end > 0; end -= std::min(end, size)) {
    starts.insert(starts.begin(), end - std::min(end, size));
  }
  std::vector<Rec> out;
  tails->clear();
  for (size_t k = 0; k < starts.size(); ++k) {
    const size_t end = k + 1 < starts.size() ? starts[k + 1] : reply.size();
    const size_t n = end - starts[k];
    out.push_back(S(reply.substr(starts[k], std::min(n, kCap)), n));
    tails->push_back(n > kCap ? reply.substr(end - kMaxTail, kMaxTail) : "");
  }
  return out;
}

std::string BigReply(bool dep, bool binary, size_t rows, uint16_t status = kAutocommit) {
  uint8_t seq = 1;
  RsOpts o;
  o.deprecate_eof = dep;
  o.binary = binary;
  o.status = status;
  return ResultSet(&seq, {"id", "doc"}, DocRows(rows, 1000), o);
}

TEST(MysqlTail, FinalTerminatorInTheTailCompletesTheReply) {
  for (bool dep : {false, true}) {
    for (bool binary : {false, true}) {
      for (size_t rows : {size_t{300}, size_t{2000}}) {  // 300 KB, 2 MB
        SCOPED_TRACE(std::to_string(dep) + std::to_string(binary) + " " + std::to_string(rows));
        std::vector<std::string> tails;
        const std::vector<Rec> recs = TailRecords(BigReply(dep, binary, rows), &tails);
        ASSERT_GT(recs.back().len, kCap);
        const size_t at = binary ? 1 : 0;
        Big b = PlayBig(BigSetup(dep, binary), recs, true, &tails);
        ASSERT_EQ(b.r.ops.size(), binary ? 3u : 2u);
        const Operation& op = b.r.ops[at];
        ExpectStmt(op, "SELECT", "docs");
        EXPECT_EQ(op.prepared, binary);
        ExpectOk(op);
        EXPECT_EQ(op.response_ts, TsOf(b.last));
        EXPECT_EQ(b.aborts, 0u);
        EXPECT_EQ(b.r.stats.lost_responses, 0u);
        EXPECT_EQ(b.r.stats.parse_errors, 0u);
        EXPECT_FALSE(b.r.invalid);
        ExpectOk(b.r.ops.back());
        // Closed right after the reply: the held completion stands.
        Big c = PlayBig(BigSetup(dep, binary), recs, false, &tails);
        ASSERT_EQ(c.r.ops.size(), binary ? 2u : 1u);
        ExpectOk(c.r.ops[at]);
        EXPECT_EQ(c.r.ops[at].response_ts, TsOf(c.last));

        // Without the tail: lost.
        Big l = PlayBig(BigSetup(dep, binary), recs);
        ASSERT_EQ(l.r.ops.size(), binary ? 3u : 2u);
        EXPECT_FALSE(l.r.ops[at].has_response);
        EXPECT_EQ(l.r.ops[at].status_code, "");
        EXPECT_EQ(l.r.stats.lost_responses, 1u);
        ExpectOk(l.r.ops.back());
      }
    }
  }
}

TEST(MysqlTail, ErrorAtTheEndStaysLost) {
  for (bool dep : {false, true}) {
    for (bool binary : {false, true}) {
      SCOPED_TRACE(std::to_string(dep) + std::to_string(binary));
      uint8_t seq = 1;
      std::string reply = Packet(seq++, LenEnc(2));
      reply += Packet(seq++, ColumnDef("id"));
      reply += Packet(seq++, ColumnDef("doc"));
      if (!dep) reply += Eof(seq++);
      for (const auto& r : DocRows(300, 1000)) {
        reply += Packet(seq++, binary ? BinaryRow(r) : TextRow(r));
      }
      reply += Err(seq++, 3024, "HY000", "Query execution was interrupted, maximum time");
      std::vector<std::string> tails;
      const std::vector<Rec> recs = TailRecords(reply, &tails);
      Big b = PlayBig(BigSetup(dep, binary), recs, true, &tails);
      ASSERT_EQ(b.r.ops.size(), binary ? 3u : 2u);
      const Operation& op = b.r.ops[binary ? 1 : 0];
      EXPECT_FALSE(op.has_response);
      EXPECT_EQ(op.status_code, "");
      EXPECT_EQ(b.r.stats.lost_responses, 1u);
      ExpectOk(b.r.ops.back());
    }
  }
}

TEST(MysqlTail, MoreResultsTerminatorInTheTailDoesNotComplete) {
  for (bool dep : {false, true}) {
    SCOPED_TRACE(dep);
    std::vector<std::string> tails;
    const std::string first = BigReply(dep, false, 300, kAutocommit | kMoreResults);
    const std::vector<Rec> recs = TailRecords(first, &tails);
    // The client's next command right after it (nothing else can tell): lost.
    Big b = PlayBig(BigSetup(dep, false), recs, true, &tails);
    ASSERT_EQ(b.r.ops.size(), 2u);
    EXPECT_FALSE(b.r.ops[0].has_response);
    EXPECT_EQ(b.r.stats.lost_responses, 1u);
    ExpectOk(b.r.ops[1]);

    // The next result (another column count) in records cut by the capture too: completed by
    // its final terminator, in the tail of the reply's last record.
    uint8_t seq = 0;  // any: its start is in lost bytes
    RsOpts o;
    o.deprecate_eof = dep;
    std::vector<std::vector<std::string>> rows3;
    for (size_t i = 0; i < 60; ++i) rows3.push_back({"1", std::string(900, 'b'), "z"});
    const std::string second = ResultSet(&seq, {"id", "doc", "x"}, rows3, o);
    std::vector<std::string> tails2;
    const std::vector<Rec> recs2 = TailRecords(second, &tails2);
    tails.insert(tails.end(), tails2.begin(), tails2.end());
    Big m = PlayBig(BigSetup(dep, false), recs + recs2, true, &tails);
    ASSERT_EQ(m.r.ops.size(), 2u);
    ExpectOk(m.r.ops[0]);
    EXPECT_EQ(m.r.ops[0].response_ts, TsOf(m.last));
    EXPECT_EQ(m.r.stats.lost_responses, 0u);
  }
}

// A terminator forged in a row value ends a record cut by the capture: completed, then undone
// by the response bytes that follow; the real end (an ERR, fully captured) gives the status.
TEST(MysqlTail, ForgedTerminatorFollowedByMoreBytesIsUndone) {
  for (bool dep : {false, true}) {
    for (uint8_t s0 : {uint8_t{0}, uint8_t{0x42}, uint8_t{0xff}}) {
      SCOPED_TRACE(std::to_string(dep) + " " + std::to_string(s0));
      const std::string forged_end = dep ? Packet(s0, OkBody(kAutocommit, 0, 0, '\xfe')) : Eof(s0);
      uint8_t seq = 1;
      std::string reply = Packet(seq++, LenEnc(2));
      reply += Packet(seq++, ColumnDef("id"));
      reply += Packet(seq++, ColumnDef("doc"));
      if (!dep) reply += Eof(seq++);
      size_t cut_at = 0;
      for (size_t i = 0; i < 100; ++i) {
        std::string v = std::string(500, 'p') + forged_end + std::string(500, 'q');
        const std::string row = Packet(seq++, TextRow({std::to_string(i), v}));
        if (i == 60) cut_at = reply.size() + row.find(forged_end) + forged_end.size();
        reply += row;
      }
      reply += Err(seq++, 1317, "70100", "Query execution was interrupted");
      // Records of 16 KiB up to the forgery (the last one ending with it), then the rest in
      // records of 2000 bytes, captured whole.
      std::vector<std::string> tails;
      std::vector<Rec> recs = TailRecords(reply.substr(0, cut_at), &tails);
      ASSERT_GT(recs.back().len, kCap);
      for (size_t off = cut_at; off < reply.size(); off += 2000) {
        recs.push_back(S(reply.substr(off, 2000)));
      }
      Big b = PlayBig(dep ? Mysql8() + std::vector<Rec>{C(QueryA("SELECT id, doc FROM docs"))}
                          : Maria() + std::vector<Rec>{C(Query("SELECT id, doc FROM docs"))},
                      recs, true, &tails);
      ASSERT_EQ(b.r.ops.size(), 2u);
      ExpectError(b.r.ops[0], "1317");
      EXPECT_EQ(b.r.ops[0].response_ts, TsOf(b.last));
      EXPECT_GT(b.aborts, 0u);
      ExpectOk(b.r.ops[1]);
    }
  }
}

// The tail of a record cut inside a row's payload (framing kept: the uncaptured bytes are
// skipped exactly) ends with bytes shaped like a terminator: ignored.
TEST(MysqlTail, TailIgnoredWhileFramingHolds) {
  for (bool dep : {false, true}) {
    SCOPED_TRACE(dep);
    const std::string forged_end = dep ? Packet(9, OkBody(kAutocommit, 0, 0, '\xfe')) : Eof(9);
    uint8_t seq = 1;
    std::string reply = Packet(seq++, LenEnc(2));
    reply += Packet(seq++, ColumnDef("id"));
    reply += Packet(seq++, ColumnDef("doc"));
    if (!dep) reply += Eof(seq++);
    const std::string v = std::string(20000, 'p') + forged_end + std::string(100, 'q');
    reply += Packet(seq++, TextRow({"1", v}));
    const size_t cut_at = reply.size() - 100;  // just after the forged terminator
    reply += Err(seq++, 1317, "70100", "Query execution was interrupted");
    const std::vector<Rec> recs = {S(reply.substr(0, kCap), cut_at), S(reply.substr(cut_at))};
    const std::vector<std::string> tails = {reply.substr(cut_at - kMaxTail, kMaxTail), ""};
    Big b = PlayBig(dep ? Mysql8() + std::vector<Rec>{C(QueryA("SELECT id, doc FROM docs"))}
                        : Maria() + std::vector<Rec>{C(Query("SELECT id, doc FROM docs"))},
                    recs, true, &tails);
    ASSERT_EQ(b.r.ops.size(), 2u);
    ExpectError(b.r.ops[0], "1317");
    EXPECT_EQ(b.r.ops[0].response_ts, TsOf(b.last));
    EXPECT_EQ(b.resyncs, 0u);
    EXPECT_EQ(b.r.stats.gaps, 0u);
  }
}

TEST(MysqlTail, TwoPendingAndRequestTailsAreIgnored) {
  for (bool dep : {false, true}) {
    SCOPED_TRACE(dep);
    std::vector<std::string> tails;
    // The reply's end in the tail of its last record, the ping's OK in the next record.
    std::vector<Rec> no_ok = TailRecords(BigReply(dep, false, 300), &tails);
    no_ok.push_back(S(Ok(1)));
    tails.push_back("");
    const std::string q = "SELECT id, doc FROM docs";
    Big b = PlayBig(
        (dep ? Mysql8() : Maria()) + std::vector<Rec>{C((dep ? QueryA(q) : Query(q)) + Ping())},
        no_ok, true, &tails);
    ASSERT_EQ(b.r.ops.size(), 3u);
    EXPECT_FALSE(b.r.ops[0].has_response);
    EXPECT_FALSE(b.r.ops[1].has_response);
    ExpectOk(b.r.ops[2]);
    EXPECT_EQ(b.resyncs, 0u);
    EXPECT_EQ(b.r.stats.lost_responses, 2u);
    // The two pending with the terminator ending the tail (the OK not yet sent): still lost.
    no_ok.pop_back();
    tails.pop_back();
    b = PlayBig(
        (dep ? Mysql8() : Maria()) + std::vector<Rec>{C((dep ? QueryA(q) : Query(q)) + Ping())},
        no_ok, false, &tails);
    ASSERT_EQ(b.r.ops.size(), 2u);
    EXPECT_FALSE(b.r.ops[0].has_response);
    EXPECT_FALSE(b.r.ops[1].has_response);
  }
  // A request's tail, even shaped like a terminator, changes nothing.
  std::vector<std::string> tails;
  const std::vector<Rec> recs = TailRecords(BigReply(false, false, 300), &tails);
  MysqlParser p(Limits{});
  std::vector<Operation> ops;
  const std::vector<Rec> setup = BigSetup(false, false);
  size_t i = 0;
  for (; i < setup.size(); ++i)
    p.Feed(setup[i].dir, setup[i].bytes, setup[i].bytes.size(), TsOf(i), &ops);
  for (size_t k = 0; k < recs.size(); ++k, ++i) {
    p.Feed(recs[k].dir, recs[k].bytes, recs[k].len, TsOf(i), &ops);
    if (!tails[k].empty()) p.FeedTail(Direction::kRequest, tails[k], TsOf(i), &ops);
  }
  // A response tail for another record than the last one fed: ignored too.
  p.FeedTail(Direction::kResponse, tails.back(), TsOf(i), &ops);
  EXPECT_TRUE(ops.empty());
  p.Close(TsOf(i + 1), &ops);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_FALSE(ops[0].has_response);
  EXPECT_EQ(p.stats().lost_responses, 1u);
}

// With DEPRECATE_EOF the OK's fields are checked: session state changes (info, then the state
// block) complete; a malformed OK, implausible flags or a wrong EOF length do not.
TEST(MysqlTail, TerminatorShapes) {
  constexpr uint16_t kStateChanged = 0x4000;
  const std::string state = LenStr(std::string(1, '\x05') + LenStr(LenStr("x")));
  struct Case {
    bool dep;
    std::string end;  // the reply's last packet
    bool completes;
  };
  const std::vector<Case> cases = {
      {true, Packet(9, OkBody(kAutocommit | kStateChanged, 0, 0, '\xfe') + LenStr("") + state),
       true},
      {true, Packet(9, OkBody(kAutocommit, 0, 0, '\xfe') + LenStr("info")), true},
      {true, Packet(9, OkBody(kAutocommit, 0, 0, '\xfe') + "xyz"), false},  // not a lenenc info
      {true, Packet(9, OkBody(kAutocommit | kStateChanged, 0, 0, '\xfe')), false},  // no state
      {true, Packet(9, OkBody(kAutocommit | kCursorExists, 0, 0, '\xfe')), false},
      {true, Packet(9, EofBody()), false},  // an EOF where an OK is expected
      {false, Packet(9, EofBody() + "x"), false},
      {false, Packet(9, EofBody(0x8002)), false},
      {false, Eof(9, 0), true},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(k);
    const Case& c = cases[k];
    uint8_t seq = 1;
    RsOpts o;
    o.deprecate_eof = c.dep;
    std::string reply = ResultSet(&seq, {"id", "doc"}, DocRows(300, 1000), o);
    reply.resize(reply.size() - (c.dep ? 11 : 9));  // the standard terminator replaced
    reply += c.end;
    std::vector<std::string> tails;
    const std::vector<Rec> recs = TailRecords(reply, &tails);
    Big b = PlayBig(BigSetup(c.dep, false), recs, true, &tails);
    ASSERT_EQ(b.r.ops.size(), 2u);
    EXPECT_EQ(b.r.ops[0].has_response, c.completes);
    if (c.completes) {
      ExpectOk(b.r.ops[0]);
      EXPECT_EQ(b.r.ops[0].response_ts, TsOf(b.last));
    }
    EXPECT_EQ(b.r.stats.lost_responses, c.completes ? 0u : 1u);
  }
}

}  // namespace
}  // namespace redtap::db

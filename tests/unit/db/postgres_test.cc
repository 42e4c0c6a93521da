// SPDX-License-Identifier: Apache-2.0
// PostgreSQL protocol v3 parser: byte streams built with a small encoder (frontend and
// backend messages as libpq, pgbench and psql send them), each scenario fed whole, split
// in two at every offset of every record, and byte by byte, with identical operations.
// No value a client or server sent may appear in any operation field.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/db/postgres.h"
#include "parsers/db/types.h"

namespace redtap::db {
namespace {

// ---- Encoder ----

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string Be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string CStr(std::string_view s) { return std::string(s) + '\0'; }
std::string Msg(char type, std::string_view body) {
  return std::string(1, type) + Be32(static_cast<uint32_t>(body.size() + 4)) + std::string(body);
}

// Frontend.
std::string Startup(std::string_view user, std::string_view db) {
  const std::string body = Be32(196608) + CStr("user") + CStr(user) + CStr("database") + CStr(db) +
                           CStr("application_name") + CStr("pgbench") + '\0';
  return Be32(static_cast<uint32_t>(body.size() + 4)) + body;
}
std::string SslRequest() { return Be32(8) + Be32(80877103); }
std::string GssEncRequest() { return Be32(8) + Be32(80877104); }
std::string Query(std::string_view text) { return Msg('Q', CStr(text)); }
std::string Parse(std::string_view name, std::string_view text) {
  return Msg('P', CStr(name) + CStr(text) + Be16(1) + Be32(23));
}
std::string Bind(std::string_view portal, std::string_view stmt,
                 const std::vector<std::string>& params = {}) {
  std::string b = CStr(portal) + CStr(stmt) + Be16(0) + Be16(static_cast<uint16_t>(params.size()));
  for (const std::string& p : params) b += Be32(static_cast<uint32_t>(p.size())) + p;
  return Msg('B', b + Be16(0));
}
std::string Describe(char kind, std::string_view name) {
  return Msg('D', std::string(1, kind) + CStr(name));
}
std::string Execute(std::string_view portal, uint32_t max_rows = 0) {
  return Msg('E', CStr(portal) + Be32(max_rows));
}
std::string CloseMsg(char kind, std::string_view name) {
  return Msg('C', std::string(1, kind) + CStr(name));
}
std::string Sync() { return Msg('S', ""); }
std::string Flush() { return Msg('H', ""); }
std::string Terminate() { return Msg('X', ""); }
std::string SaslInitial(std::string_view data) {
  return Msg('p',
             CStr("SCRAM-SHA-256") + Be32(static_cast<uint32_t>(data.size())) + std::string(data));
}
std::string SaslResponse(std::string_view data) { return Msg('p', data); }
std::string Password(std::string_view pw) { return Msg('p', CStr(pw)); }
std::string CopyData(std::string_view d) { return Msg('d', d); }
std::string CopyDone() { return Msg('c', ""); }
std::string CopyFail(std::string_view why) { return Msg('f', CStr(why)); }
std::string FunctionCall() {
  return Msg('F', Be32(764) + Be16(1) + Be16(0) + Be16(1) + Be32(4) + Be32(12345) + Be16(0));
}

// Backend.
std::string AuthOk() { return Msg('R', Be32(0)); }
std::string AuthCleartext() { return Msg('R', Be32(3)); }
std::string AuthSasl() { return Msg('R', Be32(10) + CStr("SCRAM-SHA-256") + '\0'); }
std::string AuthSaslContinue(std::string_view d) { return Msg('R', Be32(11) + std::string(d)); }
std::string AuthSaslFinal(std::string_view d) { return Msg('R', Be32(12) + std::string(d)); }
std::string ParameterStatus(std::string_view k, std::string_view v) {
  return Msg('S', CStr(k) + CStr(v));
}
std::string BackendKeyData() { return Msg('K', Be32(4242) + Be32(0x5ec7e7)); }
std::string Ready(char status = 'I') { return Msg('Z', std::string(1, status)); }
std::string RowDescription(const std::vector<std::string>& cols) {
  std::string b = Be16(static_cast<uint16_t>(cols.size()));
  for (const std::string& c : cols) {
    b += CStr(c) + Be32(16384) + Be16(1) + Be32(25) + Be16(0xffff) + Be32(0xffffffff) + Be16(0);
  }
  return Msg('T', b);
}
std::string DataRow(const std::vector<std::string>& vals) {
  std::string b = Be16(static_cast<uint16_t>(vals.size()));
  for (const std::string& v : vals) b += Be32(static_cast<uint32_t>(v.size())) + v;
  return Msg('D', b);
}
std::string CommandComplete(std::string_view tag) { return Msg('C', CStr(tag)); }
// Fields in the server's order; the message, detail and hint carry values.
std::string ErrorFields(std::string_view code, std::string_view message,
                        std::string_view detail = "") {
  std::string b =
      "SERROR" + std::string(1, '\0') + "VERROR" + '\0' + 'C' + CStr(code) + 'M' + CStr(message);
  if (!detail.empty()) b += 'D' + CStr(detail);
  b += 'H' + CStr("hint alice@example.com") + "Fnbtinsert.c" + '\0' + "L664" + '\0' + '\0';
  return b;
}
std::string Error(std::string_view code, std::string_view message, std::string_view detail = "") {
  return Msg('E', ErrorFields(code, message, detail));
}
std::string Notice(std::string_view message) {
  return Msg('N', "SNOTICE" + std::string(1, '\0') + "C00000" + '\0' + 'M' + CStr(message) + '\0');
}
std::string Notification(std::string_view channel, std::string_view payload) {
  return Msg('A', Be32(777) + CStr(channel) + CStr(payload));
}
std::string ParseComplete() { return Msg('1', ""); }
std::string BindComplete() { return Msg('2', ""); }
std::string CloseComplete() { return Msg('3', ""); }
std::string NoData() { return Msg('n', ""); }
std::string ParamDescription() { return Msg('t', Be16(1) + Be32(23)); }
std::string EmptyQuery() { return Msg('I', ""); }
std::string PortalSuspended() { return Msg('s', ""); }
std::string CopyInResponse() {
  return Msg('G', std::string(1, '\0') + Be16(2) + Be16(0) + Be16(0));
}
std::string CopyOutResponse() {
  return Msg('H', std::string(1, '\0') + Be16(2) + Be16(0) + Be16(0));
}
std::string CopyBothResponse() { return Msg('W', std::string(1, '\0') + Be16(0)); }
std::string FunctionResult() { return Msg('V', Be32(4) + Be32(1)); }

// ---- Values that must never leave the parser ----

constexpr std::string_view kCard = "4111111111111111";
constexpr std::string_view kEmail = "alice@example.com";
const std::vector<std::string_view> kSecrets = {
    kCard,           kEmail,          "hunter2",     "n=alice,r=clientnonce", "p=proofproof",
    "r=servernonce", "duplicate key", "Key (email)", "bob-the-builder",       "x-secret-note"};

// ---- Scenario runner ----

struct Rec {
  Direction dir = Direction::kRequest;
  std::string bytes;  // captured
  uint64_t len = 0;   // bytes the syscall moved (0: bytes.size())
  uint64_t ts = 0;    // 0: 1000 * (index + 1)
  bool gap = false;   // a Gap(dir) instead of bytes
  std::string tail;   // the record's last bytes, given to FeedTail after it (if not empty)
};
Rec C(std::string b, uint64_t len = 0) {
  return Rec{Direction::kRequest, std::move(b), len, 0, false, {}};
}
Rec S(std::string b, uint64_t len = 0) {
  return Rec{Direction::kResponse, std::move(b), len, 0, false, {}};
}
Rec GapIn(Direction d) { return Rec{d, "", 0, 0, true, {}}; }

void ExpectNoSecrets(const std::vector<Operation>& ops) {
  for (const Operation& op : ops) {
    for (const std::string* f : {&op.operation, &op.collection, &op.query_text, &op.query_summary,
                                 &op.status_code, &op.error_type}) {
      for (std::string_view secret : kSecrets) {
        EXPECT_EQ(f->find(secret), std::string::npos) << "leak of " << secret << " in " << *f;
      }
    }
    EXPECT_FALSE(op.operation.empty());
    EXPECT_EQ(op.system, System::kPostgresql);
  }
}

struct Result {
  std::vector<Operation> ops;
  ConnStats stats;
  bool invalid = false;
  uint64_t skipped = 0;
  size_t statements = 0;
  uint64_t resyncs = 0;
  uint64_t resync_aborts = 0;
  uint64_t tail_resyncs = 0;
};

enum class Mode { kWhole, kSplit, kBytes };

uint64_t TsOf(const std::vector<Rec>& recs, size_t i) {
  return recs[i].ts ? recs[i].ts : 1000 * (i + 1);
}

Result Play(const std::vector<Rec>& recs, Mode mode, size_t k = 0, const Limits& limits = {},
            bool close = true) {
  PostgresParser p(limits);
  Result r;
  uint64_t last_ts = 0;
  for (size_t i = 0; i < recs.size(); ++i) {
    const Rec& rec = recs[i];
    if (rec.gap) {
      p.Gap(rec.dir);
      continue;
    }
    const uint64_t ts = TsOf(recs, i);
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
    if (!rec.tail.empty()) p.FeedTail(rec.dir, rec.tail, ts, &r.ops);
  }
  if (close) p.Close(last_ts + 1, &r.ops);
  ExpectNoSecrets(r.ops);
  r.stats = p.stats();
  r.invalid = p.invalid();
  r.skipped = p.skipped_executes();
  r.statements = p.statements();
  r.resyncs = p.resyncs();
  r.resync_aborts = p.resync_aborts();
  r.tail_resyncs = p.tail_resyncs();
  return r;
}

std::string Dump(const Operation& op) {
  std::string s = op.operation + "|" + op.collection + "|" + op.query_text + "|" +
                  op.query_summary + "|" + op.status_code + "|" + op.error_type + "|" +
                  std::to_string(op.request_ts) + "|" + std::to_string(op.response_ts) + "|" +
                  (op.has_response ? "R" : "-") + (op.prepared ? "P" : "-");
  return s;
}
std::vector<std::string> DumpAll(const std::vector<Operation>& ops) {
  std::vector<std::string> v;
  for (const Operation& op : ops) v.push_back(Dump(op));
  return v;
}

// Feeds the scenario whole, split at every offset, byte by byte: the same operations and
// counters every time. Returns the whole run.
Result Check(const std::vector<Rec>& recs, const Limits& limits = {}) {
  Result whole = Play(recs, Mode::kWhole, 0, limits);
  size_t max = 0;
  for (const Rec& r : recs) max = std::max(max, r.bytes.size());
  const std::vector<std::string> want = DumpAll(whole.ops);
  for (size_t k = 1; k < max; ++k) {
    Result split = Play(recs, Mode::kSplit, k, limits);
    EXPECT_EQ(DumpAll(split.ops), want) << "split at " << k;
    EXPECT_EQ(split.stats.gaps, whole.stats.gaps) << "split at " << k;
    EXPECT_EQ(split.stats.parse_errors, whole.stats.parse_errors) << "split at " << k;
    EXPECT_EQ(split.stats.orphan_responses, whole.stats.orphan_responses) << "split at " << k;
    EXPECT_EQ(split.invalid, whole.invalid) << "split at " << k;
    if (::testing::Test::HasFailure()) return whole;
  }
  Result bytes = Play(recs, Mode::kBytes, 0, limits);
  EXPECT_EQ(DumpAll(bytes.ops), want) << "byte by byte";
  EXPECT_EQ(bytes.stats.gaps, whole.stats.gaps);
  EXPECT_EQ(bytes.stats.parse_errors, whole.stats.parse_errors);
  EXPECT_EQ(bytes.invalid, whole.invalid);
  return whole;
}

// The summariser (parsers/db/sql.cc) names statements and replaces their literals.
void ExpectStmt(const Operation& op, std::string_view operation, std::string_view collection) {
  EXPECT_EQ(op.operation, operation);
  EXPECT_EQ(op.collection, collection);
  EXPECT_FALSE(op.query_text.empty());
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
  EXPECT_EQ(op.error_type, code.substr(0, 2));
}

std::string ServerAuthTail() {
  return AuthOk() + ParameterStatus("server_version", "16.2") +
         ParameterStatus("client_encoding", "UTF8") + BackendKeyData() + Ready();
}

const char* kSelectPii =
    "SELECT id, name FROM users WHERE email = 'alice@example.com' AND card = '4111111111111111'";

// ---- Startup and authentication ----

TEST(PostgresStartup, ScramAuthIsNotAnOperationAndIsNeverRead) {
  const std::vector<Rec> recs = {
      C(Startup("bob-the-builder", "shop")),
      S(AuthSasl()),
      C(SaslInitial("n,,n=alice,r=clientnonce")),
      S(AuthSaslContinue("r=servernonce,s=c2FsdA==,i=4096")),
      C(SaslResponse("c=biws,r=servernonce,p=proofproof")),
      S(AuthSaslFinal("v=serversig") + ServerAuthTail()),
      C(Query(kSelectPii)),
      S(RowDescription({"id", "name"}) + DataRow({"1", "bob-the-builder"}) +
        CommandComplete("SELECT 1") + Ready()),
      C(Terminate()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "users");
  EXPECT_EQ(r.ops[0].query_text, "SELECT id, name FROM users WHERE email = ? AND card = ?");
  ExpectOk(r.ops[0]);
  EXPECT_FALSE(r.ops[0].prepared);
  EXPECT_EQ(r.ops[0].request_ts, 7000u);
  EXPECT_EQ(r.ops[0].response_ts, 8000u);
  EXPECT_EQ(r.stats.requests, 1u);
  EXPECT_EQ(r.stats.responses, 1u);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
  EXPECT_EQ(r.stats.parse_errors, 0u);
  EXPECT_FALSE(r.invalid);
}

TEST(PostgresStartup, CleartextPasswordAndFailedLogin) {
  const std::vector<Rec> ok = {C(Startup("bob-the-builder", "shop")),
                               S(AuthCleartext()),
                               C(Password("hunter2")),
                               S(ServerAuthTail()),
                               C(Query("SELECT 1")),
                               S(CommandComplete("SELECT 1") + Ready())};
  Result r = Check(ok);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectOk(r.ops[0]);
  // A refused login: an error, then the server closes. Not an operation.
  const std::vector<Rec> refused = {C(Startup("bob-the-builder", "shop")), S(AuthCleartext()),
                                    C(Password("hunter2")),
                                    S(Error("28P01", "password authentication failed"))};
  r = Check(refused);
  EXPECT_TRUE(r.ops.empty());
  EXPECT_EQ(r.stats.orphan_responses, 0u);
}

TEST(PostgresStartup, SslAcceptedMakesTheConnectionInvalid) {
  const std::vector<Rec> recs = {C(SslRequest()), S("S"),
                                 C(std::string("\x16\x03\x01\x02\x00", 5) + "hello")};
  Result r = Check(recs);
  EXPECT_TRUE(r.invalid);
  EXPECT_TRUE(r.ops.empty());
  EXPECT_EQ(r.stats.parse_errors, 0u);
}

TEST(PostgresStartup, SslRefusedContinuesInPlaintext) {
  const std::vector<Rec> recs = {C(SslRequest()),
                                 S("N"),
                                 C(Startup("bob-the-builder", "shop")),
                                 S(ServerAuthTail()),
                                 C(Query("SELECT * FROM orders")),
                                 S(RowDescription({"id"}) + CommandComplete("SELECT 0") + Ready())};
  Result r = Check(recs);
  EXPECT_FALSE(r.invalid);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "orders");
  ExpectOk(r.ops[0]);
}

TEST(PostgresStartup, GssRefusedThenSslRefused) {
  const std::vector<Rec> recs = {C(GssEncRequest()),   S("N"),
                                 C(SslRequest()),      S("N"),
                                 C(Startup("u", "d")), S(ServerAuthTail()),
                                 C(Query("COMMIT")),   S(CommandComplete("COMMIT") + Ready())};
  Result r = Check(recs);
  EXPECT_FALSE(r.invalid);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectOk(r.ops[0]);
}

TEST(PostgresStartup, GssAcceptedMakesTheConnectionInvalid) {
  Result r = Check({C(GssEncRequest()), S("G")});
  EXPECT_TRUE(r.invalid);
}

TEST(PostgresStartup, DirectTlsIsInvalid) {
  Result r = Check({C(std::string("\x16\x03\x01\x00\x80", 5) + std::string(20, 'x'))});
  EXPECT_TRUE(r.invalid);
}

// ---- Simple query ----

TEST(PostgresSimple, MultiStatementQueryIsOneOperation) {
  const std::vector<Rec> recs = {
      C(Query("BEGIN; INSERT INTO accounts (email) VALUES ('alice@example.com'); COMMIT")),
      S(CommandComplete("BEGIN") + CommandComplete("INSERT 0 1") + CommandComplete("COMMIT") +
        Ready())};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_EQ(r.ops[0].operation, "BEGIN");
  ExpectOk(r.ops[0]);
}

TEST(PostgresSimple, SyntaxError) {
  const std::vector<Rec> recs = {
      C(Query("SELEC * FROM users WHERE email = 'alice@example.com'")),
      S(Error("42601", "syntax error at or near \"SELEC\" alice@example.com") + Ready())};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectError(r.ops[0], "42601");
  EXPECT_EQ(r.ops[0].error_type, "42");
  EXPECT_EQ(r.ops[0].response_ts, 2000u);
  // Not a statement the summariser can name: the fallback, never the first word.
  EXPECT_EQ(r.ops[0].operation, "QUERY");
  EXPECT_EQ(r.ops[0].query_summary, "QUERY");
  EXPECT_EQ(r.ops[0].query_text, "");
}

TEST(PostgresSimple, UniqueViolationKeepsOnlyTheSqlState) {
  const std::vector<Rec> recs = {
      C(Query("INSERT INTO users (email, card) VALUES ('alice@example.com', '4111111111111111')")),
      S(Error("23505", "duplicate key value violates unique constraint \"users_email_key\"",
              "Key (email)=(alice@example.com) already exists.") +
        Ready())};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "INSERT", "users");
  ExpectError(r.ops[0], "23505");
}

TEST(PostgresSimple, ErrorInSecondStatementKeepsTheFirstErrorOnly) {
  const std::vector<Rec> recs = {
      C(Query("SELECT 1; SELECT 1/0")),
      S(RowDescription({"?column?"}) + DataRow({"1"}) + CommandComplete("SELECT 1") +
        Error("22012", "division by zero") + Ready('I'))};
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectError(r.ops[0], "22012");
}

TEST(PostgresSimple, MalformedSqlStateIsUnknownError) {
  std::string bad =
      Msg('E', "SERROR" + std::string(1, '\0') + "Cab!23" + '\0' + "Mx" + '\0' + '\0');
  std::string none = Msg('E', "SERROR" + std::string(1, '\0') + "Mhunter2" + '\0' + '\0');
  Result r =
      Check({C(Query("SELECT 1")), S(bad + Ready()), C(Query("SELECT 2")), S(none + Ready())});
  ASSERT_EQ(r.ops.size(), 2u);
  for (const Operation& op : r.ops) {
    EXPECT_TRUE(op.has_response);
    EXPECT_EQ(op.status_code, "");
    EXPECT_EQ(op.error_type, "_OTHER");
  }
}

TEST(PostgresSimple, EmptyQueryNoticesNotificationsAndParameterStatusAreNotReplies) {
  const std::vector<Rec> recs = {
      S(Notification("events", "alice@example.com")),  // before any command: ignored
      C(Query("")),
      S(Notice("hunter2") + EmptyQuery() + ParameterStatus("TimeZone", "UTC") + Ready()),
      C(Query("LISTEN events")),
      S(CommandComplete("LISTEN") + Notification("events", "4111111111111111") + Ready()),
      S(Notification("events", "bob-the-builder")),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_EQ(r.ops[0].operation, "QUERY");
  EXPECT_EQ(r.ops[0].query_text, "");
  ExpectOk(r.ops[0]);
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
}

TEST(PostgresSimple, TimestampsFollowFirstAndLastBytes) {
  PostgresParser p(Limits{});
  std::vector<Operation> out;
  const std::string q = Query("SELECT * FROM t");
  p.Feed(Direction::kRequest, q.substr(0, 3), 3, 100, &out);
  p.Feed(Direction::kRequest, q.substr(3), q.size() - 3, 110, &out);
  const std::string reply =
      RowDescription({"a"}) + DataRow({"1"}) + CommandComplete("SELECT 1") + Ready();
  p.Feed(Direction::kResponse, reply.substr(0, reply.size() - 2), reply.size() - 2, 200, &out);
  EXPECT_TRUE(out.empty());
  p.Feed(Direction::kResponse, reply.substr(reply.size() - 2), 2, 250, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request_ts, 100u);
  EXPECT_EQ(out[0].response_ts, 250u);
  EXPECT_EQ(out[0].DurationNs(), 150u);
}

TEST(PostgresSimple, FunctionCall) {
  Result r = Check({C(FunctionCall()), S(FunctionResult() + Ready())});
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_EQ(r.ops[0].operation, "FUNCTION_CALL");
  EXPECT_EQ(r.ops[0].query_text, "");
  ExpectOk(r.ops[0]);
}

// ---- Extended protocol ----

constexpr const char* kPgbenchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
constexpr const char* kPgbenchUpdate =
    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2";

TEST(PostgresExtended, UnnamedStatementsLikePgbenchExtended) {
  const std::vector<Rec> recs = {
      C(Parse("", kPgbenchUpdate) + Bind("", "", {"-4111", std::string(kCard)}) +
        Describe('P', "") + Execute("") + Sync()),
      S(ParseComplete() + BindComplete() + NoData() + CommandComplete("UPDATE 1") + Ready('T')),
      C(Parse("", kPgbenchSelect) + Bind("", "", {"4111111111111111"}) + Describe('P', "") +
        Execute("") + Sync()),
      S(ParseComplete() + BindComplete() + RowDescription({"abalance"}) +
        DataRow({std::string(kCard)}) + CommandComplete("SELECT 1") + Ready('T')),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "UPDATE", "pgbench_accounts");
  ExpectStmt(r.ops[1], "SELECT", "pgbench_accounts");
  EXPECT_EQ(r.ops[1].query_text, kPgbenchSelect);
  for (const Operation& op : r.ops) {
    ExpectOk(op);
    EXPECT_FALSE(op.prepared);
  }
  EXPECT_EQ(r.ops[0].request_ts, 1000u);
  EXPECT_EQ(r.ops[0].response_ts, 2000u);
  EXPECT_EQ(r.stats.requests, 2u);
  EXPECT_EQ(r.stats.responses, 2u);
}

TEST(PostgresExtended, NamedStatementsLikePgbenchPrepared) {
  const std::vector<Rec> recs = {
      C(Parse("P0_1", kPgbenchSelect) + Sync()),
      S(ParseComplete() + Ready()),
      C(Bind("", "P0_1", {"12345"}) + Describe('P', "") + Execute("") + Sync()),
      S(BindComplete() + RowDescription({"abalance"}) + DataRow({"-17"}) +
        CommandComplete("SELECT 1") + Ready()),
      C(Bind("", "P0_1", {std::string(kCard)}) + Execute("") + Sync()),
      S(BindComplete() + DataRow({"0"}) + CommandComplete("SELECT 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);  // the Parse + Sync batch executes nothing
  for (const Operation& op : r.ops) {
    ExpectStmt(op, "SELECT", "pgbench_accounts");
    ExpectOk(op);
    EXPECT_TRUE(op.prepared);
  }
  EXPECT_EQ(r.ops[0].request_ts, 3000u);
  EXPECT_EQ(r.statements, 1u);
}

TEST(PostgresExtended, UnnamedStatementParsedInAnEarlierBatchIsPrepared) {
  const std::vector<Rec> recs = {
      C(Parse("", "DELETE FROM sessions WHERE id = $1") + Describe('S', "") + Sync()),
      S(ParseComplete() + ParamDescription() + NoData() + Ready()),
      C(Bind("", "", {"x-secret-note"}) + Execute("") + Sync()),
      S(BindComplete() + CommandComplete("DELETE 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "DELETE", "sessions");
  EXPECT_TRUE(r.ops[0].prepared);
}

TEST(PostgresExtended, SimpleQueryForgetsTheUnnamedStatement) {
  const std::vector<Rec> recs = {
      C(Parse("", "DELETE FROM sessions WHERE id = $1") + Sync()),
      S(ParseComplete() + Ready()),
      C(Query("SET search_path TO app")),
      S(CommandComplete("SET") + Ready()),
      C(Bind("", "") + Execute("") + Sync()),
      S(BindComplete() + CommandComplete("DELETE 0") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_EQ(r.ops[1].operation, "EXECUTE");
}

TEST(PostgresExtended, PipelineWithAnErrorInTheMiddle) {
  const std::vector<Rec> recs = {
      C(Parse("", "INSERT INTO users (email) VALUES ($1)") + Bind("", "", {"a@x.org"}) +
        Execute("") + Parse("", "INSERT INTO users (email) VALUES ($1)") +
        Bind("", "", {std::string(kEmail)}) + Execute("") +
        Parse("", "INSERT INTO audit (note) VALUES ($1)") + Bind("", "", {"x-secret-note"}) +
        Execute("") + Sync()),
      S(ParseComplete() + BindComplete() + CommandComplete("INSERT 0 1") + ParseComplete() +
        BindComplete() +
        Error("23505", "duplicate key value", "Key (email)=(alice@example.com) already exists.") +
        Ready('I')),
      C(Bind("", "", {"b@x.org"}) + Execute("") + Sync()),
      S(BindComplete() + CommandComplete("INSERT 0 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 3u);
  ExpectStmt(r.ops[0], "INSERT", "users");
  ExpectOk(r.ops[0]);
  ExpectStmt(r.ops[1], "INSERT", "users");
  ExpectError(r.ops[1], "23505");
  EXPECT_EQ(r.ops[1].response_ts, 2000u);
  // The third INSERT was skipped by the server: not an operation, counted.
  EXPECT_EQ(r.skipped, 1u);
  // The next batch binds the unnamed statement: the last one the client parsed, from an
  // earlier batch.
  ExpectOk(r.ops[2]);
  EXPECT_TRUE(r.ops[2].prepared);
}

TEST(PostgresExtended, SeveralSyncsInFlightLikeLibpqPipelineMode) {
  std::string batch;
  std::string replies;
  for (int i = 0; i < 3; ++i) {
    batch += Parse("", kPgbenchSelect) + Bind("", "", {std::to_string(i)}) + Describe('P', "") +
             Execute("") + Sync();
    replies += ParseComplete() + BindComplete() + RowDescription({"abalance"}) + DataRow({"0"}) +
               CommandComplete("SELECT 1") + Ready();
  }
  Result r = Check({C(batch), S(replies)});
  ASSERT_EQ(r.ops.size(), 3u);
  for (const Operation& op : r.ops) {
    ExpectOk(op);
    EXPECT_FALSE(op.prepared);
  }
}

TEST(PostgresExtended, ParseSyntaxErrorWithoutExecuteIsOneOperation) {
  const std::vector<Rec> recs = {
      C(Parse("P0_1", "SELEC abalance FROM pgbench_accounts WHERE aid = $1") + Sync()),
      S(Error("42601", "syntax error at or near \"SELEC\"") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectError(r.ops[0], "42601");
  EXPECT_TRUE(r.ops[0].prepared);
  EXPECT_EQ(r.ops[0].request_ts, 1000u);
  EXPECT_EQ(r.skipped, 0u);
}

TEST(PostgresExtended, ParseSyntaxErrorIsCarriedByItsExecute) {
  const std::vector<Rec> recs = {
      C(Parse("", "SELEC 1") + Bind("", "") + Describe('P', "") + Execute("") + Sync()),
      S(Error("42601", "syntax error") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectError(r.ops[0], "42601");
  EXPECT_FALSE(r.ops[0].prepared);
  EXPECT_EQ(r.skipped, 0u);
}

TEST(PostgresExtended, ParseErrorGoesToTheExecuteOfThatStatement) {
  const std::vector<Rec> recs = {
      C(Parse("a", "SELECT * FROM one") + Parse("b", "SELEC * FROM two") + Bind("", "a") +
        Execute("") + Bind("", "b") + Execute("") + Sync()),
      S(ParseComplete() + Error("42601", "syntax error") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectError(r.ops[0], "42601");
  EXPECT_TRUE(r.ops[0].prepared);
  EXPECT_EQ(r.ops[0].operation, "QUERY");  // the failing text, not "SELECT one"
  EXPECT_EQ(r.skipped, 1u);                // the Execute of "a" did not run
}

TEST(PostgresExtended, CloseErrorSkipsTheBatch) {
  const std::vector<Rec> recs = {
      C(CloseMsg('S', "gone") + Bind("", "unknown") + Execute("") + Sync()),
      S(Error("XX000", "internal error") + Ready()),
      C(Bind("", "unknown") + Execute("") + Sync()),
      S(BindComplete() + CommandComplete("SELECT 0") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.skipped, 1u);
}

TEST(PostgresExtended, BindErrorIsCarriedByItsExecute) {
  const std::vector<Rec> recs = {
      C(Parse("S_1", "SELECT * FROM orders WHERE id = $1") + Sync()),
      S(ParseComplete() + Ready()),
      C(Bind("", "S_1", {"bob-the-builder"}) + Execute("") + Sync()),
      S(Error("22P02", "invalid input syntax for type integer: \"bob-the-builder\"") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "orders");
  ExpectError(r.ops[0], "22P02");
  EXPECT_TRUE(r.ops[0].prepared);
}

TEST(PostgresExtended, StatementSeenOnlyThroughBind) {
  // The agent started after the Parse: never invent a text.
  const std::vector<Rec> recs = {
      C(Bind("C_7", "S_3", {std::string(kCard)}) + Execute("C_7", 50) + Sync()),
      S(BindComplete() + DataRow({"1"}) + PortalSuspended() + Ready('T')),
      C(Execute("C_7", 50) + Sync()),
      S(DataRow({"2"}) + CommandComplete("SELECT 2") + Ready('T')),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  for (const Operation& op : r.ops) {
    EXPECT_EQ(op.operation, "EXECUTE");
    EXPECT_EQ(op.query_text, "");
    EXPECT_EQ(op.collection, "");
    EXPECT_TRUE(op.prepared);
    ExpectOk(op);
  }
}

TEST(PostgresExtended, CloseForgetsTheStatement) {
  const std::vector<Rec> recs = {
      C(Parse("s1", "SELECT * FROM orders") + Sync()),
      S(ParseComplete() + Ready()),
      C(CloseMsg('S', "s1") + Sync()),
      S(CloseComplete() + Ready()),
      C(Bind("", "s1") + Execute("") + Sync()),
      S(Error("26000", "prepared statement \"s1\" does not exist") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_EQ(r.ops[0].operation, "EXECUTE");
  ExpectError(r.ops[0], "26000");
  EXPECT_EQ(r.statements, 0u);
}

TEST(PostgresExtended, FlushBeforeSync) {
  // JDBC-style: describe the statement, flush, then execute in the same batch.
  const std::vector<Rec> recs = {
      C(Parse("", "SELECT * FROM orders WHERE id = $1") + Describe('S', "") + Flush()),
      S(ParseComplete() + ParamDescription() + RowDescription({"id"})),
      C(Bind("", "", {"7"}) + Execute("") + Sync()),
      S(BindComplete() + DataRow({"7"}) + CommandComplete("SELECT 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "orders");
  ExpectOk(r.ops[0]);
  EXPECT_FALSE(r.ops[0].prepared);
  EXPECT_EQ(r.ops[0].request_ts, 1000u);  // the Parse started the command
}

// ---- COPY ----

TEST(PostgresCopy, FromStdin) {
  const std::vector<Rec> recs = {
      C(Query("COPY items FROM STDIN")),
      S(CopyInResponse()),
      C(CopyData(std::string(kCard) + "\t" + std::string(kEmail) + "\n")),
      C(CopyData("2\thunter2\n") + CopyDone()),
      S(CommandComplete("COPY 2") + Ready()),
      C(Query("SELECT 1")),
      S(CommandComplete("SELECT 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "COPY", "items");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, 5000u);
  ExpectOk(r.ops[1]);
}

TEST(PostgresCopy, FromStdinFailed) {
  const std::vector<Rec> recs = {
      C(Query("COPY items FROM STDIN")),
      S(CopyInResponse()),
      C(CopyData(std::string(kCard) + "\n") + CopyFail("aborted by hunter2")),
      S(Error("57014", "COPY from stdin failed: aborted by hunter2") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectError(r.ops[0], "57014");
}

TEST(PostgresCopy, ToStdout) {
  const std::vector<Rec> recs = {
      C(Query("COPY items TO STDOUT")),
      S(CopyOutResponse() + CopyData(std::string(kCard) + "\n") + CopyData("x-secret-note\n") +
        CopyDone() + CommandComplete("COPY 2") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "COPY", "items");
  ExpectOk(r.ops[0]);
}

TEST(PostgresCopy, FromStdinThroughTheExtendedProtocol) {
  // libpq (PQexecParams) sends Sync after Execute, and again after CopyDone; the server
  // ignores the first one (copy-in mode) and answers the second.
  const std::vector<Rec> recs = {
      C(Parse("", "COPY items FROM STDIN") + Bind("", "") + Describe('P', "") + Execute("") +
        Sync()),
      S(ParseComplete() + BindComplete() + NoData() + CopyInResponse()),
      C(CopyData(std::string(kCard) + "\n") + CopyDone() + Sync()),
      S(CommandComplete("COPY 1") + Ready()),
      C(Query("SELECT 1")),
      S(CommandComplete("SELECT 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "COPY", "items");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, 4000u);
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.orphan_responses, 0u);

  // An error during the copy: the server skips to the Sync after CopyFail.
  const std::vector<Rec> failed = {
      C(Parse("", "COPY items FROM STDIN") + Bind("", "") + Execute("") + Sync()),
      S(ParseComplete() + BindComplete() + CopyInResponse()),
      C(CopyData("bob-the-builder\n")),
      S(Error("22P02", "invalid input syntax for type integer: \"bob-the-builder\"")),
      C(CopyFail("bob-the-builder") + Sync()),
      S(Ready()),
      C(Query("SELECT 1")),
      S(CommandComplete("SELECT 1") + Ready()),
  };
  r = Check(failed);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectError(r.ops[0], "22P02");
  EXPECT_EQ(r.ops[0].response_ts, 4000u);
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
}

TEST(PostgresCopy, CopyBothIsReplicationAndInvalid) {
  Result r = Check({C(Query("START_REPLICATION SLOT s LOGICAL 0/0")), S(CopyBothResponse())});
  EXPECT_TRUE(r.invalid);
}

// ---- Large messages and capture cuts ----

TEST(PostgresLarge, DataRowWithUncapturedTail) {
  const std::string big = DataRow({std::string(100 * 1024, 'x') + std::string(kCard)});
  const std::vector<Rec> recs = {
      C(Query("SELECT doc FROM documents WHERE id = 1")),
      // The first syscall carries the row header and description; only 4096 bytes kept.
      S((RowDescription({"doc"}) + big).substr(0, 4096),
        RowDescription({"doc"}).size() + big.size()),
      S(CommandComplete("SELECT 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "documents");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.stats.gaps, 0u);
}

TEST(PostgresLarge, DataRowSpreadOverUncapturedRecords) {
  const std::string big = DataRow({std::string(100 * 1024, 'y')});
  std::vector<Rec> recs = {C(Query("SELECT doc FROM documents"))};
  // 64 KiB writes, 4 KiB captured each; the last one ends the row and carries the rest.
  size_t off = 0;
  const std::string tail = CommandComplete("SELECT 1") + Ready();
  while (big.size() - off > 65536) {
    recs.push_back(S(big.substr(off, 4096), 65536));
    off += 65536;
  }
  recs.push_back(S(big.substr(off) + tail));
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.stats.gaps, 0u);
}

TEST(PostgresLarge, QueryLongerThanTheBufferIsSummarisedFromItsPrefix) {
  Limits limits;
  limits.max_buffered_bytes = 300;
  // The cut falls inside the literal: what was captured of it must not leak.
  const std::string q = "SELECT * FROM notes WHERE body = 'x-secret-note " + std::string(kCard) +
                        " " + std::string(500, 'z') + "'";
  Result r = Check({C(Query(q)), S(CommandComplete("SELECT 0") + Ready())}, limits);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "SELECT", "notes");
  EXPECT_EQ(r.ops[0].query_text, "SELECT * FROM notes WHERE body = ?");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.stats.oversized, 1u);
}

TEST(PostgresLarge, QueryWithUncapturedTail) {
  const std::string q = Query("INSERT INTO blobs (data) VALUES ('" + std::string(kEmail) +
                              std::string(10000, 'q') + "')");
  Result r = Check({C(q.substr(0, 4096), q.size()), S(CommandComplete("INSERT 0 1") + Ready())});
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "INSERT", "blobs");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.stats.gaps, 0u);
}

TEST(PostgresLarge, BindParametersWithUncapturedTail) {
  const std::string b = Bind("", "", {std::string(20000, 'p')});
  const std::string batch =
      Parse("", "INSERT INTO blobs (data) VALUES ($1)") + b + Execute("") + Sync();
  const size_t parse_len = Parse("", "INSERT INTO blobs (data) VALUES ($1)").size();
  const std::vector<Rec> recs = {
      C(batch.substr(0, parse_len + 100), parse_len + b.size()),
      C(Execute("") + Sync()),
      S(ParseComplete() + BindComplete() + CommandComplete("INSERT 0 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectStmt(r.ops[0], "INSERT", "blobs");
  ExpectOk(r.ops[0]);
  EXPECT_FALSE(r.ops[0].prepared);
}

// ---- Mid-stream start, garbage, gaps ----

TEST(PostgresMidStream, RepliesBeforeAnyRequestAreOrphans) {
  const std::vector<Rec> recs = {
      S(DataRow({std::string(kCard)}) + CommandComplete("SELECT 1") + Ready()),
      C(Query("UPDATE t SET a = 1")),
      S(CommandComplete("UPDATE 1") + Ready()),
      C(Bind("", "S_9") + Execute("") + Sync()),
      S(BindComplete() + CommandComplete("UPDATE 3") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "UPDATE", "t");
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[1].operation, "EXECUTE");
  EXPECT_EQ(r.stats.orphan_responses, 1u);
  EXPECT_EQ(r.stats.parse_errors, 0u);
}

TEST(PostgresMidStream, StartInsideAMessageResyncsAtTheNextRecord) {
  const std::string row = DataRow({std::string(300, 'r')});
  const std::vector<Rec> recs = {
      S(row.substr(100)),                     // the tail of a row: not a message start
      C(CopyData("hunter2 tail").substr(3)),  // the tail of something the client sent
      C(Query("SELECT * FROM t")),
      S(CommandComplete("SELECT 0") + Ready()),
  };
  Result r = Play(recs, Mode::kWhole);
  ExpectNoSecrets(r.ops);
  EXPECT_FALSE(r.invalid);
  EXPECT_EQ(r.stats.parse_errors, 2u);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectOk(r.ops[0]);
}

TEST(PostgresMidStream, GarbageMakesTheConnectionInvalid) {
  std::vector<Rec> recs;
  for (int i = 0; i < 4; ++i) recs.push_back(C("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  Result r = Play(recs, Mode::kWhole);
  EXPECT_TRUE(r.invalid);
  EXPECT_EQ(r.stats.parse_errors, 4u);
  // Fewer, with valid messages between: not invalid.
  recs = {C("\x01garbage"), C(Query("SELECT 1")), S(CommandComplete("SELECT 1") + Ready()),
          C("\x01garbage"), C(Query("SELECT 1")), S(CommandComplete("SELECT 1") + Ready())};
  r = Play(recs, Mode::kWhole);
  EXPECT_FALSE(r.invalid);
  EXPECT_EQ(r.ops.size(), 2u);
}

TEST(PostgresGap, ResponseGapReportsPendingWithoutReply) {
  const std::vector<Rec> recs = {
      C(Query("SELECT * FROM a")),
      S(RowDescription({"x"})),
      GapIn(Direction::kResponse),
      S(DataRow({"1"}).substr(2) + CommandComplete("SELECT 9") + Ready()),  // dropped
      C(Query("SELECT * FROM b")),
      S(CommandComplete("SELECT 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectStmt(r.ops[0], "SELECT", "a");
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_EQ(r.ops[0].response_ts, 0u);
  EXPECT_EQ(r.ops[0].status_code, "");
  ExpectStmt(r.ops[1], "SELECT", "b");
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.gaps, 1u);
  EXPECT_EQ(r.stats.lost_responses, 1u);
  EXPECT_EQ(r.stats.parse_errors, 0u);
}

TEST(PostgresGap, RequestGapResyncsAtTheNextCommand) {
  const std::vector<Rec> recs = {
      C(Query("SELECT * FROM a")),
      GapIn(Direction::kRequest),
      C(Query("SELECT * FROM b")),
      S(CommandComplete("SELECT 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);
  ExpectStmt(r.ops[1], "SELECT", "b");
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.lost_responses, 1u);
}

TEST(PostgresGap, UncapturedHeadersLoseTheFraming) {
  std::string rows;
  for (int i = 0; i < 200; ++i) rows += DataRow({std::to_string(i), std::string(kEmail)});
  const std::vector<Rec> recs = {
      C(Query("SELECT id, email FROM users")),
      S((RowDescription({"id", "email"}) + rows).substr(0, 1000),
        RowDescription({"id", "email"}).size() + rows.size()),
      // The end of the reply, none of it captured: no resync point.
      S("", CommandComplete("SELECT 200").size() + Ready().size()),
      C(Query("SELECT * FROM b")),
      S(CommandComplete("SELECT 1") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.gaps, 1u);
  EXPECT_EQ(r.stats.lost_responses, 1u);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
  EXPECT_EQ(r.resyncs, 0u);
}

TEST(PostgresGap, UncapturedHeadersThenAReplyEndStartingARecordResyncs) {
  std::string rows;
  for (int i = 0; i < 200; ++i) rows += DataRow({std::to_string(i), std::string(kEmail)});
  const std::vector<Rec> recs = {
      C(Query("SELECT id, email FROM users")),
      S((RowDescription({"id", "email"}) + rows).substr(0, 1000),
        RowDescription({"id", "email"}).size() + rows.size()),
      S(CommandComplete("SELECT 200") + Ready()),  // starts a record: the reply's end
      C(Query("SELECT * FROM b")),
      S(CommandComplete("SELECT 1") + Ready()),
  };
  // Record boundaries are what a resync relies on: fed whole, not split.
  Result r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, 3000u);
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.gaps, 1u);
  EXPECT_EQ(r.stats.lost_responses, 0u);
  EXPECT_EQ(r.resyncs, 1u);
  // A ReadyForQuery alone: the lost bytes may have held an error, so no status is made up.
  std::vector<Rec> alone = recs;
  alone[2] = S(Ready());
  r = Play(alone, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_EQ(r.ops[0].status_code, "");
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.lost_responses, 1u);
}

TEST(PostgresGap, LostCopyDataKeepsThePairing) {
  const std::string d = CopyData(std::string(3000, 'c'));
  std::string data;
  for (int i = 0; i < 20; ++i) data += d;
  const std::vector<Rec> recs = {
      C(Query("COPY items FROM STDIN")),
      S(CopyInResponse()),
      C(data.substr(0, 4096), data.size()),  // headers of later CopyData not captured
      C(d.substr(1000)),                     // a record starting inside a CopyData
      C(d + CopyDone()),
      S(CommandComplete("COPY 22") + Ready()),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.stats.gaps, 1u);
  EXPECT_EQ(r.stats.parse_errors, 0u);
  EXPECT_EQ(r.stats.lost_responses, 0u);
}

// ---- Resynchronisation inside large replies ----
//
// The kernel keeps the first 4096 bytes of each syscall: a reply spanning records loses the
// response framing at the first DataRow header that falls in an uncaptured tail.

constexpr size_t kCap = 4096;

struct Lcg {
  uint64_t s;
  size_t Next(size_t n) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>((s >> 33) % n);
  }
};

// A reply written in syscalls of `sizes` bytes (summing to its size), each captured up to kCap.
std::vector<Rec> Records(const std::string& reply, const std::vector<size_t>& sizes) {
  std::vector<Rec> recs;
  size_t off = 0;
  for (size_t n : sizes) {
    recs.push_back(S(reply.substr(off, std::min(n, kCap)), n));
    off += n;
  }
  EXPECT_EQ(off, reply.size());
  return recs;
}

// 16 KiB writes; the last one is split so that the reply's last 2 KiB are a short write,
// as the server's final flush is (the end of a reply in an uncaptured tail cannot be seen).
std::vector<size_t> FixedSizes(size_t total, size_t size = 16384) {
  std::vector<size_t> v;
  while (total > size) {
    v.push_back(size);
    total -= size;
  }
  if (total > kCap) {
    v.push_back(total - 2048);
    total = 2048;
  }
  v.push_back(total);
  return v;
}

// Writes of 1..32 KiB; the last one, holding at least `tail_min` bytes, fully captured.
std::vector<size_t> RandomSizes(size_t total, Lcg* rng, size_t tail_min) {
  const size_t tail = tail_min + rng->Next(kCap - tail_min + 1);
  std::vector<size_t> v;
  size_t left = total - tail;
  while (left > 0) {
    const size_t n = std::min(left, 1 + rng->Next(32768));
    v.push_back(n);
    left -= n;
  }
  v.push_back(tail);
  return v;
}

std::string DataRowN(const std::vector<std::optional<std::string>>& vals) {
  std::string b = Be16(static_cast<uint16_t>(vals.size()));
  for (const auto& v : vals) {
    b += v ? Be32(static_cast<uint32_t>(v->size())) + *v : Be32(0xffffffff);
  }
  return Msg('D', b);
}

std::string Letters(Lcg* rng, size_t n) {
  std::string s(n, 'a');
  for (char& c : s) c = static_cast<char>('a' + rng->Next(26));
  return s;
}

std::string HundredRowsOfOneKilobyte() {
  std::string r = RowDescription({"id", "payload"});
  for (int i = 0; i < 100; ++i) {
    r += DataRow({std::to_string(i), std::string(1000, static_cast<char>('a' + i % 26))});
  }
  return r;
}

// About 2 MB: rows of 3 columns, values of 0..4000 bytes, some NULL.
std::string TwoMegabytesOfRows(uint64_t seed, int* nrows) {
  Lcg rng{seed};
  std::string r = RowDescription({"id", "name", "body"});
  int n = 0;
  while (r.size() < 2 * 1024 * 1024) {
    std::optional<std::string> name;
    if (rng.Next(5) != 0) name = Letters(&rng, rng.Next(50));
    r += DataRowN({std::to_string(n), name, Letters(&rng, rng.Next(4001))});
    ++n;
  }
  *nrows = n;
  return r;
}

std::string Ok(std::string_view tag) { return CommandComplete(tag) + Ready(); }
std::string DivisionByZero() {
  return Error("22012", "division by zero, row " + std::string(kCard)) + Ready('I');
}

// One operation, completed from the record holding ReadyForQuery (the last one).
void ExpectResynced(const Result& r, const std::vector<Rec>& recs, std::string_view code) {
  ASSERT_EQ(r.ops.size(), 1u);
  if (code.empty()) {
    ExpectOk(r.ops[0]);
  } else {
    ExpectError(r.ops[0], code);
  }
  EXPECT_EQ(r.ops[0].request_ts, TsOf(recs, 0));
  EXPECT_EQ(r.ops[0].response_ts, TsOf(recs, recs.size() - 1));
  EXPECT_GE(r.stats.gaps, 1u);
  EXPECT_GE(r.resyncs, 1u);
  EXPECT_EQ(r.stats.lost_responses, 0u);
  EXPECT_EQ(r.stats.parse_errors, 0u);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
  EXPECT_EQ(r.stats.responses, 1u);
  EXPECT_FALSE(r.invalid);
}

std::vector<Rec> WithRequest(std::string request, std::vector<Rec> replies) {
  replies.insert(replies.begin(), C(std::move(request)));
  return replies;
}

TEST(PostgresResync, HundredRowsOfOneKilobyte) {
  const std::string reply = HundredRowsOfOneKilobyte() + Ok("SELECT 100");
  const std::vector<Rec> recs =
      WithRequest(Query("SELECT id, payload FROM big"), Records(reply, FixedSizes(reply.size())));
  ASSERT_GT(recs.size(), 3u);
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "");
  ExpectStmt(r.ops[0], "SELECT", "big");
}

TEST(PostgresResync, HundredRowsWithoutResyncWereLost) {
  // What this fixes: the same reply whose end is not captured stays lost, nothing made up.
  const std::string reply = HundredRowsOfOneKilobyte() + Ok("SELECT 100");
  std::vector<size_t> sizes = FixedSizes(reply.size());
  sizes[sizes.size() - 2] += sizes.back();
  sizes.pop_back();
  ASSERT_GT(sizes.back(), kCap + 20);
  const std::vector<Rec> recs =
      WithRequest(Query("SELECT id, payload FROM big"), Records(reply, sizes));
  Result r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_EQ(r.stats.lost_responses, 1u);
}

TEST(PostgresResync, TwoMegabytes) {
  int n = 0;
  const std::string reply = TwoMegabytesOfRows(7, &n) + Ok("SELECT " + std::to_string(n));
  const std::vector<Rec> recs = WithRequest(Query("SELECT id, name, body FROM docs"),
                                            Records(reply, FixedSizes(reply.size())));
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "");
  // Most records hold a resync point: the reply is followed, not just its end.
  EXPECT_GT(r.resyncs, recs.size() / 2);
}

TEST(PostgresResync, ErrorAfterSomeRows) {
  const std::string reply = HundredRowsOfOneKilobyte() + DivisionByZero();
  const std::vector<Rec> recs = WithRequest(Query("SELECT id, 1 / (id - 50) FROM big"),
                                            Records(reply, FixedSizes(reply.size())));
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "22012");
  int n = 0;
  const std::string big = TwoMegabytesOfRows(8, &n) + DivisionByZero();
  const std::vector<Rec> recs2 =
      WithRequest(Query("SELECT 1 / x FROM docs"), Records(big, FixedSizes(big.size())));
  ExpectResynced(Play(recs2, Mode::kWhole), recs2, "22012");
}

TEST(PostgresResync, RandomWriteSizes) {
  int n = 0;
  const std::string rows = TwoMegabytesOfRows(9, &n);
  const std::string endings[] = {Ok("SELECT " + std::to_string(n)), DivisionByZero(),
                                 Notice("x-secret-note") + Ok("SELECT 1")};
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Lcg rng{seed};
    const std::string& end = endings[seed % 3];
    const std::string reply = rows + end;
    const std::vector<Rec> recs = WithRequest(
        Query("SELECT * FROM docs"), Records(reply, RandomSizes(reply.size(), &rng, end.size())));
    Result r = Play(recs, Mode::kWhole);
    ExpectResynced(r, recs, seed % 3 == 1 ? "22012" : "");
    if (HasFailure()) {
      ADD_FAILURE() << "seed " << seed;
      return;
    }
  }
}

TEST(PostgresResync, ExtendedProtocol) {
  const std::string rows = HundredRowsOfOneKilobyte();
  const std::string request = Parse("", "SELECT id, payload FROM big WHERE id > $1") +
                              Bind("", "", {"0"}) + Describe('P', "") + Execute("") + Sync();
  for (const std::string& end : {Ok("SELECT 100"), DivisionByZero()}) {
    const std::string reply = ParseComplete() + BindComplete() + rows + end;
    const std::vector<Rec> recs = WithRequest(request, Records(reply, FixedSizes(reply.size())));
    Result r = Play(recs, Mode::kWhole);
    ExpectResynced(r, recs, end[0] == 'E' ? "22012" : "");
    EXPECT_FALSE(r.ops[0].prepared);
  }
  // Prepared without Describe (pgbench -M prepared): the column count comes from the first
  // DataRow.
  std::string reply = BindComplete();
  for (int i = 0; i < 100; ++i) reply += DataRow({std::to_string(i), std::string(900, 'q')});
  reply += Ok("SELECT 100");
  const std::vector<Rec> recs =
      WithRequest(Bind("", "S_1") + Execute("") + Sync(), Records(reply, FixedSizes(reply.size())));
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "");
  EXPECT_EQ(r.ops[0].operation, "EXECUTE");
}

TEST(PostgresResync, CopyToStdoutText) {
  std::string reply = CopyOutResponse();
  for (int i = 0; i < 20000; ++i) reply += CopyData(std::to_string(i) + "\tvalue " + "\n");
  reply += CopyDone() + Ok("COPY 20000");
  const std::vector<Rec> recs =
      WithRequest(Query("COPY items TO STDOUT"), Records(reply, FixedSizes(reply.size())));
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "");
  ExpectStmt(r.ops[0], "COPY", "items");
  EXPECT_GT(r.resyncs, recs.size() / 2);
}

TEST(PostgresResync, CopyToStdoutBinary) {
  std::string reply = Msg('H', std::string(1, '\1') + Be16(2) + Be16(1) + Be16(1));
  const std::string sig = std::string("PGCOPY\n\xff\r\n", 10) + '\0' + Be32(0) + Be32(0);
  for (int i = 0; i < 5000; ++i) {
    const std::string tuple = Be16(2) + Be32(4) + Be32(static_cast<uint32_t>(i)) +
                              (i % 7 ? Be32(300) + std::string(300, 'b') : Be32(0xffffffff));
    reply += CopyData(i == 0 ? sig + tuple : tuple);
  }
  reply += CopyData(Be16(0xffff)) + CopyDone() + Ok("COPY 5000");
  const std::vector<Rec> recs = WithRequest(Query("COPY items TO STDOUT (FORMAT binary)"),
                                            Records(reply, FixedSizes(reply.size())));
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "");
  EXPECT_GT(r.resyncs, recs.size() / 2);
}

TEST(PostgresResync, MultiStatementQuery) {
  // The lost bytes hold the first statement's end; the resync is in the second's rows.
  std::string reply =
      HundredRowsOfOneKilobyte() + CommandComplete("SELECT 100") + RowDescription({"a", "b", "c"});
  for (int i = 0; i < 100; ++i) reply += DataRow({"1", "2", std::string(700, 'z')});
  reply += Ok("SELECT 100");
  const std::vector<Rec> recs = WithRequest(Query("SELECT * FROM big; SELECT a, b, c FROM t"),
                                            Records(reply, FixedSizes(reply.size())));
  ExpectResynced(Play(recs, Mode::kWhole), recs, "");
}

TEST(PostgresResync, TheClientsNextRecordEndsTheSearch) {
  const std::string reply = HundredRowsOfOneKilobyte() + Ok("SELECT 100");
  std::vector<Rec> recs =
      WithRequest(Query("SELECT * FROM big"), Records(reply, FixedSizes(reply.size())));
  recs.insert(recs.end() - 1, C(Query("SELECT 2")));  // a pipelining client
  Result r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);  // no resync point before the client moved on
  EXPECT_FALSE(r.ops[1].has_response);  // what follows is not told apart: lost too
  EXPECT_EQ(r.stats.responses, 0u);
  EXPECT_EQ(r.stats.lost_responses, 2u);
  // A resynced reply is delivered when the client sends its next command, in order.
  recs = WithRequest(Query("SELECT * FROM big"), Records(reply, FixedSizes(reply.size())));
  recs.push_back(C(Query("SELECT 3")));
  recs.push_back(S(Ok("SELECT 1")));
  r = Play(recs, Mode::kWhole, 0, {}, /*close=*/false);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(recs, recs.size() - 3));
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.ops[1].response_ts, TsOf(recs, recs.size() - 1));
}

TEST(PostgresResync, PipelinedPair) {
  const std::string rows = HundredRowsOfOneKilobyte();
  // Both pending when the framing is lost: the chain found later could answer either; both
  // are reported without reply, never paired by guess.
  const std::string reply =
      rows + Ok("SELECT 100") + RowDescription({"n"}) + DataRow({"1"}) + Ok("SELECT 1");
  std::vector<Rec> recs = WithRequest(Query("SELECT * FROM big") + Query("SELECT n FROM small"),
                                      Records(reply, FixedSizes(reply.size())));
  recs.push_back(C(Query("SELECT 3")));
  recs.push_back(S(Ok("SELECT 1")));
  Result r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 3u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_FALSE(r.ops[1].has_response);
  ExpectOk(r.ops[2]);
  EXPECT_EQ(r.resyncs, 0u);
  EXPECT_EQ(r.stats.lost_responses, 2u);
  // The first answered within the captured bytes, the second alone when the framing is lost:
  // it resyncs.
  const std::string reply2 =
      RowDescription({"n"}) + DataRow({"1"}) + Ok("SELECT 1") + rows + Ok("SELECT 100");
  recs = WithRequest(Query("SELECT n FROM small") + Query("SELECT * FROM big"),
                     Records(reply2, FixedSizes(reply2.size())));
  r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectOk(r.ops[0]);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(recs, 1));
  ExpectStmt(r.ops[1], "SELECT", "big");
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.ops[1].response_ts, TsOf(recs, recs.size() - 1));
  EXPECT_GE(r.resyncs, 1u);
  // Two Executes in one batch: not resynced either.
  const std::string batch = Parse("", "SELECT * FROM big") + Bind("", "") + Execute("") +
                            Bind("", "") + Execute("") + Sync();
  const std::string reply3 =
      ParseComplete() + BindComplete() + rows.substr(RowDescription({"id", "payload"}).size()) +
      CommandComplete("SELECT 100") + BindComplete() +
      rows.substr(RowDescription({"id", "payload"}).size()) + Ok("SELECT 100");
  recs = WithRequest(batch, Records(reply3, FixedSizes(reply3.size())));
  r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_FALSE(r.ops[1].has_response);
  EXPECT_EQ(r.resyncs, 0u);
}

// A value holding a forged chain: a DataRow of the result's column count, then
// CommandComplete and ReadyForQuery.
const std::string kForged = Msg('D', Be16(1) + Be32(0)) + CommandComplete("SELECT 1") + Ready();

std::string ForgedRows(int before, int after, std::string* forged_row) {
  std::string r = RowDescription({"note"});
  for (int i = 0; i < before; ++i) r += DataRow({std::string(1000, 'a')});
  *forged_row = DataRow({std::string(600, 'f') + kForged + std::string(600, 'g')});
  r += *forged_row;
  for (int i = 0; i < after; ++i) r += DataRow({std::string(1000, 'h')});
  return r;
}

TEST(PostgresResync, ForgedChainInsideCapturedBytesIsNotACompletion) {
  // Every row carries the forged chain, written in 16 KiB records: wherever a record starts,
  // the forged ReadyForQuery is followed by more bytes, so it is never the reply's end.
  std::string reply = RowDescription({"note"});
  for (int i = 0; i < 200; ++i) {
    reply += DataRow({std::string(300, 'f') + kForged + std::string(i % 50, 'g')});
  }
  reply += DivisionByZero();
  for (size_t size : {16384u, 8192u, 5000u, 12345u}) {
    const std::vector<Rec> recs = WithRequest(Query("SELECT note FROM notes"),
                                              Records(reply, FixedSizes(reply.size(), size)));
    Result r = Play(recs, Mode::kWhole);
    ExpectResynced(r, recs, "22012");
  }
}

TEST(PostgresResync, ForgedChainEndingARecordIsUndone) {
  // The write boundary falls right after the forged ReadyForQuery and the record starts
  // inside the value: the forged chain is the only one in it and ends the record. It would
  // complete the query with success at record 3's time; the real reply goes on with rows
  // and an error. The completion is held until the client's next record: the next response
  // record, inside the value again, refutes it.
  std::string forged_row;
  const std::string rows = ForgedRows(30, 20, &forged_row);
  const std::string reply = rows + DivisionByZero();
  const size_t row_at = rows.find(forged_row);
  const size_t forged_end = row_at + 5 + 2 + 4 + 600 + kForged.size();
  const std::vector<Rec> recs = {
      C(Query("SELECT note FROM notes")),
      S(reply.substr(0, kCap), row_at + 50),                                // framing lost
      S(reply.substr(row_at + 50, forged_end - row_at - 50)),               // ends after Z
      S(reply.substr(forged_end, kCap), reply.size() - forged_end - 3000),  // rest of the rows
      S(reply.substr(reply.size() - 3000)),                                 // the real end
  };
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "22012");
  EXPECT_GE(r.resync_aborts, 1u);
  // The same, the client's next command arriving after the real end: still the error.
  std::vector<Rec> more = recs;
  more.push_back(C(Query("SELECT 2")));
  more.push_back(S(Ok("SELECT 1")));
  r = Play(more, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectError(r.ops[0], "22012");
  EXPECT_EQ(r.ops[0].response_ts, TsOf(more, 4));
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
}

TEST(PostgresResync, ForgedChainWouldPairTheNextCommandWrongly) {
  // Pipelined: were a forged chain in the first reply taken for its end, the first reply's
  // real end would complete the second query. With two pending, no resync happens at all.
  std::string forged_row;
  const std::string rows = ForgedRows(30, 20, &forged_row);
  const std::string reply = rows + DivisionByZero() + Ok("SELECT 1");
  const size_t row_at = rows.find(forged_row);
  const size_t forged_end = row_at + 5 + 2 + 4 + 600 + kForged.size();
  const std::vector<Rec> recs = {
      C(Query("SELECT note FROM notes") + Query("SELECT 1")),
      S(reply.substr(0, kCap), row_at + 50),
      S(reply.substr(row_at + 50, forged_end - row_at - 50)),
      S(reply.substr(forged_end)),
  };
  Result r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_FALSE(r.ops[1].has_response);
  EXPECT_EQ(r.resyncs, 0u);
  EXPECT_EQ(r.stats.responses, 0u);
}

TEST(PostgresResync, ForgedChainsFillingTheCapture) {
  // Values made of forged 10-byte DataRows: a record starting inside one parses as rows up to
  // its capture end. The resync is wrong but harmless (rows are not read); the real end
  // still decides.
  const std::string fake = Msg('D', Be16(1) + Be32(0));
  std::string reply = RowDescription({"note"});
  for (int i = 0; i < 60; ++i) {
    std::string v;
    for (int k = 0; k < 500 + i; ++k) v += fake;
    reply += DataRow({v.substr(i % 7)});
  }
  reply += Ok("SELECT 60");
  const std::vector<Rec> recs =
      WithRequest(Query("SELECT note FROM notes"), Records(reply, FixedSizes(reply.size())));
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "");
}

TEST(PostgresResync, HuntingIsBoundedAndGarbageIsNotAnError) {
  // Records of noise while searching: no resync, no parse error, no invalid(); the reply is
  // lost once the client moves on.
  Lcg rng{3};
  std::vector<Rec> recs = {C(Query("SELECT * FROM big")),
                           S(HundredRowsOfOneKilobyte().substr(0, kCap), 50000)};
  for (int i = 0; i < 50; ++i) {
    std::string noise(1 + rng.Next(kCap), '\0');
    for (char& c : noise) c = "DCEZdcIsN\0\1\x05"[rng.Next(12)];
    recs.push_back(S(noise, noise.size() + rng.Next(2) * 10000));
  }
  recs.push_back(C(Query("SELECT 1")));
  recs.push_back(S(Ok("SELECT 1")));
  Result r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);
  ExpectOk(r.ops[1]);
  EXPECT_EQ(r.stats.parse_errors, 0u);
  EXPECT_FALSE(r.invalid);
}

TEST(PostgresResync, CloseWhileSearchingIsALostReply) {
  const std::string reply = HundredRowsOfOneKilobyte();
  const std::vector<Rec> recs = {C(Query("SELECT * FROM big")),
                                 S(reply.substr(0, kCap), reply.size() - 3000),
                                 S(reply.substr(reply.size() - 3000, 100), 3000)};
  Result r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_EQ(r.stats.lost_responses, 1u);
}

// ---- The end of a record beyond the capture (FeedTail) ----

// 16 KiB writes, like libpq's reads; the last one also longer than the capture, so the reply's
// end is only in the record's uncaptured part.
std::vector<size_t> LongLastSizes(size_t total) {
  std::vector<size_t> v;
  while (total > 16384) {
    v.push_back(16384);
    total -= 16384;
  }
  if (total <= kCap + kMaxTail) {
    v.back() -= 8192;
    total += 8192;
  }
  v.push_back(total);
  return v;
}

// Records() whose uncaptured ends are given to FeedTail.
std::vector<Rec> TailRecords(const std::string& reply, const std::vector<size_t>& sizes) {
  std::vector<Rec> recs = Records(reply, sizes);
  size_t off = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    off += sizes[i];
    if (sizes[i] > kCap) {
      const size_t n = std::min(kMaxTail, sizes[i] - kCap);
      recs[i].tail = reply.substr(off - n, n);
    }
  }
  return recs;
}

std::vector<Rec> WithoutTails(std::vector<Rec> recs) {
  for (Rec& r : recs) r.tail.clear();
  return recs;
}

std::string ThreeHundredRowsOfOneKilobyte() {
  std::string r = RowDescription({"id", "payload"});
  for (int i = 0; i < 300; ++i) {
    r += DataRow({std::to_string(i), std::string(1000, static_cast<char>('a' + i % 26))});
  }
  return r;
}

void ExpectLost(const Result& r) {
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_EQ(r.ops[0].response_ts, 0u);
  EXPECT_TRUE(r.ops[0].status_code.empty());
  EXPECT_TRUE(r.ops[0].error_type.empty());
  EXPECT_EQ(r.stats.lost_responses, 1u);
  EXPECT_EQ(r.stats.responses, 0u);
  EXPECT_EQ(r.tail_resyncs, 0u);
}

TEST(PostgresTail, ReplyEndingBeyondTheCapture) {
  int n = 0;
  const std::string two_mb = TwoMegabytesOfRows(7, &n) + Ok("SELECT " + std::to_string(n));
  for (const std::string& reply : {ThreeHundredRowsOfOneKilobyte() + Ok("SELECT 300"), two_mb}) {
    const std::vector<Rec> recs =
        WithRequest(Query("SELECT * FROM big"), TailRecords(reply, LongLastSizes(reply.size())));
    ASSERT_GT(recs.back().len, kCap + kMaxTail);
    Result r = Play(recs, Mode::kWhole);
    ExpectResynced(r, recs, "");  // response_ts: the record whose tail holds the end
    ExpectStmt(r.ops[0], "SELECT", "big");
    EXPECT_EQ(r.tail_resyncs, 1u);
    EXPECT_EQ(r.resync_aborts, 0u);
    for (size_t k : {1u, 5u, 100u, 4095u}) {
      Result split = Play(recs, Mode::kSplit, k);
      EXPECT_EQ(DumpAll(split.ops), DumpAll(r.ops)) << "split at " << k;
    }
    // Without the tail: lost, as before.
    ExpectLost(Play(WithoutTails(recs), Mode::kWhole));
  }
}

TEST(PostgresTail, ExtendedProtocolAndCopyToStdout) {
  std::string rows;
  for (int i = 0; i < 300; ++i) rows += DataRow({std::to_string(i), std::string(1000, 'q')});
  std::string reply = BindComplete() + rows + Ok("SELECT 300");
  std::vector<Rec> recs = WithRequest(Bind("", "S_1") + Execute("") + Sync(),
                                      TailRecords(reply, LongLastSizes(reply.size())));
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "");
  EXPECT_EQ(r.tail_resyncs, 1u);
  // An Execute without its Sync gets no ReadyForQuery: nothing in the tail can end it.
  recs = WithRequest(Bind("", "S_1") + Execute("") + Flush(),
                     TailRecords(reply, LongLastSizes(reply.size())));
  ExpectLost(Play(recs, Mode::kWhole));

  reply = CopyOutResponse();
  for (int i = 0; i < 40000; ++i) reply += CopyData(std::to_string(i) + "\tvalue " + "\n");
  reply += CopyDone() + Ok("COPY 40000");
  recs =
      WithRequest(Query("COPY items TO STDOUT"), TailRecords(reply, LongLastSizes(reply.size())));
  r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "");
  ExpectStmt(r.ops[0], "COPY", "items");
  EXPECT_EQ(r.tail_resyncs, 1u);
  // Inside COPY data a CommandComplete must follow CopyDone.
  std::string no_done = reply;
  no_done.erase(no_done.size() - Ok("COPY 40000").size() - CopyDone().size(), CopyDone().size());
  recs = WithRequest(Query("COPY items TO STDOUT"),
                     TailRecords(no_done, LongLastSizes(no_done.size())));
  ExpectLost(Play(recs, Mode::kWhole));
}

TEST(PostgresTail, ErrorsStayLost) {
  const std::string rows = ThreeHundredRowsOfOneKilobyte();
  // The ErrorResponse (its message) does not fit in the tail: only its ReadyForQuery is seen.
  for (const std::string& end :
       {DivisionByZero(), Error("22012", "division by zero") + Ready('E'),
        Error("22012", std::string(200, 'x')) + Ready('I'), Notice("x-secret-note") + Ready()}) {
    const std::string reply = rows + end;
    const std::vector<Rec> recs = WithRequest(Query("SELECT 1 / x FROM big"),
                                              TailRecords(reply, LongLastSizes(reply.size())));
    ExpectLost(Play(recs, Mode::kWhole));
  }
  // A tag that is not one, a CommandComplete whose length does not end at the 'Z'.
  for (const std::string& end :
       {Msg('C', CStr("select 1")) + Ready(), Msg('C', CStr("SELECT 1") + "x") + Ready(),
        CommandComplete("SELECT 1") + Ready('X')}) {
    const std::string reply = rows + end;
    const std::vector<Rec> recs =
        WithRequest(Query("SELECT * FROM big"), TailRecords(reply, LongLastSizes(reply.size())));
    ExpectLost(Play(recs, Mode::kWhole));
  }
}

TEST(PostgresTail, ForgedEndInsideARowIsUndone) {
  // A value ends a record's uncaptured part with a forged CommandComplete + ReadyForQuery.
  // The reply goes on (rows, then an error): the next response record refutes the completion.
  const std::string forged = std::string(2000, 'f') + CommandComplete("SELECT 1") + Ready();
  std::string rows = RowDescription({"note"});
  for (int i = 0; i < 30; ++i) rows += DataRow({std::string(1000, 'a')});
  const size_t forged_end = rows.size() + 5 + 2 + 4 + forged.size();
  rows += DataRow({forged + std::string(2000, 'g')});
  for (int i = 0; i < 20; ++i) rows += DataRow({std::string(1000, 'h')});
  const std::string reply = rows + DivisionByZero();
  std::vector<Rec> recs = {
      C(Query("SELECT note FROM notes")),
      S(reply.substr(0, kCap), forged_end),
      S(reply.substr(forged_end, kCap), reply.size() - forged_end - 3000),
      S(reply.substr(reply.size() - 3000)),
  };
  recs[1].tail = reply.substr(forged_end - kMaxTail, kMaxTail);
  recs[2].tail = reply.substr(reply.size() - 3000 - kMaxTail, kMaxTail);
  Result r = Play(recs, Mode::kWhole);
  ExpectResynced(r, recs, "22012");
  EXPECT_EQ(r.tail_resyncs, 1u);
  EXPECT_GE(r.resync_aborts, 1u);
  // No later response record before the client's next one: the forged end stands. This is
  // what the hold accepts (the same as a forged chain ending a captured record).
  std::vector<Rec> cut = {recs[0], recs[1], C(Query("SELECT 2")), S(Ok("SELECT 1"))};
  r = Play(cut, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_TRUE(r.ops[0].has_response);
  EXPECT_EQ(r.ops[0].response_ts, TsOf(cut, 1));
}

TEST(PostgresTail, IgnoredWhileTheFramingHolds) {
  // The record ends inside one large value whose body is skipped exactly: its tail (a forged
  // end) is row data, not a resync point.
  const std::string forged = std::string(20000, 'f') + CommandComplete("SELECT 1") + Ready();
  const std::string reply =
      RowDescription({"note"}) + DataRow({forged + std::string(100, 'g')}) + DivisionByZero();
  const size_t cut = reply.find(forged) + forged.size();
  std::vector<Rec> recs = {C(Query("SELECT note FROM notes")), S(reply.substr(0, kCap), cut),
                           S(reply.substr(cut))};
  recs[1].tail = reply.substr(cut - kMaxTail, kMaxTail);
  Result r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectError(r.ops[0], "22012");
  EXPECT_EQ(r.ops[0].response_ts, TsOf(recs, 2));
  EXPECT_EQ(r.stats.gaps, 0u);
  EXPECT_EQ(r.resyncs, 0u);
  EXPECT_EQ(r.tail_resyncs, 0u);

  // A tail given again, or after the reply completed: no second completion.
  const std::string big = ThreeHundredRowsOfOneKilobyte() + Ok("SELECT 300");
  recs = WithRequest(Query("SELECT * FROM big"), TailRecords(big, LongLastSizes(big.size())));
  PostgresParser p(Limits{});
  std::vector<Operation> ops;
  for (size_t i = 0; i < recs.size(); ++i) {
    const Rec& rec = recs[i];
    p.Feed(rec.dir, rec.bytes, rec.len ? rec.len : rec.bytes.size(), TsOf(recs, i), &ops);
    if (!rec.tail.empty()) p.FeedTail(rec.dir, rec.tail, TsOf(recs, i), &ops);
  }
  p.FeedTail(Direction::kResponse, recs.back().tail, 99999, &ops);
  p.FeedTail(Direction::kRequest, recs.back().tail, 99999, &ops);
  p.Feed(Direction::kRequest, Query("SELECT 2"), Query("SELECT 2").size(), 100000, &ops);
  p.FeedTail(Direction::kResponse, recs.back().tail, 100001, &ops);
  p.Close(100002, &ops);
  ASSERT_EQ(ops.size(), 2u);
  ExpectOk(ops[0]);
  EXPECT_EQ(ops[0].response_ts, TsOf(recs, recs.size() - 1));
  EXPECT_FALSE(ops[1].has_response);
  EXPECT_EQ(p.stats().responses, 1u);
  EXPECT_EQ(p.tail_resyncs(), 1u);
}

TEST(PostgresTail, PipelinedIsIgnored) {
  const std::string reply = ThreeHundredRowsOfOneKilobyte() + Ok("SELECT 300") +
                            RowDescription({"n"}) + DataRow({"1"}) + Ok("SELECT 1");
  const std::vector<Rec> recs =
      WithRequest(Query("SELECT * FROM big") + Query("SELECT n FROM small"),
                  TailRecords(reply, LongLastSizes(reply.size())));
  Result r = Play(recs, Mode::kWhole);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_FALSE(r.ops[1].has_response);
  EXPECT_EQ(r.resyncs, 0u);
  EXPECT_EQ(r.tail_resyncs, 0u);
  EXPECT_EQ(r.stats.responses, 0u);
}

TEST(PostgresTail, NoisyTailsAreHarmless) {
  // Tails of noise, of short pieces of endings, of every length: never more than one reply.
  const std::string reply = ThreeHundredRowsOfOneKilobyte() + Ok("SELECT 300");
  const std::string end = "SELECT 300" + std::string(1, '\0') + Ready();
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Lcg rng{seed};
    std::vector<Rec> recs =
        WithRequest(Query("SELECT * FROM big"), TailRecords(reply, LongLastSizes(reply.size())));
    for (Rec& rec : recs) {
      if (rec.dir != Direction::kResponse) continue;
      std::string t(rng.Next(kMaxTail + 1), 'x');
      for (char& c : t) c = static_cast<char>(rng.Next(256));
      if (rng.Next(2) == 0) t = (t + end).substr(std::min(t.size() + end.size(), rng.Next(80)));
      if (t.size() > kMaxTail) t = t.substr(t.size() - kMaxTail);
      rec.tail = t;
    }
    Result r = Play(recs, Mode::kWhole);
    ASSERT_EQ(r.ops.size(), 1u) << "seed " << seed;
    EXPECT_LE(r.stats.responses, 1u);
    EXPECT_EQ(r.stats.parse_errors, 0u);
    EXPECT_FALSE(r.invalid);
  }
}

// ---- Close ----

TEST(PostgresClose, ReportsPendingWithoutReply) {
  const std::vector<Rec> recs = {
      C(Query("SELECT pg_sleep(10)")),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_EQ(r.ops[0].request_ts, 1000u);
  EXPECT_EQ(r.stats.lost_responses, 0u);

  const std::vector<Rec> pipeline = {
      C(Parse("", "SELECT 1") + Bind("", "") + Execute("") + Parse("", "SELECT 2") + Bind("", "") +
        Execute("") + Sync()),
      S(ParseComplete() + BindComplete() + CommandComplete("SELECT 1")),
  };
  r = Check(pipeline);
  ASSERT_EQ(r.ops.size(), 2u);
  ExpectOk(r.ops[0]);
  EXPECT_FALSE(r.ops[1].has_response);
}

TEST(PostgresClose, FatalErrorWithoutReadyForQuery) {
  const std::vector<Rec> recs = {
      C(Query("SELECT * FROM big")),
      S(RowDescription({"x"}) + Error("57P01", "terminating connection due to administrator")),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectError(r.ops[0], "57P01");
  EXPECT_EQ(r.ops[0].response_ts, 2000u);
}

TEST(PostgresClose, ParseErrorAwaitingSync) {
  const std::vector<Rec> recs = {
      C(Parse("", "SELEC 1") + Flush()),
      S(Error("42601", "syntax error")),
  };
  Result r = Check(recs);
  ASSERT_EQ(r.ops.size(), 1u);
  ExpectError(r.ops[0], "42601");
}

// ---- Bounds ----

TEST(PostgresLimits, MaxPendingDropsCommandsButKeepsThePairing) {
  Limits limits;
  limits.max_pending = 2;
  std::string batch;
  std::string replies;
  for (int i = 0; i < 5; ++i) {
    batch += Parse("", "SELECT * FROM t" + std::to_string(i)) + Bind("", "") + Execute("");
    replies += ParseComplete() + BindComplete() + CommandComplete("SELECT 1");
  }
  const std::vector<Rec> recs = {
      C(batch + Sync()),
      S(replies + Ready()),
      C(Query("SELECT * FROM after")),
      S(CommandComplete("SELECT 1") + Ready()),
  };
  Result r = Check(recs, limits);
  ASSERT_EQ(r.ops.size(), 3u);
  ExpectStmt(r.ops[0], "SELECT", "t0");
  ExpectStmt(r.ops[1], "SELECT", "t1");
  ExpectStmt(r.ops[2], "SELECT", "after");
  for (const Operation& op : r.ops) ExpectOk(op);
  EXPECT_EQ(r.stats.pending_overflow, 3u);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
}

TEST(PostgresLimits, MaxPendingWithUnansweredQueries) {
  Limits limits;
  limits.max_pending = 3;
  std::vector<Rec> recs;
  for (int i = 0; i < 10; ++i) recs.push_back(C(Query("SELECT 1")));
  Result r = Check(recs, limits);
  EXPECT_EQ(r.ops.size(), 3u);
  EXPECT_EQ(r.stats.pending_overflow, 7u);
}

TEST(PostgresLimits, MaxStatementsEvictsTheOldest) {
  Limits limits;
  limits.max_statements = 2;
  const std::vector<Rec> recs = {
      C(Parse("s1", "SELECT * FROM one") + Parse("s2", "SELECT * FROM two") +
        Parse("s3", "SELECT * FROM three") + Sync()),
      S(ParseComplete() + ParseComplete() + ParseComplete() + Ready()),
      C(Bind("", "s1") + Execute("") + Bind("", "s3") + Execute("") + Sync()),
      S(BindComplete() + CommandComplete("SELECT 0") + BindComplete() +
        CommandComplete("SELECT 0") + Ready()),
  };
  Result r = Check(recs, limits);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_EQ(r.ops[0].operation, "EXECUTE");  // s1 was forgotten
  ExpectStmt(r.ops[1], "SELECT", "three");
  EXPECT_EQ(r.stats.statements_evicted, 1u);
  EXPECT_EQ(r.statements, 2u);
}

// Pieces of real conversations, cut, shuffled and mixed with noise: whatever the order, the
// parser stays bounded, never crashes, and never lets a value out.
TEST(PostgresRobustness, ShuffledPiecesAndNoise) {
  const std::vector<std::string> requests = {Startup("bob-the-builder", "shop"),
                                             SslRequest(),
                                             Query(kSelectPii),
                                             Parse("P0_1", kPgbenchSelect),
                                             Bind("", "P0_1", {std::string(kCard)}),
                                             Describe('P', ""),
                                             Execute(""),
                                             Sync(),
                                             Flush(),
                                             CloseMsg('S', "P0_1"),
                                             CopyData(std::string(kEmail)),
                                             CopyDone(),
                                             CopyFail("hunter2"),
                                             Password("hunter2"),
                                             FunctionCall(),
                                             Terminate()};
  const std::vector<std::string> responses = {
      AuthSasl(),
      AuthOk(),
      ParameterStatus("a", "b"),
      BackendKeyData(),
      Ready(),
      RowDescription({"a"}),
      DataRow({std::string(kCard)}),
      CommandComplete("SELECT 1"),
      Error("23505", "duplicate key", "Key (email)=(alice@example.com)"),
      Notice("hunter2"),
      ParseComplete(),
      BindComplete(),
      CloseComplete(),
      NoData(),
      ParamDescription(),
      EmptyQuery(),
      PortalSuspended(),
      CopyInResponse(),
      CopyOutResponse(),
      "N",
      "S"};
  uint64_t seed = 12345;
  auto next = [&seed](uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>((seed >> 33) % n);
  };
  Limits limits;
  limits.max_pending = 8;
  limits.max_statements = 4;
  limits.max_buffered_bytes = 64;
  for (int round = 0; round < 300; ++round) {
    PostgresParser p(limits);
    std::vector<Operation> out;
    for (int i = 0; i < 60 && !p.invalid(); ++i) {
      const bool req = next(2) == 0;
      std::string b;
      for (size_t n = next(4); n > 0; --n) {
        b += req ? requests[next(requests.size())] : responses[next(responses.size())];
      }
      if (next(8) == 0)
        b.insert(next(b.size() + 1), std::string(next(5), static_cast<char>(next(256))));
      if (next(6) == 0 && !b.empty()) b = b.substr(next(b.size()));
      uint64_t len = b.size();
      if (next(8) == 0) {
        const size_t keep = next(b.size() + 1);
        len += next(100);
        b.resize(keep);
      }
      if (next(30) == 0) p.Gap(req ? Direction::kRequest : Direction::kResponse);
      p.Feed(req ? Direction::kRequest : Direction::kResponse, b, len, 1000 + i, &out);
    }
    p.Close(99999, &out);
    ExpectNoSecrets(out);
    EXPECT_LE(p.statements(), 4u);
    EXPECT_LE(p.portals(), 4u);
    for (const Operation& op : out) {
      EXPECT_LE(op.query_text.size(), kMaxQueryText);
      if (!op.has_response) {
        EXPECT_EQ(op.response_ts, 0u);
        EXPECT_EQ(op.status_code, "");
      }
      if (!op.status_code.empty()) {
        EXPECT_EQ(op.error_type, op.status_code.substr(0, 2));
      }
    }
    if (HasFailure()) return;
  }
}

TEST(PostgresFactory, MakeParser) {
  std::unique_ptr<Parser> p = MakeParser(System::kPostgresql, Limits{});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->system(), System::kPostgresql);
  EXPECT_FALSE(p->invalid());
}

}  // namespace
}  // namespace redtap::db

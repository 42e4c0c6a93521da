// SPDX-License-Identifier: Apache-2.0
// The Redis parser fed hand-built RESP2/RESP3 byte streams shaped like real clients' traffic
// (redis-benchmark pipelines, redis-py transactions, pub/sub, redis-cli inline commands).
// Every scenario is fed whole, split in two at every byte offset of every record, and byte
// by byte: the operations must not change. No key or value ever reaches an operation.
#include "parsers/db/redis.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/db/types.h"

namespace redtap::db {
namespace {

constexpr uint64_t kT0 = 1'700'000'000'000'000'000ULL;
// Realistic record times: 40 us apart.
uint64_t T(int i) { return kT0 + static_cast<uint64_t>(i) * 40'000; }

// Values no operation may carry.
constexpr std::string_view kCard = "4111111111111111";
constexpr std::string_view kEmail = "jane.doe@example.com";
const std::string kCardKey = "card:" + std::string(kCard);
const std::string kEmailKey = "user:" + std::string(kEmail);

// ---- Encoders ----

std::string Cmd(std::initializer_list<std::string_view> args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args) {
    s += "$" + std::to_string(a.size()) + "\r\n";
    s.append(a);
    s += "\r\n";
  }
  return s;
}
std::string Bulk(std::string_view v) {
  return "$" + std::to_string(v.size()) + "\r\n" + std::string(v) + "\r\n";
}
std::string Simple(std::string_view v) { return "+" + std::string(v) + "\r\n"; }
std::string Err(std::string_view v) { return "-" + std::string(v) + "\r\n"; }
std::string Int(int64_t v) { return ":" + std::to_string(v) + "\r\n"; }
// An aggregate of `elems`; maps and attributes count pairs.
std::string Agg(char type, std::initializer_list<std::string> elems) {
  const size_t n = type == '%' || type == '|' ? elems.size() / 2 : elems.size();
  std::string s = std::string(1, type) + std::to_string(n) + "\r\n";
  for (const std::string& e : elems) s += e;
  return s;
}
std::string Arr(std::initializer_list<std::string> elems) { return Agg('*', elems); }
std::string PushMsg(std::initializer_list<std::string> elems) { return Agg('>', elems); }
const std::string kNullBulk = "$-1\r\n";

// ---- Harness ----

struct Rec {
  Direction dir = Direction::kRequest;
  std::string bytes;  // captured
  uint64_t ts = 0;
  uint64_t uncaptured = 0;  // bytes moved after `bytes` that the capture did not keep
  bool gap = false;         // a Gap(dir) instead of a Feed
  bool atomic = false;      // a record start the parser validates: never split
};
Rec Rq(std::string b, uint64_t ts, uint64_t uncaptured = 0) {
  return {Direction::kRequest, std::move(b), ts, uncaptured};
}
Rec Rs(std::string b, uint64_t ts, uint64_t uncaptured = 0) {
  return {Direction::kResponse, std::move(b), ts, uncaptured};
}
Rec GapIn(Direction d) { return {d, "", 0, 0, true}; }
Rec Atomic(Rec r) {
  r.atomic = true;
  return r;
}

struct Result {
  std::vector<Operation> ops;
  ConnStats stats;
  RedisCounters counters;
  bool invalid = false;
};

constexpr size_t kNone = static_cast<size_t>(-1);

// Feeds `recs`; record `split` is cut at byte `at` (two Feeds, same time), or every record is
// fed one byte per Feed when `bytewise`. The uncaptured tail goes with the last piece.
Result Play(const std::vector<Rec>& recs, const Limits& limits, bool close, size_t split = kNone,
            size_t at = 0, bool bytewise = false) {
  auto parser = MakeRedisParser(limits);
  Result r;
  uint64_t last_ts = kT0;
  for (size_t i = 0; i < recs.size(); ++i) {
    const Rec& rec = recs[i];
    if (rec.gap) {
      parser->Gap(rec.dir);
      continue;
    }
    last_ts = rec.ts;
    const std::string_view b = rec.bytes;
    std::vector<std::string_view> pieces;
    if (bytewise && !rec.atomic && b.size() > 1) {
      for (size_t k = 0; k < b.size(); ++k) pieces.push_back(b.substr(k, 1));
    } else if (i == split) {
      pieces = {b.substr(0, at), b.substr(at)};
    } else {
      pieces = {b};
    }
    for (size_t k = 0; k < pieces.size(); ++k) {
      const bool last = k + 1 == pieces.size();
      parser->Feed(rec.dir, pieces[k], pieces[k].size() + (last ? rec.uncaptured : 0), rec.ts,
                   &r.ops);
    }
  }
  if (close) parser->Close(last_ts + 1'000'000, &r.ops);
  r.stats = parser->stats();
  const RedisCounters* c = RedisCountersOf(*parser);
  EXPECT_NE(c, nullptr);
  if (c != nullptr) r.counters = *c;
  r.invalid = parser->invalid();
  return r;
}

std::string Describe(const Operation& o) {
  return o.operation + "|" + o.collection + "|" + o.query_text + "|" + o.query_summary + "|" +
         o.status_code + "|" + o.error_type + "|" + std::to_string(o.request_ts) + "|" +
         std::to_string(o.response_ts) + "|" + (o.has_response ? "r" : "-") +
         (o.prepared ? "p" : "") + "|" + std::to_string(static_cast<int>(o.system));
}
std::string Describe(const Result& r) {
  std::string s;
  for (const Operation& o : r.ops) s += Describe(o) + "\n";
  const ConnStats& st = r.stats;
  s += "requests=" + std::to_string(st.requests) + " responses=" + std::to_string(st.responses) +
       " parse_errors=" + std::to_string(st.parse_errors) + " gaps=" + std::to_string(st.gaps) +
       " orphans=" + std::to_string(st.orphan_responses) +
       " overflow=" + std::to_string(st.pending_overflow) +
       " lost=" + std::to_string(st.lost_responses) +
       " pushes=" + std::to_string(r.counters.pushes) +
       " unanswered=" + std::to_string(r.counters.unanswered) + (r.invalid ? " invalid" : "");
  return s;
}

void ExpectClean(const Result& r) {
  for (const Operation& o : r.ops) {
    for (const std::string* f : {&o.operation, &o.collection, &o.query_text, &o.query_summary,
                                 &o.status_code, &o.error_type}) {
      EXPECT_EQ(f->find("4111"), std::string::npos) << Describe(o);
      EXPECT_EQ(f->find("jane"), std::string::npos) << Describe(o);
      EXPECT_EQ(f->find('@'), std::string::npos) << Describe(o);
      EXPECT_EQ(f->find("card"), std::string::npos) << Describe(o);
    }
    EXPECT_TRUE(o.collection.empty());
    EXPECT_FALSE(o.operation.empty());
    EXPECT_LE(o.operation.size(), kMaxNameBytes);
    EXPECT_LE(o.query_text.size(), kMaxQueryText);
    EXPECT_EQ(o.query_summary, o.operation);
    EXPECT_EQ(o.status_code, o.error_type);
    EXPECT_EQ(o.system, System::kRedis);
  }
}

// Runs whole, split at every offset of every record, and byte by byte; all must agree.
Result RunAll(const std::vector<Rec>& recs, const Limits& limits = {}, bool close = true) {
  const Result whole = Play(recs, limits, close);
  ExpectClean(whole);
  const std::string want = Describe(whole);
  for (size_t i = 0; i < recs.size(); ++i) {
    if (recs[i].gap || recs[i].atomic) continue;
    for (size_t at = 1; at < recs[i].bytes.size(); ++at) {
      const Result r = Play(recs, limits, close, i, at);
      if (Describe(r) != want) {
        ADD_FAILURE() << "record " << i << " split at " << at << ":\n"
                      << Describe(r) << "\nwant:\n"
                      << want;
        return whole;
      }
    }
  }
  const Result bytes = Play(recs, limits, close, kNone, 0, true);
  EXPECT_EQ(Describe(bytes), want) << "byte by byte";
  return whole;
}

std::vector<std::string> Names(const Result& r) {
  std::vector<std::string> v;
  for (const Operation& o : r.ops) v.push_back(o.operation);
  return v;
}
std::vector<std::string> Statuses(const Result& r) {
  std::vector<std::string> v;
  for (const Operation& o : r.ops) v.push_back(o.status_code);
  return v;
}

using Strings = std::vector<std::string>;

// ---- redis-benchmark ----

TEST(RedisBenchmark, PipelinedCommandsPairInOrder) {
  // redis-benchmark -P 16: sixteen commands per write, sixteen replies per read (here the
  // replies come in two reads: the client's buffer filled).
  const std::string v3 = "xxx";
  std::string batch;
  batch += Cmd({"PING"});
  batch += Cmd({"SET", "key:000000000042", v3});
  batch += Cmd({"GET", "key:000000000042"});
  batch += Cmd({"INCR", "counter:000000000042"});
  batch += Cmd({"LPUSH", "mylist", v3});
  batch += Cmd({"RPUSH", "mylist", v3});
  batch += Cmd({"LPOP", "mylist"});
  batch += Cmd({"RPOP", "mylist"});
  batch += Cmd({"SADD", "myset", "element:000000000042"});
  batch += Cmd({"HSET", "myhash", "element:000000000042", v3});
  batch += Cmd({"SPOP", "myset"});
  batch += Cmd({"ZADD", "myzset", "0", "element:000000000042"});
  batch += Cmd({"ZPOPMIN", "myzset"});
  batch += Cmd({"LRANGE", "mylist", "0", "99"});
  batch += Cmd({"MSET", "key:1", v3, "key:2", v3, "key:3", v3});
  batch += Cmd({"SET", kCardKey, std::string(kEmail)});
  std::string replies1 =
      Simple("PONG") + Simple("OK") + Bulk(v3) + Int(7) + Int(1) + Int(2) + Bulk(v3);
  std::string replies2 = Bulk(v3) + Int(1) + Int(0) + Bulk("element:000000000042") + Int(1) +
                         Arr({Bulk("element:000000000042"), Bulk("0")}) +
                         Arr({Bulk(v3), Bulk(v3)}) + Simple("OK") + Simple("OK");
  const Result r = RunAll({Rq(batch, T(1)), Rs(replies1, T(2)), Rs(replies2, T(3))});
  EXPECT_EQ(Names(r),
            (Strings{"PING", "SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP", "SADD", "HSET",
                     "SPOP", "ZADD", "ZPOPMIN", "LRANGE", "MSET", "SET"}));
  ASSERT_EQ(r.ops.size(), 16u);
  EXPECT_EQ(r.ops[0].query_text, "PING");
  EXPECT_EQ(r.ops[1].query_text, "SET ? ?");
  EXPECT_EQ(r.ops[13].query_text, "LRANGE ? ? ?");
  EXPECT_EQ(r.ops[14].query_text, "MSET ? ? ? ? ? ?");
  for (size_t i = 0; i < r.ops.size(); ++i) {
    EXPECT_EQ(r.ops[i].request_ts, T(1));
    EXPECT_EQ(r.ops[i].response_ts, i < 7 ? T(2) : T(3)) << i;
    EXPECT_TRUE(r.ops[i].has_response);
    EXPECT_EQ(r.ops[i].status_code, "");
    EXPECT_EQ(r.ops[i].DurationNs(), i < 7 ? 40'000u : 80'000u);
  }
  EXPECT_EQ(r.stats.requests, 16u);
  EXPECT_EQ(r.stats.responses, 16u);
  EXPECT_EQ(r.stats.parse_errors + r.stats.orphan_responses + r.stats.lost_responses, 0u);
}

TEST(RedisBenchmark, SuccessiveBatchesAndErrors) {
  std::string b1, b2;
  for (int i = 0; i < 16; ++i) b1 += Cmd({"INCR", "counter:rand"});
  for (int i = 0; i < 8; ++i) b2 += Cmd({"GET", "key:" + std::to_string(i)});
  b2 += Cmd({"LPOP", "key:1"});  // a string
  std::string r1, r2;
  for (int i = 0; i < 16; ++i) r1 += Int(i + 1);
  for (int i = 0; i < 8; ++i) r2 += i % 2 ? kNullBulk : Bulk("v");
  r2 += Err("WRONGTYPE Operation against a key holding the wrong kind of value");
  const Result r = RunAll({Rq(b1, T(1)), Rs(r1, T(2)), Rq(b2, T(3)), Rs(r2, T(4))});
  ASSERT_EQ(r.ops.size(), 25u);
  EXPECT_EQ(r.ops[15].response_ts, T(2));
  EXPECT_EQ(r.ops[16].request_ts, T(3));
  EXPECT_EQ(r.ops[23].status_code, "");
  EXPECT_EQ(r.ops[24].operation, "LPOP");
  EXPECT_EQ(r.ops[24].status_code, "WRONGTYPE");
  EXPECT_EQ(r.ops[24].error_type, "WRONGTYPE");
}

// ---- Transactions (redis-py pipeline(transaction=True)) ----

TEST(RedisTransaction, WrongtypeInsideExec) {
  const std::string req = Cmd({"MULTI"}) + Cmd({"SET", kCardKey, "v"}) +
                          Cmd({"LPUSH", kCardKey, std::string(kEmail)}) + Cmd({"INCR", "hits"}) +
                          Cmd({"EXEC"});
  const std::string queued = Simple("OK") + Simple("QUEUED") + Simple("QUEUED") + Simple("QUEUED");
  const std::string exec =
      Arr({Simple("OK"), Err("WRONGTYPE Operation against a key holding the wrong kind of value"),
           Int(12)});
  const Result r = RunAll({Rq(req, T(1)), Rs(queued, T(2)), Rs(exec, T(3))});
  EXPECT_EQ(Names(r), (Strings{"MULTI", "SET", "LPUSH", "INCR", "EXEC"}));
  EXPECT_EQ(Statuses(r), (Strings{"", "", "WRONGTYPE", "", ""}));
  ASSERT_EQ(r.ops.size(), 5u);
  EXPECT_EQ(r.ops[0].response_ts, T(2));
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_EQ(r.ops[i].response_ts, T(3)) << i;
    EXPECT_TRUE(r.ops[i].has_response);
  }
  EXPECT_EQ(r.ops[2].query_text, "LPUSH ? ?");
  EXPECT_EQ(r.stats.responses, 5u);
}

TEST(RedisTransaction, QueueTimeErrorAbortsExec) {
  const std::string req =
      Cmd({"MULTI"}) + Cmd({"SET", "k", "v"}) + Cmd({"INCR"}) + Cmd({"GET", "k"}) + Cmd({"EXEC"});
  const Result r =
      RunAll({Rq(req, T(1)), Rs(Simple("OK") + Simple("QUEUED"), T(2)),
              Rs(Err("ERR wrong number of arguments for 'incr' command") + Simple("QUEUED"), T(3)),
              Rs(Err("EXECABORT Transaction discarded because of previous errors."), T(4))});
  EXPECT_EQ(Names(r), (Strings{"MULTI", "SET", "INCR", "GET", "EXEC"}));
  EXPECT_EQ(Statuses(r), (Strings{"", "EXECABORT", "ERR", "EXECABORT", "EXECABORT"}));
  ASSERT_EQ(r.ops.size(), 5u);
  EXPECT_EQ(r.ops[1].response_ts, T(4));
  EXPECT_EQ(r.ops[2].response_ts, T(3));  // its own (queue-time) error
  EXPECT_EQ(r.ops[3].response_ts, T(4));
  EXPECT_EQ(r.ops[2].query_text, "INCR");
}

TEST(RedisTransaction, WatchAbortDiscardAndFollowingCommands) {
  const Result r = RunAll({
      Rq(Cmd({"WATCH", "balance"}), T(1)),
      Rs(Simple("OK"), T(2)),
      Rq(Cmd({"GET", "balance"}), T(3)),
      Rs(Bulk("100"), T(4)),
      Rq(Cmd({"MULTI"}) + Cmd({"SET", "balance", "90"}) + Cmd({"EXEC"}), T(5)),
      Rs(Simple("OK") + Simple("QUEUED") + "*-1\r\n", T(6)),  // WATCHed key changed
      Rq(Cmd({"MULTI"}) + Cmd({"DECRBY", "balance", "10"}) + Cmd({"DISCARD"}), T(7)),
      Rs(Simple("OK") + Simple("QUEUED") + Simple("OK"), T(8)),
      Rq(Cmd({"EXEC"}), T(9)),
      Rs(Err("ERR EXEC without MULTI"), T(10)),
      Rq(Cmd({"PING"}), T(11)),
      Rs(Simple("PONG"), T(12)),
  });
  EXPECT_EQ(Names(r), (Strings{"WATCH", "GET", "MULTI", "SET", "EXEC", "MULTI", "DECRBY", "DISCARD",
                               "EXEC", "PING"}));
  EXPECT_EQ(Statuses(r), (Strings{"", "", "", "ABORTED", "", "", "DISCARDED", "", "ERR", ""}));
  ASSERT_EQ(r.ops.size(), 10u);
  EXPECT_EQ(r.ops[3].response_ts, T(6));
  EXPECT_EQ(r.ops[6].response_ts, T(8));
  EXPECT_EQ(r.ops[9].response_ts, T(12));
}

TEST(RedisTransaction, Resp3NullExecAndNestedResults) {
  const Result r = RunAll({
      Rq(Cmd({"MULTI"}) + Cmd({"HGETALL", "h"}) + Cmd({"SMEMBERS", "s"}) + Cmd({"EXEC"}), T(1)),
      Rs(Simple("OK") + Simple("QUEUED") + Simple("QUEUED") +
             Arr({Agg('%', {Bulk("f"), Bulk("v")}), Agg('~', {Bulk("a")})}),
         T(2)),
      Rq(Cmd({"MULTI"}) + Cmd({"INCR", "x"}) + Cmd({"EXEC"}), T(3)),
      Rs(Simple("OK") + Simple("QUEUED") + "_\r\n", T(4)),
  });
  EXPECT_EQ(Names(r), (Strings{"MULTI", "HGETALL", "SMEMBERS", "EXEC", "MULTI", "INCR", "EXEC"}));
  EXPECT_EQ(Statuses(r), (Strings{"", "", "", "", "", "ABORTED", ""}));
}

TEST(RedisTransaction, TrackedFromInsideATransaction) {
  // The parser starts after MULTI: the +QUEUED replies reveal the transaction.
  const Result r = RunAll({
      Atomic(Rq(Cmd({"SET", "a", "1"}) + Cmd({"SET", "b", "2"}), T(1))),
      Rs(Simple("QUEUED") + Simple("QUEUED"), T(2)),
      Rq(Cmd({"EXEC"}), T(3)),
      Rs(Arr({Simple("OK"), Err("OOM command not allowed")}), T(4)),
  });
  EXPECT_EQ(Names(r), (Strings{"SET", "SET", "EXEC"}));
  EXPECT_EQ(Statuses(r), (Strings{"", "OOM", ""}));
}

// ---- Pub/Sub ----

TEST(RedisPubSub, Resp2SubscribeWithInterleavedMessages) {
  const Result r = RunAll({
      Rq(Cmd({"SUBSCRIBE", "news", "alerts"}), T(1)),
      Rs(Arr({Bulk("subscribe"), Bulk("news"), Int(1)}) +
             Arr({Bulk("message"), Bulk("news"), Bulk(kCard)}),
         T(2)),
      Rs(Arr({Bulk("subscribe"), Bulk("alerts"), Int(2)}) +
             Arr({Bulk("message"), Bulk("alerts"), Bulk(kEmail)}),
         T(3)),
      Rq(Cmd({"PING"}), T(4)),
      Rs(Arr({Bulk("message"), Bulk("news"), Bulk("x")}) + Arr({Bulk("pong"), Bulk("")}), T(5)),
      Rq(Cmd({"PSUBSCRIBE", "user:*"}), T(6)),
      Rs(Arr({Bulk("psubscribe"), Bulk("user:*"), Int(3)}) +
             Agg('*', {Bulk("pmessage"), Bulk("user:*"), Bulk(kEmailKey), Bulk("hi")}),
         T(7)),
      Rq(Cmd({"UNSUBSCRIBE"}), T(8)),
      Rs(Arr({Bulk("unsubscribe"), Bulk("news"), Int(2)}) +
             Arr({Bulk("message"), Bulk("alerts"), Bulk("late")}) +
             Arr({Bulk("unsubscribe"), Bulk("alerts"), Int(1)}),
         T(9)),
      Rq(Cmd({"PUNSUBSCRIBE", "user:*"}), T(10)),
      Rs(Arr({Bulk("punsubscribe"), Bulk("user:*"), Int(0)}), T(11)),
      // Out of subscribed mode: an array starting with "message" is a reply again.
      Rq(Cmd({"LRANGE", "l", "0", "-1"}), T(12)),
      Rs(Arr({Bulk("message"), Bulk("a"), Bulk("b")}), T(13)),
  });
  EXPECT_EQ(Names(r),
            (Strings{"SUBSCRIBE", "PING", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "LRANGE"}));
  ASSERT_EQ(r.ops.size(), 6u);
  EXPECT_EQ(r.ops[0].query_text, "SUBSCRIBE ? ?");
  EXPECT_EQ(r.ops[0].response_ts, T(2));  // its first confirmation
  EXPECT_EQ(r.ops[1].response_ts, T(5));
  EXPECT_EQ(r.ops[3].response_ts, T(9));
  EXPECT_EQ(r.ops[5].response_ts, T(13));
  EXPECT_EQ(r.counters.pushes, 5u);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
  EXPECT_EQ(r.stats.responses, 6u);
}

TEST(RedisPubSub, PipelinedSubscribesConsumeTheirOwnConfirmations) {
  const Result r = RunAll({
      Rq(Cmd({"SUBSCRIBE", "a", "b", "c"}) + Cmd({"SUBSCRIBE", "d"}), T(1)),
      Rs(Arr({Bulk("subscribe"), Bulk("a"), Int(1)}) + Arr({Bulk("subscribe"), Bulk("b"), Int(2)}),
         T(2)),
      Rs(Arr({Bulk("subscribe"), Bulk("c"), Int(3)}) + Arr({Bulk("subscribe"), Bulk("d"), Int(4)}),
         T(3)),
  });
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_EQ(r.ops[0].response_ts, T(2));
  EXPECT_EQ(r.ops[1].response_ts, T(3));
  EXPECT_TRUE(r.ops[1].has_response);
  EXPECT_EQ(r.counters.pushes, 0u);
}

// ---- RESP3 ----

TEST(RedisResp3, HelloMapsPushesAttributesAndScalars) {
  const std::string hello =
      Agg('%', {Bulk("server"), Bulk("redis"), Bulk("version"), Bulk("7.2.4"), Bulk("proto"),
                Int(3), Bulk("id"), Int(5), Bulk("mode"), Bulk("standalone"), Bulk("role"),
                Bulk("master"), Bulk("modules"), Arr({})});
  const std::string invalidate = PushMsg({Bulk("invalidate"), Arr({Bulk(kCardKey)})});
  const std::string attribute = Agg(
      '|',
      {Simple("key-popularity"), Agg('%', {Bulk("a"), ",0.1923\r\n", Bulk("b"), ",0.0012\r\n"})});
  const Result r = RunAll({
      Rq(Cmd({"HELLO", "3", "AUTH", "default", "s3cret"}), T(1)),
      Rs(hello, T(2)),
      Rq(Cmd({"CLIENT", "TRACKING", "on"}) + Cmd({"GET", kCardKey}), T(3)),
      Rs(Simple("OK") + invalidate + Bulk(kEmail), T(4)),
      Rq(Cmd({"HGETALL", kEmailKey}) + Cmd({"SMEMBERS", "s"}) + Cmd({"ZSCORE", "z", "m"}) +
             Cmd({"EXISTS", "k"}) + Cmd({"INCRBY", "big", "1"}) + Cmd({"GET", "nothing"}) +
             Cmd({"LRANGE", "l", "0", "1"}),
         T(5)),
      Rs(Agg('%', {Bulk("email"), Bulk(kEmail), Bulk("card"), Bulk(kCard)}) +
             Agg('~', {Bulk("x"), Bulk("y")}) + ",3.14\r\n" + "#t\r\n" + invalidate +
             "(3492890328409238509324850943850943825024385\r\n" + "_\r\n",
         T(6)),
      Rs(attribute + Arr({Int(2039123), Int(9543892)}), T(7)),
      Rq(Cmd({"XADD", "s", "*", "f", "v"}) + Cmd({"INFO"}) + Cmd({"SET", "k"}), T(8)),
      Rs("!21\r\nSYNTAX invalid syntax\r\n" + std::string("=15\r\ntxt:Some string\r\n") +
             "!4\r\nbusy\r\n",
         T(9)),
  });
  EXPECT_EQ(Names(r), (Strings{"HELLO", "CLIENT TRACKING", "GET", "HGETALL", "SMEMBERS", "ZSCORE",
                               "EXISTS", "INCRBY", "GET", "LRANGE", "XADD", "INFO", "SET"}));
  EXPECT_EQ(Statuses(r), (Strings{"", "", "", "", "", "", "", "", "", "", "SYNTAX", "", "ERR"}));
  ASSERT_EQ(r.ops.size(), 13u);
  EXPECT_EQ(r.ops[0].query_text, "HELLO ? ? ? ?");
  EXPECT_EQ(r.ops[1].query_text, "CLIENT TRACKING ?");
  EXPECT_EQ(r.ops[9].response_ts, T(7));  // the attribute is not its reply
  EXPECT_EQ(r.counters.pushes, 2u);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
}

TEST(RedisResp3, SubscribeConfirmationsArePushes) {
  const Result r = RunAll({
      Rq(Cmd({"HELLO", "3"}), T(1)),
      Rs(Agg('%', {Bulk("proto"), Int(3)}), T(2)),
      Rq(Cmd({"SUBSCRIBE", "ch1", "ch2"}), T(3)),
      Rs(PushMsg({Bulk("subscribe"), Bulk("ch1"), Int(1)}) +
             PushMsg({Bulk("message"), Bulk("ch1"), Bulk(kCard)}) +
             PushMsg({Bulk("subscribe"), Bulk("ch2"), Int(2)}),
         T(4)),
      // RESP3 allows any command while subscribed; its array reply is a reply.
      Rq(Cmd({"LRANGE", "l", "0", "-1"}), T(5)),
      Rs(PushMsg({Bulk("message"), Bulk("ch2"), Bulk("x")}) +
             Arr({Bulk("message"), Bulk("a"), Bulk("b")}),
         T(6)),
      Rq(Cmd({"UNSUBSCRIBE", "ch1", "ch2"}), T(7)),
      Rs(PushMsg({Bulk("unsubscribe"), Bulk("ch1"), Int(1)}) +
             PushMsg({Bulk("unsubscribe"), Bulk("ch2"), Int(0)}),
         T(8)),
  });
  EXPECT_EQ(Names(r), (Strings{"HELLO", "SUBSCRIBE", "LRANGE", "UNSUBSCRIBE"}));
  ASSERT_EQ(r.ops.size(), 4u);
  EXPECT_EQ(r.ops[1].response_ts, T(4));
  EXPECT_EQ(r.ops[2].response_ts, T(6));
  EXPECT_EQ(r.ops[3].response_ts, T(8));
  EXPECT_EQ(r.counters.pushes, 2u);
}

// ---- Inline commands (redis-cli, telnet) ----

TEST(RedisInline, WordsQuotesAndEmptyLines) {
  const Result r = RunAll({
      Rq("PING\r\n", T(1)),
      Rs(Simple("PONG"), T(2)),
      Rq("set " + kCardKey + " \"" + std::string(kEmail) + " with spaces\"\r\n", T(3)),
      Rs(Simple("OK"), T(4)),
      Rq("\r\n", T(5)),  // no command, no reply
      Rq("get 'a b'\n", T(6)),
      Rs(Bulk("x"), T(7)),
      Rq("config get maxmemory\r\n", T(8)),
      Rs(Arr({Bulk("maxmemory"), Bulk("0")}), T(9)),
      Rq(std::string(kEmail) + " foo\r\n", T(10)),
      Rs(Err("ERR unknown command '" + std::string(kEmail) + "', with args beginning with: "),
         T(11)),
      Rq("client   setname   app\r\n", T(12)),
      Rs(Simple("OK"), T(13)),
  });
  EXPECT_EQ(Names(r), (Strings{"PING", "SET", "GET", "CONFIG GET", "_OTHER", "CLIENT SETNAME"}));
  ASSERT_EQ(r.ops.size(), 6u);
  EXPECT_EQ(r.ops[1].query_text, "SET ? ?");
  EXPECT_EQ(r.ops[2].query_text, "GET ?");
  EXPECT_EQ(r.ops[2].request_ts, T(6));
  EXPECT_EQ(r.ops[3].query_text, "CONFIG GET ?");
  EXPECT_EQ(r.ops[4].query_text, "_OTHER ?");
  EXPECT_EQ(r.ops[4].status_code, "ERR");
  EXPECT_EQ(r.ops[5].query_text, "CLIENT SETNAME ?");
}

// ---- Large values, uncaptured tails ----

// Cuts `wire` into reads of `chunk` bytes of which the first `cap` were captured.
std::vector<Rec> Reads(Direction dir, const std::string& wire, size_t chunk, size_t cap,
                       int* tick) {
  std::vector<Rec> v;
  for (size_t off = 0; off < wire.size(); off += chunk) {
    const size_t n = std::min(chunk, wire.size() - off);
    const size_t kept = std::min(n, cap);
    v.push_back({dir, wire.substr(off, kept), T((*tick)++), n - kept});
  }
  return v;
}

TEST(RedisLarge, BulkBodiesSkippedAcrossUncapturedTails) {
  const std::string big(20000, 'v');
  std::string value = std::string(kCard) + " " + std::string(kEmail) + big;
  int tick = 1;
  std::vector<Rec> recs;
  // SET with a 20 KB value written in one syscall, 256 bytes captured.
  const std::string set = Cmd({"SET", kCardKey, value});
  recs.push_back(Rq(set.substr(0, 256), T(tick++), set.size() - 256));
  recs.push_back(Rs(Simple("OK"), T(tick++)));
  recs.push_back(Rq(Cmd({"GET", kCardKey}), T(tick++)));
  // The reply read 4 KB at a time, 128 bytes of each read captured.
  for (Rec& r : Reads(Direction::kResponse, Bulk(value), 4096, 128, &tick))
    recs.push_back(std::move(r));
  const uint64_t get_done = T(tick - 1);
  // A reply whose CRLF is all that is left uncaptured, then one ending exactly at a read.
  recs.push_back(Rq(Cmd({"HGET", "h", "f"}) + Cmd({"PING"}), T(tick++)));
  const std::string hget = Bulk(std::string(300, 'h'));
  recs.push_back(Rs(hget.substr(0, hget.size() - 2), T(tick++), 2));
  recs.push_back(Rs(Simple("PONG"), T(tick++)));
  const Result r = RunAll(recs);
  EXPECT_EQ(Names(r), (Strings{"SET", "GET", "HGET", "PING"}));
  ASSERT_EQ(r.ops.size(), 4u);
  EXPECT_EQ(r.ops[0].query_text, "SET ? ?");
  EXPECT_EQ(r.ops[1].response_ts, get_done);
  EXPECT_TRUE(r.ops[3].has_response);
  EXPECT_EQ(r.stats.gaps, 0u);
  EXPECT_EQ(r.stats.lost_responses, 0u);
}

TEST(RedisLarge, UncapturedHeaderLosesFramingThenResyncs) {
  // Sixteen 1 KB SETs in one write, 512 bytes captured: the second command's header is lost.
  std::string batch;
  for (int i = 0; i < 16; ++i)
    batch += Cmd({"SET", "k" + std::to_string(i), std::string(1000, 'x')});
  std::string oks;
  for (int i = 0; i < 16; ++i) oks += Simple("OK");
  const Result r = RunAll({
      Rq(Cmd({"GET", "a"}), T(1)),
      Rq(batch.substr(0, 512), T(2), batch.size() - 512),
      Rs(Bulk("1") + oks, T(3)),  // replies to lost commands: dropped
      Atomic(Rq(Cmd({"GET", "b"}), T(4))),
      Atomic(Rs(Bulk("2"), T(5))),
  });
  EXPECT_EQ(Names(r), (Strings{"GET", "SET", "GET"}));
  ASSERT_EQ(r.ops.size(), 3u);
  EXPECT_FALSE(r.ops[0].has_response);
  EXPECT_FALSE(r.ops[1].has_response);  // completed inside the uncaptured bytes
  EXPECT_TRUE(r.ops[2].has_response);
  EXPECT_EQ(r.ops[2].response_ts, T(5));
  EXPECT_EQ(r.stats.gaps, 1u);
  EXPECT_EQ(r.stats.lost_responses, 2u);
  EXPECT_EQ(r.stats.orphan_responses, 0u);
}

// ---- Safety ----

TEST(RedisSafety, KeysValuesAndErrorTextsNeverCopied) {
  const Result r = RunAll({
      Rq(Cmd({kCard, kEmail}) + Cmd({kCardKey}) + Cmd({"SET", kCardKey, kEmail}), T(1)),
      Rs(Err(std::string(kCard) + " is not a command") +
             Err("ERR unknown command '" + kCardKey + "'") +
             Err("NOPERM User " + std::string(kEmail) + " has no permissions"),
         T(2)),
      Rq(Cmd({"AUTH", "default", kCard}) + Cmd({"ECHO", kEmail}), T(3)),
      Rs(Err("WRONGPASS invalid username-password pair or user is disabled.") + Bulk(kEmail), T(4)),
      Rq(Cmd({"CLIENT", kCard, "x"}) + Cmd({"JSON.SET", kEmailKey, "$", "{}"}) +
             Cmd({"JSON." + std::string(kCard), "x"}),
         T(5)),
      Rs(Err("ERR unknown subcommand") + Simple("OK") + Err("ERR unknown command"), T(6)),
  });
  EXPECT_EQ(Names(r),
            (Strings{"_OTHER", "_OTHER", "SET", "AUTH", "ECHO", "CLIENT", "JSON.SET", "_OTHER"}));
  EXPECT_EQ(Statuses(r), (Strings{"ERR", "ERR", "NOPERM", "WRONGPASS", "", "ERR", "", "ERR"}));
  EXPECT_EQ(r.ops[0].query_text, "_OTHER ?");
  EXPECT_EQ(r.ops[5].query_text, "CLIENT ? ?");
}

// ---- Garbage, bounds ----

TEST(RedisGarbage, ParseErrorsThenInvalid) {
  const std::string tls("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  const Result r = Play({Rq(Cmd({"PING"}), T(1)), Rs(Simple("PONG"), T(2)), Rq(tls, T(3)),
                         Rq(tls, T(4)), Rq(tls, T(5)), Rq(tls, T(6)), Rq(Cmd({"PING"}), T(7))},
                        {}, true);
  EXPECT_EQ(r.stats.parse_errors, 4u);
  EXPECT_TRUE(r.invalid);
  EXPECT_EQ(r.ops.size(), 1u);  // the later PING is never parsed

  // Replies that are not RESP: HTTP spoken to a Redis port.
  const Result h =
      Play({Rq("GET / HTTP/1.1\r\n", T(1)), Rs("HTTP/1.1 400 Bad Request\r\n", T(2))}, {}, true);
  EXPECT_EQ(h.stats.parse_errors, 1u);
  ASSERT_EQ(h.ops.size(), 1u);
  EXPECT_FALSE(h.ops[0].has_response);
  EXPECT_EQ(h.stats.lost_responses, 1u);

  // Malformed framing inside a command counts too.
  const Result m = Play({Rq("*2\r\n$3\r\nGET\r\n:5\r\n", T(1))}, {}, true);
  EXPECT_EQ(m.stats.parse_errors, 1u);
  EXPECT_TRUE(m.ops.empty());
}

std::string Nested(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "*1\r\n";
  return s + Int(1);
}

TEST(RedisBounds, NestingDepth) {
  const Result ok = RunAll({Rq(Cmd({"EVAL", "return x", "0"}), T(1)), Rs(Nested(32), T(2))});
  ASSERT_EQ(ok.ops.size(), 1u);
  EXPECT_TRUE(ok.ops[0].has_response);
  EXPECT_EQ(ok.stats.parse_errors, 0u);

  const Result deep = RunAll({Rq(Cmd({"EVAL", "return x", "0"}), T(1)), Rs(Nested(33), T(2))});
  ASSERT_EQ(deep.ops.size(), 1u);
  EXPECT_FALSE(deep.ops[0].has_response);
  EXPECT_EQ(deep.stats.parse_errors, 1u);
  EXPECT_EQ(deep.stats.lost_responses, 1u);
}

TEST(RedisBounds, LongHeaderLineIsAParseError) {
  Limits limits;
  limits.max_buffered_bytes = 1024;
  const Result r = Play(
      {Rq(Cmd({"GET", "k"}), T(1)), Rs("+" + std::string(2000, 'a') + "\r\n", T(2))}, limits, true);
  EXPECT_EQ(r.stats.parse_errors, 1u);
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_FALSE(r.ops[0].has_response);
}

TEST(RedisBounds, PendingOverflowKeepsLaterRepliesPaired) {
  Limits limits;
  limits.max_pending = 4;
  std::string batch, replies;
  for (int i = 0; i < 6; ++i) {
    batch += Cmd({"GET", "k" + std::to_string(i)});
    replies += Bulk(std::to_string(i));
  }
  const Result r = RunAll({Rq(batch, T(1)), Rs(replies, T(2)), Rq(Cmd({"LPOP", "str"}), T(3)),
                           Rs(Err("WRONGTYPE Operation"), T(4))},
                          limits);
  EXPECT_EQ(Names(r), (Strings{"GET", "GET", "GET", "GET", "LPOP"}));
  EXPECT_EQ(r.stats.pending_overflow, 2u);
  EXPECT_EQ(r.ops.back().status_code, "WRONGTYPE");
  EXPECT_EQ(r.ops.back().response_ts, T(4));
  EXPECT_EQ(r.stats.orphan_responses, 0u);
}

TEST(RedisBounds, PendingOverflowInsideTransaction) {
  // The EXEC itself is dropped: the commands kept still end with its reply.
  Limits limits;
  limits.max_pending = 4;
  const Result r = RunAll(
      {Rq(Cmd({"MULTI"}) + Cmd({"SET", "a", "1"}) + Cmd({"LPUSH", "a", "x"}) + Cmd({"INCR", "n"}) +
              Cmd({"INCR", "m"}) + Cmd({"EXEC"}),
          T(1)),
       Rs(Simple("OK") + Simple("QUEUED") + Simple("QUEUED") + Simple("QUEUED") + Simple("QUEUED"),
          T(2)),
       Rs(Arr({Simple("OK"), Err("WRONGTYPE Operation"), Int(1), Int(1)}), T(3)),
       Rq(Cmd({"GET", "a"}), T(4)), Rs(Bulk("1"), T(5))},
      limits);
  EXPECT_EQ(Names(r), (Strings{"MULTI", "SET", "LPUSH", "INCR", "GET"}));
  EXPECT_EQ(Statuses(r), (Strings{"", "", "WRONGTYPE", "", ""}));
  ASSERT_EQ(r.ops.size(), 5u);
  EXPECT_EQ(r.ops[3].response_ts, T(3));
  EXPECT_EQ(r.ops[4].response_ts, T(5));
  EXPECT_EQ(r.stats.pending_overflow, 2u);
}

TEST(RedisBounds, LongQueryTextStopsWhole) {
  std::vector<std::string> args(520, "m");
  std::string cmd = "*521\r\n" + Bulk("SADD");
  for (const std::string& a : args) cmd += Bulk(a);
  const Result r = RunAll({Rq(cmd, T(1)), Rs(Int(1), T(2))});
  ASSERT_EQ(r.ops.size(), 1u);
  EXPECT_LE(r.ops[0].query_text.size(), kMaxQueryText);
  EXPECT_EQ(r.ops[0].query_text.size() % 2, 0u);  // "SADD" then whole " ?"
  EXPECT_EQ(r.ops[0].query_text.substr(r.ops[0].query_text.size() - 2), " ?");
}

// ---- Connection lifecycle ----

TEST(RedisLifecycle, ClosePendingWithoutReply) {
  const Result r = RunAll({Rq(Cmd({"BLPOP", "queue", "0"}) + Cmd({"GET", "x"}), T(1))});
  ASSERT_EQ(r.ops.size(), 2u);
  for (const Operation& o : r.ops) {
    EXPECT_FALSE(o.has_response);
    EXPECT_EQ(o.response_ts, 0u);
    EXPECT_EQ(o.request_ts, T(1));
    EXPECT_EQ(o.status_code, "");
  }
  EXPECT_EQ(r.stats.lost_responses, 0u);

  // Without Close, nothing is reported.
  const Result open = Play({Rq(Cmd({"BLPOP", "queue", "0"}), T(1))}, {}, false);
  EXPECT_TRUE(open.ops.empty());
}

TEST(RedisLifecycle, MidStreamStart) {
  // The first bytes are the tail of a value whose command was not seen; its reply is an
  // orphan; the server's first bytes may be inside a reply too.
  const Result r = RunAll({
      Atomic(Rq(std::string(kEmail) + std::string(300, 'z') + "\r\n", T(1))),
      Atomic(Rs("zzzzzz\r\n+OK\r\n", T(2))),
      Atomic(Rq(Cmd({"SET", "k", "v"}), T(3))),
      Atomic(Rs(Simple("OK"), T(4))),
      Rq(Cmd({"GET", "k"}), T(5)),
      Rs(Bulk("v"), T(6)),
  });
  EXPECT_EQ(Names(r), (Strings{"SET", "GET"}));
  EXPECT_EQ(r.stats.parse_errors, 1u);
  EXPECT_EQ(r.stats.orphan_responses, 0u);  // the server's first record was not a reply start

  const Result o =
      RunAll({Atomic(Rs(Simple("OK"), T(1))), Rq(Cmd({"PING"}), T(2)), Rs(Simple("PONG"), T(3))});
  EXPECT_EQ(o.stats.orphan_responses, 1u);
  ASSERT_EQ(o.ops.size(), 1u);
  EXPECT_EQ(o.ops[0].response_ts, T(3));
}

TEST(RedisLifecycle, GapLosesPendingThenResyncs) {
  const Result r = RunAll({
      Rq(Cmd({"GET", "a"}) + Cmd({"GET", "b"}), T(1)),
      Rs(Bulk("1"), T(2)),
      GapIn(Direction::kResponse),
      Atomic(Rs("2\r\n", T(3))),  // before any new command: dropped
      Rq(Cmd({"INCR", "c"}), T(4)),
      Atomic(Rs(Int(5), T(5))),
      GapIn(Direction::kRequest),
      Atomic(Rq("$3\r\nabc\r\n", T(6))),  // not a command start: parse error, dropped
      Atomic(Rq(Cmd({"DECR", "c"}), T(7))),
      Atomic(Rs(Int(4), T(8))),
  });
  EXPECT_EQ(Names(r), (Strings{"GET", "GET", "INCR", "DECR"}));
  EXPECT_EQ(Statuses(r), (Strings{"", "", "", ""}));
  ASSERT_EQ(r.ops.size(), 4u);
  EXPECT_TRUE(r.ops[0].has_response);
  EXPECT_FALSE(r.ops[1].has_response);
  EXPECT_EQ(r.ops[2].response_ts, T(5));
  EXPECT_EQ(r.ops[3].response_ts, T(8));
  EXPECT_EQ(r.stats.gaps, 2u);
  EXPECT_EQ(r.stats.lost_responses, 1u);
  EXPECT_EQ(r.stats.parse_errors, 1u);
}

TEST(RedisLifecycle, ClientReplyOffAndSkip) {
  const Result r = RunAll({
      Rq(Cmd({"CLIENT", "REPLY", "OFF"}) + Cmd({"SET", "a", "1"}) + Cmd({"SET", "b", "2"}) +
             Cmd({"CLIENT", "REPLY", "ON"}),
         T(1)),
      Rs(Simple("OK"), T(2)),
      Rq(Cmd({"CLIENT", "REPLY", "SKIP"}) + Cmd({"INCR", "n"}) + Cmd({"GET", "a"}), T(3)),
      Rs(Bulk("1"), T(4)),
  });
  EXPECT_EQ(Names(r),
            (Strings{"CLIENT REPLY", "SET", "SET", "CLIENT REPLY", "CLIENT REPLY", "INCR", "GET"}));
  ASSERT_EQ(r.ops.size(), 7u);
  for (size_t i : {0u, 1u, 2u, 4u, 5u}) EXPECT_FALSE(r.ops[i].has_response) << i;
  EXPECT_EQ(r.ops[3].response_ts, T(2));
  EXPECT_EQ(r.ops[6].response_ts, T(4));
  EXPECT_EQ(r.counters.unanswered, 5u);
  EXPECT_EQ(r.stats.lost_responses, 0u);
}

TEST(RedisLifecycle, MonitorLinesAreNotReplies) {
  const Result r = RunAll({
      Rq(Cmd({"MONITOR"}), T(1)),
      Rs(Simple("OK") +
             Simple("1700000000.123456 [0 127.0.0.1:50000] \"SET\" \"" + kCardKey + "\""),
         T(2)),
      Rs(Simple("1700000000.223456 [0 127.0.0.1:50000] \"GET\" \"k\""), T(3)),
      Rq(Cmd({"RESET"}), T(4)),
      Rs(Simple("RESET"), T(5)),
  });
  EXPECT_EQ(Names(r), (Strings{"MONITOR", "RESET"}));
  EXPECT_EQ(r.counters.pushes, 2u);
  EXPECT_EQ(r.ops[1].response_ts, T(5));
}

TEST(RedisStartDetection, CommandAndReplyStarts) {
  EXPECT_TRUE(LooksLikeRedisCommandStart("*1\r\n$4\r\nPING\r\n"));
  EXPECT_TRUE(LooksLikeRedisCommandStart("PING\r\n"));
  EXPECT_TRUE(LooksLikeRedisCommandStart("get k\n"));
  EXPECT_TRUE(LooksLikeRedisCommandStart("JSON.GET k\r\n"));
  EXPECT_FALSE(LooksLikeRedisCommandStart("*3\r\n"));  // not decided yet
  EXPECT_FALSE(LooksLikeRedisCommandStart("*0\r\n$1"));
  EXPECT_FALSE(LooksLikeRedisCommandStart("$3\r\nabc\r\n"));
  EXPECT_FALSE(LooksLikeRedisCommandStart("hello-world foo\r\n"));
  EXPECT_FALSE(LooksLikeRedisCommandStart(std::string(kCard) + "\r\n"));
  EXPECT_TRUE(LooksLikeRedisReplyStart("+OK\r\n"));
  EXPECT_TRUE(LooksLikeRedisReplyStart("$-1\r\n"));
  EXPECT_TRUE(LooksLikeRedisReplyStart("%7\r\n$6\r\n"));
  EXPECT_TRUE(LooksLikeRedisReplyStart("-WRONGTYPE x\r\n"));
  EXPECT_TRUE(LooksLikeRedisReplyStart("_\r\n"));
  EXPECT_FALSE(LooksLikeRedisReplyStart("HTTP/1.1 200 OK\r\n"));
  EXPECT_FALSE(LooksLikeRedisReplyStart("$abc\r\n"));
  EXPECT_FALSE(LooksLikeRedisReplyStart(":12x\r\n"));
  EXPECT_FALSE(LooksLikeRedisReplyStart("-\r\n"));
  EXPECT_FALSE(LooksLikeRedisReplyStart("+OK\r+"));
}

}  // namespace
}  // namespace redtap::db

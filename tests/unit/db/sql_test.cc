// SPDX-License-Identifier: Apache-2.0
// sql::Summarize: operation, table and sanitised text of PostgreSQL and MySQL statements, and
// the promise that no literal ever survives into any field.
#include "parsers/db/sql.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/db/types.h"

namespace redtap::db::sql {
namespace {

constexpr Dialect kPg = Dialect::kPostgresql;
constexpr Dialect kMy = Dialect::kMysql;

struct Case {
  const char* sql;
  Dialect dialect;
  const char* operation;
  const char* collection;
  const char* text;  // nullptr: not checked
};

void ExpectCase(const Case& c) {
  SCOPED_TRACE(c.sql);
  const Summary s = Summarize(c.sql, c.dialect);
  EXPECT_EQ(s.operation, c.operation);
  EXPECT_EQ(s.collection, c.collection);
  if (c.text != nullptr) {
    EXPECT_EQ(s.text, c.text);
  }
  const std::string summary =
      s.collection.empty() || s.operation.empty() ? s.operation : s.operation + " " + s.collection;
  EXPECT_EQ(s.summary, summary);
}

// Every field of the summary, for "this value must not appear anywhere" checks.
std::string AllFields(const Summary& s) {
  return s.operation + "|" + s.collection + "|" + s.text + "|" + s.summary;
}

void ExpectAbsent(std::string_view sql, Dialect d, const std::vector<std::string>& secrets) {
  const Summary s = Summarize(sql, d);
  const std::string all = AllFields(s);
  for (const std::string& secret : secrets)
    EXPECT_EQ(all.find(secret), std::string::npos)
        << "'" << secret << "' leaked from: " << sql << "\n  into: " << all;
}

TEST(SqlSummary, Pgbench) {
  const Case cases[] = {
      {"UPDATE pgbench_accounts SET abalance = abalance + 4 WHERE aid = 5;", kPg, "UPDATE",
       "pgbench_accounts", "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?;"},
      {"SELECT abalance FROM pgbench_accounts WHERE aid = 12;", kPg, "SELECT", "pgbench_accounts",
       "SELECT abalance FROM pgbench_accounts WHERE aid = ?;"},
      {"UPDATE pgbench_tellers SET tbalance = tbalance + -4123 WHERE tid = 7;", kPg, "UPDATE",
       "pgbench_tellers", "UPDATE pgbench_tellers SET tbalance = tbalance + -? WHERE tid = ?;"},
      {"UPDATE pgbench_branches SET bbalance = bbalance + 4 WHERE bid = 1;", kPg, "UPDATE",
       "pgbench_branches", "UPDATE pgbench_branches SET bbalance = bbalance + ? WHERE bid = ?;"},
      {"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, "
       "CURRENT_TIMESTAMP);",
       kPg, "INSERT", "pgbench_history",
       "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?, "
       "CURRENT_TIMESTAMP);"},
      {"BEGIN;", kPg, "BEGIN", "", "BEGIN;"},
      {"END;", kPg, "COMMIT", "", "END;"},
      // -M extended / prepared: the same with placeholders, kept as written.
      {"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;", kPg, "UPDATE",
       "pgbench_accounts", "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"},
      {"SELECT abalance FROM pgbench_accounts WHERE aid = $1", kPg, "SELECT", "pgbench_accounts",
       "SELECT abalance FROM pgbench_accounts WHERE aid = $1"},
      {"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, "
       "CURRENT_TIMESTAMP);",
       kPg, "INSERT", "pgbench_history",
       "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, "
       "CURRENT_TIMESTAMP);"},
      {"select abalance from pgbench_accounts where aid = 12", kPg, "SELECT", "pgbench_accounts",
       "SELECT abalance FROM pgbench_accounts WHERE aid = ?"},
  };
  for (const Case& c : cases) ExpectCase(c);
}

TEST(SqlSummary, Mysqlslap) {
  const Case cases[] = {
      {"CREATE TABLE `t1` (id serial,intcol1 INT(32) ,charcol1 VARCHAR(128))", kMy, "CREATE", "t1",
       "CREATE TABLE `t1` (id serial,intcol1 INT(?) ,charcol1 VARCHAR(?))"},
      {"INSERT INTO t1 VALUES (NULL,1804289383,'mxvtvmC9127qJNm06sGB8R92q2j7vTiiITRDGXM9ZLzkdekbWtm"
       "XKwZ2qG1llkRw5m9DHOFilEREk3q7oce8O3BEJC0woJsm6uzFAEynLH2xCsw1KQ1lT4zg9rdxBL')",
       kMy, "INSERT", "t1", "INSERT INTO t1 VALUES (NULL,?,?)"},
      {"SELECT intcol1,charcol1 FROM t1 WHERE id = '42'", kMy, "SELECT", "t1",
       "SELECT intcol1,charcol1 FROM t1 WHERE id = ?"},
      {"DROP SCHEMA IF EXISTS `mysqlslap`", kMy, "DROP", "", "DROP SCHEMA IF EXISTS `mysqlslap`"},
      {"CREATE SCHEMA `mysqlslap`", kMy, "CREATE", "", nullptr},
      {"use mysqlslap", kMy, "USE", "", "USE mysqlslap"},
      {"DROP TABLE IF EXISTS `mysqlslap`.`t1`", kMy, "DROP", "mysqlslap.t1", nullptr},
      {"SELECT * FROM `my db`.`odd``name`", kMy, "SELECT", "my db.odd`name", nullptr},
      {"INSERT IGNORE INTO orders (a) VALUES (1)", kMy, "INSERT", "orders", nullptr},
      {"INSERT orders VALUES (1)", kMy, "INSERT", "orders", nullptr},
      {"REPLACE INTO orders SET a = 1", kMy, "REPLACE", "orders", "REPLACE INTO orders SET a = ?"},
      {"UPDATE LOW_PRIORITY IGNORE orders SET a = 1", kMy, "UPDATE", "orders", nullptr},
      {"DELETE LOW_PRIORITY QUICK FROM orders WHERE id = 3", kMy, "DELETE", "orders", nullptr},
      {"INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)", kMy, "INSERT", "t",
       nullptr},
      {"SELECT a FROM t1 LIMIT 10, 20", kMy, "SELECT", "t1", "SELECT a FROM t1 LIMIT ?, ?"},
      {"SELECT a INTO @x FROM t1", kMy, "SELECT", "t1", "SELECT a INTO @x FROM t1"},
      {"SELECT 1 FROM DUAL", kMy, "SELECT", "", "SELECT ? FROM DUAL"},
      {"LOAD DATA INFILE '/tmp/x.csv' INTO TABLE t", kMy, "LOAD", "t",
       "LOAD DATA INFILE ? INTO TABLE t"},
      {"SET NAMES utf8mb4", kMy, "SET", "", "SET NAMES utf8mb4"},
      {"SHOW WARNINGS", kMy, "SHOW", "", "SHOW WARNINGS"},
      {"START TRANSACTION", kMy, "BEGIN", "", "START TRANSACTION"},
      {"START SLAVE", kMy, "START", "", nullptr},
      {"COMMIT", kMy, "COMMIT", "", "COMMIT"},
      {"ROLLBACK", kMy, "ROLLBACK", "", "ROLLBACK"},
      {"SELECT * FROM t1 FORCE INDEX (i) WHERE a = 1", kMy, "SELECT", "t1", nullptr},
      {"UPDATE t1, t2 SET t1.a = t2.a", kMy, "UPDATE", "", nullptr},
      {"DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", kMy, "DELETE", "", nullptr},
      {"CALL do_things(1, 'x')", kMy, "CALL", "", "CALL do_things(?, ?)"},
  };
  for (const Case& c : cases) ExpectCase(c);
}

TEST(SqlSummary, Operations) {
  const Case cases[] = {
      {"  \n\t  SELECT 1", kPg, "SELECT", "", "SELECT ?"},
      {"((SELECT a FROM t) UNION (SELECT a FROM t))", kPg, "SELECT", "t", nullptr},
      {"(SELECT a FROM t) UNION ALL (SELECT a FROM u)", kPg, "SELECT", "", nullptr},
      {"/* app=web */ -- hi\n SELECT 1", kPg, "SELECT", "", "SELECT ?"},
      {";; SELECT 1", kPg, "SELECT", "", nullptr},
      {"BEGIN; SELECT * FROM t", kPg, "BEGIN", "", "BEGIN; SELECT * FROM t"},
      {"begin isolation level serializable", kPg, "BEGIN", "", nullptr},
      {"START TRANSACTION READ ONLY", kPg, "BEGIN", "", nullptr},
      {"ABORT", kPg, "ROLLBACK", "", "ABORT"},
      {"ROLLBACK TO SAVEPOINT s1", kPg, "ROLLBACK", "", nullptr},
      {"SAVEPOINT s1", kPg, "SAVEPOINT", "", nullptr},
      {"RELEASE SAVEPOINT s1", kPg, "RELEASE", "", nullptr},
      {"SET search_path TO public", kPg, "SET", "", nullptr},
      {"SET application_name = 'psql'", kPg, "SET", "", "SET application_name = ?"},
      {"SHOW server_version", kPg, "SHOW", "", nullptr},
      {"EXPLAIN ANALYZE SELECT * FROM t", kPg, "EXPLAIN", "t", nullptr},
      {"PREPARE p (int) AS SELECT * FROM t WHERE id = $1", kPg, "PREPARE", "t", nullptr},
      {"EXECUTE p (5)", kPg, "EXECUTE", "", "EXECUTE p (?)"},
      {"DEALLOCATE p", kPg, "DEALLOCATE", "", nullptr},
      {"VACUUM ANALYZE t", kPg, "VACUUM", "", nullptr},
      {"ANALYSE t", kPg, "ANALYZE", "", nullptr},
      {"LISTEN chan", kPg, "LISTEN", "", nullptr},
      {"NOTIFY chan, 'payload 4111111111111111'", kPg, "NOTIFY", "", "NOTIFY chan, ?"},
      {"GRANT SELECT ON TABLE t TO bob", kPg, "GRANT", "t", nullptr},
      {"REVOKE SELECT ON TABLE t FROM bob", kPg, "REVOKE", "t", nullptr},
      {"DO $$BEGIN RAISE NOTICE 'x'; END$$", kPg, "DO", "", "DO ?"},
      {"CALL p(1)", kPg, "CALL", "", nullptr},
      {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a", kPg, "MERGE", "",
       nullptr},
      {"MERGE INTO t USING t AS s ON t.id = s.id WHEN MATCHED THEN DELETE", kPg, "MERGE", "t",
       nullptr},
      {"MERGE INTO t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE", kPg,
       "MERGE", "", nullptr},
      {"VALUES (1, 2)", kPg, "VALUES", "", "VALUES (?, ?)"},
      {"TABLE orders", kPg, "TABLE", "orders", nullptr},
      {"CREATE TABLE IF NOT EXISTS public.orders (id int)", kPg, "CREATE", "public.orders",
       nullptr},
      {"CREATE TEMP TABLE t AS SELECT * FROM u", kPg, "CREATE", "", nullptr},
      {"CREATE INDEX i ON t (a)", kPg, "CREATE", "", nullptr},
      {"DROP TABLE IF EXISTS a, b", kPg, "DROP", "", nullptr},
      {"DROP TABLE IF EXISTS a CASCADE", kPg, "DROP", "a", nullptr},
      {"ALTER TABLE ONLY orders ADD COLUMN x int DEFAULT 0", kPg, "ALTER", "orders",
       "ALTER TABLE ONLY orders ADD COLUMN x INT DEFAULT ?"},
      {"TRUNCATE orders", kPg, "TRUNCATE", "orders", nullptr},
      {"TRUNCATE TABLE ONLY orders RESTART IDENTITY", kPg, "TRUNCATE", "orders", nullptr},
      {"TRUNCATE a, b", kPg, "TRUNCATE", "", nullptr},
      {"LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", kPg, "LOCK", "orders", nullptr},
  };
  for (const Case& c : cases) ExpectCase(c);
}

TEST(SqlSummary, Collections) {
  const Case cases[] = {
      {"SELECT * FROM public.orders o WHERE o.id = 1", kPg, "SELECT", "public.orders", nullptr},
      {"SELECT * FROM \"Order Items\"", kPg, "SELECT", "Order Items",
       "SELECT * FROM \"Order Items\""},
      {"SELECT * FROM \"a\"\"b\".c", kPg, "SELECT", "a\"b.c", nullptr},
      {"SELECT * FROM public . orders", kPg, "SELECT", "public.orders", nullptr},
      {"SELECT * FROM ONLY orders", kPg, "SELECT", "orders", nullptr},
      {"SELECT * FROM transaction", kPg, "SELECT", "transaction", nullptr},
      // joins: every form; one distinct table (self join) is still that table
      {"SELECT * FROM a JOIN b ON a.id = b.id", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a INNER JOIN b USING (id)", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a LEFT OUTER JOIN b ON true", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a RIGHT JOIN b ON true", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a FULL JOIN b ON true", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a CROSS JOIN b", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a NATURAL JOIN b", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a STRAIGHT_JOIN b", kMy, "SELECT", "", nullptr},
      {"SELECT STRAIGHT_JOIN x FROM a", kMy, "SELECT", "a", nullptr},
      {"SELECT * FROM emp e JOIN emp m ON e.mgr = m.id", kPg, "SELECT", "emp", nullptr},
      {"SELECT * FROM a, b WHERE a.id = b.id", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a AS x, b AS y", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a x(c1, c2), b", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM a AS x(c1, c2) WHERE c1 = 1", kPg, "SELECT", "a", nullptr},
      // subqueries and functions in table positions
      {"SELECT * FROM (SELECT * FROM t) s", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM generate_series(1, 10) g", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM t, LATERAL (SELECT 1) x", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM t JOIN LATERAL f(t.a) ON true", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM (a JOIN b ON true)", kPg, "SELECT", "", nullptr},
      // subqueries elsewhere: their tables count like any other
      {"SELECT * FROM t WHERE id IN (SELECT id FROM u)", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM t WHERE v > (SELECT avg(v) FROM t)", kPg, "SELECT", "t", nullptr},
      // FROM that is not a table position
      {"SELECT EXTRACT(EPOCH FROM created) FROM t", kPg, "SELECT", "t", nullptr},
      {"SELECT substring(name FROM 2 FOR 3) FROM t", kPg, "SELECT", "t", nullptr},
      {"SELECT * FROM t WHERE a IS DISTINCT FROM b", kPg, "SELECT", "t", nullptr},
      {"SELECT 1", kPg, "SELECT", "", nullptr},
      {"SELECT now()", kPg, "SELECT", "", nullptr},
      // UPDATE / DELETE with extra tables
      {"UPDATE t SET a = u.a FROM u WHERE t.id = u.id", kPg, "UPDATE", "", nullptr},
      {"UPDATE ONLY t AS x SET a = 1", kPg, "UPDATE", "t", nullptr},
      {"DELETE FROM t USING u WHERE t.id = u.id", kPg, "DELETE", "", nullptr},
      {"DELETE FROM t WHERE id = 1 RETURNING id", kPg, "DELETE", "t", nullptr},
      {"INSERT INTO t SELECT * FROM u", kPg, "INSERT", "", nullptr},
      {"INSERT INTO t AS x (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2", kPg, "INSERT", "t",
       nullptr},
      {"INSERT INTO t DEFAULT VALUES", kPg, "INSERT", "t", nullptr},
      {"SELECT * INTO newt FROM t", kPg, "SELECT", "", nullptr},
      // names we refuse
      {"SELECT * FROM ünïcode", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM \"\"", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM s.*", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM U&\"d\\0061t\\+000061\"", kPg, "SELECT", "", nullptr},
      {"SELECT * FROM 2024_orders", kMy, "SELECT", "", "SELECT * FROM ?"},
      {"select * from Orders join ORDERS o2 on true", kPg, "SELECT", "Orders", nullptr},
  };
  for (const Case& c : cases) ExpectCase(c);
}

TEST(SqlSummary, NameLengthBound) {
  const std::string n64(kMaxNameBytes, 'a');
  const std::string n65(kMaxNameBytes + 1, 'a');
  EXPECT_EQ(Summarize("SELECT * FROM " + n64, kPg).collection, n64);
  EXPECT_EQ(Summarize("SELECT * FROM " + n65, kPg).collection, "");
  EXPECT_EQ(Summarize("SELECT * FROM s." + n64, kPg).collection, "");
  const Summary s = Summarize("SELECT * FROM " + n64, kPg);
  EXPECT_EQ(s.summary, "SELECT " + n64);
  EXPECT_LE(s.summary.size(), kMaxSummary);
}

TEST(SqlSummary, Ctes) {
  const Case cases[] = {
      {"WITH a AS (SELECT * FROM t) SELECT * FROM a", kPg, "SELECT", "t",
       "WITH a AS (SELECT * FROM t) SELECT * FROM a"},
      {"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
       "SELECT n FROM r",
       kPg, "SELECT", "", nullptr},
      {"WITH a AS (SELECT * FROM t), b AS (SELECT * FROM u) SELECT * FROM a JOIN b ON true", kPg,
       "SELECT", "", nullptr},
      {"WITH a AS (SELECT * FROM t), b AS (SELECT * FROM t) SELECT * FROM a JOIN b ON true", kPg,
       "SELECT", "t", nullptr},
      {"WITH moved AS (DELETE FROM t WHERE a = 1 RETURNING *) INSERT INTO t SELECT * FROM moved",
       kPg, "INSERT", "t", nullptr},
      {"WITH a AS MATERIALIZED (SELECT 1) UPDATE t SET x = (SELECT * FROM a)", kPg, "UPDATE", "t",
       nullptr},
      {"WITH a AS (SELECT * FROM t) DELETE FROM u WHERE id IN (SELECT id FROM a)", kPg, "DELETE",
       "", nullptr},
      {"WITH \"Q\" AS (SELECT * FROM t) SELECT * FROM \"Q\"", kPg, "SELECT", "t", nullptr},
      {"SELECT * FROM t WHERE id IN (WITH a AS (SELECT 1) SELECT * FROM a)", kPg, "SELECT", "",
       nullptr},
      // cut short (capture limit): the main statement was never seen
      {"WITH a AS (SELECT * FROM t WHERE x = 'abc", kPg, "WITH", "",
       "WITH a AS (SELECT * FROM t WHERE x = ?"},
      {"WITH a AS (SELECT 1) SELECT * FROM t", kMy, "SELECT", "t", nullptr},
  };
  for (const Case& c : cases) ExpectCase(c);
}

TEST(SqlSummary, Copy) {
  const Case cases[] = {
      {"COPY orders FROM STDIN", kPg, "COPY", "orders", "COPY orders FROM STDIN"},
      {"COPY public.orders (id, total) FROM STDIN WITH (FORMAT csv)", kPg, "COPY", "public.orders",
       nullptr},
      {"COPY orders TO STDOUT WITH CSV HEADER", kPg, "COPY", "orders", nullptr},
      {"COPY orders FROM '/srv/secret.csv'", kPg, "COPY", "orders", "COPY orders FROM ?"},
      {"COPY (SELECT * FROM orders) TO STDOUT", kPg, "COPY", "", nullptr},
  };
  for (const Case& c : cases) ExpectCase(c);
}

// Every literal kind becomes '?'; what surrounds it is kept.
TEST(SqlSummary, LiteralsPostgres) {
  const Case cases[] = {
      {"SELECT 'O''Reilly'", kPg, "SELECT", "", "SELECT ?"},
      {"SELECT 'a\\', b", kPg, "SELECT", "", "SELECT ?, b"},  // standard strings: \ is plain
      // ... except before a word: a client escaping for standard_conforming_strings=off
      {"SELECT 'O\\'Reilly', 'it\\'s' FROM t", kPg, "SELECT", "t", "SELECT ?, ? FROM t"},
      {"SELECT E'it\\'s', b", kPg, "SELECT", "", "SELECT ?, b"},
      {"SELECT e'\\\\', b", kPg, "SELECT", "", "SELECT ?, b"},
      {"SELECT E'a''b\\nc'", kPg, "SELECT", "", "SELECT ?"},
      {"SELECT U&'d\\0061t\\+000061' UESCAPE '!'", kPg, "SELECT", "", "SELECT ? UESCAPE ?"},
      {"SELECT $$it's$$, $tag$ $$ ' \" $tag$, $a$x$b$y$a$", kPg, "SELECT", "", "SELECT ?, ?, ?"},
      {"SELECT B'1010', X'1F', N'nat'", kPg, "SELECT", "", "SELECT ?, ?, ?"},
      {"SELECT 1, 1.5, .5, 1., 1e5, 1.5E-3, 2e+10, 0x1F, 0b101, 0o17, 1_000_000", kPg, "SELECT", "",
       "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"},
      {"SELECT -5, - 5, a-5, t1, x2y", kPg, "SELECT", "", "SELECT -?, - ?, a-?, t1, x2y"},
      {"SELECT TRUE, false, NULL", kPg, "SELECT", "", "SELECT TRUE, FALSE, NULL"},
      {"SELECT '2024-01-01'::date, DATE '2024-01-01', INTERVAL '1 day'", kPg, "SELECT", "",
       "SELECT ?::date, DATE ?, INTERVAL ?"},
      {"SELECT a[1:2], b::text, :name, $1, ?", kPg, "SELECT", "",
       "SELECT a[?:?], b::text, :name, $1, ?"},
      {"SELECT \"col\" FROM t WHERE \"x\"\"y\" = 'v'", kPg, "SELECT", "t",
       "SELECT \"col\" FROM t WHERE \"x\"\"y\" = ?"},
      {"SELECT a$b, $1x FROM t", kPg, "SELECT", "t", "SELECT a$b, $1x FROM t"},
      {"SELECT `x` FROM t", kPg, "SELECT", "t", "SELECT `x` FROM t"},
      {"SELECT 1 /* a /* nested */ still comment */ + 2", kPg, "SELECT", "", "SELECT ? + ?"},
      {"SELECT 1 -- trailing 'comment'\n, 2", kPg, "SELECT", "", "SELECT ? , ?"},
      {"SELECT a#b FROM t", kPg, "SELECT", "t", "SELECT a#b FROM t"},
      {"SELECT t.key, t.order FROM t", kPg, "SELECT", "t", "SELECT t.key, t.order FROM t"},
  };
  for (const Case& c : cases) ExpectCase(c);
}

TEST(SqlSummary, LiteralsMysql) {
  const Case cases[] = {
      {"SELECT 'O''Reilly', 'it\\'s', b", kMy, "SELECT", "", "SELECT ?, ?, b"},
      {"SELECT \"double \\\" quoted\", b", kMy, "SELECT", "", "SELECT ?, b"},
      {"SELECT \"a\"\"b\", b", kMy, "SELECT", "", "SELECT ?, b"},
      {"SELECT X'1F', x'ab', B'01', b'1', 0x1F, 0b01, N'nat'", kMy, "SELECT", "",
       "SELECT ?, ?, ?, ?, ?, ?, ?"},
      {"SELECT _utf8mb4'abc' COLLATE utf8mb4_bin", kMy, "SELECT", "",
       "SELECT _utf8mb4? COLLATE utf8mb4_bin"},
      {"SELECT `select`, `a``b` FROM `t`", kMy, "SELECT", "t", "SELECT `select`, `a``b` FROM `t`"},
      {"SELECT 1 # comment 'x'\n, 2", kMy, "SELECT", "", "SELECT ? , ?"},
      {"SELECT 1 -- comment\n, 2", kMy, "SELECT", "", "SELECT ? , ?"},
      {"SELECT 5--3", kMy, "SELECT", "", "SELECT ?--?"},
      {"SELECT 1 /* plain */, 2 /*+ hint */", kMy, "SELECT", "", "SELECT ? , ?"},
      {"/*!40101 SET NAMES utf8 */", kMy, "SET", "", "SET NAMES utf8"},
      {"SELECT /*!50000 SQL_NO_CACHE */ a FROM t", kMy, "SELECT", "t",
       "SELECT SQL_NO_CACHE a FROM t"},
      {"/*M!100100 SET x = 1 */", kMy, "SET", "", "SET x = ?"},
      {"SELECT $a, a$ FROM t", kMy, "SELECT", "t", "SELECT $a, a$ FROM t"},
      {"SELECT @x := 1, @@session.sql_mode", kMy, "SELECT", "",
       "SELECT @x := ?, @@session.sql_mode"},
      {"SELECT * FROM t WHERE a = ? AND b = ?", kMy, "SELECT", "t",
       "SELECT * FROM t WHERE a = ? AND b = ?"},
  };
  for (const Case& c : cases) ExpectCase(c);
}

TEST(SqlSummary, InListCollapse) {
  const Case cases[] = {
      {"SELECT * FROM t WHERE id IN (1, 2, 3)", kPg, "SELECT", "t",
       "SELECT * FROM t WHERE id IN (?)"},
      {"SELECT * FROM t WHERE id NOT IN ('a','b')", kPg, "SELECT", "t",
       "SELECT * FROM t WHERE id NOT IN (?)"},
      {"SELECT * FROM t WHERE id IN (1)", kPg, "SELECT", "t", "SELECT * FROM t WHERE id IN (?)"},
      {"SELECT * FROM t WHERE id IN (1, 2, x)", kPg, "SELECT", "t",
       "SELECT * FROM t WHERE id IN (?, ?, x)"},
      {"SELECT * FROM t WHERE id IN (1, 2 + 3)", kPg, "SELECT", "t",
       "SELECT * FROM t WHERE id IN (?, ? + ?)"},
      {"SELECT * FROM t WHERE id IN ($1, $2)", kPg, "SELECT", "t",
       "SELECT * FROM t WHERE id IN ($1, $2)"},
      {"SELECT * FROM t WHERE id IN (SELECT 1)", kPg, "SELECT", "t",
       "SELECT * FROM t WHERE id IN (SELECT ?)"},
      {"SELECT * FROM t WHERE id IN (1, 2", kPg, "SELECT", "t", "SELECT * FROM t WHERE id IN (?"},
  };
  for (const Case& c : cases) ExpectCase(c);
}

// The values below must never reach any field, whatever wraps them.
TEST(SqlSummary, NoPiiSurvives) {
  const std::vector<std::string> secrets = {"4111",   "1111",   "john.doe", "example.com",
                                            "Reilly", "s3cr3t", "hunter2"};
  const char* pg[] = {
      "SELECT * FROM users WHERE card = 4111111111111111",
      "SELECT * FROM users WHERE card = '4111 1111 1111 1111' AND email = 'john.doe@example.com'",
      "SELECT * FROM users WHERE card = '4111-1111-1111-1111'",
      "INSERT INTO users (name, email) VALUES ('O''Reilly', 'john.doe@example.com')",
      "UPDATE users SET pw = E'hunter2\\'s3cr3t' WHERE card = E'\\'4111111111111111'",
      "UPDATE users SET pw = E'\\\\' || 'hunter2' WHERE id = 1",
      "SELECT $$john.doe@example.com ' \" 4111111111111111$$",
      "SELECT $q$ it's $$ 'john.doe@example.com' $q$, 4111111111111111",
      "SELECT * FROM t WHERE card = 4111111111111111.0e1",
      "SELECT * FROM t WHERE card = 4111111111111111e5",
      "SELECT * FROM t WHERE x = U&'\\0034111111111111111' AND y = X'41111111'",
      "SELECT * FROM t WHERE b = B'1111' AND n = N'john.doe@example.com'",
      "SELECT * FROM t WHERE email = 'john.doe@example.com",    // unterminated: rest dropped
      "SELECT * FROM t WHERE email = $x$john.doe@example.com",  // unterminated dollar quote
      "SELECT * FROM t WHERE e = \"john.doe@example.com",       // unterminated identifier
      "SELECT 'a' 'john.doe@example.com' /* 4111111111111111 */ -- hunter2",
      "SELECT 1 /* unterminated 4111111111111111",
      "SELECT * FROM t WHERE id IN (4111111111111111, 'john.doe@example.com', 'hunter2')",
      "SELECT * FROM t WHERE id IN (1, 'hunter2', x, 'john.doe@example.com')",
      "SELECT $abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdef$ hunter2",
      "SELECT * FROM users WHERE card = -4111111111111111",
      "SELECT * FROM users WHERE card = .4111111111111111",
      "INSERT INTO users (name) VALUES ('O\\'Reilly')",  // standard_conforming_strings=off
  };
  for (const char* sql : pg) ExpectAbsent(sql, kPg, secrets);
  const char* my[] = {
      "SELECT * FROM users WHERE card = 4111111111111111",
      "SELECT * FROM users WHERE email = \"john.doe@example.com\" AND card = '4111 1111 1111 1111'",
      "INSERT INTO users VALUES ('O\\'Reilly', 'O''Reilly', \"hunter2\\\"s3cr3t\")",
      "UPDATE users SET pw = 'hunter2\\\\' WHERE card = 0x4111111111111111",
      "SELECT * FROM t WHERE x = X'4111111111111111' OR y = b'1111' OR z = _latin1'hunter2'",
      "SELECT * FROM t WHERE a = 'john.doe@example.com",
      "SELECT * FROM t WHERE a = \"john.doe@example.com",
      "SELECT * FROM t WHERE a = `john.doe@example.com",
      "SELECT 1 # 4111111111111111 hunter2\n",
      "SELECT /*!50000 'hunter2' */ 1",
      "SELECT 1 /* john.doe@example.com */",
      "SELECT 4111111111111111abc",
  };
  for (const char* sql : my) ExpectAbsent(sql, kMy, secrets);
}

TEST(SqlSummary, DigitRunsInNamesAreNeverShown) {
  // Found by fuzz_db: an identifier is schema, but one holding a card-length digit run is
  // more likely a value glued to a word.
  for (const auto d : {Dialect::kPostgresql, Dialect::kMysql}) {
    for (const char* sql :
         {"SELECT a FR1111111111112", "SELECT x4111111111111111 FROM t",
          "SELECT * FROM t4111111111111111", "SELECT \"4111111111111111\" FROM t",
          "SELECT `c4111111111111111` FROM t", "SELECT a FROM t WHERE b = $4111111111111111",
          "SELECT a FROM t WHERE b = :x4111111111111111"}) {
      const Summary s = Summarize(sql, d);
      for (const std::string* f : {&s.text, &s.collection, &s.summary, &s.operation}) {
        EXPECT_EQ(f->find("1111111111111"), std::string::npos) << sql << " -> " << *f;
      }
    }
  }
  // Shorter digit runs in names stay: they are ordinary schema names.
  EXPECT_EQ(Summarize("SELECT * FROM orders_2024", Dialect::kPostgresql).collection, "orders_2024");
}

TEST(SqlSummary, UnterminatedLiteralEndsText) {
  const Case cases[] = {
      {"SELECT a FROM t WHERE b = 'x; DROP TABLE u; --", kPg, "SELECT", "t",
       "SELECT a FROM t WHERE b = ?"},
      {"SELECT a FROM t WHERE b = E'x\\'; SELECT 2", kPg, "SELECT", "t",
       "SELECT a FROM t WHERE b = ?"},
      {"SELECT a FROM t WHERE b = 'x\\'; SELECT 2", kMy, "SELECT", "t",
       "SELECT a FROM t WHERE b = ?"},
      {"SELECT a FROM t WHERE b = $$x; SELECT 2", kPg, "SELECT", "t",
       "SELECT a FROM t WHERE b = ?"},
      {"SELECT \"a FROM t", kPg, "SELECT", "", "SELECT ?"},
      {"SELECT 1 /* never closed 'x' ", kPg, "SELECT", "", "SELECT ?"},
  };
  for (const Case& c : cases) ExpectCase(c);
}

TEST(SqlSummary, EmptyCommentsAndGarbage) {
  const Case cases[] = {
      {"", kPg, "", "", ""},
      {"   \n\t ", kPg, "", "", ""},
      {";", kPg, "", "", ""},
      {"/* just a comment */", kPg, "", "", ""},
      {"-- only a comment", kPg, "", "", ""},
      {"# only a comment", kMy, "", "", ""},
      {"/* a */ -- b\n /* c */", kMy, "", "", ""},
      {"hello world", kPg, "", "", ""},
      {"john.doe@example.com", kPg, "", "", ""},
      {"4111111111111111", kPg, "", "", ""},
      {"'SELECT'", kPg, "", "", ""},
      {"((( ", kPg, "", "", ""},
      {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", kPg, "", "", ""},
  };
  for (const Case& c : cases) ExpectCase(c);
}

TEST(SqlSummary, BinaryGarbage) {
  std::string bin;
  for (int i = 0; i < 512; ++i) bin.push_back(static_cast<char>((i * 73 + 11) & 0xff));
  for (Dialect d : {kPg, kMy}) {
    const Summary s = Summarize(bin, d);
    EXPECT_LE(s.text.size(), kMaxQueryText);
    EXPECT_LE(s.operation.size(), kMaxNameBytes);
  }
  const std::string invalid_utf8 = "\xff\xfe\x80SELECT 1";
  EXPECT_EQ(Summarize(invalid_utf8, kPg).operation, "");
  EXPECT_EQ(Summarize(invalid_utf8, kPg).text, "");
  // Control bytes separate tokens; a bad identifier is shown as '?', never raw.
  static constexpr char kCtl[] = "SELECT\0a,\x01 b\xc3( FROM t";
  const Summary s = Summarize(std::string_view(kCtl, sizeof(kCtl) - 1), kPg);
  EXPECT_EQ(s.operation, "SELECT");
  EXPECT_EQ(s.text, "SELECT a, ?( FROM t");
  // Every prefix and every single-byte corruption of a statement stays in bounds.
  const std::string base =
      "WITH a AS (SELECT * FROM \"t\" WHERE x = E'\\'' AND y = $q$z$q$) SELECT `b`, 'c''d', "
      "0x1F, 1e-5 FROM a /*! x */ -- z\n; # y\n UPDATE u SET v = ? WHERE w IN (1, 2)";
  for (Dialect d : {kPg, kMy}) {
    for (size_t i = 0; i <= base.size(); ++i) {
      const Summary p = Summarize(std::string_view(base).substr(0, i), d);
      EXPECT_LE(p.text.size(), kMaxQueryText);
      std::string m = base;
      if (i < m.size()) m[i] = static_cast<char>(m[i] ^ 0x80);
      const Summary q = Summarize(m, d);
      EXPECT_LE(q.collection.size(), kMaxNameBytes);
    }
  }
}

TEST(SqlSummary, TextBoundCutsAtTokenBoundary) {
  // 300 columns "col_NNN, ": text is far longer than the bound.
  std::string sql = "SELECT ";
  for (int i = 0; i < 300; ++i) sql += "col_" + std::to_string(1000 + i) + ", ";
  sql += "x FROM orders WHERE a = 'v'";
  const Summary s = Summarize(sql, kPg);
  EXPECT_EQ(s.operation, "SELECT");
  EXPECT_EQ(s.collection, "orders");  // the table is found even after the text is full
  EXPECT_EQ(s.summary, "SELECT orders");
  ASSERT_LE(s.text.size(), kMaxQueryText);
  EXPECT_GT(s.text.size(), kMaxQueryText - 10);
  // The text is a prefix of the full rendering, ending exactly at a token end.
  const std::string full = "SELECT " + sql.substr(7, sql.size() - 7 - 3) + "?";
  ASSERT_EQ(full.compare(0, s.text.size(), s.text), 0);
  const char next = full[s.text.size()];
  EXPECT_TRUE(next == ',' || next == ' ') << s.text.substr(s.text.size() - 20);

  // A single token longer than the bound is left out whole.
  const std::string long_ident(2000, 'z');
  const Summary l = Summarize("SELECT " + long_ident + " FROM t", kPg);
  EXPECT_EQ(l.text, "SELECT");
  EXPECT_EQ(l.operation, "SELECT");

  // A huge IN list collapses, so the rest of the statement still fits.
  std::string in = "SELECT * FROM t WHERE id IN (";
  for (int i = 0; i < 5000; ++i) in += std::to_string(i) + ", ";
  in += "0) AND b = 2";
  EXPECT_EQ(Summarize(in, kPg).text, "SELECT * FROM t WHERE id IN (?) AND b = ?");

  // Many statements: text keeps them until the bound, literals still replaced.
  std::string many;
  for (int i = 0; i < 200; ++i) many += "INSERT INTO t VALUES (4111111111111111, 'x'); ";
  const Summary m = Summarize(many, kMy);
  EXPECT_EQ(m.operation, "INSERT");
  EXPECT_EQ(m.collection, "t");
  EXPECT_LE(m.text.size(), kMaxQueryText);
  EXPECT_EQ(m.text.find("4111"), std::string::npos);
}

TEST(SqlSummary, LinearOnHostileInput) {
  // Shapes that make naive scanners quadratic: many openers of things never closed.
  const std::string dollars(200000, '$');
  const std::string comments = [] {
    std::string s = "SELECT ";
    for (int i = 0; i < 50000; ++i) s += "/*";
    return s;
  }();
  std::string parens = "SELECT ";
  parens.append(100000, '(');
  std::string tags = "SELECT ";
  for (int i = 0; i < 20000; ++i) tags += "$a$ ";
  for (Dialect d : {kPg, kMy}) {
    EXPECT_LE(Summarize(dollars, d).text.size(), kMaxQueryText);
    EXPECT_EQ(Summarize(comments, d).operation, "SELECT");
    EXPECT_EQ(Summarize(parens, d).operation, "SELECT");
    EXPECT_LE(Summarize(tags, d).text.size(), kMaxQueryText);
  }
}

}  // namespace
}  // namespace redtap::db::sql

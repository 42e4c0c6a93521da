// SPDX-License-Identifier: Apache-2.0
// Database conformance on the public pcap corpus (shared/corpora/pcap/zeek): every MySQL,
// Redis and PostgreSQL capture below goes through the same path as `redtap pcap`
// (ProcessFile: PacketProcessor, FlowTable, the db parsers) and the operations it reports are
// compared, in order, with Zeek's log of the same capture (mysql.log, redis.log,
// postgresql.cut): how many commands, their operation names, and success or error wherever
// Zeek records it (PostgreSQL: the SQLSTATE too, which Zeek logs as Code=).
//
// Zeek logs a few lines that are not operations to us; each such line is mapped to "not an
// operation" with the reason (kSkipped below), never dropped silently:
//   - logins, COM_CHANGE_USER, startups, SSL requests: connection set-up, not a client command
//     we measure (db.operation.name is a command's; authentication is not one);
//   - COM_QUIT / Terminate: no reply is ever sent, the connection just closes;
//   - an SSLRequest the server accepts: what follows is TLS; the flow is given up
//     (db_flows_invalid), so no operation is reported after it.
// Anything else Zeek logs must be one of our operations, with the same name and outcome, and
// we must report nothing Zeek does not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "parsers/db/types.h"
#include "userspace/pcap/pcap_runner.h"

namespace redtap::pcap {
namespace {

namespace fs = std::filesystem;

struct Ours {
  db::System system;
  std::string operation, status_code;
  bool has_response;
};

class Collect : public TransactionSink {
 public:
  void OnTransaction(const http::Transaction&, const ConnMeta&) noexcept override { ++http; }
  void OnDbOperation(db::Operation&& op, const ConnMeta&) noexcept override {
    got.push_back({op.system, op.operation, op.status_code, op.has_response});
  }
  std::vector<Ours> got;
  size_t http = 0;
};

// What Zeek's line says we must report.
struct Expected {
  std::string operation;
  char success = '-';     // 'T', 'F', '-' (Zeek records none)
  std::string sqlstate;   // PostgreSQL: the ErrorResponse's Code= ("" when none)
  std::string zeek_line;  // for the messages
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

// Rows of a Zeek log as column name -> value: ASCII logs ("#fields" header) and zeek-cut
// output (a "### BTest" comment, then a header row of column names).
std::vector<std::map<std::string, std::string>> ZeekRows(const fs::path& p) {
  std::ifstream f(p);
  std::string line;
  std::vector<std::string> cols;
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(f, line)) {
    if (line.rfind("#fields\t", 0) == 0) {
      cols = Split(line.substr(8), '\t');
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> v = Split(line, '\t');
    if (cols.empty()) {  // zeek-cut: the first row names the columns
      cols = v;
      continue;
    }
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < cols.size() && i < v.size(); ++i) row[cols[i]] = v[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

// The first word of a statement, upper case: the operation our SQL summariser names.
std::string FirstKeyword(const std::string& sql) {
  std::string w;
  size_t i = 0;
  while (i < sql.size() && (std::isspace(static_cast<unsigned char>(sql[i])) || sql[i] == '(')) ++i;
  while (i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i])))
    w.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i++]))));
  return w;
}

// Zeek lines that are not operations to us, and why. Key: "<system>:<Zeek command>".
const std::map<std::string, std::string> kSkipped = {
    {"mysql:login", "the handshake (greeting, login request, OK/ERR): connection set-up"},
    {"mysql:quit", "COM_QUIT has no reply; the connection closes"},
    {"mysql:change_user",
     "COM_CHANGE_USER re-authenticates (a login on an open connection): connection set-up, as "
     "the login"},
    {"postgresql:startup", "StartupMessage and authentication: connection set-up"},
    {"postgresql:ssl_request", "SSLRequest: connection set-up (accepted: the flow is TLS)"},
    {"postgresql:terminate", "Terminate ('X') has no reply; the connection closes"},
};

// MySQL commands other than COM_QUERY, as Zeek names them -> our db.operation.name.
// (Zeek's names are the COM_ names lower-cased without the prefix.)
const std::map<std::string, std::string> kMysqlCommands = {
    {"init_db", "USE"},            // COM_INIT_DB: what "USE db" does
    {"ping", "PING"},              // COM_PING
    {"field_list", "FIELD_LIST"},  // COM_FIELD_LIST
};

// Zeek's line -> what we must report (nullopt: not an operation, kSkipped says why).
std::optional<Expected> FromZeek(db::System sys, const std::map<std::string, std::string>& r,
                                 std::string* skipped_why) {
  auto get = [&](const char* k) {
    auto it = r.find(k);
    return it == r.end() ? std::string("-") : it->second;
  };
  Expected e;
  std::string cmd;
  switch (sys) {
    case db::System::kMysql: {
      cmd = get("cmd");
      e.success = get("success")[0];
      if (cmd == "query") {
        e.operation = FirstKeyword(get("arg"));
      } else if (auto it = kMysqlCommands.find(cmd); it != kMysqlCommands.end()) {
        e.operation = it->second;
      }
      e.zeek_line = cmd + " " + get("arg");
      break;
    }
    case db::System::kRedis:
      cmd = get("cmd.name");
      e.operation = cmd;
      std::transform(e.operation.begin(), e.operation.end(), e.operation.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      e.success = get("success")[0];
      e.zeek_line = cmd;
      break;
    case db::System::kPostgresql: {
      cmd = get("frontend");
      e.success = get("success")[0];
      if (cmd == "simple_query") e.operation = FirstKeyword(get("frontend_arg"));
      // backend_arg: "...,Code=42P01,..." of the ErrorResponse (or of a NoticeResponse on a
      // success, which is not an error).
      const std::string b = get("backend_arg");
      if (const size_t c = b.find("Code="); c != std::string::npos && e.success == 'F') {
        e.sqlstate = b.substr(c + 5, b.find(',', c) - c - 5);
      }
      e.zeek_line = cmd + " " + get("frontend_arg");
      break;
    }
  }
  const std::string key = std::string(db::SystemName(sys)) + ":" + cmd;
  if (auto it = kSkipped.find(key); it != kSkipped.end()) {
    *skipped_why = it->second;
    return std::nullopt;
  }
  return e;
}

struct Capture {
  const char* file;  // under pcap/zeek
  const char* log;   // Zeek's log next to it
  db::System system;
  uint64_t db_flows;          // connections to the database in the capture
  uint64_t db_flows_invalid;  // of which given up (SSL accepted)
  size_t zeek_rows;           // data rows in Zeek's log (the baseline is what we think it is)
  size_t operations;          // what remains after kSkipped: our operations
};

const Capture kCaptures[] = {
    // 13 connections to port 3306: 3 refused at once (an ERR "Host ... is not allowed to
    // connect" instead of a greeting: Zeek logs nothing for them; to us they are database
    // flows without operation), 9 logins refused, then root logs in, one query, COM_QUIT.
    {"auth.pcap", "auth.pcap.expected.mysql.log", db::System::kMysql, 13, 0, 12, 1},
    // login, COM_PING, COM_CHANGE_USER refused (the server then closes): one operation.
    {"change-user-error.pcap", "change-user-error.pcap.expected.mysql.log", db::System::kMysql, 1,
     0, 3, 1},
    // login, 15 COM_QUERY, COM_INIT_DB, COM_FIELD_LIST, COM_QUIT.
    {"mysql.pcap", "mysql.pcap.expected.mysql.log", db::System::kMysql, 1, 0, 18, 16},
    {"pipeline-with-commands.pcap", "pipeline-with-commands.pcap.expected.redis.log",
     db::System::kRedis, 1, 0, 4, 4},
    {"pipelining-example.pcap", "pipelining-example.pcap.expected.redis.log", db::System::kRedis, 1,
     0, 3, 3},
    // startup, 7 simple queries (a NOTICE on the first: not an error), Terminate.
    {"psql-create-insert-select-delete-drop.pcap",
     "psql-create-insert-select-delete-drop.pcap.expected.postgresql.cut", db::System::kPostgresql,
     1, 0, 9, 7},
    // startup, 5 simple queries of which 2 fail (42804, 42P01), Terminate.
    {"psql-insert-fail-drop-fail.pcap", "psql-insert-fail-drop-fail.pcap.expected.postgresql.cut",
     db::System::kPostgresql, 1, 0, 7, 5},
    // SSLRequest answered 'S': TLS from there on. Zeek logs the SSL request; we give the flow
    // up (db_flows_invalid) and report no operation: nothing after it is readable.
    {"psql-aws-ssl-require.pcap", "psql-aws-ssl-require.pcap.expected.postgresql.cut",
     db::System::kPostgresql, 1, 1, 1, 0},
};

std::string Describe(const Ours& o) {
  return std::string(db::SystemName(o.system)) + " " + o.operation +
         (o.has_response ? (o.status_code.empty() ? " ok" : " error " + o.status_code)
                         : " no reply");
}

class DbCorpus : public testing::TestWithParam<Capture> {};

TEST_P(DbCorpus, AgreesWithZeek) {
  const Capture& cap = GetParam();
  const fs::path dir = fs::path(REDTAP_CORPORA_DIR) / "pcap" / "zeek";
  const fs::path pcap = dir / cap.file;
  if (!fs::exists(pcap)) GTEST_SKIP() << "no corpus at " << pcap;
  if (db::MakeParser(cap.system, db::Limits{}) == nullptr) {
    GTEST_SKIP() << db::SystemName(cap.system) << " parser not built yet";
  }
  const auto rows = ZeekRows(dir / cap.log);
  ASSERT_EQ(rows.size(), cap.zeek_rows) << cap.log;
  std::vector<Expected> expected;
  std::string report;
  for (const auto& r : rows) {
    std::string why;
    if (auto e = FromZeek(cap.system, r, &why)) {
      expected.push_back(std::move(*e));
    } else {
      report += "  zeek only (" + why + ")\n";
    }
  }
  ASSERT_EQ(expected.size(), cap.operations) << "after the documented differences";

  Collect c;
  auto st = ProcessFile(pcap.string(), "", LimitsFromConfig(config::Config{}), &c);
  ASSERT_TRUE(st.ok()) << st.error();
  const FlowStats& f = st.value().flows;
  for (const Ours& o : c.got) report += "  ours: " + Describe(o) + "\n";
  SCOPED_TRACE(std::string(cap.file) + "\n" + report);
  std::printf("%-45s zeek %zu lines -> %zu operations, ours %zu\n", cap.file, rows.size(),
              expected.size(), c.got.size());

  EXPECT_EQ(f.db_flows, cap.db_flows);
  EXPECT_EQ(f.db_flows_invalid, cap.db_flows_invalid);
  EXPECT_EQ(c.http, 0u);
  EXPECT_EQ(f.db.parse_errors, 0u);
  EXPECT_EQ(f.db.gaps, 0u);
  EXPECT_EQ(f.db_operations, c.got.size());
  ASSERT_EQ(c.got.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const Expected& e = expected[i];
    const Ours& o = c.got[i];
    SCOPED_TRACE("operation " + std::to_string(i) + ": zeek " + e.zeek_line + " / ours " +
                 Describe(o));
    EXPECT_EQ(o.system, cap.system);
    EXPECT_EQ(o.operation, e.operation);
    if (e.success == 'T') {
      EXPECT_TRUE(o.has_response);
      EXPECT_EQ(o.status_code, "");
    } else if (e.success == 'F') {
      EXPECT_TRUE(o.has_response);
      EXPECT_NE(o.status_code, "");
      if (!e.sqlstate.empty()) {
        EXPECT_EQ(o.status_code, e.sqlstate);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Zeek, DbCorpus, testing::ValuesIn(kCaptures),
                         [](const testing::TestParamInfo<Capture>& i) {
                           std::string n = i.param.file;
                           n = n.substr(0, n.find('.'));
                           std::replace_if(
                               n.begin(), n.end(), [](char ch) { return !std::isalnum(ch); }, '_');
                           return n;
                         });

// db.enabled = false: the same captures yield no database operation (and no HTTP either).
TEST(DbCorpusDisabled, NothingWhenDbIsOff) {
  const fs::path dir = fs::path(REDTAP_CORPORA_DIR) / "pcap" / "zeek";
  if (!fs::exists(dir)) GTEST_SKIP() << "no corpus at " << dir;
  config::Config cfg;
  cfg.db.enabled = false;
  for (const Capture& cap : kCaptures) {
    Collect c;
    auto st = ProcessFile((dir / cap.file).string(), "", LimitsFromConfig(cfg), &c);
    ASSERT_TRUE(st.ok()) << st.error();
    EXPECT_TRUE(c.got.empty()) << cap.file;
    EXPECT_EQ(c.http, 0u) << cap.file;
    EXPECT_EQ(st.value().flows.db_flows, 0u) << cap.file;
  }
}

}  // namespace
}  // namespace redtap::pcap

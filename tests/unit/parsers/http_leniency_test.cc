// SPDX-License-Identifier: Apache-2.0
// Where a message may start (LooksLike*) and the opt-in leniency of pcap mode
// (Limits::lenient_request_line / allow_http09).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parsers/http/connection.h"
#include "tests/unit/parsers/http_test_util.h"

namespace redtap::http_test {
namespace {

using http::ConnState;

TEST(LooksLike, RequestStart) {
  EXPECT_TRUE(http::LooksLikeRequestStart("GET "));
  EXPECT_TRUE(http::LooksLikeRequestStart("GET /index.html HTTP/1.1\r\n"));
  EXPECT_TRUE(http::LooksLikeRequestStart("M-SEARCH * HTTP/1.1"));
  EXPECT_TRUE(http::LooksLikeRequestStart("CONNECT example.com:443 HTTP/1.1"));
  EXPECT_TRUE(http::LooksLikeRequestStart("OPTIONS * HTTP/1.1"));
  EXPECT_TRUE(http::LooksLikeRequestStart("PROPFIND /x"));
  EXPECT_FALSE(http::LooksLikeRequestStart("GET"));
  EXPECT_FALSE(http::LooksLikeRequestStart(""));
  EXPECT_FALSE(http::LooksLikeRequestStart("get / HTTP/1.1"));
  EXPECT_FALSE(http::LooksLikeRequestStart(" GET /"));
  EXPECT_FALSE(http::LooksLikeRequestStart("GET  /"));
  EXPECT_FALSE(http::LooksLikeRequestStart("HTTP/1.1 200 OK"));
  EXPECT_FALSE(http::LooksLikeRequestStart(std::string("\x16\x03\x01\x00\xa5\x01\x00", 7)));
  // The HTTP/2 connection preface is not HTTP/1.x.
  EXPECT_FALSE(http::LooksLikeRequestStart("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
}

TEST(LooksLike, ResponseStart) {
  EXPECT_TRUE(http::LooksLikeResponseStart("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(http::LooksLikeResponseStart("HTTP/1.0 404"));
  EXPECT_TRUE(http::LooksLikeResponseStart("HTTP/"));
  EXPECT_TRUE(http::LooksLikeResponseStart("http/1.1 200 OK\r\n"));  // as clients accept
  EXPECT_TRUE(http::LooksLikeResponseStart("Http/1.0 404"));
  EXPECT_FALSE(http::LooksLikeResponseStart("http/2 200"));
  EXPECT_FALSE(http::LooksLikeResponseStart("HTTP"));
  EXPECT_FALSE(http::LooksLikeResponseStart("HTTP/2 200"));
  EXPECT_FALSE(http::LooksLikeResponseStart("HTTP/1.1 2x0"));
  EXPECT_FALSE(http::LooksLikeResponseStart("GET / HTTP/1.1"));
  EXPECT_FALSE(http::LooksLikeResponseStart(std::string("\x16\x03\x03\x00\x7a\x02", 6)));
}

}  // namespace
}  // namespace redtap::http_test

// ---- Opt-in leniency (Limits::lenient_request_line / allow_http09; pcap mode only) ----
// Each case runs with the flags on and off (the default must keep rejecting the shape),
// and both runs are repeated with every chunk split at every byte.
namespace redtap::http_test {
namespace {

struct LenientCase {
  const char* name;
  std::vector<Chunk> chunks;
  std::vector<std::string> lenient;  // Summary() with the flags on
  ConnState lenient_state;
  std::vector<std::string> strict;  // Summary() with the default Limits
  ConnState strict_state;
};

std::vector<LenientCase> LenientCases() {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  return {
      {"space inside the target",
       {Req("GET /cgi/a;cat /etc/passwd|?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"), Resp(ok)},
       {"GET /cgi/a;cat /etc/passwd|?x=1 -> 200 req=0 resp=5"},
       ConnState::kActive,
       {"_OTHER /*unparsed -> 200 req=0 resp=5"},
       ConnState::kActive},
      {"extra token and a header line without colon",
       {Req("CONNECT mail.example:25 / HTTP/1.0\r\nMozilla 4.0 (compatible; MSIE 5.01)\r\n\r\n"),
        Resp("HTTP/1.0 200 Connection established\r\n\r\n")},
       {"CONNECT mail.example:25 / -> 200 req=0 resp=0"},
       ConnState::kUpgraded,
       {"_OTHER /*unparsed -> 200 req=0 resp=0"},
       ConnState::kActive},
      {"empty target",
       {Req("GET  HTTP/1.1\r\n123User-Agent: w\r\nHost: a\r\n\r\n"), Resp(ok)},
       {"GET  -> 200 req=0 resp=5"},
       ConnState::kActive,
       {"_OTHER /*unparsed -> 200 req=0 resp=5"},
       ConnState::kActive},
      {"colon-less header line and its fold are skipped, framing still read",
       {Req("POST /p HTTP/1.1\r\nnot a field\r\n folded\r\nContent-Length: 2\r\n\r\nab"), Resp(ok)},
       {"POST /p -> 200 req=2 resp=5"},
       ConnState::kActive,
       {"_OTHER /*unparsed -> 200 req=0 resp=5"},
       ConnState::kActive},
      {"HTTP/0.9 request: no response head, reported at close",
       {Req("GET /zeek.html\n"), Resp("<html>\n  body\n</html>\n")},
       {"GET /zeek.html -> none req=0"},
       ConnState::kActive,
       {},
       ConnState::kInvalid},
      {"HTTP/0.9 request with CRLF and an empty line",
       {Req("POST /zeek.html\r\n\r\n"), Resp("bad method\n")},
       {"POST /zeek.html -> none req=0"},
       ConnState::kActive,
       {},
       ConnState::kInvalid},
      {"a line protocol is not HTTP/0.9 (target must start with '/')",
       {Req("HELO host.example\r\n")},
       {},
       ConnState::kActive,
       {},
       ConnState::kActive},
      {"well-formed requests are unchanged",
       {Req("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.0\r\n\r\n"), Resp(ok + ok)},
       {"GET /a -> 200 req=0 resp=5", "GET /b -> 200 req=0 resp=5"},
       ConnState::kActive,
       {"GET /a -> 200 req=0 resp=5", "GET /b -> 200 req=0 resp=5"},
       ConnState::kActive},
  };
}

TEST(HttpConnectionLenient, TableWithAndWithoutFlags) {
  http::Limits lenient;
  lenient.lenient_request_line = true;
  lenient.allow_http09 = true;
  for (const LenientCase& c : LenientCases()) {
    SCOPED_TRACE(c.name);
    for (const bool on : {true, false}) {
      SCOPED_TRACE(on ? "flags on" : "flags off (default)");
      const http::Limits limits = on ? lenient : http::Limits{};
      const RunResult base = RunScript(c.chunks, true, limits);
      EXPECT_EQ(base.Summaries(), on ? c.lenient : c.strict) << base.Full();
      EXPECT_EQ(base.state, on ? c.lenient_state : c.strict_state);
      const std::string want = base.Full();
      for (size_t i = 0; i < c.chunks.size(); ++i) {
        for (size_t off = 1; off < c.chunks[i].data.size(); ++off) {
          const RunResult split = RunScriptSplit(c.chunks, i, off, true, limits);
          ASSERT_EQ(split.Full(), want) << "chunk " << i << " split at " << off;
        }
      }
    }
  }
}

TEST(HttpConnectionLenient, Http09RequestFields) {
  http::Limits lenient;
  lenient.allow_http09 = true;
  const RunResult r = RunScript({Req("GET /x?y=1\r\n"), Resp("raw")}, true, lenient);
  ASSERT_EQ(r.txns.size(), 1u);
  EXPECT_TRUE(r.txns[0].request.http09);
  EXPECT_TRUE(r.txns[0].request.headers.empty());
  EXPECT_FALSE(r.txns[0].has_response);
  EXPECT_EQ(r.stats.parse_errors, 0u);
  // allow_http09 alone does not accept a malformed HTTP/1.x line.
  const RunResult s = RunScript({Req("GET /a b HTTP/1.1\r\n\r\n")}, true, lenient);
  EXPECT_TRUE(s.txns.empty());
  EXPECT_EQ(s.stats.parse_errors, 1u);
}

TEST(LooksLike, LenientRequestStart) {
  EXPECT_TRUE(http::LooksLikeLenientRequestStart("GET /zeek.html\n"));
  EXPECT_TRUE(http::LooksLikeLenientRequestStart("GET HTTP/1.1\r\nHost: a\r\n"));
  EXPECT_TRUE(http::LooksLikeLenientRequestStart("GET /a b HTTP/1.1\r\n"));
  EXPECT_TRUE(http::LooksLikeLenientRequestStart("GET / HTTP/1.1\r\n"));
  EXPECT_FALSE(http::LooksLikeLenientRequestStart("GET /zeek.html"));  // line not complete
  EXPECT_FALSE(http::LooksLikeLenientRequestStart("HELO host\r\n"));
  EXPECT_FALSE(http::LooksLikeLenientRequestStart("MAIL FROM:<a@b>\r\n"));
  EXPECT_FALSE(http::LooksLikeLenientRequestStart("T /zeek.html\n"));  // method too short
  EXPECT_FALSE(
      http::LooksLikeLenientRequestStart(std::string_view("\xdd\x00 GET /txt HTTP/1.1\r\n", 22)));
  // The strict inference used by the live agent is unchanged.
  EXPECT_FALSE(http::LooksLikeRequestStart("GET /zeek.html\n"));
}

}  // namespace
}  // namespace redtap::http_test

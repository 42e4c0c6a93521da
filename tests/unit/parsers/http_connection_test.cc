// SPDX-License-Identifier: Apache-2.0
// RFC 9112 behaviour of HttpConnection: a table of cases, each also re-run with every chunk
// split at every byte offset, plus targeted tests (timestamps, capture gaps, limits).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parsers/http/connection.h"
#include "tests/unit/parsers/http_test_util.h"

namespace redtap::http_test {
namespace {

using http::ConnState;
using http::Direction;
using http::HttpConnection;
using http::Transaction;

struct Case {
  const char* name;
  std::vector<Chunk> chunks;
  std::vector<std::string> expect;  // Summary() of each transaction, in order
  ConnState state = ConnState::kActive;
  uint64_t parse_errors = 0;
};

const std::string kGet = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
const std::string k200 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

std::vector<Case> Cases() {
  return {
      {"simple get", {Req(kGet), Resp(k200)}, {"GET / -> 200 req=0 resp=5"}},
      {"keep-alive",
       {Req(kGet), Resp(k200), Req("GET /b HTTP/1.1\r\n\r\n"), Resp(k200)},
       {"GET / -> 200 req=0 resp=5", "GET /b -> 200 req=0 resp=5"}},
      {"pipelining",
       {Req("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"),
        Resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
             "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nbb"
             "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")},
       {"GET /1 -> 200 req=0 resp=1", "GET /2 -> 404 req=0 resp=2", "GET /3 -> 500 req=0 resp=0"}},
      {"post content-length",
       {Req("POST /f HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"),
        Resp("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")},
       {"POST /f -> 201 req=11 resp=0"}},
      {"content-length with leading zeros and list",
       {Req("PUT /x HTTP/1.1\r\nContent-Length: 003\r\n\r\nabc"
            "PUT /y HTTP/1.1\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab"),
        Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")},
       {"PUT /x -> 200 req=3 resp=0", "PUT /y -> 200 req=2 resp=0"}},
      {"chunked request with extensions and trailers",
       {Req("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5;name=value;x=\"q\"\r\nhello\r\n6 ; ext\r\n world\r\n0\r\nX-Trailer: 1\r\n"
            "X-Other: 2\r\n\r\n"),
        Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")},
       {"POST /c -> 200 req=11 resp=0"}},
      {"chunked response, upper-case hex, leading zeros",
       {Req(kGet),
        Resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "000A\r\n0123456789\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"),
        Req(kGet), Resp(k200)},
       {"GET / -> 200 req=0 resp=36", "GET / -> 200 req=0 resp=5"}},
      {"transfer-encoding list ending in chunked",
       {Req(kGet), Resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n"
                        "3\r\nabc\r\n0\r\n\r\n")},
       {"GET / -> 200 req=0 resp=3"}},
      {"chunked wins over content-length",
       {Req(kGet),
        Resp("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
             "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"),
        Req(kGet), Resp(k200)},
       {"GET / -> 200 req=0 resp=2", "GET / -> 200 req=0 resp=5"}},
      {"response read to EOF",
       {Req("GET / HTTP/1.0\r\n\r\n"), Resp("HTTP/1.0 200 OK\r\nServer: x\r\n\r\nabc"),
        Resp("defg")},
       {"GET / -> 200 req=0 resp=7"}},
      {"response with non-chunked transfer-encoding is read to EOF",
       {Req(kGet), Resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz")},
       {"GET / -> 200 req=0 resp=3"}},
      {"HEAD response has no body",
       {Req("HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
        Resp("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n" + k200)},
       {"HEAD / -> 200 req=0 resp=0", "GET / -> 200 req=0 resp=5"}},
      {"HEAD response with chunked has no body",
       {Req("HEAD / HTTP/1.1\r\n\r\n"),
        Resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")},
       {"HEAD / -> 200 req=0 resp=0"}},
      {"204 and 304 have no body",
       {Req(kGet + kGet + kGet), Resp("HTTP/1.1 204 No Content\r\n\r\n"
                                      "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" +
                                      k200)},
       {"GET / -> 204 req=0 resp=0", "GET / -> 304 req=0 resp=0", "GET / -> 200 req=0 resp=5"}},
      {"expect 100-continue",
       {Req("PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
        Resp("HTTP/1.1 100 Continue\r\n\r\n"), Req("data"),
        Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")},
       {"PUT /u -> 200 req=4 resp=0 info=1"}},
      {"several 1xx before the final response",
       {Req(kGet),
        Resp("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n" + k200)},
       {"GET / -> 200 req=0 resp=5 info=2"}},
      {"101 switching protocols upgrades",
       {Req("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
        Resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
        Req("\x81\x85garbage")},
       {"GET /ws -> 101 req=0 resp=0"},
       ConnState::kUpgraded},
      {"CONNECT 200 upgrades",
       {Req("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01"),
        Resp("HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x03")},
       {"CONNECT example.com:443 -> 200 req=0 resp=0"},
       ConnState::kUpgraded},
      {"CONNECT refused continues as HTTP",
       {Req("CONNECT h:443 HTTP/1.1\r\n\r\n"),
        Resp("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"), Req(kGet),
        Resp(k200)},
       {"CONNECT h:443 -> 407 req=0 resp=0", "GET / -> 200 req=0 resp=5"}},
      {"CONNECT refused: request bytes sent meanwhile are replayed as HTTP",
       {Req("CONNECT h:80 HTTP/1.1\r\n\r\nHEAD / HTTP/1.0\r\n\r\n"),
        Resp("HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n"
             "HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\n")},
       {"CONNECT h:80 -> 301 req=0 resp=0", "HEAD / -> 200 req=0 resp=0"}},
      {"methods and target forms",
       {Req("OPTIONS * HTTP/1.1\r\n\r\n"
            "PROPFIND /dav HTTP/1.1\r\nDepth: 1\r\n\r\n"
            "M-SEARCH * HTTP/1.1\r\n\r\n"
            "GET http://example.com/p?q=1 HTTP/1.1\r\n\r\n"
            "DELETE /r HTTP/1.1\r\n\r\n"
            "PATCH /r HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
            "TRACE / HTTP/1.1\r\n\r\n"),
        Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
             "HTTP/1.1 207 Multi-Status\r\nContent-Length: 0\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
             "HTTP/1.1 204 No Content\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")},
       {"OPTIONS * -> 200 req=0 resp=0", "PROPFIND /dav -> 207 req=0 resp=0",
        "M-SEARCH * -> 200 req=0 resp=0", "GET http://example.com/p?q=1 -> 200 req=0 resp=0",
        "DELETE /r -> 204 req=0 resp=0", "PATCH /r -> 200 req=2 resp=0",
        "TRACE / -> 200 req=0 resp=0"}},
      {"http/1.0 request",
       {Req("GET /old HTTP/1.0\r\n\r\n"), Resp("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")},
       {"GET /old -> 200 req=0 resp=2"}},
      {"request without framing headers has no body",
       {Req("POST /n HTTP/1.1\r\n\r\nGET /m HTTP/1.1\r\n\r\n"),
        Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + k200)},
       {"POST /n -> 200 req=0 resp=0", "GET /m -> 200 req=0 resp=5"}},
      {"leading empty lines between messages",
       {Req("\r\n" + kGet + "\r\n\r\n" + kGet), Resp(k200 + "\r\n" + k200)},
       {"GET / -> 200 req=0 resp=5", "GET / -> 200 req=0 resp=5"}},
      {"bare LF line endings",
       {Req("GET /lf HTTP/1.1\nHost: a\n\n"), Resp("HTTP/1.1 200 OK\nContent-Length: 2\n\nok")},
       {"GET /lf -> 200 req=0 resp=2"}},
      {"obs-fold is tolerated",
       {Req("GET / HTTP/1.1\r\nX-Long: a\r\n  b\r\n\tc\r\nHost: h\r\n\r\n"), Resp(k200)},
       {"GET / -> 200 req=0 resp=5"}},
      {"orphan response is dropped",
       {Resp(k200), Req(kGet), Resp(k200)},
       {"GET / -> 200 req=0 resp=5"}},
      {"close with pending requests",
       {Req(kGet + "GET /2 HTTP/1.1\r\n\r\n"), Resp(k200)},
       {"GET / -> 200 req=0 resp=5", "GET /2 -> none req=0"}},
      // A response head was seen, then the body was cut by the close (server closed
      // mid-body, or the capture ended): reported with its status and the body seen.
      {"close in the middle of a content-length response",
       {Req(kGet), Resp("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")},
       {"GET / -> 200 req=0 resp=3"}},
      {"close in the middle of a chunked response",
       {Req(kGet), Resp("HTTP/1.1 206 Partial\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n10\r\nwor")},
       {"GET / -> 206 req=0 resp=8"}},
      {"close right after a response head with a content-length",
       {Req(kGet + kGet), Resp(k200 + "HTTP/1.1 404 No\r\nContent-Length: 9\r\n\r\n")},
       {"GET / -> 200 req=0 resp=5", "GET / -> 404 req=0 resp=0"}},
      {"close in the middle of a response head: no response",
       {Req(kGet), Resp("HTTP/1.1 200 OK\r\nContent-Len")},
       {"GET / -> none req=0"}},
      // Status lines clients accept although RFC 9112 does not.
      {"lower-case HTTP-name in a status line",
       {Req(kGet + kGet), Resp("http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                               "Http/1.0 304 Not Modified\r\n\r\n")},
       {"GET / -> 200 req=0 resp=2", "GET / -> 304 req=0 resp=0"}},
      {"bare CR in a response header value is read as SP (RFC 9112 §2.2)",
       {Req(kGet),
        Resp("HTTP/1.1 200 ok\r\nContent-Encoding:\r gzip\r\nContent-Length: 2\r\n\r\nok")},
       {"GET / -> 200 req=0 resp=2"}},
      {"bare CR line ends in a response head: one long status line",
       {Req(kGet), Resp("HTTP/1.1 200 ok\rContent-Type: a\rContent-Length: 2\r\n\r\nokxyz")},
       {"GET / -> 200 req=0 resp=5"}},
      {"status line without reason",
       {Req(kGet), Resp("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")},
       {"GET / -> 200 req=0 resp=0"}},
      {"empty chunked body",
       {Req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), Resp(k200)},
       {"POST / -> 200 req=0 resp=5"}},
      // ---- Malformed input ----
      // Request bytes that are not HTTP: reported only if answered (http_unparsed_test).
      {"garbage instead of a request",
       {Req("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")},
       {},
       ConnState::kActive,
       1},
      {"garbage instead of a response",
       {Req(kGet), Resp("SSH-2.0-OpenSSH_9.0\r\n")},
       {"GET / -> none req=0"},
       ConnState::kInvalid,
       1},
      {"garbage after a complete response",
       {Req(kGet), Resp(k200 + "\x01\x02garbage")},
       {"GET / -> 200 req=0 resp=5"},
       ConnState::kInvalid,
       1},
      {"HTTP/0.9 request is invalid", {Req("GET /\r\n\r\n")}, {}, ConnState::kActive, 1},
      {"HTTP/2 version is invalid", {Req("GET / HTTP/2.0\r\n\r\n")}, {}, ConnState::kActive, 1},
      // An invalid Content-Length in a request: the request stands, with no body trusted.
      {"invalid content-length",
       {Req("POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n")},
       {"POST / -> none req=0"},
       ConnState::kActive,
       1},
      {"conflicting content-lengths",
       {Req("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")},
       {"POST / -> none req=0"},
       ConnState::kActive,
       1},
      {"content-length overflow",
       {Req("POST / HTTP/1.1\r\nContent-Length: 100000000000000000000\r\n\r\n")},
       {"POST / -> none req=0"},
       ConnState::kActive,
       1},
      {"whitespace before the colon",
       {Req("GET / HTTP/1.1\r\nHost : a\r\n\r\n")},
       {},
       ConnState::kActive,
       1},
      {"request transfer-encoding not ending in chunked",
       {Req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")},
       {"POST / -> none req=0"},
       ConnState::kActive,
       1},
      {"invalid chunk size",
       {Req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")},
       {"POST / -> none req=0"},
       ConnState::kActive,
       1},
      {"chunk size overflow",
       {Req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            "fffffffffffffffffffff\r\n")},
       {"POST / -> none req=0"},
       ConnState::kActive,
       1},
      {"missing CRLF after chunk data",
       {Req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX")},
       {"POST / -> none req=3"},
       ConnState::kActive,
       1},
      {"bare CR in a header value",
       {Req("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n")},
       {},
       ConnState::kActive,
       1},
      {"NUL in the request target",
       {Req(std::string("GET /a\0b HTTP/1.1\r\n\r\n", 22))},
       {},
       ConnState::kActive,
       1},
      {"lower-case HTTP-name in a request line is invalid",
       {Req("GET / http/1.1\r\n\r\n")},
       {},
       ConnState::kActive,
       1},
      // A malformed response head: the server answered something, so its request is
      // reported without a response (not dropped); the next response pairs normally.
      {"status code with two digits",
       {Req(kGet), Resp("HTTP/1.1 20 OK\r\n\r\n")},
       {"GET / -> none req=0"},
       ConnState::kActive,
       1},
      {"malformed response head: its request is reported, the next pairs",
       {Req(kGet + "GET /2 HTTP/1.1\r\n\r\n"), Resp("HTTP/1.1 200 OK\r\nFoo Bar: x\r\n\r\n"),
        Resp(k200)},
       {"GET / -> none req=0", "GET /2 -> 200 req=0 resp=5"},
       ConnState::kActive,
       1},
      {"invalid content-length in a response",
       {Req("POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"),
        Resp("HTTP/1.1 200 OK\r\nContent-Length: 68A\r\n\r\nX5O!")},
       {"POST /p -> none req=2"},
       ConnState::kActive,
       1},
      {"control byte before the colon in a response",
       {Req(kGet), Resp("HTTP/1.1 200 OK\r\nContent-Encoding\x0b:gzip\r\n\r\n")},
       {"GET / -> none req=0"},
       ConnState::kActive,
       1},
      {"bare CR in a response header name stays invalid",
       {Req(kGet), Resp("HTTP/1.1 200 OK\r\nContent\rLength: 2\r\n\r\nok")},
       {"GET / -> none req=0"},
       ConnState::kActive,
       1},
      {"malformed request head: its answer is reported as unparsed",
       {Req("GET / HTTP/1.1\r\nbad header\r\n\r\n"), Resp(k200), Req(kGet), Resp(k200)},
       {"_OTHER /*unparsed -> 200 req=0 resp=5", "GET / -> 200 req=0 resp=5"},
       ConnState::kActive,
       1},
  };
}

TEST(HttpConnectionTable, Rfc9112Cases) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const RunResult base = RunScript(c.chunks);
    EXPECT_EQ(base.Summaries(), c.expect) << base.Full();
    EXPECT_EQ(base.state, c.state);
    EXPECT_EQ(base.stats.parse_errors, c.parse_errors);
    // The agent's setting (Limits::response_fields = false) frames every case the same.
    http::Limits lean;
    lean.response_fields = false;
    const RunResult framing = RunScript(c.chunks, true, lean);
    EXPECT_EQ(framing.Summaries(), base.Summaries());
    EXPECT_EQ(DumpStats(framing.stats), DumpStats(base.stats));
    EXPECT_EQ(framing.state, base.state);
    const std::string want = base.Full();
    for (size_t i = 0; i < c.chunks.size(); ++i) {
      for (size_t off = 1; off < c.chunks[i].data.size(); ++off) {
        const RunResult split = RunScriptSplit(c.chunks, i, off);
        ASSERT_EQ(split.Full(), want) << "chunk " << i << " split at " << off;
      }
    }
  }
}

TEST(HttpConnection, HeadersAndFields) {
  const RunResult r =
      RunScript({Req("POST /p?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Pad:   spaced value \t\r\n"
                     "Expect: 100-Continue\r\nX-Fold: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
                 Resp("HTTP/1.0 404 Not Found\r\nServer: t\r\nContent-Length: 3\r\n\r\nabc")});
  ASSERT_EQ(r.txns.size(), 1u);
  const Transaction& t = r.txns[0];
  EXPECT_EQ(t.request.method, "POST");
  EXPECT_EQ(t.request.target, "/p?x=1");
  EXPECT_EQ(t.request.version_minor, 1);
  EXPECT_TRUE(t.request.expect_continue);
  EXPECT_EQ(t.request.Find("host"), "example.com");
  EXPECT_EQ(t.request.Find("X-PAD"), "spaced value");
  EXPECT_EQ(t.request.Find("x-fold"), "a b");
  EXPECT_EQ(t.request.Find("missing"), "");
  EXPECT_EQ(t.request.headers.size(), 5u);
  EXPECT_EQ(t.request.headers[0].name, "Host");
  EXPECT_EQ(t.response.status_code, 404);
  EXPECT_EQ(t.response.reason, "Not Found");
  EXPECT_EQ(t.response.version_minor, 0);
  EXPECT_EQ(t.response.Find("server"), "t");
  EXPECT_EQ(t.response.head_size, 56u);
  EXPECT_EQ(t.response.body_size, 3u);
}

TEST(HttpConnection, ResponseFieldsOffKeepsOnlyFraming) {
  http::Limits lean;
  lean.response_fields = false;
  const RunResult r = RunScript(
      {Req("GET /a HTTP/1.1\r\nHost: h\r\nX-Req: kept\r\n\r\n"),
       Resp("HTTP/1.1 200 OK\r\nServer: t\r\n folded\r\nTransfer-Encoding: gzip,\r\n chunked\r\n"
            "Date: Wed, 25 Nov 2026 21:09:00 GMT\r\n\r\n3\r\nabc\r\n0\r\n\r\n")},
      true, lean);
  ASSERT_EQ(r.txns.size(), 1u);
  const Transaction& t = r.txns[0];
  EXPECT_EQ(t.request.Find("x-req"), "kept");  // requests keep every field
  ASSERT_EQ(t.response.headers.size(), 1u);
  EXPECT_EQ(t.response.headers[0].name, "Transfer-Encoding");
  EXPECT_EQ(t.response.headers[0].value, "gzip, chunked");  // its fold, not Server's
  EXPECT_EQ(t.response.body_size, 3u);
  // Dropped fields are still validated: a control byte fails the head either way.
  const RunResult bad = RunScript(
      {Req("GET /a HTTP/1.1\r\n\r\n"),
       Resp(std::string("HTTP/1.1 200 OK\r\nServer: a\x01b\r\nContent-Length: 0\r\n\r\n"))},
      true, lean);
  EXPECT_EQ(bad.stats.parse_errors, 1u);
  EXPECT_EQ(bad.stats.responses, 0u);
}

TEST(HttpConnection, Timestamps) {
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, "\r\nPOST / HTTP/1.1\r\nContent-", 27, 10, &out);
  c.Feed(Direction::kRequest, "Length: 4\r\n\r\nab", 15, 20, &out);
  c.Feed(Direction::kRequest, "cd", 2, 30, &out);
  c.Feed(Direction::kResponse, "HTTP/1.1 200 OK\r\n", 17, 40, &out);
  c.Feed(Direction::kResponse, "Content-Length: 0\r\n\r\n", 21, 50, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.first_byte_ts, 10u);
  EXPECT_EQ(out[0].request.last_byte_ts, 30u);
  EXPECT_EQ(out[0].request.head_size, 38u);  // leading CRLF not counted
  EXPECT_EQ(out[0].response.first_byte_ts, 40u);
  EXPECT_EQ(out[0].response.last_byte_ts, 50u);
  EXPECT_EQ(out[0].DurationNs(), 40u);

  // EOF-delimited: last_byte_ts is the last data, not the close.
  out.clear();
  c.Feed(Direction::kRequest, "GET / HTTP/1.0\r\n\r\n", 18, 100, &out);
  c.Feed(Direction::kResponse, "HTTP/1.0 200 OK\r\n\r\nab", 21, 110, &out);
  c.Feed(Direction::kResponse, "cd", 2, 120, &out);
  EXPECT_TRUE(out.empty());
  c.Close(500, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response.last_byte_ts, 120u);
  EXPECT_EQ(out[0].response.body_size, 4u);
  EXPECT_EQ(out[0].DurationNs(), 20u);
}

TEST(HttpConnection, BodyLargerThanCaptureCap) {
  // 100 bytes captured of a response whose body is 1 MB: the rest is counted.
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
  const std::string cap = head + std::string(100 - head.size(), 'x');
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, kGet, kGet.size(), 1, &out);
  c.Feed(Direction::kResponse, cap, head.size() + 600000, 2, &out);
  EXPECT_TRUE(out.empty());
  c.Feed(Direction::kResponse, "", 400000, 3, &out);  // e.g. sendfile: nothing captured
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response.body_size, 1000000u);
  EXPECT_EQ(out[0].response.last_byte_ts, 3u);
  EXPECT_EQ(c.stats().gaps, 0u);
  // The connection is still in sync.
  c.Feed(Direction::kRequest, kGet, kGet.size(), 4, &out);
  c.Feed(Direction::kResponse, k200, k200.size(), 5, &out);
  EXPECT_EQ(out.size(), 2u);
}

TEST(HttpConnection, ChunkedBodyLargerThanCaptureCap) {
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, kGet, kGet.size(), 1, &out);
  const std::string part = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\nabc";
  c.Feed(Direction::kResponse, part, part.size() + 0x1000 - 3, 2, &out);
  c.Feed(Direction::kResponse, "\r\n0\r\n\r\n", 7, 3, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response.body_size, 0x1000u);
  EXPECT_EQ(c.state(), ConnState::kActive);
}

TEST(HttpConnection, TruncatedRequestHeadAnsweredIsUnparsed) {
  HttpConnection c;
  std::vector<Transaction> out;
  // Only 10 bytes of a long request head were captured.
  const std::string big = "GET /long HTTP/1.1\r\nCookie: " + std::string(500, 'c') + "\r\n\r\n";
  c.Feed(Direction::kRequest, std::string_view(big).substr(0, 10), big.size(), 1, &out);
  EXPECT_EQ(c.stats().truncated_heads, 1u);
  c.Feed(Direction::kResponse, k200, k200.size(), 2, &out);
  // Answered: reported under the fixed method and target, never the bytes seen.
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].request.unparsed);
  EXPECT_FALSE(out[0].request.placeholder);
  EXPECT_EQ(out[0].request.method, "_OTHER");
  EXPECT_EQ(out[0].request.target, "/*unparsed");
  EXPECT_TRUE(out[0].request.headers.empty());
  EXPECT_EQ(out[0].request.first_byte_ts, 1u);
  EXPECT_EQ(out[0].response.status_code, 200);
  EXPECT_EQ(out[0].DurationNs(), 1u);
  EXPECT_EQ(c.stats().unparsed_requests, 1u);
  // Resync on the next message start; a non-message chunk is skipped.
  c.Feed(Direction::kRequest, "rest of a body", 14, 3, &out);
  c.Feed(Direction::kRequest, kGet, kGet.size(), 4, &out);
  c.Feed(Direction::kResponse, k200, k200.size(), 5, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FALSE(out[1].request.unparsed);
  EXPECT_EQ(out[1].request.first_byte_ts, 4u);
  EXPECT_EQ(c.state(), ConnState::kActive);
  c.Close(6, &out);
  EXPECT_EQ(out.size(), 2u);  // unanswered placeholders are never emitted
}

TEST(HttpConnection, WholeRequestUncapturedAfterBody) {
  HttpConnection c;
  std::vector<Transaction> out;
  // A 4-byte body, then 30 more uncaptured bytes: the next request's head was cut.
  const std::string d = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab";
  c.Feed(Direction::kRequest, d, d.size() + 2 + 30, 1, &out);
  EXPECT_EQ(c.stats().truncated_heads, 1u);
  c.Feed(Direction::kResponse, k200 + k200, 2 * k200.size(), 2, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].request.body_size, 4u);
  EXPECT_TRUE(out[1].request.unparsed);
  EXPECT_EQ(c.stats().unparsed_requests, 1u);
}

TEST(HttpConnection, TruncatedResponseHeadDropsItsRequest) {
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, kGet + kGet, 2 * kGet.size(), 1, &out);
  c.Feed(Direction::kResponse, "HTTP/1.1 200 OK\r\nSet-Cookie: ", 500, 2, &out);
  EXPECT_EQ(c.stats().truncated_heads, 1u);
  EXPECT_EQ(c.stats().lost_responses, 1u);
  c.Feed(Direction::kResponse, "cookie continues...", 19, 3, &out);
  c.Feed(Direction::kResponse, k200, k200.size(), 4, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response.first_byte_ts, 4u);
}

TEST(HttpConnection, GapCalls) {
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, "GET /a HTTP/1.1\r\nHo", 19, 1, &out);
  c.Gap(Direction::kRequest);  // request head lost -> placeholder
  c.Feed(Direction::kRequest, kGet, kGet.size(), 2, &out);
  c.Feed(Direction::kResponse, k200, k200.size(), 3, &out);  // for the placeholder
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].request.unparsed);
  EXPECT_EQ(out[0].request.first_byte_ts, 1u);
  const std::string partial = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab";
  c.Feed(Direction::kResponse, partial, partial.size(), 4, &out);
  c.Gap(Direction::kResponse);  // body lost: transaction reported with what was seen
  c.Feed(Direction::kResponse, "xyz", 3, 5, &out);  // skipped until a status line
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].request.target, "/");
  EXPECT_EQ(out[1].response.status_code, 200);
  EXPECT_EQ(out[1].response.body_size, 2u);
  EXPECT_EQ(c.stats().gaps, 2u);
  EXPECT_EQ(c.state(), ConnState::kActive);
}

TEST(HttpConnection, GapInEofBodyKeepsCounting) {
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, kGet, kGet.size(), 1, &out);
  c.Feed(Direction::kResponse, "HTTP/1.1 200 OK\r\n\r\nab", 21, 2, &out);
  c.Gap(Direction::kResponse);
  c.Feed(Direction::kResponse, "cd", 2, 3, &out);
  c.Close(4, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response.body_size, 4u);
}

TEST(HttpConnection, PendingLimit) {
  http::Limits limits;
  limits.max_pending_requests = 3;
  HttpConnection c(limits);
  std::vector<Transaction> out;
  for (int i = 0; i < 5; ++i) c.Feed(Direction::kRequest, kGet, kGet.size(), 1, &out);
  EXPECT_EQ(c.stats().requests, 5u);
  EXPECT_EQ(c.stats().pending_overflow, 2u);
  c.Close(2, &out);
  EXPECT_EQ(out.size(), 3u);
}

TEST(HttpConnection, GarbageResyncLimit) {
  http::Limits limits;
  limits.max_garbage_resyncs = 2;
  HttpConnection c(limits);
  std::vector<Transaction> out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.state(), ConnState::kActive);
    c.Feed(Direction::kRequest, "GET / HTTP/1.1\r\nbad\r\n\r\n", 23, 1, &out);
  }
  EXPECT_EQ(c.stats().parse_errors, 3u);
  EXPECT_EQ(c.state(), ConnState::kInvalid);
}

TEST(HttpConnection, MoveAndIdle) {
  HttpConnection a;
  std::vector<Transaction> out;
  a.Feed(Direction::kRequest, "GET / HT", 8, 1, &out);
  EXPECT_FALSE(a.Idle(Direction::kRequest));
  EXPECT_TRUE(a.Idle(Direction::kResponse));
  HttpConnection b = std::move(a);
  b.Feed(Direction::kRequest, "TP/1.1\r\n\r\n", 10, 2, &out);
  EXPECT_TRUE(b.Idle(Direction::kRequest));
  b.Close(3, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.target, "/");
}

TEST(HttpConnection, CloseMidBodyReportsTheResponse) {
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, kGet, kGet.size(), 1, &out);
  const std::string part = "HTTP/1.1 200 OK\r\nContent-Length: 2200000000\r\n\r\nAAAA";
  c.Feed(Direction::kResponse, part, part.size(), 2, &out);
  c.Feed(Direction::kResponse, "BB", 2, 3, &out);
  EXPECT_TRUE(out.empty());
  c.Close(50, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_response);
  EXPECT_EQ(out[0].response.status_code, 200);
  EXPECT_EQ(out[0].response.body_size, 6u);  // what was seen
  EXPECT_EQ(out[0].response.first_byte_ts, 2u);
  EXPECT_EQ(out[0].response.last_byte_ts, 3u);  // last data, not the close
  EXPECT_EQ(out[0].DurationNs(), 2u);
  EXPECT_EQ(c.stats().responses, 1u);
  EXPECT_EQ(c.stats().parse_errors, 0u);
}

TEST(HttpConnection, MalformedResponseHeadReportsItsRequest) {
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, kGet, kGet.size(), 1, &out);
  const std::string bad = "HTTP/1.1 200 ok\r\nFoo Bar: x\r\n\r\nbody";
  c.Feed(Direction::kResponse, bad, bad.size(), 2, &out);
  ASSERT_EQ(out.size(), 1u);  // at once, not at Close
  EXPECT_FALSE(out[0].has_response);
  EXPECT_EQ(out[0].request.target, "/");
  EXPECT_EQ(c.stats().lost_responses, 1u);
  EXPECT_EQ(c.stats().parse_errors, 1u);
  c.Close(3, &out);
  EXPECT_EQ(out.size(), 1u);
}

TEST(HttpConnection, BareCrInResponseHead) {
  const RunResult r =
      RunScript({Req(kGet), Resp("HTTP/1.1 200 ok\r\nContent-Encoding:\r gzip\r\nX: a\rb\r\n"
                                 "Content-Length: 2\r\n\r\nok")});
  ASSERT_EQ(r.txns.size(), 1u);
  const http::Response& resp = r.txns[0].response;
  EXPECT_EQ(resp.Find("content-encoding"), "gzip");
  EXPECT_EQ(resp.Find("x"), "a b");
  EXPECT_EQ(resp.body_size, 2u);
  EXPECT_EQ(r.stats.parse_errors, 0u);
  // Bare CR line ends: one status line whose reason holds the rest (as libhtp reads it).
  const RunResult s =
      RunScript({Req(kGet), Resp("HTTP/1.1 200 ok\rContent-Length: 2\r\n\r\nokxyz")});
  ASSERT_EQ(s.txns.size(), 1u);
  EXPECT_EQ(s.txns[0].response.status_code, 200);
  EXPECT_EQ(s.txns[0].response.reason, "ok Content-Length: 2");
  EXPECT_TRUE(s.txns[0].response.headers.empty());
  EXPECT_EQ(s.txns[0].response.body_size, 5u);  // read to EOF
}

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

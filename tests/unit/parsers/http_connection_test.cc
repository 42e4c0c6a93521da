// SPDX-License-Identifier: Apache-2.0
// RFC 9112 behaviour of HttpConnection: a table of cases, each also re-run with every chunk
// split at every byte offset (targeted tests: http_connection_targeted_test.cc).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parsers/http/connection.h"
#include "tests/unit/parsers/http_test_util.h"

namespace redtap::http_test {
namespace {

using http::ConnState;
using http::HttpConnection;

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

// Field values are scanned eight bytes at a time: a control byte or DEL is found at every
// offset of a long value, in a request and in a response, and HT, SP and obs-text pass. A
// bare CR fails a request; in a response it is read as SP (RFC 9112 §2.2, see head.cc).
TEST(HttpConnectionFieldValues, ControlBytesAtEveryOffset) {
  const std::string resp_head = "HTTP/1.1 200 OK\r\nX-V: ";
  const std::string resp_tail = "\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t k = 0; k < 40; ++k) {
    for (const char bad : {'\x00', '\x01', '\x0b', '\r', '\x1f', '\x7f'}) {
      std::string v(40, 'a');
      v[k] = bad;
      const RunResult rq = RunScript({Req("GET / HTTP/1.1\r\nX-V: " + v + "\r\n\r\n"), Resp(k200)});
      EXPECT_EQ(rq.stats.parse_errors, 1u) << "request, offset " << k << ", byte " << int(bad);
      const RunResult rs = RunScript({Req(kGet), Resp(resp_head + v + resp_tail)});
      EXPECT_EQ(rs.stats.parse_errors, bad == '\r' ? 0u : 1u)
          << "response, offset " << k << ", byte " << int(bad);
    }
    for (const char fine : {'\t', ' ', '\x80', '\xff'}) {
      std::string v(40, 'a');
      v[k] = fine;
      const RunResult r = RunScript(
          {Req("GET / HTTP/1.1\r\nX-V: " + v + "\r\n\r\n"), Resp(resp_head + v + resp_tail)});
      EXPECT_EQ(r.stats.parse_errors, 0u) << "offset " << k << ", byte " << int(fine);
      EXPECT_EQ(r.Summaries(), std::vector<std::string>{"GET / -> 200 req=0 resp=5"}) << r.Full();
    }
  }
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

}  // namespace
}  // namespace redtap::http_test

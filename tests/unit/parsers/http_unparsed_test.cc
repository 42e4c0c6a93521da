// SPDX-License-Identifier: Apache-2.0
// Every answer a server sends is a transaction: requests that could not be parsed (bytes that
// are not HTTP, malformed heads, smuggled framing, invalid Content-Length) are reported under
// a fixed method and target when answered; Expect: 100-continue refused before the body.
// Each case also runs with its chunks split at every byte offset.
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
using http::ParseError;
using http::Transaction;

const std::string k400 =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad";
const std::string k200 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

uint64_t Reason(const http::ConnStats& s, ParseError e) {
  return s.parse_error_reasons[static_cast<size_t>(e)];
}

// Runs `chunks` whole and split at every offset; every run must give `expect`.
void ExpectEverySplit(const std::vector<Chunk>& chunks, const std::vector<std::string>& expect) {
  const RunResult whole = RunScript(chunks);
  EXPECT_EQ(whole.Summaries(), expect) << whole.Full();
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (size_t at = 1; at < chunks[i].data.size(); ++at) {
      const RunResult r = RunScriptSplit(chunks, i, at);
      ASSERT_EQ(r.Full(), whole.Full()) << "chunk " << i << " split at " << at;
    }
  }
}

TEST(HttpUnparsed, GarbageAfterARequestIsAnsweredAsUnparsed) {
  // A valid request, then binary noise; the server answers 400 to the noise.
  const std::vector<Chunk> chunks = {Req("GET /a HTTP/1.1\r\n\r\n"), Resp(k200),
                                     Req(std::string("\x01\x02\xff garbage\r\n\r\n", 16)),
                                     Resp(k400)};
  ExpectEverySplit(chunks, {"GET /a -> 200 req=0 resp=2", "_OTHER /*unparsed -> 400 req=0 resp=3"});
  const RunResult r = RunScript(chunks);
  EXPECT_EQ(r.stats.unparsed_requests, 1u);
  EXPECT_EQ(Reason(r.stats, ParseError::kNotHttp), 1u);
  EXPECT_EQ(r.stats.parse_errors, 1u);
  ASSERT_EQ(r.txns.size(), 2u);
  EXPECT_TRUE(r.txns[1].request.unparsed);
  EXPECT_TRUE(r.txns[1].request.headers.empty());
}

TEST(HttpUnparsed, MangledRequestLineAndSmuggledHeaderBlock) {
  // A request line with a control byte, then a header block without a request line.
  const std::vector<Chunk> mangled = {Req("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n"), Resp(k400)};
  ExpectEverySplit(mangled, {"_OTHER /*unparsed -> 400 req=0 resp=3"});
  EXPECT_EQ(Reason(RunScript(mangled).stats, ParseError::kBadRequestHead), 1u);

  const std::vector<Chunk> headers_only = {Req("Host: x\r\nX-A: b\r\n\r\n"), Resp(k400)};
  ExpectEverySplit(headers_only, {"_OTHER /*unparsed -> 400 req=0 resp=3"});
}

TEST(HttpUnparsed, StatusCodesOfBadRequestsAreKept) {
  for (int code : {400, 405, 408, 413, 414, 429, 431}) {
    const std::string resp = "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Length: 0\r\n\r\n";
    const RunResult r = RunScript({Req("\x16garbage\r\n\r\n"), Resp(resp)});
    ASSERT_EQ(r.txns.size(), 1u) << code;
    EXPECT_EQ(r.txns[0].response.status_code, code);
    EXPECT_EQ(r.txns[0].request.method, "_OTHER");
  }
}

TEST(HttpUnparsed, UnansweredGarbageIsNeverReported) {
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, "\x01\x02\x03\x04", 4, 1, &out);
  c.Close(2, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(c.stats().parse_errors, 1u);
}

TEST(HttpUnparsed, RepeatedGarbageEndsTracking) {
  // Bounded: after max_garbage_resyncs lost syncs the connection is not HTTP.
  HttpConnection c;
  std::vector<Transaction> out;
  const std::string bad = "GET /a HTTP/1.1\r\nNo colon here\r\n\r\n";
  for (int i = 0; i < 10 && c.state() == ConnState::kActive; ++i) {
    c.Feed(Direction::kRequest, bad, bad.size(), 2 * i, &out);
    c.Feed(Direction::kResponse, k400, k400.size(), 2 * i + 1, &out);
  }
  EXPECT_EQ(c.state(), ConnState::kInvalid);
  EXPECT_EQ(out.size(), http::Limits{}.max_garbage_resyncs);
}

TEST(HttpUnparsed, FeedUnparsedPairsWithTheFirstAnswer) {
  // What the kernel sends when a connection's first request bytes were not HTTP and the
  // server answered with HTTP: their length and time, never the bytes.
  HttpConnection c;
  std::vector<Transaction> out;
  c.FeedUnparsed(37, 100, /*not_http=*/true, &out);
  c.Feed(Direction::kResponse, k400, k400.size(), 250, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Summary(out[0]), "_OTHER /*unparsed -> 400 req=0 resp=3");
  EXPECT_EQ(out[0].request.first_byte_ts, 100u);
  EXPECT_EQ(out[0].DurationNs(), 150u);
  EXPECT_EQ(c.stats().parse_errors, 1u);
  // The connection goes on as HTTP.
  c.Feed(Direction::kRequest, "GET /b HTTP/1.1\r\n\r\n", 19, 300, &out);
  c.Feed(Direction::kResponse, k200, k200.size(), 400, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(Summary(out[1]), "GET /b -> 200 req=0 resp=2");
}

TEST(HttpUnparsed, InvalidContentLengthTrustsNoBodyAndShowsTheSmuggledRequest) {
  // RFC 9112 §6.3 rule 5: the server answers 400 and closes. What follows is parsed as the
  // next request (as Zeek does), so a request hidden in the "body" is visible.
  for (const char* cl : {"-5", "18446744073709551616", "9223372036854775808", "12a", "5, 6", ""}) {
    const std::string req = std::string("POST /a HTTP/1.1\r\nContent-Length: ") + cl +
                            "\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n";
    const std::vector<Chunk> chunks = {Req(req), Resp(k400)};
    ExpectEverySplit(chunks, {"POST /a -> 400 req=0 resp=3", "GET /smuggled -> none req=0"});
    const RunResult r = RunScript(chunks);
    EXPECT_EQ(Reason(r.stats, ParseError::kInvalidContentLength), 1u) << cl;
    EXPECT_EQ(r.stats.requests, 2u) << cl;
  }
  // Two Content-Length lines that disagree.
  const RunResult r =
      RunScript({Req("POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n"
                     "\r\n"),
                 Resp(k400)});
  EXPECT_EQ(Reason(r.stats, ParseError::kInvalidContentLength), 1u);
  ASSERT_EQ(r.txns.size(), 1u);
  EXPECT_EQ(r.txns[0].request.body_size, 0u);
  // In a response an invalid Content-Length still fails the head (the client discards it).
  const RunResult s = RunScript(
      {Req("GET / HTTP/1.1\r\n\r\n"), Resp("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")});
  EXPECT_EQ(Reason(s.stats, ParseError::kBadResponseHead), 1u);
}

TEST(HttpUnparsed, SmugglingSuspectsAreCounted) {
  // CL.TE: Transfer-Encoding wins (RFC 9112 §6.3 rule 3), counted as a suspect.
  const RunResult clte =
      RunScript({Req("POST /a HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: "
                     "chunked\r\n\r\n0\r\n\r\n"),
                 Resp(k200)});
  EXPECT_EQ(Reason(clte.stats, ParseError::kSmugglingSuspect), 1u);
  ASSERT_EQ(clte.txns.size(), 1u);
  EXPECT_EQ(Summary(clte.txns[0]), "POST /a -> 200 req=0 resp=2");
  // A final coding other than chunked cannot be delimited: the server answers 400.
  const RunResult gzip =
      RunScript({Req("POST /b HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), Resp(k400)});
  EXPECT_EQ(Reason(gzip.stats, ParseError::kSmugglingSuspect), 1u);
  ASSERT_EQ(gzip.txns.size(), 1u);
  EXPECT_EQ(gzip.txns[0].response.status_code, 400);
  // An honest request counts nothing.
  const RunResult ok =
      RunScript({Req("POST /c HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"), Resp(k200)});
  EXPECT_EQ(ok.stats.parse_errors, 0u);
}

TEST(HttpUnparsed, ExpectContinueRefusedBeforeTheBody) {
  // RFC 9110 §10.1.1: answered 401 instead of 100, the client skips the body and sends its
  // next request on the same connection.
  const std::string expect =
      "PUT /up HTTP/1.1\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n";
  const std::string k401 = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
  const std::vector<Chunk> skipped = {Req(expect), Resp(k401), Req("GET /next HTTP/1.1\r\n\r\n"),
                                      Resp(k200)};
  ExpectEverySplit(skipped, {"PUT /up -> 401 req=0 resp=0", "GET /next -> 200 req=0 resp=2"});
  EXPECT_EQ(RunScript(skipped).stats.expect_skipped_bodies, 1u);

  // The client may send the body anyway: it is the body, not a request.
  const std::vector<Chunk> sent = {Req(expect), Resp(k401), Req(std::string(1000, 'x')),
                                   Req("GET /next HTTP/1.1\r\n\r\n"), Resp(k200)};
  ExpectEverySplit(sent, {"PUT /up -> 401 req=0 resp=0", "GET /next -> 200 req=0 resp=2"});
  EXPECT_EQ(RunScript(sent).stats.expect_skipped_bodies, 0u);

  // After a 100 Continue the body must follow.
  const std::vector<Chunk> continued = {Req(expect), Resp("HTTP/1.1 100 Continue\r\n\r\n"),
                                        Req(std::string(1000, 'y')), Resp(k200)};
  ExpectEverySplit(continued, {"PUT /up -> 200 req=1000 resp=2 info=1"});

  // A 2xx answer does not release the client from sending the body.
  const std::vector<Chunk> accepted = {Req(expect), Resp(k200), Req(std::string(1000, 'z')),
                                       Req("GET /next HTTP/1.1\r\n\r\n"), Resp(k200)};
  const RunResult a = RunScript(accepted);
  ASSERT_EQ(a.txns.size(), 2u);
  EXPECT_EQ(Summary(a.txns[1]), "GET /next -> 200 req=0 resp=2");
}

}  // namespace
}  // namespace redtap::http_test

// SPDX-License-Identifier: Apache-2.0
// Targeted HttpConnection tests: fields, timestamps, capture caps and gaps, limits, closes and
// malformed heads (the RFC 9112 table is in http_connection_test.cc).
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

const std::string kGet = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
const std::string k200 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

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

// Response bytes lost (a ring buffer overflow) while requests wait, then the close: their
// answers may be what was lost. Counted as lost responses, never reported unanswered.
TEST(HttpConnection, RequestsPendingAcrossAResponseGapAreLostNotUnanswered) {
  HttpConnection c;
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, kGet, kGet.size(), 1, &out);
  c.Feed(Direction::kRequest, kGet, kGet.size(), 2, &out);
  c.Gap(Direction::kResponse);  // the parser was idle: the responses may be in the gap
  c.Close(3, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(c.stats().lost_responses, 2u);
  // Without a gap, a request the server never answered is reported as such.
  HttpConnection d;
  d.Feed(Direction::kRequest, kGet, kGet.size(), 1, &out);
  d.Close(2, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].has_response);
  // After the gap, a response head found again: pairing resumes, a later unanswered request
  // is reported as such.
  HttpConnection e;
  out.clear();
  e.Feed(Direction::kRequest, kGet, kGet.size(), 1, &out);
  e.Gap(Direction::kResponse);
  e.Feed(Direction::kResponse, k200, k200.size(), 2, &out);
  e.Feed(Direction::kRequest, kGet, kGet.size(), 3, &out);
  e.Close(4, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].has_response);
  EXPECT_FALSE(out[1].has_response);
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

}  // namespace
}  // namespace redtap::http_test

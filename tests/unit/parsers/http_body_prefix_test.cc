// SPDX-License-Identifier: Apache-2.0
// Body prefixes (Request/Response::body_prefix): kept only for the requests a
// BodyCapturePolicy selects, bounded, chunked bodies decoded, holes end the prefix; every
// chunking of the input gives the same result.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parsers/http/connection.h"

namespace redtap::http_test {
namespace {

using http::Direction;
using http::HttpConnection;
using http::Transaction;

class PathPolicy : public http::BodyCapturePolicy {
 public:
  PathPolicy(std::string prefix, size_t n) : prefix_(std::move(prefix)), n_(n) {}
  size_t BodyBytesToKeep(const http::Request& r) const noexcept override {
    return r.target.starts_with(prefix_) ? n_ : 0;
  }

 private:
  std::string prefix_;
  size_t n_;
};

std::vector<Transaction> RunScript(const http::BodyCapturePolicy* policy, const std::string& req,
                                   const std::string& resp, size_t split = 0) {
  http::Limits l;
  l.body_policy = policy;
  HttpConnection c(l);
  std::vector<Transaction> out;
  if (split > 0 && split < req.size()) {
    c.Feed(Direction::kRequest, req.substr(0, split), split, 1, &out);
    c.Feed(Direction::kRequest, req.substr(split), req.size() - split, 2, &out);
  } else {
    c.Feed(Direction::kRequest, req, req.size(), 1, &out);
  }
  if (split > 0 && split < resp.size()) {
    c.Feed(Direction::kResponse, resp.substr(0, split), split, 3, &out);
    c.Feed(Direction::kResponse, resp.substr(split), resp.size() - split, 4, &out);
  } else {
    c.Feed(Direction::kResponse, resp, resp.size(), 3, &out);
  }
  c.Close(5, &out);
  return out;
}

const std::string kPay =
    "POST /api/payment/process HTTP/1.1\r\nContent-Length: 27\r\n\r\n"
    "{\"amount\":12.5,\"cur\":\"EUR\"}";
const std::string kDeclined =
    "HTTP/1.1 402 Payment Required\r\nTransfer-Encoding: chunked\r\n\r\n"
    "a\r\n{\"error\":{\r\n13\r\n\"code\":\"declined\"}}\r\n0\r\n\r\n";

TEST(BodyPrefix, OffByDefault) {
  auto out = RunScript(nullptr, kPay, kDeclined);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.body_size, 27u);
  EXPECT_TRUE(out[0].request.body_prefix.empty());
  EXPECT_TRUE(out[0].response.body_prefix.empty());
}

TEST(BodyPrefix, KeptForSelectedRequestsAtEverySplit) {
  PathPolicy policy("/api/payment", 1024);
  for (size_t split = 0; split < kDeclined.size(); ++split) {
    auto out = RunScript(&policy, kPay, kDeclined, split);
    ASSERT_EQ(out.size(), 1u) << split;
    EXPECT_EQ(out[0].request.body_prefix, "{\"amount\":12.5,\"cur\":\"EUR\"}") << split;
    EXPECT_EQ(out[0].response.body_prefix, "{\"error\":{\"code\":\"declined\"}}") << split;
    EXPECT_EQ(out[0].response.body_size, 29u) << split;
  }
  PathPolicy other("/api/cart", 1024);
  auto out = RunScript(&other, kPay, kDeclined);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].request.body_prefix.empty());
  EXPECT_TRUE(out[0].response.body_prefix.empty());
}

TEST(BodyPrefix, BoundedByThePolicy) {
  PathPolicy policy("/api/payment", 10);
  auto out = RunScript(&policy, kPay, kDeclined);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.body_prefix, "{\"amount\":");
  EXPECT_EQ(out[0].response.body_prefix, "{\"error\":{");
}

TEST(BodyPrefix, EofBodyAndKeepAliveReset) {
  PathPolicy policy("/p", 100);
  http::Limits l;
  l.body_policy = &policy;
  HttpConnection c(l);
  std::vector<Transaction> out;
  const std::string r1 = "POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  const std::string r2 = "POST /q HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz";
  c.Feed(Direction::kRequest, r1 + r2, r1.size() + r2.size(), 1, &out);
  const std::string a1 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  c.Feed(Direction::kResponse, a1, a1.size(), 2, &out);
  const std::string a2 = "HTTP/1.1 200 OK\r\n\r\nuntil-eof";
  c.Feed(Direction::kResponse, a2, a2.size(), 3, &out);
  c.Close(4, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].request.body_prefix, "abc");
  EXPECT_EQ(out[0].response.body_prefix, "ok");
  EXPECT_TRUE(out[1].request.body_prefix.empty());
  EXPECT_TRUE(out[1].response.body_prefix.empty());
}

TEST(BodyPrefix, UncapturedBytesEndThePrefix) {
  PathPolicy policy("/p", 1000);
  http::Limits l;
  l.body_policy = &policy;
  HttpConnection c(l);
  std::vector<Transaction> out;
  const std::string head = "POST /p HTTP/1.1\r\nContent-Length: 100\r\n\r\n";
  // 10 body bytes captured, 50 moved unseen, then the last 40 captured: the prefix stops.
  c.Feed(Direction::kRequest, head + std::string(10, 'a'), head.size() + 60, 1, &out);
  c.Feed(Direction::kRequest, std::string(40, 'b'), 40, 2, &out);
  const std::string a = "HTTP/1.1 204 No Content\r\n\r\n";
  c.Feed(Direction::kResponse, a, a.size(), 3, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].request.body_size, 100u);
  EXPECT_EQ(out[0].request.body_prefix, std::string(10, 'a'));
  EXPECT_GT(c.MemoryBytes(), 0u);
}

}  // namespace
}  // namespace redtap::http_test

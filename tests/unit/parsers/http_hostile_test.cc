// SPDX-License-Identifier: Apache-2.0
// Hostile input: random bytes, huge heads, huge chunk sizes, Content-Length overflow. No
// crash, and memory stays bounded (MemoryBytes()).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "parsers/http/connection.h"
#include "parsers/http/parser.h"

namespace redtap::http_test {
namespace {

using http::ConnState;
using http::Direction;
using http::HttpConnection;
using http::Limits;
using http::Transaction;

// Worst case held by one connection with default limits: two partial heads, the parsed
// heads and every pending request (each at most a head's worth of strings), with overhead.
size_t MemoryBound(const Limits& l) {
  return 64 * 1024 + 4 * l.max_head_bytes + l.max_pending_requests * (2 * l.max_head_bytes + 512);
}

std::string RandomBytes(std::mt19937_64* rng, size_t n, bool printable) {
  std::string s(n, '\0');
  for (char& c : s) {
    c = printable ? static_cast<char>(" \r\n:/;GETHPOS0123456789abcdef"[(*rng)() % 30])
                  : static_cast<char>((*rng)() & 0xff);
  }
  return s;
}

TEST(HttpHostile, RandomBytes) {
  std::mt19937_64 rng(12345);
  const Limits limits;
  for (int iter = 0; iter < 2000; ++iter) {
    HttpConnection c(limits);
    std::vector<Transaction> out;
    const bool printable = iter % 2 == 0;
    for (int k = 0; k < 20; ++k) {
      const Direction dir = rng() % 2 ? Direction::kRequest : Direction::kResponse;
      std::string data = RandomBytes(&rng, rng() % 300, printable);
      if (rng() % 4 == 0)
        data = (dir == Direction::kRequest ? "GET / HTTP/1.1\r\n" : "HTTP/1.1 200 OK\r\n") + data;
      const uint64_t wire = data.size() + (rng() % 8 == 0 ? rng() % 100000 : 0);
      c.Feed(dir, data, wire, static_cast<uint64_t>(k), &out);
      if (rng() % 16 == 0) c.Gap(dir);
      ASSERT_LE(c.MemoryBytes(), MemoryBound(limits));
    }
    c.Close(100, &out);
    EXPECT_LE(c.MemoryBytes(), MemoryBound(limits));
  }
}

TEST(HttpHostile, MutatedValidTraffic) {
  // Valid messages with random byte flips, fed in random splits.
  const std::string req =
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  const std::string resp =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  std::mt19937_64 rng(777);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string q = req, r = resp;
    for (int f = 0; f < 3; ++f) {
      q[rng() % q.size()] = static_cast<char>(rng() & 0xff);
      r[rng() % r.size()] = static_cast<char>(rng() & 0xff);
    }
    HttpConnection c;
    std::vector<Transaction> out;
    size_t qi = 0, ri = 0;
    while (qi < q.size() || ri < r.size()) {
      if (qi < q.size() && (ri >= r.size() || rng() % 2)) {
        const size_t n = std::min<size_t>(q.size() - qi, 1 + rng() % 40);
        c.Feed(Direction::kRequest, std::string_view(q).substr(qi, n), n, qi, &out);
        qi += n;
      } else {
        const size_t n = std::min<size_t>(r.size() - ri, 1 + rng() % 40);
        c.Feed(Direction::kResponse, std::string_view(r).substr(ri, n), n, ri, &out);
        ri += n;
      }
    }
    c.Close(1, &out);
    EXPECT_LE(out.size(), 3u);
  }
}

TEST(HttpHostile, HugeHead) {
  Limits limits;
  limits.max_head_bytes = 8 * 1024;
  HttpConnection c(limits);
  std::vector<Transaction> out;
  c.Feed(Direction::kRequest, "GET / HTTP/1.1\r\n", 16, 1, &out);
  const std::string line = "X-Filler: " + std::string(1000, 'a') + "\r\n";
  for (int i = 0; i < 1000 && c.state() == ConnState::kActive; ++i) {
    c.Feed(Direction::kRequest, line, line.size(), 2, &out);
    ASSERT_LE(c.MemoryBytes(), MemoryBound(limits));
  }
  EXPECT_EQ(c.stats().head_too_large, 1u);
  // Whole huge head in a single chunk.
  HttpConnection d(limits);
  std::string big = "HTTP/1.1 200 OK\r\n";
  while (big.size() < 1000000) big += line;
  d.Feed(Direction::kRequest, "GET / HTTP/1.1\r\n\r\n", 18, 1, &out);
  d.Feed(Direction::kResponse, big, big.size(), 2, &out);
  EXPECT_EQ(d.stats().head_too_large, 1u);
  EXPECT_EQ(d.stats().lost_responses, 1u);
  EXPECT_LE(d.MemoryBytes(), MemoryBound(limits));
}

TEST(HttpHostile, HugeChunkSizesAndLengths) {
  HttpConnection c;
  std::vector<Transaction> out;
  const std::string req = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  c.Feed(Direction::kRequest, req, req.size(), 1, &out);
  c.Feed(Direction::kRequest, "10000000000000000\r\n", 19, 2, &out);  // 2^64: too large
  EXPECT_EQ(c.stats().parse_errors, 1u);

  // A large but representable chunk counts unseen bytes without overflow.
  HttpConnection d;
  d.Feed(Direction::kRequest, req, req.size(), 1, &out);
  d.Feed(Direction::kRequest, "fffffffffffffff\r\n", 1ull << 62, 2, &out);
  EXPECT_EQ(d.stats().parse_errors, 0u);
  EXPECT_EQ(d.state(), ConnState::kActive);

  HttpConnection e;
  e.Feed(Direction::kRequest, "GET / HTTP/1.1\r\n\r\n", 18, 1, &out);
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n";
  e.Feed(Direction::kResponse, resp, resp.size(), 2, &out);
  EXPECT_EQ(e.stats().parse_errors, 1u);

  // Endless chunk extensions and trailers are bounded by max_head_bytes.
  HttpConnection f;
  f.Feed(Direction::kRequest, req, req.size(), 1, &out);
  f.Feed(Direction::kRequest, "1;", 2, 2, &out);
  const std::string ext(4096, 'e');
  for (int i = 0; i < 20; ++i) f.Feed(Direction::kRequest, ext, ext.size(), 3, &out);
  EXPECT_EQ(f.stats().parse_errors, 1u);
  EXPECT_LE(f.MemoryBytes(), MemoryBound(Limits{}));
}

TEST(HttpHostile, ManyPipelinedRequests) {
  const Limits limits;
  HttpConnection c(limits);
  std::vector<Transaction> out;
  std::string req =
      "GET /" + std::string(2000, 'p') + " HTTP/1.1\r\nX-H: " + std::string(2000, 'v') + "\r\n\r\n";
  for (int i = 0; i < 1000; ++i) {
    c.Feed(Direction::kRequest, req, req.size(), 1, &out);
    ASSERT_LE(c.MemoryBytes(), MemoryBound(limits));
  }
  EXPECT_EQ(c.stats().pending_overflow, 1000u - limits.max_pending_requests);
  c.Close(2, &out);
  EXPECT_EQ(out.size(), limits.max_pending_requests);
  EXPECT_LT(c.MemoryBytes(), 4096u);
}

TEST(HttpHostile, LooksLikeRejectsRandomBinary) {
  std::mt19937_64 rng(99);
  int req_hits = 0, resp_hits = 0;
  for (int i = 0; i < 200000; ++i) {
    const std::string s = RandomBytes(&rng, 16, false);
    req_hits += http::LooksLikeRequestStart(s);
    resp_hits += http::LooksLikeResponseStart(s);
  }
  EXPECT_LE(req_hits, 2);
  EXPECT_EQ(resp_hits, 0);
  // TLS records of every content type and version.
  for (int type = 20; type <= 24; ++type) {
    for (int minor = 0; minor <= 4; ++minor) {
      const std::string rec = {static_cast<char>(type), 3, static_cast<char>(minor), 0, 42};
      EXPECT_FALSE(http::LooksLikeRequestStart(rec));
      EXPECT_FALSE(http::LooksLikeResponseStart(rec));
    }
  }
}

}  // namespace
}  // namespace redtap::http_test

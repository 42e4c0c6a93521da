// SPDX-License-Identifier: Apache-2.0
// ns per small request + response through http::HttpConnection::Feed (keep-alive
// connection, one syscall per message).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "parsers/http/connection.h"

namespace redtap::http {
namespace {

constexpr std::string_view kRequest =
    "GET /api/products/42?ref=home HTTP/1.1\r\n"
    "Host: shop.example\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\r\n"
    "Accept: application/json\r\n"
    "Cookie: session=abc123\r\n"
    "\r\n";

constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 26\r\n"
    "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    "\r\n"
    "{\"id\":42,\"name\":\"a shoe\"}\n";

void BM_HttpConnectionFeed(benchmark::State& state) {
  HttpConnection conn;
  std::vector<Transaction> out;
  uint64_t ts = 1;
  for (auto _ : state) {
    conn.Feed(Direction::kRequest, kRequest, kRequest.size(), ts++, &out);
    conn.Feed(Direction::kResponse, kResponse, kResponse.size(), ts++, &out);
    if (out.size() >= 64) out.clear();
  }
  if (conn.state() != ConnState::kActive ||
      conn.stats().responses != static_cast<uint64_t>(state.iterations())) {
    state.SkipWithError("parser did not pair every transaction");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(kRequest.size() + kResponse.size()));
}
BENCHMARK(BM_HttpConnectionFeed);

void BM_HttpConnectionFeedSplit(benchmark::State& state) {
  // The same exchange arriving in 3 pieces per direction (partial heads).
  HttpConnection conn;
  std::vector<Transaction> out;
  uint64_t ts = 1;
  for (auto _ : state) {
    for (std::string_view msg : {kRequest, kResponse}) {
      const Direction dir = msg == kRequest ? Direction::kRequest : Direction::kResponse;
      const size_t a = msg.size() / 3;
      const size_t b = 2 * msg.size() / 3;
      conn.Feed(dir, msg.substr(0, a), a, ts++, &out);
      conn.Feed(dir, msg.substr(a, b - a), b - a, ts++, &out);
      conn.Feed(dir, msg.substr(b), msg.size() - b, ts++, &out);
    }
    if (out.size() >= 64) out.clear();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HttpConnectionFeedSplit);

}  // namespace
}  // namespace redtap::http

// SPDX-License-Identifier: Apache-2.0
// The HTTP API (--http): each module registers its GET routes (/metrics, /health, /ready,
// /api/v1/*) before Start.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "userspace/common/status.h"

namespace httplib {
class Server;
}

namespace redtap {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;
  HttpServer();
  ~HttpServer();

  /// Registers a GET handler (before Start).
  void Get(const std::string& path, Handler h);
  /// Binds `listen` ("127.0.0.1:9464", "[::1]:9464", ":9464" = all addresses) and serves on
  /// a background thread. A bind failure is returned, not logged.
  Status Start(const std::string& listen);
  void Stop();

 private:
  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
};

/// Splits "host:port" / "[v6]:port". Returns false when malformed.
bool SplitHostPort(const std::string& s, std::string* host, int* port);

}  // namespace redtap

// SPDX-License-Identifier: Apache-2.0
#include "userspace/api/http_server.h"

#include <httplib.h>

#include <charconv>

namespace redtap {

bool SplitHostPort(const std::string& s, std::string* host, int* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  std::string h = s.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) h = "0.0.0.0";
  int p = 0;
  const char* b = s.data() + colon + 1;
  const char* e = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(b, e, p);
  if (ec != std::errc() || ptr != e || p < 0 || p > 65535) return false;
  *host = h;
  *port = p;
  return true;
}

HttpServer::HttpServer() : svr_(std::make_unique<httplib::Server>()) {
  svr_->new_task_queue = [] { return new httplib::ThreadPool(2); };
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Get(const std::string& path, Handler h) {
  svr_->Get(path, [h](const httplib::Request&, httplib::Response& res) {
    HttpResponse r = h();
    res.status = r.status;
    res.set_content(r.body, r.content_type.c_str());
  });
}

Status HttpServer::Start(const std::string& listen) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(listen, &host, &port))
    return Status::Error("--http " + listen + ": expected HOST:PORT (e.g. 127.0.0.1:9464)");
  if (!svr_->bind_to_port(host.c_str(), port))
    return Status::Error("--http " + listen +
                         ": cannot listen there (address in use, or not "
                         "an address of this host)");
  thread_ = std::thread([this] { svr_->listen_after_bind(); });
  return Status::Ok();
}

void HttpServer::Stop() {
  if (svr_) svr_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace redtap

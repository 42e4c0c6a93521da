// SPDX-License-Identifier: Apache-2.0
#include "userspace/top/top.h"

#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>

#include "userspace/api/http_server.h"

namespace redtap {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

double Num(const nlohmann::json& e, const char* k) {
  auto it = e.find(k);
  return it != e.end() && it->is_number() ? it->get<double>() : -1;
}

std::string Str(const nlohmann::json& e, const char* k) {
  auto it = e.find(k);
  return it != e.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Ms(double v) {
  if (v < 0) return "-";
  char b[32];
  std::snprintf(b, sizeof(b), v < 10 ? "%.2f" : v < 1000 ? "%.1f" : "%.0f", v);
  return b;
}

std::string Fit(std::string s, size_t w) {
  if (s.size() > w) s = s.substr(0, w - 1) + "~";
  return s;
}

// Restores the terminal on exit.
struct RawTerminal {
  termios saved{};
  bool active = false;
  void Enter() {
    if (tcgetattr(STDIN_FILENO, &saved) != 0) return;
    termios raw = saved;
    raw.c_lflag &= ~(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  }
};

}  // namespace

std::string RenderTopTable(const nlohmann::json& endpoints, const nlohmann::json& listeners,
                           const std::string& sort, bool color, int width, int max_rows) {
  // Fullest listener per service: saturation read beside latency.
  std::map<std::string, std::pair<double, std::string>> backlog;
  if (listeners.is_array()) {
    for (const auto& l : listeners) {
      std::string svc = Str(l, "service");
      double fill = Num(l, "fill_ratio");
      std::string text = std::to_string((long)std::max(0.0, Num(l, "backlog"))) + "/" +
                         std::to_string((long)std::max(0.0, Num(l, "backlog_max")));
      auto it = backlog.find(svc);
      if (it == backlog.end() || fill > it->second.first) backlog[svc] = {fill, text};
    }
  }
  std::vector<const nlohmann::json*> rows;
  if (endpoints.is_array())
    for (const auto& e : endpoints) rows.push_back(&e);
  auto key = [&](const nlohmann::json* e) {
    if (sort == "errors") return Num(*e, "error_rate_1m") * 1e9 + Num(*e, "errors_total");
    if (sort == "p99") return Num(*e, "p99_ms");
    return Num(*e, "rps_1m");
  };
  std::stable_sort(rows.begin(), rows.end(),
                   [&](const auto* a, const auto* b) { return key(a) > key(b); });
  int route_w = std::max(16, width - 106);
  std::string out;
  char line[1024];
  std::snprintf(line, sizeof(line), "%-18s %-6s %-7s %-*s %9s %7s %9s %9s %9s %9s %10s %9s\n",
                "SERVICE", "KIND", "METHOD", route_w, "ROUTE", "RPS(1m)", "ERR%", "P50ms", "P95ms",
                "P99ms", "4xx", "REQUESTS", "BACKLOG");
  out += color ? "\033[1m" + std::string(line) + "\033[0m" : line;
  int n = 0;
  for (const auto* e : rows) {
    if (max_rows > 0 && n >= max_rows) break;
    std::string route = Str(*e, "route");
    if (Str(*e, "kind") == "client" && e->contains("server_address"))
      route = Str(*e, "server_address") + ":" + std::to_string((int)Num(*e, "server_port")) + " " +
              route;
    double err = Num(*e, "error_rate_1m");
    std::string queue = "-";
    bool queue_full = false;
    if (Str(*e, "kind") == "server") {
      auto b = backlog.find(Str(*e, "service"));
      if (b != backlog.end()) {
        queue = b->second.second;
        queue_full = b->second.first >= 1.0;
      }
    }
    std::snprintf(line, sizeof(line),
                  "%-18s %-6s %-7s %-*s %9.1f %6.1f%% %9s %9s %9s %9.0f %10.0f %9s\n",
                  Fit(Str(*e, "service"), 18).c_str(), Str(*e, "kind").c_str(),
                  Fit(Str(*e, "method"), 7).c_str(), route_w, Fit(route, route_w).c_str(),
                  std::max(0.0, Num(*e, "rps_1m")), std::max(0.0, err) * 100,
                  Ms(Num(*e, "p50_ms")).c_str(), Ms(Num(*e, "p95_ms")).c_str(),
                  Ms(Num(*e, "p99_ms")).c_str(), std::max(0.0, Num(*e, "client_errors_total")),
                  std::max(0.0, Num(*e, "requests_total")), queue.c_str());
    bool bad = err > 0 || Num(*e, "errors_total") > 0 || queue_full;
    out += (color && bad) ? "\033[31m" + std::string(line) + "\033[0m" : line;
    n++;
  }
  if (rows.empty()) out += "(no HTTP transactions seen yet)\n";
  return out;
}

std::string RenderFunnel(const nlohmann::json& funnel) {
  if (!funnel.is_object() || !funnel.contains("steps") || !funnel["steps"].is_array() ||
      funnel["steps"].empty())
    return "";
  std::string out = "\nfunnel " + Str(funnel, "funnel");
  double overall = Num(funnel, "overall_conversion");
  if (overall >= 0) {
    char b[64];
    std::snprintf(b, sizeof(b), " (overall conversion %.1f%%)", overall * 100);
    out += b;
  }
  out += "\n";
  char line[256];
  std::snprintf(line, sizeof(line), "  %-16s %10s %10s %10s %11s\n", "STEP", "ATTEMPTS", "SUCCESS",
                "FAILED", "CONVERSION");
  out += line;
  for (const auto& st : funnel["steps"]) {
    double conv = Num(st, "conversion");
    char c[32] = "-";
    if (conv >= 0) std::snprintf(c, sizeof(c), "%.1f%%", conv * 100);
    std::snprintf(line, sizeof(line), "  %-16s %10.0f %10.0f %10.0f %11s\n",
                  Fit(Str(st, "step"), 16).c_str(), std::max(0.0, Num(st, "attempts")),
                  std::max(0.0, Num(st, "success")), std::max(0.0, Num(st, "failure")), c);
    out += line;
  }
  return out;
}

std::string RenderDatabases(const nlohmann::json& databases, bool color, int width, int max_rows) {
  if (!databases.is_array() || databases.empty()) return "";
  std::vector<const nlohmann::json*> rows;
  for (const auto& d : databases) rows.push_back(&d);
  std::stable_sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) {
    return Num(*a, "ops_1m") * 1e9 + Num(*a, "operations_total") >
           Num(*b, "ops_1m") * 1e9 + Num(*b, "operations_total");
  });
  const int what_w = std::max(16, width - 116);
  std::string out = "\n";
  char line[1024];
  std::snprintf(line, sizeof(line), "%-18s %-10s %-*s %-21s %9s %7s %9s %9s %9s %6s %10s\n",
                "SERVICE", "DB", what_w, "OPERATION", "SERVER", "OPS(1m)", "ERR%", "P50ms", "P95ms",
                "P99ms", "SLOW", "OPERATIONS");
  out += color ? "\033[1m" + std::string(line) + "\033[0m" : line;
  int n = 0;
  for (const auto* d : rows) {
    if (max_rows > 0 && n >= max_rows) break;
    std::string what = Str(*d, "operation");
    if (!Str(*d, "collection").empty()) what += " " + Str(*d, "collection");
    if (!Str(*d, "error_type").empty()) what += " [" + Str(*d, "error_type") + "]";
    const std::string server =
        Str(*d, "server_address") + ":" + std::to_string((int)Num(*d, "server_port"));
    const double err = Num(*d, "error_rate_1m");
    std::snprintf(
        line, sizeof(line), "%-18s %-10s %-*s %-21s %9.1f %6.1f%% %9s %9s %9s %6.0f %10.0f\n",
        Fit(Str(*d, "service"), 18).c_str(), Fit(Str(*d, "db_system"), 10).c_str(), what_w,
        Fit(what, what_w).c_str(), Fit(server, 21).c_str(), std::max(0.0, Num(*d, "ops_1m")),
        std::max(0.0, err) * 100, Ms(Num(*d, "p50_ms")).c_str(), Ms(Num(*d, "p95_ms")).c_str(),
        Ms(Num(*d, "p99_ms")).c_str(), std::max(0.0, Num(*d, "slow_total")),
        std::max(0.0, Num(*d, "operations_total")));
    const bool bad = err > 0 || Num(*d, "failed_total") > 0 || !Str(*d, "error_type").empty();
    out += (color && bad) ? "\033[31m" + std::string(line) + "\033[0m" : line;
    n++;
  }
  return out;
}

std::string RenderAlerts(const nlohmann::json& alerts) {
  if (!alerts.is_object() || !alerts.contains("data") || !alerts["data"].is_object()) return "";
  const auto& list = alerts["data"].value("alerts", nlohmann::json::array());
  std::string out;
  size_t firing = 0;
  for (const auto& a : list) {
    if (!a.is_object() || a.value("state", "") != "firing") continue;
    firing++;
    const auto& labels = a.value("labels", nlohmann::json::object());
    std::string line = "  " + labels.value("severity", std::string("?")) + "  " +
                       labels.value("alertname", std::string("?"));
    std::string sel;
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      if (it.key() == "alertname" || it.key() == "severity" || it.key() == "signal" ||
          !it.value().is_string())
        continue;
      sel += (sel.empty() ? "" : ",") + it.key() + "=" + it.value().get<std::string>();
    }
    if (!sel.empty()) line += "{" + sel + "}";
    const auto& ann = a.value("annotations", nlohmann::json::object());
    if (ann.contains("summary") && ann["summary"].is_string())
      line += ": " + ann["summary"].get<std::string>();
    else
      line += " = " + a.value("value", std::string("?"));
    out += Fit(line, 200) + "\n";
  }
  if (!firing) return "";
  return "FIRING ALERTS (" + std::to_string(firing) + ")\n" + out + "\n";
}

namespace {

// One screen from the agent's API: the endpoints table, the fullest listeners, the databases,
// the funnel.
// False (and `*body` says why) when the agent cannot be read.
bool FetchScreen(httplib::Client& cli, const TopOptions& opt, const std::string& sort, bool tty,
                 std::string* body) {
  auto res = cli.Get("/api/v1/endpoints");
  if (!res) {
    *body = "redtap top: cannot reach the agent at http://" + opt.http + "/api/v1/endpoints (" +
            httplib::to_string(res.error()) + "): is `redtap run` running with --http " + opt.http +
            "?\n";
    return false;
  }
  if (res->status != 200) {
    *body = "redtap top: agent answered HTTP " + std::to_string(res->status) + "\n";
    return false;
  }
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  nlohmann::json listeners;
  if (auto lr = cli.Get("/api/v1/listeners"); lr && lr->status == 200)
    listeners = nlohmann::json::parse(lr->body, nullptr, false);
  int width = 160, rows = opt.limit;
  winsize ws{};
  if (tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    width = ws.ws_col;
    if (rows == 0) rows = std::max(1, ws.ws_row - 4);
  }
  *body = "";
  if (auto ar = cli.Get("/api/v1/alerts"); ar && ar->status == 200)
    *body = RenderAlerts(nlohmann::json::parse(ar->body, nullptr, false));
  *body += RenderTopTable(j, listeners, sort, tty, width, rows);
  if (auto dr = cli.Get("/api/v1/databases"); dr && dr->status == 200)
    *body +=
        RenderDatabases(nlohmann::json::parse(dr->body, nullptr, false), tty, width, opt.limit);
  if (auto fr = cli.Get("/api/v1/funnel"); fr && fr->status == 200)
    *body += RenderFunnel(nlohmann::json::parse(fr->body, nullptr, false));
  return true;
}

// Waits for the next refresh, reacting to keys when interactive (q, r, e, p).
void WaitForRefresh(const TopOptions& opt, const RawTerminal& term, std::string* sort) {
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int>(opt.interval_s * 1000));
  while (!g_stop && std::chrono::steady_clock::now() < until) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (term.active && poll(&p, 1, 100) > 0) {
      char c = 0;
      if (read(STDIN_FILENO, &c, 1) == 1) {
        if (c == 'q')
          g_stop = true;
        else if (c == 'r')
          *sort = "rate";
        else if (c == 'e')
          *sort = "errors";
        else if (c == 'p')
          *sort = "p99";
        break;
      }
    } else if (!term.active) {
      usleep(100 * 1000);
    }
  }
}

}  // namespace

int RunTop(const TopOptions& opt) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(opt.http, &host, &port)) {
    std::fprintf(stderr, "redtap top: --http %s: expected HOST:PORT\n", opt.http.c_str());
    return 2;
  }
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  bool tty = isatty(STDOUT_FILENO);
  RawTerminal term;
  if (tty && !opt.once && isatty(STDIN_FILENO)) term.Enter();
  httplib::Client cli(host, port);
  cli.set_connection_timeout(2);
  cli.set_read_timeout(5);
  std::string sort = opt.sort;
  while (!g_stop) {
    std::string body;
    if (!FetchScreen(cli, opt, sort, tty, &body) && opt.once) {
      std::fputs(body.c_str(), stderr);
      return 1;
    }
    if (tty && !opt.once) {
      std::time_t now = std::time(nullptr);
      char ts[64];
      std::strftime(ts, sizeof(ts), "%H:%M:%S", std::localtime(&now));
      std::printf(
          "\033[H\033[2Jredtap top — %s — sort: %s (r: rate, e: errors, p: p99, q: quit)\n%s", ts,
          sort.c_str(), body.c_str());
    } else {
      std::fputs(body.c_str(), stdout);
      if (!opt.once) std::fputs("\n", stdout);
    }
    std::fflush(stdout);
    if (opt.once) return 0;
    WaitForRefresh(opt, term, &sort);
  }
  return 0;
}

}  // namespace redtap

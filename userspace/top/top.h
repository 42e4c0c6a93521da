// SPDX-License-Identifier: Apache-2.0
// `redtap top`: a live per-endpoint table read from the agent's /api/v1/endpoints.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace redtap {

struct TopOptions {
  std::string http = "127.0.0.1:9464";  // the agent's --http address
  std::string sort = "rate";            // rate | errors | p99
  double interval_s = 1.0;
  bool once = false;  // print one table and exit
  int limit = 0;      // rows shown (0 = fit the terminal, or all when not a tty)
};

/// Renders the endpoints array as a table (no ANSI codes when `color` is false). `listeners`
/// (the /api/v1/listeners array, may be null) adds each service's accept-queue fill next to
/// its server rows: the fullest of its listening sockets, as "backlog/max".
std::string RenderTopTable(const nlohmann::json& endpoints, const nlohmann::json& listeners,
                           const std::string& sort, bool color, int width, int max_rows);

/// Renders /api/v1/funnel (may be null or disabled) as one line per step: attempts,
/// successes and the conversion from the previous step. Empty when there is no funnel.
std::string RenderFunnel(const nlohmann::json& funnel);
/// Renders /api/v1/databases as a table below the endpoints (busiest first, at most
/// `max_rows` rows, 0 = all): service, system, operation, collection, server, rate, error
/// rate, latency quantiles, slow count. Empty when no database operation was seen.
std::string RenderDatabases(const nlohmann::json& databases, bool color, int width, int max_rows);
/// Renders /api/v1/alerts: the firing alerts, one line each (severity, name, labels, summary),
/// or "" when none fires.
std::string RenderAlerts(const nlohmann::json& alerts);

/// Runs the loop; returns the exit code.
int RunTop(const TopOptions& opt);

}  // namespace redtap

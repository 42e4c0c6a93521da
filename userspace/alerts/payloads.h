// SPDX-License-Identifier: Apache-2.0
// What each channel type receives for an alert, as its service documents it. Pure functions:
// the notifier sends them, the unit tests pin them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "userspace/alerts/engine.h"

namespace redtap::alerts {

/// PagerDuty Events API v2: {"routing_key", "event_action": trigger|resolve, "dedup_key",
/// "payload": {"summary", "severity", "source", "timestamp", "custom_details"}} (resolve: no
/// payload).
std::string PagerDutyBody(const Alert& a, const std::string& routing_key,
                          const std::string& source);

/// Slack incoming webhook: {"text": ...} with a colour-coded attachment per alert.
std::string SlackBody(const Alert& a);

/// Alertmanager's webhook_config JSON (version 4), one alert, `receiver` the channel name.
std::string WebhookBody(const Alert& a, const std::string& receiver);

/// Alertmanager POST /api/v2/alerts: [{"labels", "annotations", "startsAt", "endsAt",
/// "generatorURL"}]. Firing alerts end at `ends_at_ms` (re-sent before then); resolved ones at
/// their end.
std::string AlertmanagerBody(const std::vector<Alert>& alerts, int64_t ends_at_ms);

/// A text/plain e-mail (RFC 5322 headers + body), CRLF line ends.
std::string EmailMessage(const Alert& a, const std::string& from,
                         const std::vector<std::string>& to, int64_t now_ms,
                         const std::string& host);

/// "[FIRING] Name (critical): summary" / "[RESOLVED] ...".
std::string Headline(const Alert& a);

}  // namespace redtap::alerts

// SPDX-License-Identifier: Apache-2.0
// An alert's transition (firing, resolved) as a type:"alert" NDJSON event and as one line of
// text (logs, Slack, e-mail subjects).
#pragma once

#include <string>

#include "userspace/alerts/engine.h"

namespace redtap::alerts {

/// {"timestamp", "level" (ERROR critical, WARN warning, INFO info and resolved), "type":"alert",
/// "message", "alert.name", "alert.severity", "alert.state", "alert.value", "alert.active_at",
/// "alert.fingerprint", "alert.labels.<name>" per label, "alert.<annotation>" per annotation}.
std::string FormatAlertEvent(const Alert& a);

/// "summary" when the rule has one, else "<signal> = <value> {labels}".
std::string Describe(const Alert& a);

}  // namespace redtap::alerts

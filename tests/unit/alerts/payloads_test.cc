// SPDX-License-Identifier: Apache-2.0
// What each channel receives: the fields its service reads, and no secret where none belongs.
#include "userspace/alerts/payloads.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "userspace/alerts/alert_event.h"

namespace redtap::alerts {
namespace {

using Json = nlohmann::json;

struct Fixture {
  config::AlertRule rule;
  Alert alert;
  Fixture() {
    rule.name = "PaymentSuccessRateCritical";
    rule.severity = config::AlertSeverity::kCritical;
    rule.signal = config::AlertSignal::kPaymentSuccessRate;
    alert.rule = &rule;
    alert.labels = {{"alertname", rule.name}, {"severity", "critical"}, {"gateway", "stripe"}};
    alert.annotations = {{"summary", "stripe below 95%"}, {"runbook_url", "runbooks/P.md"}};
    alert.state = AlertState::kFiring;
    alert.value = 0.8;
    alert.active_at_ms = 1'800'000'000'000;
    alert.fired_at_ms = 1'800'000'015'000;
    alert.fingerprint = "0123456789abcdef";
  }
  Alert Resolved() const {
    Alert a = alert;
    a.state = AlertState::kResolved;
    a.ended_at_ms = 1'800'000'300'000;
    return a;
  }
};

TEST(PayloadsTest, PagerDutyTriggerAndResolve) {
  Fixture f;
  Json t = Json::parse(PagerDutyBody(f.alert, "R0UTINGKEY", "node-1"));
  EXPECT_EQ(t["routing_key"], "R0UTINGKEY");
  EXPECT_EQ(t["event_action"], "trigger");
  EXPECT_EQ(t["dedup_key"], "0123456789abcdef");
  EXPECT_EQ(t["payload"]["severity"], "critical");
  EXPECT_EQ(t["payload"]["source"], "node-1");
  EXPECT_EQ(t["payload"]["summary"],
            "[FIRING] PaymentSuccessRateCritical (critical): stripe below 95%");
  EXPECT_EQ(t["payload"]["custom_details"]["labels"]["gateway"], "stripe");
  EXPECT_EQ(t["links"][0]["href"], "runbooks/P.md");
  Json r = Json::parse(PagerDutyBody(f.Resolved(), "R0UTINGKEY", "node-1"));
  EXPECT_EQ(r["event_action"], "resolve");
  EXPECT_EQ(r["dedup_key"], t["dedup_key"]);
  EXPECT_FALSE(r.contains("payload"));
}

TEST(PayloadsTest, WebhookIsAlertmanagerVersion4) {
  Fixture f;
  Json j = Json::parse(WebhookBody(f.alert, "sms"));
  EXPECT_EQ(j["version"], "4");
  EXPECT_EQ(j["status"], "firing");
  EXPECT_EQ(j["receiver"], "sms");
  EXPECT_EQ(j["groupLabels"]["alertname"], "PaymentSuccessRateCritical");
  ASSERT_EQ(j["alerts"].size(), 1u);
  EXPECT_EQ(j["alerts"][0]["labels"]["gateway"], "stripe");
  EXPECT_EQ(j["alerts"][0]["startsAt"], "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(j["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
  Json r = Json::parse(WebhookBody(f.Resolved(), "sms"));
  EXPECT_EQ(r["status"], "resolved");
  EXPECT_EQ(r["alerts"][0]["endsAt"], "2027-01-15T08:05:00.000Z");
}

TEST(PayloadsTest, AlertmanagerApiAndSlack) {
  Fixture f;
  Json am = Json::parse(AlertmanagerBody({f.alert, f.Resolved()}, 1'800'000'240'000));
  ASSERT_EQ(am.size(), 2u);
  EXPECT_EQ(am[0]["endsAt"], "2027-01-15T08:04:00.000Z");  // re-sent before it expires
  EXPECT_EQ(am[1]["endsAt"], "2027-01-15T08:05:00.000Z");
  EXPECT_EQ(am[0]["labels"]["severity"], "critical");
  Json s = Json::parse(SlackBody(f.alert));
  EXPECT_EQ(s["attachments"][0]["color"], "danger");
  EXPECT_NE(s["text"].get<std::string>().find("[FIRING]"), std::string::npos);
  EXPECT_EQ(Json::parse(SlackBody(f.Resolved()))["attachments"][0]["color"], "good");
}

TEST(PayloadsTest, EmailHeadersAreOneLineEach) {
  Fixture f;
  f.alert.annotations["summary"] = "two\r\nlines";
  const std::string m =
      EmailMessage(f.alert, "redtap@shop.example", {"a@x", "b@y"}, 1'800'000'015'000, "node-1");
  EXPECT_NE(m.find("From: redtap@shop.example\r\n"), std::string::npos);
  EXPECT_NE(m.find("To: a@x, b@y\r\n"), std::string::npos);
  EXPECT_NE(m.find("Subject: [FIRING] PaymentSuccessRateCritical (critical): two  lines\r\n"),
            std::string::npos);
  EXPECT_NE(m.find("Date: Fri, 15 Jan 2027 08:00:15 +0000\r\n"), std::string::npos);
  EXPECT_EQ(m.find("\n\n"), std::string::npos);  // CRLF only
}

TEST(PayloadsTest, AlertEvent) {
  Fixture f;
  Json e = Json::parse(FormatAlertEvent(f.alert));
  EXPECT_EQ(e["type"], "alert");
  EXPECT_EQ(e["level"], "ERROR");
  EXPECT_EQ(e["alert.name"], "PaymentSuccessRateCritical");
  EXPECT_EQ(e["alert.state"], "firing");
  EXPECT_EQ(e["alert.labels.gateway"], "stripe");
  EXPECT_EQ(e["alert.summary"], "stripe below 95%");
  EXPECT_DOUBLE_EQ(e["alert.value"].get<double>(), 0.8);
  EXPECT_EQ(e["timestamp"], "2027-01-15T08:00:15.000000Z");
  Json r = Json::parse(FormatAlertEvent(f.Resolved()));
  EXPECT_EQ(r["level"], "INFO");
  EXPECT_EQ(r["alert.state"], "resolved");
}

}  // namespace
}  // namespace redtap::alerts

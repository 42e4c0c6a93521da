#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Alerts end to end (issue 15), on the demo shop's real traffic: a healthy phase, a burst of
payment declines at the (local, HTTPS) gateway, then recovery. Two evaluators watch it:

- the agent itself: PaymentSuccessRateCritical fires and reaches the PagerDuty-shaped, SMS
  (webhook) and Slack-shaped receivers of the critical route and the real Alertmanager's API,
  never the warning ones (the warning of the same signal and gateway is inhibited), then
  resolves and notifies the same
  receivers; an info rule reaches a real SMTP server (aiosmtpd). /api/v1/alerts, redtap_alerts,
  type:"alert" events and redtap_alert_notifications_total say the same; the routing key and
  the Slack URL (secrets read from files) appear nowhere.
- a real Prometheus scraping the agent with `redtap rules prometheus` fires the same alert,
  and a real Alertmanager with `redtap rules alertmanager` routes it to its own receivers;
  every query of the Grafana dashboards (deploy/grafana) returns data from that Prometheus.
Receivers are HTTP and SMTP sinks on 127.0.0.1 started by this test. A second test drives
error_spike and latency_p95 with a backend whose error share and latency it sets."""
import glob
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import harness

ROOT = os.path.abspath(os.path.join(harness.HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "demo.d"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "pylib"))
import demo  # noqa: E402
from loopback import Procs, free_port, wait_port  # noqa: E402

REDTAP = harness.find_redtap()
ROUTING_KEY = "R0UTINGKEYsecret0123456789abcdef"
SLACK_TOKEN = "T000/B000/SlackSecretToken"

# The receivers run in this test's process (python3): in production they are remote. The agent
# never captures its own calls; the receivers' side, and Alertmanager's calls to them (a plain
# HTTP Slack URL carries its token in the path), are left out of the capture.
CONFIG = """
filter: {{exclude_processes: [python3, prometheus-aler]}}
services: [{{name: shop, process: shop}}]
routes: {{patterns: [{{pattern: "/api/orders/{{id}}/confirmation"}}]}}
ecommerce:
  services: [shop]
  funnel:
    name: checkout
    steps:
      - {{name: cart, method: POST, route: /api/cart/add}}
      - {{name: checkout, method: POST, route: /api/checkout}}
      - {{name: payment, method: POST, route: /api/payment/process}}
  payments:
    endpoints: [{{method: POST, route: /api/payment/process}}]
    gateways: [{{name: stripe, hosts: [api.stripe.com]}}]
    fields: {{amount: request.amount, currency: request.currency, reason: response.error.code}}
  error_categories:
    - {{name: payment, routes: ["/api/payment/*"], statuses: [402, 502, 504]}}
    - {{name: inventory, statuses: [409]}}
    - {{name: session, statuses: [401, 419, 440]}}
    - {{name: validation, statuses: [400, 422]}}
    - {{name: integration, kind: client, statuses: ["5xx"]}}
alerts:
  pools: [{{name: stripe-conns, service: shop, server_port: {gw}, size: 20}}]
  evaluation_interval: 1s
  repeat_interval: 1h
  rules:
    - {{name: PaymentSuccessRateCritical, severity: critical, signal: payment_success_rate,
       by: [gateway], window: 20s, below: 0.95, min_events: 10,
       annotations: {{summary: "Payment success rate of {{{{ $labels.gateway }}}} below 95%"}}}}
    - {{name: PaymentSuccessRateWarning, severity: warning, signal: payment_success_rate,
       by: [gateway], window: 20s, below: 0.98, min_events: 10, for: 8s}}
    - {{name: ShopTraffic, severity: info, signal: error_rate, service: shop,
       by: [service_name], window: 20s, below: 1, min_events: 5}}
  channels:
    - {{name: pagerduty, type: pagerduty, routing_key_file: {dir}/pagerduty.key,
       url: "http://127.0.0.1:{sink}/{who}/pd"}}
    - {{name: sms, type: webhook, url: "http://127.0.0.1:{sink}/{who}/sms"}}
    - {{name: slack-incidents, type: slack, url_file: {dir}/slack-incidents.url}}
    - {{name: slack-monitoring, type: slack, url: "http://127.0.0.1:{sink}/{who}/slack-monitoring"}}
    - {{name: email-tech, type: email, smtp: "127.0.0.1:{smtp}", from: redtap@shop.example,
       to: [tech@shop.example]}}
    - {{name: alertmanager, type: alertmanager, url: "http://127.0.0.1:{am}"}}
  routes:
    critical: [pagerduty, sms, slack-incidents, alertmanager]
    warning: [slack-monitoring]
    info: [email-tech]
"""


class Sink:
    """An HTTP server that records every POST (path, JSON body)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.posts = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.lock:
                    sink.posts.append((self.path, body.decode("utf-8", "replace")))
                self.send_response(202 if self.path.endswith("/pd") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path):
        with self.lock:
            return [json.loads(b) for p, b in self.posts if p == path]

    def paths(self):
        with self.lock:
            return [p for p, _ in self.posts]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


def wait_for(what, fn, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out ({timeout}s) waiting for {what} (last: {last})")


def agent_alerts(port, state="firing"):
    data = json.loads(get(port, "/api/v1/alerts"))["data"]["alerts"]
    return {(a["labels"]["alertname"], a["labels"].get("gateway", "")) for a in data
            if a["state"] == state}


def prom_alerts(port):
    data = json.loads(get(port, "/api/v1/alerts"))["data"]["alerts"]
    return {(a["labels"]["alertname"], a["labels"].get("gateway", "")) for a in data
            if a["state"] == "firing"}


class AlertsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="redtap-alerts-")
        os.chmod(self.dir, 0o755)
        self.procs = Procs()
        self.sink = Sink()
        self.smtp_port = free_port()
        self.am_port, self.prom_port = free_port(), free_port()
        self.smtp_log = os.path.join(self.dir, "smtp.log")
        with open(os.path.join(self.dir, "pagerduty.key"), "w") as f:
            f.write(ROUTING_KEY + "\n")
        # One Slack URL file per evaluator, so each delivery says who made it.
        for who in ("agent", "am"):
            with open(os.path.join(self.dir, f"slack-{who}.url"), "w") as f:
                f.write(f"http://127.0.0.1:{self.sink.port}/{who}/slack-incidents/{SLACK_TOKEN}\n")
        self.shop = demo.Shop(self.dir, decline_rate=0.0, seed=5)  # started by the test
        self.configs = {}
        for who in ("agent", "am"):
            text = CONFIG.format(dir=self.dir, sink=self.sink.port, smtp=self.smtp_port, who=who,
                                 am=self.am_port, gw=self.shop.gateway_port)
            text = text.replace(f"{self.dir}/slack-incidents.url", f"{self.dir}/slack-{who}.url")
            path = os.path.join(self.dir, f"{who}.yaml")
            with open(path, "w") as f:
                f.write(text)
            self.configs[who] = path

    def tearDown(self):
        if self.shop:
            self.shop.stop()
        self.procs.stop_all()
        self.sink.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_fleet(self, agent_port):
        """Prometheus (1 s scrapes, the generated rules) and Alertmanager (the generated
        config, group waits shortened for the test)."""
        rules = subprocess.run([REDTAP, "rules", "prometheus", "--config", self.configs["agent"]],
                               check=True, capture_output=True, text=True).stdout
        with open(os.path.join(self.dir, "rules.yml"), "w") as f:
            f.write(rules)
        am = subprocess.run([REDTAP, "rules", "alertmanager", "--config", self.configs["am"]],
                            check=True, capture_output=True, text=True).stdout
        am = am.replace("group_wait: 30s", "group_wait: 1s").replace(
            "group_interval: 5m", "group_interval: 1s")
        am_conf = os.path.join(self.dir, "alertmanager.yml")
        with open(am_conf, "w") as f:
            f.write(am)
        log = open(os.path.join(self.dir, "alertmanager.log"), "w")
        self.procs.start(["/usr/bin/prometheus-alertmanager", f"--config.file={am_conf}",
                          f"--storage.path={self.dir}/am-data",
                          f"--web.listen-address=127.0.0.1:{self.am_port}",
                          "--cluster.listen-address="], stdout=log, stderr=log)
        prom_conf = os.path.join(self.dir, "prometheus.yml")
        with open(prom_conf, "w") as f:
            f.write(f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{self.dir}/rules.yml]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{self.am_port}"]}}]}}]
scrape_configs:
  - job_name: redtap
    static_configs: [{{targets: ["127.0.0.1:{agent_port}"]}}]
""")
        log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.procs.start(["prometheus", f"--config.file={prom_conf}",
                          f"--storage.tsdb.path={self.dir}/prom-data",
                          f"--web.listen-address=127.0.0.1:{self.prom_port}"],
                         stdout=log, stderr=log)
        wait_port(self.am_port, timeout=30)
        wait_port(self.prom_port, timeout=30)

    def check_dashboards(self):
        """Every query of every panel of deploy/grafana returns data from the real Prometheus
        scraping the agent (template variables: every value)."""
        empty = []
        for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "grafana", "*.json"))):
            if os.path.basename(path) == "redtap-databases.json":
                continue  # no database traffic here: integration_databases checks that one
            with open(path) as f:
                board = json.load(f)
            for p in board["panels"]:
                for t in p["targets"]:
                    q = t["expr"].replace("$__rate_interval", "1m")
                    for var in ("service", "tenant", "host"):
                        q = q.replace("$" + var, ".*")
                    try:
                        r = json.loads(get(self.prom_port,
                                           "/api/v1/query?query=" + urllib.parse.quote(q)))
                        ok = r["status"] == "success" and r["data"]["result"]
                    except urllib.error.HTTPError as e:
                        ok = False
                        q += f" ({e.code}: {e.read().decode()[:200]})"
                    if not ok:
                        empty.append(f"{os.path.basename(path)}: {p['title']}: {q}")
        self.assertEqual(empty, [], "panels without data")

    def test_decline_burst_fires_routes_and_resolves(self):
        smtp = open(self.smtp_log, "w")
        self.procs.start(["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l",
                          f"127.0.0.1:{self.smtp_port}", "-c", "aiosmtpd.handlers.Debugging"],
                         stdout=smtp, stderr=subprocess.STDOUT)
        wait_port(self.smtp_port, timeout=15)
        agent = harness.Agent(REDTAP, self.dir, self.procs, ["--config", self.configs["agent"]])
        agent.start()
        self.start_fleet(agent.http_port)
        self.shop.start()
        # A refused connect (curl to a closed port): the TCP dashboard's failure panel has data.
        subprocess.run(["curl", "-s", "--max-time", "2", f"http://127.0.0.1:{free_port()}/"],
                       capture_output=True)
        self.shop.set_decline_rate(0.0)
        load = self.procs.start(
            [sys.executable, os.path.join(ROOT, "scripts", "demo.d", "loadgen.py"),
             "--port", str(self.shop.port), "--report", os.path.join(self.dir, "gen.json"),
             "--seed", "3", "--concurrency", "4", "--think", "0.02", "--duration", "150"],
            stdout=subprocess.DEVNULL)

        # Healthy: traffic is seen (the info rule reaches the SMTP server), no payment alert.
        wait_for("the info alert by e-mail",
                 lambda: "[FIRING] ShopTraffic" in open(self.smtp_log).read(), 40)
        self.assertEqual({a for a in agent_alerts(agent.http_port) if a[0] != "ShopTraffic"},
                         set())
        wait_for("Prometheus scraping the agent",
                 lambda: json.loads(get(self.prom_port, "/api/v1/query?query=redtap%3A"
                                         "PaymentSuccessRateCritical%3Avalue"))["data"]["result"],
                 40)

        # The burst.
        self.shop.set_decline_rate(0.6)
        crit = ("PaymentSuccessRateCritical", "stripe")
        wait_for("the agent firing", lambda: crit in agent_alerts(agent.http_port), 40)
        wait_for("Prometheus firing", lambda: crit in prom_alerts(self.prom_port), 40)
        wait_for("the agent's notifications",
                 lambda: all(self.sink.bodies(p) for p in ("/agent/pd", "/agent/sms")) and any(
                     p.startswith("/agent/slack-incidents/") for p in self.sink.paths()), 30)
        wait_for("Alertmanager's notifications",
                 lambda: all(self.sink.bodies(p) for p in ("/am/pd", "/am/sms")), 40)
        self.check_dashboards()
        # The warning fires too (after its 8 s), inhibited by the critical on both sides.
        warn = ("PaymentSuccessRateWarning", "stripe")
        wait_for("the agent's warning", lambda: warn in agent_alerts(agent.http_port), 30)
        wait_for("Prometheus's warning", lambda: warn in prom_alerts(self.prom_port), 30)
        time.sleep(3)  # time for a (wrong) warning notification to arrive
        burst_paths = self.sink.paths()
        self.assertNotIn("/agent/slack-monitoring", burst_paths)
        self.assertNotIn("/am/slack-monitoring", burst_paths)

        top = subprocess.run([REDTAP, "top", "--once", "--http", f"127.0.0.1:{agent.http_port}"],
                             capture_output=True, text=True, timeout=20).stdout
        self.assertIn("FIRING ALERTS", top)
        self.assertIn("critical  PaymentSuccessRateCritical{gateway=stripe}: Payment success rate "
                      "of stripe below 95%", top)

        pd = self.sink.bodies("/agent/pd")[0]
        self.assertEqual(pd["routing_key"], ROUTING_KEY)
        self.assertEqual(pd["event_action"], "trigger")
        self.assertEqual(pd["payload"]["severity"], "critical")
        self.assertEqual(pd["payload"]["custom_details"]["labels"]["gateway"], "stripe")
        sms = self.sink.bodies("/agent/sms")[0]
        self.assertEqual((sms["version"], sms["status"]), ("4", "firing"))
        self.assertEqual(sms["alerts"][0]["labels"]["alertname"], "PaymentSuccessRateCritical")
        am_pd = self.sink.bodies("/am/pd")[0]
        self.assertEqual(am_pd["routing_key"], ROUTING_KEY)
        self.assertEqual(am_pd["event_action"], "trigger")
        self.assertEqual(self.sink.bodies("/am/sms")[0]["commonLabels"]["gateway"], "stripe")

        prom = demo.parse_prom(get(agent.http_port, "/metrics"))
        firing = [v for (name, labels), v in prom.items()
                  if name == "redtap_alerts" and dict(labels).get("state") == "firing"
                  and dict(labels).get("alertname") == "PaymentSuccessRateCritical"]
        self.assertEqual(firing, [1.0])

        # Recovery: resolved everywhere it was sent.
        self.shop.set_decline_rate(0.0)
        wait_for("the agent resolving", lambda: crit not in agent_alerts(agent.http_port), 60)
        wait_for("the agent's resolve notifications",
                 lambda: [b for b in self.sink.bodies("/agent/pd")
                          if b["event_action"] == "resolve"] and
                 [b for b in self.sink.bodies("/agent/sms") if b["status"] == "resolved"], 20)
        resolve = [b for b in self.sink.bodies("/agent/pd") if b["event_action"] == "resolve"][0]
        self.assertEqual(resolve["dedup_key"], pd["dedup_key"])
        wait_for("Alertmanager's resolve notification",
                 lambda: [b for b in self.sink.bodies("/am/sms") if b["status"] == "resolved"], 60)
        load.terminate()
        load.wait(timeout=10)

        events = agent.read_events("alert")
        states = [e["alert.state"] for e in events
                  if e["alert.name"] == "PaymentSuccessRateCritical"]
        self.assertEqual(states[:2], ["firing", "resolved"])
        first = [e for e in events if e["alert.name"] == "PaymentSuccessRateCritical"][0]
        self.assertEqual((first["level"], first["alert.labels.gateway"]), ("ERROR", "stripe"))
        metrics = get(agent.http_port, "/metrics")
        prom = demo.parse_prom(metrics)
        sent = {dict(l)["channel"]: v for (n, l), v in prom.items()
                if n == "redtap_alert_notifications_total" and dict(l)["outcome"] == "sent"}
        self.assertGreaterEqual(sent["pagerduty"], 2)
        self.assertGreaterEqual(sent["sms"], 2)
        self.assertGreaterEqual(sent["slack-incidents"], 2)
        self.assertGreaterEqual(sent["email-tech"], 1)
        # The real Alertmanager accepted the agent's POST /api/v2/alerts, firing and resolved.
        self.assertGreaterEqual(sent["alertmanager"], 2)
        self.assertEqual(prom[("redtap_alert_notifications_total",
                               frozenset({"channel": "alertmanager", "outcome": "failed"}.items()))],
                         0)

        # Secrets read from files never leave them.
        exposed = metrics + get(agent.http_port, "/api/v1/alerts")
        agent.stop()
        with open(agent.events) as f:
            exposed += f.read()
        exposed += agent.read_log()
        for secret in (ROUTING_KEY, SLACK_TOKEN):
            self.assertNotIn(secret, exposed)
        # The agent's own notifications are not transactions of its own.
        self.assertEqual([e for e in agent.read_events() if e["process.pid"] == agent.proc.pid], [])

SPIKE_CONFIG = """
services: [{{name: orders, port: {port}}}]
alerts:
  evaluation_interval: 1s
  rules:
    - {{name: OrdersErrorSpike, severity: warning, signal: error_spike, by: [service_name],
       service: orders, window: 5s, baseline: 40s, sigma: 4, min_events: 5}}
    - {{name: CheckoutSlow, severity: critical, signal: latency_p95, service: orders,
       route: /api/checkout, window: 5s, above: 250ms, min_events: 10}}
"""


class Driver:
    """Worker threads calling the backend's /api/ routes; the test sets the share of 500s and
    the latency of /api/checkout while they run."""

    def __init__(self, port, workers=6):
        self.port = port
        self.error_every = 40  # one request in N answers 500
        self.checkout_ms = 5
        self.stop = threading.Event()
        self.count = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def run(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            with self.lock:
                self.count += 1
                n = self.count
            if n % 2:
                path = f"/api/checkout?ms={self.checkout_ms}"
            else:
                path = "/api/orders?status=%d" % (500 if n % self.error_every == 0 else 200)
            conn.request("GET", path)
            conn.getresponse().read()
            time.sleep(0.02)
        conn.close()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


class SpikeAndLatencyTest(unittest.TestCase):
    """error_spike and latency_p95 on the agent, driven by a backend whose error share and
    latency this test sets."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="redtap-alerts-")
        self.procs = Procs()
        self.driver = None

    def tearDown(self):
        if self.driver:
            self.driver.close()
        self.procs.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_error_spike_and_latency(self):
        be = free_port()
        self.procs.start([sys.executable, os.path.join(harness.HERE, "backend.py"), str(be)])
        wait_port(be)
        cfg = os.path.join(self.dir, "spike.yaml")
        with open(cfg, "w") as f:
            f.write(SPIKE_CONFIG.format(port=be))
        agent = harness.Agent(REDTAP, self.dir, self.procs, ["--config", cfg])
        agent.start()
        self.driver = Driver(be)
        names = lambda: {a[0] for a in agent_alerts(agent.http_port)}  # noqa: E731
        # A steady 2.5 % of errors and fast checkouts: neither fires. The spike rule needs half
        # of its 40 s baseline (which ends where its 5 s window starts) before it judges.
        time.sleep(30)
        self.assertEqual(names(), set())
        # A jump to 1 error in 3: far above the baseline's mean + 4 sigma.
        self.driver.error_every = 3
        wait_for("the error spike", lambda: "OrdersErrorSpike" in names(), 15)
        self.assertNotIn("CheckoutSlow", names())
        self.driver.error_every = 40
        # Checkouts at 400 ms: P95 over 250 ms.
        self.driver.checkout_ms = 400
        wait_for("slow checkouts", lambda: "CheckoutSlow" in names(), 20)
        value = [a for a in json.loads(get(agent.http_port, "/api/v1/alerts"))["data"]["alerts"]
                 if a["labels"]["alertname"] == "CheckoutSlow"][0]["value"]
        self.assertGreater(float(value), 0.25)
        self.driver.checkout_ms = 5
        wait_for("checkouts fast again", lambda: "CheckoutSlow" not in names(), 20)
        self.driver.close()
        self.driver = None
        events = [(e["alert.name"], e["alert.state"]) for e in agent.read_events("alert")]
        self.assertIn(("OrdersErrorSpike", "firing"), events)
        self.assertIn(("CheckoutSlow", "firing"), events)
        self.assertIn(("CheckoutSlow", "resolved"), events)


if __name__ == "__main__":
    harness.require_bpf()
    for tool in ("prometheus", "/usr/bin/prometheus-alertmanager", "/usr/bin/python3"):
        if not shutil.which(tool):
            print(f"missing {tool}: scripts/setup installs prometheus, prometheus-alertmanager "
                  "and python3-aiosmtpd")
            sys.exit(1)
    unittest.main(verbosity=2)

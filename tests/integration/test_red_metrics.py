#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): per-endpoint RED metrics from real traffic with a known mix.

ab drives a Python backend (named "shop" by a service rule); the counts in /metrics and in
/api/v1/endpoints must equal ab's per route and status; `promtool check metrics` accepts a
live scrape; a real Prometheus scrapes the agent and a PromQL sum over
http_server_request_duration_seconds_count returns the total; P50 agrees with ab's own.
"""
import json
import os
import re
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

import harness

REDTAP = harness.find_redtap()
UUID = "9f0c1d2e-1234-4abc-8def-0123456789ab"


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def ab(n, c, url):
    out = subprocess.run(["ab", "-q", "-n", str(n), "-c", str(c), "-k", url],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(rf"Complete requests:\s+{n}\b", out), out
    return out


def parse_prom(text):
    """{(name, frozenset(labels)): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)$", line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


class RedMetrics(harness.Scenario):
    PREFIX = "redtap-red-"

    @classmethod
    def _run(cls):
        cls.start_backend()
        cfg = os.path.join(cls.tmp, "redtap.yaml")
        with open(cfg, "w") as f:
            f.write(f"services:\n  - {{name: shop, port: {cls.be}}}\n"
                    "routes:\n  patterns:\n    - {pattern: '/api/orders/{order_id}/items'}\n")
        cls.agent = harness.Agent(REDTAP, cls.tmp, cls.procs, ["--config", cfg])
        cls.agent.start()
        cls.http = f"http://127.0.0.1:{cls.agent.http_port}"

        # A real Prometheus scraping the agent every second.
        cls.prom_port = harness.free_port()
        pcfg = os.path.join(cls.tmp, "prometheus.yml")
        with open(pcfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "scrape_configs:\n  - job_name: redtap\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{cls.agent.http_port}']\n")
        cls.prom_log = open(os.path.join(cls.tmp, "prometheus.log"), "w")
        cls.procs.start(["prometheus", f"--config.file={pcfg}",
                         f"--storage.tsdb.path={os.path.join(cls.tmp, 'tsdb')}",
                         f"--web.listen-address=127.0.0.1:{cls.prom_port}"],
                        stderr=cls.prom_log)
        harness.wait_port(cls.prom_port, timeout=30)

        base = f"http://127.0.0.1:{cls.be}"
        ab(300, 4, f"{base}/api/products/17?ms=1")
        ab(100, 2, f"{base}/api/products/42?status=404")
        ab(50, 2, f"{base}/api/cart/add?status=500")
        ab(40, 2, f"{base}/api/orders/{UUID}/items")
        cls.ab_slow = ab(100, 1, f"{base}/api/slow?ms=20")
        cls.total = 300 + 100 + 50 + 40 + 100
        time.sleep(0.5)
        cls.metrics_text = get(f"{cls.http}/metrics")
        cls.endpoints = json.loads(get(f"{cls.http}/api/v1/endpoints"))
        cls.promtool = subprocess.run(["promtool", "check", "metrics"], input=cls.metrics_text,
                                      capture_output=True, text=True, timeout=60)
        cls.top = subprocess.run([REDTAP, "top", "--once", "--http",
                                  f"127.0.0.1:{cls.agent.http_port}"],
                                 capture_output=True, text=True, timeout=30)
        # PromQL over what Prometheus scraped: wait until it has seen the final counts.
        q = 'sum(http_server_request_duration_seconds_count{service_name="shop"})'
        cls.promql = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = json.loads(get(f"http://127.0.0.1:{cls.prom_port}/api/v1/query?" +
                                   urllib.parse.urlencode({"query": q})))
                res = r["data"]["result"]
                if res:
                    cls.promql = float(res[0]["value"][1])
                    if cls.promql == cls.total:
                        break
            except Exception:
                pass
            time.sleep(0.5)
        cls.agent.stop()

    def count(self, name, **labels):
        want = {(k, str(v)) for k, v in labels.items()}
        return sum(v for (n, ls), v in parse_prom(self.metrics_text).items()
                   if n == name and want <= ls)

    def row(self, service, kind, route):
        rows = [e for e in self.endpoints if e["service"] == service and e["kind"] == kind
                and e["route"] == route and e["method"] == "GET"]
        self.assertEqual(len(rows), 1, (service, kind, route, self.endpoints))
        return rows[0]

    def test_server_histogram_counts_equal_ab(self):
        n = "http_server_request_duration_seconds_count"
        self.assertEqual(self.count(n, service_name="shop", http_route="/api/products/{id}",
                                    http_response_status_code=200), 300)
        self.assertEqual(self.count(n, service_name="shop", http_route="/api/products/{id}",
                                    http_response_status_code=404), 100)
        self.assertEqual(self.count(n, service_name="shop", http_route="/api/cart/add",
                                    http_response_status_code=500), 50)
        self.assertEqual(self.count(n, service_name="shop",
                                    http_route="/api/orders/{order_id}/items"), 40)
        self.assertEqual(self.count(n, service_name="shop"), self.total)
        self.assertNotIn(UUID, self.metrics_text)

    def test_client_histogram_counts_equal_ab(self):
        n = "http_client_request_duration_seconds_count"
        self.assertEqual(self.count(n, service_name="ab", server_port=self.be,
                                    server_address="127.0.0.1",
                                    http_route="/api/products/{id}"), 400)
        self.assertEqual(self.count(n, service_name="ab", server_port=self.be), self.total)

    def test_endpoints_api(self):
        p = self.row("shop", "server", "/api/products/{id}")
        self.assertEqual(p["requests_total"], 400)
        self.assertEqual(p["client_errors_total"], 100)
        self.assertEqual(p["errors_total"], 0)
        self.assertEqual(p["status_codes"], {"200": 300, "404": 100})
        # 400 requests in the last minute, over the time the window covers (at least 1 s,
        # at most 60 s: the agent is younger than a minute here).
        self.assertGreaterEqual(p["rps_1m"], 400 / 60 - 0.01)
        self.assertLessEqual(p["rps_1m"], 400.0)
        c = self.row("shop", "server", "/api/cart/add")
        self.assertEqual(c["errors_total"], 50)
        self.assertEqual(c["error_rate_1m"], 1.0)
        self.assertEqual(self.row("shop", "server", "/api/orders/{order_id}/items")["requests_total"], 40)

    def test_latency_quantiles_agree_with_ab(self):
        # ab prints whole milliseconds: "  50%     21".
        ab50 = int(re.search(r"^\s+50%\s+(\d+)", self.ab_slow, re.M).group(1))
        ab99 = int(re.search(r"^\s+99%\s+(\d+)", self.ab_slow, re.M).group(1))
        client = self.row("ab", "client", "/api/slow")
        server = self.row("shop", "server", "/api/slow")
        self.assertGreaterEqual(client["p50_ms"], 20.0)
        self.assertLessEqual(abs(client["p50_ms"] - ab50), 1.5, (client, ab50))
        self.assertLessEqual(client["p99_ms"], ab99 + 1.5)
        self.assertGreaterEqual(server["p50_ms"], 20.0)
        self.assertLessEqual(server["p50_ms"], client["p50_ms"] + 0.01)

    def test_promtool_accepts_live_scrape(self):
        self.assertEqual(self.promtool.returncode, 0, self.promtool.stdout + self.promtool.stderr)

    def test_prometheus_promql_total(self):
        self.assertEqual(self.promql, self.total)

    def test_agent_health_metrics(self):
        self.assertGreater(self.count("redtap_agent_records_total"), 0)
        self.assertEqual(self.count("redtap_agent_kernel_drops_total", reason="ringbuf_full"), 0)
        self.assertEqual(self.count("redtap_agent_ready"), 1)
        self.assertGreater(self.count("redtap_agent_resident_memory_bytes"), 1e6)
        self.assertIn('redtap_agent_routes_folded_total{service_name="shop"} 0', self.metrics_text)

    def test_tcp_health_beside_red(self):
        # The backend (socketserver, listen(5)) is named "shop" by the port rule: its listener's
        # queue limit and its inbound connections are in the same scrape as its RED series.
        self.assertEqual(self.count("redtap_tcp_listen_backlog_max", service_name="shop",
                                    server_port=self.be), 5)
        self.assertGreaterEqual(self.count("redtap_tcp_connections_opened_total",
                                           service_name="shop", direction="inbound"), 4)

    def test_top_once(self):
        self.assertEqual(self.top.returncode, 0, self.top.stderr)
        self.assertIn("/api/products/{id}", self.top.stdout)
        self.assertRegex(self.top.stdout, r"shop\s+server\s+GET\s+/api/cart/add")
        self.assertNotIn("\033[", self.top.stdout)  # not a terminal: plain lines


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main(verbosity=2)

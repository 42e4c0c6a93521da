#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The e-commerce view through the real capture path (issue 7): the demo shop behind nginx,
paying through a local HTTPS gateway impersonating api.stripe.com, the agent with
config/examples/shop.yaml.

1. A seeded traffic generator walks the funnel: /api/v1/funnel and /metrics must equal what
   it reports (step counts, conversions, payments by gateway, decline reasons, amounts).
2. A hostile corpus (cards in paths, queries, JSON bodies and headers, bearer tokens, cookies,
   API keys, e-mail addresses) must leave no trace in the events, /metrics, the JSON APIs or
   the agent's log.
"""
import http.client
import json
import os
import subprocess
import shutil
import sys
import tempfile
import time
import unittest
import urllib.request

import harness

ROOT = os.path.abspath(os.path.join(harness.HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "demo.d"))
import demo  # noqa: E402

REDTAP = harness.find_redtap()
CONFIG = os.path.join(ROOT, "config", "examples", "shop.yaml")

SECRETS = [
    "4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444",
    "4012888888881881", "4012 8888 8888 1881", "hunter2-SeCrEt", "tok_LiveSecret42",
    "SECRETPAYLOAD", "CookieSecret99", "sk_live_SECRETKEY123", "jane.doe@example.com",
    "jane.doe%40example.com", "cvv-9876",
]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


class EcommerceTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="redtap-ecom-")
        os.chmod(self.dir, 0o755)
        self.procs = harness.Procs()
        self.agent = harness.Agent(REDTAP, self.dir, self.procs, ["--config", CONFIG])
        self.agent.start()
        self.shop = demo.Shop(self.dir, decline_rate=0.3, seed=3)
        self.shop.start()

    def tearDown(self):
        self.shop.stop()
        self.procs.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)

    def settle(self):
        time.sleep(1.0)  # the reader drains every 10 ms; events are written asynchronously

    def test_funnel_and_payments_equal_the_generator(self):
        gen = self.shop.loadgen(os.path.join(self.dir, "gen.json"), sessions=300, seed=11,
                                concurrency=4, think=0)
        self.settle()
        funnel = json.loads(get(self.agent.http_port, "/api/v1/funnel"))
        prom = demo.parse_prom(get(self.agent.http_port, "/metrics"))
        rows = demo.compare(gen, funnel, prom)
        bad = [r for r in rows if not r[3]]
        if bad:
            demo.print_rows(rows)
        self.assertEqual(bad, [])
        self.assertIn("stripe", gen["payments"])
        self.assertGreater(gen["payments"]["stripe"]["failure"], 0)
        # Events carry the e-commerce fields.
        events = [e for e in self.agent.read_events() if e.get("service.name") == "shop"]
        pays = [e for e in events if e.get("ecommerce.step") == "payment"]
        self.assertEqual(len(pays), gen["steps"][2]["attempts"])
        for e in pays:
            self.assertIn(e["ecommerce.gateway"], ("self", "stripe"))
            self.assertIn("tenant.id", e)
            self.assertIn("ecommerce.amount", e)
        declined = [e for e in pays if e["http.response.status_code"] == 402]
        self.assertTrue(all(e.get("error.category") == "payment" for e in declined))
        self.assertTrue(all(e.get("ecommerce.reason") for e in declined))
        calls = [e for e in events if e.get("kind") == "client"]
        self.assertTrue(calls and all(e.get("ecommerce.gateway") == "stripe" and e.get("tls")
                                      for e in calls))
        # redtap top shows the funnel with the same counts.
        top = subprocess.run([REDTAP, "top", "--once", "--http",
                              f"127.0.0.1:{self.agent.http_port}"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(top.returncode, 0, top.stderr)
        for st in funnel["steps"]:
            self.assertRegex(top.stdout, rf"{st['step']}\s+{st['attempts']}\s+{st['success']}\s")

    def test_hostile_corpus_leaves_no_trace(self):
        port = self.shop.port
        tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        requests = [
            ("GET", "/api/cards/4111111111111111/details", None, {}),
            ("GET", "/api/cards/4111-1111-1111-1111", None, {}),
            ("GET", "/api/users/jane.doe@example.com/orders", None, {}),
            ("GET", "/api/users/jane.doe%40example.com/orders", None, {}),
            ("GET", "/api/search?card=5555555555554444&token=tok_LiveSecret42"
                    "&password=hunter2-SeCrEt&q=4012+8888+8888+1881", None, {}),
            ("POST", "/api/payment/process",
             {"amount": 10, "currency": "EUR", "method": "card", "card": "4111 1111 1111 1111",
              "cvv": "cvv-9876", "password": "hunter2-SeCrEt", "token": "tok_LiveSecret42"},
             {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.SECRETPAYLOAD.sig",
              "Cookie": "session=CookieSecret99", "X-Api-Key": "sk_live_SECRETKEY123",
              "User-Agent": "Mozilla/5.0 (X11) 4012888888881881", "X-Card": "4111-1111-1111-1111",
              "X-Tenant-Id": "4111111111111111", "traceparent": tp}),
            ("POST", "/api/payment/process",
             {"amount": "12.50", "currency": "usd", "method": "giftcard",
              "note": "5555555555554444"},
             {"Authorization": "Basic aHVudGVyMi1TZUNyRXQ=", "X-Tenant-Id": "jane.doe@example.com",
              "Cookie": "a=1; session=CookieSecret99"}),
            ("POST", "/api/cart/add", {"sku": "4111111111111111", "qty": 1},
             {"Cookie": "session=CookieSecret99", "User-Agent": "4111 1111 1111 1111"}),
        ]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for method, path, body, headers in requests:
            h = {"Content-Type": "application/json"}
            h.update(headers)
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=h)
            conn.getresponse().read()
        conn.close()
        self.settle()
        sinks = {
            "/metrics": get(self.agent.http_port, "/metrics"),
            "/api/v1/endpoints": get(self.agent.http_port, "/api/v1/endpoints"),
            "/api/v1/funnel": get(self.agent.http_port, "/api/v1/funnel"),
        }
        rc, _ = self.agent.stop()
        self.assertEqual(rc, 0)
        with open(self.agent.events) as f:
            sinks["events"] = f.read()
        sinks["agent log"] = self.agent.read_log()
        for name, text in sinks.items():
            for secret in SECRETS:
                self.assertNotIn(secret, text, f"{secret!r} leaked into {name}")
        # The corpus was really captured (and masked), not missed.
        events = [json.loads(line) for line in sinks["events"].splitlines()]
        shop = [e for e in events if e.get("service.name") == "shop"]
        paths = {e["url.path"] for e in shop}
        self.assertIn("/api/cards/****1111/details", paths)
        self.assertIn("/api/users/{email}/orders", paths)
        search = [e for e in shop if e["url.path"] == "/api/search"]
        self.assertEqual(len(search), 1)
        self.assertIn("card=REDACTED", search[0]["url.query"])
        self.assertIn("****1881", search[0]["url.query"])
        pays = [e for e in shop if e["url.path"] == "/api/payment/process"]
        self.assertEqual(len(pays), 2)
        self.assertEqual(pays[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736")
        self.assertEqual(pays[0]["span_id"], "00f067aa0ba902b7")
        self.assertEqual(pays[0]["user_agent.original"], "Mozilla/5.0 (X11) ****1881")
        self.assertNotIn("tenant.id", pays[0])  # a card number is not a tenant
        self.assertNotIn("tenant.id", pays[1])  # nor an e-mail address
        self.assertEqual(pays[1]["ecommerce.amount"], 12.5)
        self.assertEqual(pays[1]["ecommerce.currency"], "USD")


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main(verbosity=2)

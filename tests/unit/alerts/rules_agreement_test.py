#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The two evaluators agree: the same series (a healthy phase, a bad one, a recovery) go
through the agent's engine (alerts_replay) and through Prometheus's rule engine (`promtool
test rules` on `redtap rules prometheus`), and both must fire exactly the expected alerts at
each checkpoint. Also checks the generated files (`promtool check rules`, `amtool
check-config`, `amtool config routes test`) for config/examples/shop.yaml."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
STEP = 15
STEPS = 70
A, B, C = range(0, 30), range(30, 50), range(50, 70)  # healthy, bad, healthy again


def phase(step):
    return "A" if step in A else "B" if step in B else "C"


def counter(per_step):
    """Cumulative values of a counter growing by per_step(phase) each step."""
    v, out = 0.0, []
    for s in range(STEPS):
        if s:
            v += per_step(phase(s))
        out.append(v)
    return out


def series():
    out = []

    def add(name, labels, values):
        out.append({"name": name, "labels": labels, "values": values})

    pay = "redtap_ecommerce_payment_attempts_total"
    add(pay, {"gateway": "stripe", "outcome": "success"}, counter(lambda p: 1 if p == "B" else 10))
    add(pay, {"gateway": "stripe", "outcome": "failure", "reason": "card_declined"},
        counter(lambda p: 9 if p == "B" else 0))
    add(pay, {"gateway": "adyen", "outcome": "failure", "reason": "do_not_honor"},
        counter(lambda p: 5))  # no success at all: a rate of 0, not "no value"
    add(pay, {"gateway": "paypal", "outcome": "failure", "reason": "x"},
        counter(lambda p: 1))  # 8 per window: under min_events
    http = "http_server_request_duration_seconds"
    api = {"service_name": "api", "http_route": "/api/x", "http_request_method": "GET"}
    add(http + "_count", dict(api, http_response_status_code="200"), counter(lambda p: 19))
    add(http + "_count", dict(api, http_response_status_code="500"),
        counter(lambda p: 4 if p == "B" else 0))
    add(http + "_count", {"service_name": "idle", "http_route": "/", "http_request_method": "GET",
                          "http_response_status_code": "500"}, [0.0] * STEPS)
    add("redtap_http_server_failed_requests_total", api, counter(lambda p: 0))
    co = {"service_name": "shop", "http_route": "/api/checkout", "http_request_method": "POST",
          "http_response_status_code": "200"}
    for le, fast, slow in [("0.1", 10, 0), ("0.5", 10, 0), ("1", 10, 0), ("3", 10, 10),
                           ("+Inf", 10, 10)]:
        add(http + "_bucket", dict(co, le=le), counter(lambda p, f=fast, s=slow: s if p == "B" else f))
    add(http + "_count", co, counter(lambda p: 10))
    cl = {"service_name": "shop", "server_address": "api.stripe.com", "server_port": "443",
          "http_route": "/v1/charges", "http_request_method": "POST",
          "http_response_status_code": "200"}
    client = "http_client_request_duration_seconds"
    for le, fast, slow in [("0.1", 10, 0), ("0.5", 10, 0), ("1", 10, 0), ("3", 10, 10),
                           ("+Inf", 10, 10)]:
        add(client + "_bucket", dict(cl, le=le),
            counter(lambda p, f=fast, s=slow: s if p == "B" else f))
    add(client + "_count", cl, counter(lambda p: 10))
    funnel = "redtap_ecommerce_funnel_step_total"
    add(funnel, {"funnel": "checkout", "step": "cart", "outcome": "success"}, counter(lambda p: 10))
    add(funnel, {"funnel": "checkout", "step": "checkout", "outcome": "success"},
        counter(lambda p: 1 if p == "B" else 6))
    add(funnel, {"funnel": "checkout", "step": "payment", "outcome": "success"},
        counter(lambda p: 1 if p == "B" else 5))
    add("redtap_connection_pool_usage_ratio", {"pool": "shop-db"},
        [0.95 if phase(s) == "B" else 0.5 for s in range(STEPS)])
    return out


# alertname -> {step: [labels of each firing alert, without alertname]}
def expected():
    def labels(severity, signal, **by):
        return dict(by, severity=severity, signal=signal)
    pay = lambda *gws: [labels("critical", "payment_success_rate", gateway=g) for g in gws]
    return {
        "PayCrit": {29: pay("adyen"), 45: pay("adyen", "stripe"), 69: pay("adyen")},
        "ErrRate": {29: [], 45: [labels("warning", "error_rate", service_name="api")], 69: []},
        "SlowCheckout": {29: [], 45: [labels("critical", "latency_p95")], 69: []},
        "CartAbandon": {29: [], 45: [labels("warning", "cart_abandonment")], 69: []},
        "Spike": {29: [], 33: [labels("warning", "error_spike", service_name="api")], 45: [],
                  69: []},
        "SlowGateway": {29: [], 45: [labels("warning", "client_latency_p95",
                                             server_address="api.stripe.com")], 69: []},
        "ConvDrop": {29: [], 45: [labels("warning", "conversion_drop")], 69: []},
        "PoolFull": {29: [], 45: [labels("critical", "pool_usage", pool="shop-db")], 69: []},
    }


def canon(alerts):
    return sorted(json.dumps(a, sort_keys=True) for a in alerts)


def sh(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


class Agreement(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="redtap-rules-")
        cls.config = os.path.join(HERE, "fleet.yaml")
        cls.series = series()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_local_engine(self):
        r = sh(ARGS.replay, input=json.dumps(
            {"config": self.config, "step_s": STEP, "steps": STEPS, "series": self.series}))
        self.assertEqual(r.returncode, 0, r.stderr)
        firing = {}
        for step, name, labels in json.loads(r.stdout):
            labels = {k: v for k, v in labels.items() if v and k != "alertname"}
            firing.setdefault((name, step), []).append(labels)
        for name, checks in expected().items():
            for step, want in checks.items():
                self.assertEqual(canon(firing.get((name, step), [])), canon(want),
                                 f"{name} at step {step}")

    def test_prometheus_rules(self):
        rules = os.path.join(self.tmp, "rules.yml")
        r = sh(ARGS.redtap, "rules", "prometheus", "--config", self.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(rules, "w") as f:
            f.write(r.stdout)
        check = sh("promtool", "check", "rules", rules)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        input_series = []
        for s in self.series:
            sel = ",".join(f'{k}="{v}"' for k, v in sorted(s["labels"].items()) if v)
            input_series.append({"series": f"{s['name']}{{{sel}}}",
                                 "values": " ".join(repr(v) for v in s["values"])})
        tests = []
        for name, checks in expected().items():
            for step, want in checks.items():
                tests.append({"eval_time": f"{step * STEP}s", "alertname": name,
                              "exp_alerts": [{"exp_labels": l} for l in want]})
        test = {"rule_files": [rules], "evaluation_interval": f"{STEP}s",
                "tests": [{"interval": f"{STEP}s", "input_series": input_series,
                           "alert_rule_test": tests}]}
        path = os.path.join(self.tmp, "test.yml")
        with open(path, "w") as f:
            json.dump(test, f)  # JSON is YAML
        r = sh("promtool", "test", "rules", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_shop_example_files(self):
        shop = os.path.join(ROOT, "config", "examples", "shop.yaml")
        rules = os.path.join(self.tmp, "shop-rules.yml")
        am = os.path.join(self.tmp, "alertmanager.yml")
        for kind, path in (("prometheus", rules), ("alertmanager", am)):
            r = sh(ARGS.redtap, "rules", kind, "--config", shop)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(path, "w") as f:
                f.write(r.stdout)
        r = sh("promtool", "check", "rules", rules)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: 20 rules found", r.stdout)  # 10 values + 10 alerts
        r = sh("amtool", "check-config", am)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for labels, receiver in (("severity=critical", "redtap-critical"),
                                 ("severity=warning", "redtap-warning"),
                                 ("severity=info", "redtap-info"),
                                 ("alertname=Other", "redtap-none")):
            r = sh("amtool", "config", "routes", "test", "--config.file", am, labels)
            self.assertEqual(r.stdout.strip(), receiver, labels + ": " + r.stderr)
        # The shipped copies are what the generator prints.
        for path, shipped in ((rules, "deploy/prometheus/redtap-rules.yml"),
                              (am, "deploy/prometheus/alertmanager.yml")):
            with open(path) as a, open(os.path.join(ROOT, shipped)) as b:
                self.assertEqual(a.read(), b.read(), f"{shipped} is stale: regenerate it "
                                 "(scripts/gen-alert-files)")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--redtap", required=True)
    p.add_argument("--replay", required=True)
    ARGS, rest = p.parse_known_args()
    for tool in ("promtool", "amtool"):
        if not shutil.which(tool):
            print(f"{tool} missing (scripts/setup installs prometheus and prometheus-alertmanager)")
            sys.exit(1)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

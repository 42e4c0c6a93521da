#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Traffic generator: shoppers walking the checkout funnel through nginx, with abandonment,
out-of-stock carts, expired sessions, gift cards (no gateway) and card payments (the gateway
declines some). Prints at the end (and writes with --report) what it did, counted from the
responses it got: funnel steps, conversions, payments by gateway, decline reasons, amounts."""
import argparse
import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import set_process_name  # noqa: E402

STEPS = ["cart", "checkout", "payment", "confirmation"]
TENANTS = ["acme", "globex", "initech"]
AMOUNTS = [9.99, 19.5, 49.0, 120.0, 149.99, 899.0, 2400.0]


class Report:
    def __init__(self):
        self.lock = threading.Lock()
        self.funnel = {s: {"success": 0, "failure": 0} for s in STEPS}
        self.tenants = {}
        self.payments = {}
        self.sessions = 0

    def step(self, tenant, step, status):
        ok = 200 <= status < 400
        with self.lock:
            self.funnel[step]["success" if ok else "failure"] += 1
            t = self.tenants.setdefault(tenant, {s: {"success": 0, "failure": 0} for s in STEPS})
            t[step]["success" if ok else "failure"] += 1
        return ok

    def payment(self, gateway, status, reason, amount, currency):
        ok = 200 <= status < 400
        with self.lock:
            p = self.payments.setdefault(gateway, {"success": 0, "failure": 0,
                                                   "failure_reasons": {}, "amounts": {}})
            p["success" if ok else "failure"] += 1
            if not ok:
                p["failure_reasons"][reason] = p["failure_reasons"].get(reason, 0) + 1
            a = p["amounts"].setdefault(currency, {"success_sum": 0.0, "success_count": 0,
                                                   "failure_sum": 0.0, "failure_count": 0})
            k = "success" if ok else "failure"
            a[k + "_sum"] = round(a[k + "_sum"] + amount, 2)
            a[k + "_count"] += 1

    def as_dict(self):
        steps = []
        prev = None
        for s in STEPS:
            c = self.funnel[s]
            conv = None if prev is None or prev == 0 else c["success"] / prev
            steps.append({"step": s, "attempts": c["success"] + c["failure"],
                          "success": c["success"], "failure": c["failure"], "conversion": conv})
            prev = c["success"]
        pays = {}
        for gw, p in self.payments.items():
            n = p["success"] + p["failure"]
            pays[gw] = dict(p, attempts=n, success_rate=p["success"] / n if n else None)
        return {"sessions": self.sessions, "funnel": "checkout", "steps": steps,
                "tenants": self.tenants, "payments": pays}


def shopper(conn, conn_factory, rng, report, think):
    conn = conn or conn_factory()

    def call(method, path, tenant, body=None, headers=None):
        nonlocal conn
        h = {"X-Tenant-Id": tenant, "Content-Type": "application/json",
             "User-Agent": "loadgen/1.0"}
        h.update(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            try:
                conn.request(method, path, body=data, headers=h)
                r = conn.getresponse()
                return r.status, json.loads(r.read() or b"{}")
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = conn_factory()
                if attempt:
                    raise
        return 0, {}

    tenant = rng.choice(TENANTS)
    sku = "OOS-1" if rng.random() < 0.05 else "SKU-%d" % rng.randint(1, 50)
    status, _ = call("POST", "/api/cart/add", tenant, {"sku": sku, "qty": rng.randint(1, 3)})
    if not report.step(tenant, "cart", status) or rng.random() < 0.3:
        return conn
    time.sleep(think)
    hdr = {"X-Session": "expired"} if rng.random() < 0.05 else {}
    status, _ = call("POST", "/api/checkout", tenant, {}, hdr)
    if not report.step(tenant, "checkout", status) or rng.random() < 0.2:
        return conn
    time.sleep(think)
    gateway = "self" if rng.random() < 0.2 else "stripe"
    amount = rng.choice(AMOUNTS)
    currency = rng.choice(["EUR", "USD"])
    body = {"amount": amount, "currency": currency,
            "method": "giftcard" if gateway == "self" else "card",
            "card": "4111 1111 1111 1111", "cvv": "737"}
    status, out = call("POST", "/api/payment/process", tenant, body)
    report.payment(gateway, status, out.get("error", {}).get("code", ""), amount, currency)
    if not report.step(tenant, "payment", status) or rng.random() < 0.1:
        return conn
    time.sleep(think)
    status, _ = call("GET", "/api/orders/%d/confirmation" % out["order_id"], tenant)
    report.step(tenant, "confirmation", status)
    return conn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True, help="nginx in front of the shop")
    ap.add_argument("--duration", type=float, default=0, help="seconds (0: use --sessions)")
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--think", type=float, default=0.01, help="seconds between steps")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--report", help="also write the report (JSON) there")
    args = ap.parse_args()
    set_process_name("loadgen")
    report = Report()
    deadline = time.monotonic() + args.duration if args.duration > 0 else None
    counter = {"left": args.sessions}
    lock = threading.Lock()

    def worker(i):
        rng = random.Random(args.seed * 1000 + i)
        conn = None

        def factory():
            return http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        while True:
            with lock:
                if deadline is None:
                    if counter["left"] <= 0:
                        break
                    counter["left"] -= 1
                elif time.monotonic() >= deadline:
                    break
                report.sessions += 1
            conn = shopper(conn, factory, rng, report, args.think)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = report.as_dict()
    if args.report:
        with open(args.report, "w") as f:
            json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

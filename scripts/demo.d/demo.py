#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""scripts/demo: the e-commerce view end to end on this host. Starts (and afterwards stops,
by PID) a local HTTPS gateway impersonating api.stripe.com, the demo shop, nginx in front of
it, the redtap agent with config/examples/shop.yaml, and the traffic generator; prints where
to look, then compares what redtap shows with what the generator did."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "pylib"))
from loopback import NGINX_MAIN, NGINX_TEMP_PATHS, Procs, free_port, wait_port  # noqa: E402

NGINX_CONF = (
    NGINX_MAIN
    + """http {{
  access_log off;
"""
    + NGINX_TEMP_PATHS
    + """  upstream shop {{ server 127.0.0.1:{shop}; keepalive 8; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://shop;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""
)


class Shop:
    """Gateway + shop + nginx, started by PID and stopped by PID."""

    def __init__(self, workdir, decline_rate=0.2, seed=1):
        self.dir = workdir
        self.procs = Procs()
        self.logs = []
        self.gateway_port = free_port()
        self.shop_port = free_port()
        self.port = free_port()
        self.decline_rate = decline_rate
        self.seed = seed
        self.rate_file = os.path.join(workdir, "decline-rate")

    def set_decline_rate(self, rate):
        """Changes the gateway's decline rate from its next request on."""
        tmp = self.rate_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(rate))
        os.replace(tmp, self.rate_file)

    def _start(self, argv, log):
        f = open(os.path.join(self.dir, log), "w")
        self.logs.append(f)
        return self.procs.start(argv, stdout=f, stderr=subprocess.STDOUT)

    def start(self):
        os.chmod(self.dir, 0o755)
        cert, key = os.path.join(self.dir, "stripe.crt"), os.path.join(self.dir, "stripe.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=api.stripe.com", "-addext",
                        "subjectAltName=DNS:api.stripe.com", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        py = sys.executable
        self._start([py, os.path.join(HERE, "gateway.py"), "--port", str(self.gateway_port),
                     "--cert", cert, "--key", key, "--decline-rate", str(self.decline_rate),
                     "--decline-rate-file", self.rate_file,
                     "--seed", str(self.seed)], "gateway.log")
        self._start([py, os.path.join(HERE, "shop.py"), "--port", str(self.shop_port),
                     "--gateway-port", str(self.gateway_port), "--cafile", cert], "shop.log")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, port=self.port, shop=self.shop_port))
        self._start(["nginx", "-c", conf, "-e", os.path.join(self.dir, "nginx-error.log")],
                    "nginx.log")
        for p in (self.gateway_port, self.shop_port, self.port):
            wait_port(p, timeout=15.0)

    def loadgen(self, report, sessions=0, duration=0, seed=7, concurrency=4, think=0.01):
        argv = [sys.executable, os.path.join(HERE, "loadgen.py"), "--port", str(self.port),
                "--report", report, "--seed", str(seed), "--concurrency", str(concurrency),
                "--think", str(think)]
        argv += ["--duration", str(duration)] if duration else ["--sessions", str(sessions)]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        with open(report) as f:
            return json.load(f)

    def stop(self):
        self.procs.stop_all()
        for f in self.logs:
            f.close()
        self.logs = []


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def parse_prom(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        labels = {}
        if "{" in name_labels:
            name, rest = name_labels.split("{", 1)
            rest = rest.rstrip("}")
            while rest:
                k, rest = rest.split("=\"", 1)
                v, i = "", 0
                while rest[i] != "\"":
                    if rest[i] == "\\":
                        i += 1
                    v += rest[i]
                    i += 1
                labels[k.lstrip(",")] = v
                rest = rest[i + 1:]
        else:
            name = name_labels
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def compare(gen, funnel, prom):
    """Rows (what, generator, redtap, equal) comparing the generator's report with
    /api/v1/funnel and /metrics."""
    rows = []

    def row(what, a, b, tol=0.0):
        eq = (a is None and b is None) or (a is not None and b is not None and
                                           abs(a - b) <= tol)
        rows.append((what, a, b, eq))

    by_step = {s["step"]: s for s in funnel.get("steps", [])}
    for s in gen["steps"]:
        r = by_step.get(s["step"], {})
        row(f"funnel {s['step']} attempts", s["attempts"], r.get("attempts"))
        row(f"funnel {s['step']} success", s["success"], r.get("success"))
        row(f"funnel {s['step']} conversion", s["conversion"], r.get("conversion"), 1e-9)
        m = sum(v for (n, l), v in prom.items()
                if n == "redtap_ecommerce_funnel_step_total" and ("step", s["step"]) in l and
                ("outcome", "success") in l)
        row(f"/metrics funnel {s['step']} success", s["success"], m)
    pays = {p["gateway"]: p for p in funnel.get("payments", [])}
    for gw, p in sorted(gen["payments"].items()):
        r = pays.get(gw, {})
        row(f"payments {gw} attempts", p["attempts"], r.get("attempts"))
        row(f"payments {gw} success rate", p["success_rate"], r.get("success_rate"), 1e-9)
        for reason, n in sorted(p["failure_reasons"].items()):
            row(f"payments {gw} declined {reason}", n, r.get("failure_reasons", {}).get(reason))
            m = sum(v for (name, l), v in prom.items()
                    if name == "redtap_ecommerce_payment_attempts_total" and
                    ("gateway", gw) in l and ("reason", reason) in l)
            row(f"/metrics {gw} declined {reason}", n, m)
        for cur, a in sorted(p["amounts"].items()):
            ra = r.get("amounts", {}).get(cur, {})
            for k in ("success_sum", "failure_sum", "failure_count"):
                row(f"payments {gw} {cur} {k}", a[k], ra.get(k), 0.005)
            m = sum(v for (name, l), v in prom.items()
                    if name == "redtap_ecommerce_payment_amount_total" and ("gateway", gw) in l and
                    ("currency", cur) in l and ("outcome", "failure") in l)
            row(f"/metrics {gw} {cur} failed amount", a["failure_sum"], m, 0.005)
    return rows


def print_rows(rows):
    w = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'':{w}}  {'generator':>12}  {'redtap':>12}")
    for what, a, b, eq in rows:
        fa = "-" if a is None else (f"{a:.4f}" if isinstance(a, float) else str(a))
        fb = "-" if b is None else (f"{b:.4f}" if isinstance(b, float) else str(b))
        print(f"{what:{w}}  {fa:>12}  {fb:>12}  {'ok' if eq else 'DIFFERENT'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=300, help="seconds of traffic (default 300)")
    ap.add_argument("--redtap", default=os.path.join(ROOT, "build", "redtap"))
    ap.add_argument("--http", default="127.0.0.1:9464", help="the agent's HTTP address")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--decline-rate", type=float, default=0.2)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("scripts/demo: run as root (the agent loads eBPF programs)")
    for tool in ("nginx", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"scripts/demo: {tool} is missing (apt-get install {tool})")
    if not os.path.exists(args.redtap):
        sys.exit(f"scripts/demo: {args.redtap} not found: run scripts/build first")
    work = tempfile.mkdtemp(prefix="redtap-demo-")
    shop = Shop(work, decline_rate=args.decline_rate)
    agent = None
    stopping = {"flag": False}

    def on_signal(sig, frame):
        stopping["flag"] = True
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        events = os.path.join(work, "events.ndjson")
        alog = open(os.path.join(work, "agent.log"), "w")
        agent = subprocess.Popen([args.redtap, "run", "--config",
                                  os.path.join(ROOT, "config", "examples", "shop.yaml"),
                                  "--events", events, "--http", args.http], stderr=alog)
        base = f"http://{args.http}"
        deadline = time.monotonic() + 30
        while True:
            if agent.poll() is not None:
                raise RuntimeError("the agent exited: see " + os.path.join(work, "agent.log"))
            try:
                if fetch(base + "/ready").startswith("ready"):
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the agent is not ready after 30 s")
            time.sleep(0.1)
        shop.start()
        print(f"""redtap demo: {args.duration:.0f} s of shoppers (work dir {work})
  shop (via nginx)  http://127.0.0.1:{shop.port}/api/...
  live table        {args.redtap} top --http {args.http}
  funnel            curl -s {base}/api/v1/funnel
  metrics           curl -s {base}/metrics | grep redtap_ecommerce_
  events            tail -f {events}
""", flush=True)
        report = os.path.join(work, "loadgen.json")
        gen = shop.loadgen(report, duration=args.duration, concurrency=args.concurrency)
        time.sleep(1.0)  # the agent drains its ring buffer every 10 ms
        funnel = json.loads(fetch(base + "/api/v1/funnel"))
        prom = parse_prom(fetch(base + "/metrics"))
        rows = compare(gen, funnel, prom)
        print(f"generator: {gen['sessions']} shoppers")
        print_rows(rows)
        ok = all(r[3] for r in rows)
        print("redtap matches the generator" if ok else "MISMATCH between redtap and the generator")
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("interrupted: cleaning up")
        return 130
    finally:
        shop.stop()
        if agent is not None and agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

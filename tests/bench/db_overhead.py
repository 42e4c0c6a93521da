#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What the agent costs a database: pgbench TPS (select-only and TPC-B-like, simple and
prepared protocols) and redis-benchmark ops/s without the agent and with it, side by side in
each round (the agent started and stopped around its run); prints each round and the median
ratios (`--json` for one JSON object).

    tests/bench/db_overhead.py [--redtap BIN] [--rounds N] [--duration S] [--json]

Root; loopback only; the servers are pinned to CPU 1 and the clients to CPU 0 on a 2-CPU box;
the agent runs unpinned, as it would on a host. Real servers from tests/integration/dbservers.py.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "pylib"))
from dbservers import Postgres, Redis, start_all  # noqa: E402
from loopback import Procs, free_port  # noqa: E402


def pin(pid, cpu):
    """Pins `pid` and its threads and children (existing and future forks) to `cpu`."""
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)], check=True,
                   capture_output=True)


class AgentRun:
    def __init__(self, binary, workdir):
        self.binary, self.workdir = binary, workdir

    def __enter__(self):
        port = free_port()
        self.log = open(os.path.join(self.workdir, "agent.log"), "a")
        self.proc = subprocess.Popen([self.binary, "run", "--http", f"127.0.0.1:{port}"],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except Exception:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("agent not ready; see " + self.log.name)

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


def pgbench_tps(pg, builtin, protocol, clients, duration):
    env = dict(os.environ, PGPASSWORD=pg.password)
    argv = ["taskset", "-c", "0", os.path.join(pg.bindir, "pgbench"), "-n", "-h", "127.0.0.1",
            "-p", str(pg.port), "-U", pg.user, "-M", protocol, "-c", str(clients), "-j", "1",
            "-T", str(duration)]
    if builtin == "select-only":
        argv.append("-S")
    out = subprocess.run(argv + [pg.dbname], env=env, capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if not m:
        raise RuntimeError("pgbench: no tps in\n" + out)
    return float(m.group(1))


def redis_ops(rd, test, requests, pipeline):
    out = subprocess.run(["taskset", "-c", "0", "redis-benchmark", "-h", "127.0.0.1", "-p",
                          str(rd.port), "-t", test, "-n", str(requests), "-c", "8", "-P",
                          str(pipeline), "--csv"], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0].upper() == test.upper():
            return float(cells[1])
    raise RuntimeError("redis-benchmark: no result in\n" + out)


def main():
    ap = argparse.ArgumentParser(prog="tests/bench/db_overhead.py")
    ap.add_argument("--redtap", default=os.path.join(ROOT, "build", "redtap"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8, help="s per pgbench run")
    ap.add_argument("--redis-requests", type=int, default=100000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("db_overhead: needs root (BPF)")
    procs = Procs()
    pg, rd = Postgres(procs), Redis(procs)
    try:
        start_all(pg, rd)
        pin(pg.proc.pid, 1)
        pin(rd.proc.pid, 1)
        pg.pgbench_init(scale=10)
        cases = [("pgbench select-only, simple", lambda: pgbench_tps(pg, "select-only", "simple", 4, args.duration)),
                 ("pgbench select-only, prepared", lambda: pgbench_tps(pg, "select-only", "prepared", 4, args.duration)),
                 ("pgbench tpcb-like, simple", lambda: pgbench_tps(pg, "tpcb-like", "simple", 4, args.duration)),
                 ("redis-benchmark GET -P 1", lambda: redis_ops(rd, "get", args.redis_requests, 1)),
                 ("redis-benchmark SET -P 16", lambda: redis_ops(rd, "set", 4 * args.redis_requests, 16))]
        results = {name: {"without": [], "with": [], "ratio": []} for name, _ in cases}
        for r in range(1, args.rounds + 1):
            for name, run in cases:
                a = run()
                with AgentRun(args.redtap, pg.dir):
                    b = run()
                res = results[name]
                res["without"].append(a)
                res["with"].append(b)
                res["ratio"].append(round(b / a, 3))
                if not args.json:
                    print(f"round {r}: {name}: without {a:.0f}/s, with the agent {b:.0f}/s "
                          f"(ratio {b / a:.3f})", flush=True)
        summary = {name: {"median_without": statistics.median(v["without"]),
                          "median_with": statistics.median(v["with"]),
                          "median_ratio": statistics.median(v["ratio"]),
                          "min_ratio": min(v["ratio"]), "max_ratio": max(v["ratio"])}
                   for name, v in results.items()}
        if args.json:
            print(json.dumps({"rounds": results, "summary": summary}, indent=1))
        else:
            print("\nmedian ratios (with the agent / without):")
            for name, s in summary.items():
                print(f"  {name:32s} {s['median_without']:9.0f}/s -> {s['median_with']:9.0f}/s"
                      f"  ratio {s['median_ratio']:.3f} (min {s['min_ratio']:.3f}, max "
                      f"{s['max_ratio']:.3f})")
    finally:
        pg.stop()
        rd.stop()
        procs.stop_all()


if __name__ == "__main__":
    main()

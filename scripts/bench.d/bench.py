#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""scripts/bench driver: what the redtap agent costs, measured side by side.

A benchmark, not a test: it prints figures, it never fails on them. Everything runs on
loopback; it only signals processes it started.

Experiments (one invocation, one table, `--json` for machine output):
  1. saturated throughput: nginx (1 worker) pinned to CPU 1, wrk pinned to CPU 0, tiny body
     (/bench/tiny, 2 bytes) and a 2 KB static file (/bench/2k.html). Per round the agent
     runs are bracketed by baseline runs (B A B A ... B, both bodies interleaved); the ratio
     of a round is agent req/s / mean(baseline before, baseline after). Median + [min-max].
  2. losses: `ab -n 20000 -c 16 -k` per body with the agent running; transactions the agent
     counted (server side: nginx, client side: ab) against ab's own count.
  3. agent CPU (all threads, from /proc/PID/task/*/schedstat, ns-exact) per million records
     and per million transactions during the load runs (startup excluded), peak RSS (VmHWM;
     mostly the mmap'ed ring buffer) and heap (RssAnon).
  4. paced load (wrk -s delay.lua: each connection waits 1 ms between requests, ~20k req/s,
     unsaturated): p50/p99 latency and nginx CPU per request, with and without the agent.
  5. Google Benchmark micro-benchmarks (ns per transaction): parser, aggregation, event
     formatting, the whole reader-thread pipeline.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402  (the directory is put on the path first)
    HERE,
    PATHS,
    ROOT,
    log,
    proc_stat_busy,
    task_cpu_ns,
    status_kb,
    foreign_tracers,
    wait_idle,
    Nginx,
    Agent,
    agent_snapshot,
    delta,
    run_wrk,
    run_ab,
)


class Runner:
    def __init__(self, args, nginx, agent, workdir):
        self.a = args
        self.nginx = nginx
        self.agent = agent
        self.workdir = workdir
        self.runs = []

    def url(self, body):
        return f"http://127.0.0.1:{self.nginx.port}{PATHS[body]}"

    def measure(self, kind, body, variant, dur, script=None, conns=32):
        """One wrk run; `variant` is 'base' or the agent variant running now."""
        idle = wait_idle(self.a.idle_wait)
        busy0 = proc_stat_busy()
        ng0 = task_cpu_ns(self.nginx.worker)
        snap0 = agent_snapshot(self.agent, self.nginx.port, PATHS[body]) if variant != "base" else None
        r = run_wrk(self.url(body), dur, conns, self.a.client_cpu, script)
        ng1 = task_cpu_ns(self.nginx.worker)
        busy1 = proc_stat_busy()
        r.update(kind=kind, body=body, variant=variant, idle_before=round(idle, 3))
        r["foreign_agents"] = len(foreign_tracers(self.agent.proc.pid if self.agent else -1))
        r["nginx_us_per_req"] = (ng1 - ng0) / 1e3 / max(1, r["requests"])
        r["box_busy_frac"] = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
        if snap0 is not None:
            d = delta(snap0, agent_snapshot(self.agent, self.nginx.port, PATHS[body]))
            r["agent"] = d
            r["rss_hwm_kb"] = status_kb(self.agent.proc.pid, "VmHWM")
            r["rss_anon_kb"] = status_kb(self.agent.proc.pid, "RssAnon")
        self.runs.append(r)
        extra = ""
        if snap0 is not None:
            extra = (f" agent {r['agent']['cpu_ns'] / 1e9:.3f} CPU-s, "
                     f"{r['agent']['records']:.0f} records, {r['agent']['server']:.0f} server txns")
        log(f"{kind:9s} {body:4s} {variant:6s} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:.3f} ms  "
            f"p99 {r['p99_ms']:.3f} ms  nginx {r['nginx_us_per_req']:.2f} us/req{extra}")
        if r["non2xx"] or r["socket_errors"]:
            log(f"WARNING: {r['non2xx']} non-2xx answers, socket errors: {r['socket_errors'] or 0}")
        return r


# ---------------------------------------------------------------- statistics

def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def summarize(runner, variants, bodies, ab_results, micro):
    runs = runner.runs
    res = {"saturated": {}, "paced": {}, "losses": ab_results, "agent": {}, "micro": micro}
    for body in bodies:
        seq = [r for r in runs if r["kind"] == "saturated" and r["body"] == body]
        base = [r["rps"] for r in seq if r["variant"] == "base"]
        res["saturated"][body] = {"base_rps_median": med(base), "base_rps_min": min(base),
                                  "base_rps_max": max(base), "variants": {}}
        for v in variants:
            ratios = []
            for i, r in enumerate(seq):
                if r["variant"] != v:
                    continue
                before = next((x["rps"] for x in reversed(seq[:i]) if x["variant"] == "base"), None)
                after = next((x["rps"] for x in seq[i + 1:] if x["variant"] == "base"), None)
                nb = [x for x in (before, after) if x]
                ratios.append(r["rps"] / (sum(nb) / len(nb)))
            vr = [r for r in seq if r["variant"] == v]
            res["saturated"][body]["variants"][v] = {
                "rps_median": med([r["rps"] for r in vr]),
                "ratio_median": med(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                "ratio_of_medians": med([r["rps"] for r in vr]) / med(base),
                "rounds": len(ratios), "ratios": [round(x, 3) for x in ratios],
                "nginx_us_per_req": med([r["nginx_us_per_req"] for r in vr]),
                "base_nginx_us_per_req": med([r["nginx_us_per_req"] for r in seq
                                              if r["variant"] == "base"]),
            }
        pseq = [r for r in runs if r["kind"] == "paced" and r["body"] == body]
        pb = [r for r in pseq if r["variant"] == "base"]
        res["paced"][body] = {"base": {"rps": med([r["rps"] for r in pb]),
                                       "p50_ms": med([r["p50_ms"] for r in pb]),
                                       "p99_ms": med([r["p99_ms"] for r in pb]),
                                       "nginx_us_per_req": med([r["nginx_us_per_req"] for r in pb])},
                              "variants": {}}
        for v in variants:
            pv = [r for r in pseq if r["variant"] == v]
            if not pv:
                continue
            d = {"rps": med([r["rps"] for r in pv]),
                 "p50_ms": med([r["p50_ms"] for r in pv]),
                 "p99_ms": med([r["p99_ms"] for r in pv]),
                 "nginx_us_per_req": med([r["nginx_us_per_req"] for r in pv])}
            # Paired: each agent run against the mean of the baselines just before and after
            # it (the machine drifts; other load comes and goes), median over rounds.
            def paired(key, scale):
                diffs = []
                for i, r in enumerate(pseq):
                    if r["variant"] != v:
                        continue
                    nb = [x[key] for x in
                          (next((x for x in reversed(pseq[:i]) if x["variant"] == "base"), None),
                           next((x for x in pseq[i + 1:] if x["variant"] == "base"), None)) if x]
                    diffs.append((r[key] - sum(nb) / len(nb)) * scale)
                return med(diffs), diffs
            d["added_p50_us"], d["added_p50_us_rounds"] = paired("p50_ms", 1e3)
            d["added_p99_us"], d["added_p99_us_rounds"] = paired("p99_ms", 1e3)
            d["added_nginx_us_per_req"], d["added_nginx_us_rounds"] = paired("nginx_us_per_req", 1)
            res["paced"][body]["variants"][v] = d
    for v in variants:
        vr = [r for r in runs if r["variant"] == v and "agent" in r]
        cpu = sum(r["agent"]["cpu_ns"] for r in vr) / 1e9
        rec = sum(r["agent"]["records"] for r in vr)
        txn = sum(r["agent"]["transactions"] for r in vr)
        drops_k = {}
        drops_u = {}
        for r in vr:
            for k, x in r["agent"]["kernel_drops"].items():
                drops_k[k] = drops_k.get(k, 0) + x
            for k, x in r["agent"]["user_drops"].items():
                drops_u[k] = drops_u.get(k, 0) + x
        sat = [r for r in vr if r["kind"] == "saturated"]
        res["agent"][v] = {
            "cpu_s": cpu, "records": rec, "transactions": txn,
            "cpu_s_per_million_records": cpu / rec * 1e6 if rec else float("nan"),
            "cpu_s_per_million_transactions": cpu / txn * 1e6 if txn else float("nan"),
            "cpu_s_per_million_records_saturated":
                sum(r["agent"]["cpu_ns"] for r in sat) / 1e9 /
                max(1, sum(r["agent"]["records"] for r in sat)) * 1e6,
            "rss_hwm_mb": max([r["rss_hwm_kb"] for r in vr] or [0]) / 1024,
            "rss_anon_mb": max([r["rss_anon_kb"] for r in vr] or [0]) / 1024,
            "kernel_drops": {k: x for k, x in drops_k.items() if x},
            "userspace_drops": {k: x for k, x in drops_u.items() if x},
            "startup_s": med(runner.startups.get(v, [])),
        }
    res["runs_meta"] = {"total": len(runs),
                        "foreign": sum(1 for r in runs if r.get("foreign_agents")),
                        "busy": sum(1 for r in runs if r.get("idle_before", 0) >= 0.05)}
    return res


def fmt_table(res, variants, bodies, args):
    L = []
    names = {"agent": "agent (default config)", "events": "agent + --events FILE",
             "server": "agent, nginx only (`include_processes: [nginx]`)"}
    L.append(f"redtap scripts/bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.uname().release}, "
             f"{os.cpu_count()} CPUs; nginx 1 worker on CPU {args.server_cpu}, load on CPU "
             f"{args.client_cpu}; {args.rounds} rounds x {args.duration} s (saturated, wrk "
             f"-t1 -c32), {args.paced_rounds} x {args.paced_duration} s paced")
    L.append("")
    L.append("| metric | " + " | ".join("tiny body" if b == "tiny" else "2 KB file" for b in bodies) + " |")
    L.append("|---|" + "---|" * len(bodies))
    L.append("| baseline req/s, median [min–max] | " + " | ".join(
        f"{res['saturated'][b]['base_rps_median']:,.0f} [{res['saturated'][b]['base_rps_min']:,.0f}–"
        f"{res['saturated'][b]['base_rps_max']:,.0f}]" for b in bodies) + " |")
    for v in variants:
        L.append(f"| **throughput ratio**, {names[v]}: median [min–max] of rounds | " + " | ".join(
            "**{:.2f}** [{:.2f}–{:.2f}]".format(
                res['saturated'][b]['variants'][v]['ratio_median'],
                res['saturated'][b]['variants'][v]['ratio_min'],
                res['saturated'][b]['variants'][v]['ratio_max']) for b in bodies) + " |")
        L.append(f"| nginx CPU µs/request saturated, base → {v} | " + " | ".join(
            "{:.2f} → {:.2f}".format(res['saturated'][b]['variants'][v]['base_nginx_us_per_req'],
                                     res['saturated'][b]['variants'][v]['nginx_us_per_req'])
            for b in bodies) + " |")
    for v in variants:
        L.append(f"| lost transactions, `ab -n {args.ab_n} -c 16 -k`, {v} (server / client side) | " +
                 " | ".join("{} / {} of {}".format(
                     res['losses'][v][b]['lost_server'],
                     "n/a" if v == "server" else res['losses'][v][b]['lost_client'],
                     res['losses'][v][b]['ab_complete']) for b in bodies) + " |")
    b0 = res["paced"]
    L.append("| paced req/s (delay.lua, -c32), base / agent | " + " | ".join(
        "{:,.0f} / {:,.0f}".format(b0[b]['base']['rps'], b0[b]['variants'].get(variants[0], {}).get('rps', float('nan')))
        for b in bodies) + " |")
    L.append("| paced p50 / p99 latency, base (ms) | " + " | ".join(
        "{:.3f} / {:.3f}".format(b0[b]['base']['p50_ms'], b0[b]['base']['p99_ms']) for b in bodies) + " |")
    for v in variants:
        if not all(v in b0[b]["variants"] for b in bodies):
            continue
        L.append(f"| **added p50 / p99** at paced load, {v} (µs; median of paired rounds) | " + " | ".join(
            "{:+.0f} / **{:+.0f}**".format(b0[b]['variants'][v]['added_p50_us'],
                                            b0[b]['variants'][v]['added_p99_us']) for b in bodies) + " |")
        L.append(f"| **added nginx CPU per request** at paced load, {v} (µs; paired; medians base → agent) | " + " | ".join(
            "**{:+.2f}** ({:.2f} → {:.2f})".format(b0[b]['variants'][v]['added_nginx_us_per_req'],
                                                 b0[b]['base']['nginx_us_per_req'],
                                                 b0[b]['variants'][v]['nginx_us_per_req'])
            for b in bodies) + " |")
    L.append("")
    L.append("| agent process | " + " | ".join(names[v] for v in variants) + " |")
    L.append("|---|" + "---|" * len(variants))
    ag = res["agent"]
    L.append("| **CPU-s per million records** (all load runs; saturated only) | " + " | ".join(
        "**{:.3f}** ({:.3f})".format(ag[v]['cpu_s_per_million_records'],
                                     ag[v]['cpu_s_per_million_records_saturated']) for v in variants) + " |")
    L.append("| CPU-s per million transactions (server + client sides) | " + " | ".join(
        "{:.3f}".format(ag[v]['cpu_s_per_million_transactions']) for v in variants) + " |")
    L.append("| records / transactions measured | " + " | ".join(
        "{:,.0f} / {:,.0f}".format(ag[v]['records'], ag[v]['transactions']) for v in variants) + " |")
    L.append("| peak RSS (VmHWM; ring buffer mapping included) / heap (RssAnon) | " + " | ".join(
        "{:.0f} MB / {:.1f} MB".format(ag[v]['rss_hwm_mb'], ag[v]['rss_anon_mb']) for v in variants) + " |")
    L.append("| kernel / userspace drops during the runs (`truncated` = a capture cut at max_bytes_per_call, not a loss) | " + " | ".join(
        "{} / {}".format(ag[v]['kernel_drops'] or 0, ag[v]['userspace_drops'] or 0) for v in variants) + " |")
    L.append("| startup to /ready (s) | " + " | ".join(
        "{:.2f}".format(ag[v]['startup_s']) for v in variants) + " |")
    runs = res.get("runs_meta", {})
    if runs.get("foreign", 0) or runs.get("busy", 0):
        L.append("")
        L.append(f"Warning: {runs['foreign']} of {runs['total']} runs had another redtap agent "
                 f"tracing the box (baseline not clean); {runs['busy']} started on a machine "
                 f"more than 5 % busy. Compare only figures from a quiet machine.")
    if res["micro"]:
        L.append("")
        L.append("| micro-benchmark (Google Benchmark, this CPU) | ns per transaction |")
        L.append("|---|---|")
        for name, ns in res["micro"].items():
            L.append(f"| `{name}` | {ns:,.0f} |")
    return "\n".join(L)


# ---------------------------------------------------------------- micro-benchmarks

def run_micro(bench_bin, min_time, cpu):
    if not os.path.exists(bench_bin):
        log(f"no {bench_bin}: micro-benchmarks skipped")
        return {}
    flt = ("BM_HttpConnectionFeed$|BM_MetricsStoreRecord$|BM_FormatHttpEvent|"
           "BM_ReaderPipeline")
    out = subprocess.run(["taskset", "-c", str(cpu), bench_bin, f"--benchmark_filter={flt}",
                          f"--benchmark_min_time={min_time}", "--benchmark_format=json"],
                         capture_output=True, text=True, timeout=600)
    try:
        data = json.loads(out.stdout)
    except json.JSONDecodeError:
        log("micro-benchmarks failed: " + out.stderr[-500:])
        return {}
    res = {}
    for b in data.get("benchmarks", []):
        # Every benchmark in the filter processes one transaction per iteration.
        res[b["name"]] = b["cpu_time"] * {"ns": 1, "us": 1e3, "ms": 1e6}[b.get("time_unit", "ns")]
    return res


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(prog="scripts/bench")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--quick", action="store_true", help="~2 min: 3 short rounds")
    ap.add_argument("--server-only", action="store_true",
                    help="also bench the agent capturing nginx only (a variant)")
    ap.add_argument("--events", metavar="FILE", nargs="?", const="auto",
                    help="also bench the agent writing events to FILE (second variant)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10, help="s per saturated run")
    ap.add_argument("--paced-rounds", type=int, default=3)
    ap.add_argument("--paced-duration", type=int, default=10)
    ap.add_argument("--ab-n", type=int, default=20000)
    ap.add_argument("--port", type=int, default=18480)
    ap.add_argument("--agent-port", type=int, default=19464)
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--idle-wait", type=float, default=5.0,
                    help="max s to wait for an idle machine before each run")
    ap.add_argument("--no-micro", action="store_true")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "redtap"))
    ap.add_argument("--bench-binary", default=os.path.join(ROOT, "build", "tests", "bench",
                                                           "redtap_bench"))
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--soak", metavar="MINUTES", nargs="?", type=float, const=10.0,
                    help="only the soak: MINUTES (default 10) of steady paced load with events "
                         "on; the agent's CPU per transaction and RSS must stay flat")
    ap.add_argument("--db", action="store_true",
                    help="only the databases: pgbench (select-only, prepared, TPC-B-like) and "
                         "redis-benchmark with and without the agent, side by side "
                         "(tests/bench/db_overhead.py)")
    ap.add_argument("--from-json", metavar="FILE",
                    help="print the table of an earlier --out/--json result, run nothing")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            old = json.load(f)
        for k in ("rounds", "duration", "paced_rounds", "paced_duration", "ab_n",
                  "server_cpu", "client_cpu"):
            setattr(args, k, old["config"][k])
        variants = [v for v in ("agent", "server", "events") if v in old["agent"]]
        runner = Runner(args, None, None, None)
        runner.runs = old["runs"]
        runner.startups = {v: [old["agent"][v]["startup_s"]] for v in variants}
        res = summarize(runner, variants, ["tiny", "2k"], old["losses"], old["micro"])
        print(json.dumps(res, indent=1, default=str) if args.json else fmt_table(res, variants, ["tiny", "2k"], args))
        return
    if args.db:
        argv = [sys.executable, os.path.join(ROOT, "tests", "bench", "db_overhead.py"),
                "--redtap", args.binary, "--rounds", str(3 if args.quick else args.rounds)]
        if args.json:
            argv.append("--json")
        if not args.out:
            subprocess.run(argv, check=True)  # streams round by round
            return
        out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True).stdout
        print(out, end="")
        with open(args.out, "w") as f:
            f.write(out)
        return
    if args.soak:
        from soak import print_soak, run_soak  # noqa: PLC0415
        workdir = tempfile.mkdtemp(prefix="redtap-soak.")
        os.chmod(workdir, 0o755)
        binary = os.path.join(workdir, "redtap")
        shutil.copy2(args.binary, binary)
        try:
            res = run_soak(args, binary, workdir, args.soak)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print_soak(res, args.json)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(res, f, indent=1)
        return
    if args.quick:
        args.rounds, args.duration = 3, 3
        args.paced_rounds, args.paced_duration = 1, 4
        args.idle_wait = 3.0

    workdir = tempfile.mkdtemp(prefix="redtap-bench.")
    os.chmod(workdir, 0o755)  # nginx workers run unprivileged and must read www/
    variants = ["agent"]
    events_file = None
    server_config = None
    if args.server_only:
        # The default config, capturing nginx only: wrk's syscalls still hit the hooks but
        # stop at the connection lookup (what PERF-FLOOR.md's PID-filtered probes measured).
        variants.append("server")
        server_config = os.path.join(workdir, "server-only.yaml")
        with open(os.path.join(ROOT, "config", "redtap.yaml")) as f:
            text = f.read()
        text, n = re.subn(r"(?m)^  include_processes: \[\]$", "  include_processes: [nginx]", text)
        if n != 1:
            raise SystemExit("bench: config/redtap.yaml has no 'include_processes: []' line")
        with open(server_config, "w") as f:
            f.write(text)
    if args.events:
        variants.append("events")
        events_file = os.path.join(workdir, "events.ndjson") if args.events == "auto" else args.events
    bodies = ["tiny", "2k"]
    # A private copy: a rebuild of build/ during the run must not mix two agents in one table.
    binary = os.path.join(workdir, "redtap")
    shutil.copy2(args.binary, binary)
    nginx = Nginx(workdir, args.port)
    agents = {"agent": Agent(binary, args.agent_port, workdir),
              "server": Agent(binary, args.agent_port, workdir, config=server_config),
              "events": Agent(binary, args.agent_port, workdir, events_file)}
    t_start = time.time()
    try:
        nginx.start(args.server_cpu)
        runner = Runner(args, nginx, None, workdir)
        runner.startups = {}

        def with_agent(v, fn):
            runner.agent = agents[v]
            agents[v].start()
            runner.startups.setdefault(v, []).append(agents[v].startup_s)
            try:
                return fn()
            finally:
                agents[v].stop()
                runner.agent = None

        log(f"warm-up; workdir {workdir}")
        for b in bodies:
            run_wrk(runner.url(b), 2, 32, args.client_cpu)

        # 1. saturated: B A [E] B A [E] ... B, bodies alternating order every step.
        log(f"saturated: {args.rounds} rounds x {len(bodies)} bodies x {args.duration} s")
        step = 0

        def bodies_in_order():
            nonlocal step
            step += 1
            return bodies if step % 2 else list(reversed(bodies))

        for b in bodies_in_order():
            runner.measure("saturated", b, "base", args.duration)
        for rnd in range(args.rounds):
            for v in (variants if rnd % 2 == 0 else list(reversed(variants))):
                order = bodies_in_order()
                with_agent(v, lambda: [runner.measure("saturated", b, v, args.duration)
                                       for b in order])
                for b in bodies_in_order():
                    runner.measure("saturated", b, "base", args.duration)

        # 2. paced load (unsaturated), B A B A ... B
        log(f"paced: {args.paced_rounds} rounds x {len(bodies)} bodies x {args.paced_duration} s")
        lua = os.path.join(HERE, "delay.lua")
        for b in bodies_in_order():
            runner.measure("paced", b, "base", args.paced_duration, script=lua)
        for rnd in range(args.paced_rounds):
            for v in variants:
                order = bodies_in_order()
                with_agent(v, lambda: [runner.measure("paced", b, v, args.paced_duration,
                                                      script=lua) for b in order])
                for b in bodies_in_order():
                    runner.measure("paced", b, "base", args.paced_duration, script=lua)

        # 3. losses: exact counts with ab.
        ab_results = {}
        for v in variants:
            def do_ab():
                out = {}
                for b in bodies:
                    wait_idle(args.idle_wait)
                    s0 = agent_snapshot(agents[v], nginx.port, PATHS[b])
                    r = run_ab(runner.url(b), args.ab_n, 16, args.client_cpu)
                    time.sleep(0.5)  # two poll intervals: let the reader drain
                    d = delta(s0, agent_snapshot(agents[v], nginx.port, PATHS[b]))
                    out[b] = {"ab_complete": r["complete"], "ab_failed": r["failed"],
                              "agent_server": int(d["server"]), "agent_client": int(d["client"]),
                              "lost_server": r["complete"] - int(d["server"]),
                              "lost_client": r["complete"] - int(d["client"]),
                              "kernel_drops": {k: x for k, x in d["kernel_drops"].items() if x},
                              "userspace_drops": {k: x for k, x in d["user_drops"].items() if x}}
                    log(f"ab {b}: {out[b]}")
                return out
            ab_results[v] = with_agent(v, do_ab)

        # 4. micro-benchmarks
        micro = {} if args.no_micro else run_micro(args.bench_binary,
                                                   "0.2" if args.quick else "1",
                                                   args.client_cpu)
    finally:
        for a in agents.values():
            a.stop()
        nginx.stop()

    res = summarize(runner, variants, bodies, ab_results, micro)
    res["config"] = {k: v for k, v in vars(args).items()}
    res["runtime_s"] = round(time.time() - t_start, 1)
    res["runs"] = runner.runs
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1, default=str)
    if args.json:
        json.dump(res, sys.stdout, indent=1, default=str)
        print()
    else:
        print(fmt_table(res, variants, bodies, args))
        print(f"\n(runtime {res['runtime_s']:.0f} s; raw runs: --json)")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

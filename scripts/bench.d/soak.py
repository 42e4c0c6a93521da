# SPDX-License-Identifier: Apache-2.0
"""`scripts/bench --soak [MINUTES]`: the agent under a steady paced load for MINUTES (10 by
default), events on, sampled every 30 s: requests, the agent's CPU per transaction, its RSS
and heap (RssAnon). Flat means: the last third of the samples within 10 % (CPU per
transaction) and 4 MiB (RssAnon) of the first third. Prints a table, or JSON."""
import json
import os
import statistics
import time

from benchlib import (Agent, Nginx, agent_snapshot, delta, log, run_wrk, status_kb)  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
INTERVAL_S = 30


def run_soak(args, binary, workdir, minutes):
    nginx = Nginx(workdir, args.port)
    agent = Agent(binary, args.agent_port, workdir, os.path.join(workdir, "soak-events.ndjson"))
    samples = []
    try:
        nginx.start(args.server_cpu)
        agent.start()
        url = f"http://127.0.0.1:{args.port}/bench/tiny"
        prev = agent_snapshot(agent, args.port, "/bench/tiny")
        rounds = max(1, int(minutes * 60 // INTERVAL_S))
        for i in range(rounds):
            # Paced, not saturated: each of 32 connections waits 1 ms between requests.
            w = run_wrk(url, INTERVAL_S, 32, args.client_cpu, os.path.join(HERE, "delay.lua"))
            snap = agent_snapshot(agent, args.port, "/bench/tiny")
            d = delta(prev, snap)
            prev = snap
            txns = max(d["transactions"], 1)
            s = {
                "minute": round((i + 1) * INTERVAL_S / 60, 1),
                "rps": w["rps"],
                "transactions": d["transactions"],
                "records": d["records"],
                "cpu_us_per_txn": d["cpu_ns"] / 1e3 / txns,
                "vmrss_mb": status_kb(agent.proc.pid, "VmRSS") / 1024,
                "rssanon_mb": status_kb(agent.proc.pid, "RssAnon") / 1024,
                "drops": sum(d["kernel_drops"].values()) + sum(d["user_drops"].values()),
                "drop_reasons": {**{f"kernel:{k}": v for k, v in d["kernel_drops"].items() if v},
                                 **{f"user:{k}": v for k, v in d["user_drops"].items() if v}},
            }
            samples.append(s)
            log(f"soak {s['minute']:5.1f} min: {s['rps']:8.0f} req/s, "
                f"{s['cpu_us_per_txn']:.2f} us CPU/txn, RssAnon {s['rssanon_mb']:.1f} MB")
    finally:
        agent.stop()
        nginx.stop()
    third = max(1, len(samples) // 3)
    first, last = samples[:third], samples[-third:]
    cpu0 = statistics.median(x["cpu_us_per_txn"] for x in first)
    cpu1 = statistics.median(x["cpu_us_per_txn"] for x in last)
    rss0 = statistics.median(x["rssanon_mb"] for x in first)
    rss1 = statistics.median(x["rssanon_mb"] for x in last)
    verdict = {
        "cpu_us_per_txn_first": cpu0, "cpu_us_per_txn_last": cpu1,
        "rssanon_mb_first": rss0, "rssanon_mb_last": rss1,
        "cpu_flat": abs(cpu1 - cpu0) <= 0.10 * max(cpu0, 1e-9),
        "rss_flat": abs(rss1 - rss0) <= 4.0,
        "drops": sum(x["drops"] for x in samples),
        "drop_reasons": {},
    }
    for x in samples:
        for k, v in x.get("drop_reasons", {}).items():
            verdict["drop_reasons"][k] = verdict["drop_reasons"].get(k, 0) + v
    return {"minutes": minutes, "interval_s": INTERVAL_S, "samples": samples, "verdict": verdict}


def fmt_soak(res):
    lines = [f"Soak: {res['minutes']} min of paced load (wrk -c32, 1 ms between requests per "
             f"connection), events on, sampled every {res['interval_s']} s", "",
             "| minute | req/s | transactions | agent CPU µs/txn | VmRSS MB | RssAnon MB | drops |",
             "|---|---|---|---|---|---|---|"]
    for s in res["samples"]:
        lines.append(f"| {s['minute']} | {s['rps']:.0f} | {s['transactions']:.0f} | "
                     f"{s['cpu_us_per_txn']:.2f} | {s['vmrss_mb']:.1f} | {s['rssanon_mb']:.1f} | "
                     f"{s['drops']:.0f} |")
    v = res["verdict"]
    lines += ["", f"CPU per transaction: {v['cpu_us_per_txn_first']:.2f} → "
              f"{v['cpu_us_per_txn_last']:.2f} µs ({'flat' if v['cpu_flat'] else 'NOT flat'}); "
              f"RssAnon {v['rssanon_mb_first']:.1f} → {v['rssanon_mb_last']:.1f} MB "
              f"({'flat' if v['rss_flat'] else 'NOT flat'}); drops {v['drops']:.0f} "
              f"{json.dumps(v.get('drop_reasons', {}))}"]
    return "\n".join(lines)


def print_soak(res, as_json):
    print(json.dumps(res, indent=1) if as_json else fmt_soak(res))

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): the CLI around capture: config errors, kernel-side filters,
doctor, version, /health and /ready, and that the agent leaves no BPF program behind."""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import harness

REDTAP = harness.find_redtap()


def run(*args, **kw):
    return subprocess.run([REDTAP, *args], capture_output=True, text=True, timeout=60, **kw)


# Names of the capture programs (bpf/progs/capture.bpf.c), as the kernel shows them.
CAPTURE_PROGS = {"read_exit", "write_exit", "readv_exit", "writev_exit", "recvfrom_exit",
                 "sendto_exit", "recvmsg_exit", "sendmsg_exit", "sendfile_exit",
                 "accept4_exit", "accept_exit", "connect_exit", "close_enter"}


def bpf_prog_ids(names=None):
    """Loaded BPF program ids (only those named in `names` when given)."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                         check=True).stdout
    return {p["id"] for p in json.loads(out or "[]") if names is None or p.get("name") in names}


class AgentCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="redtap-cli-")
        self.procs = harness.Procs()

    def tearDown(self):
        self.procs.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_version(self):
        r = run("version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^redtap \d+\.\d+\.\d+ \(libbpf v?1\.\d+")

    def test_bad_config_names_the_key_and_exits_nonzero(self):
        bad = self.write("bad.yaml", "capture:\n  max_bytes_per_call: 1000\n")
        for cmd in (["check-config", "--config", bad], ["run", "--config", bad]):
            r = run(*cmd)
            self.assertNotEqual(r.returncode, 0, cmd)
            self.assertIn("capture.max_bytes_per_call", r.stderr)
            self.assertEqual(r.stderr.count("\n"), 1, r.stderr)  # one clear line
        unknown = self.write("unknown.yaml", "capture:\n  max_bytes: 10\n")
        r = run("check-config", "--config", unknown)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("capture.max_bytes", r.stderr)
        r = run("check-config", "--config", os.path.join(self.tmp, "missing.yaml"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("missing.yaml", r.stderr)
        good = self.write("good.yaml", "filter:\n  exclude_ports: [22]\n")
        self.assertEqual(run("check-config", "--config", good).returncode, 0)

    def test_doctor(self):
        r = run("doctor")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for item in ("kernel BTF", "tracefs", "capture programs", "hook tracepoint",
                     "hook kprobe", "hook fentry", "lockdown", "capabilities"):
            self.assertIn(item, r.stdout)
        self.assertIn("capture: can run on this host", r.stdout)

    def test_filters_apply_in_kernel_and_health_ready(self):
        be_in, be_out = harness.free_port(), harness.free_port()
        for p in (be_in, be_out):
            self.procs.start([sys.executable, os.path.join(harness.HERE, "backend.py"), str(p)])
            harness.wait_port(p)
        cfg = self.write("f.yaml", f"filter:\n  exclude_ports: [{be_out}]\n")
        before = bpf_prog_ids()
        agent = harness.Agent(REDTAP, self.tmp, self.procs, ["--config", cfg])
        agent.start()
        mine = bpf_prog_ids(CAPTURE_PROGS) - before
        self.assertGreaterEqual(len(mine), len(CAPTURE_PROGS))  # every capture program loaded
        with urllib.request.urlopen(f"http://127.0.0.1:{agent.http_port}/health") as r:
            self.assertEqual(r.status, 200)
        for p in (be_in, be_out):
            for _ in range(3):
                urllib.request.urlopen(f"http://127.0.0.1:{p}/status/200").read()
        time.sleep(0.2)
        rc, secs = agent.stop()
        self.assertEqual(rc, 0)
        ports = [e["server.port"] for e in agent.read_events()]
        self.assertEqual(ports.count(be_in), 6)   # 3 client (urllib) + 3 server (backend)
        self.assertEqual(ports.count(be_out), 0)  # excluded in the kernel
        # Every program the agent loaded is gone once it exited.
        self.assertEqual(mine & bpf_prog_ids(), set())

    def test_event_selection_keeps_errors_and_slow_and_counts_the_rest(self):
        # events.select: sample with a ratio of 0: only errors and slow ones are written;
        # the metrics still count everything, the rest is counted as sampled_out.
        be = harness.free_port()
        self.procs.start([sys.executable, os.path.join(harness.HERE, "backend.py"), str(be)])
        harness.wait_port(be)
        cfg = self.write("s.yaml", "events:\n  select: sample\n  sample_ratio: 0\n"
                                   "  slow_threshold: 300ms\n")
        agent = harness.Agent(REDTAP, self.tmp, self.procs, ["--config", cfg])
        agent.start()
        for path, n in (("/status/200", 20), ("/status/503", 3), ("/slow?ms=400", 2)):
            for _ in range(n):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{be}{path}").read()
                except urllib.error.HTTPError as e:
                    self.assertEqual(e.code, 503)
        time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{agent.http_port}/metrics") as r:
            metrics = r.read().decode()
        rc, _ = agent.stop()
        self.assertEqual(rc, 0)
        got = collections.Counter((e["kind"], e["url.path"]) for e in agent.read_events()
                                  if e.get("server.port") == be)
        # Both sides (urllib and the backend) of each 503 and each slow call; no 200 event.
        self.assertEqual(dict(got), {("client", "/status/503"): 3, ("server", "/status/503"): 3,
                                     ("client", "/slow"): 2, ("server", "/slow"): 2})
        counts = dict(re.findall(r'redtap_agent_events_total\{outcome="(\w+)"\} (\d+)', metrics))
        # Written: every line of the file at the time of the scrape (other traffic on the host
        # and "tcp" events included); sampled out: at least our 20 x 2 sides of 200s.
        self.assertGreaterEqual(int(counts["written"]), 10, metrics)
        self.assertLessEqual(int(counts["written"]), len(agent.read_events(None)), metrics)
        self.assertGreaterEqual(int(counts["sampled_out"]), 40, metrics)
        self.assertEqual(int(counts["dropped"]), 0, metrics)


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main(verbosity=2)

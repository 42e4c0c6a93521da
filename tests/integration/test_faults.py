#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): faults an agent meets in production.

- SIGKILL (OOM killer, `kubectl delete --force`): no BPF program, link or uprobe is left
  behind, and an agent started right after works;
- SIGHUP (logrotate's postrotate, `systemctl reload`): the events file is opened again at its
  path, the agent keeps running;
- the events file deleted under the agent: opened again within a second, counted;
- the disk full: lost events counted by reason, the agent stays up and keeps capturing.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import harness
from harness import wait_for

REDTAP = harness.find_redtap()


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def metric(text, name, **labels):
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head == name and not labels:
            return float(value)
        if all(f'{k}="{v}"' in head for k, v in labels.items()) and head.startswith(name + "{"):
            return float(value)
    return None


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class Faults(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="redtap-faults-")
        os.chmod(self.tmp, 0o755)  # nginx workers run unprivileged
        self.procs = harness.Procs()
        self.cleanups = []
        nginx = harness.Nginx(self.tmp, self.procs, harness.free_port())
        nginx.start()
        self.ng = nginx.port

    def tearDown(self):
        self.procs.stop_all()
        for c in reversed(self.cleanups):
            c()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def requests(self, n, path="/ok"):
        for _ in range(n):
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ng}{path}", timeout=5) as r:
                self.assertEqual(r.status, 200)

    def ours(self, events):
        """Events of this test's nginx (other processes on the host are captured too)."""
        return [e for e in events if e.get("server.port") == self.ng]

    def served(self, agent):
        text = get(f"http://127.0.0.1:{agent.http_port}/metrics")[1]
        return metric(text, "http_server_request_duration_seconds_count", service_name="nginx",
                      http_route="/ok") or 0

    def test_sigkill_leaves_nothing_and_a_restart_works(self):
        agent = harness.Agent(REDTAP, self.tmp, self.procs)
        agent.start()
        held = harness.bpf_ids_held(agent.proc.pid)
        self.assertTrue(held["prog"], "the agent holds no BPF program?")
        self.assertTrue(held["link"], "the agent holds no BPF link?")
        uprobes_before = read("/sys/kernel/tracing/uprobe_events")
        agent.proc.send_signal(signal.SIGKILL)
        agent.proc.wait(timeout=10)
        agent.logf.close()
        # The kernel frees programs and detaches links once their last fd is closed.
        def gone():
            return not (held["prog"] & harness.bpf_live_ids("prog")) and \
                not (held["link"] & harness.bpf_live_ids("link"))
        self.assertTrue(wait_for(gone, 10), (held, harness.bpf_live_ids("prog") & held["prog"]))
        self.assertEqual(read("/sys/kernel/tracing/uprobe_events"), uprobes_before,
                         "uprobe events left in tracefs")
        # A restart right after works: ready, and counting.
        again = harness.Agent(REDTAP, self.tmp, self.procs)
        again.start()
        self.requests(5)
        self.assertEqual(wait_for(lambda: self.served(again) == 5 and 5, 10), 5)
        rc, _ = again.stop()
        self.assertEqual(rc, 0)

    def test_sighup_reopens_the_events_file(self):
        agent = harness.Agent(REDTAP, self.tmp, self.procs)
        agent.start()
        self.requests(3)
        self.assertTrue(wait_for(lambda: len(self.ours(agent.read_events())) >= 6, 10))
        rotated = agent.events + ".1"
        os.rename(agent.events, rotated)  # what logrotate does, then postrotate: SIGHUP
        agent.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: os.path.exists(agent.events), 5), "not reopened")
        self.requests(4)
        # New events in the new file, none lost in the old one; the agent did not restart.
        self.assertTrue(wait_for(lambda: len(self.ours(agent.read_events())) >= 8, 10),
                        agent.read_log())
        new = [e for e in self.ours(agent.read_events()) if e.get("url.path") == "/ok"]
        self.assertEqual(len(new), 8, json.dumps(new, indent=1)[:3000])  # client + server, 4 each
        with open(rotated) as f:
            old = [json.loads(line) for line in f]
        self.assertEqual(len([e for e in self.ours(old) if e.get("url.path") == "/ok"]), 6)
        self.assertIsNone(agent.proc.poll())
        text = get(f"http://127.0.0.1:{agent.http_port}/metrics")[1]
        self.assertGreaterEqual(metric(text, "redtap_agent_events_file_reopened_total"), 1)
        self.assertIn("SIGHUP: events file reopened", agent.read_log())
        rc, _ = agent.stop()
        self.assertEqual(rc, 0)

    def test_events_file_deleted_is_opened_again(self):
        agent = harness.Agent(REDTAP, self.tmp, self.procs)
        agent.start()
        self.requests(2)
        self.assertTrue(wait_for(lambda: len(self.ours(agent.read_events())) >= 4, 10))
        os.unlink(agent.events)
        self.assertTrue(wait_for(lambda: os.path.exists(agent.events), 5),
                        "a deleted events file was not opened again")
        self.requests(3)
        self.assertTrue(wait_for(lambda: len(self.ours(agent.read_events())) >= 6, 10),
                        agent.read_log())
        text = get(f"http://127.0.0.1:{agent.http_port}/metrics")[1]
        self.assertGreaterEqual(metric(text, "redtap_agent_events_file_reopened_total"), 1)
        rc, _ = agent.stop()
        self.assertEqual(rc, 0)

    def test_disk_full_is_counted_and_capture_goes_on(self):
        full = os.path.join(self.tmp, "full")
        os.makedirs(full)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "redtap-test-full", full],
                       check=True)
        self.cleanups.append(lambda: subprocess.run(["umount", "-l", full], check=False))
        agent = harness.Agent(REDTAP, full, self.procs)
        agent.log = os.path.join(self.tmp, "agent.log")  # the log must not fill the disk
        agent.start()
        n = 300  # ~1 KB of events each (client + server): far beyond 64 KiB
        self.requests(n)
        self.assertEqual(wait_for(lambda: self.served(agent) == n and n, 15), n)

        def lost():
            text = get(f"http://127.0.0.1:{agent.http_port}/metrics")[1]
            return metric(text, "redtap_agent_userspace_drops_total", reason="event_write_failed")
        self.assertTrue(wait_for(lambda: (lost() or 0) > 0, 10), "write failures not counted")
        self.assertEqual(get(f"http://127.0.0.1:{agent.http_port}/health")[0], 200)
        self.assertIsNone(agent.proc.poll())
        self.assertIn("cannot write to", agent.read_log())
        rc, _ = agent.stop()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main(verbosity=2)

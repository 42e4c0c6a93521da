#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): the same traffic seen by the eBPF agent and by `redtap pcap` on a
tcpdump capture of it must give the same server transactions, as a multiset of
(method, path, status, server.port).

Topology: curl / ab --> nginx --/proxy/--> backend.py, on loopback; `redtap run --events`
and `tcpdump -i lo -w FILE port NGINX or port BACKEND` run around the traffic; then
`redtap pcap FILE --events` (REDTAP_PCAP=/path/to/binary overrides the binary, which must
accept `pcap FILE --events F`).
"""
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

import harness

REDTAP = harness.find_redtap()
REDTAP_PCAP = os.environ.get("REDTAP_PCAP", REDTAP)


def key(e):
    return (e["http.request.method"], e["url.path"], e.get("http.response.status_code", 0),
            e["server.port"])


class PcapVsEbpf(harness.Scenario):
    PREFIX = "redtap-pcap-it-"

    @classmethod
    def _run(cls):
        cls.start_nginx()

        agent = harness.Agent(REDTAP, cls.tmp, cls.procs)
        agent.start()
        cls.pcap = os.path.join(cls.tmp, "lo.pcap")
        tcpdump = cls.procs.start(
            ["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w", cls.pcap,
             f"tcp port {cls.ng} or tcp port {cls.be}"], stderr=subprocess.PIPE)
        # tcpdump prints "listening on lo" once the capture is open.
        line = tcpdump.stderr.readline().decode(errors="replace")
        if "listening" not in line:
            raise RuntimeError(f"tcpdump did not start: {line}")
        time.sleep(0.2)

        base = f"http://127.0.0.1:{cls.ng}"
        for path in ["/ok", "/created", "/teapot", "/fail", "/static/2k.html", "/nope",
                     "/proxy/status/204", "/proxy/chunked", "/proxy/api/cart?status=503",
                     "/proxy/slow?ms=30"]:
            subprocess.run(["curl", "-sS", "-o", "/dev/null", base + path], check=True,
                           timeout=30)
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "-X", "POST", "--data-binary",
                        "x" * 5000, base + "/proxy/echo"], check=True, timeout=30)
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "-I", base + "/ok"], check=True,
                       timeout=30)
        # Keep-alive volume: several requests per connection.
        subprocess.run(["ab", "-q", "-k", "-n", "300", "-c", "4", base + "/ok"],
                       stdout=subprocess.DEVNULL, check=True, timeout=60)
        subprocess.run(["ab", "-q", "-k", "-n", "60", "-c", "2", base + "/proxy/status/201"],
                       stdout=subprocess.DEVNULL, check=True, timeout=60)
        time.sleep(1.0)  # let the agent drain and tcpdump write
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
        tcpdump.stderr.close()
        rc, _ = agent.stop()
        assert rc == 0, agent.read_log()
        ports = {cls.ng, cls.be}
        cls.ebpf = collections.Counter(
            key(e) for e in agent.read_events()
            if e["kind"] == "server" and e["server.port"] in ports)

        events = os.path.join(cls.tmp, "pcap-events.ndjson")
        p = subprocess.run([REDTAP_PCAP, "pcap", cls.pcap, "--events", events],
                           capture_output=True, text=True, timeout=120)
        cls.pcap_log = p.stderr
        assert p.returncode == 0, p.stderr
        with open(events) as f:
            cls.pcap_events = [json.loads(line) for line in f]
        cls.from_pcap = collections.Counter(
            key(e) for e in cls.pcap_events if e["kind"] == "server" and e["server.port"] in ports)

    def test_same_transactions(self):
        self.assertGreater(sum(self.ebpf.values()), 370)
        missing = self.ebpf - self.from_pcap
        extra = self.from_pcap - self.ebpf
        self.assertEqual((dict(missing), dict(extra)), ({}, {}),
                         f"eBPF-only: {dict(missing)}; pcap-only: {dict(extra)}; "
                         f"pcap log: {self.pcap_log[-2000:]}")

    def test_pcap_events_are_well_formed(self):
        for e in self.pcap_events:
            self.assertEqual(e["process.pid"], 0)
            self.assertEqual(e["process.command"], "")
            self.assertEqual(e["service.name"], f"127.0.0.1:{e['server.port']}")
            if "http.response.status_code" in e:
                self.assertGreaterEqual(e["duration_ms"], 0)


if __name__ == "__main__":
    harness.require_bpf()
    for tool in ("tcpdump", "ab", "nginx"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} missing (scripts/setup installs it)", file=sys.stderr)
            sys.exit(harness.SKIP)
    unittest.main(verbosity=2)

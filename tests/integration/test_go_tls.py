#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): Go's crypto/tls without keys. Go links its own TLS into every
binary; redtap probes crypto/tls.(*Conn).Read and Write there (tls/go_tls.h). Every exchange
below is counted exactly, on both sides, per (kind, port, method, path, status).

Processes (tests/integration/go/gotls.go, built by CMake with Debian's golang-go):
  - server A and a client with a keep-alive connection to it, both started BEFORE the agent:
    the client made one request, then waits; the agent finds the binary by its /proc scan.
    The server's goroutine is blocked inside Read when the probes attach.
  - server B and Go clients started AFTER the agent, from a copy of the binary (another
    file: attached through the exec event): 200s and 404s.
  - curl (OpenSSL) to server B: the client side from the OpenSSL probes, the server side from
    the Go ones.
"""
import os
import re
import shutil
import subprocess
import time
import unittest
import urllib.request

import harness

REDTAP = harness.find_redtap()


GOTLS = harness.take_arg("--gotls", os.path.join(harness.HERE, "..", "..", "build", "tests",
                                                  "gotls"))
EARLY_N = 20
LATE_OK = 30
LATE_404 = 5
CURL_N = 3


class GoTls(harness.Scenario):
    """The default placement: Read's results at the entry of the closure it defers."""
    PREFIX = "redtap-gotls-"
    READ_MODE = "go_emulated_deferred_return"
    READ_RETURNS = r"[1-9]\d* returns probed"  # the ones that skip the deferred call

    @classmethod
    def go_client(cls, binary, port, path, n):
        out = subprocess.run([binary, "client", f"https://127.0.0.1:{port}{path}", str(n)],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"go client failed: {out.stderr}")
        return out.stdout

    @classmethod
    def _run(cls):
        if not os.access(GOTLS, os.X_OK):
            raise RuntimeError(f"{GOTLS} missing: golang-go is not installed "
                               "(scripts/setup installs it)")
        cert, key = os.path.join(cls.tmp, "cert.pem"), os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        # Before the agent: server A and a client with its connection open.
        cls.port_a = harness.free_port()
        cls.procs.start([GOTLS, "server", f"127.0.0.1:{cls.port_a}", cert, key])
        harness.wait_port(cls.port_a)
        cls.early = cls.procs.start(
            [GOTLS, "client", f"https://127.0.0.1:{cls.port_a}/early", str(EARLY_N), "1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = cls.early.stdout.readline()
        if line.strip() != "paused":
            raise RuntimeError(f"early client: {line!r}")
        time.sleep(0.3)  # server A's connection goroutine now waits inside Read

        cls.start_agent(REDTAP)

        # The early client goes on over its connection.
        cls.early.stdin.write("\n")
        cls.early.stdin.flush()
        cls.early_out = cls.early.stdout.readline()
        cls.early.wait(timeout=30)
        cls.expect("client", cls.port_a, "GET", "/early", 200, EARLY_N)
        cls.expect("server", cls.port_a, "GET", "/early", 200, EARLY_N)

        # After the agent: another file (attached on exec), server B and clients.
        late = os.path.join(cls.tmp, "gotls-late")
        shutil.copy(GOTLS, late)
        cls.port_b = harness.free_port()
        cls.procs.start([late, "server", f"127.0.0.1:{cls.port_b}", cert, key])
        harness.wait_port(cls.port_b)
        time.sleep(0.5)  # the exec event's scans (now, +200 ms)
        cls.late_out = cls.go_client(late, cls.port_b, "/late", LATE_OK)
        cls.expect("client", cls.port_b, "GET", "/late", 200, LATE_OK)
        cls.expect("server", cls.port_b, "GET", "/late", 200, LATE_OK)
        cls.missing_out = cls.go_client(late, cls.port_b, "/missing/x", LATE_404)
        cls.expect("client", cls.port_b, "GET", "/missing/x", 404, LATE_404)
        cls.expect("server", cls.port_b, "GET", "/missing/x", 404, LATE_404)
        for _ in range(CURL_N):
            code = subprocess.run(["curl", "-sSk", "--http1.1", "-o", "/dev/null", "-w",
                                   "%{http_code}", "-d", "x=1",
                                   f"https://127.0.0.1:{cls.port_b}/curl"],
                                  capture_output=True, text=True, timeout=30, check=True).stdout
            if code != "200":
                raise RuntimeError(f"curl got {code}")
        cls.expect("client", cls.port_b, "POST", "/curl", 200, CURL_N)
        cls.expect("server", cls.port_b, "POST", "/curl", 200, CURL_N)

        # What `redtap doctor` says of the Go programs running now (servers A and B).
        cls.doctor = subprocess.run([REDTAP, "doctor"], capture_output=True, text=True,
                                    timeout=120).stdout
        time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{cls.agent.http_port}/metrics") as r:
            cls.metrics_text = r.read().decode()
        cls.stop_rc, _ = cls.agent.stop()
        cls.log = cls.agent.read_log()
        cls.events = cls.agent.read_events()

    def ours(self):
        return [e for e in self.events if e.get("server.port") in (self.port_a, self.port_b)]

    def test_clients_did_what_was_asked(self):
        self.assertEqual(self.early_out.split()[:2], ["done", str(EARLY_N)])
        self.assertEqual(self.late_out.split()[:2], ["done", str(LATE_OK)])
        self.assertEqual(self.missing_out.split()[:2], ["done", "0"])  # 404s are not OK

    def test_counts_equal_what_clients_did(self):
        self.assert_counts()

    def test_every_event_is_tls_and_timed(self):
        for e in self.ours():
            self.assertIs(e.get("tls"), True, e)
            self.assertGreater(e["duration_ms"], 0, e)
            self.assertIn(e["process.command"], ("gotls", "gotls-late", "curl"), e)

    def test_probes_attached_per_binary(self):
        # Both files: the one found by the scan and the copy found through its exec.
        for name in ("gotls", "gotls-late"):
            self.assertRegex(
                self.log, rf"Go crypto/tls probes attached to \S*/{name} \(\d+ probes: "
                rf"Read {self.READ_MODE}, {self.READ_RETURNS}[^;]*; "
                r"Write go_emulated_entry\)")
        self.assertRegex(self.metrics_text,
                         r'redtap_agent_tls_probes\{library="[^"]*/gotls",'
                         r'function="crypto/tls\.\(\*Conn\)\.Read",'
                         rf'mode="{self.READ_MODE}"\}} 1')

    def test_doctor_names_the_placement(self):
        line = next((ln for ln in self.doctor.splitlines() if "go tls probe placement" in ln),
                    "")
        for name in ("gotls", "gotls-late"):
            # (doctor shows the default placement: it does not read the agent's config)
            self.assertRegex(line, rf"/{name}: Read go_emulated_deferred_return, "
                             r"Write go_emulated_entry", self.doctor)

    def test_no_drops(self):
        m = re.search(r"kernel drops:(.*)$", self.log, re.M)
        self.assertIsNotNone(m, self.log)
        drops = dict(re.findall(r"(\w+)=(\d+)", m.group(1)))
        for reason in ("ringbuf_full", "conn_table_full", "read_fault", "tls_no_fd"):
            self.assertEqual(drops.get(reason), "0", (reason, self.log))
        self.assertIn(" 0 parse errors", self.log)
        self.assertEqual(self.stop_rc, 0)


class GoTlsSteppedReturns(GoTls):
    """tls.emulated_sites: false: Read probed on every `ret` (single-stepped), its receiver
    and buffer read from their argument slots; counts as exact as with the default."""
    PREFIX = "redtap-gotls-stepped-"
    CONFIG = "tls:\n  emulated_sites: false\n"
    READ_MODE = "go_stepped_return_spilled_args"
    READ_RETURNS = r"[1-9]\d* returns probed \(deferred returns: tls\.emulated_sites: false\)"


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main(verbosity=2)

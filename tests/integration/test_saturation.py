#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): socket saturation and TCP health (issue #4), through the agent
(`redtap run`: redtap_tcp_* on /metrics, /api/v1/listeners, type "tcp" events in the events
file), with real sockets:

- a listener with backlog 4 that never accepts while clients keep connecting: the backlog
  gauge reaches its limit, overflows/drops are counted, a listen_queue_full event is written;
- connects to a closed port: failures (reason refused) and resets (sent/received) counted,
  connect_failed events;
- keep-alive connections: the active gauge is exact on both sides, bytes are exact, the RTT
  histogram count grows with traffic, closes are counted;
- retransmits forced by nftables dropping packets on a veth pair between two network
  namespaces this test creates (10.200.x.0/24 inside them only) and deletes at the end;
- a server in a namespace of its own that lives less than one pass of the agent: its
  connection is named after it, not "unknown".

Each scenario names its threads with prctl(PR_SET_NAME), so the services (comm by default)
are this test's alone even when other processes use the network: the names carry this run's
pid (rt<pid>_ka...), because the agent sees the whole host and another run of this test may
be going on at the same time. Scrapes of the agent are made under the name "python3", so
they never count in those services.
"""
import ctypes
import contextlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import harness

REDTAP = harness.find_redtap()
# Prefix of every service this run names (a comm is at most 15 characters: rt12345_rtxs).
TAG = f"rt{os.getpid() % 100000:05d}"
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME = 15
PR_GET_NAME = 16


def set_comm(name):
    """Names the calling thread: listen()/connect() made now are attributed to `name`."""
    _libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def get_comm():
    buf = ctypes.create_string_buffer(16)
    _libc.prctl(PR_GET_NAME, buf, 0, 0, 0)
    return buf.value.decode()


@contextlib.contextmanager
def comm(name):
    """The calling thread is `name` inside the block, then what it was."""
    saved = get_comm()
    set_comm(name)
    try:
        yield
    finally:
        set_comm(saved)


_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


class Monitor:
    """The agent (`redtap run`), read through its HTTP endpoint and its events file."""

    def __init__(self, procs, tmp):
        self.agent = harness.Agent(REDTAP, tmp, procs)
        self.agent.start()  # /ready: capture's and the TCP monitor's hooks all attached
        self.base = f"http://127.0.0.1:{self.agent.http_port}"
        deadline = time.monotonic() + 10
        while not self.read().get(("redtap_tcp_monitor_samples_total", frozenset())):
            if time.monotonic() > deadline:
                raise RuntimeError("the agent runs without its TCP monitor: " +
                                   self.agent.read_log())
            time.sleep(0.1)

    def get(self, path):
        # The scrape's own connection belongs to "python3", not to the service being named.
        with comm("python3"), urllib.request.urlopen(self.base + path, timeout=5) as r:
            return r.read().decode()

    def read(self):
        return parse_metrics(self.get("/metrics"))

    def value(self, name, **labels):
        want = frozenset((k, str(v)) for k, v in labels.items())
        return self.read().get((name, want))

    def wait(self, pred, what, timeout=15.0, metric=None):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = pred()
            if last:
                return last
            time.sleep(0.2)
        # Every series of this test, and every series of the metric waited for.
        ours = sorted(f"{n}{dict(l)} {v}" for (n, l), v in self.read().items()
                      if n == metric or any(val.startswith(TAG) for _, val in l))
        raise AssertionError(f"timed out waiting for {what} (last: {last})\nseries of this "
                             "test:\n  " + "\n  ".join(ours))

    def wait_value(self, expect, name, timeout=15.0, **labels):
        """Waits until the series equals `expect` (or satisfies it, when callable)."""
        ok = expect if callable(expect) else (lambda v: v == expect)
        self.wait(lambda: (lambda v: v is not None and ok(v))(self.value(name, **labels)),
                  f"{name}{labels} -> {expect}: now {self.value(name, **labels)}", timeout,
                  metric=name)
        return self.value(name, **labels)

    def read_events(self):
        """The type "tcp" events written so far (a line still being written is left out)."""
        try:
            with open(self.agent.events) as f:
                lines = [line for line in f if line.endswith("\n")]
        except FileNotFoundError:
            return []
        return [e for e in map(json.loads, lines) if e.get("type") == "tcp"]

    def read_listeners(self):
        return json.loads(self.get("/api/v1/listeners"))


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class Saturation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="redtap-sat-")
        cls.procs = harness.Procs()
        try:
            cls.mon = Monitor(cls.procs, cls.tmp)
        except BaseException:
            cls.procs.stop_all()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.mon.agent.stop()  # SIGTERM: the agent detaches every hook and exits
        cls.procs.stop_all()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        set_comm("python3")

    def sock(self, *a):
        s = socket.socket(*a)
        self.socks.append(s)
        return s

    def test_listen_backlog_full_and_overflows(self):
        mon = self.mon
        set_comm(f"{TAG}_bl")
        lst = self.sock()
        lst.bind(("127.0.0.1", 0))
        lst.listen(4)
        port = lst.getsockname()[1]
        svc = dict(service_name=f"{TAG}_bl", server_port=port)
        mon.wait_value(4, "redtap_tcp_listen_backlog_max", **svc)
        self.assertEqual(mon.value("redtap_tcp_listen_backlog", **svc), 0)
        netns_labels = [dict(l) for (n, l) in mon.read() if n == "redtap_tcp_listen_overflows_total"]
        self.assertTrue(netns_labels)
        ns = netns_labels[0]
        before = mon.value("redtap_tcp_listen_overflows_total", **ns)

        set_comm(f"{TAG}_blc")
        for _ in range(20):  # never accepted
            c = self.sock()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
        # The queue holds backlog+1 (sk_ack_backlog > max is "full"): the gauge reaches the limit.
        mon.wait_value(lambda v: v >= 4, "redtap_tcp_listen_backlog", **svc)
        mon.wait_value(lambda v: v > before, "redtap_tcp_listen_overflows_total", **ns)
        mon.wait_value(lambda v: v > 0, "redtap_tcp_listen_drops_total", scope="listener", **svc)
        rows = [l for l in mon.read_listeners() if l["port"] == port]
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["service"], f"{TAG}_bl")
        self.assertEqual(rows[0]["backlog_max"], 4)
        self.assertGreaterEqual(rows[0]["fill_ratio"], 1.0)
        ev = mon.wait(lambda: [e for e in mon.read_events()
                               if e["event"] == "listen_queue_full" and e["server.port"] == port],
                      "a listen_queue_full event")
        self.assertEqual(ev[0]["type"], "tcp")
        self.assertEqual(ev[0]["service.name"], f"{TAG}_bl")
        self.assertEqual(ev[0]["tcp.listen.backlog_max"], 4)
        # Rate-limited: not one event per sample.
        time.sleep(3)
        n = len([e for e in mon.read_events()
                 if e["event"] == "listen_queue_full" and e["server.port"] == port])
        self.assertLessEqual(n, 6)

    def test_connect_to_closed_port(self):
        mon = self.mon
        p = socket.socket()
        p.bind(("127.0.0.1", 0))
        port = p.getsockname()[1]
        p.close()  # nothing listens there now
        sent_before = mon.value("redtap_tcp_resets_total", service_name="unknown",
                                direction="sent") or 0
        set_comm(f"{TAG}_cf")
        for _ in range(3):
            c = socket.socket()
            self.assertEqual(c.connect_ex(("127.0.0.1", port)), 111)  # ECONNREFUSED
            c.close()
        set_comm("python3")
        mon.wait_value(3, "redtap_tcp_connect_failures_total", service_name=f"{TAG}_cf",
                       reason="refused")
        mon.wait_value(3, "redtap_tcp_resets_total", service_name=f"{TAG}_cf",
                       direction="received")
        mon.wait_value(lambda v: v >= sent_before + 3, "redtap_tcp_resets_total",
                       service_name="unknown", direction="sent")
        self.assertIsNone(mon.value("redtap_tcp_connect_failures_total",
                                    service_name=f"{TAG}_cf", reason="timeout"))
        evs = mon.wait(lambda: [e for e in mon.read_events()
                                if e["event"] == "connect_failed" and e["server.port"] == port],
                       "connect_failed events")
        self.assertEqual(len(evs), 3)
        for e in evs:
            self.assertEqual(e["service.name"], f"{TAG}_cf")
            self.assertEqual(e["reason"], "refused")
            self.assertEqual(e["server.address"], "127.0.0.1")
            self.assertEqual(e["level"], "WARN")
            self.assertRegex(e["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

    def test_keepalive_active_bytes_rtt(self):
        mon = self.mon
        n = 25
        set_comm(f"{TAG}_ka")
        lst = self.sock()
        lst.bind(("127.0.0.1", 0))
        lst.listen(64)
        port = lst.getsockname()[1]
        set_comm(f"{TAG}_kac")
        clients, servers = [], []
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port))
            clients.append(c)
            servers.append(lst.accept()[0])
        set_comm("python3")
        inbound = dict(service_name=f"{TAG}_ka", server_port=port)
        outbound = dict(service_name=f"{TAG}_kac")
        mon.wait_value(n, "redtap_tcp_connections_active", direction="inbound", **inbound)
        mon.wait_value(n, "redtap_tcp_connections_active", direction="outbound", **outbound)
        mon.wait_value(n, "redtap_tcp_connections_opened_total", direction="inbound", **inbound)
        mon.wait_value(n, "redtap_tcp_connections_opened_total", direction="outbound", **outbound)

        def exchange():
            for c, s in zip(clients, servers):
                c.sendall(b"q" * 100)
                got = 0
                while got < 100:
                    got += len(s.recv(4096))
                s.sendall(b"r" * 1000)
                got = 0
                while got < 1000:
                    got += len(c.recv(4096))

        exchange()
        mon.wait_value(100 * n, "redtap_tcp_bytes_total", direction="in", **inbound)
        mon.wait_value(1000 * n, "redtap_tcp_bytes_total", direction="out", **inbound)
        mon.wait_value(1000 * n, "redtap_tcp_bytes_total", direction="in", **outbound)
        mon.wait_value(100 * n, "redtap_tcp_bytes_total", direction="out", **outbound)

        def rtt_count():
            return ((mon.value("redtap_tcp_rtt_seconds_count", **inbound) or 0) +
                    (mon.value("redtap_tcp_rtt_seconds_count", **outbound) or 0))

        first = mon.wait(rtt_count, "an RTT sample")
        for _ in range(5):
            exchange()  # an RTT sample per socket that moved data, at the next walk
        mon.wait(lambda: rtt_count() >= first + n, f"RTT count to grow past {first + n}")
        self.assertGreater(mon.value("redtap_tcp_rtt_seconds_bucket", le="+Inf", **inbound), 0)

        for c in clients[:10]:
            c.close()
        for s in servers[:10]:
            s.close()
        mon.wait_value(n - 10, "redtap_tcp_connections_active", direction="inbound", **inbound)
        mon.wait_value(n - 10, "redtap_tcp_connections_active", direction="outbound", **outbound)
        mon.wait_value(10, "redtap_tcp_connections_closed_total", direction="inbound", **inbound)
        mon.wait_value(10, "redtap_tcp_connections_closed_total", direction="outbound", **outbound)
        # Bytes of closed connections stay counted.
        self.assertEqual(mon.value("redtap_tcp_bytes_total", direction="in", **inbound), 600 * n)
        for c in clients[10:]:
            c.close()
        for s in servers[10:]:
            s.close()
        mon.wait_value(0, "redtap_tcp_connections_active", direction="inbound", **inbound)
        self.assertEqual(mon.value("redtap_tcp_bytes_total", direction="in", **inbound), 600 * n)

    def test_retransmits_between_namespaces(self):
        if not shutil.which("nft"):
            self.skipTest("needs nft (Debian package nftables; scripts/setup installs it)")
        mon = self.mon
        tag = f"rtsat{os.getpid() % 100000}"
        ns_a, ns_b = f"{tag}a", f"{tag}b"
        octet = 1 + os.getpid() % 250
        addr_a, addr_b = f"10.200.{octet}.1", f"10.200.{octet}.2"
        port = 18000 + os.getpid() % 1000
        procs = harness.Procs()
        try:
            sh("ip", "netns", "add", ns_a)
            sh("ip", "netns", "add", ns_b)
            sh("ip", "-n", ns_a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
               "netns", ns_b)
            sh("ip", "-n", ns_a, "addr", "add", f"{addr_a}/24", "dev", "veth0")
            sh("ip", "-n", ns_b, "addr", "add", f"{addr_b}/24", "dev", "veth1")
            sh("ip", "-n", ns_a, "link", "set", "veth0", "up")
            sh("ip", "-n", ns_b, "link", "set", "veth1", "up")
            # Drop 30 % of the data segments reaching the server: the client retransmits.
            sh("ip", "netns", "exec", ns_b, "nft", "add", "table", "inet", "rtsat")
            sh("ip", "netns", "exec", ns_b, "nft", "add", "chain", "inet", "rtsat", "input",
               "{ type filter hook input priority 0 ; }")
            sh("ip", "netns", "exec", ns_b, "nft", "add", "rule", "inet", "rtsat", "input",
               "tcp", "dport", str(port), "numgen", "random", "mod", "10", "<", "3", "drop")
            server = (
                "import ctypes,socket\n"
                f"ctypes.CDLL(None).prctl(15, b'{TAG}_rtxs', 0, 0, 0)\n"
                f"l=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                f"l.bind(('{addr_b}', {port})); l.listen(8); print('up', flush=True)\n"
                "c,_=l.accept()\n"
                "while c.recv(65536): pass\n")
            srv = procs.start(["ip", "netns", "exec", ns_b, sys.executable, "-c", server],
                              stdout=subprocess.PIPE, text=True)
            r, _, _ = select.select([srv.stdout], [], [], 10)
            self.assertTrue(r and srv.stdout.readline().strip() == "up", "server did not start")
            client = (
                "import ctypes,socket,time\n"
                f"ctypes.CDLL(None).prctl(15, b'{TAG}_rtx', 0, 0, 0)\n"
                f"c=socket.create_connection(('{addr_b}', {port}), timeout=60)\n"
                "for _ in range(64): c.sendall(b'x' * 16384); time.sleep(0.01)\n"
                "c.shutdown(socket.SHUT_WR); c.recv(1); c.close()\n")
            subprocess.run(["ip", "netns", "exec", ns_a, sys.executable, "-c", client],
                           check=True, timeout=120)
            mon.wait_value(lambda v: v > 0, "redtap_tcp_retransmits_total",
                           service_name=f"{TAG}_rtx")
            mon.wait_value(1, "redtap_tcp_connections_opened_total", service_name=f"{TAG}_rtx",
                           direction="outbound")
            mon.wait_value(1, "redtap_tcp_connections_opened_total", service_name=f"{TAG}_rtxs",
                           server_port=port, direction="inbound")
            # Everything the client sent arrived in the end.
            mon.wait_value(64 * 16384, "redtap_tcp_bytes_total", service_name=f"{TAG}_rtx",
                           direction="out")
            mon.wait_value(64 * 16384, "redtap_tcp_bytes_total", service_name=f"{TAG}_rtxs",
                           server_port=port, direction="in")
        finally:
            procs.stop_all()
            sh("ip", "netns", "del", ns_a, check=False)
            sh("ip", "netns", "del", ns_b, check=False)
        self.assertNotIn(ns_a, sh("ip", "netns", "list").stdout)

    def test_short_lived_server_in_a_new_namespace(self):
        """A server in a namespace the agent never saw, gone (with every process of that
        namespace) before the agent's next pass: its connection is still its own, because the
        kernel copies the caller of listen() into the key of each connection it accepts."""
        mon = self.mon
        ns = f"rtsat{os.getpid() % 100000}s"
        port = 19000 + os.getpid() % 1000
        script = (
            "import ctypes,socket\n"
            f"ctypes.CDLL(None).prctl(15, b'{TAG}_sls', 0, 0, 0)\n"
            "l=socket.socket(); l.bind(('127.0.0.1', %d)); l.listen(4)\n"
            "c=socket.create_connection(('127.0.0.1', %d)); s,_=l.accept()\n"
            "c.sendall(b'q' * 1000); c.close()\n"
            "n=0\n"
            "while True:\n"
            "    b=s.recv(65536)\n"
            "    if not b: break\n"
            "    n+=len(b)\n"
            "assert n == 1000, n\n") % (port, port)
        try:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script],
                           check=True, timeout=30)
            svc = dict(service_name=f"{TAG}_sls", server_port=port, direction="inbound")
            mon.wait_value(1, "redtap_tcp_connections_opened_total", **svc)
            mon.wait_value(1, "redtap_tcp_connections_closed_total", **svc)
            mon.wait_value(1000, "redtap_tcp_bytes_total", service_name=f"{TAG}_sls",
                           server_port=port, direction="in")
        finally:
            sh("ip", "netns", "del", ns, check=False)


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main(verbosity=2)

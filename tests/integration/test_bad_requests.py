#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): every answer a server sends is a transaction (issue 12).

Raw sockets send what is not a valid request to real servers (nginx, Python's http.server
in backend.py) and read their answers (400, 414, 413...). Each answered exchange must be one
server event and one client event with `http.request.method` "_OTHER", `http.route`
"/*unparsed" (never the bytes sent), the status the client read, and a duration measured
from the first byte sent; /metrics and /api/v1/endpoints count them; parse errors are counted
by reason. Plus the request corners around them: an invalid Content-Length (the request is
reported with its 400), and Expect: 100-continue refused before the body, the next request
then sent on the same connection.
"""
import collections
import json
import re
import socket
import threading
import time
import unittest
import urllib.request

import harness

REDTAP = harness.find_redtap()


def exchange(port, payload, host="127.0.0.1"):
    """Sends `payload` on a fresh connection, reads until the server closes or 2 s of
    silence; returns (status line code or None, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection((host, port))
    s.settimeout(2.0)
    try:
        s.sendall(payload)
        buf = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
        except (socket.timeout, ConnectionResetError):
            pass
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
    return (int(m.group(1)) if m else None), time.monotonic() - t0


def keepalive_expect_server(port, ready):
    """A keep-alive server that refuses Expect: 100-continue with 401 before any body, then
    answers the client's next request on the same connection (RFC 9110 §10.1.1)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    ready.set()
    c, _ = srv.accept()
    buf = b""
    answered = 0
    while answered < 2:
        d = c.recv(65536)
        if not d:
            break
        buf += d
        while b"\r\n\r\n" in buf:
            head, buf = buf.split(b"\r\n\r\n", 1)
            if b"expect: 100-continue" in head.lower():
                c.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            answered += 1
    c.close()
    srv.close()


class BadRequests(harness.Scenario):
    @classmethod
    def _run(cls):
        cls.start_nginx()
        cls.ex = harness.free_port()
        ready = threading.Event()
        cls.agent = harness.Agent(REDTAP, cls.tmp, cls.procs)
        cls.agent.start()
        cls.statuses = collections.Counter()  # (port, status) read by the clients
        cls.durations = []  # (port, seconds measured by the client)

        def bad(port, payload, want):
            code, secs = exchange(port, payload)
            assert code == want, (port, payload[:40], code)
            cls.statuses[(port, code)] += 1
            cls.durations.append((port, secs))

        # Bytes that are not HTTP at all: both servers answer 400 and close. (Python answers
        # a status line only once it has read a valid version: its other 400s are bare.)
        for i in range(3):
            bad(cls.ng, b"\x00\x01\x02 garbage %d\r\n\r\n" % i, 400)
            bad(cls.be, b"\x00\x01\x02 garbage %d x HTTP/1.1\r\n\r\n" % i, 400)
        # A mangled request line (sniffs like a request, does not parse).
        bad(cls.ng, b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n", 400)
        bad(cls.be, b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400)
        # A header block with no request line.
        bad(cls.ng, b"Host: x\r\nX-Smuggled: 1\r\n\r\n", 400)
        # A 20 KB request line: beyond the capture cap and nginx's buffers.
        bad(cls.ng, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)

        # An invalid Content-Length: nginx answers 400; the request itself is reported.
        code, _ = exchange(cls.ng, b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        assert code == 400, code
        cls.expect("client", cls.ng, "POST", "/ok", 400)
        cls.expect("server", cls.ng, "POST", "/ok", 400)

        # Expect: 100-continue refused with 401 before the body; the next request follows.
        threading.Thread(target=keepalive_expect_server, args=(cls.ex, ready),
                         daemon=True).start()
        ready.wait(5)
        s = socket.create_connection(("127.0.0.1", cls.ex))
        s.settimeout(5)
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        assert got.startswith(b"HTTP/1.1 401"), got
        s.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while not got.endswith(b"ok"):
            got += s.recv(4096)
        s.close()
        cls.expect("client", cls.ex, "PUT", "/upload", 401)
        cls.expect("server", cls.ex, "PUT", "/upload", 401)
        cls.expect("client", cls.ex, "GET", "/after", 200)
        cls.expect("server", cls.ex, "GET", "/after", 200)

        time.sleep(0.5)  # the reader drains every capture.poll_interval_ms
        base = f"http://127.0.0.1:{cls.agent.http_port}"
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            cls.metrics = r.read().decode()
        with urllib.request.urlopen(base + "/api/v1/endpoints", timeout=5) as r:
            cls.endpoints = json.loads(r.read())
        cls.agent.stop()
        cls.log = cls.agent.read_log()
        cls.events = [e for e in cls.agent.read_events()
                      if e.get("server.port") in (cls.ng, cls.be, cls.ex)]

    def unparsed(self):
        return [e for e in self.events if e["http.request.method"] == "_OTHER"]

    def test_each_answer_is_one_event_per_side(self):
        got = collections.Counter((e["kind"], e["server.port"], e["http.response.status_code"])
                                  for e in self.unparsed())
        want = collections.Counter()
        for (port, code), n in self.statuses.items():
            want[("server", port, code)] += n
            want[("client", port, code)] += n
        self.assertEqual(got, want, self.log)

    def test_unparsed_events_carry_no_request_bytes(self):
        for e in self.unparsed():
            self.assertEqual(e["http.route"], "/*unparsed")
            self.assertNotIn("url.path", e)
            self.assertTrue(e["message"].startswith("_OTHER /*unparsed 4"), e)
            text = json.dumps(e)
            for needle in ("garbage", "X-Smuggled", "aaaaaaaa", "/a b c"):
                self.assertNotIn(needle, text)

    def test_durations_start_at_the_first_byte_sent(self):
        # Each exchange took at least as long on the wire as the server took to answer it;
        # the client's own measure (connect to close) bounds every event from above.
        longest = max(secs for _, secs in self.durations) * 1000
        for e in self.unparsed():
            self.assertGreater(e["duration_ms"], 0, e)
            self.assertLessEqual(e["duration_ms"], longest + 1.0, e)
        for e in self.unparsed():
            if e["kind"] == "client":
                server = [x for x in self.unparsed() if x["kind"] == "server" and
                          x["client.port"] == e["client.port"]]
                self.assertEqual(len(server), 1, e)
                self.assertLessEqual(server[0]["duration_ms"], e["duration_ms"] + 0.001)

    def test_request_corners(self):
        got = collections.Counter(
            (e["kind"], e["server.port"], e["http.request.method"], e.get("url.path"),
             e.get("http.response.status_code"))
            for e in self.events if e["http.request.method"] != "_OTHER")
        self.assertEqual(got, self.expected, self.log)

    def test_metrics_and_endpoints_count_them(self):
        n_server = sum(n for (port, _), n in self.statuses.items())
        ports = {self.ng, self.be}
        rows = [r for r in self.endpoints if r["route"] == "/*unparsed" and r["kind"] == "server"]
        self.assertEqual(sum(r["requests_total"] for r in rows), n_server, self.endpoints)
        for r in rows:
            self.assertEqual(r["method"], "_OTHER")
            self.assertEqual(r["client_errors_total"], r["requests_total"])
        del ports
        series = re.findall(
            r'^http_server_request_duration_seconds_count\{[^}]*http_request_method="_OTHER",'
            r'http_route="/\*unparsed"[^}]*\} (\d+)', self.metrics, re.M)
        self.assertEqual(sum(int(x) for x in series), n_server, self.metrics)
        reasons = dict(re.findall(r'^redtap_agent_parse_errors_total\{reason="(\w+)"\} (\d+)',
                                  self.metrics, re.M))
        # Both sides of each exchange see it: the kernel's not-HTTP records, the mangled line
        # and header block, the invalid Content-Length.
        self.assertGreaterEqual(int(reasons["not_http"]), 12, reasons)
        self.assertGreaterEqual(int(reasons["bad_request_head"]), 2, reasons)
        self.assertEqual(int(reasons["invalid_content_length"]), 2, reasons)


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main(verbosity=2)

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): capture.skip_bodies. A call that moves exactly one whole message
framed by Content-Length ships its head only; the body is counted, never copied. A chunked
answer, one with bytes after its body, and one whose body continues in a later call ship as
captured. The agent watches only this test's threads (named "rtskip"), so its own /metrics
scrapes do not count; redtap_agent_payload_bytes_total{kind} gives moved vs captured."""
import ctypes
import os
import re
import socket
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REDTAP = harness.find_redtap()
BODY = 3000
_libc = ctypes.CDLL(None, use_errno=True)


def set_comm(name):
    _libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def head(extra):
    return ("HTTP/1.1 200 OK\r\nServer: rtskip\r\n" + extra + "\r\n").encode()


SMALL = 1000  # two answers of this size fit one capture (max_bytes_per_call 4096)
ANSWERS = {
    # One write: head + exactly Content-Length bytes -> head only.
    b"/cl": head(f"Content-Length: {BODY}\r\n") + b"x" * BODY,
    b"/small": head(f"Content-Length: {SMALL}\r\n") + b"z" * SMALL,
    # Chunked: kept whole (the chunk sizes frame it).
    b"/chunked": head("Transfer-Encoding: chunked\r\n") + b"%x\r\n" % BODY + b"y" * BODY +
    b"\r\n0\r\n\r\n",
}


def read_message(s, buf):
    """Reads one response (Content-Length or chunked) from s; returns the leftover bytes."""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    h, _, rest = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length:\s*(\d+)", h)
    if m:
        n = int(m.group(1))
        while len(rest) < n:
            rest += s.recv(65536)
        return rest[n:]
    while b"\r\n0\r\n\r\n" not in rest:
        rest += s.recv(65536)
    return rest.split(b"\r\n0\r\n\r\n", 1)[1]


class BodySkip(harness.Scenario):
    @classmethod
    def metrics(cls):
        with urllib.request.urlopen(f"http://127.0.0.1:{cls.agent.http_port}/metrics",
                                    timeout=5) as r:
            text = r.read().decode()
        out = {}
        for kind in ("moved", "captured"):
            m = re.search(r'^redtap_agent_payload_bytes_total\{kind="%s"\} (\S+)$' % kind, text,
                          re.M)
            out[kind] = float(m.group(1)) if m else 0.0
        out["server_body"] = sum(
            float(v) for v in re.findall(
                r'^http_server_response_body_size_bytes_sum\{service_name="rtskip"[^}]*\} (\S+)$',
                text, re.M))
        return out

    @classmethod
    def _run(cls):
        cfg = os.path.join(cls.tmp, "skip.yaml")
        with open(cfg, "w") as f:
            f.write("filter:\n  include_processes: [rtskip]\n")
        cls.agent = harness.Agent(REDTAP, cls.tmp, cls.procs, ["--config", cfg])
        cls.agent.start()

        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(4)
        port = lst.getsockname()[1]
        plan = []  # what the server answers, in order: bytes per request

        def server():
            set_comm("rtskip")
            c, _ = lst.accept()
            buf = b""
            for nreq, answer in plan:
                while buf.count(b"\r\n\r\n") < nreq:
                    buf += c.recv(65536)
                buf = buf.split(b"\r\n\r\n", nreq)[nreq]
                c.sendall(answer)
            c.close()

        def exchange(batches, answers):
            """One connection. batches: the requests the client sends in each write; after each
            write it reads as many answers. answers: (requests awaited, bytes) per server write."""
            plan[:] = answers
            done = {}

            def client():
                set_comm("rtskip")
                s = socket.create_connection(("127.0.0.1", port))
                rest = b""
                for paths in batches:
                    s.sendall(b"".join(b"GET " + p + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                                       for p in paths))
                    for _ in paths:
                        rest = read_message(s, rest)
                s.close()
                done["ok"] = True

            ts = threading.Thread(target=server)
            tc = threading.Thread(target=client)
            time.sleep(0.6)
            before = cls.metrics()
            ts.start()
            time.sleep(0.05)
            tc.start()
            tc.join(10)
            ts.join(10)
            assert done.get("ok"), "the client did not finish"
            # The reader drains every poll_interval_ms; the agent's own counters reach
            # /metrics through a snapshot taken every 200 ms.
            time.sleep(0.6)
            after = cls.metrics()
            d = {k: after[k] - before[k] for k in after}
            print(f"{batches}: {d}", file=sys.stderr)
            return d

        cls.chunked = exchange([[b"/chunked"]], [(1, ANSWERS[b"/chunked"])])
        cls.cl = exchange([[b"/cl"]], [(1, ANSWERS[b"/cl"])])
        # Two answers in one write: bytes follow the first body, so nothing is skipped.
        cls.pipelined = exchange([[b"/small", b"/small"]], [(2, ANSWERS[b"/small"] * 2)])
        lst.close()
        cls.stop_rc, _ = cls.agent.stop()

    def test_chunked_ships_whole(self):
        self.assertGreater(self.chunked["moved"], BODY)
        self.assertEqual(self.chunked["captured"], self.chunked["moved"])
        self.assertEqual(self.chunked["server_body"], BODY)

    def test_content_length_body_stays_in_kernel(self):
        skipped = self.cl["moved"] - self.cl["captured"]
        # The server's one write always; the client's read too when it got the answer whole.
        self.assertIn(skipped, (BODY, 2 * BODY), self.cl)
        self.assertEqual(self.cl["server_body"], BODY)  # framed from the true length

    def test_bytes_after_the_body_ship_whole(self):
        self.assertEqual(self.pipelined["captured"], self.pipelined["moved"], self.pipelined)
        self.assertEqual(self.pipelined["server_body"], 2 * SMALL)

    def test_clean_stop(self):
        self.assertEqual(self.stop_rc, 0)


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main()

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): the agent against real nginx, a Python backend, curl, ab and raw
sockets on loopback. Every client records what it did; the agent's events must equal that,
per (kind, port, method, path, status), with durations inside what the clients measured.

Topology:  curl / ab / raw sockets --> nginx (127.0.0.1 and [::1]) --/proxy/--> backend.py
"""
import os
import re
import socket
import subprocess
import sys
import time
import unittest

import harness

REDTAP = harness.find_redtap()


def recv_until(sock, predicate, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while not predicate(buf):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def count_responses(buf):
    """Number of complete Content-Length-framed responses in buf."""
    n, pos = 0, 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        head = buf[pos:end].decode("latin-1")
        m = re.search(r"(?i)\r\ncontent-length:\s*(\d+)", head)
        body = int(m.group(1)) if m else 0
        if end + 4 + body > len(buf):
            return n
        pos = end + 4 + body
        n += 1


class HttpCapture(harness.Scenario):
    timings = {}

    @classmethod
    def curl(cls, *args, url_path="/", host="127.0.0.1", port=None):
        port = port or cls.ng
        h = f"[{host}]" if ":" in host else host
        out = subprocess.run(
            ["curl", "-sS", "-g", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
             *args, f"http://{h}:{port}{url_path}"],
            capture_output=True, text=True, timeout=30, check=True).stdout.split()
        return int(out[0]), float(out[1])

    @classmethod
    def _run(cls):
        cls.noise_port = harness.free_port()
        cls.start_nginx()
        # Binary noise: an echo server on another port, never HTTP.
        cls.procs.start([sys.executable, "-c", (
            "import socket,threading\n"
            "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            f"s.bind(('127.0.0.1',{cls.noise_port}));s.listen(8)\n"
            "def h(c):\n"
            "  while True:\n"
            "    d=c.recv(4096)\n"
            "    if not d: break\n"
            "    c.sendall(d)\n"
            "while True:\n"
            "  c,_=s.accept();threading.Thread(target=h,args=(c,),daemon=True).start()\n")])
        harness.wait_port(cls.noise_port)

        # A keep-alive connection opened, and used once, before the agent starts.
        early = socket.create_connection(("127.0.0.1", cls.ng))
        early.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        assert count_responses(recv_until(early, lambda b: count_responses(b) >= 1)) == 1

        cls.agent = harness.Agent(REDTAP, cls.tmp, cls.procs)
        cls.agent.start()

        # 1. The pre-existing connection, used again: only this request is expected.
        early.sendall(b"GET /created HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_until(early, lambda b: count_responses(b) >= 1)
        early.close()
        cls.via_nginx("GET", "/created", 201)

        # 2. curl: plain statuses, static file, IPv6, proxied statuses.
        for path, st in [("/ok", 200), ("/teapot", 418), ("/fail", 500), ("/static/2k.html", 200),
                         ("/nope", 404), ("/proxy/status/201", 201), ("/proxy/status/404", 404),
                         ("/proxy/status/500", 500), ("/proxy/status/503", 503)]:
            code, _ = cls.curl(url_path=path)
            assert code == st, (path, code)
            cls.via_nginx("GET", path, st)
        code, _ = cls.curl(url_path="/ok?password=hunter2&q=shoes", host="::1")
        assert code == 200
        cls.via_nginx("GET", "/ok", 200)
        code, _ = cls.curl("-X", "POST", "--data", "x=1", url_path="/proxy/status/422")
        assert code == 422
        cls.via_nginx("POST", "/proxy/status/422", 422)

        # 3. HEAD, 304, chunked response, sendfile download, big upload (beyond the capture cap).
        code, _ = cls.curl("-I", url_path="/static/2k.html")
        assert code == 200
        cls.via_nginx("HEAD", "/static/2k.html", 200)
        etag = subprocess.run(["curl", "-sSI", f"http://127.0.0.1:{cls.ng}/static/2k.html"],
                              capture_output=True, text=True, check=True).stdout
        cls.via_nginx("HEAD", "/static/2k.html", 200)
        etag = re.search(r"(?i)etag:\s*(\S+)", etag).group(1)
        code, _ = cls.curl("-H", f"If-None-Match: {etag}", url_path="/static/2k.html")
        assert code == 304
        cls.via_nginx("GET", "/static/2k.html", 304)
        code, _ = cls.curl(url_path="/proxy/chunked")
        assert code == 200
        cls.via_nginx("GET", "/proxy/chunked", 200)
        code, _ = cls.curl(url_path="/static/big.bin")
        assert code == 200
        cls.via_nginx("GET", "/static/big.bin", 200)
        upload = os.path.join(cls.tmp, "upload.bin")
        with open(upload, "wb") as f:
            f.write(os.urandom(200 * 1024))
        code, _ = cls.curl("--data-binary", f"@{upload}", "-H", "Expect:", url_path="/proxy/echo")
        assert code == 200
        cls.via_nginx("POST", "/proxy/echo", 200)

        # 4. Latency: a slow backend; the client's own measure bounds the events.
        code, total = cls.curl(url_path="/proxy/slow?ms=200")
        assert code == 200
        cls.timings["slow_total_ms"] = total * 1000
        cls.via_nginx("GET", "/proxy/slow", 200)

        # 5. Raw sockets to nginx: pipelining, a request split over many writes, chunked upload.
        s = socket.create_connection(("127.0.0.1", cls.ng))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /static/2k.html HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n")
        assert count_responses(recv_until(s, lambda b: count_responses(b) >= 3)) == 3
        cls.via_nginx("GET", "/ok", 200)
        cls.via_nginx("GET", "/static/2k.html", 200)
        cls.via_nginx("GET", "/teapot", 418)
        for piece in (b"GET /crea", b"ted HTTP/1.1\r\nHo", b"st: x\r\nUser-Agent: spl", b"it\r\n", b"\r\n"):
            s.sendall(piece)
            time.sleep(0.02)
        recv_until(s, lambda b: count_responses(b) >= 1)
        cls.via_nginx("GET", "/created", 201)
        s.sendall(b"POST /proxy/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
        resp = recv_until(s, lambda b: count_responses(b) >= 1)
        assert b"got 11 bytes" in resp, resp
        cls.via_nginx("POST", "/proxy/echo", 200)
        s.close()

        # 6. Expect: 100-continue straight to the backend (it sends the interim 100 itself).
        s = socket.create_connection(("127.0.0.1", cls.be))
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = recv_until(s, lambda b: b"\r\n\r\n" in b)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        s.sendall(b"abcd")
        resp = recv_until(s, lambda b: b"got 4 bytes" in b)
        assert b" 200 " in resp.split(b"\r\n")[0], resp
        s.close()
        cls.expect("client", cls.be, "POST", "/echo", 200)
        cls.expect("server", cls.be, "POST", "/echo", 200)

        # 7. Binary noise on another port: never an event.
        s = socket.create_connection(("127.0.0.1", cls.noise_port))
        noise = os.urandom(3000)
        s.sendall(noise)
        recv_until(s, lambda b: len(b) >= len(noise))
        s.close()

        # 8. ab with keep-alive: the exact count the issue names.
        out = subprocess.run(["ab", "-q", "-n", "20000", "-c", "16", "-k",
                              f"http://127.0.0.1:{cls.ng}/ok"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        assert re.search(r"Complete requests:\s+20000", out), out
        assert re.search(r"Failed requests:\s+0", out), out
        cls.via_nginx("GET", "/ok", 200, n=20000)

        time.sleep(0.3)  # the reader drains every capture.poll_interval_ms
        cls.stop_rc, cls.stop_s = cls.agent.stop()
        cls.log = cls.agent.read_log()
        cls.events = cls.agent.read_events()

    def ours(self):
        ports = {self.ng, self.be}
        return [e for e in self.events if e.get("server.port") in ports]

    def test_counts_equal_what_clients_did(self):
        self.assert_counts()

    def test_ab_exact(self):
        server = sum(1 for e in self.ours() if e["kind"] == "server"
                     and e["process.command"] == "nginx" and e["url.path"] == "/ok"
                     and e["server.port"] == self.ng)
        client = sum(1 for e in self.ours() if e["process.command"] == "ab")
        self.assertEqual(client, 20000)
        # 20000 from ab, 1 from curl (IPv4), 1 from curl (IPv6), 1 pipelined.
        self.assertEqual(server, 20003)

    def test_no_noise_port_events(self):
        self.assertFalse([e for e in self.events if self.noise_port in
                          (e.get("server.port"), e.get("client.port"))])

    def test_zero_drops_and_clean_stop(self):
        self.assertEqual(self.stop_rc, 0)
        self.assertLess(self.stop_s, 2.0, "SIGTERM to exit must take about a second at most")
        m = re.search(r"kernel drops:(.*)$", self.log, re.M)
        self.assertIsNotNone(m, self.log)
        drops = dict(re.findall(r"(\w+)=(\d+)", m.group(1)))
        for reason in ("ringbuf_full", "conn_table_full", "read_fault", "tls_no_fd"):
            self.assertEqual(drops.get(reason), "0", (reason, self.log))
        self.assertIn(" 0 seq gaps", self.log)

    def test_latency_within_client_measure(self):
        slow = {e["kind"] + ":" + str(e["server.port"]): e["duration_ms"]
                for e in self.ours() if e["url.path"] in ("/proxy/slow", "/slow")}
        total = self.timings["slow_total_ms"]
        client, ng_server = slow["client:%d" % self.ng], slow["server:%d" % self.ng]
        upstream, backend = slow["client:%d" % self.be], slow["server:%d" % self.be]
        self.assertGreaterEqual(backend, 200)
        self.assertLessEqual(backend, upstream + 0.001)
        self.assertLessEqual(upstream, ng_server + 0.001)
        self.assertLessEqual(ng_server, client + 0.001)
        self.assertLessEqual(client, total + 1.0)

    def test_ipv6_and_query_redaction(self):
        v6 = [e for e in self.ours() if e["server.address"] == "::1"]
        self.assertEqual(len(v6), 2, v6)  # curl's client event and nginx's server event
        for e in v6:
            self.assertEqual(e["url.path"], "/ok")
            self.assertIn("password=REDACTED", e["url.query"])
            self.assertNotIn("hunter2", str(e))
        with open(self.agent.events) as f:
            self.assertNotIn("hunter2", f.read())

    def test_event_fields(self):
        for e in self.ours():
            for k in ("timestamp", "type", "kind", "level", "message", "duration_ms",
                      "service.name", "process.pid", "process.command", "http.request.method",
                      "url.path", "server.address", "server.port", "client.address",
                      "client.port", "http.request.body.size", "http.response.body.size",
                      "network.protocol.version"):
                self.assertIn(k, e)
            self.assertRegex(e["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
            st = e.get("http.response.status_code", 0)
            want = "ERROR" if st >= 500 or st == 0 else "WARN" if st >= 400 else "INFO"
            self.assertEqual(e["level"], want, e)
        uploads = [e for e in self.ours() if e["url.path"] == "/proxy/echo"
                   and e["kind"] == "server" and e["http.request.body.size"] > 100000]
        self.assertEqual(len(uploads), 1)
        self.assertEqual(uploads[0]["http.request.body.size"], 200 * 1024)
        big = [e for e in self.ours() if e["url.path"] == "/static/big.bin" and e["kind"] == "server"]
        self.assertEqual(big[0]["http.response.body.size"], 300 * 1024)


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main(verbosity=2)

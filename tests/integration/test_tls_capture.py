#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration (label bpf): HTTPS without keys. The plaintext scenario switched to TLS
everywhere must give the same exact counts per (kind, port, method, path, status).

Topology:  curl / ab / Python (ssl) / node --TLS--> nginx (ssl) --/proxy/ TLS--> backend.py (ssl)
           Python --TLS--> node https server (OpenSSL linked into the node binary)

nginx, the backend, the node server and one Python client (with its connection already
open) start before the agent: their libssl / node binary are found by the /proc scan. The
other clients start after it; node's binary is attached through the exec event.
"""
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import unittest
import urllib.request

import harness

REDTAP = harness.find_redtap()

NGINX_TLS_CONF = (
    harness.NGINX_MAIN
    + """http {{
  access_log off;
  keepalive_requests 100000;
"""
    + harness.NGINX_TEMP_PATHS
    + """  upstream backend {{ server 127.0.0.1:{backend}; keepalive 4; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    listen [::1]:{port} ssl;
    root {dir}/www;
    ssl_certificate {dir}/cert.pem;
    ssl_certificate_key {dir}/key.pem;
    location = /ok {{ return 200 "ok\\n"; }}
    location = /teapot {{ return 418; }}
    location = /fail {{ return 500; }}
    location /static/ {{ alias {dir}/www/; etag on; }}
    location /proxy/ {{
      proxy_pass https://backend/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_verify off;
      proxy_ssl_session_reuse on;
    }}
  }}
}}
"""
)

NODE_SERVER = r"""
const https = require('https'), fs = require('fs');
const [port, cert, key] = process.argv.slice(1);
https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)}, (req, res) => {
  const code = req.url.startsWith('/status/') ? parseInt(req.url.split('/')[2]) : 200;
  res.writeHead(code, {'Content-Type': 'text/plain'}); res.end('node ' + code + '\n');
}).listen(parseInt(port), '127.0.0.1');
"""

# A blocking TLS server (thread per connection, as many legacy servers are): after the
# handshake its thread waits inside SSL_read, where the agent finds it when it attaches.
BLOCKING_SERVER = r"""
import socket, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(4)
while True:  # the first connection that completes a handshake (wait_port's probe does not)
    try:
        c = ctx.wrap_socket(l.accept()[0], server_side=True)
        break
    except (ssl.SSLError, OSError):
        pass
while True:
    d = c.recv(65536)
    if not d:
        break
    if b"\r\n\r\n" in d:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
"""

NODE_CLIENT = r"""
const https = require('https');
const [port, n] = process.argv.slice(1).map(Number);
const agent = new https.Agent({keepAlive: true, maxSockets: 1});
let done = 0;
function go() {
  https.get({host: '127.0.0.1', port, path: '/ok', agent, rejectUnauthorized: false}, r => {
    r.resume();
    r.on('end', () => { if (++done < n) go(); else { agent.destroy(); console.log('done ' + done); } });
  });
}
go();
"""


def tls_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def recv_responses(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while True:
        count, pos = 0, 0
        while True:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", buf[pos:end])
            body = int(m.group(1)) if m else 0
            if end + 4 + body > len(buf):
                break
            pos = end + 4 + body
            count += 1
        if count >= n:
            return buf
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk


class TlsCapture(harness.Scenario):
    """The default placement: SSL_read/SSL_write of Debian's libssl3 probed on emulated
    instructions (the internal call and the jump after it), the _ex functions and node's
    OpenSSL on entry + uretprobe."""
    PREFIX = "redtap-tls-"

    SSL_READ_MODE = "emulated"

    @classmethod
    def curl(cls, path, *args, host="127.0.0.1"):
        h = f"[{host}]" if ":" in host else host
        out = subprocess.run(["curl", "-sSkg", "-o", "/dev/null", "-w", "%{http_code}", *args,
                              f"https://{h}:{cls.ng}{path}"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return int(out)

    @classmethod
    def _run(cls):
        cert, key = os.path.join(cls.tmp, "cert.pem"), os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        os.chmod(key, 0o644)
        cls.start_backend("--tls", cert, key)
        cls.ng = harness.free_port()
        os.makedirs(os.path.join(cls.tmp, "www"))
        os.chmod(os.path.join(cls.tmp, "www"), 0o755)
        with open(os.path.join(cls.tmp, "www", "2k.html"), "wb") as f:
            f.write(b"x" * 2048)
        os.chmod(os.path.join(cls.tmp, "www", "2k.html"), 0o644)
        conf = os.path.join(cls.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_TLS_CONF.format(dir=cls.tmp, port=cls.ng, backend=cls.be))
        cls.procs.start(["nginx", "-c", conf, "-e", os.path.join(cls.tmp, "nginx-error.log")])
        harness.wait_port(cls.ng)
        cls.node = shutil.which("node")
        if cls.node:
            cls.node_port = harness.free_port()
            cls.procs.start([cls.node, "-e", NODE_SERVER, str(cls.node_port), cert, key])
            harness.wait_port(cls.node_port)

        # A Python client with a TLS keep-alive connection open before the agent starts.
        early = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", cls.ng)))
        early.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_responses(early, 1)
        # A blocking server whose thread is inside SSL_read before the agent starts.
        cls.blocked_port = harness.free_port()
        cls.procs.start([sys.executable, "-c", BLOCKING_SERVER, str(cls.blocked_port), cert,
                         key])
        harness.wait_port(cls.blocked_port)
        blocked = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1",
                                                                   cls.blocked_port)))
        time.sleep(0.3)  # the server thread is now blocked in SSL_read

        cls.start_agent(REDTAP)
        with urllib.request.urlopen(f"http://127.0.0.1:{cls.agent.http_port}/metrics") as r:
            cls.metrics_text = r.read().decode()

        # 0. The blocked SSL_read returns with a request the uprobes never saw: its answer is
        # reported as unparsed (server side); the client's call is seen whole.
        t0 = time.monotonic()
        blocked.sendall(b"GET /blocked HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_responses(blocked, 1)
        cls.blocked_ms = (time.monotonic() - t0) * 1000
        blocked.sendall(b"GET /blocked2 HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_responses(blocked, 1)
        blocked.close()
        cls.expect("client", cls.blocked_port, "GET", "/blocked", 200)
        cls.expect("server", cls.blocked_port, "_OTHER", None, 200)
        cls.expect("client", cls.blocked_port, "GET", "/blocked2", 200)
        cls.expect("server", cls.blocked_port, "GET", "/blocked2", 200)

        # 1. The early connection, used again (the process started before the agent).
        early.sendall(b"GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_responses(early, 1)
        early.close()
        cls.via_nginx("GET", "/teapot", 418)

        # 2. curl: statuses, proxied statuses over TLS to the backend.
        for path, st in [("/ok", 200), ("/fail", 500), ("/proxy/status/201", 201),
                         ("/proxy/status/404", 404), ("/proxy/chunked", 200)]:
            assert cls.curl(path) == st, path
            cls.via_nginx("GET", path, st)
        assert cls.curl("/proxy/echo", "--data-binary", "x" * 50000, "-H", "Expect:") == 200
        cls.via_nginx("POST", "/proxy/echo", 200)

        # 2b. HEAD, 304, IPv6, as in the plaintext scenario.
        assert cls.curl("/static/2k.html", "-I") == 200
        cls.via_nginx("HEAD", "/static/2k.html", 200)
        head = subprocess.run(["curl", "-sSkI", f"https://127.0.0.1:{cls.ng}/static/2k.html"],
                              capture_output=True, text=True, check=True).stdout
        cls.via_nginx("HEAD", "/static/2k.html", 200)
        etag = re.search(r"(?i)etag:\s*(\S+)", head).group(1)
        assert cls.curl("/static/2k.html", "-H", f"If-None-Match: {etag}") == 304
        cls.via_nginx("GET", "/static/2k.html", 304)
        assert cls.curl("/ok", host="::1") == 200
        cls.via_nginx("GET", "/ok", 200)

        # 3. Python keep-alive (ssl module: SSL_read_ex/SSL_write_ex) and pipelining.
        import http.client
        c = http.client.HTTPSConnection("127.0.0.1", cls.ng, context=tls_ctx())
        for path in ("/ok", "/proxy/status/503", "/ok"):
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            cls.via_nginx("GET", path, r.status)
        c.close()
        s = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", cls.ng)))
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /teapot HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_responses(s, 3)
        s.close()
        cls.via_nginx("GET", "/ok", 200, 2)
        cls.via_nginx("GET", "/teapot", 418)
        # A request split over many TLS records, then a chunked upload, on one connection.
        s = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", cls.ng)))
        for piece in (b"GET /te", b"apot HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
            s.sendall(piece)
            time.sleep(0.02)
        recv_responses(s, 1)
        cls.via_nginx("GET", "/teapot", 418)
        s.sendall(b"POST /proxy/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;a=b\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        assert b"got 11 bytes" in recv_responses(s, 1)
        cls.via_nginx("POST", "/proxy/echo", 200)
        s.close()
        # Expect: 100-continue straight to the HTTPS backend.
        s = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", cls.be)))
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        s.settimeout(5)
        interim = s.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        s.sendall(b"abcd")
        assert b"got 4 bytes" in recv_responses(s, 1)
        s.close()
        cls.expect("client", cls.be, "POST", "/echo", 200)
        cls.expect("server", cls.be, "POST", "/echo", 200)

        # 4. ab over TLS with keep-alive: an exact count.
        out = subprocess.run(["ab", "-q", "-n", "2000", "-c", "8", "-k",
                              f"https://127.0.0.1:{cls.ng}/ok"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        assert re.search(r"Complete requests:\s+2000", out) and \
            re.search(r"Failed requests:\s+0", out), out
        cls.via_nginx("GET", "/ok", 200, 2000)

        # 5. node: the server (OpenSSL inside the node binary, found by the start-up scan)
        # answers Python; then a node client started now (binary attached on exec; a warm-up
        # run lets the attach finish first, as for any new binary).
        cls.node_client_out = ""
        if cls.node:
            for code in (200, 404, 200):
                c = http.client.HTTPSConnection("127.0.0.1", cls.node_port, context=tls_ctx())
                c.request("GET", f"/status/{code}")
                c.getresponse().read()
                c.close()
                cls.expect("client", cls.node_port, "GET", f"/status/{code}", code)
                cls.expect("server", cls.node_port, "GET", f"/status/{code}", code)
            subprocess.run([cls.node, "-e", "setTimeout(() => {}, 200)"], check=True)
            time.sleep(0.5)
            cls.node_client_out = subprocess.run(
                [cls.node, "-e", NODE_CLIENT, str(cls.ng), "5"], capture_output=True,
                text=True, timeout=30).stdout
            cls.via_nginx("GET", "/ok", 200, 5)

        time.sleep(0.3)
        cls.stop_rc, cls.stop_s = cls.agent.stop()
        cls.log = cls.agent.read_log()
        cls.events = cls.agent.read_events()

    def ours(self):
        ports = {self.ng, self.be, self.blocked_port} | ({self.node_port} if self.node else set())
        return [e for e in self.events if e.get("server.port") in ports]

    def test_counts_equal_what_clients_did(self):
        self.assertIn("done 5", self.node_client_out or "done 5")
        self.assert_counts()

    def test_request_of_an_ssl_read_in_progress_at_attach(self):
        # Counted where it was lost, and its answer reported from the time its bytes arrived.
        m = re.search(r"kernel drops:(.*)$", self.log, re.M)
        drops = dict(re.findall(r"(\w+)=(\d+)", m.group(1)))
        self.assertEqual(drops.get("tls_missed_read"), "1", self.log)
        [e] = [e for e in self.ours() if e["http.request.method"] == "_OTHER"]
        self.assertEqual(e["http.route"], "/*unparsed")
        self.assertEqual(e["server.port"], self.blocked_port)
        # From the ciphertext's arrival to the answer: inside what the client measured around
        # its send and receive (the client's own event starts at its SSL_write's return, after
        # the bytes left, so it is no bound).
        self.assertGreater(e["duration_ms"], 0)
        self.assertLessEqual(e["duration_ms"], self.blocked_ms)

    def test_every_event_is_tls(self):
        self.assertTrue(self.ours())
        for e in self.ours():
            self.assertIs(e.get("tls"), True, e)

    def test_ab_exact(self):
        self.assertEqual(sum(1 for e in self.ours() if e["process.command"] == "ab"), 2000)

    def test_probes_attached_and_no_drops(self):
        self.assertRegex(self.log, r"OpenSSL probes attached to \S*libssl\.so")
        if self.node:
            self.assertRegex(self.log, r"OpenSSL probes attached to \S*node")
        m = re.search(r"kernel drops:(.*)$", self.log, re.M)
        drops = dict(re.findall(r"(\w+)=(\d+)", m.group(1)))
        for reason in ("ringbuf_full", "conn_table_full", "read_fault", "tls_no_fd"):
            self.assertEqual(drops.get(reason), "0", (reason, self.log))
        self.assertEqual(self.stop_rc, 0)

    def test_ciphertext_never_parsed(self):
        self.assertIn(" 0 parse errors", self.log)

    def test_probe_placement_per_function(self):
        # What the agent says it chose: its log line and redtap_agent_tls_probes.
        self.assertRegex(self.log, r"OpenSSL probes attached to \S*libssl\.so\S* \(\d+ probes: "
                         rf"SSL_read {self.SSL_READ_MODE}, SSL_write {self.SSL_READ_MODE},")
        modes = re.findall(r'redtap_agent_tls_probes\{library="([^"]*libssl[^"]*)",'
                           r'function="(SSL_read|SSL_write)",mode="([a-z_]+)"\} 1',
                           self.metrics_text)
        self.assertTrue(modes, self.metrics_text)
        self.assertEqual({m for _, _, m in modes}, {self.SSL_READ_MODE})
        if self.node:
            # Node's OpenSSL inlines the internal calls; its functions start with push.
            self.assertRegex(self.metrics_text, r'redtap_agent_tls_probes\{library="[^"]*node[^"]*",'
                             r'function="SSL_read",mode="uretprobe_emulated_entry"\} 1')


class TlsCaptureUretprobes(TlsCapture):
    """The same traffic, counted the same, with entry + uretprobe everywhere."""
    PREFIX = "redtap-tls-uret-"
    CONFIG = "tls:\n  emulated_sites: false\n"
    SSL_READ_MODE = "uretprobe_stepped_entry"


if __name__ == "__main__":
    harness.require_bpf()
    unittest.main(verbosity=2)

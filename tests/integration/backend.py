#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small HTTP/1.1 backend for the integration tests (Python's http.server, keep-alive).

Routes:
  GET  /status/<code>      responds <code> with a short body (no body for 204/304)
  POST /echo               reads the body (Content-Length or chunked), answers its size
  GET  /chunked            answers with a chunked body of 3 chunks
  GET  /slow?ms=N          sleeps N ms, then 200
  ANY  /api/...?status=N&ms=M  a shop-like API: sleeps M ms (default 0), answers N (default 200)
  anything else            404
Usage: backend.py PORT [HOST] [--tls CERT KEY]   (--tls: HTTPS through the ssl module)
"""
import http.server
import socketserver
import sys
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.request_version == "HTTP/1.0" and \
                self.headers.get("Connection", "").lower() == "keep-alive":
            self.send_header("Connection", "keep-alive")  # ab -k waits for it
        if code not in (204, 304) and not (100 <= code < 200):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and code not in (204, 304) and self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            total = 0
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                self.rfile.read(size)
                self.rfile.readline()
                total += size
        n = int(self.headers.get("Content-Length", "0"))
        remaining = n
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        return n

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if parts[0] == "status" and len(parts) == 2 and parts[1].isdigit():
            code = int(parts[1])
            self._send(code, b"status %d\n" % code)
        elif url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"first,", b"second,", b"third\n"):
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\nX-Trailer: done\r\n\r\n")
        elif url.path.startswith("/api/"):
            q = urllib.parse.parse_qs(url.query)
            ms = int(q.get("ms", ["0"])[0])
            if ms:
                time.sleep(ms / 1000.0)
            code = int(q.get("status", ["200"])[0])
            self._send(code, b'{"ok":true}\n', {"Content-Type": "application/json"})
        elif url.path == "/slow":
            ms = int(urllib.parse.parse_qs(url.query).get("ms", ["100"])[0])
            time.sleep(ms / 1000.0)
            self._send(200, b"slow\n")
        else:
            self._send(404, b"not found\n")

    do_HEAD = do_GET

    def do_POST(self):
        n = self._read_body()
        if self.path.startswith("/api/"):
            self.do_GET()
        elif self.path.startswith("/echo"):
            self._send(200, b"got %d bytes\n" % n)
        elif self.path.startswith("/status/"):
            code = int(self.path.split("/")[2])
            self._send(code, b"status %d\n" % code)
        else:
            self._send(404, b"not found\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    args = sys.argv[1:]
    tls = None
    if "--tls" in args:
        i = args.index("--tls")
        tls = (args[i + 1], args[i + 2])
        del args[i:i + 3]
    port = int(args[0])
    host = args[1] if len(args) > 1 else "127.0.0.1"
    server = Server((host, port), Handler)
    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()

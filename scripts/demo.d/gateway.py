#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A local HTTPS payment gateway impersonating api.stripe.com (certificate for that name,
made by scripts/demo). POST /v1/charges with a JSON body {"amount", "currency"}: approves, or
declines with HTTP 402 {"error": {"code": REASON}} at --decline-rate. Seeded: reproducible."""
import argparse
import json
import os
import random
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import set_process_name  # noqa: E402

REASONS = ["card_declined", "insufficient_funds", "expired_card"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--decline-rate", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--decline-rate-file",
                    help="a file holding the decline rate, read at each request (tests change "
                         "it while the gateway runs); --decline-rate while it is absent")
    args = ap.parse_args()
    set_process_name("stripe-sim")
    rng = random.Random(args.seed)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            try:
                req = json.loads(body)
            except ValueError:
                req = {}
            rate = args.decline_rate
            if args.decline_rate_file:
                try:
                    with open(args.decline_rate_file) as f:
                        rate = float(f.read().strip() or rate)
                except (OSError, ValueError):
                    pass
            with lock:
                declined = rng.random() < rate
                reason = rng.choice(REASONS)
            if self.path != "/v1/charges" or "amount" not in req:
                status, out = 400, {"error": {"code": "invalid_request"}}
            elif declined:
                status, out = 402, {"error": {"code": reason}}
            else:
                status, out = 200, {"id": "ch_%08x" % rng.getrandbits(32), "status": "succeeded"}
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()

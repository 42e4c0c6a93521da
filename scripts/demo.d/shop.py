#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small legacy-style shop (HTTP/1.1, JSON, one thread per connection) with the seed's
endpoints, behind nginx. Card payments go to the gateway over HTTPS: the shop connects to
127.0.0.1:--gateway-port with SNI and Host api.stripe.com (no /etc/hosts change, no internet).

  POST /api/cart/add                      {"sku", "qty"}          200, 409 when sku is OOS-*
  POST /api/checkout                      {}                      200, 401 when X-Session: expired
  POST /api/payment/process               {"amount", "currency", "method": card|giftcard, "card"}
                                          200 {"order_id"}, 402 {"error": {"code"}}, 422
  GET  /api/orders/{id}/confirmation                              200, 404
"""
import argparse
import http.client
import itertools
import json
import os
import re
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import set_process_name  # noqa: E402

GATEWAY_HOST = "api.stripe.com"


class GatewayConnection(http.client.HTTPSConnection):
    """HTTPS to GATEWAY_HOST, but connected to 127.0.0.1:port (the local impersonator)."""

    def __init__(self, port, ctx):
        super().__init__(GATEWAY_HOST, port, context=ctx, timeout=10)
        self._ctx = ctx
        self._real_port = port

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self._real_port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=GATEWAY_HOST)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--gateway-port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    args = ap.parse_args()
    set_process_name("shop")
    ctx = ssl.create_default_context(cafile=args.cafile)
    order_ids = itertools.count(1000)
    orders = set()
    lock = threading.Lock()
    confirmation = re.compile(r"^/api/orders/(\d+)/confirmation$")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, obj):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            n = int(self.headers.get("Content-Length", "0"))
            try:
                return json.loads(self.rfile.read(n) or b"{}")
            except ValueError:
                return None

        def do_POST(self):
            req = self.body()
            path = self.path.split("?")[0]
            if req is None:
                return self.reply(400, {"error": {"code": "bad_json"}})
            if path == "/api/cart/add":
                if str(req.get("sku", "")).startswith("OOS-"):
                    return self.reply(409, {"error": {"code": "out_of_stock"}})
                return self.reply(200, {"cart": "ok"})
            if path == "/api/checkout":
                if self.headers.get("X-Session") == "expired":
                    return self.reply(401, {"error": {"code": "session_expired"}})
                return self.reply(200, {"checkout": "ok"})
            if path == "/api/payment/process":
                amount = req.get("amount")
                if not isinstance(amount, (int, float)) or amount <= 0:
                    return self.reply(422, {"error": {"code": "invalid_amount"}})
                if req.get("method") == "giftcard":
                    status, out = 200, {}
                else:
                    gw = GatewayConnection(args.gateway_port, ctx)
                    try:
                        gw.request("POST", "/v1/charges",
                                   body=json.dumps({"amount": amount,
                                                    "currency": req.get("currency")}),
                                   headers={"Content-Type": "application/json"})
                        r = gw.getresponse()
                        out = json.loads(r.read() or b"{}")
                        status = 200 if r.status == 200 else 402
                    except (OSError, ValueError):
                        status, out = 502, {"error": {"code": "gateway_unreachable"}}
                    finally:
                        gw.close()
                if status == 200:
                    with lock:
                        oid = next(order_ids)
                        orders.add(oid)
                    return self.reply(200, {"order_id": oid})
                return self.reply(status, {"error": {"code": out.get("error", {}).get("code",
                                                                                     "unknown")}})
            return self.reply(404, {"error": {"code": "not_found"}})

        def do_GET(self):
            m = confirmation.match(self.path.split("?")[0])
            if m:
                with lock:
                    known = int(m.group(1)) in orders
                return self.reply(200 if known else 404, {"order_id": int(m.group(1))})
            return self.reply(404, {"error": {"code": "not_found"}})

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()

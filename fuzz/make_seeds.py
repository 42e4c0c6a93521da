#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpora of the fuzz targets into OUT/<target>/, in each target's input
layout (see the comment at the top of each fuzz_*.cc), from the shared corpus
(/work/shared/corpora, or $REDTAP_CORPORA) and the repository's config files.

usage: make_seeds.py OUT [REPO]
"""
import base64
import glob
import hashlib
import json
import os
import struct
import sys

OUT = sys.argv[1]
REPO = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), '..')
CORPORA = os.environ.get('REDTAP_CORPORA', '/work/shared/corpora')
MAX_SEED = 64 * 1024


def write(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    data = data[:MAX_SEED]
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), 'wb') as f:
        f.write(data)


# --- fuzz_http_connection: [flags] then (ctl, len, bytes) ops -------------------------------
def http_seed(messages, flags, split):
    """messages: [(dir, bytes)]; split: chunk size (<= 255)."""
    out = bytearray([flags])
    for d, data in messages:
        for i in range(0, len(data), split):
            part = data[i:i + split]
            out += bytes([d, len(part)]) + part
    return bytes(out)


def libhtp_stream(raw):
    msgs, cur, d = [], bytearray(), None
    for line in raw.split(b'\n'):
        tag = line.rstrip(b'\r')
        if tag in (b'>>>', b'<<<'):
            if d is not None:
                msgs.append((d, bytes(cur)))
            d, cur = (0 if tag == b'>>>' else 1), bytearray()
        elif d is not None:
            cur += line + b'\n'
    if d is not None:
        msgs.append((d, bytes(cur[:-1])))
    return msgs


def http_seeds():
    n = 0
    js = os.path.join(CORPORA, 'parser/nodejs-http-parser/messages.json')
    if os.path.exists(js):
        for m in json.load(open(js))['messages']:
            raw = base64.b64decode(m['raw_base64']) if m.get('raw_base64') else m['raw'].encode()
            d = 0 if m['type'] == 'request' else 1
            msgs = [(d, raw)] if d == 0 else [(0, b'GET / HTTP/1.1\r\n\r\n'), (1, raw)]
            write('fuzz_http_connection', http_seed(msgs, 0x53, 255))
            write('fuzz_http_connection', http_seed(msgs, 0xb6, 7))
            n += 2
    for t in sorted(glob.glob(os.path.join(CORPORA, 'parser/oisf-libhtp/files/*'))):
        msgs = libhtp_stream(open(t, 'rb').read())
        if msgs:
            write('fuzz_http_connection', http_seed(msgs, 0x33, 255))
            write('fuzz_http_connection', http_seed(msgs, 0xf2, 13))
            n += 2
    pico = os.path.join(CORPORA, 'parser/h2o-picohttpparser/test_vectors.json')
    if os.path.exists(pico):
        for c in json.load(open(pico)).get('parse_cases', []):
            raw = c.get('input') or c.get('raw') or ''
            if isinstance(raw, str) and raw:
                d = 1 if raw.startswith('HTTP/') else 0
                write('fuzz_http_connection', http_seed([(d, raw.encode('latin-1', 'replace'))], 0x13, 255))
                n += 1
    return n


# --- fuzz_pcap: [link index][flags] then (len16le, dt_ms, bytes) packets --------------------
LINKS = [1, 0, 12, 14, 101, 108, 113, 129, 228, 229, 239, 276]


def pcap_packets(raw):
    """Classic pcap or pcapng (EPB/SPB): (linktype, [(ts_us, frame)])."""
    if len(raw) < 24:
        return None, []
    magic = raw[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1', b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        e = '<' if magic[0] in (0xd4, 0x4d) else '>'
        link = struct.unpack(e + 'I', raw[20:24])[0] & 0xffff
        pos, pkts = 24, []
        while pos + 16 <= len(raw):
            sec, frac, cap, _ = struct.unpack(e + 'IIII', raw[pos:pos + 16])
            pkts.append((sec * 1000000 + frac, raw[pos + 16:pos + 16 + cap]))
            pos += 16 + cap
        return link, pkts
    if magic == b'\x0a\x0d\x0d\x0a':
        e = '<' if raw[8:12] == b'\x4d\x3c\x2b\x1a' else '>'
        pos, links, pkts = 0, [], []
        while pos + 12 <= len(raw):
            btype, blen = struct.unpack(e + 'II', raw[pos:pos + 8])
            if blen < 12:
                break
            body = raw[pos + 8:pos + blen - 4]
            if btype == 1:
                links.append(struct.unpack(e + 'H', body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                _, hi, lo, cap, _ = struct.unpack(e + 'IIIII', body[:20])
                pkts.append((((hi << 32) | lo), body[20:20 + cap]))
            elif btype == 3 and len(body) >= 4:
                pkts.append((0, body[4:]))
            pos += blen
        return (links[0] if links else None), pkts
    return None, []


def pcap_seeds():
    n = 0
    for p in sorted(glob.glob(os.path.join(CORPORA, 'pcap/**/*.pcap*'), recursive=True)):
        link, pkts = pcap_packets(open(p, 'rb').read())
        if link not in LINKS or not pkts:
            continue
        out = bytearray([LINKS.index(link), 1])
        last = pkts[0][0]
        for ts, frame in pkts:
            frame = frame[:65535]
            if len(out) + 3 + len(frame) > MAX_SEED:
                break
            dt = max(0, min(255, (ts - last) // 1000))
            last = ts
            out += struct.pack('<HB', len(frame), dt) + frame
        write('fuzz_pcap', bytes(out))
        n += 1
    return n


# --- fuzz_config: YAML text ------------------------------------------------------------------
def config_seeds():
    n = 0
    for p in [os.path.join(REPO, 'config/redtap.yaml')] + sorted(
            glob.glob(os.path.join(REPO, 'config/examples/*.yaml'))):
        write('fuzz_config', open(p, 'rb').read())
        n += 1
    return n


# --- fuzz_redact_route: [flags] target \0 header value \0 pattern ----------------------------
def redact_seeds():
    n = 0
    targets = [b'/api/orders/123/items?password=hunter2&x=1', b'/cards/4111111111111111/x',
               b'/users/a@b.io/x', b'/users/a%40b.io/profile', b'http://h/a/b?token=abc',
               b'/v1/2024-01-31T10:00:00Z/0b4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d',
               b'/x/550e8400-e29b-41d4-a716-446655440000/y', b'*', b'host:443',
               b'/pay?card=4111-1111-1111-1111&cvv=123', b'/a%2Fb/4111%201111%201111%201111/z']
    values = [b'4111 1111 1111 1111', b'Bearer abc.def.ghi', b'5500-0000-0000-0004', b'']
    patterns = [b'', b'/api/{id}/x', b'/static/*', b'/v1/{rest...}', b'/{a}/{b}/{c}']
    js = os.path.join(CORPORA, 'parser/nodejs-http-parser/messages.json')
    if os.path.exists(js):
        for m in json.load(open(js))['messages']:
            if m.get('request_url'):
                targets.append(m['request_url'].encode('latin-1', 'replace'))
    for i, t in enumerate(targets):
        write('fuzz_redact_route',
              bytes([i & 0x1f]) + t + b'\0' + values[i % len(values)] + b'\0' +
              patterns[i % len(patterns)])
        n += 1
    return n


if __name__ == '__main__':
    counts = {'fuzz_http_connection': http_seeds(), 'fuzz_pcap': pcap_seeds(),
              'fuzz_config': config_seeds(), 'fuzz_redact_route': redact_seeds()}
    for k, v in counts.items():
        print(f'{k}: {v} seeds')

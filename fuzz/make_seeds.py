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
        text = open(p, 'rb').read()
        write('fuzz_config', text)
        n += 1
        # Each top-level section alone (comments dropped): small documents keep every
        # section's keys within fuzz_config's -max_len (yaml-cpp is slow on large inputs).
        lines = [ln for ln in text.split(b'\n') if not ln.lstrip().startswith(b'#')]
        section = []
        for ln in lines + [b'end:']:
            if ln and not ln[:1].isspace() and section:
                body = b'\n'.join(section).strip() + b'\n'
                if len(body) > 8:
                    write('fuzz_config', body[:2048])
                    n += 1
                section = []
            if ln.strip():
                section.append(ln)
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


# --- fuzz_db: [flags] then (ctl, len, bytes) ops: the first two bits of flags pick the parser --
def pg_msg(t, body):
    return t + struct.pack('>I', len(body) + 4) + body


def my_pkt(seq, payload):
    return struct.pack('<I', len(payload))[:3] + bytes([seq]) + payload


def resp(*args):
    out = b'*%d\r\n' % len(args)
    for a in args:
        out += b'$%d\r\n%s\r\n' % (len(a), a)
    return out


def db_seed(proto, messages, split):
    out = bytearray([proto | 0x3c])  # max_pending 256, max_buffered 64 KiB
    for d, data in messages:
        for i in range(0, len(data), split):
            part = data[i:i + split]
            out += bytes([d, len(part)]) + part
    return bytes(out)


def db_seeds():
    startup = struct.pack('>II', 0, 196608) + b'user\0app\0database\0shop\0\0'
    startup = struct.pack('>I', len(startup)) + startup[4:]
    q = b"INSERT INTO orders (item, qty) VALUES ('widget', 3)\0"
    pg = [(0, startup), (1, pg_msg(b'R', struct.pack('>I', 0)) + pg_msg(b'Z', b'I')),
          (0, pg_msg(b'Q', q)),
          (1, pg_msg(b'C', b'INSERT 0 1\0') + pg_msg(b'Z', b'I')),
          (0, pg_msg(b'P', b'\0SELECT n FROM stock WHERE item = $1\0\0\0') +
           pg_msg(b'B', b'\0\0\0\0\0\x01\0\0\0\x06widget\0\0') + pg_msg(b'E', b'\0\0\0\0\0') +
           pg_msg(b'S', b'')),
          (1, pg_msg(b'1', b'') + pg_msg(b'2', b'') + pg_msg(b'D', b'\0\x01\0\0\0\x014') +
           pg_msg(b'C', b'SELECT 1\0') + pg_msg(b'Z', b'I')),
          (0, pg_msg(b'Q', b"INSERT INTO c VALUES (1, '4111111111111111')\0")),
          (1, pg_msg(b'E', b'SERROR\0C23505\0Mduplicate key\0\0') + pg_msg(b'Z', b'I'))]
    greeting = b'\x0a5.5.5-10.11.6-MariaDB\0' + b'\x01\0\0\0' + b'abcdefgh\0' + \
        b'\xfe\xf7\x2d\x02\0\xff\x81\x15' + b'\0' * 10 + b'ijklmnopqrst\0mysql_native_password\0'
    my = [(1, my_pkt(0, greeting)),
          (0, my_pkt(1, b'\x85\xa6\xff\x01\0\0\0\x01\x2d' + b'\0' * 23 + b'app\0\x14' + b'x' * 20)),
          (1, my_pkt(2, b'\0\0\0\x02\0\0\0')),
          (0, my_pkt(0, b'\x03SELECT email FROM items WHERE id = 1')),
          (1, my_pkt(1, b'\x01') + my_pkt(2, b'\x03def\x04shop\x05items\x05items\x05email\x05email\x0c!\0\0\x01\0\0\xfd\0\0\0\0\0') +
           my_pkt(3, b'\xfe\0\0\x02\0') + my_pkt(4, b'\x10jane@example.com') + my_pkt(5, b'\xfe\0\0\x02\0')),
          (0, my_pkt(0, b"\x03INSERT INTO items VALUES (1, 'a', '4111111111111111')")),
          (1, my_pkt(1, b'\xff\x26\x04#23000Duplicate entry')),
          (0, my_pkt(0, b'\x16INSERT INTO t (v) VALUES (?)')),
          (1, my_pkt(1, b'\0\x01\0\0\0\0\0\x01\0\0\0\0'))]
    rd = [(0, resp(b'SET', b'user:jane@example.com', b'4111111111111111') + resp(b'GET', b'k')),
          (1, b'+OK\r\n$3\r\nabc\r\n'),
          (0, resp(b'MULTI') + resp(b'INCR', b'k') + resp(b'LPUSH', b'k', b'v') + resp(b'EXEC')),
          (1, b'+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n-WRONGTYPE Operation\r\n'),
          (0, b'PING\r\n' + resp(b'SUBSCRIBE', b'a', b'b')),
          (1, b'+PONG\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n')]
    n = 0
    for proto, msgs in ((0, pg), (1, my), (2, rd)):
        for split in (255, 7, 1):
            write('fuzz_db', db_seed(proto, msgs, split))
            n += 1
    for stmt in (b"SELECT a FROM t WHERE x = 'it''s' AND y = 4111111111111111",
                 b"WITH a AS (SELECT * FROM t) SELECT * FROM a JOIN b ON a.id = b.id",
                 b"INSERT INTO t VALUES (E'\\'', $$x$$, 0x1f, 1e5) -- c",
                 b"/*!40101 SET NAMES utf8 */; COPY t FROM STDIN"):
        write('fuzz_db', bytes([3]) + stmt)
        n += 1
    return n


if __name__ == '__main__':
    counts = {'fuzz_http_connection': http_seeds(), 'fuzz_pcap': pcap_seeds(),
              'fuzz_config': config_seeds(), 'fuzz_redact_route': redact_seeds(),
              'fuzz_db': db_seeds()}
    for k, v in counts.items():
        print(f'{k}: {v} seeds')

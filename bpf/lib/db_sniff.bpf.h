/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* db_sniff.bpf.h: do a connection's first bytes start PostgreSQL, MySQL/MariaDB or Redis?
 *
 * Strong patterns open a connection on their own, whatever its ports: a PostgreSQL
 * StartupMessage or SSLRequest (client), a MySQL protocol-10 greeting (server), a RESP array
 * of bulk strings (a Redis command; fresh connections only, whose first bytes are the
 * client's). Weak patterns (a typed PostgreSQL message, a MySQL packet, a RESP reply or an
 * inline command) open a connection only when its server port is a configured hint
 * (db_port_map): that is how connections opened before the agent are found. Everything else
 * stays dropped in the kernel.
 *
 * The 16 sniffed bytes travel as two scalars so that the checks are global functions the
 * verifier walks once, outside io__handle. Pure logic (unit-tested as C++ in
 * tests/unit/capture/sniff_test.cc); the port hint lookup is db_hint.bpf.h. */
#pragma once

#define REDTAP_DB_SIDE_FRONTEND 1 /* bytes the client sends */
#define REDTAP_DB_SIDE_BACKEND  2 /* bytes the server sends */
/* db__sniff result: proto | side << 8 | flags; or, with no strong pattern, a mask of the
 * protocols the bytes may belong to (weak) << 16. */
#define REDTAP_DB_STRONG     (1u << 12)
#define REDTAP_DB_SSLREQ     (1u << 13) /* a PostgreSQL SSLRequest / GSSENCRequest */
#define REDTAP_DB_WEAK_SHIFT 16

/* Which side of the connection a hinted port is (db__port_hint result << 8). */
#define REDTAP_DB_HINT_LOCAL  1
#define REDTAP_DB_HINT_REMOTE 2

static __always_inline __u32 db__b(__u64 w0, __u64 w1, __u32 i)
{
	return (i < 8 ? w0 >> (8 * i) : w1 >> (8 * (i - 8))) & 0xff;
}

static __always_inline int db__digit(__u32 c)
{
	return c >= '0' && c <= '9';
}

static __always_inline int db__alpha(__u32 c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* A PostgreSQL message type byte (frontend or backend). */
static __always_inline int db__pg_type(__u32 c)
{
	switch (c) {
	case 'Q':
	case 'P':
	case 'B':
	case 'E':
	case 'S':
	case 'D':
	case 'C':
	case 'H':
	case 'X':
	case 'F':
	case 'd':
	case 'c':
	case 'f':
	case 'p':
	case 'R':
	case 'K':
	case 'Z':
	case 'T':
	case 'N':
	case '1':
	case '2':
	case '3':
	case 'n':
	case 's':
	case 't':
	case 'I':
	case 'G':
	case 'W':
	case 'A':
	case 'V':
	case 'v':
		return 1;
	}
	return 0;
}

/* A MySQL command byte at the start of a command packet. */
static __always_inline int db__mysql_cmd(__u32 c)
{
	switch (c) {
	case 0x01:
	case 0x02:
	case 0x03:
	case 0x0e:
	case 0x16:
	case 0x17:
	case 0x18:
	case 0x19:
	case 0x1a:
	case 0x1b:
	case 0x1f:
		return 1;
	}
	return 0;
}

/* A RESP type byte (RESP2 and RESP3). */
static __always_inline int db__resp_type(__u32 c)
{
	switch (c) {
	case '*':
	case '$':
	case '+':
	case '-':
	case ':':
	case '_':
	case '#':
	case ',':
	case '(':
	case '!':
	case '=':
	case '%':
	case '~':
	case '|':
	case '>':
		return 1;
	}
	return 0;
}

__noinline __u32 db__sniff(__u64 w0, __u64 w1, __u32 n)
{
	__u32 b0 = db__b(w0, w1, 0), b1 = db__b(w0, w1, 1), b2 = db__b(w0, w1, 2),
	      b3 = db__b(w0, w1, 3), b4 = db__b(w0, w1, 4), b5 = db__b(w0, w1, 5);
	if (n > REDTAP_SNIFF_LEN)
		return 0;
	/* PostgreSQL StartupMessage: int32 length, protocol 3.0; SSLRequest 80877103 and
	 * GSSENCRequest 80877104 (length 8). */
	if (n >= 8 && b0 == 0 && b1 == 0) {
		__u32 len = b2 << 8 | b3;
		__u32 b6 = db__b(w0, w1, 6), b7 = db__b(w0, w1, 7);
		if (b4 == 0 && b5 == 3 && b6 == 0 && b7 == 0 && len >= 8 && len <= 10000)
			return REDTAP_PROTO_POSTGRESQL | REDTAP_DB_SIDE_FRONTEND << 8 | REDTAP_DB_STRONG;
		if (len == 8 && b4 == 0x04 && b5 == 0xd2 && b6 == 0x16 && (b7 == 0x2f || b7 == 0x30))
			return REDTAP_PROTO_POSTGRESQL | REDTAP_DB_SIDE_FRONTEND << 8 |
			       REDTAP_DB_STRONG | REDTAP_DB_SSLREQ;
	}
	/* MySQL greeting: 3-byte length, sequence 0, protocol 10, a version string. */
	if (n >= 6 && b2 == 0 && b3 == 0 && b4 == 0x0a && b5 >= '1' && b5 <= '9') {
		__u32 len = b0 | b1 << 8;
		if (len >= 20 && len <= 1024)
			return REDTAP_PROTO_MYSQL | REDTAP_DB_SIDE_BACKEND << 8 | REDTAP_DB_STRONG;
	}
	/* A Redis command: "*<count>\r\n$". */
	if (n >= 5 && b0 == '*' && db__digit(b1) &&
	    ((b2 == '\r' && b3 == '\n' && b4 == '$') ||
	     (n >= 6 && db__digit(b2) && b3 == '\r' && b4 == '\n' && b5 == '$')))
		return REDTAP_PROTO_REDIS | REDTAP_DB_SIDE_FRONTEND << 8 | REDTAP_DB_STRONG;

	__u32 weak = 0;
	/* A typed PostgreSQL message: type, int32 length below 16 MiB and at least 4. */
	if (n >= 5 && db__pg_type(b0) && b1 == 0 && (b2 | b3 | b4) && (b2 | b3 || b4 >= 4))
		weak |= 1u << REDTAP_PROTO_POSTGRESQL;
	/* A MySQL packet: a payload length, a small sequence id; a command when it is 0. */
	if (n >= 5 && (b0 | b1 | b2) && b3 < 64 && (b3 != 0 || db__mysql_cmd(b4)))
		weak |= 1u << REDTAP_PROTO_MYSQL;
	/* A RESP value, or an inline command ("PING\r\n", "get k\r\n"). */
	if (n >= 3 && db__resp_type(b0) && b1 != '\r')
		weak |= 1u << REDTAP_PROTO_REDIS;
	else if (n >= 4 && db__alpha(b0) && db__alpha(b1) && db__alpha(b2))
		weak |= 1u << REDTAP_PROTO_REDIS;
	return weak << REDTAP_DB_WEAK_SHIFT;
}

/* The head as two words for db__sniff, built from bytes: a word loaded from stack bytes that
 * a helper wrote is not always a known scalar to the verifier. The bytes are read through a
 * volatile pointer so that clang cannot merge them back into word loads (it did, depending on
 * what the caller inlined around it). */
static __always_inline void db__words(const __u8 *bytes, __u64 *w0, __u64 *w1)
{
	const volatile __u8 *head = bytes;
	__u64 a = 0, b = 0;
	for (int i = 0; i < 8; i++) {
		a |= (__u64)head[i] << (8 * i);
		b |= (__u64)head[i + 8] << (8 * i);
	}
	*w0 = a;
	*w1 = b;
}

/* Bytes `r` (db__sniff) moved in direction `request_dir` on a connection whose server port
 * hints `hint` (0: none): the protocol they open, or 0. `fresh`: the connection's first
 * bytes (a RESP array may also be a reply further on). */
static __always_inline __u32 db__decide(__u32 r, __u32 hint, int request_dir, int fresh)
{
	if (r & REDTAP_DB_STRONG) {
		__u32 proto = r & 0xff;
		__u32 side = (r >> 8) & 0xf;
		if (proto == REDTAP_PROTO_REDIS && !fresh && (hint & 0xff) != proto)
			return 0;
		if ((side == REDTAP_DB_SIDE_FRONTEND) != !!request_dir)
			return 0;
		return proto;
	}
	__u32 proto = hint & 0xff;
	if (proto && ((r >> REDTAP_DB_WEAK_SHIFT) & (1u << proto)))
		return proto;
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* body_skip.bpf.h: when a captured record is exactly one whole HTTP/1.x message framed by
 * Content-Length (its head, then exactly Content-Length body bytes, nothing after), only the
 * head needs to cross: userspace frames the body from the record's true length and counts it
 * as uncaptured body bytes. Anything else (chunked or any Transfer-Encoding, no or a malformed
 * Content-Length, a body continuing in later calls, bytes after the body, a head longer than
 * REDTAP_SKIP_SCAN, 1xx/204/304 answers) ships as captured.
 *
 * Known limit: the answer to a HEAD request carries a Content-Length but no body. If a client
 * pipelines a HEAD and the server writes its answer and the next one together, and the next
 * one is exactly Content-Length bytes long, that one is taken for the body and not captured:
 * userspace counts a gap and resyncs at the next message. The kernel does not track methods.
 *
 * Why: writing the bytes into the ring is most of what is left on larger answers (a 2.3 KB
 * response record costs ~350 ns more than a 256-byte one in the traced syscall, ~600 ns with
 * the reader's side; scripts/BENCH.md). The scan reads 8 bytes per step (one step per word
 * without a line feed, one per line). */
#pragma once

#define REDTAP_SKIP_MIN  512  /* records this small gain nothing */
#define REDTAP_SKIP_SCAN 2048 /* heads longer than this are not looked for */

struct skip_ctx {
	__u32 n;        /* bytes in the scratch buffer (<= REDTAP_MAX_CAPTURE) */
	__u32 pos;      /* scan cursor */
	__u32 head_end; /* index just past the empty line, 0 until found */
	__u32 cl_off;   /* where the Content-Length value starts, 0 if none */
	__u64 cl;       /* its value */
	__u8 keep;      /* ship everything */
	__u8 digits;
	__u8 state; /* value parse: 0 leading OWS, 1 digits, 2 trailing OWS, 3 done */
};

static __always_inline __u64 skip__load8(const __u8 *buf, __u32 off)
{
	__u64 w;
	__builtin_memcpy(&w, buf + (off & (REDTAP_MAX_CAPTURE - 1)), 8);
	return w;
}

/* The line starting at `ls`: the empty line ends the head (returns 1); Content-Length is
 * noted; Transfer-Encoding (or a second Content-Length) means keep everything (returns 1). */
static __always_inline int skip__line(struct redtap_data_scratch *s, struct skip_ctx *c,
                                      __u32 ls)
{
	if (ls + 2 > c->n) {
		c->keep = 1;
		return 1;
	}
	__u8 c0 = s->buf[ls & (REDTAP_MAX_CAPTURE - 1)];
	__u8 c1 = s->buf[(ls + 1) & (REDTAP_MAX_CAPTURE - 1)];
	if (c0 == '\n') {
		c->head_end = ls + 1;
		return 1;
	}
	if (c0 == '\r') {
		if (c1 == '\n')
			c->head_end = ls + 2;
		else
			c->keep = 1;
		return 1;
	}
	if (ls + 16 > c->n)
		return 0;
	/* Lower-cased by OR 0x20: exact for letters; '-' and ':' are unchanged. */
	__u64 a = skip__load8(s->buf, ls) | 0x2020202020202020ULL;
	__u64 b = skip__load8(s->buf, ls + 8) | 0x2020202020202020ULL;
	if (a == 0x2d746e65746e6f63ULL /* "content-" */ &&
	    (b & 0x00ffffffffffffffULL) == 0x3a6874676e656cULL /* "length:" */) {
		if (c->cl_off) {
			c->keep = 1;
			return 1;
		}
		c->cl_off = ls + 15;
		return 0;
	}
	if (a == 0x726566736e617274ULL /* "transfer" */ && b == 0x6e69646f636e652dULL /* "-encodin" */) {
		c->keep = 1;
		return 1;
	}
	return 0;
}

/* Line-feed bytes of a word: 0x80 in each byte that is '\n' (exact for the lowest one; the
 * borrow may only mark bytes above it). */
static __always_inline __u64 skip__lf(__u64 w)
{
	__u64 x = w ^ 0x0a0a0a0a0a0a0a0aULL;
	return (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
}

/* bpf_loop step: finds the next line feed from c->pos, 16 bytes at a time. */
static long skip__step(__u32 i, struct skip_ctx *c)
{
	__u32 zero = 0;
	struct redtap_data_scratch *s = bpf_map_lookup_elem(&data_heap, &zero);
	__u32 pos = c->pos;

	if (!s || pos >= REDTAP_SKIP_SCAN || pos + 16 > c->n) {
		c->keep = 1; /* no empty line in the scanned bytes */
		return 1;
	}
	__u64 m = skip__lf(skip__load8(s->buf, pos));
	if (!m) {
		m = skip__lf(skip__load8(s->buf, pos + 8));
		if (!m) {
			c->pos = pos + 16;
			return 0;
		}
		pos += 8;
	}
	/* Index of the lowest '\n' byte (exact: the borrow only corrupts bytes above it). */
	__u64 low = (m & -m) >> 7; /* 256^k */
	__u32 k = (low * 0x0001020304050607ULL) >> 56;
	__u32 ls = pos + (k & 7) + 1;
	c->pos = ls;
	return skip__line(s, c, ls);
}

/* bpf_loop step: one byte of the Content-Length value. */
static long skip__digit(__u32 i, struct skip_ctx *c)
{
	__u32 zero = 0;
	struct redtap_data_scratch *s = bpf_map_lookup_elem(&data_heap, &zero);
	__u32 p = c->cl_off + i;

	if (!s || p >= c->n) {
		c->keep = 1;
		return 1;
	}
	__u8 ch = s->buf[p & (REDTAP_MAX_CAPTURE - 1)];
	if (ch == '\r' || ch == '\n') {
		if (!c->digits)
			c->keep = 1;
		c->state = 3;
		return 1;
	}
	if (ch == ' ' || ch == '\t') {
		if (c->state == 1)
			c->state = 2;
		return 0;
	}
	if (ch < '0' || ch > '9' || c->state == 2 || c->digits >= 12) {
		c->keep = 1;
		return 1;
	}
	c->state = 1;
	c->cl = c->cl * 10 + (ch - '0');
	c->digits++;
	return 0;
}

/* Returns how many of the `copied` bytes of this CPU's scratch record to ship for a syscall
 * that moved `ret`. A global function: verified once, on its own, whatever the paths of the
 * programs that call it (its result is an unknown scalar to them: they clamp it). */
__noinline int body__skip(__u32 copied, __u64 ret)
{
	struct skip_ctx c = {.n = copied};
	__u32 zero = 0;
	struct redtap_data_scratch *s = bpf_map_lookup_elem(&data_heap, &zero);

	if (!s || copied <= REDTAP_SKIP_MIN || copied > REDTAP_MAX_CAPTURE)
		return copied;
	int kind = sniff__http(s->buf, REDTAP_SNIFF_LEN);
	if (kind == REDTAP_SNIFF_NONE)
		return copied;
	if (kind == REDTAP_SNIFF_RESPONSE) {
		/* "HTTP/1.x NNN": 1xx, 204 and 304 have no body whatever Content-Length says. */
		__u8 d0 = s->buf[9], d1 = s->buf[10], d2 = s->buf[11];
		if (s->buf[8] != ' ' || d0 == '1' || (d0 == '2' && d1 == '0' && d2 == '4') ||
		    (d0 == '3' && d1 == '0' && d2 == '4'))
			return copied;
	}
	bpf_loop(REDTAP_SKIP_SCAN / 4, skip__step, &c, 0);
	if (c.keep || !c.cl_off || !c.head_end)
		return copied;
	bpf_loop(24, skip__digit, &c, 0);
	if (c.keep || c.state != 3 || (__u64)c.head_end + c.cl != ret)
		return copied;
	return c.head_end;
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * capture.bpf.c: plaintext HTTP/1.x capture from syscall tracepoints, no kprobes.
 *
 * Only sys_exit tracepoints of the data syscalls are attached (plus sys_enter_close): the
 * arguments are read back from the task's saved user registers (bpf_task_pt_regs), so no
 * per-call map entry is stashed between enter and exit, and each traced syscall pays one
 * tracepoint dispatch instead of two.
 *
 * A connection enters conn_map at accept/connect, or on its first data when that data starts
 * like HTTP (connections that predate the agent, or fds inherited across fork). Its first
 * bytes decide: HTTP -> an open record then data records flow; anything else -> IGNORED and
 * nothing of it ever reaches userspace.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "redtap_abi.h"
#include "maps.bpf.h"
#include "sock.bpf.h"
#include "http_sniff.bpf.h"
#include "body_skip.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Tunables, set by the loader in rodata before load. */
const volatile __u32 cfg_self_tgid = 0;            /* the agent: never traced */
const volatile __u32 cfg_capture_cap = 4096;       /* payload bytes per syscall, <= REDTAP_MAX_CAPTURE */
const volatile __u64 cfg_wakeup_bytes = 1 << 20;   /* ring fill that forces a reader wakeup */
const volatile __u8 cfg_comm_include = 0;          /* comm_filter_map holds an include list */
const volatile __u8 cfg_comm_exclude = 0;          /* comm_filter_map holds excludes (value 2) */
const volatile __u8 cfg_port_include = 0;          /* port_filter_map holds includes (value 1) */
const volatile __u8 cfg_port_exclude = 0;          /* port_filter_map holds excludes (value 2) */
const volatile __u8 cfg_tls = 0;                   /* TLS uprobes are in use */
const volatile __u8 cfg_endpoint_caps = 0;         /* endpoint_cap_map has entries */
const volatile __u8 cfg_skip_bodies = 0;           /* whole Content-Length messages: head only */

#define REDTAP_MAX_IOV 16
#define REDTAP_EINPROGRESS 115
#define REDTAP_MSG_PEEK 2

struct redtap_iovec {
	void *base;
	__u64 len;
};

struct redtap_msghdr {
	void *name;
	int namelen;
	struct redtap_iovec *iov;
	__u64 iovlen;
};

/* Where the payload of one syscall lives: one flat buffer, or an iovec array. */
struct io_src {
	const void *buf;
	const struct redtap_iovec *iov;
	__u32 iovcnt;
};

/* A BTF pointer: PT_REGS_PARMn_SYSCALL(regs) are plain loads (the _CORE_ variants would be
 * one bpf_probe_read_kernel call per argument). */
static __always_inline struct pt_regs *regs__current(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* Ring buffer flags: batch wakeups. Per-record wakeups cost the traced syscall 3-8 us
 * (PERF-FLOOR.md 5.2); the reader drains on its own timer and is woken only when the ring
 * passes cfg_wakeup_bytes. */
static __always_inline __u64 rb__flags(void)
{
	return bpf_ringbuf_query(&events_rb, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

static __always_inline int conn__passes_filters(const struct redtap_conn_open_event *ev)
{
	if (cfg_comm_include || cfg_comm_exclude) {
		__u8 *v = bpf_map_lookup_elem(&comm_filter_map, ev->comm);
		if (cfg_comm_exclude && v && *v == 2)
			return 0;
		if (cfg_comm_include && !(v && *v == 1))
			return 0;
	}
	if (cfg_port_include || cfg_port_exclude) {
		__u16 lp = ev->lport, rp = ev->rport;
		__u8 *l = bpf_map_lookup_elem(&port_filter_map, &lp);
		__u8 *r = bpf_map_lookup_elem(&port_filter_map, &rp);
		if (cfg_port_exclude && ((l && *l == 2) || (r && *r == 2)))
			return 0;
		if (cfg_port_include && !((l && *l == 1) || (r && *r == 1)))
			return 0;
	}
	return 1;
}

/* Creates the conn_map entry of a new or discovered connection. */
static __always_inline int conn__track(struct redtap_conn_key *key, struct sock *sk, __u8 role,
				       __u8 source, __u8 tls)
{
	struct redtap_conn_info info = {
		.gen = bpf_ktime_get_ns(),
		.sk = (__u64)sk,
		.state = REDTAP_STATE_UNKNOWN,
		.role = role,
		.source = source,
		.tls = tls,
	};
	if (bpf_map_update_elem(&conn_map, key, &info, BPF_ANY)) {
		stats__drop(REDTAP_DROP_CONN_TABLE_FULL);
		return -1;
	}
	return 0;
}

/* The connection's first bytes were HTTP: apply the filters, then send its open record.
 * Returns 0 when data may flow. */
static __always_inline int conn__open(struct redtap_conn_key *key, struct redtap_conn_info *info)
{
	struct redtap_conn_open_event ev = {};
	ev.hdr.type = REDTAP_EV_CONN_OPEN;
	ev.hdr.version = REDTAP_ABI_VERSION;
	ev.hdr.size = sizeof(ev);
	ev.hdr.ts_ns = bpf_ktime_get_ns();
	ev.id.tgid = key->tgid;
	ev.id.fd = key->fd;
	ev.id.gen = info->gen;
	ev.tid = (__u32)bpf_get_current_pid_tgid();
	ev.role = info->role;
	ev.source = info->source;
	ev.tls = info->tls;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	sock__endpoints((struct sock *)info->sk, &ev);
	if (!conn__passes_filters(&ev)) {
		info->state = REDTAP_STATE_IGNORED;
		return -1;
	}
	info->state = REDTAP_STATE_HTTP;
	ev.seq = __sync_fetch_and_add(&info->seq, 1);
	if (bpf_ringbuf_output(&events_rb, &ev, sizeof(ev), rb__flags()))
		stats__drop(REDTAP_DROP_RINGBUF_FULL);
	return 0;
}

/* Reads up to REDTAP_SNIFF_LEN first bytes of the payload for protocol inference. */
static __always_inline __u32 io__peek(const struct io_src *src, long ret, __u8 *head)
{
	const void *p = src->buf;
	__u64 n = ret;
	if (src->iov) {
		struct redtap_iovec v = {};
		if (src->iovcnt == 0 || bpf_probe_read_user(&v, sizeof(v), &src->iov[0]))
			return 0;
		p = v.base;
		if (n > v.len)
			n = v.len;
	}
	if (n > REDTAP_SNIFF_LEN)
		n = REDTAP_SNIFF_LEN;
	if (!p || n == 0 || bpf_probe_read_user(head, n, p))
		return 0;
	return n;
}

/* Copies up to `want` payload bytes into the scratch record; returns bytes copied. */
static __always_inline __u32 io__copy(const struct io_src *src, __u32 want,
				      struct redtap_data_scratch *s)
{
	if (want > REDTAP_MAX_CAPTURE)
		want = REDTAP_MAX_CAPTURE;
	if (!src->iov) {
		__u32 n = want;
		barrier_var(n);
		if (n > REDTAP_MAX_CAPTURE)
			return 0;
		if (bpf_probe_read_user(s->buf, n, src->buf)) {
			stats__drop(REDTAP_DROP_READ_FAULT);
			return 0;
		}
		return n;
	}
	__u32 copied = 0;
	__u32 i;
	for (i = 0; i < REDTAP_MAX_IOV; i++) {
		if (i >= src->iovcnt || copied >= want)
			break;
		struct redtap_iovec v = {};
		if (bpf_probe_read_user(&v, sizeof(v), &src->iov[i])) {
			stats__drop(REDTAP_DROP_READ_FAULT);
			break;
		}
		__u64 n = v.len;
		if (n > want - copied)
			n = want - copied;
		/* Verifier: offset masked below REDTAP_MAX_CAPTURE and size clamped to it keep the
		 * write inside buf[2 * REDTAP_MAX_CAPTURE]. */
		__u32 off = copied & (REDTAP_MAX_CAPTURE - 1);
		barrier_var(n);
		if (n > REDTAP_MAX_CAPTURE)
			break;
		if (n && bpf_probe_read_user(&s->buf[off], n, v.base)) {
			stats__drop(REDTAP_DROP_READ_FAULT);
			break;
		}
		copied += n;
	}
	if (i == REDTAP_MAX_IOV && i < src->iovcnt && copied < want)
		stats__drop(REDTAP_DROP_IOV_LIMIT);
	return copied;
}

static __always_inline void data__emit(struct redtap_conn_key *key, struct redtap_conn_info *info,
				       const struct io_src *src, long ret, __u8 dir, __u8 sys,
				       __u32 cap)
{
	__u32 zero = 0;
	struct redtap_data_scratch *s = bpf_map_lookup_elem(&data_heap, &zero);
	if (!s)
		return;
	struct redtap_data_event *ev = &s->ev;
	ev->hdr.type = REDTAP_EV_DATA;
	ev->hdr.version = REDTAP_ABI_VERSION;
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->id.tgid = key->tgid;
	ev->id.fd = key->fd;
	ev->id.gen = info->gen;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->len = ret;
	ev->dir = dir;
	ev->syscall = sys;
	ev->flags = 0;
	if (cap > REDTAP_MAX_CAPTURE)
		cap = REDTAP_MAX_CAPTURE;
	__u32 want = ret < cap ? ret : cap;
	__u32 copied = (src->buf || src->iov) ? io__copy(src, want, s) : 0;
	if ((__u64)ret > copied && (src->buf || src->iov))
		stats__drop(REDTAP_DROP_TRUNCATED);
	if (cfg_skip_bodies && !info->cap_shift) {
		__u32 keep = body__skip(copied, ret);
		if (keep < copied)
			copied = keep;
	}
	barrier_var(copied);
	if (copied > REDTAP_MAX_CAPTURE)
		copied = REDTAP_MAX_CAPTURE;
	ev->cap_len = copied;
	ev->hdr.size = sizeof(*ev) + copied;
	ev->seq = __sync_fetch_and_add(&info->seq, 1);
	/* The fill check reads the positions the reader writes (another CPU's cache line): once
	 * every 32 records per CPU is enough to wake it early under a burst. */
	__u64 flags = (++s->records & 31) ? BPF_RB_NO_WAKEUP : rb__flags();
	if (bpf_ringbuf_output(&events_rb, ev, sizeof(*ev) + copied, flags))
		stats__drop(REDTAP_DROP_RINGBUF_FULL);
}

/* Per-endpoint capture: at each request start (request direction, bytes that sniff as a
 * request line), look its first bytes up in endpoint_cap_map; the connection keeps the
 * matching cap (or the default) until the next request start, so the response is covered.
 * Returns the payload cap for this record. A global (separately verified) function: its
 * result is an unknown scalar to the caller, so the iovec copy loop is verified once
 * instead of once per path through this lookup. */
#define REDTAP_EP_EGRESS 1 /* flags of endpoint__cap */
#define REDTAP_EP_IOV 2   /* `ptr` is an iovec array (with at least one entry) */
__noinline int endpoint__cap(struct redtap_conn_info *info, __u64 ptr, __u64 ret, __u32 flags)
{
	if (!info)
		return cfg_capture_cap;
	int request_dir = (info->role == REDTAP_ROLE_CLIENT) == !!(flags & REDTAP_EP_EGRESS);
	if (request_dir && ptr) {
		struct redtap_endpoint_key k = {};
		const void *p = (const void *)ptr;
		__u64 n = ret;
		if (flags & REDTAP_EP_IOV) {
			struct redtap_iovec v = {};
			if (bpf_probe_read_user(&v, sizeof(v), (const void *)ptr))
				goto out;
			p = v.base;
			if (n > v.len)
				n = v.len;
		}
		if (n > REDTAP_ENDPOINT_PREFIX_LEN)
			n = REDTAP_ENDPOINT_PREFIX_LEN;
		__u32 len = n;
		barrier_var(len);
		if (!p || len < 4 || len > REDTAP_ENDPOINT_PREFIX_LEN ||
		    bpf_probe_read_user(k.data, len, p))
			goto out;
		/* Body bytes leave the current request's cap alone. */
		if (sniff__http(k.data, len < REDTAP_SNIFF_LEN ? len : REDTAP_SNIFF_LEN) ==
		    REDTAP_SNIFF_REQUEST) {
			k.prefixlen = len * 8;
			__u8 *shift = bpf_map_lookup_elem(&endpoint_cap_map, &k);
			info->cap_shift = shift ? *shift : 0;
		}
	}
out:;
	__u32 sh = info->cap_shift;
	if (sh >= 6 && sh <= 13)
		return 1u << sh;
	return cfg_capture_cap;
}

/* The first request bytes of an accepted or connected socket were not HTTP (a scanner, a
 * broken client, a smuggled body): keep their length and time until the first answer. */
static __always_inline void unparsed__start(struct redtap_conn_info *info, long ret)
{
	info->state = REDTAP_STATE_UNPARSED;
	info->unparsed_ts = bpf_ktime_get_ns();
	info->unparsed_len = ret > 0xffffffffL ? 0xffffffff : ret;
}

/* One record standing for the unparsed request bytes: their length and first time only. */
static __always_inline void unparsed__emit(struct redtap_conn_key *key,
					   struct redtap_conn_info *info, __u8 flags)
{
	struct redtap_data_event ev = {};
	ev.hdr.type = REDTAP_EV_DATA;
	ev.hdr.version = REDTAP_ABI_VERSION;
	ev.hdr.size = sizeof(ev);
	ev.hdr.ts_ns = info->unparsed_ts;
	ev.id.tgid = key->tgid;
	ev.id.fd = key->fd;
	ev.id.gen = info->gen;
	ev.tid = (__u32)bpf_get_current_pid_tgid();
	ev.len = info->unparsed_len;
	ev.dir = info->role == REDTAP_ROLE_CLIENT ? REDTAP_DIR_EGRESS : REDTAP_DIR_INGRESS;
	ev.flags = REDTAP_DATA_F_UNPARSED | flags;
	ev.seq = __sync_fetch_and_add(&info->seq, 1);
	if (bpf_ringbuf_output(&events_rb, &ev, sizeof(ev), rb__flags()))
		stats__drop(REDTAP_DROP_RINGBUF_FULL);
}

/* Data on a REDTAP_STATE_UNPARSED connection. More request bytes are counted; the first
 * answer decides: an HTTP status line opens the connection (returns 0: emit its data), and
 * anything else makes it IGNORED. Returns 1 when nothing is to be emitted. */
static __always_inline int unparsed__on_data(struct redtap_conn_key *key,
					     struct redtap_conn_info *info,
					     const struct io_src *src, long ret, __u8 dir)
{
	if ((info->role == REDTAP_ROLE_CLIENT) == (dir == REDTAP_DIR_EGRESS)) {
		__u64 n = (__u64)info->unparsed_len + ret;
		info->unparsed_len = n > 0xffffffffULL ? 0xffffffff : n;
		return 1;
	}
	__u8 head[REDTAP_SNIFF_LEN] = {};
	__u32 n = (src->buf || src->iov) ? io__peek(src, ret, head) : 0;
	if (sniff__http(head, n) != REDTAP_SNIFF_RESPONSE) {
		info->state = REDTAP_STATE_IGNORED;
		return 1;
	}
	if (conn__open(key, info))
		return 1;
	unparsed__emit(key, info, 0);
	return 0;
}

/* A TLS connection discovered by its first answer (SSL_write): if this thread read TLS
 * records from that socket with no SSL call seen, they were the request of an SSL_read that
 * was in progress when the uprobes were attached. Report the answer against them. */
static __always_inline void tls__missed_request(struct redtap_conn_key *key,
						struct redtap_conn_info *info, __u64 pid_tgid)
{
	struct redtap_tls_missed_read *m = bpf_map_lookup_elem(&tls_missed_read_map, &pid_tgid);
	if (!m)
		return;
	if (m->fd == (__s32)key->fd) {
		info->unparsed_ts = m->ts;
		info->unparsed_len = m->len;
		unparsed__emit(key, info, REDTAP_DATA_F_MISSED);
		stats__drop(REDTAP_DROP_TLS_MISSED_READ);
	}
	bpf_map_delete_elem(&tls_missed_read_map, &pid_tgid);
}

/* `ret` bytes moved on `fd`: by a data syscall (tls = 0: the bytes on the socket), or by
 * SSL_read/SSL_write (tls = 1: the plaintext of a TLS socket). */
static __always_inline void io__handle(__u32 fd, const struct io_src *src, long ret, __u8 dir,
				       __u8 sys, __u8 tls)
{
	if (ret <= 0)
		return;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct redtap_conn_key key = { .tgid = pid_tgid >> 32, .fd = fd };
	if (key.tgid == cfg_self_tgid)
		return;
	struct redtap_conn_info *info = bpf_map_lookup_elem(&conn_map, &key);
	if (!tls) {
		/* The plaintext HTTP fast path needs nothing more. Otherwise these bytes may be the
		 * ciphertext of an SSL call in progress on this thread: remember its fd, never parse. */
		if (cfg_tls && !(info && info->state == REDTAP_STATE_HTTP && !info->tls)) {
			struct redtap_ssl_args *a = bpf_map_lookup_elem(&ssl_args_map, &pid_tgid);
			if (a) {
				a->fd = fd;
				return;
			}
		}
		if (info && (info->tls || info->tls_seen)) {
			/* Ciphertext: never parsed. Remember the thread's TLS socket (memory-BIO libraries). */
			if (cfg_tls && dir == REDTAP_DIR_INGRESS) {
				__s32 v = fd;
				bpf_map_update_elem(&thread_tls_fd_map, &pid_tgid, &v, BPF_ANY);
			}
			return;
		}
	} else if (info && !info->tls) {
		/* First plaintext of a socket whose ciphertext was seen (and ignored) already. */
		info->tls = 1;
		if (info->state == REDTAP_STATE_IGNORED)
			info->state = REDTAP_STATE_UNKNOWN;
	}
	if (info && info->state == REDTAP_STATE_IGNORED)
		return;
	if (info && info->state == REDTAP_STATE_UNPARSED) {
		if (unparsed__on_data(&key, info, src, ret, dir))
			return;
	} else if (!info || info->state == REDTAP_STATE_UNKNOWN ||
		   info->state == REDTAP_STATE_REARMED) {
		/* sendfile carries no bytes we can sniff: it never starts a connection. */
		if (!src->buf && !src->iov)
			return;
		__u8 head[REDTAP_SNIFF_LEN] = {};
		__u32 n = io__peek(src, ret, head);
		int kind = sniff__http(head, n);
		if (!info) {
			if (kind == REDTAP_SNIFF_NONE) {
				/* A TLS record read outside any probed SSL call (the ssl_args_map check
				 * above found none): maybe inside an SSL_read already in progress. */
				if (cfg_tls && !tls && dir == REDTAP_DIR_INGRESS && n >= 3 &&
				    head[0] >= 0x14 && head[0] <= 0x18 && head[1] == 0x03) {
					struct redtap_tls_missed_read m = {
						.ts = bpf_ktime_get_ns(),
						.len = ret > 0xffffffffL ? 0xffffffff : ret,
						.fd = fd,
					};
					bpf_map_update_elem(&tls_missed_read_map, &pid_tgid, &m,
							    BPF_ANY);
				}
				return;
			}
			struct sock *sk = sock__from_fd(fd);
			if (!sk)
				return;
			/* Reading a request or writing a response: the server side. */
			__u8 role = ((kind == REDTAP_SNIFF_REQUEST) == (dir == REDTAP_DIR_INGRESS))
					    ? REDTAP_ROLE_SERVER
					    : REDTAP_ROLE_CLIENT;
			if (conn__track(&key, sk, role, REDTAP_SRC_DISCOVERED, tls))
				return;
			info = bpf_map_lookup_elem(&conn_map, &key);
			if (!info)
				return;
		} else if (kind == REDTAP_SNIFF_NONE) {
			/* A fresh connection's first bytes decide; a re-armed one waits for a message start. */
			if (info->state == REDTAP_STATE_UNKNOWN) {
				info->state = REDTAP_STATE_IGNORED;
				/* TLS record header: handshake (0x16), version 3.x. */
				if (!tls && n >= 3 && head[0] == 0x16 && head[1] == 0x03) {
					info->tls_seen = 1;
					if (cfg_tls && dir == REDTAP_DIR_INGRESS) {
						__s32 v = fd;
						bpf_map_update_elem(&thread_tls_fd_map, &pid_tgid, &v,
								    BPF_ANY);
					}
				} else if (info->source != REDTAP_SRC_DISCOVERED &&
					   (info->role == REDTAP_ROLE_CLIENT) ==
						   (dir == REDTAP_DIR_EGRESS)) {
					/* Request bytes that are not HTTP: the answer decides. */
					unparsed__start(info, ret);
				}
			}
			return;
		}
		if (conn__open(&key, info))
			return;
		if (tls && !src->iov && dir == REDTAP_DIR_EGRESS && kind == REDTAP_SNIFF_RESPONSE &&
		    info->source == REDTAP_SRC_DISCOVERED)
			tls__missed_request(&key, info, pid_tgid);
	}
	__u32 cap = cfg_capture_cap;
	if (cfg_endpoint_caps)
		cap = endpoint__cap(info,
				    src->iov ? (src->iovcnt ? (__u64)src->iov : 0) : (__u64)src->buf,
				    ret,
				    (dir == REDTAP_DIR_EGRESS ? REDTAP_EP_EGRESS : 0) |
					    (src->iov ? REDTAP_EP_IOV : 0));
	data__emit(&key, info, src, ret, dir, sys, cap);
}

/* ---- data syscalls: sys_exit only ---- */

static __always_inline int exit__flat(struct trace_event_raw_sys_exit *ctx, __u8 dir, __u8 sys)
{
	struct pt_regs *regs = regs__current();
	struct io_src src = {};
	__u32 fd = PT_REGS_PARM1_SYSCALL(regs);
	src.buf = (const void *)PT_REGS_PARM2_SYSCALL(regs);
	io__handle(fd, &src, ctx->ret, dir, sys, 0);
	return 0;
}

static __always_inline int exit__vec(struct trace_event_raw_sys_exit *ctx, __u8 dir, __u8 sys)
{
	struct pt_regs *regs = regs__current();
	struct io_src src = {};
	__u32 fd = PT_REGS_PARM1_SYSCALL(regs);
	src.iov = (const struct redtap_iovec *)PT_REGS_PARM2_SYSCALL(regs);
	src.iovcnt = PT_REGS_PARM3_SYSCALL(regs);
	io__handle(fd, &src, ctx->ret, dir, sys, 0);
	return 0;
}

static __always_inline int exit__msg(struct trace_event_raw_sys_exit *ctx, __u8 dir, __u8 sys)
{
	struct pt_regs *regs = regs__current();
	struct io_src src = {};
	__u32 fd = PT_REGS_PARM1_SYSCALL(regs);
	const struct redtap_msghdr *msg = (const void *)PT_REGS_PARM2_SYSCALL(regs);
	__u32 flags = PT_REGS_PARM3_SYSCALL(regs);
	if (dir == REDTAP_DIR_INGRESS && (flags & REDTAP_MSG_PEEK))
		return 0; /* peeked bytes are read again later */
	struct redtap_msghdr m = {};
	if (ctx->ret <= 0 || bpf_probe_read_user(&m, sizeof(m), msg))
		return 0;
	src.iov = m.iov;
	src.iovcnt = m.iovlen > REDTAP_MAX_IOV ? REDTAP_MAX_IOV + 1 : m.iovlen;
	io__handle(fd, &src, ctx->ret, dir, sys, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int read_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit__flat(ctx, REDTAP_DIR_INGRESS, REDTAP_SYS_READ);
}

SEC("tracepoint/syscalls/sys_exit_write")
int write_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit__flat(ctx, REDTAP_DIR_EGRESS, REDTAP_SYS_WRITE);
}

SEC("tracepoint/syscalls/sys_exit_readv")
int readv_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit__vec(ctx, REDTAP_DIR_INGRESS, REDTAP_SYS_READV);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int writev_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit__vec(ctx, REDTAP_DIR_EGRESS, REDTAP_SYS_WRITEV);
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int recvfrom_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs = regs__current();
	__u32 flags = PT_REGS_PARM4_SYSCALL(regs);
	if (flags & REDTAP_MSG_PEEK)
		return 0;
	return exit__flat(ctx, REDTAP_DIR_INGRESS, REDTAP_SYS_RECVFROM);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int sendto_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit__flat(ctx, REDTAP_DIR_EGRESS, REDTAP_SYS_SENDTO);
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int recvmsg_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit__msg(ctx, REDTAP_DIR_INGRESS, REDTAP_SYS_RECVMSG);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int sendmsg_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit__msg(ctx, REDTAP_DIR_EGRESS, REDTAP_SYS_SENDMSG);
}

/* sendfile: the bytes are counted, never captured, so body framing stays right. */
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sendfile_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs = regs__current();
	struct io_src src = {};
	__u32 fd = PT_REGS_PARM1_SYSCALL(regs);
	io__handle(fd, &src, ctx->ret, REDTAP_DIR_EGRESS, REDTAP_SYS_SENDFILE, 0);
	return 0;
}

/* ---- connection lifecycle ---- */

static __always_inline int accept__exit(struct trace_event_raw_sys_exit *ctx)
{
	long fd = ctx->ret;
	if (fd < 0)
		return 0;
	struct redtap_conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	if (key.tgid == cfg_self_tgid)
		return 0;
	struct sock *sk = sock__from_fd(fd);
	if (sk)
		conn__track(&key, sk, REDTAP_ROLE_SERVER, REDTAP_SRC_ACCEPT, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept__exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept__exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	if (ret != 0 && ret != -REDTAP_EINPROGRESS)
		return 0;
	struct pt_regs *regs = regs__current();
	__u32 fd = PT_REGS_PARM1_SYSCALL(regs);
	struct redtap_conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	if (key.tgid == cfg_self_tgid)
		return 0;
	struct sock *sk = sock__from_fd(fd);
	if (sk)
		conn__track(&key, sk, REDTAP_ROLE_CLIENT, REDTAP_SRC_CONNECT, 0);
	return 0;
}

/* close is handled at enter: once the fd is released another thread may reuse its number. */
SEC("tracepoint/syscalls/sys_enter_close")
int close_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct redtap_conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32,
				       .fd = (__u32)ctx->args[0] };
	struct redtap_conn_info *info = bpf_map_lookup_elem(&conn_map, &key);
	if (!info)
		return 0;
	if (info->state == REDTAP_STATE_HTTP) {
		struct redtap_conn_close_event ev = {};
		ev.hdr.type = REDTAP_EV_CONN_CLOSE;
		ev.hdr.version = REDTAP_ABI_VERSION;
		ev.hdr.size = sizeof(ev);
		ev.hdr.ts_ns = bpf_ktime_get_ns();
		ev.id.tgid = key.tgid;
		ev.id.fd = key.fd;
		ev.id.gen = info->gen;
		ev.tid = (__u32)bpf_get_current_pid_tgid();
		ev.seq = __sync_fetch_and_add(&info->seq, 1);
		if (bpf_ringbuf_output(&events_rb, &ev, sizeof(ev), rb__flags()))
			stats__drop(REDTAP_DROP_RINGBUF_FULL);
	}
	bpf_map_delete_elem(&conn_map, &key);
	return 0;
}

/* ---- TLS: OpenSSL uprobes (attached per library file by userspace) ---- */

static __always_inline int ssl__enter(void *ssl, void *buf, void *readbytes)
{
	if (!cfg_tls)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((pid_tgid >> 32) == cfg_self_tgid)
		return 0;
	struct redtap_ssl_args a = {
		.ssl = (__u64)ssl,
		.buf = (__u64)buf,
		.readbytes = (__u64)readbytes,
		.fd = -1,
	};
	bpf_map_update_elem(&ssl_args_map, &pid_tgid, &a, BPF_ANY);
	return 0;
}

/* The socket of an SSL object for this call: the fd a syscall inside the call used, else the
 * pairing learned earlier, else (memory-BIO libraries such as node's) the TLS socket this
 * thread last read ciphertext from, learned on reads only (the event loop reads a
 * connection's ciphertext right before SSL_read on it). Returns -1 when unknown. */
static __always_inline __s32 ssl__fd(struct redtap_ssl_args *a, __u64 pid_tgid, __u8 dir)
{
	struct redtap_ssl_key k = { .ssl = a->ssl, .tgid = pid_tgid >> 32 };
	if (a->fd >= 0) {
		bpf_map_update_elem(&ssl_fd_map, &k, &a->fd, BPF_ANY);
		return a->fd;
	}
	__s32 *fd = bpf_map_lookup_elem(&ssl_fd_map, &k);
	if (fd)
		return *fd;
	fd = bpf_map_lookup_elem(&thread_tls_fd_map, &pid_tgid);
	if (!fd)
		return -1;
	__s32 v = *fd;
	if (dir == REDTAP_DIR_INGRESS)
		bpf_map_update_elem(&ssl_fd_map, &k, &v, BPF_ANY);
	return v;
}

static __always_inline int ssl__exit(long ret, __u8 dir, __u8 sys)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct redtap_ssl_args *ap = bpf_map_lookup_elem(&ssl_args_map, &pid_tgid);
	if (!ap)
		return 0;
	struct redtap_ssl_args a = *ap;
	bpf_map_delete_elem(&ssl_args_map, &pid_tgid);
	if (a.readbytes) {
		/* SSL_read_ex / SSL_write_ex: 1 on success, the byte count behind the pointer. */
		__u64 n = 0;
		if (ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)a.readbytes))
			return 0;
		ret = n;
	}
	if (ret <= 0)
		return 0;
	/* Only calls that moved plaintext teach a pairing: a read that made no progress may follow
	 * another connection's ciphertext. */
	__s32 fd = ssl__fd(&a, pid_tgid, dir);
	if (fd < 0) {
		stats__drop(REDTAP_DROP_TLS_NO_FD);
		return 0;
	}
	struct io_src src = { .buf = (const void *)a.buf };
	io__handle(fd, &src, ret, dir, sys, 1);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter, void *ssl, void *buf)
{
	return ssl__enter(ssl, buf, NULL);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_exit, long ret)
{
	return ssl__exit((int)ret, REDTAP_DIR_INGRESS, REDTAP_SYS_SSL_READ);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter, void *ssl, void *buf)
{
	return ssl__enter(ssl, buf, NULL);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_exit, long ret)
{
	return ssl__exit((int)ret, REDTAP_DIR_EGRESS, REDTAP_SYS_SSL_WRITE);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter, void *ssl, void *buf, __u64 num, void *readbytes)
{
	return ssl__enter(ssl, buf, readbytes);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_ex_exit, long ret)
{
	return ssl__exit((int)ret, REDTAP_DIR_INGRESS, REDTAP_SYS_SSL_READ);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter, void *ssl, void *buf, __u64 num, void *written)
{
	return ssl__enter(ssl, buf, written);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_ex_exit, long ret)
{
	return ssl__exit((int)ret, REDTAP_DIR_EGRESS, REDTAP_SYS_SSL_WRITE);
}

/* SSL_set_fd(ssl, fd): the direct answer to "which socket is this SSL on". */
SEC("uprobe")
int BPF_KPROBE(ssl_set_fd_enter, void *ssl, int fd)
{
	if (!cfg_tls || fd < 0)
		return 0;
	struct redtap_ssl_key k = { .ssl = (__u64)ssl,
				    .tgid = bpf_get_current_pid_tgid() >> 32 };
	__s32 v = fd;
	bpf_map_update_elem(&ssl_fd_map, &k, &v, BPF_ANY);
	return 0;
}

/* SSL_free(ssl): forget its socket; the allocator hands the same address to the next SSL. */
SEC("uprobe")
int BPF_KPROBE(ssl_free_enter, void *ssl)
{
	if (!cfg_tls)
		return 0;
	struct redtap_ssl_key k = { .ssl = (__u64)ssl,
				    .tgid = bpf_get_current_pid_tgid() >> 32 };
	bpf_map_delete_elem(&ssl_fd_map, &k);
	return 0;
}

/* New programs may map a libssl the agent has not attached yet (containers, other builds). */
SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	if (!cfg_tls)
		return 0;
	struct redtap_exec_event ev = {};
	ev.hdr.type = REDTAP_EV_EXEC;
	ev.hdr.version = REDTAP_ABI_VERSION;
	ev.hdr.size = sizeof(ev);
	ev.hdr.ts_ns = bpf_ktime_get_ns();
	ev.pid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_ringbuf_output(&events_rb, &ev, sizeof(ev), rb__flags()))
		stats__drop(REDTAP_DROP_RINGBUF_FULL);
	return 0;
}

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
const volatile __u32 cfg_self_tgid = 0;          /* the agent: never traced */
const volatile __u32 cfg_capture_cap = 4096;     /* payload bytes per syscall, <= REDTAP_MAX_CAPTURE */
const volatile __u64 cfg_wakeup_bytes = 1 << 20; /* ring fill that forces a reader wakeup */
const volatile __u8 cfg_comm_include = 0;        /* comm_filter_map holds an include list */
const volatile __u8 cfg_comm_exclude = 0;        /* comm_filter_map holds excludes (value 2) */
const volatile __u8 cfg_port_include = 0;        /* port_filter_map holds includes (value 1) */
const volatile __u8 cfg_port_exclude = 0;        /* port_filter_map holds excludes (value 2) */
const volatile __u8 cfg_tls = 0;                 /* TLS uprobes are in use */
const volatile __u8 cfg_endpoint_caps = 0;       /* endpoint_cap_map has entries */
const volatile __u8 cfg_skip_bodies = 0;         /* whole Content-Length messages: head only */
const volatile __u8 cfg_db = 0;                  /* database protocols are recognised */
const volatile __u8 cfg_db_hints = 0;            /* db_port_map has entries */

#include "io.bpf.h"
#include "emit.bpf.h"
#include "unparsed.bpf.h"
#include "db_sniff.bpf.h"
#include "db_hint.bpf.h"

/* `ret` bytes moved on `fd`: by a data syscall (tls = 0: the bytes on the socket), or by
 * SSL_read/SSL_write (tls = 1: the plaintext of a TLS socket). */
static __always_inline void io__handle(__u32 fd, const struct io_src *src, long ret, __u8 dir,
                                       __u8 sys, __u8 tls)
{
	if (ret <= 0)
		return;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct redtap_conn_key key = {.tgid = pid_tgid >> 32, .fd = fd};
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
	/* The connection opens here (one conn__open for both ways in: it is large, inlined). */
	bool opening = false, was_unparsed = false, missed_tls = false;
	if (info && info->state == REDTAP_STATE_UNPARSED) {
		if (unparsed__on_data(info, src, ret, dir))
			return;
		opening = was_unparsed = true;
	} else if (!info || info->state == REDTAP_STATE_UNKNOWN ||
	           info->state == REDTAP_STATE_REARMED) {
		/* sendfile carries no bytes we can sniff: it never starts a connection. */
		if (!src->buf && !src->iov)
			return;
		__u8 head[REDTAP_SNIFF_LEN] = {};
		__u32 n = io__peek(src, ret, head);
		int kind = sniff__http(head, n);
		if (!info && kind == REDTAP_SNIFF_NONE && cfg_db) {
			/* Not HTTP: a database connection found on its first bytes seen (it predates
			 * the agent, or was inherited)? Strong patterns say which side wrote them; weak
			 * ones need a hinted port, whose side gives the role. */
			__u64 w0, w1;
			db__words(head, &w0, &w1);
			__u32 r = db__sniff(w0, w1, n);
			if (r & REDTAP_DB_STRONG) {
				if ((r & 0xff) == REDTAP_PROTO_REDIS || (r & REDTAP_DB_SSLREQ))
					r = 0; /* a reply looks the same; an SSLRequest opens nothing */
			} else if (!cfg_db_hints) {
				r = 0;
			}
			if (r) {
				struct sock *sk = sock__from_fd(fd);
				if (!sk)
					return;
				__u32 proto = 0;
				__u8 role = REDTAP_ROLE_SERVER;
				if (r & REDTAP_DB_STRONG) {
					proto = r & 0xff;
					/* Client bytes written, or server bytes read: the client. */
					int frontend = ((r >> 8) & 0xf) == REDTAP_DB_SIDE_FRONTEND;
					if (frontend == (dir == REDTAP_DIR_EGRESS))
						role = REDTAP_ROLE_CLIENT;
				} else {
					__u32 hint = db__port_hint((__u64)sk, REDTAP_ROLE_UNKNOWN);
					proto = db__decide(r, hint, 0, 0);
					if (((hint >> 8) & 0xff) == REDTAP_DB_HINT_REMOTE)
						role = REDTAP_ROLE_CLIENT;
				}
				if (!proto)
					return;
				if (conn__track(&key, sk, role, REDTAP_SRC_DISCOVERED, tls))
					return;
				info = bpf_map_lookup_elem(&conn_map, &key);
				if (!info)
					return;
				info->proto = proto;
				opening = true;
				goto open;
			}
		}
		if (info && cfg_db && (info->state == REDTAP_STATE_UNKNOWN || (info->state == REDTAP_STATE_REARMED && info->proto != REDTAP_PROTO_HTTP))) {
			/* A fresh connection (accepted or connected: its role is known), or a database
			 * connection whose tracker was dropped. */
			int request_dir = (info->role == REDTAP_ROLE_CLIENT) == (dir == REDTAP_DIR_EGRESS);
			if (info->pg_ssl_req && !request_dir && n == 1 &&
			    (head[0] == 'S' || head[0] == 'N'))
				return; /* the SSLRequest's answer: TLS follows ('S') or the startup */
			__u32 hint = cfg_db_hints ? db__port_hint(info->sk, info->role) : 0;
			if (kind == REDTAP_SNIFF_NONE || hint || info->proto != REDTAP_PROTO_HTTP) {
				__u64 w0, w1;
				db__words(head, &w0, &w1);
				__u32 r = db__sniff(w0, w1, n);
				__u32 proto;
				if (info->state == REDTAP_STATE_UNKNOWN) {
					proto = db__decide(r, hint, request_dir, 1);
				} else {
					/* Re-armed: wait for something shaped like one of its messages. */
					proto = info->proto;
					int match = (r & REDTAP_DB_STRONG)
					                    ? (r & 0xff) == proto
					                    : !!((r >> REDTAP_DB_WEAK_SHIFT) & (1u << proto));
					if (!match)
						return;
				}
				if (proto && (r & REDTAP_DB_SSLREQ)) {
					info->pg_ssl_req = 1;
					return;
				}
				if (proto) {
					info->proto = proto;
					opening = true;
					goto open;
				}
			}
		}
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
		opening = true;
		/* A discovered TLS answer may stand for an SSL_read missed at attach. */
		missed_tls = tls && !src->iov && dir == REDTAP_DIR_EGRESS &&
		             kind == REDTAP_SNIFF_RESPONSE && info->source == REDTAP_SRC_DISCOVERED;
	}
open:
	if (opening && info) {
		if (conn__open(&key, info))
			return;
		if (was_unparsed)
			unparsed__emit(&key, info, 0);
		else if (missed_tls)
			tls__missed_request(&key, info, pid_tgid);
	}
	__u32 cap = cfg_capture_cap;
	if (cfg_endpoint_caps && info && info->proto == REDTAP_PROTO_HTTP)
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
	struct redtap_conn_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd};
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
	struct redtap_conn_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd};
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
	struct redtap_conn_key key = {.tgid = bpf_get_current_pid_tgid() >> 32,
	                              .fd = (__u32)ctx->args[0]};
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

#include "ssl_uprobes.bpf.h"
#include "go_tls.bpf.h"

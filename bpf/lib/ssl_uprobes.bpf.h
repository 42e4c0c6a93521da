/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ssl_uprobes.bpf.h: the OpenSSL uprobe programs (SSL_read/SSL_write and their _ex
 * variants, SSL_set_fd, SSL_free) and the exec tracepoint, part of capture.bpf.c (one object:
 * they feed io__handle). Attached per library file by userspace (tls::TlsAttacher). */
#pragma once

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
	struct redtap_ssl_key k = {.ssl = a->ssl, .tgid = pid_tgid >> 32};
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
	struct io_src src = {.buf = (const void *)a.buf};
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

/* Emulated probe sites (userspace/tls/probe_sites.h): no single-step, no uretprobe.
 * ssl_call: on the `call` of SSL_read/SSL_write to their internal function, whose arguments
 * are (ssl, buf, num, &bytes): the bytes slot is the 4th. ssl_*_post: on the conditional
 * jump right after that call returns: eax = the internal status (> 0: success), the byte
 * count in the slot saved by ssl_call. */
SEC("uprobe")
int BPF_KPROBE(ssl_call, void *ssl, void *buf, __u64 num, void *bytes)
{
	return ssl__enter(ssl, buf, bytes);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_post)
{
	int st = (int)PT_REGS_RC(ctx);
	return ssl__exit(st > 0 ? 1 : 0, REDTAP_DIR_INGRESS, REDTAP_SYS_SSL_READ);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_post)
{
	int st = (int)PT_REGS_RC(ctx);
	return ssl__exit(st > 0 ? 1 : 0, REDTAP_DIR_EGRESS, REDTAP_SYS_SSL_WRITE);
}

/* SSL_set_fd(ssl, fd): the direct answer to "which socket is this SSL on". */
SEC("uprobe")
int BPF_KPROBE(ssl_set_fd_enter, void *ssl, int fd)
{
	if (!cfg_tls || fd < 0)
		return 0;
	struct redtap_ssl_key k = {.ssl = (__u64)ssl,
	                           .tgid = bpf_get_current_pid_tgid() >> 32};
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
	struct redtap_ssl_key k = {.ssl = (__u64)ssl,
	                           .tgid = bpf_get_current_pid_tgid() >> 32};
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

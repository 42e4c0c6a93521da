/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* go_tls.bpf.h: Go's crypto/tls, (*Conn).Read and (*Conn).Write, part of capture.bpf.c (they
 * feed io__handle like the OpenSSL probes). Attached per Go binary by userspace
 * (tls/go_tls.h), which verified the register ABI (Go >= 1.17) on the disassembly:
 *   - arguments in rax (the receiver *tls.Conn), rbx (b's data), rcx (len(b)); results in
 *     rax (n) and rbx:rcx (the error interface); the goroutine's g in r14;
 *   - the entry probe sits on the stack check's conditional jump (emulated), before which
 *     nothing touches the argument registers; Read's return probes on each `ret`;
 *   - or, when the function spills rax and rbx to the argument slots above its return
 *     address and never writes them again (verified), no entry probe: at `ret` the receiver
 *     is at 8(%rsp) and the buffer at 16(%rsp) (the *_spilled programs);
 *   - no uretprobe: it rewrites the return address on a stack Go may move.
 * The socket: tls.Conn.conn (a net.Conn interface, first field) must hold a *net.TCPConn,
 * checked against the itab whose address userspace passes as the link's cookie (relative to
 * the probed instruction, so PIE binaries work too); then TCPConn -> conn.fd (*netFD, first
 * field) -> pfd (poll.FD, first field) -> Sysfd, after the 16-byte fdMutex. These layouts
 * have not changed since Go 1.12.
 * Write is reported at its entry (go_tls_write_enter: b and len(b)), Read at the entry of the
 * closure it defers when userspace verified that shape (go_tls_read_deferred), else at its
 * returns. The entry probes find what they need about their binary (struct redtap_go_site) in
 * go_tls_sites by their cookie, and report only when the stack check's jump is not taken (the
 * function then runs again from its start). */
#pragma once

#define REDTAP_GO_SYSFD_OFF 16 /* poll.FD.Sysfd: after fdMutex {state u64; rsema, wsema u32} */

static __always_inline int go__enter(struct pt_regs *ctx)
{
	if (!cfg_tls)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((pid_tgid >> 32) == cfg_self_tgid)
		return 0;
	struct redtap_go_key k = {.g = ctx->r14, .tgid = pid_tgid >> 32};
	struct redtap_go_args a = {.conn = ctx->ax, .buf = ctx->bx};
	bpf_map_update_elem(&go_tls_args_map, &k, &a, BPF_ANY);
	return 0;
}

/* The socket fd of a *tls.Conn over a *net.TCPConn (its itab at `itab`), else -1. */
static __always_inline __s32 go__fd(__u64 conn, __u64 itab)
{
	__u64 iface[2] = {}; /* net.Conn: itab, data */
	if (bpf_probe_read_user(iface, sizeof(iface), (void *)conn))
		return -1;
	if (iface[0] != itab || !iface[1])
		return -1; /* not a *net.TCPConn (a wrapper, a pipe, a Unix socket) */
	__u64 netfd = 0;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)iface[1]) || !netfd ||
	    bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + REDTAP_GO_SYSFD_OFF)))
		return -1;
	return sysfd >= 0 && sysfd < 0x7fffffff ? (__s32)sysfd : -1;
}

/* The return probes' cookie: the itab's address relative to the probed instruction. */
static __always_inline __u64 go__cookie_itab(struct pt_regs *ctx)
{
	return PT_REGS_IP(ctx) + (__s64)bpf_get_attach_cookie(ctx);
}

/* At an entry probe on the stack check's jump: false when the jump will be taken (the stack
 * must grow, or the scheduler asked for a preemption through g.stackguard0). The runtime then
 * runs the function again from its first instruction, and that pass is the one reported. */
static __always_inline bool go__guard_passes(struct pt_regs *ctx, const struct redtap_go_site *s)
{
	__u64 guard = 0;
	if (bpf_probe_read_user(&guard, sizeof(guard), (void *)(ctx->r14 + 0x10)))
		return false;
	/* both loaded, then chosen: a ctx load at a variable offset does not verify */
	__u64 sp = PT_REGS_SP(ctx), r12 = ctx->r12;
	asm volatile(""
	             : "+r"(sp), "+r"(r12));
	__u64 v = s->guard_r12 ? r12 : sp;
	return v > guard; /* cmp 0x10(%r14),v; jbe: taken when v <= guard (unsigned) */
}

/* Reports `n` plaintext bytes of a Read (ingress) or Write (egress) on conn. */
static __always_inline int go__plaintext(__u64 itab, __u64 conn, __u64 buf, long n, __u8 dir,
                                         __u8 sys)
{
	__s32 fd = go__fd(conn, itab);
	if (fd < 0) {
		stats__drop(REDTAP_DROP_TLS_NO_FD);
		return 0;
	}
	struct io_src src = {.buf = (const void *)buf};
	io__handle(fd, &src, n, dir, sys, 1);
	return 0;
}

/* At a `ret`, with the arguments saved by the entry probe. */
static __always_inline int go__ret(struct pt_regs *ctx, __u8 dir, __u8 sys)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct redtap_go_key k = {.g = ctx->r14, .tgid = pid_tgid >> 32};
	struct redtap_go_args *ap = bpf_map_lookup_elem(&go_tls_args_map, &k);
	if (!ap)
		return 0;
	struct redtap_go_args a = *ap;
	bpf_map_delete_elem(&go_tls_args_map, &k);
	long n = (long)ctx->ax;
	if (n <= 0)
		return 0;
	return go__plaintext(go__cookie_itab(ctx), a.conn, a.buf, n, dir, sys);
}

/* At a `ret` of a function that spilled its receiver and buffer above the return address. */
static __always_inline int go__ret_spilled(struct pt_regs *ctx, __u8 dir, __u8 sys)
{
	if (!cfg_tls)
		return 0;
	long n = (long)ctx->ax;
	if (n <= 0)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((pid_tgid >> 32) == cfg_self_tgid)
		return 0;
	__u64 slots[2] = {}; /* receiver, b's data */
	if (bpf_probe_read_user(slots, sizeof(slots), (void *)(PT_REGS_SP(ctx) + 8)))
		return 0;
	return go__plaintext(go__cookie_itab(ctx), slots[0], slots[1], n, dir, sys);
}

SEC("uprobe")
int go_tls_read_enter(struct pt_regs *ctx)
{
	return go__enter(ctx);
}

SEC("uprobe")
int go_tls_read_ret(struct pt_regs *ctx)
{
	return go__ret(ctx, REDTAP_DIR_INGRESS, REDTAP_SYS_SSL_READ);
}

SEC("uprobe")
int go_tls_read_ret_spilled(struct pt_regs *ctx)
{
	return go__ret_spilled(ctx, REDTAP_DIR_INGRESS, REDTAP_SYS_SSL_READ);
}

/* (*Conn).Write(b) at its entry: b is what the application sends. Reported before the
 * ciphertext leaves, because Go reads the answer on another goroutine, which may return it
 * before this Write returns (a response must never come before its request). */
SEC("uprobe")
int go_tls_write_enter(struct pt_regs *ctx)
{
	if (!cfg_tls)
		return 0;
	long n = (long)ctx->cx;
	if (n <= 0 || (bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid)
		return 0;
	__u64 id = bpf_get_attach_cookie(ctx);
	const struct redtap_go_site *s = bpf_map_lookup_elem(&go_tls_sites, &id);
	if (!s || !go__guard_passes(ctx, s))
		return 0;
	return go__plaintext(PT_REGS_IP(ctx) + s->itab_rel, ctx->ax, ctx->bx, n, REDTAP_DIR_EGRESS,
	                     REDTAP_SYS_SSL_WRITE);
}

/* Read's results without a `ret` probe: the entry of the closure Read defers
 * (`defer c.in.Unlock()`, crypto/tls.(*Conn).Read.func1), on its stack check's jump (emulated).
 * Userspace verified in Read that every indirect call is that deferred call followed by the
 * epilogue `mov result_slot(%rsp),%rax; ...; add $frame,%rsp; ret`, that n is stored in that
 * slot before the call and no instruction takes its address, and that Read spills the receiver
 * and the buffer to their argument slots. So here, when the return address lies in Read: n is
 * at 8+result_slot(%rsp), the receiver and b's data at 8+frame+8(%rsp). A call of the closure
 * from elsewhere (runtime.deferreturn, when a panic unwinds) is not reported here; Read's
 * `ret` after it keeps its own probe. */
SEC("uprobe")
int go_tls_read_deferred(struct pt_regs *ctx)
{
	if (!cfg_tls)
		return 0;
	if ((bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid)
		return 0;
	__u64 id = bpf_get_attach_cookie(ctx);
	const struct redtap_go_site *s = bpf_map_lookup_elem(&go_tls_sites, &id);
	if (!s || !go__guard_passes(ctx, s))
		return 0;
	__u64 sp = PT_REGS_SP(ctx), ip = PT_REGS_IP(ctx);
	__u64 ret = 0;
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp))
		return 0;
	if (ret - (ip + s->caller_rel) >= s->caller_size)
		return 0; /* not called from Read's epilogue */
	long n = 0;
	if (bpf_probe_read_user(&n, sizeof(n), (void *)(sp + 8 + s->result_slot)) || n <= 0)
		return 0;
	__u64 slots[2] = {}; /* receiver, b's data */
	if (bpf_probe_read_user(slots, sizeof(slots), (void *)(sp + 8 + s->frame + 8)))
		return 0;
	return go__plaintext(ip + s->itab_rel, slots[0], slots[1], n, REDTAP_DIR_INGRESS,
	                     REDTAP_SYS_SSL_READ);
}

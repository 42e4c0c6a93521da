/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* io.bpf.h: the payload of a data syscall: one flat buffer or an iovec array, read
 * back from the task's saved registers; peeking at its first bytes and copying it. */
#pragma once

#define REDTAP_MAX_IOV     16
#define REDTAP_EINPROGRESS 115
#define REDTAP_MSG_PEEK    2

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

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* sock.bpf.h: from a file descriptor of the current task to its TCP socket, with CO-RE. */
#pragma once

#define REDTAP_AF_INET     2
#define REDTAP_AF_INET6    10
#define REDTAP_S_IFMT      00170000
#define REDTAP_S_IFSOCK    0140000
#define REDTAP_SOCK_STREAM 1
#define REDTAP_IPPROTO_TCP 6

/* Returns the struct sock of `fd` in the current task when it is an IPv4/IPv6 TCP socket,
 * else NULL. Walks task->files->fdt->fd[fd] -> file -> socket -> sk. */
static __always_inline struct sock *sock__from_fd(__u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	struct files_struct *files = BPF_CORE_READ(task, files);
	if (!files)
		return NULL;
	struct fdtable *fdt = BPF_CORE_READ(files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
	if (fd >= max_fds)
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & REDTAP_S_IFMT) != REDTAP_S_IFSOCK)
		return NULL;
	struct socket *socket = BPF_CORE_READ(file, private_data);
	if (!socket)
		return NULL;
	struct sock *sk = BPF_CORE_READ(socket, sk);
	if (!sk)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != REDTAP_AF_INET && family != REDTAP_AF_INET6)
		return NULL;
	if (BPF_CORE_READ(sk, sk_type) != REDTAP_SOCK_STREAM ||
	    BPF_CORE_READ(sk, sk_protocol) != REDTAP_IPPROTO_TCP)
		return NULL;
	return sk;
}

/* Fills family, ports (host order) and addresses of `sk` into an open event. */
static __always_inline void sock__endpoints(struct sock *sk, struct redtap_conn_open_event *ev)
{
	ev->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ev->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* Explicit sizes: BPF_CORE_READ_INTO on a byte array would copy sizeof(__u8). */
	if (ev->family == REDTAP_AF_INET) {
		bpf_core_read(ev->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(ev->raddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(ev->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(ev->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

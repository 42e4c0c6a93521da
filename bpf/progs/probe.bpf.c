// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * probe.bpf.c: one empty program per hook type, for `redtap doctor`. The doctor turns on
 * one program at a time (set_autoload), loads, attaches for a moment, detaches, and reports.
 * Nothing here captures anything.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} probe_rb SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_tracepoint(void *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int probe_raw_tracepoint(void *ctx)
{
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(probe_tp_btf, struct pt_regs *regs, long id)
{
	return 0;
}

SEC("iter/tcp")
int probe_iter_tcp(struct bpf_iter__tcp *ctx)
{
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(probe_uprobe)
{
	return 0;
}

SEC("sockops")
int probe_sockops(struct bpf_sock_ops *skops)
{
	return 1;
}

SEC("cgroup_skb/egress")
int probe_cgroup_skb(struct __sk_buff *skb)
{
	return 1;
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(probe_kprobe)
{
	return 0;
}

SEC("fentry/tcp_sendmsg")
int BPF_PROG(probe_fentry)
{
	return 0;
}

/* Checks bpf_task_pt_regs + ring buffer output from a syscall tracepoint: what capture needs. */
SEC("tracepoint/syscalls/sys_exit_getppid")
int probe_ringbuf(void *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 v = regs ? 1 : 0;
	bpf_ringbuf_output(&probe_rb, &v, sizeof(v), BPF_RB_NO_WAKEUP);
	return 0;
}

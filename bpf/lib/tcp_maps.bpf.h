/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tcp_maps.bpf.h: every map of tcp.bpf.c, with purpose, key and writer. */
#pragma once

#include "redtap_tcp_abi.h"

/* What the programs know about each full TCP socket. key: struct sock address (u64);
 * value: redtap_tcp_sock. Written at listen()/connect() (process context: owner), at
 * ESTABLISHED (inbound children), by the iterator for sockets older than the agent; deleted at
 * CLOSE. Userspace writes the owner of UNRESOLVED entries and deletes entries the iterator has
 * not seen for a while. max_entries set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct redtap_tcp_sock);
} tcp_sock_map SEC(".maps");

/* Counters and RTT histogram per aggregation key (per-CPU: no atomics). key:
 * redtap_tcp_key; written by the tracepoints; userspace sums over CPUs and deletes the keys of
 * dead processes once folded. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct redtap_tcp_key);
	__type(value, struct redtap_tcp_counters);
} tcp_agg_map SEC(".maps");

/* Live connections per aggregation key, rebuilt by each iterator pass (value.gen = the pass).
 * Written only by the iterator (one reader at a time), read by userspace after the pass. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct redtap_tcp_key);
	__type(value, struct redtap_tcp_live);
} tcp_live_map SEC(".maps");

/* {netns, port} that have a listener; value: the caller of listen(). Written at listen() and by the iterator,
 * deleted when a listener closes (re-added by the next pass while a reuseport sibling lives).
 * Lets programs attribute a socket they have no entry for to a listener. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct redtap_tcp_listen_key);
	__type(value, struct redtap_tcp_listen_owner);
} tcp_listen_map SEC(".maps");

/* Remote ports of the configured connection pools (alerts.pools), set by userspace: each
 * connections walk counts the live outbound connections to them per owner (key dir POOL). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16); /* host byte order */
	__type(value, __u8);
} tcp_pool_ports SEC(".maps");

/* Notable moments (connect failures, resets) to userspace. Size set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} tcp_events_rb SEC(".maps");

/* Kernel-side event budget per CPU: {window start ns, events in the window}. */
struct tcp_event_budget {
	__u64 window_ns;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcp_event_budget);
} tcp_event_budget_map SEC(".maps");

/* Loss counters, index enum redtap_tcp_drop_reason. Read and summed by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, REDTAP_TCP_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tcp_drop_stats SEC(".maps");

static __always_inline void tcp_stats__drop(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&tcp_drop_stats, &reason);
	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

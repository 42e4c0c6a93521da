/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* maps.bpf.h: every map of the capture programs, with purpose, key and writer. */
#pragma once

#include "redtap_abi.h"

/* Tracked TCP connections. key: {tgid, fd}; value: redtap_conn_info.
 * Written by accept/connect exits, first-data discovery and close; userspace mutes entries
 * (state = IGNORED) and removes those of dead processes. max_entries set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct redtap_conn_key);
	__type(value, struct redtap_conn_info);
} conn_map SEC(".maps");

/* Records to userspace. Wakeups are batched: NO_WAKEUP unless the fill passes cfg_wakeup_bytes;
 * the reader also drains on a timer. Size set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);
} events_rb SEC(".maps");

/* Per-CPU scratch where a data record is assembled before bpf_ringbuf_output().
 * Twice REDTAP_MAX_CAPTURE so that masked variable offsets stay provably in bounds. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wgnu-variable-sized-type-not-at-end"
struct redtap_data_scratch {
	struct redtap_data_event ev; /* ev.data[] aliases buf[]: sizeof(ev) is 8-aligned */
	__u8 buf[2 * REDTAP_MAX_CAPTURE];
	__u64 records; /* data records sent from this CPU (paces the ring fill checks) */
};
#pragma clang diagnostic pop
_Static_assert(sizeof(struct redtap_data_event) % 8 == 0, "data[] must start at buf");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct redtap_data_scratch);
} data_heap SEC(".maps");

/* Drop and loss counters, index enum redtap_drop_reason. Read and summed by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, REDTAP_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drop_stats SEC(".maps");

/* Process filters by comm (key: char[16] zero-padded; value: 1). Filled by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[REDTAP_COMM_LEN]);
	__type(value, __u8);
} comm_filter_map SEC(".maps");

/* Port filters (key: port in host order; value: 1 include / 2 exclude). Filled by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} port_filter_map SEC(".maps");

/* Database port hints: server port -> enum redtap_proto. A connection to or from one of them
 * opens on a weak pattern too (a typed message mid-stream: connections that predate the
 * agent). Filled by userspace before attach (db.ports). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} db_port_map SEC(".maps");

/* Per-endpoint capture size: request-line prefixes ("POST /api/payment/process") whose
 * requests (and responses) get a larger payload cap. key: redtap_endpoint_key (LPM on the
 * request's first bytes); value: log2 of the cap. Filled by userspace before attach. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct redtap_endpoint_key);
	__type(value, __u8);
} endpoint_cap_map SEC(".maps");

static __always_inline void stats__drop(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&drop_stats, &reason);
	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

/* An SSL_read/SSL_write call in progress. key: pid_tgid (the calling thread); value: its
 * arguments, and the socket fd the library used inside the call (learned by the syscall
 * programs: ciphertext moved on that fd while the call was active). Written by the uprobes. */
struct redtap_ssl_args {
	__u64 ssl;       /* SSL * */
	__u64 buf;       /* plaintext buffer */
	__u64 readbytes; /* size_t * of the _ex variants, 0 otherwise */
	__s32 fd;        /* -1 until a syscall inside the call reveals it */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct redtap_ssl_args);
} ssl_args_map SEC(".maps");

/* Go crypto/tls calls in progress, by goroutine (the g in r14: a goroutine may move between
 * threads while it waits): the receiver *tls.Conn and the buffer, from the entry probe to the
 * return probes. LRU: a goroutine that panics out of Read never returns. */
struct redtap_go_key {
	__u64 g;
	__u32 tgid;
	__u32 pad;
};

struct redtap_go_args {
	__u64 conn; /* *tls.Conn */
	__u64 buf;  /* the []byte's data */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct redtap_go_key);
	__type(value, struct redtap_go_args);
} go_tls_args_map SEC(".maps");

/* Per probe of a Go binary that needs more than the itab: bpf_cookie -> what it reads where
 * (struct redtap_go_site). Written by userspace before the link is made, deleted after. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct redtap_go_site);
} go_tls_sites SEC(".maps");

/* SSL * -> socket fd, per process: from SSL_set_fd or learned during a call, for calls that
 * are served from the library's buffer without any syscall. LRU: SSL objects are freed unseen. */
struct redtap_ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct redtap_ssl_key);
	__type(value, __s32);
} ssl_fd_map SEC(".maps");

/* The TLS socket a thread last moved ciphertext on. key: pid_tgid; value: fd. For TLS
 * libraries that use memory BIOs (node): their SSL calls touch no socket, but the event loop
 * reads the ciphertext of a connection right before SSL_read on it. Written by the syscall
 * programs for sockets whose first bytes were a TLS handshake. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __s32);
} thread_tls_fd_map SEC(".maps");

/* TLS records a thread read from an untracked socket outside any probed SSL call: the read
 * inside an SSL_read that was already blocked when the uprobes were attached (its entry never
 * fired, so its plaintext is lost). key: pid_tgid; value: the socket, when, how many bytes.
 * If the thread's next SSL_write answers with HTTP on that socket, the answer is reported
 * against a request of that length and time (REDTAP_DATA_F_UNPARSED). Written by the syscall
 * programs, consumed by the SSL_write uretprobes. */
struct redtap_tls_missed_read {
	__u64 ts;
	__u32 len;
	__s32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct redtap_tls_missed_read);
} tls_missed_read_map SEC(".maps");

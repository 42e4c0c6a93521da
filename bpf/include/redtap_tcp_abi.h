/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * redtap_tcp_abi.h: the kernel/user ABI of tcp.bpf.o (socket saturation and TCP health).
 *
 * Three channels cross it:
 *  - agg_map (per-CPU hash): counters and the RTT histogram per aggregation key, written by the
 *    sock/tcp tracepoints, read and summed over CPUs by userspace once a second;
 *  - the iter/tcp seq_file: one record per listener (and per outbound socket whose owner is not
 *    known yet), while the iterator folds established sockets into live_map (active count and
 *    bytes of live connections);
 *  - tcp_events_rb (ring buffer): notable moments only (connect failures, resets), rate-limited
 *    in the kernel.
 * Enum values are never renumbered.
 */
#pragma once

#if defined(__bpf__)
/* types come from vmlinux.h */
#else
#include <linux/types.h>
#endif

#define REDTAP_TCP_ABI_VERSION 1
#define REDTAP_TCP_COMM_LEN    16

/* Which way a connection was opened, as seen from this host. */
enum redtap_tcp_dir {
	REDTAP_TCP_DIR_LISTEN = 0,   /* a listening socket (sock_map only) */
	REDTAP_TCP_DIR_INBOUND = 1,  /* accepted: attributed to the listener (netns, port) */
	REDTAP_TCP_DIR_OUTBOUND = 2, /* connected: attributed to the connecting process */
	REDTAP_TCP_DIR_POOL = 3,     /* live_map only: outbound of {tgid, comm} to a pool port */
};

/* Aggregation key: every counter of agg_map and live_map is kept per key.
 * inbound: {netns, port} of the listener, tgid = 0, comm empty;
 * outbound: {tgid, comm} of the connecting process (0 / empty until known), netns/port = 0. */
struct redtap_tcp_key {
	__u32 netns; /* network namespace inode */
	__u32 tgid;
	__u16 port; /* host byte order */
	__u8 dir;   /* enum redtap_tcp_dir */
	__u8 pad;
	char comm[REDTAP_TCP_COMM_LEN];
};

/* Why an outbound connect failed (from sk_err when SYN_SENT -> CLOSE). */
enum redtap_tcp_fail_reason {
	REDTAP_TCP_FAIL_REFUSED = 0,     /* ECONNREFUSED: RST in answer to the SYN */
	REDTAP_TCP_FAIL_RESET = 1,       /* ECONNRESET */
	REDTAP_TCP_FAIL_TIMEOUT = 2,     /* ETIMEDOUT: SYN retransmits exhausted */
	REDTAP_TCP_FAIL_UNREACHABLE = 3, /* EHOSTUNREACH/ENETUNREACH/EHOSTDOWN/ENETDOWN (ICMP) */
	REDTAP_TCP_FAIL_ABORTED = 4,     /* no error: the process closed it while connecting */
	REDTAP_TCP_FAIL_OTHER = 5,
	REDTAP_TCP_FAIL_MAX,
};

/* RTT histogram: upper bounds in microseconds; bucket REDTAP_TCP_RTT_BOUNDS is +Inf. */
#define REDTAP_TCP_RTT_BOUNDS  16
#define REDTAP_TCP_RTT_BUCKETS (REDTAP_TCP_RTT_BOUNDS + 1)
#define REDTAP_TCP_RTT_BOUNDS_US                                                                      \
	{                                                                                             \
		25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, \
		        1000000, 2500000                                                              \
	}

/* Per-CPU value of agg_map. Every field only grows. */
struct redtap_tcp_counters {
	__u64 opened; /* SYN_RECV/SYN_SENT -> ESTABLISHED */
	__u64 closed; /* an established-or-later state -> CLOSE */
	__u64 connect_failures[REDTAP_TCP_FAIL_MAX];
	__u64 resets_sent;
	__u64 resets_received;
	__u64 retransmits; /* tcp_retransmit_skb, SYN retransmits included */
	__u64 bytes_in;    /* payload received, counted at each iterator pass and at close */
	__u64 bytes_out;   /* payload sent and acknowledged (each byte once), the same way */
	__u64 rtt_count;
	__u64 rtt_sum_us;
	__u64 rtt_buckets[REDTAP_TCP_RTT_BUCKETS];
};

/* sock_map value: what the programs know about one full socket. */
#define REDTAP_TCP_SK_UNRESOLVED 1 /* outbound socket older than the agent: owner unknown */
#define REDTAP_TCP_SK_NO_OWNER   2 /* userspace looked and found no owner: stop asking */
struct redtap_tcp_sock {
	struct redtap_tcp_key key;
	__u32 flags;        /* REDTAP_TCP_SK_* */
	__u64 rx_base;      /* payload received already counted (bytes_in) */
	__u64 tx_base;      /* bytes_acked already counted (bytes_out), or when established */
	__u64 rtt_activity; /* bytes received + acked at its last RTT sample */
	__u64 seen_gen;     /* last iterator pass that saw it (userspace garbage collection) */
};

/* live_map value: the live sockets of one key, recounted by each iterator pass. */
struct redtap_tcp_live {
	__u64 gen;    /* the pass that wrote it; older values are stale */
	__u64 active; /* sockets in ESTABLISHED or CLOSE_WAIT */
};

/* listen_map key/value: which {netns, port} has a listener (and who called listen()). */
struct redtap_tcp_listen_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};

/* Who called listen() (tgid 0: a listener older than the agent, found by the iterator). Copied
 * into the key of every connection the listener accepts, so that a connection names its service
 * even when the listener and its process are gone before userspace's next pass. */
struct redtap_tcp_listen_owner {
	__u32 tgid;
	char comm[REDTAP_TCP_COMM_LEN];
};

/* Records of the iter/tcp seq_file. */
enum redtap_tcp_rec_type {
	REDTAP_TCP_REC_LISTENER = 1,
	REDTAP_TCP_REC_UNRESOLVED = 2, /* an outbound socket whose owner userspace should find */
};

struct redtap_tcp_listener_rec {
	__u16 type;   /* REDTAP_TCP_REC_LISTENER */
	__u16 family; /* AF_INET / AF_INET6 */
	__u16 port;   /* host byte order */
	__u16 pad;
	__u32 netns;
	__u32 uid;
	__u64 sk;          /* kernel address: identity of the socket while it lives */
	__u64 ino;         /* socket inode (0 when it has no file) */
	__u32 backlog;     /* sk_ack_backlog: accepted-but-not-yet-accept()ed connections */
	__u32 backlog_max; /* sk_max_ack_backlog: min(listen() backlog, net.core.somaxconn) */
	__u32 syn_queue;   /* request sockets (SYN_RECV) not yet completed */
	__u32 drops;       /* sk_drops: ListenDrops attributed to this listener (overflows incl.) */
	__u32 owner_tgid;  /* process that called listen(), 0 when older than the agent */
	__u32 pad2;
	__u8 addr[16]; /* IPv4 in the first 4 bytes */
	char owner_comm[REDTAP_TCP_COMM_LEN];
};

struct redtap_tcp_unresolved_rec {
	__u16 type; /* REDTAP_TCP_REC_UNRESOLVED */
	__u16 pad[3];
	__u64 sk;
	__u64 ino;
};

/* Ring-buffer events: notable moments only. */
enum redtap_tcp_event_type {
	REDTAP_TCP_EV_CONNECT_FAILED = 1,
	REDTAP_TCP_EV_RESET_SENT = 2,
	REDTAP_TCP_EV_RESET_RECEIVED = 3,
};

struct redtap_tcp_event {
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	__u16 type;  /* enum redtap_tcp_event_type */
	__u16 family;
	__u16 lport; /* host byte order */
	__u16 rport;
	__u8 laddr[16];
	__u8 raddr[16];
	__u32 tgid;  /* current task (meaningful for connect failures from the caller) */
	__s32 err;   /* sk_err for connect failures */
	__u8 reason; /* enum redtap_tcp_fail_reason */
	__u8 state;  /* TCP state when it happened */
	__u8 pad[6];
	struct redtap_tcp_key key;
};

/* Kernel-side losses: index of tcp_drop_stats (per-CPU array). */
enum redtap_tcp_drop_reason {
	REDTAP_TCP_DROP_SOCK_MAP_FULL = 0, /* socket not tracked: its counters go to its key only */
	REDTAP_TCP_DROP_AGG_MAP_FULL = 1,  /* counter update lost */
	REDTAP_TCP_DROP_LIVE_MAP_FULL = 2, /* live socket not summed in this pass */
	REDTAP_TCP_DROP_LISTEN_MAP_FULL = 3,
	REDTAP_TCP_DROP_RINGBUF_FULL = 4, /* event lost */
	REDTAP_TCP_DROP_EVENT_RATE = 5,   /* event suppressed by the kernel rate limit */
	REDTAP_TCP_DROP_SEQ_OVERFLOW = 6, /* iterator record not written */
	REDTAP_TCP_DROP_MAX,
};

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * redtap_abi.h: the only header shared by the kernel programs and the agent.
 * Every record crossing the ring buffer begins with struct redtap_event_hdr.
 * Values of enum redtap_event_type and enum redtap_drop_reason are never renumbered.
 */
#pragma once

#if defined(__bpf__)
/* types come from vmlinux.h */
#else
#include <linux/types.h>
#endif

#define REDTAP_ABI_VERSION 1

/* Largest payload one syscall record can carry; the runtime cap is <= this. Power of two. */
#define REDTAP_MAX_CAPTURE 8192
#define REDTAP_COMM_LEN    16
/* The last bytes of a database connection's call that moved more than was captured. */
#define REDTAP_MAX_TAIL 64

enum redtap_event_type {
	REDTAP_EV_CONN_OPEN = 1,  /* a connection became tracked as HTTP */
	REDTAP_EV_DATA = 2,       /* bytes one syscall moved on a tracked connection */
	REDTAP_EV_CONN_CLOSE = 3, /* the tracked fd was closed */
	REDTAP_EV_EXEC = 4,       /* a process exec'd (TLS: look for new libssl files) */
};

/* The protocol of an open connection: which parser userspace feeds (redtap_conn_open_event.proto). */
enum redtap_proto {
	REDTAP_PROTO_HTTP = 0,
	REDTAP_PROTO_POSTGRESQL = 1,
	REDTAP_PROTO_MYSQL = 2,
	REDTAP_PROTO_REDIS = 3,
	REDTAP_PROTO_MAX,
};

enum redtap_role {
	REDTAP_ROLE_UNKNOWN = 0,
	REDTAP_ROLE_SERVER = 1, /* accepted, or inferred: reads requests / writes responses */
	REDTAP_ROLE_CLIENT = 2, /* connected, or inferred: writes requests / reads responses */
};

enum redtap_conn_source {
	REDTAP_SRC_ACCEPT = 1,
	REDTAP_SRC_CONNECT = 2,
	REDTAP_SRC_DISCOVERED = 3, /* existed before (or outside) accept/connect: found on first data */
};

enum redtap_dir {
	REDTAP_DIR_INGRESS = 0, /* read by the process */
	REDTAP_DIR_EGRESS = 1,  /* written by the process */
};

/* Which syscall produced a data record (for diagnostics). */
enum redtap_syscall {
	REDTAP_SYS_READ = 1,
	REDTAP_SYS_WRITE,
	REDTAP_SYS_READV,
	REDTAP_SYS_WRITEV,
	REDTAP_SYS_RECVFROM,
	REDTAP_SYS_SENDTO,
	REDTAP_SYS_RECVMSG,
	REDTAP_SYS_SENDMSG,
	REDTAP_SYS_SENDFILE,
	REDTAP_SYS_SSL_READ,  /* plaintext returned by SSL_read / SSL_read_ex, or Go's
	                       * crypto/tls (*Conn).Read */
	REDTAP_SYS_SSL_WRITE, /* plaintext accepted by SSL_write / SSL_write_ex, or Go's
	                       * crypto/tls (*Conn).Write */
};

/* Kernel-side drop and loss counters: index of drop_stats (per-CPU array). */
enum redtap_drop_reason {
	REDTAP_DROP_RINGBUF_FULL = 0, /* record lost: ring buffer had no room */
	REDTAP_DROP_CONN_TABLE_FULL,  /* connection not tracked: conn_map full */
	REDTAP_DROP_TRUNCATED,        /* syscall moved more bytes than the capture cap (not lost: framed) */
	REDTAP_DROP_READ_FAULT,       /* bpf_probe_read_user failed: payload not captured */
	REDTAP_DROP_IOV_LIMIT,        /* more iovecs than walked: the rest framed, not captured */
	REDTAP_DROP_TLS_NO_FD,        /* TLS plaintext whose socket could not be found: not captured */
	REDTAP_DROP_TLS_MISSED_READ,  /* an SSL_read in progress when the uprobes were attached: its
					* plaintext was not captured; its answer is reported as
					* unparsed */
	REDTAP_DROP_MAX,
};

/* Per-connection state in conn_map. */
enum redtap_conn_state {
	REDTAP_STATE_UNKNOWN = 0,  /* no data yet */
	REDTAP_STATE_HTTP = 1,     /* open: first bytes were HTTP/1.x or a database protocol
				    * (redtap_conn_info.proto): data flows to userspace */
	REDTAP_STATE_IGNORED = 2,  /* not HTTP, filtered out, or muted by userspace */
	REDTAP_STATE_REARMED = 3,  /* userspace dropped its tracker: re-open on the next HTTP start */
	REDTAP_STATE_UNPARSED = 4, /* first request bytes were not HTTP: the first answer decides
				    * (an HTTP status line: open, then one REDTAP_DATA_F_UNPARSED
				    * record for them; anything else: IGNORED) */
};

/* Flags of a data record. */
enum redtap_data_flags {
	REDTAP_DATA_F_UNPARSED = 1, /* `len` request bytes that were not HTTP, read or written from
				     * hdr.ts_ns on before the connection's first answer; nothing
				     * captured (cap_len = 0) */
	REDTAP_DATA_F_MISSED = 2,   /* with UNPARSED: the bytes were not seen at all (TLS records
				     * of an SSL_read in progress at attach), not known to be
				     * other than HTTP */
};

struct redtap_event_hdr {
	__u16 type;    /* enum redtap_event_type */
	__u16 version; /* REDTAP_ABI_VERSION */
	__u32 size;    /* bytes of the whole record */
	__u64 ts_ns;   /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
};

/* Identifies one connection for its whole life: fds are reused, gen is not. */
struct redtap_conn_key {
	__u32 tgid;
	__u32 fd;
};

struct redtap_conn_id {
	__u32 tgid;
	__u32 fd;
	__u64 gen; /* creation time in ns: unique per (tgid, fd) reuse */
};

struct redtap_conn_open_event {
	struct redtap_event_hdr hdr;
	struct redtap_conn_id id;
	__u32 seq; /* per-connection record sequence (gaps = lost records) */
	__u32 tid;
	__u8 role;      /* enum redtap_role */
	__u8 source;    /* enum redtap_conn_source */
	__u16 family;   /* AF_INET or AF_INET6 */
	__u16 lport;    /* host byte order */
	__u16 rport;    /* host byte order */
	__u8 laddr[16]; /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
	char comm[REDTAP_COMM_LEN];
	__u8 tls;   /* 1: plaintext comes from the TLS library (uprobes) */
	__u8 proto; /* enum redtap_proto */
	__u8 pad[6];
};

struct redtap_data_event {
	struct redtap_event_hdr hdr;
	struct redtap_conn_id id;
	__u32 seq;
	__u32 tid;
	__u32 len;     /* bytes the syscall really moved */
	__u32 cap_len; /* bytes captured below (<= len, <= cap) */
	__u8 dir;      /* enum redtap_dir */
	__u8 syscall;  /* enum redtap_syscall; 0 for a REDTAP_DATA_F_UNPARSED record */
	__u8 flags;    /* enum redtap_data_flags */
	__u8 tail_len; /* database connections: the call's last tail_len bytes follow the
			* cap_len first ones, when it moved more than was captured (the end of a
			* large reply: its status) */
	__u8 pad[4];
	__u8 data[]; /* cap_len bytes, then tail_len bytes */
};

struct redtap_conn_close_event {
	struct redtap_event_hdr hdr;
	struct redtap_conn_id id;
	__u32 seq;
	__u32 tid;
};

struct redtap_exec_event {
	struct redtap_event_hdr hdr;
	__u32 pid; /* tgid that exec'd */
	__u32 pad;
};

/* Value of conn_map. */
struct redtap_conn_info {
	__u64 gen;
	__u64 sk;           /* struct sock * of the fd, read for endpoints when the conn turns HTTP */
	__u32 seq;          /* next record sequence number */
	__u8 state;         /* enum redtap_conn_state */
	__u8 role;          /* enum redtap_role */
	__u8 source;        /* enum redtap_conn_source */
	__u8 tls;           /* 1: the socket carries TLS; plaintext comes from uprobes only */
	__u8 tls_seen;      /* its first bytes were a TLS handshake record */
	__u8 cap_shift;     /* per-endpoint capture: the current request matched endpoint_cap_map,
			 * payload cap is 1 << cap_shift until the next request; 0 = default cap */
	__u8 proto;         /* enum redtap_proto, set when the connection opens */
	__u8 pg_ssl_req;    /* a PostgreSQL SSLRequest was sent: its one-byte answer ('S'/'N') is
			    * not the connection's first message */
	__u32 unparsed_len; /* REDTAP_STATE_UNPARSED: request bytes moved so far (saturating) */
	__u64 unparsed_ts;  /* REDTAP_STATE_UNPARSED: when the first of them moved */
};

/* Key of endpoint_cap_map (LPM trie): the first bytes of a request ("POST /api/pay"),
 * prefixlen in bits. Value: __u8 log2 of the capture cap for that request and its response. */
#define REDTAP_ENDPOINT_PREFIX_LEN 64
struct redtap_endpoint_key {
	__u32 prefixlen;
	__u8 data[REDTAP_ENDPOINT_PREFIX_LEN];
};

/* Value of go_tls_sites, keyed by the link's bpf_cookie: what a Go crypto/tls entry probe
 * (tls/go_tls.h) needs about its binary. Offsets named *_rel are relative to the probed
 * instruction (uprobe ip), so they hold in PIE binaries at any base. */
struct redtap_go_site {
	__s64 itab_rel;    /* the itab of *net.TCPConn as a net.Conn */
	__s64 caller_rel;  /* deferred-return probe: (*Conn).Read's first byte */
	__u32 caller_size; /* deferred-return probe: Read's size in bytes */
	__u32 result_slot; /* deferred-return probe: n's slot in Read's frame, from Read's rsp */
	__u32 frame;       /* deferred-return probe: Read's frame (receiver at frame+8, buffer at
			     * frame+16 from Read's rsp) */
	__u8 guard_r12;    /* the stack check compares r12 (large frames), else rsp */
	__u8 pad[3];
};

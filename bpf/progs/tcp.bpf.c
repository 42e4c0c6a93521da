// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcp.bpf.c: socket saturation and TCP health per service, from sock/tcp tracepoints and a
 * tcp iterator. No kprobes, no fentry, no per-packet records.
 *
 *  - sock/inet_sock_set_state: listen() and connect() run in process context, so the owner
 *    (tgid, comm) of listeners and outbound sockets is recorded there; ESTABLISHED counts an
 *    open, CLOSE a close (with the bytes moved since the last pass) or a connect failure.
 *  - tcp/tcp_retransmit_skb, tcp/tcp_send_reset, tcp/tcp_receive_reset: counters per key.
 *  - RTT: the socket's smoothed RTT (srtt) into a per-key histogram, read where the programs
 *    already touch the socket: once per iterator pass for each live connection, and once at
 *    its close, in both cases only if it moved data since its last sample. No per-segment
 *    hook: tcp/tcp_probe fired twice per request and cost ~0.4 us each (bench, issue 8).
 *  - iter/tcp, run by userspace once a second: one record per listener (accept queue length
 *    and limit, drops), and live connections folded into tcp_live_map (active); the bytes a
 *    connection moved since it was last seen go into its key's counters, so bytes_total is
 *    a plain counter: each byte counted once, whether the connection lives or closes.
 * Counters live in per-CPU maps read by userspace; only connect failures and resets go to the
 * ring buffer, under a per-CPU budget of cfg_events_per_sec.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "redtap_tcp_abi.h"
#include "tcp_maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Tunables, set by the loader in rodata before load. */
const volatile __u64 cfg_events_per_sec = 100;       /* ring-buffer events per CPU per second */

/* Written by userspace before each iterator pass (skeleton bss). */
__u64 iter_gen = 0;
__u32 iter_listeners_only = 0; /* 1: report listeners, stop before connections */

/* Zero value used to create agg_map entries (too large for the stack budget of some paths). */
const struct redtap_tcp_counters zero_counters = {};

#define REDTAP_AF_INET 2
#define REDTAP_AF_INET6 10
#define REDTAP_IPPROTO_TCP 6

#define REDTAP_ECONNRESET 104
#define REDTAP_ECONNREFUSED 111
#define REDTAP_ETIMEDOUT 110
#define REDTAP_EHOSTUNREACH 113
#define REDTAP_ENETUNREACH 101
#define REDTAP_EHOSTDOWN 112
#define REDTAP_ENETDOWN 100

static __always_inline __u32 sk__netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* Payload bytes received: bytes_received counts sequence space, so the peer's FIN (SOCK_DONE,
 * set by tcp_fin()) adds one that is not data. */
static __always_inline __u64 sk__rx_bytes(const struct sock *sk)
{
	__u64 rx = BPF_CORE_READ((const struct tcp_sock *)sk, bytes_received);
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);

	if ((flags & (1UL << SOCK_DONE)) && rx)
		rx--;
	return rx;
}

/* Payload bytes sent, each once: the bytes the peer acknowledged. bytes_acked is the advance
 * of snd_una (tcp_snd_una_update), so retransmissions, segmentation offload, partial
 * retransmits and SACK never count twice (bytes_sent - bytes_retrans does, on some paths).
 * It counts sequence space: the SYN of an active open (acknowledged before the socket is
 * ESTABLISHED, so it is in the base taken then: tx_base), and our FIN once acknowledged (a FIN
 * was sent in FIN_WAIT1/2, CLOSING and LAST_ACK; it is acknowledged when snd_una reaches
 * write_seq, which includes it). A passive open's SYN-ACK is never counted (the child socket
 * starts with snd_una past it). `state` is the socket's state, or the state it leaves at a
 * close transition. */
static __always_inline __u64 tp__tx_bytes(const struct tcp_sock *tp, int state)
{
	__u64 acked = BPF_CORE_READ(tp, bytes_acked);

	if ((state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 || state == TCP_CLOSING ||
	     state == TCP_LAST_ACK) &&
	    BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq) && acked)
		acked--;
	return acked;
}

/* States where a socket has been established and not yet closed. */
static __always_inline int state__connected(int s)
{
	return s == TCP_ESTABLISHED || s == TCP_FIN_WAIT1 || s == TCP_FIN_WAIT2 ||
	       s == TCP_CLOSE_WAIT || s == TCP_LAST_ACK || s == TCP_CLOSING;
}

/* The key of a socket the programs have no entry for: the listener on its local port when
 * there is one (inbound), else an outbound connection of an unknown process. */
static __always_inline void key__derive(struct redtap_tcp_key *key, __u32 netns, __u16 lport)
{
	struct redtap_tcp_listen_key lk = { .netns = netns, .port = lport };

	if (bpf_map_lookup_elem(&tcp_listen_map, &lk)) {
		key->dir = REDTAP_TCP_DIR_INBOUND;
		key->netns = netns;
		key->port = lport;
	} else {
		key->dir = REDTAP_TCP_DIR_OUTBOUND;
	}
}

static __always_inline struct redtap_tcp_counters *agg__get(const struct redtap_tcp_key *key)
{
	struct redtap_tcp_counters *c = bpf_map_lookup_elem(&tcp_agg_map, key);

	if (c)
		return c;
	bpf_map_update_elem(&tcp_agg_map, key, &zero_counters, BPF_NOEXIST);
	c = bpf_map_lookup_elem(&tcp_agg_map, key);
	if (!c)
		tcp_stats__drop(REDTAP_TCP_DROP_AGG_MAP_FULL);
	return c;
}

static __always_inline __u32 rtt__bucket(__u32 us)
{
	const __u32 bounds[REDTAP_TCP_RTT_BOUNDS] = REDTAP_TCP_RTT_BOUNDS_US;
	__u32 i;

#pragma unroll
	for (i = 0; i < REDTAP_TCP_RTT_BOUNDS; i++) {
		if (us <= bounds[i])
			return i;
	}
	return REDTAP_TCP_RTT_BOUNDS;
}

/* Activity of a socket: payload received plus payload acknowledged by the peer. */
static __always_inline __u64 sk__activity(const struct tcp_sock *tp)
{
	return BPF_CORE_READ(tp, bytes_received) + BPF_CORE_READ(tp, bytes_acked);
}

/* One RTT sample of a socket that moved data since its last one (e->rtt_activity). */
static __always_inline void rtt__sample(struct redtap_tcp_sock *e, const struct tcp_sock *tp,
					struct redtap_tcp_counters *c)
{
	__u64 act = sk__activity(tp);
	__u32 srtt = BPF_CORE_READ(tp, srtt_us) >> 3;
	__u32 b;

	if (!c || !srtt || act == e->rtt_activity)
		return;
	e->rtt_activity = act;
	b = rtt__bucket(srtt);
	if (b > REDTAP_TCP_RTT_BOUNDS)
		b = REDTAP_TCP_RTT_BOUNDS;
	c->rtt_count++;
	c->rtt_sum_us += srtt;
	c->rtt_buckets[b]++;
}

static __always_inline __u8 fail__reason(int err)
{
	switch (err) {
	case REDTAP_ECONNREFUSED:
		return REDTAP_TCP_FAIL_REFUSED;
	case REDTAP_ECONNRESET:
		return REDTAP_TCP_FAIL_RESET;
	case REDTAP_ETIMEDOUT:
		return REDTAP_TCP_FAIL_TIMEOUT;
	case REDTAP_EHOSTUNREACH:
	case REDTAP_ENETUNREACH:
	case REDTAP_EHOSTDOWN:
	case REDTAP_ENETDOWN:
		return REDTAP_TCP_FAIL_UNREACHABLE;
	case 0:
		return REDTAP_TCP_FAIL_ABORTED;
	}
	return REDTAP_TCP_FAIL_OTHER;
}

/* Per-CPU budget of ring-buffer events per second. Returns 1 when one may be sent. */
static __always_inline int event__allowed(__u64 now)
{
	__u32 zero = 0;
	struct tcp_event_budget *b = bpf_map_lookup_elem(&tcp_event_budget_map, &zero);

	if (!b)
		return 0;
	if (now - b->window_ns >= 1000000000ULL) {
		b->window_ns = now;
		b->count = 0;
	}
	if (b->count >= cfg_events_per_sec) {
		tcp_stats__drop(REDTAP_TCP_DROP_EVENT_RATE);
		return 0;
	}
	b->count++;
	return 1;
}

/* Emits one event; addresses from the tracepoint's v4/v6 fields. */
static __always_inline void event__emit(__u16 type, const struct redtap_tcp_key *key,
					__u16 family, __u16 lport, __u16 rport,
					const void *saddr4, const void *daddr4,
					const void *saddr6, const void *daddr6, int err, __u8 state)
{
	__u64 now = bpf_ktime_get_ns();
	struct redtap_tcp_event *ev;

	if (!event__allowed(now))
		return;
	ev = bpf_ringbuf_reserve(&tcp_events_rb, sizeof(*ev), 0);
	if (!ev) {
		tcp_stats__drop(REDTAP_TCP_DROP_RINGBUF_FULL);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = now;
	ev->type = type;
	ev->family = family;
	ev->lport = lport;
	ev->rport = rport;
	/* The addresses may point into the tracepoint context, which cannot be dereferenced at
	 * an offset computed here: copy them with a helper. */
	if (family == REDTAP_AF_INET6) {
		bpf_probe_read_kernel(ev->laddr, 16, saddr6);
		bpf_probe_read_kernel(ev->raddr, 16, daddr6);
	} else {
		bpf_probe_read_kernel(ev->laddr, 4, saddr4);
		bpf_probe_read_kernel(ev->raddr, 4, daddr4);
	}
	ev->tgid = key->tgid;
	ev->err = err;
	ev->reason = fail__reason(err);
	ev->state = state;
	ev->key = *key;
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void sock__put(__u64 skey, struct redtap_tcp_sock *v)
{
	v->seen_gen = iter_gen; /* garbage-collected when no pass has seen it for minutes */
	if (bpf_map_update_elem(&tcp_sock_map, &skey, v, BPF_ANY))
		tcp_stats__drop(REDTAP_TCP_DROP_SOCK_MAP_FULL);
}

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	int os = ctx->oldstate, ns = ctx->newstate;
	__u64 skey = (__u64)sk;
	struct redtap_tcp_sock *e;
	struct redtap_tcp_counters *c;
	struct redtap_tcp_key key = {};

	if (ctx->protocol != REDTAP_IPPROTO_TCP)
		return 0;

	if (ns == TCP_LISTEN) {
		/* listen(): process context, the caller owns the listener. */
		struct redtap_tcp_sock v = {};
		struct redtap_tcp_listen_key lk = { .netns = sk__netns(sk), .port = ctx->sport };
		__u8 one = 1;

		v.key.dir = REDTAP_TCP_DIR_LISTEN;
		v.key.netns = lk.netns;
		v.key.port = ctx->sport;
		v.key.tgid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(v.key.comm, sizeof(v.key.comm));
		sock__put(skey, &v);
		if (bpf_map_update_elem(&tcp_listen_map, &lk, &one, BPF_ANY))
			tcp_stats__drop(REDTAP_TCP_DROP_LISTEN_MAP_FULL);
		return 0;
	}
	if (os == TCP_LISTEN) {
		struct redtap_tcp_listen_key lk = { .netns = sk__netns(sk), .port = ctx->sport };

		bpf_map_delete_elem(&tcp_sock_map, &skey);
		bpf_map_delete_elem(&tcp_listen_map, &lk);
		return 0;
	}
	if (ns == TCP_SYN_SENT) {
		/* connect(): process context, the caller owns the connection. */
		struct redtap_tcp_sock v = {};

		v.key.dir = REDTAP_TCP_DIR_OUTBOUND;
		v.key.tgid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(v.key.comm, sizeof(v.key.comm));
		sock__put(skey, &v);
		return 0;
	}
	if (ns == TCP_ESTABLISHED) {
		/* Bytes sent count from here: the SYN an active open sent is acknowledged already. */
		__u64 tx_base = BPF_CORE_READ((const struct tcp_sock *)sk, bytes_acked);

		if (os == TCP_SYN_SENT) {
			e = bpf_map_lookup_elem(&tcp_sock_map, &skey);
			if (e) {
				key = e->key;
				e->tx_base = tx_base;
			} else {
				struct redtap_tcp_sock v = {};

				key.dir = REDTAP_TCP_DIR_OUTBOUND;
				v.key = key;
				v.flags = REDTAP_TCP_SK_UNRESOLVED;
				v.tx_base = tx_base;
				sock__put(skey, &v);
			}
		} else if (os == TCP_SYN_RECV) {
			struct redtap_tcp_sock v = {};

			key.dir = REDTAP_TCP_DIR_INBOUND;
			key.netns = sk__netns(sk);
			key.port = ctx->sport;
			v.key = key;
			v.tx_base = tx_base;
			sock__put(skey, &v);
		} else {
			return 0;
		}
		c = agg__get(&key);
		if (c)
			c->opened++;
		return 0;
	}
	if (ns != TCP_CLOSE)
		return 0;

	e = bpf_map_lookup_elem(&tcp_sock_map, &skey);
	if (os == TCP_SYN_SENT) {
		int err = BPF_CORE_READ(sk, sk_err);

		if (e) {
			key = e->key;
		} else {
			key.dir = REDTAP_TCP_DIR_OUTBOUND;
		}
		bpf_map_delete_elem(&tcp_sock_map, &skey);
		c = agg__get(&key);
		if (c) {
			__u8 r = fail__reason(err);

			if (r < REDTAP_TCP_FAIL_MAX)
				c->connect_failures[r]++;
		}
		event__emit(REDTAP_TCP_EV_CONNECT_FAILED, &key, ctx->family, ctx->sport, ctx->dport,
			    ctx->saddr, ctx->daddr, ctx->saddr_v6, ctx->daddr_v6, err, os);
		return 0;
	}
	if (!state__connected(os)) {
		if (e)
			bpf_map_delete_elem(&tcp_sock_map, &skey);
		return 0;
	}
	{
		__u64 rx = sk__rx_bytes(sk);
		__u64 tx = tp__tx_bytes((const struct tcp_sock *)sk, os);

		if (e) {
			key = e->key;
			rx = rx >= e->rx_base ? rx - e->rx_base : 0;
			tx = tx >= e->tx_base ? tx - e->tx_base : 0;
		} else {
			/* Older than the agent and never seen by the iterator: bytes unknown. */
			key__derive(&key, sk__netns(sk), ctx->sport);
			rx = 0;
			tx = 0;
		}
		c = agg__get(&key);
		if (c) {
			c->closed++;
			c->bytes_in += rx;
			c->bytes_out += tx;
			if (e) /* its last RTT, unless a pass sampled it since it last moved data */
				rtt__sample(e, (const struct tcp_sock *)sk, c);
		}
		bpf_map_delete_elem(&tcp_sock_map, &skey);
	}
	return 0;
}

/* The key of a full socket seen by a tcp tracepoint. */
static __always_inline void key__of_sock(struct redtap_tcp_key *key, const struct sock *sk,
					 __u16 lport)
{
	__u64 skey = (__u64)sk;
	struct redtap_tcp_sock *e = bpf_map_lookup_elem(&tcp_sock_map, &skey);

	if (e) {
		*key = e->key;
		if (key->dir == REDTAP_TCP_DIR_LISTEN)
			key->dir = REDTAP_TCP_DIR_INBOUND;
		return;
	}
	key__derive(key, sk__netns(sk), lport);
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tcp_retransmit_skb(struct trace_event_raw_tcp_retransmit_skb *ctx)
{
	struct redtap_tcp_key key = {};
	struct redtap_tcp_counters *c;

	key__of_sock(&key, (const struct sock *)ctx->skaddr, ctx->sport);
	c = agg__get(&key);
	if (c)
		c->retransmits++;
	return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int tcp_receive_reset(struct trace_event_raw_tcp_event_sk *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->skaddr;
	struct redtap_tcp_key key = {};
	struct redtap_tcp_counters *c;

	key__of_sock(&key, sk, ctx->sport);
	c = agg__get(&key);
	if (c)
		c->resets_received++;
	event__emit(REDTAP_TCP_EV_RESET_RECEIVED, &key, ctx->family, ctx->sport, ctx->dport,
		    ctx->saddr, ctx->daddr, ctx->saddr_v6, ctx->daddr_v6, 0,
		    BPF_CORE_READ(sk, __sk_common.skc_state));
	return 0;
}

/* sockaddr_in / sockaddr_in6 as the tcp_send_reset tracepoint stores them. */
struct redtap_sockaddr {
	__u16 family;
	__u16 port; /* network order */
	__u32 v4_or_flowinfo;
	__u8 v6[16];
	__u32 scope;
};

SEC("tracepoint/tcp/tcp_send_reset")
int tcp_send_reset(struct trace_event_raw_tcp_send_reset *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->skaddr;
	struct redtap_sockaddr src = {}, dst = {};
	struct redtap_tcp_key key = {};
	struct redtap_tcp_counters *c;
	__u16 lport, rport;

	/* saddr is the reset's source: the local end. */
	bpf_probe_read_kernel(&src, sizeof(src), ctx->saddr);
	bpf_probe_read_kernel(&dst, sizeof(dst), ctx->daddr);
	lport = bpf_ntohs(src.port);
	rport = bpf_ntohs(dst.port);
	if (sk) {
		key__of_sock(&key, sk, lport);
	} else {
		/* No socket (e.g. a SYN to a closed port): the listener of the local port when there
		 * is one, else "no service" (port 0: a port scan must not create a key per port). */
		const struct sk_buff *skb = (const struct sk_buff *)ctx->skbaddr;
		__u32 netns = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
		struct redtap_tcp_listen_key lk = { .netns = netns, .port = lport };

		key.dir = REDTAP_TCP_DIR_INBOUND;
		if (bpf_map_lookup_elem(&tcp_listen_map, &lk)) {
			key.netns = netns;
			key.port = lport;
		}
	}
	c = agg__get(&key);
	if (c)
		c->resets_sent++;
	event__emit(REDTAP_TCP_EV_RESET_SENT, &key, src.family, lport, rport,
		    &src.v4_or_flowinfo, &dst.v4_or_flowinfo, src.v6,
		    dst.v6, 0, (__u8)ctx->state);
	return 0;
}

static __always_inline void iter__listener(struct seq_file *seq, struct sock *sk, __u64 skey,
					   __u32 netns, __u16 lport, __u32 uid)
{
	struct redtap_tcp_listener_rec rec = {};
	struct redtap_tcp_listen_key lk = { .netns = netns, .port = lport };
	struct redtap_tcp_sock *e;
	__u8 one = 1;

	if (!bpf_map_lookup_elem(&tcp_listen_map, &lk) &&
	    bpf_map_update_elem(&tcp_listen_map, &lk, &one, BPF_ANY))
		tcp_stats__drop(REDTAP_TCP_DROP_LISTEN_MAP_FULL);

	rec.type = REDTAP_TCP_REC_LISTENER;
	rec.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	rec.port = lport;
	rec.netns = netns;
	rec.uid = uid;
	rec.sk = skey;
	rec.ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	rec.backlog = BPF_CORE_READ(sk, sk_ack_backlog);
	rec.backlog_max = BPF_CORE_READ(sk, sk_max_ack_backlog);
	rec.syn_queue = BPF_CORE_READ((struct inet_connection_sock *)sk, icsk_accept_queue.qlen.counter);
	rec.drops = BPF_CORE_READ(sk, sk_drops.counter);
	if (rec.family == REDTAP_AF_INET6)
		BPF_CORE_READ_INTO(&rec.addr, sk, __sk_common.skc_v6_rcv_saddr);
	else
		BPF_CORE_READ_INTO(&rec.addr, sk, __sk_common.skc_rcv_saddr);
	e = bpf_map_lookup_elem(&tcp_sock_map, &skey);
	if (e) {
		e->seen_gen = iter_gen;
		rec.owner_tgid = e->key.tgid;
		__builtin_memcpy(rec.owner_comm, e->key.comm, sizeof(rec.owner_comm));
	}
	if (bpf_seq_write(seq, &rec, sizeof(rec)))
		tcp_stats__drop(REDTAP_TCP_DROP_SEQ_OVERFLOW);
}

SEC("iter/tcp")
int tcp_iter(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct redtap_tcp_sock *e;
	struct redtap_tcp_live *l;
	struct tcp_sock *tp;
	struct sock *sk;
	__u64 skey, rx, tx;
	__u16 lport;
	int state;

	if (!skc)
		return 0;
	/* ctx->sk_common is a trusted BTF pointer: plain loads, no helper call per field (this
	 * program runs once per socket of the host: 10,000 connections = 20,000 runs a pass). */
	state = skc->skc_state;
	if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
		return 0;
	sk = (struct sock *)skc;
	skey = (__u64)sk;
	lport = skc->skc_num;

	if (state == TCP_LISTEN) {
		iter__listener(seq, sk, skey, sk__netns(sk), lport, ctx->uid);
		return 0;
	}
	/* The iterator walks every listener before any other socket: a listeners-only pass
	 * stops at the first one (returning 1 ends the read). */
	if (iter_listeners_only)
		return 1;
	if (!state__connected(state)) {
		if (state == TCP_SYN_SENT) {
			e = bpf_map_lookup_elem(&tcp_sock_map, &skey);
			if (e)
				e->seen_gen = iter_gen;
		}
		return 0;
	}
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	rx = tp->bytes_received;
	if ((skc->skc_flags & (1UL << SOCK_DONE)) && rx)
		rx--; /* the peer's FIN */
	tx = tp__tx_bytes(tp, state);

	e = bpf_map_lookup_elem(&tcp_sock_map, &skey);
	if (!e) {
		/* Older than the agent: count its bytes from now on. */
		struct redtap_tcp_sock v = {};

		key__derive(&v.key, sk__netns(sk), lport);
		if (v.key.dir == REDTAP_TCP_DIR_OUTBOUND)
			v.flags = REDTAP_TCP_SK_UNRESOLVED;
		v.rx_base = rx;
		v.tx_base = tx;
		sock__put(skey, &v);
		e = bpf_map_lookup_elem(&tcp_sock_map, &skey);
		if (!e)
			return 0;
	}
	e->seen_gen = iter_gen;
	if ((e->flags & (REDTAP_TCP_SK_UNRESOLVED | REDTAP_TCP_SK_NO_OWNER)) ==
	    REDTAP_TCP_SK_UNRESOLVED) {
		struct redtap_tcp_unresolved_rec u = {};

		u.type = REDTAP_TCP_REC_UNRESOLVED;
		u.sk = skey;
		u.ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
		if (bpf_seq_write(seq, &u, sizeof(u)))
			tcp_stats__drop(REDTAP_TCP_DROP_SEQ_OVERFLOW);
	}

	l = bpf_map_lookup_elem(&tcp_live_map, &e->key);
	if (!l) {
		struct redtap_tcp_live z = { .gen = iter_gen };

		if (bpf_map_update_elem(&tcp_live_map, &e->key, &z, BPF_NOEXIST) == 0)
			l = bpf_map_lookup_elem(&tcp_live_map, &e->key);
		if (!l) {
			tcp_stats__drop(REDTAP_TCP_DROP_LIVE_MAP_FULL);
			return 0;
		}
	}
	if (l->gen != iter_gen) {
		l->gen = iter_gen;
		l->active = 0;
	}
	if (state == TCP_ESTABLISHED || state == TCP_CLOSE_WAIT)
		l->active++;
	{
		/* What moved since the last count goes into the counters now: the socket is locked
		 * by the iterator, so its close (which counts the rest) cannot interleave. */
		__u64 drx = rx > e->rx_base ? rx - e->rx_base : 0;
		__u64 dtx = tx > e->tx_base ? tx - e->tx_base : 0;
		__u64 act = tp->bytes_received + tp->bytes_acked;
		int rtt = tp->srtt_us && act != e->rtt_activity;
		struct redtap_tcp_counters *c;

		if (!drx && !dtx && !rtt)
			return 0;
		c = agg__get(&e->key);
		if (!c)
			return 0;
		c->bytes_in += drx;
		c->bytes_out += dtx;
		e->rx_base += drx;
		e->tx_base += dtx;
		if (rtt)
			rtt__sample(e, tp, c);
	}
	return 0;
}

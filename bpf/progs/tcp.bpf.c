// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcp.bpf.c: socket saturation and TCP health per service, from sock/tcp tracepoints and a
 * tcp iterator. No kprobes, no fentry, no per-packet records.
 *
 *  - sock/inet_sock_set_state: listen() and connect() run in process context, so the owner
 *    (tgid, comm) of listeners and outbound sockets is recorded there (an accepted connection
 *    takes its listener's owner); ESTABLISHED counts an open, CLOSE a close (with the bytes
 *    moved since the last pass) or a connect failure.
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
const volatile __u64 cfg_events_per_sec = 100; /* ring-buffer events per CPU per second */

/* Written by userspace before each iterator pass (skeleton bss). */
__u64 iter_gen = 0;
__u32 iter_listeners_only = 0; /* 1: report listeners, stop before connections */
__u32 pool_ports = 0;          /* entries of tcp_pool_ports: 0 skips the lookup */

/* Zero value used to create agg_map entries (too large for the stack budget of some paths). */
const struct redtap_tcp_counters zero_counters = {};

#include "tcp_helpers.bpf.h"

/* listen(): process context, the caller owns the listener. */
static __always_inline void state__listen(struct trace_event_raw_inet_sock_set_state *ctx,
                                          struct sock *sk, __u64 skey)
{
	struct redtap_tcp_sock v = {};
	struct redtap_tcp_listen_key lk = {.netns = sk__netns(sk), .port = ctx->sport};
	struct redtap_tcp_listen_owner owner = {};

	v.key.dir = REDTAP_TCP_DIR_LISTEN;
	v.key.netns = lk.netns;
	v.key.port = ctx->sport;
	v.key.tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(v.key.comm, sizeof(v.key.comm));
	sock__put(skey, &v);
	owner.tgid = v.key.tgid;
	__builtin_memcpy(owner.comm, v.key.comm, sizeof(owner.comm));
	if (bpf_map_update_elem(&tcp_listen_map, &lk, &owner, BPF_ANY))
		tcp_stats__drop(REDTAP_TCP_DROP_LISTEN_MAP_FULL);
}

/* connect(): process context, the caller owns the connection. */
static __always_inline void state__syn_sent(__u64 skey)
{
	struct redtap_tcp_sock v = {};

	v.key.dir = REDTAP_TCP_DIR_OUTBOUND;
	v.key.tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(v.key.comm, sizeof(v.key.comm));
	sock__put(skey, &v);
}

/* An open, active (from SYN_SENT) or passive (from SYN_RECV). */
static __always_inline void state__established(struct trace_event_raw_inet_sock_set_state *ctx,
                                               struct sock *sk, __u64 skey, int os)
{
	/* Bytes sent count from here: the SYN an active open sent is acknowledged already. */
	__u64 tx_base = BPF_CORE_READ((const struct tcp_sock *)sk, bytes_acked);
	struct redtap_tcp_key key = {};
	struct redtap_tcp_counters *c;

	if (os == TCP_SYN_SENT) {
		struct redtap_tcp_sock *e = bpf_map_lookup_elem(&tcp_sock_map, &skey);

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

		/* Inbound, owned by the caller of listen(): named even if it exits before a pass. */
		key__derive(&key, sk__netns(sk), ctx->sport);
		key.dir = REDTAP_TCP_DIR_INBOUND;
		key.netns = sk__netns(sk);
		key.port = ctx->sport;
		v.key = key;
		v.tx_base = tx_base;
		sock__put(skey, &v);
	} else {
		return;
	}
	c = agg__get(&key);
	if (c)
		c->opened++;
}

/* A connect that never got established: counted by reason (sk_err), and an event. */
static __always_inline void state__connect_failed(struct trace_event_raw_inet_sock_set_state *ctx,
                                                  struct sock *sk, __u64 skey,
                                                  struct redtap_tcp_sock *e, int os)
{
	int err = BPF_CORE_READ(sk, sk_err);
	struct redtap_tcp_key key = {};
	struct redtap_tcp_counters *c;

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
}

/* A close from a connected state: counted, with the bytes moved since the last pass. */
static __always_inline void state__closed(struct trace_event_raw_inet_sock_set_state *ctx,
                                          struct sock *sk, __u64 skey, struct redtap_tcp_sock *e,
                                          int os)
{
	__u64 rx = sk__rx_bytes(sk);
	__u64 tx = tp__tx_bytes((const struct tcp_sock *)sk, os);
	struct redtap_tcp_key key = {};
	struct redtap_tcp_counters *c;

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

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	int os = ctx->oldstate, ns = ctx->newstate;
	__u64 skey = (__u64)sk;
	struct redtap_tcp_sock *e;

	if (ctx->protocol != REDTAP_IPPROTO_TCP)
		return 0;
	if (ns == TCP_LISTEN) {
		state__listen(ctx, sk, skey);
	} else if (os == TCP_LISTEN && ns == TCP_SYN_RECV) {
		/* A child cloned from its listener (inet_csk_clone_lock): not the listener's close. */
		return 0;
	} else if (os == TCP_LISTEN) {
		struct redtap_tcp_listen_key lk = {.netns = sk__netns(sk), .port = ctx->sport};

		bpf_map_delete_elem(&tcp_sock_map, &skey);
		bpf_map_delete_elem(&tcp_listen_map, &lk);
	} else if (ns == TCP_SYN_SENT) {
		state__syn_sent(skey);
	} else if (ns == TCP_ESTABLISHED) {
		state__established(ctx, sk, skey, os);
	} else if (ns == TCP_CLOSE) {
		e = bpf_map_lookup_elem(&tcp_sock_map, &skey);
		if (os == TCP_SYN_SENT)
			state__connect_failed(ctx, sk, skey, e, os);
		else if (state__connected(os))
			state__closed(ctx, sk, skey, e, os);
		else if (e)
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
		struct redtap_tcp_listen_key lk = {.netns = netns, .port = lport};

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
	struct redtap_tcp_listen_key lk = {.netns = netns, .port = lport};
	struct redtap_tcp_sock *e = bpf_map_lookup_elem(&tcp_sock_map, &skey);

	/* Re-added while a reuseport sibling lives on after one closed; owner unknown (tgid 0)
	 * when the listener is older than the agent. */
	if (!bpf_map_lookup_elem(&tcp_listen_map, &lk)) {
		struct redtap_tcp_listen_owner owner = {};

		if (e) {
			owner.tgid = e->key.tgid;
			__builtin_memcpy(owner.comm, e->key.comm, sizeof(owner.comm));
		}
		if (bpf_map_update_elem(&tcp_listen_map, &lk, &owner, BPF_ANY))
			tcp_stats__drop(REDTAP_TCP_DROP_LISTEN_MAP_FULL);
	}

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
	if (e) {
		e->seen_gen = iter_gen;
		rec.owner_tgid = e->key.tgid;
		__builtin_memcpy(rec.owner_comm, e->key.comm, sizeof(rec.owner_comm));
	}
	if (bpf_seq_write(seq, &rec, sizeof(rec)))
		tcp_stats__drop(REDTAP_TCP_DROP_SEQ_OVERFLOW);
}

/* The socket's entry, made when the iterator sees a connection older than the agent (its
 * bytes count from now on); an outbound one whose owner is unknown is reported to userspace,
 * which looks it up by inode. */
static __always_inline struct redtap_tcp_sock *iter__entry(struct seq_file *seq, struct sock *sk,
                                                           __u64 skey, __u16 lport, __u64 rx,
                                                           __u64 tx)
{
	struct redtap_tcp_sock *e = bpf_map_lookup_elem(&tcp_sock_map, &skey);

	if (!e) {
		struct redtap_tcp_sock v = {};

		key__derive(&v.key, sk__netns(sk), lport);
		if (v.key.dir == REDTAP_TCP_DIR_OUTBOUND)
			v.flags = REDTAP_TCP_SK_UNRESOLVED;
		v.rx_base = rx;
		v.tx_base = tx;
		sock__put(skey, &v);
		e = bpf_map_lookup_elem(&tcp_sock_map, &skey);
		if (!e)
			return NULL;
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
	return e;
}

/* Counts a socket in the live sums of `key` for this pass. Returns 0 when the map is full. */
static __always_inline int iter__live_key(const struct redtap_tcp_key *key, int active)
{
	struct redtap_tcp_live *l = bpf_map_lookup_elem(&tcp_live_map, key);

	if (!l) {
		struct redtap_tcp_live z = {.gen = iter_gen};

		if (bpf_map_update_elem(&tcp_live_map, key, &z, BPF_NOEXIST) == 0)
			l = bpf_map_lookup_elem(&tcp_live_map, key);
		if (!l) {
			tcp_stats__drop(REDTAP_TCP_DROP_LIVE_MAP_FULL);
			return 0;
		}
	}
	if (l->gen != iter_gen) {
		l->gen = iter_gen;
		l->active = 0;
	}
	if (active)
		l->active++;
	return 1;
}

/* Counts the socket in its key's live sums, and in its pool's when it is an outbound
 * connection to a pool port. */
static __always_inline int iter__live(struct redtap_tcp_sock *e, struct sock_common *skc,
                                      int state)
{
	int active = state == TCP_ESTABLISHED || state == TCP_CLOSE_WAIT;

	if (pool_ports && active && e->key.dir == REDTAP_TCP_DIR_OUTBOUND) {
		__u16 dport = bpf_ntohs(skc->skc_dport);

		if (bpf_map_lookup_elem(&tcp_pool_ports, &dport)) {
			struct redtap_tcp_key pk = e->key;

			pk.dir = REDTAP_TCP_DIR_POOL;
			pk.port = dport;
			iter__live_key(&pk, 1);
		}
	}
	return iter__live_key(&e->key, active);
}

/* What moved since the last count goes into the counters now, with an RTT sample when the
 * socket moved data: the socket is locked by the iterator, so its close (which counts the
 * rest) cannot interleave. */
static __always_inline void iter__count(struct redtap_tcp_sock *e, struct tcp_sock *tp,
                                        __u64 rx, __u64 tx)
{
	__u64 drx = rx > e->rx_base ? rx - e->rx_base : 0;
	__u64 dtx = tx > e->tx_base ? tx - e->tx_base : 0;
	__u64 act = tp->bytes_received + tp->bytes_acked;
	int rtt = tp->srtt_us && act != e->rtt_activity;
	struct redtap_tcp_counters *c;

	if (!drx && !dtx && !rtt)
		return;
	c = agg__get(&e->key);
	if (!c)
		return;
	c->bytes_in += drx;
	c->bytes_out += dtx;
	e->rx_base += drx;
	e->tx_base += dtx;
	if (rtt)
		rtt__sample(e, tp, c);
}

SEC("iter/tcp")
int tcp_iter(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct redtap_tcp_sock *e;
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
	e = iter__entry(seq, sk, skey, lport, rx, tx);
	if (e && iter__live(e, skc, state))
		iter__count(e, tp, rx, tx);
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tcp_helpers.bpf.h: what the programs of tcp.bpf.c read from a socket (namespace, bytes
 * each counted once, state), the keys and per-key counters they fold it into, RTT samples,
 * and the rate-limited events. Uses cfg_events_per_sec of tcp.bpf.c, which includes it. */
#pragma once

#define REDTAP_AF_INET     2
#define REDTAP_AF_INET6    10
#define REDTAP_IPPROTO_TCP 6

#define REDTAP_ECONNRESET   104
#define REDTAP_ECONNREFUSED 111
#define REDTAP_ETIMEDOUT    110
#define REDTAP_EHOSTUNREACH 113
#define REDTAP_ENETUNREACH  101
#define REDTAP_EHOSTDOWN    112
#define REDTAP_ENETDOWN     100

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
	struct redtap_tcp_listen_key lk = {.netns = netns, .port = lport};
	struct redtap_tcp_listen_owner *o = bpf_map_lookup_elem(&tcp_listen_map, &lk);

	if (o) {
		key->dir = REDTAP_TCP_DIR_INBOUND;
		key->netns = netns;
		key->port = lport;
		key->tgid = o->tgid;
		__builtin_memcpy(key->comm, o->comm, sizeof(key->comm));
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

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* emit.bpf.h: the records capture.bpf.c sends: connection tracking and its open record
 * (filters applied), data records with their per-endpoint capture cap. Uses the cfg_*
 * tunables of capture.bpf.c, which includes it. */
#pragma once

/* Ring buffer flags: batch wakeups. Per-record wakeups cost the traced syscall 3-8 us
 * (PERF-FLOOR.md 5.2); the reader drains on its own timer and is woken only when the ring
 * passes cfg_wakeup_bytes. */
static __always_inline __u64 rb__flags(void)
{
	return bpf_ringbuf_query(&events_rb, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes
	               ? BPF_RB_FORCE_WAKEUP
	               : BPF_RB_NO_WAKEUP;
}

static __always_inline int conn__passes_filters(const struct redtap_conn_open_event *ev)
{
	if (cfg_comm_include || cfg_comm_exclude) {
		__u8 *v = bpf_map_lookup_elem(&comm_filter_map, ev->comm);
		if (cfg_comm_exclude && v && *v == 2)
			return 0;
		if (cfg_comm_include && !(v && *v == 1))
			return 0;
	}
	if (cfg_port_include || cfg_port_exclude) {
		__u16 lp = ev->lport, rp = ev->rport;
		__u8 *l = bpf_map_lookup_elem(&port_filter_map, &lp);
		__u8 *r = bpf_map_lookup_elem(&port_filter_map, &rp);
		if (cfg_port_exclude && ((l && *l == 2) || (r && *r == 2)))
			return 0;
		if (cfg_port_include && !((l && *l == 1) || (r && *r == 1)))
			return 0;
	}
	return 1;
}

/* Creates the conn_map entry of a new or discovered connection. */
static __always_inline int conn__track(struct redtap_conn_key *key, struct sock *sk, __u8 role,
                                       __u8 source, __u8 tls)
{
	struct redtap_conn_info info = {
	        .gen = bpf_ktime_get_ns(),
	        .sk = (__u64)sk,
	        .state = REDTAP_STATE_UNKNOWN,
	        .role = role,
	        .source = source,
	        .tls = tls,
	};
	if (bpf_map_update_elem(&conn_map, key, &info, BPF_ANY)) {
		stats__drop(REDTAP_DROP_CONN_TABLE_FULL);
		return -1;
	}
	return 0;
}

/* The connection's first bytes were HTTP: apply the filters, then send its open record.
 * Returns 0 when data may flow. */
static __always_inline int conn__open(struct redtap_conn_key *key, struct redtap_conn_info *info)
{
	struct redtap_conn_open_event ev = {};
	ev.hdr.type = REDTAP_EV_CONN_OPEN;
	ev.hdr.version = REDTAP_ABI_VERSION;
	ev.hdr.size = sizeof(ev);
	ev.hdr.ts_ns = bpf_ktime_get_ns();
	ev.id.tgid = key->tgid;
	ev.id.fd = key->fd;
	ev.id.gen = info->gen;
	ev.tid = (__u32)bpf_get_current_pid_tgid();
	ev.role = info->role;
	ev.source = info->source;
	ev.tls = info->tls;
	ev.proto = info->proto;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	sock__endpoints((struct sock *)info->sk, &ev);
	if (!conn__passes_filters(&ev)) {
		info->state = REDTAP_STATE_IGNORED;
		return -1;
	}
	info->state = REDTAP_STATE_HTTP;
	ev.seq = __sync_fetch_and_add(&info->seq, 1);
	if (bpf_ringbuf_output(&events_rb, &ev, sizeof(ev), rb__flags()))
		stats__drop(REDTAP_DROP_RINGBUF_FULL);
	return 0;
}

static __always_inline void data__emit(struct redtap_conn_key *key, struct redtap_conn_info *info,
                                       const struct io_src *src, long ret, __u8 dir, __u8 sys,
                                       __u32 cap)
{
	__u32 zero = 0;
	struct redtap_data_scratch *s = bpf_map_lookup_elem(&data_heap, &zero);
	if (!s)
		return;
	struct redtap_data_event *ev = &s->ev;
	ev->hdr.type = REDTAP_EV_DATA;
	ev->hdr.version = REDTAP_ABI_VERSION;
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->id.tgid = key->tgid;
	ev->id.fd = key->fd;
	ev->id.gen = info->gen;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->len = ret;
	ev->dir = dir;
	ev->syscall = sys;
	ev->flags = 0;
	if (cap > REDTAP_MAX_CAPTURE)
		cap = REDTAP_MAX_CAPTURE;
	__u32 want = ret < cap ? ret : cap;
	__u32 copied = (src->buf || src->iov) ? io__copy(src, want, s) : 0;
	if ((__u64)ret > copied && (src->buf || src->iov))
		stats__drop(REDTAP_DROP_TRUNCATED);
	if (cfg_skip_bodies && !info->cap_shift && info->proto == REDTAP_PROTO_HTTP) {
		__u32 keep = body__skip(copied, ret);
		if (keep < copied)
			copied = keep;
	}
	barrier_var(copied);
	if (copied > REDTAP_MAX_CAPTURE)
		copied = REDTAP_MAX_CAPTURE;
	ev->cap_len = copied;
	/* A database reply larger than the capture: its last bytes too, where its status is. */
	__u32 tail = 0;
	if (info->proto != REDTAP_PROTO_HTTP && src->buf && (__u64)ret > copied) {
		__u64 left = (__u64)ret - copied;
		tail = left < REDTAP_MAX_TAIL ? left : REDTAP_MAX_TAIL;
		barrier_var(tail);
		if (tail > REDTAP_MAX_TAIL)
			tail = REDTAP_MAX_TAIL;
		if (bpf_probe_read_user(&s->buf[copied], tail, (const __u8 *)src->buf + ret - tail))
			tail = 0;
	}
	ev->tail_len = tail;
	__u32 size = copied + tail;
	barrier_var(size);
	if (size > REDTAP_MAX_CAPTURE + REDTAP_MAX_TAIL)
		size = REDTAP_MAX_CAPTURE + REDTAP_MAX_TAIL;
	ev->hdr.size = sizeof(*ev) + size;
	ev->seq = __sync_fetch_and_add(&info->seq, 1);
	/* The fill check reads the positions the reader writes (another CPU's cache line): once
	 * every 32 records per CPU is enough to wake it early under a burst. */
	__u64 flags = (++s->records & 31) ? BPF_RB_NO_WAKEUP : rb__flags();
	if (bpf_ringbuf_output(&events_rb, ev, sizeof(*ev) + size, flags))
		stats__drop(REDTAP_DROP_RINGBUF_FULL);
}

/* Per-endpoint capture: at each request start (request direction, bytes that sniff as a
 * request line), look its first bytes up in endpoint_cap_map; the connection keeps the
 * matching cap (or the default) until the next request start, so the response is covered.
 * Returns the payload cap for this record. A global (separately verified) function: its
 * result is an unknown scalar to the caller, so the iovec copy loop is verified once
 * instead of once per path through this lookup. */
#define REDTAP_EP_EGRESS 1 /* flags of endpoint__cap */
#define REDTAP_EP_IOV    2 /* `ptr` is an iovec array (with at least one entry) */
__noinline int endpoint__cap(struct redtap_conn_info *info, __u64 ptr, __u64 ret, __u32 flags)
{
	if (!info)
		return cfg_capture_cap;
	int request_dir = (info->role == REDTAP_ROLE_CLIENT) == !!(flags & REDTAP_EP_EGRESS);
	if (request_dir && ptr) {
		struct redtap_endpoint_key k = {};
		const void *p = (const void *)ptr;
		__u64 n = ret;
		if (flags & REDTAP_EP_IOV) {
			struct redtap_iovec v = {};
			if (bpf_probe_read_user(&v, sizeof(v), (const void *)ptr))
				goto out;
			p = v.base;
			if (n > v.len)
				n = v.len;
		}
		if (n > REDTAP_ENDPOINT_PREFIX_LEN)
			n = REDTAP_ENDPOINT_PREFIX_LEN;
		__u32 len = n;
		barrier_var(len);
		if (!p || len < 4 || len > REDTAP_ENDPOINT_PREFIX_LEN ||
		    bpf_probe_read_user(k.data, len, p))
			goto out;
		/* Body bytes leave the current request's cap alone. */
		if (sniff__http(k.data, len < REDTAP_SNIFF_LEN ? len : REDTAP_SNIFF_LEN) ==
		    REDTAP_SNIFF_REQUEST) {
			k.prefixlen = len * 8;
			__u8 *shift = bpf_map_lookup_elem(&endpoint_cap_map, &k);
			info->cap_shift = shift ? *shift : 0;
		}
	}
out:;
	__u32 sh = info->cap_shift;
	if (sh >= 6 && sh <= 13)
		return 1u << sh;
	return cfg_capture_cap;
}

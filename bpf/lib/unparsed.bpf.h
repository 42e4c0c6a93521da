/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* unparsed.bpf.h: request bytes that are not HTTP (or not seen) wait for the first
 * answer: an HTTP status line opens the connection with one length-only record for them
 * (REDTAP_DATA_F_UNPARSED); a TLS answer can stand for an SSL_read in progress at attach. */
#pragma once

/* The first request bytes of an accepted or connected socket were not HTTP (a scanner, a
 * broken client, a smuggled body): keep their length and time until the first answer. */
static __always_inline void unparsed__start(struct redtap_conn_info *info, long ret)
{
	info->state = REDTAP_STATE_UNPARSED;
	info->unparsed_ts = bpf_ktime_get_ns();
	info->unparsed_len = ret > 0xffffffffL ? 0xffffffff : ret;
}

/* One record standing for the unparsed request bytes: their length and first time only. */
static __always_inline void unparsed__emit(struct redtap_conn_key *key,
                                           struct redtap_conn_info *info, __u8 flags)
{
	struct redtap_data_event ev = {};
	ev.hdr.type = REDTAP_EV_DATA;
	ev.hdr.version = REDTAP_ABI_VERSION;
	ev.hdr.size = sizeof(ev);
	ev.hdr.ts_ns = info->unparsed_ts;
	ev.id.tgid = key->tgid;
	ev.id.fd = key->fd;
	ev.id.gen = info->gen;
	ev.tid = (__u32)bpf_get_current_pid_tgid();
	ev.len = info->unparsed_len;
	ev.dir = info->role == REDTAP_ROLE_CLIENT ? REDTAP_DIR_EGRESS : REDTAP_DIR_INGRESS;
	ev.flags = REDTAP_DATA_F_UNPARSED | flags;
	ev.seq = __sync_fetch_and_add(&info->seq, 1);
	if (bpf_ringbuf_output(&events_rb, &ev, sizeof(ev), rb__flags()))
		stats__drop(REDTAP_DROP_RINGBUF_FULL);
}

/* Data on a REDTAP_STATE_UNPARSED connection. More request bytes are counted; the first
 * answer decides: an HTTP status line opens the connection (returns 0: the caller opens it,
 * then emits unparsed__emit and the answer's data), and anything else makes it IGNORED.
 * Returns 1 when nothing is to be emitted. */
static __always_inline int unparsed__on_data(struct redtap_conn_info *info,
                                             const struct io_src *src, long ret, __u8 dir)
{
	if ((info->role == REDTAP_ROLE_CLIENT) == (dir == REDTAP_DIR_EGRESS)) {
		__u64 n = (__u64)info->unparsed_len + ret;
		info->unparsed_len = n > 0xffffffffULL ? 0xffffffff : n;
		return 1;
	}
	__u8 head[REDTAP_SNIFF_LEN] = {};
	__u32 n = (src->buf || src->iov) ? io__peek(src, ret, head) : 0;
	if (sniff__http(head, n) != REDTAP_SNIFF_RESPONSE) {
		info->state = REDTAP_STATE_IGNORED;
		return 1;
	}
	return 0;
}

/* A TLS connection discovered by its first answer (SSL_write): if this thread read TLS
 * records from that socket with no SSL call seen, they were the request of an SSL_read that
 * was in progress when the uprobes were attached. Report the answer against them. */
static __always_inline void tls__missed_request(struct redtap_conn_key *key,
                                                struct redtap_conn_info *info, __u64 pid_tgid)
{
	struct redtap_tls_missed_read *m = bpf_map_lookup_elem(&tls_missed_read_map, &pid_tgid);
	if (!m)
		return;
	if (m->fd == (__s32)key->fd) {
		info->unparsed_ts = m->ts;
		info->unparsed_len = m->len;
		unparsed__emit(key, info, REDTAP_DATA_F_MISSED);
		stats__drop(REDTAP_DROP_TLS_MISSED_READ);
	}
	bpf_map_delete_elem(&tls_missed_read_map, &pid_tgid);
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* db_hint.bpf.h: the database port hints of a socket (db_port_map, filled from db.ports). */
#pragma once

/* The database protocol configured for one of the ports of socket `sk` (0 for none):
 * proto | which << 8 (REDTAP_DB_HINT_LOCAL: this process is the server). `role`: look only at
 * the server's port of a connection whose role is known (REDTAP_ROLE_SERVER: local). */
__noinline __u32 db__port_hint(__u64 sk, __u32 role)
{
	struct sock *s = (struct sock *)sk;
	if (!s)
		return 0;
	__u16 lport = BPF_CORE_READ(s, __sk_common.skc_num);
	__u16 rport = bpf_ntohs(BPF_CORE_READ(s, __sk_common.skc_dport));
	if (role != REDTAP_ROLE_CLIENT) {
		__u8 *v = bpf_map_lookup_elem(&db_port_map, &lport);
		if (v && *v && *v < REDTAP_PROTO_MAX)
			return *v | REDTAP_DB_HINT_LOCAL << 8;
	}
	if (role != REDTAP_ROLE_SERVER) {
		__u8 *v = bpf_map_lookup_elem(&db_port_map, &rport);
		if (v && *v && *v < REDTAP_PROTO_MAX)
			return *v | REDTAP_DB_HINT_REMOTE << 8;
	}
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* http_sniff.bpf.h: does a buffer start like an HTTP/1.x message? Pure logic on 8 bytes,
 * so that TLS, binary protocols, files and pipes never reach userspace. */

#define REDTAP_SNIFF_LEN 16
#pragma once

enum redtap_sniff {
	REDTAP_SNIFF_NONE = 0,
	REDTAP_SNIFF_REQUEST = 1,
	REDTAP_SNIFF_RESPONSE = 2,
};

static __always_inline int sniff__is_upper(__u8 c)
{
	return c >= 'A' && c <= 'Z';
}

/* `b` holds the first `n` (<= REDTAP_SNIFF_LEN) bytes of a message. A response starts with "HTTP/1.";
 * a request with an upper-case method token (letters, '-', '_') of 3..15 chars then a space. */
static __always_inline int sniff__http(const __u8 *b, __u32 n)
{
	if (n >= 7 && b[0] == 'H' && b[1] == 'T' && b[2] == 'T' && b[3] == 'P' && b[4] == '/' &&
	    b[5] == '1' && b[6] == '.')
		return REDTAP_SNIFF_RESPONSE;
	if (n < 4 || !sniff__is_upper(b[0]))
		return REDTAP_SNIFF_NONE;
	/* bounded loop: the verifier (>= 5.3) walks it; no unroll needed */
	for (__u32 i = 1; i < REDTAP_SNIFF_LEN; i++) {
		if (i >= n)
			return REDTAP_SNIFF_NONE;
		__u8 c = b[i];
		if (c == ' ')
			return i >= 3 ? REDTAP_SNIFF_REQUEST : REDTAP_SNIFF_NONE;
		if (!sniff__is_upper(c) && c != '-' && c != '_')
			return REDTAP_SNIFF_NONE;
	}
	return REDTAP_SNIFF_NONE;
}

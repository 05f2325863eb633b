/*
 * proxyproto.h - PROXY protocol v1 (text) and v2 (binary) headers, as
 * specified in HAProxy's doc/proxy-protocol.txt.
 *
 * Pure functions: no I/O, no allocation, no global state; any thread.
 * The daemon reads a header from a trusted client before relaying, and
 * writes one to an upstream before the first relayed byte.
 */
#ifndef ZCRELAY_PROXYPROTO_H
#define ZCRELAY_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest v1 line the spec allows, CRLF included. */
#define ZCR_PP_V1_MAX 107
/* The fixed part of a v2 header: signature, ver_cmd, fam, len. */
#define ZCR_PP_V2_HDR 16
/*
 * The longest header zcr_pp_parse() accepts, and so the most a reader
 * must buffer before it has an answer. v1 needs 107 bytes. v2 may declare
 * up to 65535 bytes after its fixed part; we take 520: the largest address
 * block (216, AF_UNIX) plus 304 bytes of TLVs, more than the TLVs HAProxy,
 * AWS NLB or GCP send. A longer v2 header is refused with -EMSGSIZE.
 */
#define ZCR_PP_MAX 536

/* What a PROXY header says about the connection. */
struct zcr_pp_info {
	/*
	 * 1: the header carries no addresses (v1 UNKNOWN, v2 LOCAL, v2
	 * PROXY with AF_UNSPEC): use the real peer. src/dst are then
	 * zeroed and their lengths 0.
	 */
	int local;
	/* AF_INET, AF_INET6 or AF_UNIX; both of the same family. */
	struct sockaddr_storage src, dst;
	socklen_t src_len, dst_len;
};

/*
 * zcr_pp_parse - parse a PROXY header (v1 or v2) at the start of
 * buf[0..len). Never reads past len; buf may be NULL when len is 0.
 *
 * Returns:
 *  > 0         the header's length: a complete valid header is there and
 *              *out describes it; the relayed data starts at buf[ret].
 *  0           buf holds a proper prefix of a valid header: read more.
 *              Never returned once len >= ZCR_PP_MAX.
 *  -EPROTO     not a PROXY header, or a malformed one. Given as soon as
 *              the bytes so far cannot start a valid header (a stream
 *              that does not begin with "PROXY " or the v2 signature is
 *              rejected at its first differing byte).
 *  -EMSGSIZE   a v2 header longer than ZCR_PP_MAX.
 *  -EINVAL     out is NULL, or buf is NULL with len > 0.
 * *out is zeroed first and meaningful only when ret > 0.
 *
 * v1 is strict: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" with single
 * spaces, addresses inet_pton() accepts for the declared family, ports
 * 0-65535 in decimal without sign or leading zeros, at most 107 bytes.
 * "PROXY UNKNOWN" may be followed by " " and anything up to CRLF (the
 * spec says to ignore it) except CR, LF and NUL; it gives local = 1.
 *
 * v2: version 2; command LOCAL (local = 1; family, address block and
 * TLVs are skipped unread, as the spec asks) or PROXY with
 * AF_INET/AF_INET6/AF_UNIX over STREAM, or AF_UNSPEC (local = 1). The
 * declared length must hold the family's address block; what follows it
 * must be a well-formed TLV chain (contents are not interpreted). AF_UNIX
 * paths are returned as struct sockaddr_un: a path name up to its first
 * NUL (len = sizeof(struct sockaddr_un)), an abstract name (first byte
 * NUL) up to its next NUL (len = offsetof(sun_path) + 1 + name length),
 * an all-zero block as unnamed (len = offsetof(sun_path)). Undefined
 * commands, versions, families and transports, and DGRAM, are -EPROTO.
 */
int zcr_pp_parse(const uint8_t *buf, size_t len, struct zcr_pp_info *out);

/* zcr_pp_build() flag: send two AF_UNIX addresses as such in v2. */
#define ZCR_PP_UNIX 0x1u

/*
 * zcr_pp_build - write a PROXY header of version 1 or 2 for a connection
 * from src to dst into buf (cap bytes; not NUL-terminated).
 *
 * src/dst are read for their given lengths only; NULL or a length of 0
 * means unknown. AF_INET with AF_INET6 is sent as IPv6, the IPv4 side
 * as ::ffff:a.b.c.d (as HAProxy does). Anything the version cannot carry
 * (a Unix socket in v1, Unix with IP, an unknown family, an address too
 * short for its family) is sent as "PROXY UNKNOWN\r\n" (v1) or a v2
 * LOCAL header with AF_UNSPEC and no address block (HAProxy's choice),
 * so the upstream uses the real connection's addresses.
 * Two AF_UNIX addresses are sent as v2 LOCAL too, as HAProxy itself
 * does: HAProxy 2.6 resets a connection whose v2 header carries the
 * AF_UNIX family. Only with ZCR_PP_UNIX in flags does v2 send both as
 * AF_UNIX blocks (path names, abstract names, unnamed as zeros); v1
 * ignores the flag. No TLVs are written.
 *
 * Returns the header length (at most ZCR_PP_MAX), -ENOSPC if cap is too
 * small (buf is then unspecified), -EINVAL for another version, an
 * unknown flag or a NULL buf.
 */
int zcr_pp_build(int version, unsigned flags, const struct sockaddr *src,
                 socklen_t src_len, const struct sockaddr *dst,
                 socklen_t dst_len, uint8_t *buf, size_t cap);

#endif

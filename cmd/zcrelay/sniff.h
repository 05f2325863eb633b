/*
 * sniff.h - what a client says first, read without consuming it: a TLS
 * ClientHello (server name, ALPN), an SSH identification string, an
 * HTTP/1.x request line and its Host header. The daemon peeks at the
 * client's first bytes with MSG_PEEK and routes on the answer; the bytes
 * stay in the socket and reach the upstream unchanged.
 *
 * Pure functions: no I/O, no allocation, no global state; any thread.
 */
#ifndef ZCRELAY_SNIFF_H
#define ZCRELAY_SNIFF_H

#include <stddef.h>
#include <stdint.h>

/*
 * The most bytes of a client's stream zcr_sniff() looks at: a ClientHello
 * of 16 KiB (post-quantum key shares make browsers' hellos pass 1,500
 * bytes) in as many TLS records as it takes, or an HTTP request head of
 * 16 KiB. Past it the client counts as unknown.
 */
#define ZCR_SNIFF_MAX  20480
#define ZCR_SNIFF_NAME 256 /* sni and host, with the NUL */
#define ZCR_SNIFF_ALPN 256 /* the offered ALPN list, wire form */

enum zcr_proto {
	ZCR_PROTO_UNKNOWN = 0, /* none of the below, or cut short */
	ZCR_PROTO_TLS,
	ZCR_PROTO_SSH,
	ZCR_PROTO_HTTP,
};

struct zcr_sniff {
	int proto; /* enum zcr_proto */
	/* TLS: the server_name (host_name), lower case, without a trailing
	 * dot; "" when the hello has none or one that is not a DNS name. */
	char sni[ZCR_SNIFF_NAME];
	/* TLS: the protocol names offered, as on the wire (a length byte
	 * and the name, repeated), whole names only; alpn_len 0: none. */
	uint8_t alpn[ZCR_SNIFF_ALPN];
	unsigned alpn_len;
	/* HTTP: the Host header, lower case, without port and trailing dot;
	 * "" without one. */
	char host[ZCR_SNIFF_NAME];
};

/*
 * zcr_sniff - look at the first len bytes of a client's stream.
 *
 * Returns:
 *  0     decided: *out says what the client speaks (ZCR_PROTO_UNKNOWN
 *        for anything else: garbage, or a TLS record that holds no
 *        ClientHello) and what it asked for.
 *  > 0   buf is a proper prefix of something the sniffers read: a
 *        well-formed stream needs at least that many bytes in all for
 *        the answer (always > len; a malformed one may be decided
 *        sooner). Never returned when len >= ZCR_SNIFF_MAX.
 *  -EINVAL  out is NULL, or buf is NULL with len > 0.
 * With final set (no more bytes will come: timeout, EOF, buffer full)
 * a proper prefix is decided as ZCR_PROTO_UNKNOWN: a truncated hello is
 * never routed on. *out is zeroed first.
 *
 * TLS: records of type handshake (22), version 3.x, at most 16 KiB + 2
 * KiB each, carrying a ClientHello that may span several records. A
 * malformed hello is TLS without sni or alpn. ECH: the outer hello's
 * name is what is read. SSH: "SSH-". HTTP: "METHOD SP target SP
 * HTTP/1.x" (CRLF or LF), decided at its Host header or at the end of
 * the head.
 */
int zcr_sniff(const uint8_t *buf, size_t len, int final, struct zcr_sniff *out);

/* Is name (len bytes) among the ALPN names s offers? 1 or 0. */
int zcr_sniff_has_alpn(const struct zcr_sniff *s, const char *name);

/*
 * zcr_sniff_alpn_str - the offered ALPN names as "h2,http/1.1" into buf
 * (size bytes, NUL-terminated, truncated if needed); bytes outside
 * printable ASCII and ',' are written as '?'. Returns buf.
 */
char *zcr_sniff_alpn_str(const struct zcr_sniff *s, char *buf, size_t size);

/* "tls", "ssh", "http", "unknown". */
const char *zcr_proto_name(int proto);

#endif

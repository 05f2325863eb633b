/*
 * sniff.c - see sniff.h. Each sniffer answers for a prefix of the
 * stream: NOT_ME (the bytes cannot start its protocol), 0 (decided, out
 * filled) or the number of bytes it needs at least.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sniff.h"

#define NOT_ME      (-1)
#define TLS_HS      22 /* record type: handshake */
#define TLS_HELLO   1  /* handshake type: client_hello */
#define TLS_REC_HDR 5
#define TLS_REC_MAX (16384 + 2048)
#define EXT_SNI     0
#define EXT_ALPN    16

/* ------------------------------------------------------------------ */
/* Names                                                                */

/* A DNS name as routes compare it: lower case, no trailing dot, letters,
 * digits, '-', '_' and '.' only, 1-253 bytes. 0, or -EPROTO (dst is
 * ""). */
static int name_set(char *dst, const uint8_t *src, size_t n)
{
	size_t i;

	dst[0] = '\0';
	if (n && src[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -EPROTO;
	for (i = 0; i < n; i++) {
		unsigned char c = src[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.')) {
			dst[0] = '\0';
			return -EPROTO;
		}
		dst[i] = (char)c;
	}
	dst[n] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* TLS ClientHello                                                      */

/* A bounded reader over a byte range. */
struct rd {
	const uint8_t *p;
	size_t n;
};

static int rd_skip(struct rd *r, size_t n)
{
	if (r->n < n)
		return -EPROTO;
	r->p += n;
	r->n -= n;
	return 0;
}

/* An unsigned big-endian integer of w bytes (1-3). */
static int rd_uint(struct rd *r, size_t w, size_t *v)
{
	size_t i;

	if (r->n < w)
		return -EPROTO;
	for (*v = 0, i = 0; i < w; i++)
		*v = *v << 8 | r->p[i];
	return rd_skip(r, w);
}

/* A vector with a w-byte length prefix, as a reader of its own. */
static int rd_vec(struct rd *r, size_t w, struct rd *sub)
{
	size_t n;

	if (rd_uint(r, w, &n) || r->n < n)
		return -EPROTO;
	sub->p = r->p;
	sub->n = n;
	return rd_skip(r, n);
}

/* server_name: the first host_name entry. */
static int tls_sni(struct rd e, struct zcr_sniff *out)
{
	struct rd list, name;
	size_t type;

	if (rd_vec(&e, 2, &list) || e.n)
		return -EPROTO;
	while (list.n) {
		if (rd_uint(&list, 1, &type) || rd_vec(&list, 2, &name))
			return -EPROTO;
		if (type == 0 && !out->sni[0])
			name_set(out->sni, name.p, name.n);
	}
	return 0;
}

/* application_layer_protocol_negotiation: the names that fit. */
static int tls_alpn(struct rd e, struct zcr_sniff *out)
{
	struct rd list, name;

	if (rd_vec(&e, 2, &list) || e.n)
		return -EPROTO;
	while (list.n) {
		if (rd_vec(&list, 1, &name) || name.n == 0)
			return -EPROTO;
		if (out->alpn_len + 1 + name.n > sizeof(out->alpn))
			continue;
		out->alpn[out->alpn_len++] = (uint8_t)name.n;
		memcpy(out->alpn + out->alpn_len, name.p, name.n);
		out->alpn_len += (unsigned)name.n;
	}
	return 0;
}

/* The body of a ClientHello; 0, or -EPROTO when malformed. */
static int tls_hello(struct rd r, struct zcr_sniff *out)
{
	struct rd v, exts, e;
	size_t type;

	if (rd_skip(&r, 2 + 32) || rd_vec(&r, 1, &v) || v.n > 32 ||
	    rd_vec(&r, 2, &v) || v.n == 0 || v.n % 2 || rd_vec(&r, 1, &v) ||
	    v.n == 0)
		return -EPROTO;
	if (r.n == 0)
		return 0; /* no extensions */
	if (rd_vec(&r, 2, &exts) || r.n)
		return -EPROTO;
	while (exts.n) {
		if (rd_uint(&exts, 2, &type) || rd_vec(&exts, 2, &e))
			return -EPROTO;
		if (type == EXT_SNI && tls_sni(e, out))
			return -EPROTO;
		if (type == EXT_ALPN && tls_alpn(e, out))
			return -EPROTO;
	}
	return 0;
}

/* Is the record header at b (n bytes of it, n < 5 allowed) possible? */
static int tls_rec_ok(const uint8_t *b, size_t n)
{
	size_t rlen;

	if (n >= 1 && b[0] != TLS_HS)
		return 0;
	if (n >= 2 && b[1] != 3)
		return 0;
	if (n >= 3 && b[2] > 4)
		return 0;
	if (n < TLS_REC_HDR)
		return 1;
	rlen = (size_t)b[3] << 8 | b[4];
	return rlen > 0 && rlen <= TLS_REC_MAX;
}

/* The handshake bytes of the records in buf into hs (*hn of them).
 * NOT_ME when the first record header cannot be TLS; -2 when a later
 * one is broken; else 0. */
static long tls_gather(const uint8_t *buf, size_t len, uint8_t *hs, size_t *hn)
{
	size_t off = 0, rlen, take;

	*hn = 0;
	while (off < len) {
		if (!tls_rec_ok(buf + off, len - off))
			return off == 0 ? NOT_ME : -2;
		if (len - off < TLS_REC_HDR)
			return 0;
		rlen = (size_t)buf[off + 3] << 8 | buf[off + 4];
		take = len - off - TLS_REC_HDR;
		take = take < rlen ? take : rlen;
		memcpy(hs + *hn, buf + off + TLS_REC_HDR, take);
		*hn += take;
		off += TLS_REC_HDR + rlen;
	}
	return 0;
}

/*
 * Decided in stream order, so that more bytes never change an answer:
 * the handshake header first (not a hello: unknown; too big: unknown),
 * then a complete hello (parsed whatever follows it), and only when the
 * hello still needs bytes a broken record after it (TLS, no names).
 */
static long tls_sniff(const uint8_t *buf, size_t len, struct zcr_sniff *out)
{
	uint8_t hs[ZCR_SNIFF_MAX];
	size_t hn, mlen = 0;
	long rc = tls_gather(buf, len, hs, &hn);
	struct rd r = {hs + 4, 0};

	if (rc == NOT_ME)
		return NOT_ME;
	if (hn >= 1 && hs[0] != TLS_HELLO)
		return 0; /* not a ClientHello: unknown */
	if (hn >= 4)
		mlen = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
	if (4 + mlen > ZCR_SNIFF_MAX)
		return 0; /* too big to read: unknown */
	out->proto = ZCR_PROTO_TLS;
	if (hn >= 4 && hn >= 4 + mlen) {
		r.n = mlen;
		if (tls_hello(r, out)) {
			out->sni[0] = '\0';
			out->alpn_len = 0;
		}
		return 0;
	}
	if (rc == -2)
		return 0; /* a broken record: TLS, nothing to route on */
	out->proto = ZCR_PROTO_UNKNOWN;
	if (hn < 4)
		return (long)len + (long)(4 - hn);
	return (long)len + (long)(4 + mlen - hn);
}

/* ------------------------------------------------------------------ */
/* SSH                                                                  */

static long ssh_sniff(const uint8_t *buf, size_t len, struct zcr_sniff *out)
{
	static const char id[] = "SSH-";
	size_t n = len < 4 ? len : 4;

	if (memcmp(buf, id, n) != 0)
		return NOT_ME;
	if (len < 4)
		return 4;
	out->proto = ZCR_PROTO_SSH;
	return 0;
}

/* ------------------------------------------------------------------ */
/* HTTP/1.x                                                             */

/* The line at buf[off..len): its end (index of LF), or -1 if none yet. */
static long line_end(const uint8_t *buf, size_t len, size_t off)
{
	const uint8_t *lf = memchr(buf + off, '\n', len - off);

	return lf ? (long)(lf - buf) : -1;
}

/* "METHOD SP target SP HTTP/1.d" in buf[0..end) (CR before end
 * allowed), or a proper prefix of one when end is len (no LF yet).
 * Returns 1 (a request line), 0 (a prefix), NOT_ME. */
static int http_line(const uint8_t *b, size_t end, int complete)
{
	static const char ver[] = "HTTP/1.";
	size_t i = 0, m, t;

	while (i < end && i <= 16 && b[i] >= 'A' && b[i] <= 'Z')
		i++;
	if (i > 16)
		return NOT_ME; /* a method of at most 16 letters */
	if (i == end)
		return complete ? NOT_ME : 0;
	if (i == 0 || b[i] != ' ')
		return NOT_ME;
	m = ++i;
	while (i < end && b[i] > ' ' && b[i] < 0x7f)
		i++;
	if (i == end)
		return complete ? NOT_ME : 0;
	if (i == m || b[i] != ' ')
		return NOT_ME;
	t = ++i;
	for (; i < end && i - t < sizeof(ver) - 1; i++)
		if (b[i] != (uint8_t)ver[i - t])
			return NOT_ME;
	if (i < end && (b[i] < '0' || b[i] > '9'))
		return NOT_ME;
	if (!complete)
		return 0;
	if (i == end)
		return NOT_ME;
	if (++i == end)
		return 1; /* a bare LF */
	return b[i] == '\r' && i + 1 == end ? 1 : NOT_ME;
}

/* A Host value (b[0..n)) into out->host: blanks trimmed, port and
 * trailing dot dropped, lower case. */
static void http_host(const uint8_t *b, size_t n, struct zcr_sniff *out)
{
	size_t i;

	while (n && (b[0] == ' ' || b[0] == '\t'))
		b++, n--;
	while (n && (b[n - 1] == ' ' || b[n - 1] == '\t'))
		n--;
	for (i = n; i > 0 && b[i - 1] >= '0' && b[i - 1] <= '9'; i--)
		;
	if (i > 0 && i < n && b[i - 1] == ':')
		n = i - 1;
	else if (i > 0 && i == n && b[i - 1] == ':')
		n = i - 1; /* "host:" with an empty port */
	name_set(out->host, b, n);
}

/* Is the header line b[0..n) "Host:"? */
static int is_host(const uint8_t *b, size_t n)
{
	return n >= 5 && strncasecmp((const char *)b, "host:", 5) == 0;
}

static long http_sniff(const uint8_t *buf, size_t len, struct zcr_sniff *out)
{
	long e = line_end(buf, len, 0);
	size_t off, n;
	int rc;

	rc = http_line(buf, e < 0 ? len : (size_t)e, e >= 0);
	if (rc == NOT_ME)
		return NOT_ME;
	if (e < 0)
		return (long)len + 1;
	out->proto = ZCR_PROTO_HTTP;
	for (off = (size_t)e + 1; off < len; off = (size_t)e + 1) {
		e = line_end(buf, len, off);
		if (e < 0)
			break;
		n = (size_t)e - off;
		if (n && buf[off + n - 1] == '\r')
			n--;
		if (n == 0)
			return 0; /* the end of the head, no Host */
		if (is_host(buf + off, n)) {
			http_host(buf + off + 5, n - 5, out);
			return 0;
		}
	}
	return (long)len + 1;
}

/* ------------------------------------------------------------------ */

int zcr_sniff(const uint8_t *buf, size_t len, int final, struct zcr_sniff *out)
{
	long (*const fn[])(const uint8_t *, size_t, struct zcr_sniff *) = {
	        tls_sniff, ssh_sniff, http_sniff};
	long need = 0, rc;
	size_t i;

	if (!out || (!buf && len))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return final ? 0 : 1;
	if (len > ZCR_SNIFF_MAX)
		len = ZCR_SNIFF_MAX;
	for (i = 0; i < sizeof(fn) / sizeof(fn[0]); i++) {
		memset(out, 0, sizeof(*out));
		rc = fn[i](buf, len, out);
		if (rc == 0)
			return 0;
		if (rc > 0 && (need == 0 || rc < need))
			need = rc;
	}
	memset(out, 0, sizeof(*out));
	if (need == 0 || final || len >= ZCR_SNIFF_MAX)
		return 0;
	return (int)(need > ZCR_SNIFF_MAX ? ZCR_SNIFF_MAX : need);
}

int zcr_sniff_has_alpn(const struct zcr_sniff *s, const char *name)
{
	size_t n = strlen(name), i = 0;

	while (i < s->alpn_len) {
		size_t k = s->alpn[i];

		if (k == n && memcmp(s->alpn + i + 1, name, n) == 0)
			return 1;
		i += 1 + k;
	}
	return 0;
}

char *zcr_sniff_alpn_str(const struct zcr_sniff *s, char *buf, size_t size)
{
	size_t i = 0, o = 0, k, j;

	if (size == 0)
		return buf;
	while (i < s->alpn_len) {
		k = s->alpn[i++];
		if (o && o + 1 < size)
			buf[o++] = ',';
		for (j = 0; j < k && o + 1 < size; j++) {
			uint8_t c = s->alpn[i + j];

			buf[o++] =
			        c > ' ' && c < 0x7f && c != ',' ? (char)c : '?';
		}
		i += k;
	}
	buf[o] = '\0';
	return buf;
}

const char *zcr_proto_name(int proto)
{
	static const char *const n[] = {"unknown", "tls", "ssh", "http"};

	return proto >= 0 && proto <= ZCR_PROTO_HTTP ? n[proto] : "unknown";
}

/*
 * http.c - a strict parser for HTTP/1.x request heads (the admin
 * server's input), in the spirit of picohttpparser: one pass over the
 * bytes received so far, never reading past them, saying "more" until
 * the empty line that ends the head arrives.
 *
 * Besides the request line it keeps what the admin server acts on:
 * Content-Length, Connection (keep-alive or close), and a Bearer token
 * in Authorization. Transfer-Encoding is refused: the admin API's
 * bodies are small and sent with a length.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* Step results besides -EPROTO. */
#define HP_MORE 0 /* the input ended before the step could finish */
#define HP_OK   1
#define HP_END  2 /* the empty line that ends the head */

/* A cursor over the input. */
struct hp {
	const unsigned char *b;
	size_t n, i;
};

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* CRLF or a bare LF. */
static int hp_eol(struct hp *p)
{
	if (p->i == p->n)
		return HP_MORE;
	if (p->b[p->i] == '\r') {
		if (++p->i == p->n)
			return HP_MORE;
	}
	if (p->b[p->i] != '\n')
		return -EPROTO;
	p->i++;
	return HP_OK;
}

/* Copies the run of bytes accepted by ok into out (cap bytes with the
 * NUL), which must then end at a space, skipped. */
static int hp_word(struct hp *p, int (*ok)(unsigned char), char *out,
                   size_t cap)
{
	size_t len = 0;

	while (p->i < p->n && ok(p->b[p->i])) {
		if (len + 1 == cap)
			return -EPROTO;
		out[len++] = (char)p->b[p->i++];
	}
	if (p->i == p->n)
		return HP_MORE;
	if (len == 0 || p->b[p->i] != ' ')
		return -EPROTO;
	out[len] = '\0';
	p->i++;
	return HP_OK;
}

/* Visible ASCII: what a request target may hold. */
static int is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

static int hp_path(struct hp *p, struct zcr_http_req *req)
{
	if (p->i == p->n)
		return HP_MORE;
	if (p->b[p->i] != '/')
		return -EPROTO;
	return hp_word(p, is_vchar, req->path, sizeof(req->path));
}

static int hp_version(struct hp *p, struct zcr_http_req *req)
{
	static const char v[] = "HTTP/1.";
	size_t k;

	for (k = 0; k < sizeof(v) - 1; k++, p->i++) {
		if (p->i == p->n)
			return HP_MORE;
		if (p->b[p->i] != (unsigned char)v[k])
			return -EPROTO;
	}
	if (p->i == p->n)
		return HP_MORE;
	if (p->b[p->i] != '0' && p->b[p->i] != '1')
		return -EPROTO;
	req->minor = p->b[p->i++] - '0';
	return hp_eol(p);
}

static int hp_request_line(struct hp *p, struct zcr_http_req *req)
{
	int rc;

	rc = hp_word(p, is_tchar, req->method, sizeof(req->method));
	if (rc == HP_OK)
		rc = hp_path(p, req);
	if (rc == HP_OK)
		rc = hp_version(p, req);
	return rc;
}

/* A header field of the head, found by hp_header. */
struct hfield {
	const char *name, *val;
	size_t nlen, vlen;
};

static int name_is(const struct hfield *f, const char *want)
{
	return f->nlen == strlen(want) &&
	       strncasecmp(f->name, want, f->nlen) == 0;
}

/* Does the comma-separated list v[0..n) hold the token tok? */
static int has_token(const char *v, size_t n, const char *tok)
{
	size_t i = 0, s, e, tl = strlen(tok);

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return 1;
	}
	return 0;
}

/* Content-Length: 1-9 digits; a second one must say the same. */
static int take_length(const struct hfield *f, struct zcr_http_req *req)
{
	long long v = 0;
	size_t i;

	if (f->vlen == 0 || f->vlen > 9)
		return -EPROTO;
	for (i = 0; i < f->vlen; i++) {
		if (f->val[i] < '0' || f->val[i] > '9')
			return -EPROTO;
		v = v * 10 + (f->val[i] - '0');
	}
	if (req->clen >= 0 && req->clen != v)
		return -EPROTO;
	req->clen = v;
	return HP_OK;
}

/* Authorization: Bearer TOKEN (the scheme is case-insensitive). */
static int take_auth(const struct hfield *f, struct zcr_http_req *req)
{
	size_t n;

	if (f->vlen < 7 || strncasecmp(f->val, "Bearer ", 7) != 0)
		return HP_OK;
	n = f->vlen - 7;
	if (n >= sizeof(req->bearer))
		return -EPROTO;
	memcpy(req->bearer, f->val + 7, n);
	req->bearer[n] = '\0';
	return HP_OK;
}

static int hp_field(const struct hfield *f, struct zcr_http_req *req)
{
	if (name_is(f, "content-length"))
		return take_length(f, req);
	if (name_is(f, "transfer-encoding"))
		return -EPROTO;
	if (name_is(f, "authorization"))
		return take_auth(f, req);
	if (name_is(f, "connection")) {
		if (has_token(f->val, f->vlen, "close"))
			req->conn_close = 1;
		if (has_token(f->val, f->vlen, "keep-alive"))
			req->conn_keep = 1;
	}
	return HP_OK;
}

/* One "name:value" line, or the empty line (HP_END). The value may hold
 * HTAB, SP, visible ASCII and obs-text (bytes >= 0x80). */
static int hp_header(struct hp *p, struct zcr_http_req *req)
{
	struct hfield f;
	size_t start;
	int rc;

	if (p->i == p->n)
		return HP_MORE;
	if (p->b[p->i] == '\r' || p->b[p->i] == '\n') {
		rc = hp_eol(p);
		return rc == HP_OK ? HP_END : rc;
	}
	start = p->i;
	while (p->i < p->n && is_tchar(p->b[p->i]))
		p->i++;
	if (p->i == p->n)
		return HP_MORE;
	if (p->i == start || p->b[p->i] != ':')
		return -EPROTO;
	f.name = (const char *)p->b + start;
	f.nlen = p->i - start;
	p->i++;
	while (p->i < p->n && (p->b[p->i] == ' ' || p->b[p->i] == '\t'))
		p->i++;
	start = p->i;
	while (p->i < p->n && (p->b[p->i] == '\t' ||
	                       (p->b[p->i] >= 0x20 && p->b[p->i] != 0x7f)))
		p->i++;
	f.val = (const char *)p->b + start;
	f.vlen = p->i - start;
	while (f.vlen &&
	       (f.val[f.vlen - 1] == ' ' || f.val[f.vlen - 1] == '\t'))
		f.vlen--;
	rc = hp_eol(p);
	return rc == HP_OK ? hp_field(&f, req) : rc;
}

int zcr_http_parse(const char *buf, size_t len, struct zcr_http_req *req)
{
	struct hp p = {(const unsigned char *)buf, len, 0};
	int rc;

	/* Nothing past the limit is looked at: a head that has not ended
	 * by then is too long. */
	if (p.n > ZCR_HTTP_MAX)
		p.n = ZCR_HTTP_MAX;
	req->clen = -1;
	req->conn_close = req->conn_keep = 0;
	req->bearer[0] = '\0';
	rc = hp_request_line(&p, req);
	while (rc == HP_OK)
		rc = hp_header(&p, req);
	if (rc == HP_END)
		return (int)p.i;
	if (rc == HP_MORE && len >= ZCR_HTTP_MAX)
		return -EPROTO;
	return rc;
}

int zcr_http_keep_alive(const struct zcr_http_req *req)
{
	if (req->conn_close)
		return 0;
	return req->minor == 1 || req->conn_keep;
}

/* The value of a hex digit, or -EINVAL. */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -EINVAL;
}

/* Decodes s[0..n) (%XX, '+' as space) into out (cap with the NUL).
 * Returns 0 or -EPROTO (bad escape, a NUL, too long). */
static int url_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, k = 0;
	int hi, lo;
	char c;

	for (i = 0; i < n; i++) {
		c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= n)
				return -EPROTO;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EPROTO;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0' || k + 1 >= cap)
			return -EPROTO;
		out[k++] = c;
	}
	out[k] = '\0';
	return 0;
}

int zcr_http_query(const char *target, const char *key, char *out, size_t cap)
{
	const char *q = strchr(target, '?'), *e, *eq;
	size_t kl = strlen(key);

	if (!q)
		return -ENOENT;
	for (q++; *q; q = *e ? e + 1 : e) {
		e = q + strcspn(q, "&");
		eq = memchr(q, '=', (size_t)(e - q));
		if (!eq)
			eq = e;
		if ((size_t)(eq - q) != kl || memcmp(q, key, kl) != 0)
			continue;
		if (eq == e)
			return url_decode("", 0, out, cap);
		return url_decode(eq + 1, (size_t)(e - eq - 1), out, cap);
	}
	return -ENOENT;
}

/*
 * admin.c - the admin HTTP endpoint. This part: a strict parser for
 * HTTP/1.x request heads, stateless, that tells "need more" from
 * "malformed" at every byte.
 */
#include <errno.h>
#include <string.h>

#include "metrics.h"

/* ------------------------------------------------------------------ */
/* Request head parser                                                  */

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

/* One "name:value" line, or the empty line (HP_END). The value may hold
 * HTAB, SP, visible ASCII and obs-text (bytes >= 0x80). */
static int hp_header(struct hp *p)
{
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
	p->i++;
	while (p->i < p->n && (p->b[p->i] == '\t' ||
	                       (p->b[p->i] >= 0x20 && p->b[p->i] != 0x7f)))
		p->i++;
	return hp_eol(p);
}

int zcr_http_parse(const char *buf, size_t len, struct zcr_http_req *req)
{
	struct hp p = {(const unsigned char *)buf, len, 0};
	int rc;

	/* Nothing past the limit is looked at: a head that has not ended
	 * by then is too long. */
	if (p.n > ZCR_HTTP_MAX)
		p.n = ZCR_HTTP_MAX;
	rc = hp_request_line(&p, req);
	while (rc == HP_OK)
		rc = hp_header(&p);
	if (rc == HP_END)
		return (int)p.i;
	if (rc == HP_MORE && len >= ZCR_HTTP_MAX)
		return -EPROTO;
	return rc;
}

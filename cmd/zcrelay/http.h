/*
 * http.h - HTTP/1.x request heads and query strings (http.c), for the
 * admin server (admin.c). Pure functions: any thread.
 */
#ifndef ZCRELAY_HTTP_H
#define ZCRELAY_HTTP_H

#include <stddef.h>

#define ZCR_HTTP_MAX        8192 /* longest request head accepted */
#define ZCR_HTTP_METHOD_MAX 16   /* with the NUL */
#define ZCR_HTTP_PATH_MAX   1024 /* with the NUL */
#define ZCR_HTTP_TOKEN_MAX  256  /* a Bearer token, with the NUL */

/* A parsed request head. */
struct zcr_http_req {
	char method[ZCR_HTTP_METHOD_MAX]; /* "GET", ... */
	char path[ZCR_HTTP_PATH_MAX];     /* starts with '/', query included */
	int minor;                        /* HTTP/1.<minor>: 0 or 1 */
	long long clen;                   /* Content-Length; -1: none */
	int conn_close, conn_keep;        /* Connection: close / keep-alive */
	char bearer[ZCR_HTTP_TOKEN_MAX];  /* Authorization: Bearer; "": none */
};

/*
 * zcr_http_parse - parse the head of an HTTP/1.0 or 1.1 request: the
 * request line "METHOD SP PATH SP HTTP/1.x", then header lines, up to the
 * empty line. Lines end with CRLF or a bare LF.
 *
 * Strict: METHOD is 1-15 token characters, PATH starts with '/' and has
 * 1-1023 visible ASCII characters, header lines are "name:value" with a
 * token name and no control character but HTAB in the value; no line
 * folding, no empty lines before the request line. Content-Length must
 * be 1-9 digits (several must agree); any Transfer-Encoding, and a Bearer
 * token of 256 bytes or more, are malformed.
 *
 * Returns the length of the head (through its empty line) and fills *req;
 * 0 when buf is a valid beginning of a head but incomplete (only while
 * len < ZCR_HTTP_MAX); -EPROTO when it is malformed or the head would be
 * longer than ZCR_HTTP_MAX. *req is undefined unless the result is > 0.
 */
int zcr_http_parse(const char *buf, size_t len, struct zcr_http_req *req);

/* zcr_http_keep_alive - 1 if the connection may stay open after the
 * response to req (HTTP/1.1 without "Connection: close", or HTTP/1.0
 * with "Connection: keep-alive"), else 0. */
int zcr_http_keep_alive(const struct zcr_http_req *req);

/*
 * zcr_http_query - the value of key in the query string of target (the
 * part after '?': "k=v&k2=v2"), %XX and '+' decoded, into out (cap bytes
 * with the NUL); a key without '=' has the value "". Returns 0, -ENOENT
 * (no such key) or -EPROTO (a bad escape, a NUL, or longer than cap).
 */
int zcr_http_query(const char *target, const char *key, char *out, size_t cap);

#endif

/*
 * fuzz_http.c - libFuzzer harness for zcr_http_parse() (http.c).
 *
 * Besides the sanitizers' findings it checks the parser's contract:
 * results are a head length, 0 or -EPROTO; an accepted head is within
 * the input and the limit, its fields are terminated and well formed
 * (Content-Length -1 or 0..999999999, the token terminated), and one
 * byte less of it needs more input. The query-string decoder
 * (zcr_http_query) runs on every accepted path and on the raw input as a
 * string: 0, -ENOENT or -EPROTO, and a value that fits and holds no NUL
 * before its end.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_req(const struct zcr_http_req *req)
{
	if (memchr(req->method, '\0', sizeof(req->method)) == NULL ||
	    memchr(req->path, '\0', sizeof(req->path)) == NULL)
		__builtin_trap();
	if (req->method[0] == '\0' || req->path[0] != '/')
		__builtin_trap();
	if (req->minor != 0 && req->minor != 1)
		__builtin_trap();
	if (req->clen < -1 || req->clen > 999999999)
		__builtin_trap();
	if (memchr(req->bearer, '\0', sizeof(req->bearer)) == NULL)
		__builtin_trap();
}

/* The decoder on target, for the keys the admin API reads. */
static void check_query(const char *target)
{
	static const char *const keys[] = {
	        "route", "upstream", "client", "limit", "weight", "kill", ""};
	char out[64];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		rc = zcr_http_query(target, keys[i], out, sizeof(out));
		if (rc != 0 && rc != -ENOENT && rc != -EPROTO)
			__builtin_trap();
		if (rc == 0 && strlen(out) >= sizeof(out))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct zcr_http_req req;
	int rc;

	char str[2048];

	if (size < sizeof(str)) {
		memcpy(str, data, size);
		str[size] = '\0';
		check_query(str);
	}
	rc = zcr_http_parse(buf, size, &req);
	if (rc == 0 && size >= ZCR_HTTP_MAX)
		__builtin_trap();
	if (rc < 0 && rc != -EPROTO)
		__builtin_trap();
	if (rc <= 0)
		return 0;
	if ((size_t)rc > size || rc > ZCR_HTTP_MAX)
		__builtin_trap();
	check_req(&req);
	check_query(req.path);
	(void)zcr_http_keep_alive(&req);
	/* The head ends exactly at rc: a byte less is incomplete. */
	if (zcr_http_parse(buf, (size_t)rc - 1, &req) != 0)
		__builtin_trap();
	return 0;
}

/*
 * fuzz_http.c - libFuzzer harness for zcr_http_parse() (http.c).
 *
 * Besides the sanitizers' findings it checks the parser's contract:
 * results are a head length, 0 or -EPROTO; an accepted head is within
 * the input and the limit, its fields are terminated and well formed,
 * and one byte less of it needs more input.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct zcr_http_req req;
	int rc;

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
	/* The head ends exactly at rc: a byte less is incomplete. */
	if (zcr_http_parse(buf, (size_t)rc - 1, &req) != 0)
		__builtin_trap();
	return 0;
}

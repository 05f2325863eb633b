/*
 * fuzz_proxyproto.c - libFuzzer harness for the daemon's PROXY protocol
 * module (cmd/zcrelay/proxyproto.c).
 *
 * The input is a byte stream from a client. Beyond "no crash, no read past
 * the end" (ASan), it checks the parser's contract: "need more" only
 * below ZCR_PP_MAX bytes, a header length within the input, the same
 * answer from the header alone, and that zcr_pp_build() of the parsed
 * addresses parses back to them. The same bytes, cut in two and taken as
 * raw sockaddrs, must give zcr_pp_build() a header zcr_pp_parse() takes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxyproto.h"
#include "fuzz.h"

static int fz_same(const struct zcr_pp_info *a, const struct zcr_pp_info *b)
{
	return a->local == b->local && a->src_len == b->src_len &&
	       a->dst_len == b->dst_len &&
	       !memcmp(&a->src, &b->src, sizeof(a->src)) &&
	       !memcmp(&a->dst, &b->dst, sizeof(a->dst));
}

/* Builds version's header for info's addresses, parses it back. */
static void fz_rebuild(int version, const struct zcr_pp_info *info)
{
	struct zcr_pp_info again;
	uint8_t buf[ZCR_PP_MAX];
	int n;

	n = zcr_pp_build(version, ZCR_PP_UNIX,
	                 (const struct sockaddr *)&info->src, info->src_len,
	                 (const struct sockaddr *)&info->dst, info->dst_len,
	                 buf, sizeof(buf));
	FZ_CHECK(n > 0 && n <= ZCR_PP_MAX);
	FZ_CHECK(zcr_pp_parse(buf, (size_t)n, &again) == n);
	if (version == 1 && info->src.ss_family == AF_UNIX)
		FZ_CHECK(again.local == 1); /* v1 has no Unix: UNKNOWN */
	else
		FZ_CHECK(fz_same(info, &again));
}

/* The input as two raw sockaddrs: every header built parses. */
static void fz_build_raw(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src, dst;
	struct zcr_pp_info info;
	uint8_t buf[ZCR_PP_MAX];
	size_t half = size / 2, dlen = size - half;
	int version, n;

	if (half > sizeof(src))
		half = sizeof(src);
	if (dlen > sizeof(dst))
		dlen = sizeof(dst);
	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	memcpy(&src, data, half);
	memcpy(&dst, data + size / 2, dlen);
	for (version = 1; version <= 2; version++) {
		n = zcr_pp_build(version, size & 1 ? ZCR_PP_UNIX : 0,
		                 (struct sockaddr *)&src, (socklen_t)half,
		                 (struct sockaddr *)&dst, (socklen_t)dlen, buf,
		                 sizeof(buf));
		FZ_CHECK(n > 0);
		FZ_CHECK(zcr_pp_parse(buf, (size_t)n, &info) == n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zcr_pp_info info, alone;
	int rc;

	fz_build_raw(data, size);
	rc = zcr_pp_parse(data, size, &info);
	if (rc == 0) {
		FZ_CHECK(size < ZCR_PP_MAX);
		return 0;
	}
	if (rc < 0) {
		FZ_CHECK(rc == -EPROTO || rc == -EMSGSIZE);
		return 0;
	}
	FZ_CHECK((size_t)rc <= size && rc <= ZCR_PP_MAX);
	FZ_CHECK(zcr_pp_parse(data, (size_t)rc, &alone) == rc);
	FZ_CHECK(fz_same(&info, &alone));
	fz_rebuild(1, &info);
	fz_rebuild(2, &info);
	return 0;
}

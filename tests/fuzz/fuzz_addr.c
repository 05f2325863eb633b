/*
 * fuzz_addr.c - libFuzzer harness for zc_addr_parse() and
 * zc_addr_format() (src/addr.c).
 *
 * The input, as a C string, is parsed with every flag combination; what
 * parses must format, and the formatted text must parse (numerically)
 * back to the same address.
 *
 * Host names go to the fake resolver of fakeresolv.c (linked into
 * every harness): by its hash, a name resolves to nothing, an IPv4 or an
 * IPv6 address.
 */
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "zcrelay.h"
#include "fuzz.h"

static void fz_parse(const char *s, unsigned flags)
{
	struct zc_addr a, b;
	char text[160];
	int rc, n;

	rc = zc_addr_parse(&a, s, flags);
	if (rc != 0) {
		FZ_CHECK(rc == -EINVAL || rc == -ENAMETOOLONG ||
		         ZC_IS_ERESOLVE(rc));
		return;
	}
	FZ_CHECK(a.len > 0 && a.len <= sizeof(a.ss));
	n = zc_addr_format((struct sockaddr *)&a.ss, a.len, text, sizeof(text));
	FZ_CHECK(n > 0 && (size_t)n == strlen(text));
	FZ_CHECK(zc_addr_parse(&b, text, ZC_ADDR_NUMERIC) == 0);
	FZ_CHECK(b.len == a.len && !memcmp(&a.ss, &b.ss, a.len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned flags[] = {
	        0,
	        ZC_ADDR_NUMERIC,
	        ZC_ADDR_PASSIVE,
	        ZC_ADDR_NUMERIC | ZC_ADDR_PASSIVE,
	};
	char s[512];
	size_t i;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		fz_parse(s, flags[i]);
	return 0;
}

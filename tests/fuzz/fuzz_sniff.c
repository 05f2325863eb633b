/*
 * fuzz_sniff.c - libFuzzer harness for zcr_sniff() (sniff.c).
 *
 * Besides the sanitizers' findings it checks the sniffer's contract: the
 * answer is 0 or a byte count past the input and within ZCR_SNIFF_MAX;
 * final always decides; a decided answer holds well-formed names and
 * ALPN lists, and is the same for every longer input. (That a prefix
 * asks for no more than a well-formed input needs is checked by the unit
 * tests: a malformed input may be decided earlier.)
 */
#include <string.h>

#include "fuzz.h"
#include "sniff.h"

static void fz_names(const struct zcr_sniff *s)
{
	size_t i;

	FZ_CHECK(memchr(s->sni, '\0', sizeof(s->sni)) != NULL);
	FZ_CHECK(memchr(s->host, '\0', sizeof(s->host)) != NULL);
	for (i = 0; s->sni[i]; i++)
		FZ_CHECK(s->sni[i] > ' ' &&
		         !(s->sni[i] >= 'A' && s->sni[i] <= 'Z'));
	for (i = 0; i < s->alpn_len; i += 1 + s->alpn[i])
		FZ_CHECK(s->alpn[i] > 0);
	FZ_CHECK(i == s->alpn_len && s->alpn_len <= sizeof(s->alpn));
	if (s->proto != ZCR_PROTO_TLS)
		FZ_CHECK(!s->sni[0] && !s->alpn_len);
	if (s->proto != ZCR_PROTO_HTTP)
		FZ_CHECK(!s->host[0]);
}

static int fz_same(const struct zcr_sniff *a, const struct zcr_sniff *b)
{
	return a->proto == b->proto && !strcmp(a->sni, b->sni) &&
	       !strcmp(a->host, b->host) && a->alpn_len == b->alpn_len &&
	       !memcmp(a->alpn, b->alpn, a->alpn_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zcr_sniff full, part, fin;
	size_t cut = size / 2;
	int rc = zcr_sniff(data, size, 0, &full), rp;

	FZ_CHECK(rc == 0 || (rc > (int)size && rc <= ZCR_SNIFF_MAX));
	FZ_CHECK(zcr_sniff(data, size, 1, &fin) == 0);
	fz_names(&fin);
	if (rc == 0)
		FZ_CHECK(fz_same(&full, &fin));
	rp = zcr_sniff(data, cut, 0, &part);
	FZ_CHECK(rp == 0 || rp > (int)cut);
	if (rp == 0)
		FZ_CHECK(fz_same(&part, &fin)); /* decided stays decided */
	return 0;
}

/*
 * sniff.c (unit) - zcr_sniff(): TLS ClientHellos (real ones captured
 * from openssl s_client, curl and gnutls-cli, in the fuzz corpus, and
 * synthetic ones with GREASE, padding to 16 KiB, split across records),
 * SSH and HTTP. Every input is also checked at every prefix length: a
 * proper prefix asks for more (a lower bound on what the answer needs)
 * or, final, is unknown; the answer never changes once given.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "sniff.h"
#include "thello.h"

#define CORPUS "tests/fuzz/corpus/fuzz_sniff/"

/* What an input must give. */
struct want {
	int proto;
	const char *sni, *alpn, *host;
	size_t at; /* decided at this many bytes; 0: the whole input */
};

static int t_same(const struct zcr_sniff *s, const struct want *w)
{
	char alpn[512];

	ASSERT_EQ(s->proto, w->proto);
	ASSERT_STREQ(s->sni, w->sni ? w->sni : "");
	ASSERT_STREQ(zcr_sniff_alpn_str(s, alpn, sizeof(alpn)),
	             w->alpn ? w->alpn : "");
	ASSERT_STREQ(s->host, w->host ? w->host : "");
	return T_PASS;
}

/* buf[0..len) against w, and every prefix of it. */
static int t_prefixes(const uint8_t *buf, size_t len, const struct want *w)
{
	struct zcr_sniff s;
	size_t at = w->at ? w->at : len, k;
	int rc;

	for (k = 0; k < at; k++) {
		rc = zcr_sniff(buf, k, 0, &s);
		if (rc <= (int)k || (size_t)rc > at)
			return t_fail(__FILE__, __LINE__,
			              "prefix %zu of %zu: %d (decided at %zu)",
			              k, len, rc, at);
		ASSERT_EQ(zcr_sniff(buf, k, 1, &s), 0);
		ASSERT_EQ(s.proto, ZCR_PROTO_UNKNOWN);
	}
	for (k = at; k <= len; k++) {
		ASSERT_EQ(zcr_sniff(buf, k, 0, &s), 0);
		ASSERT_EQ(t_same(&s, w), T_PASS);
		ASSERT_EQ(zcr_sniff(buf, k, 1, &s), 0);
		ASSERT_EQ(t_same(&s, w), T_PASS);
	}
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Real clients                                                         */

static uint8_t *t_read(const char *name, size_t *len)
{
	static uint8_t buf[65536];
	const char *dir = getenv("ZC_SRCDIR");
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s" CORPUS "%s", dir ? dir : "",
	         dir ? "/" : "", name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	*len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return buf;
}

TEST(test_sniff_real_clients)
{
	static const struct {
		const char *file;
		struct want w;
	} tab[] = {
	        {"tls13_openssl_sni_alpn",
	         {ZCR_PROTO_TLS, "a.example.com", "h2,http/1.1", NULL, 0}},
	        {"tls12_openssl_sni",
	         {ZCR_PROTO_TLS, "www.example.org", NULL, NULL, 0}},
	        {"tls13_openssl_nosni", {ZCR_PROTO_TLS, NULL, NULL, NULL, 0}},
	        {"tls13_curl_h2",
	         {ZCR_PROTO_TLS, "a.example.com", "h2,http/1.1", NULL, 0}},
	        {"tls13_curl_h11",
	         {ZCR_PROTO_TLS, "b.example.com", "http/1.1", NULL, 0}},
	        {"tls13_gnutls_sni",
	         {ZCR_PROTO_TLS, "c.example.net", "h2", NULL, 0}},
	        {"tls12_gnutls",
	         {ZCR_PROTO_TLS, "d.example.net", NULL, NULL, 0}},
	        {"http_curl",
	         {ZCR_PROTO_HTTP, NULL, NULL, "www.example.com", 49}},
	        {"ssh_openssh", {ZCR_PROTO_SSH, NULL, NULL, NULL, 4}},
	};
	size_t i, len;
	uint8_t *b;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		b = t_read(tab[i].file, &len);
		if (!b)
			return t_fail(__FILE__, __LINE__, "cannot read %s%s",
			              CORPUS, tab[i].file);
		t_log("%s: %zu bytes", tab[i].file, len);
		ASSERT_EQ(t_prefixes(b, len, &tab[i].w), T_PASS);
	}
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Synthetic hellos                                                     */

struct t_buf {
	uint8_t b[40000];
	size_t n;
};

/* A ClientHello message into m (see thello.h). */
static void t_msg(struct t_buf *m, const char *sni, const char *alpn,
                  size_t pad)
{
	m->n = t_hello_msg(sni, alpn, pad, m->b, sizeof(m->b));
}

/* m as TLS records of at most rec payload bytes each. */
static void t_records(const struct t_buf *m, size_t rec, struct t_buf *out)
{
	out->n = t_hello_records(m->b, m->n, rec, out->b, sizeof(out->b));
}

/* GREASE, SNI case and trailing dot, one record or many. */
TEST(test_sniff_tls_synthetic)
{
	static const size_t recs[] = {16384, 512, 100, 7, 1};
	static struct t_buf m, r;
	struct want w = {ZCR_PROTO_TLS, "api.example.com", "h2,http/1.1", NULL,
	                 0};
	size_t i;

	t_msg(&m, "API.Example.COM.", "h2,http/1.1", 0);
	for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		t_records(&m, recs[i], &r);
		ASSERT_EQ(t_prefixes(r.b, r.n, &w), T_PASS);
	}
	t_msg(&m, NULL, NULL, 0);
	t_records(&m, 50, &r);
	w = (struct want){ZCR_PROTO_TLS, NULL, NULL, NULL, 0};
	return t_prefixes(r.b, r.n, &w);
}

/* Hellos of 10 and 16 KiB (a padding extension), in 1 to 5 records. */
TEST(test_sniff_tls_big)
{
	static const size_t pads[] = {10240, 16384 - 150};
	static const size_t recs[] = {16384, 4000, 1500};
	static struct t_buf m, r;
	struct want w = {ZCR_PROTO_TLS, "big.example.com", "h2", NULL, 0};
	struct zcr_sniff s;
	size_t i, j;

	for (i = 0; i < 2; i++)
		for (j = 0; j < 3; j++) {
			t_msg(&m, "big.example.com", "h2", pads[i]);
			ASSERT_GE(m.n, pads[i]);
			t_records(&m, recs[j], &r);
			ASSERT_EQ(zcr_sniff(r.b, r.n, 0, &s), 0);
			ASSERT_EQ(t_same(&s, &w), T_PASS);
		}
	/* Prefixes of the 16 KiB one in 1500-byte records, every 97th. */
	for (i = 0; i < r.n; i += 97)
		ASSERT_GT(zcr_sniff(r.b, i, 0, &s), (int)i);
	/* Too big to read: unknown, not a wait without end. */
	t_msg(&m, "big.example.com", NULL, ZCR_SNIFF_MAX);
	t_records(&m, 16384, &r);
	ASSERT_EQ(zcr_sniff(r.b, r.n, 0, &s), 0);
	ASSERT_EQ(s.proto, ZCR_PROTO_UNKNOWN);
	return T_PASS;
}

/* Broken hellos: TLS without a name; not a hello: unknown. */
TEST(test_sniff_tls_malformed)
{
	static struct t_buf m, r;
	struct zcr_sniff s;
	size_t len;

	t_msg(&m, "x.example.com", "h2", 0);
	m.b[4 + 2 + 32] = 33; /* session id too long */
	t_records(&m, 16384, &r);
	ASSERT_EQ(zcr_sniff(r.b, r.n, 0, &s), 0);
	ASSERT_EQ(s.proto, ZCR_PROTO_TLS);
	ASSERT_STREQ(s.sni, "");
	ASSERT_EQ(s.alpn_len, 0);

	t_msg(&m, "bad name!.example.com", NULL, 0);
	t_records(&m, 16384, &r);
	ASSERT_EQ(zcr_sniff(r.b, r.n, 0, &s), 0);
	ASSERT_EQ(s.proto, ZCR_PROTO_TLS);
	ASSERT_STREQ(s.sni, "");

	t_msg(&m, "x.example.com", NULL, 0);
	t_records(&m, 20, &r);
	r.b[25] = 23; /* the second record is application data */
	ASSERT_EQ(zcr_sniff(r.b, r.n, 0, &s), 0);
	ASSERT_EQ(s.proto, ZCR_PROTO_TLS);
	ASSERT_STREQ(s.sni, "");

	m.b[0] = 2; /* a ServerHello */
	t_records(&m, 16384, &r);
	ASSERT_EQ(zcr_sniff(r.b, r.n, 0, &s), 0);
	ASSERT_EQ(s.proto, ZCR_PROTO_UNKNOWN);

	len = 5;
	ASSERT_EQ(
	        zcr_sniff((const uint8_t *)"\x16\x03\x01\x00\x00", len, 0, &s),
	        0);
	ASSERT_EQ(s.proto, ZCR_PROTO_UNKNOWN); /* empty record */
	ASSERT_EQ(zcr_sniff((const uint8_t *)"\x16\x02", 2, 0, &s), 0);
	ASSERT_EQ(s.proto, ZCR_PROTO_UNKNOWN);
	return T_PASS;
}

TEST(test_sniff_http)
{
	static const struct {
		const char *req;
		struct want w;
	} tab[] = {
	        {"GET / HTTP/1.1\r\nHost: WWW.Example.com.:8080\r\n\r\n",
	         {ZCR_PROTO_HTTP, NULL, NULL, "www.example.com", 45}},
	        {"POST /x HTTP/1.0\nUser-Agent: a\nhost:\tb.example\n\n",
	         {ZCR_PROTO_HTTP, NULL, NULL, "b.example", 47}},
	        {"GET /old HTTP/1.0\r\nAccept: */*\r\n\r\nbody",
	         {ZCR_PROTO_HTTP, NULL, NULL, NULL, 34}},
	        {"OPTIONS * HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n",
	         {ZCR_PROTO_HTTP, NULL, NULL, NULL, 44}},
	        {"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n",
	         {ZCR_PROTO_HTTP, NULL, NULL, "a.example", 0}},
	        {"GET / HTTP/2.0\r\n\r\n",
	         {ZCR_PROTO_UNKNOWN, NULL, NULL, NULL, 12}},
	        {"get / HTTP/1.1\r\n",
	         {ZCR_PROTO_UNKNOWN, NULL, NULL, NULL, 1}},
	        {"GET  / HTTP/1.1\r\n",
	         {ZCR_PROTO_UNKNOWN, NULL, NULL, NULL, 5}},
	        {"GET / HTTP/1.1 \r\n",
	         {ZCR_PROTO_UNKNOWN, NULL, NULL, NULL, 17}},
	        {"SSH-2.0-OpenSSH_9.2\r\n",
	         {ZCR_PROTO_SSH, NULL, NULL, NULL, 4}},
	        {"SSH \r\n", {ZCR_PROTO_UNKNOWN, NULL, NULL, NULL, 5}},
	        {"\x01garbage", {ZCR_PROTO_UNKNOWN, NULL, NULL, NULL, 1}},
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		t_log("%s", tab[i].req);
		ASSERT_EQ(t_prefixes((const uint8_t *)tab[i].req,
		                     strlen(tab[i].req), &tab[i].w),
		          T_PASS);
	}
	return T_PASS;
}

/* A head that never ends is cut at ZCR_SNIFF_MAX: unknown. */
TEST(test_sniff_limits)
{
	static uint8_t big[ZCR_SNIFF_MAX + 10];
	struct zcr_sniff s;
	char a[8];

	memcpy(big, "GET / HTTP/1.1\r\n", 16);
	memset(big + 16, 'x', sizeof(big) - 16);
	ASSERT_GT(zcr_sniff(big, ZCR_SNIFF_MAX - 1, 0, &s), 0);
	ASSERT_EQ(zcr_sniff(big, ZCR_SNIFF_MAX, 0, &s), 0);
	ASSERT_EQ(s.proto, ZCR_PROTO_UNKNOWN);
	ASSERT_EQ(zcr_sniff(big, sizeof(big), 0, &s), 0);
	ASSERT_EQ(zcr_sniff(NULL, 0, 0, &s), 1);
	ASSERT_EQ(zcr_sniff(NULL, 0, 1, &s), 0);
	ASSERT_EQ(zcr_sniff(NULL, 1, 0, &s), -EINVAL);
	ASSERT_EQ(zcr_sniff(big, 1, 0, NULL), -EINVAL);
	s.alpn_len = 8;
	memcpy(s.alpn, "\x02h2\x04\x01,zz", 8);
	ASSERT_STREQ(zcr_sniff_alpn_str(&s, a, sizeof(a)), "h2,??zz");
	ASSERT_EQ(zcr_sniff_has_alpn(&s, "h2"), 1);
	ASSERT_EQ(zcr_sniff_has_alpn(&s, "h"), 0);
	ASSERT_STREQ(zcr_proto_name(ZCR_PROTO_SSH), "ssh");
	ASSERT_STREQ(zcr_proto_name(99), "unknown");
	return T_PASS;
}

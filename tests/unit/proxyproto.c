/*
 * unit/proxyproto.c - zcr_pp_parse() and zcr_pp_build() (the daemon's
 * PROXY protocol module).
 *
 * Every parse goes through t_parse(), which puts the input at the very
 * end of a page followed by a PROT_NONE page (picohttpparser's trick):
 * a read past len crashes the test instead of passing unnoticed.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/un.h>

#include "runner.h"
#include "proxyproto.h"

/* A byte string with embedded NULs allowed. */
struct t_bytes {
	const char *s;
	size_t n;
};

#define B(lit)                                                                 \
	{                                                                      \
		lit, sizeof(lit) - 1                                           \
	}

static const uint8_t t_sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* zcr_pp_parse on a copy of h[0..n) that ends where a guard page starts. */
static int t_parse(const void *h, size_t n, struct zcr_pp_info *info)
{
	static uint8_t *page;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);

	if (!page) {
		page = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
		            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED || mprotect(page + ps, ps, PROT_NONE))
			return t_fail(__FILE__, __LINE__, "guard page: %s",
			              strerror(errno));
	}
	if (n > ps)
		return t_fail(__FILE__, __LINE__, "input of %zu bytes", n);
	if (n)
		memcpy(page + ps - n, h, n);
	return zcr_pp_parse(page + ps - n, n, info);
}

/*
 * h[0..n) is a complete header: every proper prefix asks for more, the
 * whole parses to n, and so it does with relayed bytes after it.
 */
static int t_complete_at(const void *h, size_t n, struct zcr_pp_info *info)
{
	uint8_t buf[ZCR_PP_MAX + 8];
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = t_parse(h, i, info);
		if (rc != 0)
			t_log("prefix of %zu/%zu bytes gave %d", i, n, rc);
		ASSERT_EQ(rc, 0);
	}
	memcpy(buf, h, n);
	memcpy(buf + n, "GET / \r\n", 8);
	ASSERT_EQ(t_parse(buf, n + 8, info), (int)n);
	ASSERT_EQ(t_parse(h, n, info), (int)n);
	return T_PASS;
}

/*
 * h[0..n) is malformed: no prefix parses as a header, every prefix is
 * "need more" or err, and the whole, or some prefix of it, is err.
 */
static int t_malformed(const void *h, size_t n, int err)
{
	struct zcr_pp_info info;
	size_t i;
	int rc = 0;

	for (i = 0; i <= n && rc == 0; i++) {
		rc = t_parse(h, i, &info);
		if (rc != 0 && rc != err)
			t_log("%zu bytes of \"%.*s\" gave %d", i, (int)n,
			      (const char *)h, rc);
		ASSERT_TRUE(rc == 0 || rc == err);
	}
	if (rc != err)
		t_log("\"%.*s\" was not refused", (int)n, (const char *)h);
	ASSERT_EQ(rc, err);
	return T_PASS;
}

/* A v2 header: signature, ver_cmd, fam, len; then len bytes of body
 * (zeros if body is NULL). Returns its size. */
static size_t t_v2(uint8_t *b, uint8_t vc, uint8_t fam, size_t len,
                   const void *body)
{
	memcpy(b, t_sig, sizeof(t_sig));
	b[12] = vc;
	b[13] = fam;
	b[14] = (uint8_t)(len >> 8);
	b[15] = (uint8_t)len;
	if (body)
		memcpy(b + 16, body, len);
	else
		memset(b + 16, 0, len);
	return 16 + len;
}

static int t_addr(struct zc_addr *a, const char *s)
{
	ASSERT_EQ(zc_addr_parse(a, s, ZC_ADDR_NUMERIC), 0);
	return T_PASS;
}

/* ss/len is the address s. */
static int t_is(const struct sockaddr_storage *ss, socklen_t len, const char *s)
{
	struct zc_addr want;

	ASSERT_EQ(t_addr(&want, s), T_PASS);
	ASSERT_EQ(len, want.len);
	ASSERT_MEMEQ(ss, &want.ss, len);
	return T_PASS;
}

/* The parsed header has these endpoints (NULL: local, none). */
static int t_ends(const struct zcr_pp_info *info, const char *src,
                  const char *dst)
{
	if (!src) {
		ASSERT_EQ(info->local, 1);
		ASSERT_EQ(info->src_len, 0);
		ASSERT_EQ(info->dst_len, 0);
		return T_PASS;
	}
	ASSERT_EQ(info->local, 0);
	ASSERT_EQ(t_is(&info->src, info->src_len, src), T_PASS);
	ASSERT_EQ(t_is(&info->dst, info->dst_len, dst), T_PASS);
	return T_PASS;
}

/* The text header s is complete and gives src -> dst. */
static int t_v1_good(const char *s, const char *src, const char *dst)
{
	struct zcr_pp_info info;

	ASSERT_EQ(t_complete_at(s, strlen(s), &info), T_PASS);
	return t_ends(&info, src, dst);
}

TEST(test_proxyproto_v1_good)
{
	char s[128];

	ASSERT_EQ(t_v1_good("PROXY TCP4 192.0.2.1 198.51.100.2 12345 80\r\n",
	                    "192.0.2.1:12345", "198.51.100.2:80"),
	          T_PASS);
	ASSERT_EQ(t_v1_good("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
	                    "0.0.0.0:0", "255.255.255.255:65535"),
	          T_PASS);
	ASSERT_EQ(t_v1_good("PROXY TCP6 2001:db8::1 ::1 65535 443\r\n",
	                    "[2001:db8::1]:65535", "[::1]:443"),
	          T_PASS);
	ASSERT_EQ(t_v1_good("PROXY TCP6 ::FFFF:192.0.2.1 :: 1 2\r\n",
	                    "[::ffff:192.0.2.1]:1", "[::]:2"),
	          T_PASS);
	ASSERT_EQ(t_v1_good("PROXY UNKNOWN\r\n", NULL, NULL), T_PASS);
	ASSERT_EQ(t_v1_good("PROXY UNKNOWN ::1 ::2 x y z\r\n", NULL, NULL),
	          T_PASS);
	/* The longest line: 107 bytes, CRLF included. */
	memset(s, 'a', sizeof(s));
	memcpy(s, "PROXY UNKNOWN ", 14);
	memcpy(s + 105, "\r\n", 3);
	ASSERT_EQ(t_v1_good(s, NULL, NULL), T_PASS);
	return T_PASS;
}

static const struct t_bytes t_v1_bad[] = {
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),     /* no CR */
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"), /* CR CR LF */
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"),    /* CR without LF */
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),  /* trailing space */
        B("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),  /* double spaces */
        B("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n"),
        B("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1\t2\r\n"),
        B("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        B("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"),
        B("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"),
        B("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n"),
        B("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
        B("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), /* bad addresses */
        B("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"),
        B("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"),
        B("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"),
        B("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8. 1 2\r\n"),
        B("PROXY TCP4 1111.2.3.4 5.6.7.8 1 2\r\n"),
        B("PROXY TCP4 ::1 ::1 1 2\r\n"),
        B("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"),
        B("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"),
        B("PROXY TCP6 ::1 ::g 1 2\r\n"),
        B("PROXY TCP6 1::2::3 ::1 1 2\r\n"),
        B("PROXY TCP6 [::1] ::1 1 2\r\n"),
        B("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"),
        B("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), /* bad ports */
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 123456\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), /* missing fields */
        B("PROXY TCP4 1.2.3.4 5.6.7.8\r\n"),
        B("PROXY TCP4 1.2.3.4\r\n"),
        B("PROXY TCP4\r\n"),
        B("PROXY \r\n"),
        B("PROXY\r\n"),
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), /* one too many */
        B("PROXY UNKNOWN\n"),                      /* UNKNOWN tails */
        B("PROXY UNKNOWNX\r\n"),
        B("PROXY UNKNOWN x\ny\r\n"),
        B("PROXY UNKNOWN x\ry\r\n"),
        B("PROXY UNKNOWN x\0y\r\n"),
        B("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), /* NUL */
        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n"),
        B("GET / HTTP/1.1\r\n"), /* not PROXY at all */
        B("\x16\x03\x01\x02\x00"),
        B("\r\n\r\n\0\r\nQUIX\n!\x11\0\x0c"),
        B(" PROXY UNKNOWN\r\n"),
        /* Valid tokens, but 116 bytes: longer than the spec's 107. */
        B("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
          "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n"),
};

TEST(test_proxyproto_v1_malformed)
{
	size_t i;

	for (i = 0; i < sizeof(t_v1_bad) / sizeof(t_v1_bad[0]); i++)
		ASSERT_EQ(t_malformed(t_v1_bad[i].s, t_v1_bad[i].n, -EPROTO),
		          T_PASS);
	return T_PASS;
}

TEST(test_proxyproto_v1_overlong)
{
	char s[ZCR_PP_MAX + 1];
	struct zcr_pp_info info;
	size_t n;

	/* 108 bytes with the CRLF at the end: one too many. */
	memset(s, 'a', sizeof(s));
	memcpy(s, "PROXY UNKNOWN ", 14);
	memcpy(s + 106, "\r\n", 2);
	ASSERT_EQ(t_malformed(s, 108, -EPROTO), T_PASS);
	/* No CRLF at all: "need more" up to 106 bytes, refused from 107. */
	memset(s + 106, 'a', 2);
	ASSERT_EQ(t_parse(s, 106, &info), 0);
	for (n = 107; n <= ZCR_PP_MAX; n++)
		ASSERT_EQ(t_parse(s, n, &info), -EPROTO);
	return T_PASS;
}

/* Refused as soon as the bad byte is there, without waiting for CRLF. */
TEST(test_proxyproto_early_refusal)
{
	static const struct t_bytes early[] = {
	        B("G"),
	        B("\x16"),
	        B("PROXX"),
	        B("PROXY TCP7"),
	        B("PROXY TCP4 1.2.3.4x"),
	        B("PROXY TCP4 1.2.3.4.5 "),
	        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 123456"),
	        B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
	        B("PROXY TCP6 ::1 :::x"),
	        B("\r\n\r\n\0\r\nQUIX"),
	        B("\r\n\r\n\0\r\nQUIT\n\x11"),        /* version 1 */
	        B("\r\n\r\n\0\r\nQUIT\n\x22"),        /* command 2 */
	        B("\r\n\r\n\0\r\nQUIT\n!\x12"),       /* DGRAM */
	        B("\r\n\r\n\0\r\nQUIT\n!\x11\0\x0b"), /* short block */
	};
	struct zcr_pp_info info;
	size_t i;

	for (i = 0; i < sizeof(early) / sizeof(early[0]); i++) {
		int rc = t_parse(early[i].s, early[i].n, &info);

		if (rc != -EPROTO)
			t_log("early[%zu] gave %d", i, rc);
		ASSERT_EQ(rc, -EPROTO);
	}
	return T_PASS;
}

TEST(test_proxyproto_v2_inet)
{
	/* 192.0.2.1:12345 -> 198.51.100.2:80, then a NOOP and an empty
	 * ALPN TLV. */
	static const uint8_t body[] = {192, 0,   2,   1,   198,  51,   100,
	                               2,   48,  57,  0,   80,   0x04, 0,
	                               3,   'a', 'b', 'c', 0x01, 0,    0};
	struct zcr_pp_info info;
	uint8_t b[64];
	size_t n;

	n = t_v2(b, 0x21, 0x11, sizeof(body), body);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(t_ends(&info, "192.0.2.1:12345", "198.51.100.2:80"), T_PASS);
	/* Without TLVs. */
	n = t_v2(b, 0x21, 0x11, 12, body);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(t_ends(&info, "192.0.2.1:12345", "198.51.100.2:80"), T_PASS);
	return T_PASS;
}

TEST(test_proxyproto_v2_inet6)
{
	uint8_t body[36] = {0x20, 0x01, 0x0d, 0xb8};
	struct zcr_pp_info info;
	uint8_t b[64];
	size_t n;

	body[15] = 1;    /* 2001:db8::1 */
	body[31] = 2;    /* ::2 */
	body[32] = 0xff; /* 65535 */
	body[33] = 0xff;
	body[35] = 1;
	n = t_v2(b, 0x21, 0x21, sizeof(body), body);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(t_ends(&info, "[2001:db8::1]:65535", "[::2]:1"), T_PASS);
	return T_PASS;
}

TEST(test_proxyproto_v2_unix)
{
	uint8_t body[216] = "/run/client.sock";
	struct zcr_pp_info info;
	uint8_t b[256];
	size_t n;

	memcpy(body + 108, "\0abstract\0ignored", 17);
	n = t_v2(b, 0x21, 0x31, sizeof(body), body);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(t_ends(&info, "unix:/run/client.sock", "unix:@abstract"),
	          T_PASS);
	/* All zeros: unnamed sockets. */
	n = t_v2(b, 0x21, 0x31, sizeof(body), NULL);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(info.local, 0);
	ASSERT_EQ(info.src.ss_family, AF_UNIX);
	ASSERT_EQ(info.src_len, offsetof(struct sockaddr_un, sun_path));
	ASSERT_EQ(info.dst_len, offsetof(struct sockaddr_un, sun_path));
	/* A path of all 108 bytes, no NUL. */
	memset(body, 'p', 108);
	n = t_v2(b, 0x21, 0x31, sizeof(body), body);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(info.src_len, sizeof(struct sockaddr_un));
	ASSERT_MEMEQ(((struct sockaddr_un *)&info.src)->sun_path, body, 108);
	return T_PASS;
}

/* LOCAL, and PROXY with AF_UNSPEC: no addresses, use the real peer. */
TEST(test_proxyproto_v2_local)
{
	static const uint8_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	struct zcr_pp_info info;
	uint8_t b[64];
	size_t n;

	n = t_v2(b, 0x20, 0x00, 0, NULL);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(t_ends(&info, NULL, NULL), T_PASS);
	/* LOCAL skips family, block and TLVs unread, even a short block. */
	n = t_v2(b, 0x20, 0x11, sizeof(junk), junk);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(t_ends(&info, NULL, NULL), T_PASS);
	n = t_v2(b, 0x21, 0x00, 0, NULL);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(t_ends(&info, NULL, NULL), T_PASS);
	/* UNSPEC with a TLV. */
	n = t_v2(b, 0x21, 0x00, 4, "\x04\0\x01z");
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	ASSERT_EQ(t_ends(&info, NULL, NULL), T_PASS);
	return T_PASS;
}

/* A v2 header with ver_cmd/fam/len and a zero body (cut at ZCR_PP_MAX
 * bytes) is refused with err. */
static int t_v2_bad(uint8_t vc, uint8_t fam, size_t len, int err)
{
	uint8_t b[ZCR_PP_MAX + 16];
	size_t n = len < ZCR_PP_MAX ? len : ZCR_PP_MAX;

	t_v2(b, vc, fam, n, NULL);
	b[14] = (uint8_t)(len >> 8);
	b[15] = (uint8_t)len;
	return t_malformed(b, 16 + n, err);
}

TEST(test_proxyproto_v2_malformed)
{
	uint8_t b[64];
	size_t i, n;

	ASSERT_EQ(t_v2_bad(0x11, 0x11, 12, -EPROTO), T_PASS); /* version 1 */
	ASSERT_EQ(t_v2_bad(0x31, 0x11, 12, -EPROTO), T_PASS); /* version 3 */
	ASSERT_EQ(t_v2_bad(0x01, 0x11, 12, -EPROTO), T_PASS);
	ASSERT_EQ(t_v2_bad(0x22, 0x11, 12, -EPROTO), T_PASS); /* command 2 */
	ASSERT_EQ(t_v2_bad(0x2f, 0x11, 12, -EPROTO), T_PASS);
	ASSERT_EQ(t_v2_bad(0x21, 0x41, 12, -EPROTO), T_PASS); /* family 4 */
	ASSERT_EQ(t_v2_bad(0x20, 0xf0, 0, -EPROTO), T_PASS);
	ASSERT_EQ(t_v2_bad(0x21, 0x13, 12, -EPROTO), T_PASS); /* transport 3 */
	ASSERT_EQ(t_v2_bad(0x21, 0x12, 12, -EPROTO), T_PASS); /* DGRAM */
	ASSERT_EQ(t_v2_bad(0x21, 0x22, 36, -EPROTO), T_PASS);
	ASSERT_EQ(t_v2_bad(0x21, 0x10, 12, -EPROTO), T_PASS); /* no transport */
	ASSERT_EQ(t_v2_bad(0x21, 0x01, 0, -EPROTO),
	          T_PASS); /* UNSPEC, STREAM */
	/* Declared lengths shorter than the family's address block. */
	ASSERT_EQ(t_v2_bad(0x21, 0x11, 0, -EPROTO), T_PASS);
	ASSERT_EQ(t_v2_bad(0x21, 0x11, 11, -EPROTO), T_PASS);
	ASSERT_EQ(t_v2_bad(0x21, 0x21, 12, -EPROTO), T_PASS);
	ASSERT_EQ(t_v2_bad(0x21, 0x21, 35, -EPROTO), T_PASS);
	ASSERT_EQ(t_v2_bad(0x21, 0x31, 36, -EPROTO), T_PASS);
	ASSERT_EQ(t_v2_bad(0x21, 0x31, 215, -EPROTO), T_PASS);
	/* Longer than we buffer. */
	ASSERT_EQ(t_v2_bad(0x21, 0x11, ZCR_PP_MAX - 15, -EMSGSIZE), T_PASS);
	ASSERT_EQ(t_v2_bad(0x20, 0x00, 0xffff - 64, -EMSGSIZE), T_PASS);
	/* A wrong signature byte at each position. */
	for (i = 0; i < sizeof(t_sig); i++) {
		n = t_v2(b, 0x21, 0x11, 12, NULL);
		b[i] ^= 0x20;
		ASSERT_EQ(t_malformed(b, n, -EPROTO), T_PASS);
	}
	return T_PASS;
}

/* TLVs after an IPv4 block: the chain must fill the rest exactly. */
TEST(test_proxyproto_v2_bad_tlvs)
{
	static const struct t_bytes tlvs[] = {
	        B("\x04"),                 /* 1 byte: no TLV header */
	        B("\x04\0"),               /* 2 bytes */
	        B("\x04\0\x01"),           /* length 1, no value */
	        B("\x04\0\x05zzzz"),       /* value one byte short */
	        B("\x04\0\0\x04\xff\xff"), /* second TLV overflows */
	        B("\x04\0\x01z\0"),        /* trailing byte */
	};
	uint8_t body[64] = {0}, b[96];
	size_t i;

	for (i = 0; i < sizeof(tlvs) / sizeof(tlvs[0]); i++) {
		memcpy(body + 12, tlvs[i].s, tlvs[i].n);
		ASSERT_EQ(t_malformed(b,
		                      t_v2(b, 0x21, 0x11, 12 + tlvs[i].n, body),
		                      -EPROTO),
		          T_PASS);
	}
	return T_PASS;
}

/* The longest header we take is ZCR_PP_MAX bytes; one more is refused. */
TEST(test_proxyproto_v2_max)
{
	struct zcr_pp_info info;
	uint8_t body[ZCR_PP_MAX] = {0}, b[ZCR_PP_MAX + 16];
	size_t tlv = ZCR_PP_MAX - 16 - 12 - 3, n;

	body[12] = 0x04;
	body[13] = (uint8_t)(tlv >> 8);
	body[14] = (uint8_t)tlv;
	n = t_v2(b, 0x21, 0x11, ZCR_PP_MAX - 16, body);
	ASSERT_EQ(n, ZCR_PP_MAX);
	ASSERT_EQ(t_complete_at(b, n, &info), T_PASS);
	tlv++;
	body[13] = (uint8_t)(tlv >> 8);
	body[14] = (uint8_t)tlv;
	n = t_v2(b, 0x21, 0x11, ZCR_PP_MAX - 15, body);
	ASSERT_EQ(t_parse(b, n, &info), -EMSGSIZE);
	return T_PASS;
}

TEST(test_proxyproto_parse_args)
{
	struct zcr_pp_info info;

	ASSERT_EQ(zcr_pp_parse(NULL, 0, &info), 0);
	ASSERT_EQ(zcr_pp_parse(NULL, 1, &info), -EINVAL);
	ASSERT_EQ(zcr_pp_parse((const uint8_t *)"P", 1, NULL), -EINVAL);
	return T_PASS;
}

/* Builds a header for src -> dst (zc_addr strings, NULL: none) with
 * zcr_pp_build() flags, checks its bytes against want (if not NULL),
 * parses it back into *info. */
static int t_build_f(int version, unsigned flags, const char *src,
                     const char *dst, const struct t_bytes *want,
                     struct zcr_pp_info *info)
{
	struct zc_addr s, d;
	uint8_t buf[ZCR_PP_MAX];
	int n;

	if (src)
		ASSERT_EQ(t_addr(&s, src), T_PASS);
	if (dst)
		ASSERT_EQ(t_addr(&d, dst), T_PASS);
	n = zcr_pp_build(version, flags, src ? (struct sockaddr *)&s.ss : NULL,
	                 src ? s.len : 0, dst ? (struct sockaddr *)&d.ss : NULL,
	                 dst ? d.len : 0, buf, sizeof(buf));
	ASSERT_GT(n, 0);
	if (want) {
		ASSERT_EQ(n, want->n);
		ASSERT_MEMEQ(buf, want->s, want->n);
	}
	return t_complete_at(buf, (size_t)n, info);
}

/* t_build_f() without flags. */
static int t_build(int version, const char *src, const char *dst,
                   const struct t_bytes *want, struct zcr_pp_info *info)
{
	return t_build_f(version, 0, src, dst, want, info);
}

/* build -> parse gives back the same endpoints, in v1 and v2. */
static int t_roundtrip(const char *src, const char *dst)
{
	struct zcr_pp_info info;

	ASSERT_EQ(t_build(1, src, dst, NULL, &info), T_PASS);
	ASSERT_EQ(t_ends(&info, src, dst), T_PASS);
	ASSERT_EQ(t_build(2, src, dst, NULL, &info), T_PASS);
	return t_ends(&info, src, dst);
}

TEST(test_proxyproto_roundtrip_inet)
{
	ASSERT_EQ(t_roundtrip("192.0.2.1:12345", "198.51.100.2:80"), T_PASS);
	ASSERT_EQ(t_roundtrip("0.0.0.0:0", "255.255.255.255:65535"), T_PASS);
	ASSERT_EQ(t_roundtrip("[2001:db8::1]:1", "[::1]:443"), T_PASS);
	ASSERT_EQ(t_roundtrip("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
	                      "[1:2:3:4:5:6:7:8]:65535"),
	          T_PASS);
	ASSERT_EQ(t_roundtrip("[::ffff:192.0.2.1]:1", "[::]:0"), T_PASS);
	return T_PASS;
}

TEST(test_proxyproto_build_bytes)
{
	static const struct t_bytes v1 =
	        B("PROXY TCP4 192.0.2.1 198.51.100.2 12345 80\r\n");
	static const struct t_bytes v2 =
	        B("\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c"
	          "\xc0\0\x02\x01\xc6\x33\x64\x02\x30\x39\0\x50");
	static const struct t_bytes v1_6 =
	        B("PROXY TCP6 2001:db8::1 ::1 1 443\r\n");
	struct zcr_pp_info info;

	ASSERT_EQ(t_build(1, "192.0.2.1:12345", "198.51.100.2:80", &v1, &info),
	          T_PASS);
	ASSERT_EQ(t_build(2, "192.0.2.1:12345", "198.51.100.2:80", &v2, &info),
	          T_PASS);
	ASSERT_EQ(t_build(1, "[2001:db8::1]:1", "[::1]:443", &v1_6, &info),
	          T_PASS);
	return T_PASS;
}

/* IPv4 with IPv6: both as IPv6, the IPv4 one mapped. */
TEST(test_proxyproto_build_mixed_inet)
{
	static const struct t_bytes v1 =
	        B("PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1 2\r\n");
	struct zcr_pp_info info;

	ASSERT_EQ(t_build(1, "192.0.2.1:1", "[2001:db8::2]:2", &v1, &info),
	          T_PASS);
	ASSERT_EQ(t_build(2, "192.0.2.1:1", "[2001:db8::2]:2", NULL, &info),
	          T_PASS);
	ASSERT_EQ(t_ends(&info, "[::ffff:192.0.2.1]:1", "[2001:db8::2]:2"),
	          T_PASS);
	ASSERT_EQ(t_build(2, "[2001:db8::2]:2", "192.0.2.1:1", NULL, &info),
	          T_PASS);
	ASSERT_EQ(t_ends(&info, "[2001:db8::2]:2", "[::ffff:192.0.2.1]:1"),
	          T_PASS);
	return T_PASS;
}

/*
 * Unix clients by default: v1 UNKNOWN and v2 LOCAL (AF_UNSPEC, no
 * address block), byte for byte what HAProxy sends for them. HAProxy 2.6
 * resets a connection whose v2 header carries the AF_UNIX family (0x31).
 */
TEST(test_proxyproto_build_unix_local)
{
	static const struct t_bytes unknown = B("PROXY UNKNOWN\r\n");
	static const struct t_bytes local =
	        B("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00");
	struct zcr_pp_info info;

	ASSERT_EQ(t_build(1, "unix:/run/a.sock", "unix:@b", &unknown, &info),
	          T_PASS);
	ASSERT_EQ(t_ends(&info, NULL, NULL), T_PASS);
	ASSERT_EQ(t_build(2, "unix:/run/a.sock", "unix:@b", &local, &info),
	          T_PASS);
	ASSERT_EQ(t_ends(&info, NULL, NULL), T_PASS);
	ASSERT_EQ(t_build_f(1, ZCR_PP_UNIX, "unix:/a", "unix:/b", &unknown,
	                    &info),
	          T_PASS);
	return t_build(2, "unix:@client", "unix:relative", &local, &info);
}

/* With ZCR_PP_UNIX, v2 carries both as AF_UNIX: path and abstract. */
TEST(test_proxyproto_roundtrip_unix)
{
	struct zcr_pp_info info;
	uint8_t buf[ZCR_PP_MAX];

	ASSERT_EQ(t_build_f(2, ZCR_PP_UNIX, "unix:/run/a.sock", "unix:@b", NULL,
	                    &info),
	          T_PASS);
	ASSERT_EQ(t_ends(&info, "unix:/run/a.sock", "unix:@b"), T_PASS);
	ASSERT_EQ(zcr_pp_build(2, 0x2, NULL, 0, NULL, 0, buf, sizeof(buf)),
	          -EINVAL);
	ASSERT_EQ(t_build_f(2, ZCR_PP_UNIX, "unix:@client", "unix:relative",
	                    NULL, &info),
	          T_PASS);
	return t_ends(&info, "unix:@client", "unix:relative");
}

/* An unnamed Unix client (accept() gives only the family). */
TEST(test_proxyproto_roundtrip_unix_unnamed)
{
	struct sockaddr_un cl, lst;
	struct zcr_pp_info info;
	uint8_t buf[ZCR_PP_MAX];
	socklen_t off = offsetof(struct sockaddr_un, sun_path);
	int n;

	memset(&cl, 'G', sizeof(cl)); /* garbage past the length */
	cl.sun_family = AF_UNIX;
	memset(&lst, 0, sizeof(lst));
	lst.sun_family = AF_UNIX;
	strcpy(lst.sun_path, "/run/l");
	n = zcr_pp_build(2, ZCR_PP_UNIX, (struct sockaddr *)&cl, off,
	                 (struct sockaddr *)&lst, sizeof(lst), buf,
	                 sizeof(buf));
	ASSERT_EQ(n, 16 + 216);
	ASSERT_EQ(t_parse(buf, (size_t)n, &info), n);
	ASSERT_EQ(info.local, 0);
	ASSERT_EQ(info.src_len, off);
	ASSERT_EQ(t_is(&info.dst, info.dst_len, "unix:/run/l"), T_PASS);
	return T_PASS;
}

/* What a version cannot carry is sent as "use the real peer". */
TEST(test_proxyproto_build_unknown)
{
	static const struct t_bytes v1 = B("PROXY UNKNOWN\r\n");
	static const struct t_bytes v2 = B("\r\n\r\n\0\r\nQUIT\n\x20\0\0\0");
	static const char *const pairs[][2] = {
	        {"unix:/a", "1.2.3.4:5"},
	        {"[::1]:1", "unix:@x"},
	        {NULL, "1.2.3.4:5"},
	        {"1.2.3.4:5", NULL},
	        {NULL, NULL},
	};
	struct zcr_pp_info info;
	size_t i;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		ASSERT_EQ(t_build(1, pairs[i][0], pairs[i][1], &v1, &info),
		          T_PASS);
		ASSERT_EQ(t_build(2, pairs[i][0], pairs[i][1], &v2, &info),
		          T_PASS);
		ASSERT_EQ(t_ends(&info, NULL, NULL), T_PASS);
	}
	return T_PASS;
}

/* An address shorter than its family's sockaddr, or of another family. */
TEST(test_proxyproto_build_short_addr)
{
	struct zc_addr a, b;
	struct sockaddr sa = {.sa_family = AF_PACKET};
	uint8_t buf[ZCR_PP_MAX];

	ASSERT_EQ(t_addr(&a, "1.2.3.4:5"), T_PASS);
	ASSERT_EQ(t_addr(&b, "[::1]:5"), T_PASS);
	ASSERT_EQ(zcr_pp_build(1, 0, (struct sockaddr *)&a.ss, a.len - 1,
	                       (struct sockaddr *)&a.ss, a.len, buf,
	                       sizeof(buf)),
	          15);
	ASSERT_EQ(zcr_pp_build(2, 0, (struct sockaddr *)&b.ss, b.len,
	                       (struct sockaddr *)&b.ss, 1, buf, sizeof(buf)),
	          16);
	ASSERT_EQ(zcr_pp_build(2, 0, &sa, sizeof(sa), &sa, sizeof(sa), buf,
	                       sizeof(buf)),
	          16);
	return T_PASS;
}

/* Every cap below the header's length is -ENOSPC. */
static int t_build_nospace(int version, const char *src, const char *dst)
{
	struct zc_addr s, d;
	uint8_t buf[ZCR_PP_MAX];
	int n, cap;

	ASSERT_EQ(t_addr(&s, src), T_PASS);
	ASSERT_EQ(t_addr(&d, dst), T_PASS);
	n = zcr_pp_build(version, 0, (struct sockaddr *)&s.ss, s.len,
	                 (struct sockaddr *)&d.ss, d.len, buf, sizeof(buf));
	ASSERT_GT(n, 0);
	for (cap = 0; cap < n; cap++)
		ASSERT_EQ(zcr_pp_build(version, 0, (struct sockaddr *)&s.ss,
		                       s.len, (struct sockaddr *)&d.ss, d.len,
		                       buf, (size_t)cap),
		          -ENOSPC);
	return T_PASS;
}

TEST(test_proxyproto_build_errors)
{
	uint8_t buf[16];

	ASSERT_EQ(t_build_nospace(1, "1.2.3.4:5", "6.7.8.9:10"), T_PASS);
	ASSERT_EQ(t_build_nospace(1, "unix:/a", "unix:/b"), T_PASS);
	ASSERT_EQ(t_build_nospace(2, "[::1]:5", "[::2]:10"), T_PASS);
	ASSERT_EQ(t_build_nospace(2, "unix:/a", "unix:@b"), T_PASS);
	ASSERT_EQ(t_build_nospace(2, "unix:/a", "1.2.3.4:5"), T_PASS);
	ASSERT_EQ(zcr_pp_build(0, 0, NULL, 0, NULL, 0, buf, sizeof(buf)),
	          -EINVAL);
	ASSERT_EQ(zcr_pp_build(3, 0, NULL, 0, NULL, 0, buf, sizeof(buf)),
	          -EINVAL);
	ASSERT_EQ(zcr_pp_build(1, 0, NULL, 0, NULL, 0, NULL, 16), -EINVAL);
	return T_PASS;
}

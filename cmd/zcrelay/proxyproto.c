/*
 * proxyproto.c - PROXY protocol v1/v2 parser and builder.
 *
 * The parser is incremental in the sense that matters for a reader: it
 * may be called again on a longer buffer, it answers "need more" (0) only
 * while the bytes seen so far are a proper prefix of a valid header, and
 * it rejects a bad byte as soon as it sees it, so a client that is not a
 * PROXY sender is refused without waiting for a timeout. Every read is
 * bounded by len; nothing is copied into a fixed buffer without a length
 * check first.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "proxyproto.h"

#define PP_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path) /* 108 */
#define PP_SUN_OFF  offsetof(struct sockaddr_un, sun_path)

/* v2: the version nibble, the commands, the fam byte of AF_UNSPEC. */
#define PP2_VERSION    0x20
#define PP2_CMD_LOCAL  0x0
#define PP2_CMD_PROXY  0x1
#define PP2_FAM_UNSPEC 0x00

static const uint8_t pp2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* The v2 families we carry, all over STREAM, with their block sizes. */
struct pp_fam {
	int family;
	uint8_t fam;   /* the header's fam byte */
	uint16_t alen; /* one address */
	uint16_t blen; /* the address block: two addresses and two ports */
};

static const struct pp_fam pp_fams[] = {
        {AF_INET, 0x11, 4, 12},
        {AF_INET6, 0x21, 16, 36},
        {AF_UNIX, 0x31, PP_SUN_PATH, 2 * PP_SUN_PATH},
};

/* The entry for a fam byte, or for a family; pass -1 for the other. */
static const struct pp_fam *pp_fam_find(int fam, int family)
{
	size_t i;

	for (i = 0; i < sizeof(pp_fams) / sizeof(pp_fams[0]); i++)
		if (pp_fams[i].fam == fam || pp_fams[i].family == family)
			return &pp_fams[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Parsed addresses into sockaddrs                                      */

static void pp_ip_fill(struct sockaddr_storage *ss, socklen_t *len, int family,
                       const uint8_t *addr, uint16_t port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, addr, 4);
		*len = sizeof(*s4);
		return;
	}
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, addr, 16);
	*len = sizeof(*s6);
}

/*
 * A v2 AF_UNIX address (108 bytes, NUL-padded): a path name up to its
 * first NUL; with a leading NUL, an abstract name up to its next NUL, or
 * unnamed if that name is empty. Lengths follow zc_addr_parse().
 */
static void pp_sun_fill(struct sockaddr_storage *ss, socklen_t *len,
                        const uint8_t *blk)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	if (blk[0]) {
		n = strnlen((const char *)blk, PP_SUN_PATH);
		memcpy(sun->sun_path, blk, n);
		*len = sizeof(*sun);
		return;
	}
	n = strnlen((const char *)blk + 1, PP_SUN_PATH - 1);
	memcpy(sun->sun_path + 1, blk + 1, n);
	*len = (socklen_t)(PP_SUN_OFF + (n ? 1 + n : 0));
}

/* ------------------------------------------------------------------ */
/* v1: "PROXY TCP4 1.2.3.4 5.6.7.8 1234 80\r\n"                         */

/*
 * A cursor over a v1 line. Internal steps return 1 (done, cursor moved),
 * 0 (the buffer ended inside a valid prefix) or -EPROTO.
 */
struct pp_v1 {
	const uint8_t *buf;
	size_t len; /* bytes we may look at: at most ZCR_PP_V1_MAX */
	size_t pos;
	int full; /* len is the 107-byte cap: running out means too long */
};

static int v1_short(const struct pp_v1 *c)
{
	return c->full ? -EPROTO : 0;
}

/* Consumes the first of alts (prefix-free) the next bytes match; returns
 * its index + 1. */
static int v1_match(struct pp_v1 *c, const char *const *alts, size_t n)
{
	size_t avail = c->len - c->pos, i, k;
	int partial = 0;

	for (i = 0; i < n; i++) {
		k = strlen(alts[i]);
		if (memcmp(c->buf + c->pos, alts[i], avail < k ? avail : k))
			continue;
		if (avail >= k) {
			c->pos += k;
			return (int)i + 1;
		}
		partial = 1;
	}
	return partial ? v1_short(c) : -EPROTO;
}

/*
 * Reads 1..max bytes from set into tok (NUL-terminated; max + 1 bytes),
 * then the delimiter end, which is consumed. A byte outside set, or one
 * too many, fails at once, before the token is complete.
 */
static int v1_word(struct pp_v1 *c, const char *set, size_t max, int end,
                   char *tok)
{
	size_t n = 0;
	int ch;

	for (;;) {
		if (c->pos == c->len)
			return v1_short(c);
		ch = c->buf[c->pos++];
		if (ch == end)
			break;
		if (ch == 0 || !strchr(set, ch) || n == max)
			return -EPROTO;
		tok[n++] = (char)ch;
	}
	if (n == 0)
		return -EPROTO;
	tok[n] = '\0';
	return 1;
}

/* An address of family, then a space; *bin gets it in network order. */
static int v1_addr(struct pp_v1 *c, int family, uint8_t *bin)
{
	char tok[INET6_ADDRSTRLEN];
	int rc;

	if (family == AF_INET)
		rc = v1_word(c, "0123456789.", 15, ' ', tok);
	else
		rc = v1_word(c, "0123456789abcdefABCDEF:.", sizeof(tok) - 1,
		             ' ', tok);
	if (rc <= 0)
		return rc;
	return inet_pton(family, tok, bin) == 1 ? 1 : -EPROTO;
}

/* A port, 0-65535, no leading zero, then end. */
static int v1_port(struct pp_v1 *c, int end, uint16_t *port)
{
	char tok[6];
	unsigned long v;
	int rc;

	rc = v1_word(c, "0123456789", 5, end, tok);
	if (rc <= 0)
		return rc;
	if (tok[0] == '0' && tok[1] != '\0')
		return -EPROTO;
	v = strtoul(tok, NULL, 10);
	if (v > 65535)
		return -EPROTO;
	*port = (uint16_t)v;
	return 1;
}

/* After "UNKNOWN": CRLF, or a space and anything but CR/LF/NUL to CRLF. */
static int v1_unknown(struct pp_v1 *c)
{
	static const char *const end[] = {"\r\n", " "};
	static const char *const crlf[] = {"\r\n"};
	int rc, ch;

	rc = v1_match(c, end, 2);
	if (rc != 2)
		return rc;
	for (;;) {
		if (c->pos == c->len)
			return v1_short(c);
		ch = c->buf[c->pos];
		if (ch == '\r')
			return v1_match(c, crlf, 1);
		if (ch == '\n' || ch == 0)
			return -EPROTO;
		c->pos++;
	}
}

/* After "TCP4 " or "TCP6 ": "SRC DST SPORT DPORT\r\n". */
static int v1_inet(struct pp_v1 *c, int family, struct zcr_pp_info *out)
{
	static const char *const lf[] = {"\n"};
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	int rc;

	if ((rc = v1_addr(c, family, src)) <= 0 ||
	    (rc = v1_addr(c, family, dst)) <= 0 ||
	    (rc = v1_port(c, ' ', &sport)) <= 0 ||
	    (rc = v1_port(c, '\r', &dport)) <= 0 ||
	    (rc = v1_match(c, lf, 1)) <= 0)
		return rc;
	pp_ip_fill(&out->src, &out->src_len, family, src, sport);
	pp_ip_fill(&out->dst, &out->dst_len, family, dst, dport);
	return 1;
}

static int pp_parse_v1(const uint8_t *buf, size_t len, struct zcr_pp_info *out)
{
	static const char *const proxy[] = {"PROXY "};
	static const char *const fams[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};
	struct pp_v1 c;
	int rc;

	c.buf = buf;
	c.len = len < ZCR_PP_V1_MAX ? len : ZCR_PP_V1_MAX;
	c.pos = 0;
	c.full = len >= ZCR_PP_V1_MAX;
	if ((rc = v1_match(&c, proxy, 1)) <= 0 ||
	    (rc = v1_match(&c, fams, 3)) <= 0)
		return rc;
	if (rc == 3) {
		rc = v1_unknown(&c);
		out->local = rc > 0;
	} else {
		rc = v1_inet(&c, rc == 1 ? AF_INET : AF_INET6, out);
	}
	return rc <= 0 ? rc : (int)c.pos;
}

/* ------------------------------------------------------------------ */
/* v2: signature, ver_cmd, fam, length, address block, TLVs             */

/*
 * Checks ver_cmd and fam, as far as len has them. *f gets the address
 * block's family, NULL when there is none to read (LOCAL, AF_UNSPEC).
 * Returns 0 (fine so far) or -EPROTO.
 */
static int v2_head(const uint8_t *buf, size_t len, const struct pp_fam **f)
{
	uint8_t cmd, fam;

	*f = NULL;
	if (len <= 12)
		return 0;
	cmd = buf[12] & 0x0f;
	if ((buf[12] & 0xf0) != PP2_VERSION || cmd > PP2_CMD_PROXY)
		return -EPROTO;
	if (len <= 13)
		return 0;
	/* Families 0-3 (UNSPEC, INET, INET6, UNIX), transports 0-2. */
	fam = buf[13];
	if ((fam >> 4) > 3 || (fam & 0x0f) > 2)
		return -EPROTO;
	/* LOCAL: "the receiver must ... discard the protocol block
	 * including the family". PROXY with UNSPEC: use the real peer. */
	if (cmd == PP2_CMD_LOCAL || fam == PP2_FAM_UNSPEC)
		return 0;
	*f = pp_fam_find(fam, -1);
	return *f ? 0 : -EPROTO; /* DGRAM, or a family without STREAM */
}

/* The TLVs in tlv[0..n): each 1 type byte, 2 length bytes and a value
 * that fits. Contents are not checked. Returns 0 or -EPROTO. */
static int v2_tlvs(const uint8_t *tlv, size_t n)
{
	size_t off = 0, vlen;

	while (off < n) {
		if (n - off < 3)
			return -EPROTO;
		vlen = (size_t)tlv[off + 1] << 8 | tlv[off + 2];
		if (n - off - 3 < vlen)
			return -EPROTO;
		off += 3 + vlen;
	}
	return 0;
}

static void v2_addrs(const struct pp_fam *f, const uint8_t *blk,
                     struct zcr_pp_info *out)
{
	const uint8_t *ports = blk + 2 * f->alen;

	if (f->family == AF_UNIX) {
		pp_sun_fill(&out->src, &out->src_len, blk);
		pp_sun_fill(&out->dst, &out->dst_len, blk + f->alen);
		return;
	}
	pp_ip_fill(&out->src, &out->src_len, f->family, blk,
	           (uint16_t)(ports[0] << 8 | ports[1]));
	pp_ip_fill(&out->dst, &out->dst_len, f->family, blk + f->alen,
	           (uint16_t)(ports[2] << 8 | ports[3]));
}

static int pp_parse_v2(const uint8_t *buf, size_t len, struct zcr_pp_info *out)
{
	const struct pp_fam *f;
	size_t total, blen;
	int rc;

	if (memcmp(buf, pp2_sig, len < 12 ? len : 12))
		return -EPROTO;
	rc = v2_head(buf, len, &f);
	if (rc < 0 || len < ZCR_PP_V2_HDR)
		return rc;
	total = ZCR_PP_V2_HDR + ((size_t)buf[14] << 8 | buf[15]);
	if (total > ZCR_PP_MAX)
		return -EMSGSIZE;
	blen = f ? f->blen : 0;
	if (total < ZCR_PP_V2_HDR + blen)
		return -EPROTO;
	if (len < total)
		return 0;
	if ((buf[12] & 0x0f) == PP2_CMD_LOCAL) {
		out->local = 1;
		return (int)total;
	}
	if (v2_tlvs(buf + ZCR_PP_V2_HDR + blen, total - ZCR_PP_V2_HDR - blen))
		return -EPROTO;
	if (f)
		v2_addrs(f, buf + ZCR_PP_V2_HDR, out);
	else
		out->local = 1;
	return (int)total;
}

int zcr_pp_parse(const uint8_t *buf, size_t len, struct zcr_pp_info *out)
{
	if (!out || (!buf && len))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return 0;
	/* "PROXY " and the v2 signature differ at their first byte. */
	if (buf[0] == 'P')
		return pp_parse_v1(buf, len, out);
	if (buf[0] == pp2_sig[0])
		return pp_parse_v2(buf, len, out);
	return -EPROTO;
}

/* ------------------------------------------------------------------ */
/* Building                                                             */

/* One endpoint as the header carries it. */
struct pp_end {
	uint8_t addr[PP_SUN_PATH]; /* 4, 16 or 108 bytes used, NUL-padded */
	uint16_t port;             /* host order */
};

/* A Unix address: the path name's bytes, or all len says for an
 * abstract name (leading NUL); unnamed stays all zeros. */
static int pp_end_unix(struct pp_end *e, const struct sockaddr *sa,
                       socklen_t len)
{
	const uint8_t *p = (const uint8_t *)sa + PP_SUN_OFF;
	size_t n = len - PP_SUN_OFF;

	if (n > PP_SUN_PATH)
		n = PP_SUN_PATH;
	if (n && p[0])
		n = strnlen((const char *)p, n);
	memcpy(e->addr, p, n);
	return AF_UNIX;
}

/* Fills *e from sa (len bytes); returns the family, or AF_UNSPEC when sa
 * is missing, too short for its family, or of another family. */
static int pp_end_set(struct pp_end *e, const struct sockaddr *sa,
                      socklen_t len)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;

	memset(e, 0, sizeof(*e));
	if (!sa || len < PP_SUN_OFF)
		return AF_UNSPEC;
	if (sa->sa_family == AF_INET && len >= sizeof(s4)) {
		memcpy(&s4, sa, sizeof(s4));
		memcpy(e->addr, &s4.sin_addr, 4);
		e->port = ntohs(s4.sin_port);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(s6)) {
		memcpy(&s6, sa, sizeof(s6));
		memcpy(e->addr, &s6.sin6_addr, 16);
		e->port = ntohs(s6.sin6_port);
		return AF_INET6;
	}
	if (sa->sa_family == AF_UNIX)
		return pp_end_unix(e, sa, len);
	return AF_UNSPEC;
}

/* An IPv4 endpoint as ::ffff:a.b.c.d. */
static void pp_end_map6(struct pp_end *e)
{
	memmove(e->addr + 12, e->addr, 4);
	memset(e->addr, 0, 10);
	e->addr[10] = 0xff;
	e->addr[11] = 0xff;
}

/* Both endpoints in one family the header can carry, or AF_UNSPEC. */
static int pp_ends(struct pp_end e[2], const struct sockaddr *src,
                   socklen_t src_len, const struct sockaddr *dst,
                   socklen_t dst_len)
{
	int fs = pp_end_set(&e[0], src, src_len);
	int fd = pp_end_set(&e[1], dst, dst_len);

	if (fs == fd)
		return fs;
	if (fs == AF_INET && fd == AF_INET6) {
		pp_end_map6(&e[0]);
		return AF_INET6;
	}
	if (fs == AF_INET6 && fd == AF_INET) {
		pp_end_map6(&e[1]);
		return AF_INET6;
	}
	return AF_UNSPEC;
}

static int pp_build_v1(int family, const struct pp_end e[2], uint8_t *buf,
                       size_t cap)
{
	char line[ZCR_PP_V1_MAX + 1], a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	int n;

	if (family != AF_INET && family != AF_INET6) {
		n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
	} else {
		inet_ntop(family, e[0].addr, a, sizeof(a));
		inet_ntop(family, e[1].addr, b, sizeof(b));
		/* At most 11 + 39 + 1 + 39 + 1 + 5 + 1 + 5 + 2 = 104 bytes. */
		n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
		             family == AF_INET ? "TCP4" : "TCP6", a, b,
		             e[0].port, e[1].port);
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL; /* cannot happen, see above */
	if ((size_t)n > cap)
		return -ENOSPC;
	memcpy(buf, line, (size_t)n);
	return n;
}

static int pp_build_v2(int family, const struct pp_end e[2], uint8_t *buf,
                       size_t cap)
{
	const struct pp_fam *f = pp_fam_find(-1, family);
	size_t blen = f ? f->blen : 0;
	uint8_t *p = buf + ZCR_PP_V2_HDR;

	if (cap < ZCR_PP_V2_HDR + blen)
		return -ENOSPC;
	memcpy(buf, pp2_sig, sizeof(pp2_sig));
	buf[12] = PP2_VERSION | (f ? PP2_CMD_PROXY : PP2_CMD_LOCAL);
	buf[13] = f ? f->fam : PP2_FAM_UNSPEC;
	buf[14] = (uint8_t)(blen >> 8);
	buf[15] = (uint8_t)blen;
	if (!f)
		return ZCR_PP_V2_HDR;
	memcpy(p, e[0].addr, f->alen);
	memcpy(p + f->alen, e[1].addr, f->alen);
	if (family != AF_UNIX) {
		p += 2 * f->alen;
		p[0] = (uint8_t)(e[0].port >> 8);
		p[1] = (uint8_t)e[0].port;
		p[2] = (uint8_t)(e[1].port >> 8);
		p[3] = (uint8_t)e[1].port;
	}
	return (int)(ZCR_PP_V2_HDR + blen);
}

int zcr_pp_build(int version, unsigned flags, const struct sockaddr *src,
                 socklen_t src_len, const struct sockaddr *dst,
                 socklen_t dst_len, uint8_t *buf, size_t cap)
{
	struct pp_end e[2];
	int family;

	if ((version != 1 && version != 2) || (flags & ~ZCR_PP_UNIX) || !buf)
		return -EINVAL;
	family = pp_ends(e, src, src_len, dst, dst_len);
	if (family == AF_UNIX && !(flags & ZCR_PP_UNIX))
		family = AF_UNSPEC; /* v2 LOCAL, v1 UNKNOWN */
	if (version == 1)
		return pp_build_v1(family, e, buf, cap);
	return pp_build_v2(family, e, buf, cap);
}

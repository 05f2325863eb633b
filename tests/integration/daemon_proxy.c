/*
 * daemon_proxy.c - the PROXY protocol through the daemon, black-box: a
 * route that sends a v1 or v2 header to its upstream, a route that
 * accepts one from a trusted client (both at once, too), data that comes
 * in the header's packet, headers cut into pieces, malformed headers
 * beside a running transfer, untrusted senders, and the header timeout.
 *
 * The test plays the client and the upstream. Headers are built and
 * checked with the daemon's own zcr_pp_build()/zcr_pp_parse(), which
 * the unit tests (tests/unit/proxyproto.c) hold to the specification.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proxyproto.h"
#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"
#define XFER      (8ull << 20) /* bytes each way of a checked transfer */
#define HEAD_DATA 1000         /* bytes sent in the header's write */
/* The v2 signature; ver_cmd, fam and the length (big endian) follow. */
#define ACCEPT_LOCAL "accept = true; trusted = [ \"127.0.0.1\" ];"
#define SIG2         "\r\n\r\n\0\r\nQUIT\n"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/*
 * Starts a daemon with routes "pp" (la -> ua, proxy-protocol = { pp })
 * and, if la2 is not NULL, "pp2" (la2 -> ua, proxy-protocol = { pp2 }),
 * on the data path of ctx; top: more top-level settings, or NULL.
 */
static int pp_daemon2(struct t_daemon *d, const struct t_ctx *ctx,
                      const struct zc_addr *la, const char *pp,
                      const struct zc_addr *la2, const char *pp2,
                      const struct zc_addr *ua, const char *top)
{
	char cfg[4096], path[256], ls[128], ls2[128], us[128], r2[1024] = "";

	ASSERT_OK(t_addr_str(la, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(ua, us, sizeof(us)));
	if (la2) {
		ASSERT_OK(t_addr_str(la2, ls2, sizeof(ls2)));
		snprintf(r2, sizeof(r2),
		         ", { name = \"pp2\"; listen = \"%s\";\n"
		         "    upstreams = [ \"%s\" ]; mover = \"%s\";\n"
		         "    proxy-protocol = { %s }; }",
		         ls2, us, t_cfg_mover(ctx), pp2);
	}
	snprintf(cfg, sizeof(cfg),
	         "workers = 2;\n%s\n%s\n"
	         "routes = ( { name = \"pp\"; listen = \"%s\";\n"
	         "    upstreams = [ \"%s\" ]; mover = \"%s\";\n"
	         "    proxy-protocol = { %s }; }%s );\n",
	         t_cfg_engine(ctx), top ? top : "", ls, us, t_cfg_mover(ctx),
	         pp, r2);
	return t_daemon_up_cfg(d, "zcrelay.conf", cfg, path, sizeof(path), la);
}

static int pp_daemon(struct t_daemon *d, const struct t_ctx *ctx,
                     const struct zc_addr *la, const struct zc_addr *ua,
                     const char *pp, const char *top)
{
	return pp_daemon2(d, ctx, la, pp, NULL, NULL, ua, top);
}

/* A fresh listener address *la, an upstream listening on *ulfd, and a
 * daemon with route "pp" between them (see pp_daemon). */
static int pp_setup(struct t_daemon *d, const struct t_ctx *ctx,
                    struct zc_addr *la, int *ulfd, const char *pp,
                    const char *top)
{
	struct zc_addr ua;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, la));
	*ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(*ulfd);
	return pp_daemon(d, ctx, la, &ua, pp, top);
}

/* SIGTERM with no session left: the daemon must exit 0 promptly. */
static int daemon_down(struct t_daemon *d)
{
	ASSERT_EQ(t_daemon_stop(d, SIGTERM), 0);
	return T_PASS;
}

/*
 * Reads the PROXY header at the start of fd's stream, consuming exactly
 * its bytes (what follows stays unread): peeks until zcr_pp_parse has an
 * answer. The header goes to hdr (ZCR_PP_MAX bytes), its description to
 * *pi. Returns its length (T_FAIL through the asserts otherwise).
 */
static int read_header(int fd, uint8_t *hdr, struct zcr_pp_info *pi)
{
	uint64_t end = t_now_ms() + 5000;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;
	int rc;

	for (;;) {
		ASSERT_OK(poll(&p, 1, 5000));
		n = recv(fd, hdr, ZCR_PP_MAX, MSG_PEEK);
		ASSERT_GT(n, 0);
		rc = zcr_pp_parse(hdr, (size_t)n, pi);
		ASSERT_OK(rc);
		if (rc > 0)
			break;
		ASSERT_LT(t_now_ms(), end);
		t_sleep_ms(1); /* a prefix: wait for the rest */
	}
	ASSERT_EQ(recv(fd, hdr, (size_t)rc, MSG_WAITALL), rc);
	return rc;
}

/* Same family, address and port? */
static int same_inet(const struct sockaddr_storage *x, socklen_t xlen,
                     const struct sockaddr *y)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)x;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)y;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)x;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)y;

	if (x->ss_family != y->sa_family)
		return 0;
	if (y->sa_family == AF_INET)
		return xlen >= sizeof(*a4) && a4->sin_port == b4->sin_port &&
		       a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return y->sa_family == AF_INET6 && xlen >= sizeof(*a6) &&
	       a6->sin6_port == b6->sin6_port &&
	       !memcmp(&a6->sin6_addr, &b6->sin6_addr, 16);
}

#define ASSERT_SAME_INET(x, xlen, y)                                           \
	do {                                                                   \
		if (!same_inet(x, xlen, (const struct sockaddr *)(y)))         \
			return t_fail(__FILE__, __LINE__, "%s is not %s", #x,  \
			              #y);                                     \
	} while (0)

/* An IPv4 or IPv6 socket address from text. */
static void inet_sa(struct sockaddr_storage *ss, socklen_t *len, const char *ip,
                    unsigned port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return;
	}
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
		abort(); /* a typo in the test */
	*len = sizeof(*s6);
}

/* A PROXY header of version v from src (ip, port) to dst into buf. */
static int build_header(int v, const char *src, unsigned sport, const char *dst,
                        unsigned dport, uint8_t *buf)
{
	struct sockaddr_storage s, t;
	socklen_t slen, tlen;

	inet_sa(&s, &slen, src, sport);
	inet_sa(&t, &tlen, dst, dport);
	return zcr_pp_build(v, 0, (struct sockaddr *)&s, slen,
	                    (struct sockaddr *)&t, tlen, buf, ZCR_PP_MAX);
}

/* Writes the next n bytes of stream r to fd. 0 or -errno. */
static int send_stream(int fd, struct t_rng *r, uint64_t n)
{
	static char buf[65536]; /* the test's own thread only */
	size_t k;

	while (n) {
		k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		t_rng_fill(r, buf, k);
		T_TRY(t_write_all(fd, buf, k));
		n -= k;
	}
	return 0;
}

/* rx received exactly the first n bytes of stream seed, then EOF. */
static int check_rx(const struct t_xfer *rx, uint64_t seed, uint64_t n)
{
	unsigned char want[T_SHA256_LEN];

	t_expect_digest(seed, n, want);
	ASSERT_OK(rx->err);
	ASSERT_EQ(rx->bytes, n);
	ASSERT_TRUE(rx->eof);
	ASSERT_MEMEQ(rx->digest, want, T_SHA256_LEN);
	return T_PASS;
}

/*
 * A whole session after the client's side sent hdr (hlen bytes; may be
 * 0): the client writes hdr and the first HEAD_DATA bytes of stream
 * seed_up in one write, then the rest of XFER; the upstream (accepted on
 * ulfd) sends XFER bytes of seed_down at the same time. If in is not
 * NULL the upstream first reads the daemon's header into in and pi. Both
 * sides must receive exactly the other's stream.
 */
static int session_xfer(const struct zc_addr *la, int ulfd, const uint8_t *hdr,
                        size_t hlen, uint8_t *in, struct zcr_pp_info *pi,
                        struct sockaddr_storage *cname)
{
	const uint64_t seed_up = 11, seed_down = 22;
	uint8_t first[ZCR_PP_MAX + HEAD_DATA];
	struct t_xfer rx_up, tx_down, rx_down;
	socklen_t clen = sizeof(*cname);
	struct t_rng r;
	int c, u, rc;

	c = t_connect(la);
	ASSERT_OK(c);
	ASSERT_EQ(getsockname(c, (struct sockaddr *)cname, &clen), 0);
	t_rng_init(&r, seed_up);
	memcpy(first, hdr, hlen);
	t_rng_fill(&r, first + hlen, HEAD_DATA);
	/* One send: the header and data share a segment. */
	ASSERT_EQ(send(c, first, hlen + HEAD_DATA, MSG_NOSIGNAL),
	          (ssize_t)(hlen + HEAD_DATA));
	u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(u);
	if (in) {
		rc = read_header(u, in, pi);
		if (rc < 0 || rc == T_FAIL)
			return T_FAIL;
	}
	ASSERT_OK(t_receiver_start(&rx_up, u, 0));
	ASSERT_OK(t_receiver_start(&rx_down, c, 0));
	ASSERT_OK(t_sender_start(&tx_down, u, XFER, seed_down, T_XFER_SHUT_WR));
	ASSERT_OK(send_stream(c, &r, XFER - HEAD_DATA));
	ASSERT_EQ(shutdown(c, SHUT_WR), 0);
	ASSERT_OK(t_xfer_join_ms(&tx_down, 60000));
	ASSERT_OK(t_xfer_join_ms(&rx_up, 60000));
	ASSERT_OK(t_xfer_join_ms(&rx_down, 60000));
	rc = check_rx(&rx_up, seed_up, XFER);
	if (rc == T_PASS)
		rc = check_rx(&rx_down, seed_down, XFER);
	close(c);
	close(u);
	return rc;
}

/* Waits for the session line of the client clientstr and checks its
 * byte counts. */
static int check_session_line(const struct t_daemon *d, const char *clientstr)
{
	char line[1024], want[128];

	snprintf(want, sizeof(want), " client=%s ", clientstr);
	ASSERT_OK(t_wait_log_line(d, " session ", want, line, sizeof(line),
	                          5000));
	ASSERT_HAS(line, " route=pp ");
	snprintf(want, sizeof(want), " up=%llu down=%llu ", XFER, XFER);
	ASSERT_HAS(line, want);
	ASSERT_HAS(line, " end=eof");
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Sending a header to the upstream                                     */

/*
 * A checked transfer through a route that sends a header of version
 * send to the upstream (0: none) or accepts one of version accept from
 * the client (0: none), which then comes in the segment of the first
 * data. The upstream must see a header naming the client and the
 * listener, or none; the log must name the client of the header.
 */
static int xfer_case(const struct t_ctx *ctx, int send, int accept)
{
	struct sockaddr_storage cname;
	uint8_t hdr[ZCR_PP_MAX], in[ZCR_PP_MAX];
	struct zcr_pp_info pi;
	struct zc_addr la;
	struct t_daemon d;
	char pp[80] = ACCEPT_LOCAL, cs[128] = "192.0.2.10:4242";
	int ulfd, rc, hlen = 0;

	if (send)
		snprintf(pp, sizeof(pp), "send = %d;", send);
	T_TRY(pp_setup(&d, ctx, &la, &ulfd, pp, NULL));
	if (accept)
		hlen = build_header(accept, "192.0.2.10", 4242, "198.51.100.7",
		                    8443, hdr);
	ASSERT_OK(hlen);
	T_TRY(session_xfer(&la, ulfd, hdr, (size_t)hlen, send ? in : NULL, &pi,
	                   &cname));
	if (send == 1)
		ASSERT_MEMEQ(in, "PROXY TCP4 ", 11);
	if (send == 2)
		ASSERT_MEMEQ(in, SIG2 "\x21\x11", 14);
	if (send) {
		ASSERT_EQ(pi.local, 0);
		ASSERT_SAME_INET(&pi.src, pi.src_len, &cname);
		ASSERT_SAME_INET(&pi.dst, pi.dst_len, &la.ss);
		ASSERT_OK(zc_addr_format((struct sockaddr *)&cname,
		                         sizeof(cname), cs, sizeof(cs)));
	}
	rc = check_session_line(&d, cs);
	close(ulfd);
	return rc ? rc : daemon_down(&d);
}

TEST_MATRIX(test_daemon_proxy_send_v1)
{
	return xfer_case(ctx, 1, 0);
}

TEST_MATRIX(test_daemon_proxy_send_v2)
{
	return xfer_case(ctx, 2, 0);
}

/* ------------------------------------------------------------------ */
/* Accepting a header from a trusted client                            */

/* The client sends a header and data in one segment: the upstream gets
 * only the data, the log names the client of the header. */
TEST_MATRIX(test_daemon_proxy_accept_v1)
{
	return xfer_case(ctx, 0, 1);
}

TEST_MATRIX(test_daemon_proxy_accept_v2)
{
	return xfer_case(ctx, 0, 2);
}

/*
 * A byte each way over a client connection through la, after the client
 * wrote hdr (hlen bytes) and "ping" in one write. The upstream, accepted
 * on ulfd, must first read the header the daemon sends: it goes to
 * in and pi. The client's own address goes to *cname.
 */
static int ping_with_header(const struct zc_addr *la, int ulfd,
                            const uint8_t *hdr, size_t hlen, uint8_t *in,
                            struct zcr_pp_info *pi,
                            struct sockaddr_storage *cname)
{
	socklen_t clen = sizeof(*cname);
	uint8_t out[ZCR_PP_MAX + 4];
	int c, u, rc;

	c = t_connect(la);
	ASSERT_OK(c);
	ASSERT_EQ(getsockname(c, (struct sockaddr *)cname, &clen), 0);
	memcpy(out, hdr, hlen);
	memcpy(out + hlen, "ping", 4);
	ASSERT_OK(t_write_all(c, out, hlen + 4));
	u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(u);
	rc = read_header(u, in, pi);
	if (rc == T_FAIL || t_ping_pong(c, u, "ping", 4) == T_FAIL)
		return T_FAIL;
	return rc;
}

/*
 * accept and send on the same route: the upstream's header carries the
 * client the accepted header named (IPv6 here, byte for byte what
 * zcr_pp_build makes of it), for v1 on route pp and v2 on route pp2. A
 * header without addresses (PROXY UNKNOWN) leaves the real client.
 */
TEST(test_daemon_proxy_accept_and_send)
{
	static const char trust[] = "trusted = [ \"127.0.0.1\" ]";
	char pp1[128], pp2[128], want[128];
	uint8_t hdr[ZCR_PP_MAX], in[ZCR_PP_MAX], exp[ZCR_PP_MAX];
	struct sockaddr_storage cname;
	struct zc_addr la, la2, ua;
	struct zcr_pp_info pi;
	struct t_daemon d;
	int ulfd, rc, hlen, elen, v;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &la2));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	snprintf(pp1, sizeof(pp1), "accept = true; %s; send = 1;", trust);
	snprintf(pp2, sizeof(pp2), "accept = true; %s; send = 2;", trust);
	T_TRY(pp_daemon2(&d, ctx, &la, pp1, &la2, pp2, &ua, NULL));
	ASSERT_OK(t_wait_listen(&la2, 5000));

	for (v = 1; v <= 2; v++) {
		/* The client sends v2 to route pp and v1 to route pp2. */
		hlen = build_header(3 - v, "2001:db8::10", 4243 + v,
		                    "2001:db8::1", 443, hdr);
		elen = build_header(v, "2001:db8::10", 4243 + v, "2001:db8::1",
		                    443, exp);
		ASSERT_GT(hlen, 0);
		ASSERT_GT(elen, 0);
		rc = ping_with_header(v == 1 ? &la : &la2, ulfd, hdr,
		                      (size_t)hlen, in, &pi, &cname);
		if (rc == T_FAIL)
			return T_FAIL;
		ASSERT_EQ(rc, elen);
		ASSERT_MEMEQ(in, exp, (size_t)elen);
		snprintf(want, sizeof(want), "client=[2001:db8::10]:%d",
		         4243 + v);
		ASSERT_OK(
		        t_wait_log_line(&d, " session ", want, NULL, 0, 5000));
	}

	/* UNKNOWN: the upstream hears of the real client and listener. */
	hlen = (int)strlen("PROXY UNKNOWN\r\n");
	rc = ping_with_header(&la, ulfd, (const uint8_t *)"PROXY UNKNOWN\r\n",
	                      (size_t)hlen, in, &pi, &cname);
	if (rc == T_FAIL)
		return T_FAIL;
	ASSERT_EQ(pi.local, 0);
	ASSERT_SAME_INET(&pi.src, pi.src_len, &cname);
	ASSERT_SAME_INET(&pi.dst, pi.dst_len, &la.ss);
	ASSERT_OK(zc_addr_format((struct sockaddr *)&cname, sizeof(cname),
	                         want + 8, sizeof(want) - 8));
	memcpy(want, " client=", 8);
	ASSERT_OK(t_wait_log_line(&d, " session ", want, NULL, 0, 5000));
	close(ulfd);
	return daemon_down(&d);
}

/*
 * Clients of Unix listeners: v2 sends LOCAL (16 bytes, no addresses), as
 * HAProxy does, since HAProxy 2.6 resets on the AF_UNIX family; with
 * send-unix = true it carries both as AF_UNIX blocks, the client unnamed
 * and the listener's path.
 */
TEST(test_daemon_proxy_send_unix)
{
	const struct sockaddr_un *dst, *want;
	struct sockaddr_storage cname;
	uint8_t in[ZCR_PP_MAX];
	struct zc_addr la, la2, ua;
	struct zcr_pp_info pi;
	struct t_daemon d;
	int ulfd, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_UNIX, &la));
	ASSERT_OK(t_free_addr(AF_UNIX, &la2));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	T_TRY(pp_daemon2(&d, ctx, &la, "send = 2;", &la2,
	                 "send = 2; send-unix = true;", &ua, NULL));
	ASSERT_OK(t_wait_listen(&la2, 5000));
	rc = ping_with_header(&la, ulfd, (const uint8_t *)"", 0, in, &pi,
	                      &cname);
	if (rc == T_FAIL)
		return T_FAIL;
	ASSERT_EQ(rc, 16);
	ASSERT_MEMEQ(in, SIG2 "\x20\x00\x00\x00", 16);
	ASSERT_EQ(pi.local, 1);

	rc = ping_with_header(&la2, ulfd, (const uint8_t *)"", 0, in, &pi,
	                      &cname);
	if (rc == T_FAIL)
		return T_FAIL;
	ASSERT_MEMEQ(in, SIG2 "\x21\x31", 14);
	ASSERT_EQ(pi.local, 0);
	ASSERT_EQ(pi.src.ss_family, AF_UNIX);
	ASSERT_EQ(pi.src_len, offsetof(struct sockaddr_un, sun_path));
	dst = (const struct sockaddr_un *)&pi.dst;
	want = (const struct sockaddr_un *)&la2.ss;
	ASSERT_EQ(dst->sun_family, AF_UNIX);
	ASSERT_STREQ(dst->sun_path, want->sun_path);
	ASSERT_EQ(t_wait_log_count(&d, "info session ", " client=unix: ", 2,
	                           5000),
	          2);
	rc = daemon_down(&d);
	t_cleanup_unix(&la);
	t_cleanup_unix(&la2);
	close(ulfd);
	return rc;
}

/*
 * Headers that arrive in pieces, 50 ms apart: v1 in three writes, v2 in
 * four (one inside the signature, one inside the address block); the
 * data follows in the last piece.
 */
TEST(test_daemon_proxy_accept_split)
{
	static const unsigned cuts[2][4] = {{9, 23, 0, 0}, {5, 16, 20, 0}};
	uint8_t hdr[ZCR_PP_MAX + 8];
	struct zc_addr la;
	struct t_daemon d;
	char want[64];
	int ulfd, hlen, v, c, u, one = 1;
	unsigned k, from;

	T_TRY(pp_setup(&d, ctx, &la, &ulfd, ACCEPT_LOCAL, NULL));
	for (v = 1; v <= 2; v++) {
		hlen = build_header(v, "192.0.2.33", 1000 + v, "198.51.100.9",
		                    80, hdr);
		ASSERT_GT(hlen, 24);
		memcpy(hdr + hlen, "payload!", 8);
		c = t_connect(&la);
		ASSERT_OK(c);
		ASSERT_EQ(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one,
		                     sizeof(one)),
		          0);
		from = 0;
		for (k = 0; k < 4 && cuts[v - 1][k]; k++) {
			ASSERT_OK(t_write_all(c, hdr + from,
			                      cuts[v - 1][k] - from));
			from = cuts[v - 1][k];
			t_sleep_ms(50);
		}
		ASSERT_OK(t_write_all(c, hdr + from, (size_t)hlen + 8 - from));
		u = t_accept_ms(ulfd, 5000);
		ASSERT_OK(u);
		T_TRY(t_ping_pong(c, u, "payload!", 8));
		snprintf(want, sizeof(want), " client=192.0.2.33:%d ",
		         1000 + v);
		ASSERT_OK(
		        t_wait_log_line(&d, " session ", want, NULL, 0, 5000));
	}
	close(ulfd);
	return daemon_down(&d);
}

/* ------------------------------------------------------------------ */
/* Bad input                                                            */

/* What a malformed header's client sends. */
struct bad {
	const char *what;
	const char *data;
	size_t len; /* 0: strlen(data) */
	int eof;    /* then shuts its side down */
};

static const struct bad bads[] = {
        {"HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0},
        {"port out of range", "PROXY TCP4 192.0.2.1 198.51.100.1 99999 80\r\n",
         0, 0},
        {"bare LF", "PROXY TCP4 192.0.2.1 198.51.100.1 1 80\n", 0, 0},
        {"family mismatch", "PROXY TCP6 192.0.2.1 198.51.100.1 1 80\r\n", 0, 0},
        {"too long",
         "PROXY TCP4 1111111111111111111111111111111111111111111111111111"
         "11111111111111111111111111111111111111111111111111111111111111",
         0, 0},
        {"v2 version 3",
         SIG2 "\x31\x11\x00\x0c"
              "abcdefghijkl",
         16 + 12, 0},
        {"v2 too long", SIG2 "\x21\x11\x07\xd0", 16, 0},
        {"v2 short block",
         SIG2 "\x21\x11\x00\x04"
              "abcd",
         16 + 4, 0},
        {"EOF inside", "PROXY TCP4 192.0.2.1 19", 0, 1},
};

/* A client sending b must be closed within 2 s with a log line. */
static int bad_client(const struct t_daemon *d, const struct zc_addr *la,
                      const struct bad *b, int nth)
{
	size_t len = b->len ? b->len : strlen(b->data);
	int c, r;

	c = t_connect(la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, b->data, len));
	if (b->eof)
		ASSERT_EQ(shutdown(c, SHUT_WR), 0);
	r = t_wait_eof(c, 2000);
	close(c);
	if (!t_is_closed(r))
		return t_fail(__FILE__, __LINE__, "%s: not closed (%d)",
		              b->what, r);
	if (t_wait_log_count(d, "bad PROXY header", NULL, nth, 2000) != nth)
		return t_fail(__FILE__, __LINE__, "%s: no log line", b->what);
	return T_PASS;
}

/*
 * Malformed headers while a good session transfers: each bad client is
 * closed and logged, none reaches the upstream, and the good transfer
 * ends byte-exact.
 */
TEST_MATRIX(test_daemon_proxy_malformed)
{
	const uint64_t seed = 33, half = 4u << 20;
	uint8_t hdr[ZCR_PP_MAX];
	struct zc_addr la;
	struct t_xfer rx;
	struct t_daemon d;
	struct t_rng r;
	int ulfd, hlen, c, u;
	size_t i;

	T_TRY(pp_setup(&d, ctx, &la, &ulfd, ACCEPT_LOCAL, NULL));
	hlen = build_header(1, "192.0.2.50", 5050, "198.51.100.1", 80, hdr);
	ASSERT_GT(hlen, 0);
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, hdr, (size_t)hlen));
	u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(u);
	ASSERT_OK(t_receiver_start(&rx, u, 0));
	t_rng_init(&r, seed);
	ASSERT_OK(send_stream(c, &r, half));

	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		T_TRY(bad_client(&d, &la, &bads[i], (int)i + 1));
	}
	ASSERT_ERR(t_accept_ms(ulfd, 100), -ETIMEDOUT);

	ASSERT_OK(send_stream(c, &r, half));
	ASSERT_EQ(shutdown(c, SHUT_WR), 0);
	ASSERT_OK(t_xfer_join_ms(&rx, 60000));
	T_TRY(check_rx(&rx, seed, 2 * half));
	close(u);
	ASSERT_EQ(t_wait_eof(c, 5000), 0);
	close(c);
	ASSERT_OK(t_wait_log_line(&d, " session ", " client=192.0.2.50:5050 ",
	                          NULL, 0, 5000));
	close(ulfd);
	return daemon_down(&d);
}

/* A client outside the trusted list is closed at once, not after the
 * header timeout, whatever it sends, and never reaches the upstream. */
TEST(test_daemon_proxy_untrusted)
{
	uint8_t hdr[ZCR_PP_MAX];
	struct zc_addr la;
	struct t_daemon d;
	uint64_t t0;
	int ulfd, hlen, c, r, i;

	T_TRY(pp_setup(&d, ctx, &la, &ulfd,
	               "accept = true; trusted = [ \"10.0.0.0/8\" ]; "
	               "timeout = 10000;",
	               NULL));
	hlen = build_header(2, "10.1.2.3", 999, "10.0.0.1", 80, hdr);
	ASSERT_GT(hlen, 0);
	for (i = 1; i <= 2; i++) {
		t0 = t_now_ms();
		c = t_connect(&la);
		ASSERT_OK(c);
		if (i == 2) /* a well-formed header changes nothing */
			ASSERT_OK(t_write_all(c, hdr, (size_t)hlen));
		r = t_wait_eof(c, 5000);
		close(c);
		ASSERT_TRUE(t_is_closed(r));
		ASSERT_LT(t_now_ms() - t0, 2000);
		ASSERT_EQ(t_wait_log_count(&d, "client=127.0.0.1:",
		                           "rejected: not a trusted PROXY "
		                           "sender",
		                           i, 2000),
		          i);
	}
	ASSERT_ERR(t_accept_ms(ulfd, 100), -ETIMEDOUT);
	close(ulfd);
	return daemon_down(&d);
}

/*
 * Slowloris: a client that stops inside its header ("PROXY TCP4 1"), and
 * one that sends nothing, are closed after the header timeout (500 ms),
 * logged, and counted as proxy timeouts on /metrics.
 */
TEST(test_daemon_proxy_timeout)
{
	char top[160], as[128], *body = NULL;
	struct zc_addr la, aa;
	struct t_daemon d;
	uint64_t t0, ms;
	int ulfd, c[2], r, i;

	ASSERT_OK(t_free_addr(AF_INET, &aa));
	ASSERT_OK(t_addr_str(&aa, as, sizeof(as)));
	snprintf(top, sizeof(top), "admin = \"%s\";", as);
	T_TRY(pp_setup(&d, ctx, &la, &ulfd, ACCEPT_LOCAL " timeout = 500;",
	               top));
	t0 = t_now_ms();
	for (i = 0; i < 2; i++) {
		c[i] = t_connect(&la);
		ASSERT_OK(c[i]);
	}
	ASSERT_OK(t_write_all(c[0], "PROXY TCP4 1", 12));
	for (i = 0; i < 2; i++) {
		r = t_wait_eof(c[i], 5000);
		ms = t_now_ms() - t0;
		close(c[i]);
		ASSERT_TRUE(t_is_closed(r));
		ASSERT_GE(ms, 450);
		ASSERT_LE(ms, 2500);
	}
	ASSERT_EQ(t_wait_log_count(&d, "PROXY header timeout", NULL, 2, 2000),
	          2);
	ASSERT_ERR(t_accept_ms(ulfd, 100), -ETIMEDOUT);

	ASSERT_EQ(t_http_get(&aa, "/metrics", &body), 200);
	ASSERT_EQ(t_metric(body, "zcrelay_route_timeouts_total{route=\"pp\","
	                         "kind=\"proxy\"}"),
	          2);
	ASSERT_EQ(t_metric(body, "zcrelay_route_rejected_total{route=\"pp\","
	                         "reason=\"proxy\"}"),
	          0);
	ASSERT_EQ(t_metric(body, "zcrelay_route_sessions_active{route=\"pp\"}"),
	          0);
	free(body);
	close(ulfd);
	return daemon_down(&d);
}

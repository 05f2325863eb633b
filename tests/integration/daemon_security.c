/*
 * daemon_security.c - what a hostile client cannot make the relay do.
 *
 * No open proxy: whatever a client sends (an HTTP CONNECT, a SOCKS5
 * greeting, a PROXY header on a route that does not accept one), its
 * bytes go verbatim to the configured upstream and nowhere else.
 * Limits hold under a flood: hundreds of connects from one address never
 * get more than max-conns-per-client sessions to the upstream.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

struct sec {
	struct t_daemon d;
	struct zc_addr la, ua;
	int ulfd;
};

static int sec_start(struct sec *S, const struct t_ctx *ctx, const char *extra)
{
	return t_daemon_route1(&S->d, ctx, &S->la, &S->ua, &S->ulfd, extra);
}

/* The client sends msg; the upstream must get exactly msg. Then the
 * upstream answers and the client gets exactly that. */
static int verbatim(struct sec *S, const char *msg, size_t n)
{
	char got[256];
	int c = t_connect(&S->la), u;

	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, msg, n));
	u = t_accept_ms(S->ulfd, 2000);
	ASSERT_OK(u);
	ASSERT_EQ(t_read_full(u, got, n, 2000), (ssize_t)n);
	ASSERT_MEMEQ(got, msg, n);
	ASSERT_OK(t_write_all(u, "ok", 2));
	ASSERT_EQ(t_read_full(c, got, 2, 2000), 2);
	ASSERT_MEMEQ(got, "ok", 2);
	close(c);
	ASSERT_EQ(t_is_closed(t_wait_eof(u, 2000)), 1);
	close(u);
	return T_PASS;
}

TEST_MATRIX(test_security_no_open_proxy)
{
	static const char connect_req[] = "CONNECT 10.1.2.3:22 HTTP/1.1\r\n"
	                                  "Host: 10.1.2.3:22\r\n\r\n";
	static const char socks5[] = "\x05\x01\x00";
	static const char socks5_req[] = "\x05\x01\x00\x01\x0a\x01\x02\x03"
	                                 "\x00\x16";
	static const char proxy_v1[] = "PROXY TCP4 10.9.9.9 127.0.0.1 1 2\r\n";
	struct pollfd p;
	struct sec S;
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(sec_start(&S, ctx, ""));
	if ((rc = verbatim(&S, connect_req, sizeof(connect_req) - 1)) ||
	    (rc = verbatim(&S, socks5, sizeof(socks5) - 1)) ||
	    (rc = verbatim(&S, socks5_req, sizeof(socks5_req) - 1)) ||
	    (rc = verbatim(&S, proxy_v1, sizeof(proxy_v1) - 1)))
		return rc;
	/* Every session went to the one upstream, each one connection. */
	ASSERT_EQ(t_wait_log_count(&S.d, "session ", " end=", 4, 3000), 4);
	p = (struct pollfd){S.ulfd, POLLIN, 0};
	ASSERT_EQ(poll(&p, 1, 200), 0); /* no extra connection */
	ASSERT_EQ(t_log_count(&S.d, "connect:", NULL), 0);
	close(S.ulfd);
	return t_daemon_down(&S.d);
}

/* 300 connects at once from 127.0.0.3 with max-conns-per-client = 5:
 * the upstream never holds more than 5 of them; a client from another
 * address still gets through. */
TEST(test_security_client_flood_bounded)
{
	enum { FLOOD = 300, MAXC = 5 };
	int cl[FLOOD], up[FLOOD], nup = 0, i, fd, c, u;
	struct t_ctx ctx0 = {ZC_MOVER_AUTO, ZC_ENGINE_AUTO, NULL};
	struct sec S;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(sec_start(&S, &ctx0, "max-conns-per-client = 5;"));
	for (i = 0; i < FLOOD; i++) {
		cl[i] = t_connect_from(&S.la, "127.0.0.3");
		ASSERT_OK(cl[i]);
	}
	/* Accept what reaches the upstream until it stays quiet. */
	while ((fd = t_accept_ms(S.ulfd, 500)) >= 0) {
		ASSERT_LT(nup, FLOOD);
		up[nup++] = fd;
	}
	ASSERT_EQ(nup, MAXC);
	ASSERT_EQ(t_wait_log_count(&S.d, "max-conns-per-client", NULL,
	                           FLOOD - MAXC, 5000),
	          FLOOD - MAXC);
	/* Someone else is not locked out by the flood. */
	c = t_connect_from(&S.la, "127.0.0.4");
	ASSERT_OK(c);
	u = t_accept_ms(S.ulfd, 2000);
	ASSERT_OK(u);
	ASSERT_OK(t_ping(c, u));
	close(c);
	close(u);
	for (i = 0; i < FLOOD; i++)
		close(cl[i]);
	for (i = 0; i < nup; i++)
		close(up[i]);
	close(S.ulfd);
	return t_daemon_down(&S.d);
}

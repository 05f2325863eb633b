/*
 * daemon_limits.c - limits and timeouts of a route, set in a config
 * file: max-conns and max-conns-per-client turn clients away at once
 * and let the established ones be; halfclose-timeout ends a session
 * whose other way stays quiet; connect-timeout is per route.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"
#define NSESS     4

/* ------------------------------------------------------------------ */
/* Helpers (the shared ones are in tests/lib/tdaemon.c)                */

/* A daemon with one route "r" in front of one upstream listener, and
 * the sessions a test holds open through it. */
struct lim {
	struct t_daemon d;
	struct zc_addr la, ua;
	int ulfd;
	int c[NSESS], u[NSESS];
};

/* Starts L's daemon: one worker (a session's end is counted before the
 * next client is accepted), ctx's engine and mover, and the route
 * settings extra. */
static int lim_start(struct lim *L, const struct t_ctx *ctx, const char *extra)
{
	int i;

	for (i = 0; i < NSESS; i++)
		L->c[i] = L->u[i] = -1;
	return t_daemon_route1(&L->d, ctx, &L->la, &L->ua, &L->ulfd, extra);
}

/* Opens held session i from src (NULL: 127.0.0.1). */
static int lim_open(struct lim *L, int i, const char *src)
{
	return t_session(&L->la, src, &L->ulfd, 1, &L->c[i], &L->u[i], NULL);
}

/* Closes held session i and waits until the daemon has logged the end
 * of n sessions in all. */
static int lim_close(struct lim *L, int i, int n)
{
	close(L->c[i]);
	close(L->u[i]);
	L->c[i] = L->u[i] = -1;
	ASSERT_EQ(t_wait_log_count(&L->d, " session ", " end=", n, 5000), n);
	return T_PASS;
}

/* Every held session still relays. */
static int lim_ping_all(const struct lim *L)
{
	int i, rc;

	for (i = 0; i < NSESS; i++)
		if (L->c[i] >= 0 && (rc = t_ping(L->c[i], L->u[i])))
			return rc;
	return T_PASS;
}

/* A client from src that must be turned away at once (within 1 s,
 * without reaching the upstream), the n-th with the log line why. */
static int lim_rejected(struct lim *L, const char *src, const char *why, int n)
{
	uint64_t ms;

	T_TRY(t_expect_closed(&L->la, src, 1000, &ms));
	ASSERT_EQ(t_wait_log_count(&L->d, why, " route=r ", n, 2000), n);
	ASSERT_ERR(t_accept_ms(L->ulfd, 0), -ETIMEDOUT);
	return T_PASS;
}

/* Closes what is still held, then stops the daemon. */
static int lim_stop(struct lim *L)
{
	int i;

	for (i = 0; i < NSESS; i++)
		if (L->c[i] >= 0) {
			close(L->c[i]);
			close(L->u[i]);
		}
	close(L->ulfd);
	return t_daemon_down(&L->d);
}

/* ------------------------------------------------------------------ */
/* Connection limits                                                    */

#define MAXCONN "rejected: route at max-conns"
#define MAXCLI  "rejected: client at max-conns-per-client"

/*
 * max-conns 3: three sessions relay; the fourth client is closed at
 * once and never reaches the upstream, and the three keep working; once
 * one of them has ended a new client gets in, and the next is turned
 * away again.
 */
TEST(test_daemon_limit_max_conns)
{
	struct lim L;
	int i, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	rc = lim_start(&L, ctx, "max-conns = 3;");
	for (i = 0; rc == T_PASS && i < 3; i++)
		rc = lim_open(&L, i, NULL);
	if (rc || (rc = lim_rejected(&L, NULL, MAXCONN, 1)) ||
	    (rc = lim_ping_all(&L)))
		return rc;
	rc = lim_close(&L, 0, 1);
	if (rc || (rc = lim_open(&L, 0, NULL)) ||
	    (rc = lim_rejected(&L, NULL, MAXCONN, 2)) ||
	    (rc = lim_ping_all(&L)))
		return rc;
	ASSERT_EQ(t_log_count(&L.d, "rejected", NULL), 2);
	return lim_stop(&L);
}

/*
 * max-conns-per-client 2: a third connection from 127.0.0.1 is closed
 * at once while 127.0.0.2 still gets two; when one of 127.0.0.1's
 * sessions has ended it may connect again.
 */
TEST(test_daemon_limit_per_client)
{
	struct lim L;
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	rc = lim_start(&L, ctx, "max-conns-per-client = 2; max-conns = 10;");
	if (rc || (rc = lim_open(&L, 0, "127.0.0.1")) ||
	    (rc = lim_open(&L, 1, "127.0.0.1")) ||
	    (rc = lim_rejected(&L, "127.0.0.1", MAXCLI, 1)))
		return rc;
	ASSERT_EQ(t_log_count(&L.d, MAXCLI, " client=127.0.0.1:"), 1);
	if ((rc = lim_open(&L, 2, "127.0.0.2")) ||
	    (rc = lim_open(&L, 3, "127.0.0.2")) ||
	    (rc = lim_rejected(&L, "127.0.0.2", MAXCLI, 2)) ||
	    (rc = lim_ping_all(&L)))
		return rc;
	ASSERT_EQ(t_log_count(&L.d, MAXCLI, " client=127.0.0.2:"), 1);
	rc = lim_close(&L, 1, 1);
	if (rc || (rc = lim_open(&L, 1, "127.0.0.1")) ||
	    (rc = lim_rejected(&L, "127.0.0.1", MAXCLI, 3)) ||
	    (rc = lim_ping_all(&L)))
		return rc;
	ASSERT_EQ(t_log_count(&L.d, MAXCONN, NULL), 0);
	return lim_stop(&L);
}

/* ------------------------------------------------------------------ */
/* Timeouts                                                             */

/*
 * halfclose-timeout 300 ms: the client shuts down its write side (the
 * upstream gets the EOF) and the upstream stays silent: the session
 * ends about 300 ms later, on every data path.
 */
TEST_MATRIX(test_daemon_halfclose_timeout)
{
	struct lim L;
	uint64_t t0, ms;
	int rc, r;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	rc = lim_start(&L, ctx, "halfclose-timeout = \"300ms\";");
	if (rc || (rc = lim_open(&L, 0, NULL)))
		return rc;
	t0 = t_now_ms();
	ASSERT_EQ(shutdown(L.c[0], SHUT_WR), 0);
	ASSERT_EQ(t_wait_eof(L.u[0], 2000), 0);
	r = t_wait_eof(L.c[0], 3000);
	ms = t_now_ms() - t0;
	if (!t_is_closed(r))
		return t_fail(
		        __FILE__, __LINE__,
		        "client not closed: t_wait_eof = %d after %llu ms", r,
		        (unsigned long long)ms);
	ASSERT_GE(ms, 250);
	ASSERT_LE(ms, 2000);
	ASSERT_EQ(t_wait_log_count(&L.d, " session ", " end=halfclose-timeout ",
	                           1, 2000),
	          1);
	return lim_stop(&L);
}

/*
 * connect-timeout per route: two routes in one file, both to an
 * upstream that never answers, one giving up after 300 ms and the other
 * after 1200 ms.
 */
TEST(test_daemon_connect_timeout_per_route)
{
	struct t_blackhole b;
	struct zc_addr la[2];
	char ls[2][64], bs[64], line[160];
	struct t_daemon d;
	uint64_t ms;
	int rc, i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(t_blackhole_open(&b));
	ASSERT_OK(t_addr_str(&b.a, bs, sizeof(bs)));
	for (i = 0; i < 2; i++) {
		ASSERT_OK(t_free_addr(AF_INET, &la[i]));
		ASSERT_OK(t_addr_str(&la[i], ls[i], sizeof(ls[i])));
	}
	T_TRY(t_daemon_conf(
	        &d, &la[1],
	        "routes = (\n"
	        "  { name = \"fast\"; listen = \"%s\"; "
	        "upstreams = \"%s\"; connect-timeout = 300; },\n"
	        "  { name = \"slow\"; listen = \"%s\"; "
	        "upstreams = \"%s\"; connect-timeout = \"1200ms\"; }\n"
	        ");\n",
	        ls[0], bs, ls[1], bs));
	T_TRY(t_expect_closed(&la[0], NULL, 1000, &ms));
	ASSERT_GE(ms, 250);
	T_TRY(t_expect_closed(&la[1], NULL, 2500, &ms));
	ASSERT_GE(ms, 1150);
	for (i = 0; i < 2; i++) {
		snprintf(line, sizeof(line), "route=%s upstream=%s connect: %s",
		         i ? "slow" : "fast", bs, strerror(ETIMEDOUT));
		ASSERT_EQ(t_wait_log_count(&d, line, NULL, 1, 2000), 1);
	}
	ASSERT_EQ(t_log_count(&d, "no upstream reachable", NULL), 2);
	rc = t_daemon_down(&d);
	t_blackhole_close(&b);
	return rc;
}

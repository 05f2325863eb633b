/*
 * daemon_upstream.c - how the daemon picks and reaches upstreams:
 * refused and unanswered connects (--connect-timeout), retrying the next
 * upstream, and round-robin across upstreams.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* ------------------------------------------------------------------ */
/* Helpers (the shared ones are in tests/lib/tdaemon.c)                */

/* A byte each way over an end-to-end connection c <-> u, then both
 * sides close cleanly. */
static int ping_and_close(int c, int u)
{
	T_TRY(t_ping(c, u));
	ASSERT_EQ(shutdown(c, SHUT_WR), 0);
	ASSERT_EQ(t_wait_eof(u, 2000), 0);
	ASSERT_EQ(shutdown(u, SHUT_WR), 0);
	ASSERT_EQ(t_wait_eof(c, 2000), 0);
	close(c);
	close(u);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Refused upstreams                                                    */

/* The only upstream refuses: the client is closed at once, the log
 * says why, and the daemon keeps serving. */
TEST(test_daemon_upstream_refused)
{
	struct t_daemon d;
	struct zc_addr la, ua;
	struct t_dargs a;
	char line[256];
	const char *us;
	uint64_t ms;
	int i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &ua)); /* nobody listens there */
	t_dargs_listen(&a, &la);
	us = t_dargs_addr(&a, "--upstream", &ua);
	T_TRY(t_daemon_up(&d, &a, &la));
	for (i = 1; i <= 3; i++) {
		T_TRY(t_expect_closed(&la, NULL, 2000, &ms));
		ASSERT_EQ(t_wait_log_count(&d, "no upstream reachable",
		                           strerror(ECONNREFUSED), i, 2000),
		          i);
	}
	snprintf(line, sizeof(line), "route=default upstream=%s connect: %s",
	         us, strerror(ECONNREFUSED));
	ASSERT_EQ(t_log_count(&d, line, NULL), 3);
	return t_daemon_down(&d);
}

/* Every upstream fails (a refused port, a missing Unix path): each is
 * tried once, then the client is closed. */
TEST(test_daemon_upstream_all_fail)
{
	struct t_daemon d;
	struct zc_addr la, u1, u2;
	struct t_dargs a;
	char l1[256], l2[256];
	const char *s1, *s2;
	uint64_t ms;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &u1));
	ASSERT_OK(t_free_addr(AF_UNIX, &u2));
	t_dargs_listen(&a, &la);
	s1 = t_dargs_addr(&a, "--upstream", &u1);
	s2 = t_dargs_addr(&a, "--upstream", &u2);
	t_dargs_add(&a, "--workers");
	t_dargs_add(&a, "1");
	T_TRY(t_daemon_up(&d, &a, &la));
	T_TRY(t_expect_closed(&la, NULL, 2000, &ms));
	ASSERT_EQ(t_wait_log_count(&d, "no upstream reachable", NULL, 1, 2000),
	          1);
	snprintf(l1, sizeof(l1), "route=default upstream=%s connect: ", s1);
	snprintf(l2, sizeof(l2), "route=default upstream=%s connect: ", s2);
	ASSERT_EQ(t_log_count(&d, l1, NULL), 1);
	ASSERT_EQ(t_log_count(&d, l2, NULL), 1);
	return t_daemon_down(&d);
}

/* Two upstreams, the first refusing: every connection ends up on the
 * second, including those whose round-robin turn was the first. */
TEST(test_daemon_upstream_retry_next)
{
	struct t_daemon d;
	struct zc_addr la, dead, ua;
	struct t_dargs a;
	char line[256];
	const char *ds, *us;
	int ulfd, i, c, u;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &dead));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	t_dargs_listen(&a, &la);
	ds = t_dargs_addr(&a, "--upstream", &dead);
	us = t_dargs_addr(&a, "--upstream", &ua);
	t_dargs_add(&a, "--workers");
	t_dargs_add(&a, "1");
	T_TRY(t_daemon_up(&d, &a, &la));
	for (i = 0; i < 6; i++) {
		c = t_connect(&la);
		ASSERT_OK(c);
		u = t_accept_ms(ulfd, 2000);
		ASSERT_OK(u);
		T_TRY(ping_and_close(c, u));
	}
	close(ulfd);
	snprintf(line, sizeof(line), "upstream=%s ", us);
	ASSERT_EQ(t_wait_log_count(&d, " end=eof", line, 6, 2000), 6);
	/* one worker, round-robin: every second connection tried the dead
	 * one first */
	snprintf(line, sizeof(line), "route=default upstream=%s connect: %s",
	         ds, strerror(ECONNREFUSED));
	ASSERT_EQ(t_log_count(&d, line, NULL), 3);
	ASSERT_EQ(t_log_count(&d, "no upstream reachable", NULL), 0);
	return t_daemon_down(&d);
}

/* ------------------------------------------------------------------ */
/* An upstream that does not answer                                     */

/* --connect-timeout 300 and an upstream that never answers: the client
 * is closed after the timeout, well within 2 s. */
TEST(test_daemon_upstream_connect_timeout)
{
	struct t_blackhole b;
	struct t_daemon d;
	struct zc_addr la;
	struct t_dargs a;
	char line[256];
	const char *bs;
	uint64_t ms;
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(t_blackhole_open(&b));
	ASSERT_OK(t_free_addr(AF_INET, &la));
	t_dargs_listen(&a, &la);
	bs = t_dargs_addr(&a, "--upstream", &b.a);
	t_dargs_add(&a, "--connect-timeout");
	t_dargs_add(&a, "300");
	T_TRY(t_daemon_up(&d, &a, &la));
	T_TRY(t_expect_closed(&la, NULL, 2000, &ms));
	ASSERT_GE(ms, 250); /* it did wait for the upstream */
	ASSERT_EQ(t_wait_log_count(&d, "no upstream reachable", NULL, 1, 2000),
	          1);
	snprintf(line, sizeof(line), "route=default upstream=%s connect: %s",
	         bs, strerror(ETIMEDOUT));
	ASSERT_EQ(t_log_count(&d, line, NULL), 1);
	rc = t_daemon_down(&d);
	t_blackhole_close(&b);
	return rc;
}

/* A session through la that reaches the upstream listener ulfd within
 * 2 s (*ms after the connect), then pings and closes. */
static int timed_session(const struct zc_addr *la, int ulfd, uint64_t *ms)
{
	uint64_t t0 = t_now_ms();
	int c, u;

	c = t_connect(la);
	ASSERT_OK(c);
	u = t_accept_ms(ulfd, 2000);
	*ms = t_now_ms() - t0;
	ASSERT_OK(u);
	return ping_and_close(c, u);
}

/* The same with a healthy second upstream: the session goes there after
 * the timeout; the next connection (its turn is the healthy one) goes
 * straight there. */
TEST(test_daemon_upstream_timeout_then_next)
{
	struct t_blackhole b;
	struct t_daemon d;
	struct zc_addr la, ua;
	struct t_dargs a;
	char line[256];
	const char *bs, *us;
	uint64_t ms;
	int ulfd, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(t_blackhole_open(&b));
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	t_dargs_listen(&a, &la);
	bs = t_dargs_addr(&a, "--upstream", &b.a);
	us = t_dargs_addr(&a, "--upstream", &ua);
	t_dargs_add(&a, "--connect-timeout");
	t_dargs_add(&a, "300");
	t_dargs_add(&a, "--workers");
	t_dargs_add(&a, "1");
	T_TRY(t_daemon_up(&d, &a, &la));

	/* first turn: the blackhole, then the healthy one */
	T_TRY(timed_session(&la, ulfd, &ms));
	ASSERT_GE(ms, 250);
	/* second turn: the healthy one at once */
	T_TRY(timed_session(&la, ulfd, &ms));
	ASSERT_LT(ms, 250);
	close(ulfd);

	snprintf(line, sizeof(line), "upstream=%s ", us);
	ASSERT_EQ(t_wait_log_count(&d, " end=eof", line, 2, 2000), 2);
	snprintf(line, sizeof(line), "route=default upstream=%s connect: %s",
	         bs, strerror(ETIMEDOUT));
	ASSERT_EQ(t_log_count(&d, line, NULL), 1);
	rc = t_daemon_down(&d);
	t_blackhole_close(&b);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Round-robin                                                          */

/* One worker, two upstreams, six sequential connections: they alternate
 * and each upstream gets exactly three. */
TEST(test_daemon_upstream_round_robin)
{
	struct t_daemon d;
	struct zc_addr la, ua[2];
	struct t_dargs a;
	struct pollfd p[2];
	int lfd[2], got[2] = {0, 0};
	int i, k, n, c, u, prev = -1;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	t_dargs_listen(&a, &la);
	for (k = 0; k < 2; k++) {
		lfd[k] = t_listen(AF_INET, &ua[k]);
		ASSERT_OK(lfd[k]);
		t_dargs_addr(&a, "--upstream", &ua[k]);
	}
	t_dargs_add(&a, "--workers");
	t_dargs_add(&a, "1");
	T_TRY(t_daemon_up(&d, &a, &la));
	for (i = 0; i < 6; i++) {
		c = t_connect(&la);
		ASSERT_OK(c);
		for (k = 0; k < 2; k++) {
			p[k].fd = lfd[k];
			p[k].events = POLLIN;
			p[k].revents = 0;
		}
		n = poll(p, 2, 2000);
		ASSERT_GT(n, 0);
		k = (p[0].revents & POLLIN) ? 0 : 1;
		u = t_accept_ms(lfd[k], 0);
		ASSERT_OK(u);
		got[k]++;
		ASSERT_NE(k, prev);
		prev = k;
		T_TRY(ping_and_close(c, u));
	}
	ASSERT_EQ(got[0], 3);
	ASSERT_EQ(got[1], 3);
	/* nothing else arrived anywhere */
	ASSERT_ERR(t_accept_ms(lfd[0], 100), -ETIMEDOUT);
	ASSERT_ERR(t_accept_ms(lfd[1], 0), -ETIMEDOUT);
	ASSERT_EQ(t_wait_log_count(&d, " end=eof", NULL, 6, 2000), 6);
	close(lfd[0]);
	close(lfd[1]);
	return t_daemon_down(&d);
}

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
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* ------------------------------------------------------------------ */
/* Helpers (the shared ones are in tests/lib/tdaemon.c)                */

/* The daemon still runs, then exits 0 on SIGTERM. */
static int daemon_down(struct t_daemon *d)
{
	ASSERT_ERR(t_daemon_wait(d, 0), -ETIMEDOUT);
	ASSERT_EQ(t_daemon_stop(d, SIGTERM), 0);
	return T_PASS;
}

/* A byte each way over an end-to-end connection c <-> u, then both
 * sides close cleanly. */
static int ping_and_close(int c, int u)
{
	char ch;

	ASSERT_OK(t_write_all(c, "?", 1));
	ASSERT_EQ(t_read_full(u, &ch, 1, 2000), 1);
	ASSERT_EQ(ch, '?');
	ASSERT_OK(t_write_all(u, "!", 1));
	ASSERT_EQ(t_read_full(c, &ch, 1, 2000), 1);
	ASSERT_EQ(ch, '!');
	ASSERT_EQ(shutdown(c, SHUT_WR), 0);
	ASSERT_EQ(t_wait_eof(u, 2000), 0);
	ASSERT_EQ(shutdown(u, SHUT_WR), 0);
	ASSERT_EQ(t_wait_eof(c, 2000), 0);
	close(c);
	close(u);
	return T_PASS;
}

/* A client that must be closed (EOF or reset) by the daemon within
 * max_ms of its connect; the elapsed time goes to *ms. */
static int expect_client_closed(const struct zc_addr *la, int max_ms,
                                uint64_t *ms)
{
	uint64_t t0 = t_now_ms();
	int c, r;

	c = t_connect(la);
	ASSERT_OK(c);
	r = t_wait_eof(c, max_ms + 1000);
	*ms = t_now_ms() - t0;
	close(c);
	if (!t_is_closed(r))
		return t_fail(
		        __FILE__, __LINE__,
		        "client not closed: t_wait_eof = %d after %llu ms", r,
		        (unsigned long long)*ms);
	ASSERT_LE(*ms, max_ms);
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
	int rc, i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &ua)); /* nobody listens there */
	t_dargs_listen(&a, &la);
	us = t_dargs_addr(&a, "--upstream", &ua);
	rc = t_daemon_up(&d, &a, &la);
	if (rc)
		return rc;
	for (i = 1; i <= 3; i++) {
		rc = expect_client_closed(&la, 2000, &ms);
		if (rc)
			return rc;
		ASSERT_EQ(t_wait_log_count(&d, "no upstream reachable",
		                           strerror(ECONNREFUSED), i, 2000),
		          i);
	}
	snprintf(line, sizeof(line), "route=default upstream=%s connect: %s",
	         us, strerror(ECONNREFUSED));
	ASSERT_EQ(t_log_count(&d, line, NULL), 3);
	return daemon_down(&d);
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
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &u1));
	ASSERT_OK(t_free_addr(AF_UNIX, &u2));
	t_dargs_listen(&a, &la);
	s1 = t_dargs_addr(&a, "--upstream", &u1);
	s2 = t_dargs_addr(&a, "--upstream", &u2);
	t_dargs_add(&a, "--workers");
	t_dargs_add(&a, "1");
	rc = t_daemon_up(&d, &a, &la);
	if (rc)
		return rc;
	rc = expect_client_closed(&la, 2000, &ms);
	if (rc)
		return rc;
	ASSERT_EQ(t_wait_log_count(&d, "no upstream reachable", NULL, 1, 2000),
	          1);
	snprintf(l1, sizeof(l1), "route=default upstream=%s connect: ", s1);
	snprintf(l2, sizeof(l2), "route=default upstream=%s connect: ", s2);
	ASSERT_EQ(t_log_count(&d, l1, NULL), 1);
	ASSERT_EQ(t_log_count(&d, l2, NULL), 1);
	return daemon_down(&d);
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
	int ulfd, rc, i, c, u;

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
	rc = t_daemon_up(&d, &a, &la);
	if (rc)
		return rc;
	for (i = 0; i < 6; i++) {
		c = t_connect(&la);
		ASSERT_OK(c);
		u = t_accept_ms(ulfd, 2000);
		ASSERT_OK(u);
		rc = ping_and_close(c, u);
		if (rc)
			return rc;
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
	return daemon_down(&d);
}

/* ------------------------------------------------------------------ */
/* An upstream that does not answer                                     */

struct blackhole {
	int lfd;
	int fill[3];
	struct zc_addr a;
};

static void blackhole_close(struct blackhole *b)
{
	int i;

	for (i = 0; i < 3; i++)
		if (b->fill[i] >= 0)
			close(b->fill[i]);
	if (b->lfd >= 0)
		close(b->lfd);
}

/* A non-blocking connect to a; the fd or -errno. */
static int connect_nb(const struct zc_addr *a)
{
	int fd = socket(a->ss.ss_family,
	                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1 &&
	    errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * A TCP listener with backlog 0 whose accept queue is filled by
 * connections nobody accepts: the kernel then drops further SYNs, so a
 * connect to it neither completes nor fails for a while. Returns 0, 1 if
 * this kernel still completes connects there (skip), or -errno.
 */
static int blackhole_open(struct blackhole *b)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&b->a.ss;
	struct pollfd p;
	int i, fd, n, err;

	b->lfd = b->fill[0] = b->fill[1] = b->fill[2] = -1;
	memset(&b->a, 0, sizeof(b->a));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	b->a.len = sizeof(*sin);
	b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (b->lfd == -1)
		return -errno;
	if (bind(b->lfd, (struct sockaddr *)sin, sizeof(*sin)) == -1 ||
	    getsockname(b->lfd, (struct sockaddr *)&b->a.ss, &b->a.len) == -1 ||
	    listen(b->lfd, 0) == -1)
		return -errno;
	for (i = 0; i < 3; i++) {
		b->fill[i] = connect_nb(&b->a);
		if (b->fill[i] < 0)
			return b->fill[i];
		if (i == 0) /* let the first one reach the accept queue */
			t_sleep_ms(20);
	}
	/* a further connect must hang */
	fd = connect_nb(&b->a);
	if (fd < 0)
		return fd;
	p.fd = fd;
	p.events = POLLOUT;
	p.revents = 0;
	do {
		n = poll(&p, 1, 300);
	} while (n == -1 && errno == EINTR);
	err = n == -1 ? -errno : n;
	close(fd);
	return err;
}

/* Opens a blackhole, or returns T_SKIP/T_FAIL with b closed. */
static int blackhole_or_skip(struct blackhole *b)
{
	int r = blackhole_open(b);

	if (r == 0)
		return T_PASS;
	blackhole_close(b);
	if (r == 1)
		T_SKIP("a connect to a full backlog-0 listener completed in "
		       "< 300 ms: cannot make an unanswering upstream");
	ASSERT_OK(r);
	return T_FAIL;
}

/* --connect-timeout 300 and an upstream that never answers: the client
 * is closed after the timeout, well within 2 s. */
TEST(test_daemon_upstream_connect_timeout)
{
	struct blackhole b;
	struct t_daemon d;
	struct zc_addr la;
	struct t_dargs a;
	char line[256];
	const char *bs;
	uint64_t ms;
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	rc = blackhole_or_skip(&b);
	if (rc)
		return rc;
	ASSERT_OK(t_free_addr(AF_INET, &la));
	t_dargs_listen(&a, &la);
	bs = t_dargs_addr(&a, "--upstream", &b.a);
	t_dargs_add(&a, "--connect-timeout");
	t_dargs_add(&a, "300");
	rc = t_daemon_up(&d, &a, &la);
	if (rc)
		return rc;
	rc = expect_client_closed(&la, 2000, &ms);
	if (rc)
		return rc;
	ASSERT_GE(ms, 250); /* it did wait for the upstream */
	ASSERT_EQ(t_wait_log_count(&d, "no upstream reachable", NULL, 1, 2000),
	          1);
	snprintf(line, sizeof(line), "route=default upstream=%s connect: %s",
	         bs, strerror(ETIMEDOUT));
	ASSERT_EQ(t_log_count(&d, line, NULL), 1);
	rc = daemon_down(&d);
	blackhole_close(&b);
	return rc;
}

/* The same with a healthy second upstream: the session goes there after
 * the timeout; the next connection (its turn is the healthy one) goes
 * straight there. */
TEST(test_daemon_upstream_timeout_then_next)
{
	struct blackhole b;
	struct t_daemon d;
	struct zc_addr la, ua;
	struct t_dargs a;
	char line[256];
	const char *bs, *us;
	uint64_t t0, ms;
	int ulfd, rc, c, u;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	rc = blackhole_or_skip(&b);
	if (rc)
		return rc;
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
	rc = t_daemon_up(&d, &a, &la);
	if (rc)
		return rc;

	/* first turn: the blackhole, then the healthy one */
	t0 = t_now_ms();
	c = t_connect(&la);
	ASSERT_OK(c);
	u = t_accept_ms(ulfd, 2000);
	ms = t_now_ms() - t0;
	ASSERT_OK(u);
	ASSERT_GE(ms, 250);
	rc = ping_and_close(c, u);
	if (rc)
		return rc;
	/* second turn: the healthy one at once */
	t0 = t_now_ms();
	c = t_connect(&la);
	ASSERT_OK(c);
	u = t_accept_ms(ulfd, 2000);
	ms = t_now_ms() - t0;
	ASSERT_OK(u);
	ASSERT_LT(ms, 250);
	rc = ping_and_close(c, u);
	if (rc)
		return rc;
	close(ulfd);

	snprintf(line, sizeof(line), "upstream=%s ", us);
	ASSERT_EQ(t_wait_log_count(&d, " end=eof", line, 2, 2000), 2);
	snprintf(line, sizeof(line), "route=default upstream=%s connect: %s",
	         bs, strerror(ETIMEDOUT));
	ASSERT_EQ(t_log_count(&d, line, NULL), 1);
	rc = daemon_down(&d);
	blackhole_close(&b);
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
	int rc, i, k, n, c, u, prev = -1;

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
	rc = t_daemon_up(&d, &a, &la);
	if (rc)
		return rc;
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
		rc = ping_and_close(c, u);
		if (rc)
			return rc;
	}
	ASSERT_EQ(got[0], 3);
	ASSERT_EQ(got[1], 3);
	/* nothing else arrived anywhere */
	ASSERT_ERR(t_accept_ms(lfd[0], 100), -ETIMEDOUT);
	ASSERT_ERR(t_accept_ms(lfd[1], 0), -ETIMEDOUT);
	ASSERT_EQ(t_wait_log_count(&d, " end=eof", NULL, 6, 2000), 6);
	close(lfd[0]);
	close(lfd[1]);
	return daemon_down(&d);
}

/*
 * daemon_signals.c - stopping the daemon: SIGTERM/SIGINT when idle, the
 * graceful drain of open sessions (no new ones, the old ones finish),
 * --drain-timeout, and a second signal that cuts the drain short.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* ------------------------------------------------------------------ */
/* Helpers (the shared ones are in tests/lib/tdaemon.c)                */

/* Waits at most timeout_ms until nothing listens on a any more.
 * Returns 0 or -ETIMEDOUT. */
static int wait_unlisten(const struct zc_addr *a, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;

	while (t_wait_listen(a, 0) == 0) {
		if (t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(10);
	}
	return 0;
}

/* A session c <-> u through the daemon, proven end to end. */
static int open_session(const struct zc_addr *la, int ulfd, int *c, int *u)
{
	char ch;

	*c = t_connect(la);
	ASSERT_OK(*c);
	*u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(*u);
	ASSERT_OK(t_write_all(*c, "1", 1));
	ASSERT_EQ(t_read_full(*u, &ch, 1, 2000), 1);
	ASSERT_OK(t_write_all(*u, "2", 1));
	ASSERT_EQ(t_read_full(*c, &ch, 1, 2000), 1);
	return T_PASS;
}

/* Listen address kinds: AF_INET, AF_UNIX (a path) or this. */
#define ABSTRACT (-1)

/* A fresh address of the kind for the daemon, and an upstream
 * listener. */
static int addrs(int kind, struct zc_addr *la, int *ulfd, struct zc_addr *ua)
{
	char name[64];

	if (kind == ABSTRACT) {
		snprintf(name, sizeof(name), "unix:@zctest-%d-sig",
		         (int)getpid());
		ASSERT_OK(zc_addr_parse(la, name, ZC_ADDR_PASSIVE));
	} else {
		ASSERT_OK(t_free_addr(kind, la));
	}
	*ulfd = t_listen(AF_INET, ua);
	ASSERT_OK(*ulfd);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* No sessions                                                          */

/* SIGTERM or SIGINT on an idle daemon: exit 0 within 2 s. A Unix
 * listener's socket file is removed. One row per signal and family. */
static const struct idle_row {
	const char *name;
	int family;
	int sig;
} idle_rows[] = {
        {"sigterm_idle", AF_INET, SIGTERM},
        {"sigint_idle", AF_INET, SIGINT},
        {"sigterm_idle_unix", AF_UNIX, SIGTERM},
};

TEST_TABLE(test_daemon, idle_rows)
{
	const struct idle_row *k = t_row();
	int family = k->family;
	const struct sockaddr_un *sun;
	struct t_daemon d;
	struct zc_addr la, ua;
	struct t_dargs a;
	struct stat st;
	uint64_t t0;
	int ulfd;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(addrs(family, &la, &ulfd, &ua));
	t_dargs_init(&a, ctx, &la, &ua);
	T_TRY(t_daemon_up(&d, &a, &la));
	t0 = t_now_ms();
	ASSERT_EQ(kill(d.pid, k->sig), 0);
	ASSERT_EQ(t_daemon_wait(&d, 2000), 0);
	ASSERT_LE(t_now_ms() - t0, 2000);
	ASSERT_EQ(t_log_count(&d, "stopped", NULL), 1);
	ASSERT_ERR(t_wait_listen(&la, 0), -ETIMEDOUT);
	if (family == AF_UNIX) {
		sun = (const struct sockaddr_un *)&la.ss;
		ASSERT_EQ(lstat(sun->sun_path, &st), -1);
		ASSERT_EQ(errno, ENOENT);
	}
	/* the upstream never saw a connection */
	ASSERT_ERR(t_accept_ms(ulfd, 0), -ETIMEDOUT);
	close(ulfd);
	t_cleanup_unix(&la);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Graceful drain                                                       */

#define DRAIN_LEN (1u << 20)

/*
 * Waits until the draining daemon has given up its listening address:
 * no socket listens on the TCP port or abstract name any more; for a
 * Unix path, the socket file is gone (connects then fail with ENOENT
 * even if the socket itself is still open).
 */
static int wait_listener_gone(const struct zc_addr *la, int kind)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&la->ss;
	uint64_t end = t_now_ms() + 2000;
	struct stat st;

	if (kind != AF_UNIX)
		return wait_unlisten(la, 2000);
	while (lstat(sun->sun_path, &st) == 0) {
		if (t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(10);
	}
	return 0;
}

/*
 * A daemon for ctx on a fresh address of the kind, started with extra
 * (name, value) arguments (NULL-terminated), in front of a fresh
 * upstream listener *ulfd, and one session c <-> u through it.
 */
static int session_up(const struct t_ctx *ctx, int kind,
                      const char *const extra[], struct t_daemon *d,
                      struct zc_addr *la, int *ulfd, int *c, int *u)
{
	struct zc_addr ua;
	struct t_dargs a;
	int i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(addrs(kind, la, ulfd, &ua));
	t_dargs_init(&a, ctx, la, &ua);
	for (i = 0; extra[i]; i++)
		t_dargs_add(&a, extra[i]);
	T_TRY(t_daemon_up(d, &a, la));
	return open_session(la, *ulfd, c, u);
}

/*
 * One open, idle session, then SIGTERM: the listener goes away and new
 * clients are refused (or closed at once, never relayed), while the old
 * session still carries 1 MiB each way and ends with a FIN both ways.
 * Then, and only then, the daemon exits 0. One row per listen address
 * kind.
 */
static const struct drain_row {
	const char *name;
	int kind;
} drain_rows[] = {
        {"drain", AF_INET},
        {"drain_unix", AF_UNIX},
        {"drain_abstract", ABSTRACT},
};

TEST_MATRIX_TABLE(test_daemon_sigterm, drain_rows)
{
	static const char *const extra[] = {"--workers", "2", NULL};
	const struct drain_row *k = t_row();
	int kind = k->kind;
	unsigned char want_up[T_SHA256_LEN], want_down[T_SHA256_LEN];
	struct t_xfer tx_up, rx_up, tx_down, rx_down;
	struct t_daemon d;
	struct zc_addr la;
	int ulfd, rc, c, u, fd, r;

	T_TRY(session_up(ctx, kind, extra, &d, &la, &ulfd, &c, &u));

	ASSERT_EQ(kill(d.pid, SIGTERM), 0);
	ASSERT_EQ(t_wait_log_count(&d, "draining", NULL, 1, 2000), 1);
	rc = wait_listener_gone(&la, kind);
	if (rc)
		return t_fail(__FILE__, __LINE__,
		              "still listening 2 s after SIGTERM");
	/* a new client is turned away and never reaches the upstream */
	fd = t_connect(&la);
	if (fd >= 0) {
		r = t_wait_eof(fd, 1000);
		close(fd);
		if (!t_is_closed(r))
			return t_fail(__FILE__, __LINE__,
			              "new client during drain: connected, "
			              "and still open after 1 s (t_wait_eof "
			              "= %d)",
			              r);
	}
	ASSERT_ERR(t_accept_ms(ulfd, 200), -ETIMEDOUT);
	ASSERT_ERR(t_daemon_wait(&d, 0), -ETIMEDOUT);

	/* the open session works both ways, then ends cleanly */
	ASSERT_OK(t_receiver_start(&rx_up, u, 0));
	ASSERT_OK(t_receiver_start(&rx_down, c, 0));
	ASSERT_OK(t_sender_start(&tx_up, c, DRAIN_LEN, 31, 0));
	ASSERT_OK(t_sender_start(&tx_down, u, DRAIN_LEN, 32, 0));
	ASSERT_OK(t_xfer_join_ms(&tx_up, 10000));
	ASSERT_OK(t_xfer_join_ms(&tx_down, 10000));
	/* all sent and nothing closed yet: the daemon must still be up */
	ASSERT_ERR(t_daemon_wait(&d, 100), -ETIMEDOUT);
	ASSERT_EQ(shutdown(c, SHUT_WR), 0);
	ASSERT_EQ(shutdown(u, SHUT_WR), 0);
	ASSERT_OK(t_xfer_join_ms(&rx_up, 10000));
	ASSERT_OK(t_xfer_join_ms(&rx_down, 10000));
	t_expect_digest(31, DRAIN_LEN, want_up);
	t_expect_digest(32, DRAIN_LEN, want_down);
	ASSERT_EQ(rx_up.bytes, DRAIN_LEN);
	ASSERT_TRUE(rx_up.eof);
	ASSERT_MEMEQ(rx_up.digest, want_up, T_SHA256_LEN);
	ASSERT_EQ(rx_down.bytes, DRAIN_LEN);
	ASSERT_TRUE(rx_down.eof);
	ASSERT_MEMEQ(rx_down.digest, want_down, T_SHA256_LEN);
	close(c);
	close(u);

	ASSERT_EQ(t_daemon_wait(&d, 2000), 0);
	ASSERT_EQ(t_log_count(&d, " session ", " end=eof"), 1);
	ASSERT_EQ(t_log_count(&d, "aborting", NULL), 0);
	close(ulfd);
	t_cleanup_unix(&la);
	return T_PASS;
}

/*
 * --drain-timeout 300 and a session that never ends: the daemon aborts
 * it at the deadline and exits 0 within about 2 s; both peers see the
 * connection end.
 */
TEST_MATRIX(test_daemon_drain_timeout)
{
	static const char *const extra[] = {"--drain-timeout", "300", NULL};
	struct t_daemon d;
	struct zc_addr la;
	uint64_t t0, ms;
	int ulfd, c, u, r;

	T_TRY(session_up(ctx, AF_INET, extra, &d, &la, &ulfd, &c, &u));
	t0 = t_now_ms();
	ASSERT_EQ(kill(d.pid, SIGTERM), 0);
	r = t_wait_eof(c, 3000);
	ms = t_now_ms() - t0;
	if (!t_is_closed(r))
		return t_fail(__FILE__, __LINE__,
		              "client: t_wait_eof = %d after %llu ms", r,
		              (unsigned long long)ms);
	ASSERT_GE(ms, 250); /* the drain did wait */
	ASSERT_TRUE(t_is_closed(t_wait_eof(u, 1000)));
	ASSERT_EQ(t_daemon_wait(&d, 2000), 0);
	ASSERT_LE(t_now_ms() - t0, 2000);
	ASSERT_EQ(t_log_count(&d, "drain deadline", NULL), 1);
	ASSERT_EQ(t_log_count(&d, " session ", " end=aborted"), 1);
	close(c);
	close(u);
	close(ulfd);
	return T_PASS;
}

/* A second SIGTERM during a long drain aborts the sessions at once. */
TEST_MATRIX(test_daemon_second_signal_aborts)
{
	static const char *const extra[] = {"--drain-timeout", "60000", NULL};
	struct t_daemon d;
	struct zc_addr la;
	uint64_t t0;
	int ulfd, c, u;

	T_TRY(session_up(ctx, AF_INET, extra, &d, &la, &ulfd, &c, &u));
	ASSERT_EQ(kill(d.pid, SIGTERM), 0);
	ASSERT_EQ(t_wait_log_count(&d, "draining", NULL, 1, 2000), 1);
	ASSERT_ERR(t_daemon_wait(&d, 200), -ETIMEDOUT);
	t0 = t_now_ms();
	ASSERT_EQ(kill(d.pid, SIGTERM), 0);
	ASSERT_EQ(t_daemon_wait(&d, 2000), 0);
	ASSERT_LE(t_now_ms() - t0, 2000);
	ASSERT_TRUE(t_is_closed(t_wait_eof(c, 1000)));
	ASSERT_TRUE(t_is_closed(t_wait_eof(u, 1000)));
	ASSERT_EQ(t_log_count(&d, "second signal", NULL), 1);
	close(c);
	close(u);
	close(ulfd);
	return T_PASS;
}

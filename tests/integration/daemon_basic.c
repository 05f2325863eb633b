/*
 * daemon_basic.c - bytes through the daemon, black-box: large checked
 * transfers both ways at once over every pair of address families, a
 * server that speaks first, half-closes and resets in both directions,
 * and the idle timeout. The test plays the client and the upstream (a
 * t_listen socket whose accepted fd it drives) and reads the daemon's
 * per-session log line.
 */
#include <errno.h>
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

/* SIGTERM with no session left: the daemon must exit 0 promptly. */
static int daemon_down(struct t_daemon *d)
{
	ASSERT_EQ(t_daemon_stop(d, SIGTERM), 0);
	return T_PASS;
}

/*
 * Waits at most timeout_ms for a line of the daemon's log that contains
 * needle, and copies it (without the newline) to line. Returns 0 or
 * -ETIMEDOUT.
 */
static int wait_log_line(const struct t_daemon *d, const char *needle,
                         char *line, size_t size, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	char *log, *p, *bol, *eol;

	for (;;) {
		log = t_daemon_log(d);
		p = log ? strstr(log, needle) : NULL;
		if (p) {
			for (bol = p; bol > log && bol[-1] != '\n'; bol--)
				;
			eol = strchr(p, '\n');
			if (eol)
				*eol = '\0';
			snprintf(line, size, "%s", bol);
			free(log);
			return 0;
		}
		free(log);
		if (t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(10);
	}
}

/* The session line of a daemon that ran one session. */
static int session_line(const struct t_daemon *d, char *line, size_t size)
{
	ASSERT_OK(wait_log_line(d, " session ", line, size, 5000));
	ASSERT_HAS(line, " end=");
	return T_PASS;
}

/* A client connected through the daemon and the upstream's side. */
struct conn2 {
	int c; /* client */
	int u; /* upstream's accepted socket */
};

static int conn2_open(struct conn2 *p, const struct zc_addr *la, int ulfd)
{
	p->c = t_connect(la);
	ASSERT_OK(p->c);
	p->u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(p->u);
	return T_PASS;
}

static void conn2_close(struct conn2 *p)
{
	close(p->c);
	close(p->u);
}

/* ------------------------------------------------------------------ */
/* Byte-exact transfers, both ways at once                              */

#define BIG (64ull << 20)

/*
 * 64 MiB client -> upstream and 64 MiB upstream -> client at the same
 * time through a daemon listening on la (filled in by the caller) to an
 * upstream of family ufam. Checks digests, counts, EOFs and the log line.
 */
static int xfer_both(const struct t_ctx *ctx, const struct zc_addr *la,
                     int ufam)
{
	unsigned char want_up[T_SHA256_LEN], want_down[T_SHA256_LEN];
	struct t_xfer tx_up, rx_up, tx_down, rx_down;
	char line[1024], up[64];
	struct t_daemon d;
	struct zc_addr ua;
	struct t_dargs a;
	struct conn2 p;
	int ulfd, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ulfd = t_listen(ufam, &ua);
	ASSERT_OK(ulfd);
	t_dargs_init(&a, ctx, la, &ua);
	T_TRY(t_daemon_up(&d, &a, la));
	T_TRY(conn2_open(&p, la, ulfd));
	ASSERT_OK(t_receiver_start(&rx_up, p.u, 0));
	ASSERT_OK(t_receiver_start(&rx_down, p.c, 0));
	ASSERT_OK(t_sender_start(&tx_up, p.c, BIG, 101, T_XFER_SHUT_WR));
	ASSERT_OK(t_sender_start(&tx_down, p.u, BIG, 202, T_XFER_SHUT_WR));
	ASSERT_OK(t_xfer_join_ms(&tx_up, 60000));
	ASSERT_OK(t_xfer_join_ms(&tx_down, 60000));
	ASSERT_OK(t_xfer_join_ms(&rx_up, 60000));
	ASSERT_OK(t_xfer_join_ms(&rx_down, 60000));

	t_expect_digest(101, BIG, want_up);
	t_expect_digest(202, BIG, want_down);
	ASSERT_EQ(tx_up.bytes, BIG);
	ASSERT_EQ(rx_up.bytes, BIG);
	ASSERT_TRUE(rx_up.eof);
	ASSERT_MEMEQ(tx_up.digest, want_up, T_SHA256_LEN);
	ASSERT_MEMEQ(rx_up.digest, tx_up.digest, T_SHA256_LEN);
	ASSERT_EQ(tx_down.bytes, BIG);
	ASSERT_EQ(rx_down.bytes, BIG);
	ASSERT_TRUE(rx_down.eof);
	ASSERT_MEMEQ(tx_down.digest, want_down, T_SHA256_LEN);
	ASSERT_MEMEQ(rx_down.digest, tx_down.digest, T_SHA256_LEN);
	conn2_close(&p);
	close(ulfd);

	T_TRY(session_line(&d, line, sizeof(line)));
	snprintf(up, sizeof(up), "up=%llu down=%llu", BIG, BIG);
	ASSERT_HAS(line, up);
	ASSERT_HAS(line, " end=eof");
	if (t_never_splices(ctx))
		ASSERT_HAS(line, " spliced=0 ");
	else if (t_splices(ctx))
		ASSERT_HAS(line, " copied=0 ");
	else /* auto: bulk splices after its first few reads */
		ASSERT_FALSE(strstr(line, " spliced=0 "));
	snprintf(up, sizeof(up), " mover=%s", zc_mover_name(ctx->mover));
	ASSERT_HAS(line, up);
	ASSERT_FALSE(strstr(line, "fallback="));
	rc = daemon_down(&d);
	t_cleanup_unix(la);
	t_cleanup_unix(&ua);
	return rc;
}

/* Listen address kinds for xfer rows: a family, or this. */
#define ABSTRACT (-1)

/* One row per listen/upstream family pair. */
static const struct xfer_row {
	const char *name;
	int listen; /* AF_INET, AF_INET6, AF_UNIX or ABSTRACT */
	int upstream;
} xfer_rows[] = {
        {"inet_to_inet", AF_INET, AF_INET},
        {"inet6_to_inet6", AF_INET6, AF_INET6},
        {"unix_to_inet", AF_UNIX, AF_INET},
        {"inet_to_unix", AF_INET, AF_UNIX},
        {"abstract_to_inet", ABSTRACT, AF_INET},
};

TEST_MATRIX_TABLE(test_daemon_xfer, xfer_rows)
{
	const struct xfer_row *k = t_row();
	struct zc_addr la;
	char name[96];

	T_SKIP_IF(k->listen == AF_INET6 && !t_have_ipv6(), "no IPv6 on ::1");
	if (k->listen == ABSTRACT) {
		snprintf(name, sizeof(name), "unix:@zctest-%d-xfer",
		         (int)getpid());
		ASSERT_OK(zc_addr_parse(&la, name, ZC_ADDR_PASSIVE));
	} else {
		ASSERT_OK(t_free_addr(k->listen, &la));
	}
	return xfer_both(ctx, &la, k->upstream);
}

/* ------------------------------------------------------------------ */
/* Protocol shapes                                                      */

/* Starts a daemon for ctx on a fresh TCP address in front of a fresh
 * TCP upstream listener, with extra arguments (NULL-terminated). */
static int setup_inet(const struct t_ctx *ctx, struct t_daemon *d,
                      struct zc_addr *la, int *ulfd, const char *const extra[])
{
	struct zc_addr ua;
	struct t_dargs a;
	int i;

	ASSERT_OK(t_free_addr(AF_INET, la));
	*ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(*ulfd);
	t_dargs_init(&a, ctx, la, &ua);
	for (i = 0; extra && extra[i]; i++)
		t_dargs_add(&a, extra[i]);
	return t_daemon_up(d, &a, la);
}

/* --mover uring-splice on the epoll engine: the daemon splices with
 * splice(2) instead, and its session line says so. */
TEST(test_daemon_uring_splice_on_epoll_splices)
{
	struct t_ctx c = {ZC_MOVER_URING_SPLICE, ZC_ENGINE_EPOLL, NULL};
	char line[1024];
	struct t_daemon d;
	struct zc_addr la;
	struct conn2 p;
	int ulfd;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(setup_inet(&c, &d, &la, &ulfd, NULL));
	T_TRY(conn2_open(&p, &la, ulfd));
	ASSERT_EQ(t_xfer_check(p.c, p.u, 4 << 20, 71), T_PASS);
	ASSERT_EQ(shutdown(p.u, SHUT_WR), 0);
	ASSERT_EQ(t_wait_eof(p.c, 5000), 0);
	conn2_close(&p);
	close(ulfd);
	T_TRY(session_line(&d, line, sizeof(line)));
	ASSERT_HAS(line, " end=eof");
	ASSERT_HAS(line, " copied=0 ");
	ASSERT_HAS(line, " engine=epoll mover=splice");
	ASSERT_HAS(line, " fallback=EOPNOTSUPP");
	return daemon_down(&d);
}

/* The upstream sends a banner as soon as it accepts; the client reads
 * it before it sends anything. */
TEST_MATRIX(test_daemon_server_speaks_first)
{
	static const char banner[] = "220 upstream ready\r\n";
	static const char req[] = "QUIT\r\n";
	char buf[64], line[1024];
	struct t_daemon d;
	struct zc_addr la;
	struct conn2 p;
	int ulfd;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(setup_inet(ctx, &d, &la, &ulfd, NULL));
	T_TRY(conn2_open(&p, &la, ulfd));
	ASSERT_OK(t_write_all(p.u, banner, sizeof(banner) - 1));
	ASSERT_EQ(t_read_full(p.c, buf, sizeof(banner) - 1, 5000),
	          sizeof(banner) - 1);
	ASSERT_MEMEQ(buf, banner, sizeof(banner) - 1);

	ASSERT_OK(t_write_all(p.c, req, sizeof(req) - 1));
	ASSERT_EQ(t_read_full(p.u, buf, sizeof(req) - 1, 5000),
	          sizeof(req) - 1);
	ASSERT_MEMEQ(buf, req, sizeof(req) - 1);
	ASSERT_EQ(shutdown(p.u, SHUT_WR), 0);
	ASSERT_EQ(t_wait_eof(p.c, 5000), 0);
	ASSERT_EQ(shutdown(p.c, SHUT_WR), 0);
	ASSERT_EQ(t_wait_eof(p.u, 5000), 0);
	conn2_close(&p);
	close(ulfd);
	T_TRY(session_line(&d, line, sizeof(line)));
	ASSERT_HAS(line, " up=6 down=20 ");
	ASSERT_HAS(line, " end=eof");
	return daemon_down(&d);
}

#define REQ_LEN  4096
#define RESP_LEN (1u << 20)

/*
 * Half-close, one row per side that closes first: that side (first)
 * sends REQ_LEN bytes and shuts its write side; the other side reads
 * all of them and then EOF, and only then answers with RESP_LEN bytes,
 * which all arrive, followed by EOF.
 */
static const struct half_close_row {
	const char *name;
	int client_first;   /* 1: the client is first, else the upstream */
	uint64_t seed[2];   /* first's message, the answer */
	const char *counts; /* the session line's byte counts */
} half_close_rows[] = {
        {"client_first", 1, {5, 6}, " up=4096 down=1048576 "},
        {"upstream_first", 0, {7, 8}, " up=1048576 down=4096 "},
};

TEST_MATRIX_TABLE(test_daemon_half_close, half_close_rows)
{
	const struct half_close_row *k = t_row();
	unsigned char msg[REQ_LEN], got[REQ_LEN + 1];
	unsigned char want[T_SHA256_LEN];
	struct t_xfer tx, rx;
	struct t_daemon d;
	struct zc_addr la;
	struct t_rng r;
	struct conn2 p;
	char line[1024];
	int ulfd, first, other;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(setup_inet(ctx, &d, &la, &ulfd, NULL));
	T_TRY(conn2_open(&p, &la, ulfd));
	first = k->client_first ? p.c : p.u;
	other = k->client_first ? p.u : p.c;
	t_rng_init(&r, k->seed[0]);
	t_rng_fill(&r, msg, sizeof(msg));
	ASSERT_OK(t_write_all(first, msg, sizeof(msg)));
	ASSERT_EQ(shutdown(first, SHUT_WR), 0);
	/* the whole message, then EOF */
	ASSERT_EQ(t_read_full(other, got, sizeof(got), 5000), REQ_LEN);
	ASSERT_MEMEQ(got, msg, REQ_LEN);

	ASSERT_OK(t_receiver_start(&rx, first, 0));
	ASSERT_OK(t_sender_start(&tx, other, RESP_LEN, k->seed[1],
	                         T_XFER_SHUT_WR));
	ASSERT_OK(t_xfer_join_ms(&tx, 10000));
	ASSERT_OK(t_xfer_join_ms(&rx, 10000));
	t_expect_digest(k->seed[1], RESP_LEN, want);
	ASSERT_EQ(rx.bytes, RESP_LEN);
	ASSERT_TRUE(rx.eof);
	ASSERT_MEMEQ(rx.digest, want, T_SHA256_LEN);
	conn2_close(&p);
	close(ulfd);
	T_TRY(session_line(&d, line, sizeof(line)));
	ASSERT_HAS(line, k->counts);
	ASSERT_HAS(line, " end=eof");
	return daemon_down(&d);
}

/* ------------------------------------------------------------------ */
/* Resets                                                               */

#define SOME (64u * 1024)

/*
 * Mid-stream, one row per side that resets (from): it sends SOME bytes
 * that the other side (to) reads, so the session is up end to end; then
 * from sends SOME more and resets (SO_LINGER 0 + close). The other side
 * must see ECONNRESET after at most those bytes, never a clean EOF.
 */
static const struct reset_row {
	const char *name;
	int from_client;
} reset_rows[] = {
        {"from_upstream", 0},
        {"from_client", 1},
};

TEST_MATRIX_TABLE(test_daemon_reset, reset_rows)
{
	const struct reset_row *k = t_row();
	unsigned char *buf;
	struct t_daemon d;
	struct zc_addr la;
	struct t_xfer rx;
	struct conn2 p;
	char line[1024];
	int ulfd, rc, from, to;
	struct t_rng r;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(setup_inet(ctx, &d, &la, &ulfd, NULL));
	T_TRY(conn2_open(&p, &la, ulfd));
	from = k->from_client ? p.c : p.u;
	to = k->from_client ? p.u : p.c;
	buf = malloc(2 * SOME);
	ASSERT_TRUE(buf != NULL);
	t_rng_init(&r, 9);
	t_rng_fill(&r, buf, 2 * SOME);
	rc = t_write_all(from, buf, SOME);
	if (rc == 0)
		rc = t_read_full(to, buf + SOME, SOME, 5000) == SOME &&
		                     !memcmp(buf, buf + SOME, SOME)
		             ? 0
		             : -EIO;
	if (rc == 0)
		rc = t_write_all(from, buf, SOME);
	free(buf);
	ASSERT_OK(rc);
	ASSERT_OK(t_receiver_start(&rx, to, 0));
	ASSERT_OK(t_set_linger0(from));
	close(from);
	ASSERT_ERR(t_xfer_join_ms(&rx, 5000), -ECONNRESET);
	ASSERT_FALSE(rx.eof);
	ASSERT_LE(rx.bytes, SOME);
	close(to);
	close(ulfd);
	T_TRY(session_line(&d, line, sizeof(line)));
	ASSERT_HAS(line, " end=reset");
	return daemon_down(&d);
}

/* ------------------------------------------------------------------ */
/* Idle timeout                                                         */

/* --idle-timeout 300: a session with no byte either way is closed on
 * both sides within about 2 s, and logged as end=timeout. */
TEST_MATRIX(test_daemon_idle_timeout_closes)
{
	const char *const extra[] = {"--idle-timeout", "300", NULL};
	struct t_daemon d;
	struct zc_addr la;
	struct conn2 p;
	char line[1024];
	uint64_t t0, dt;
	int ulfd, r;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(setup_inet(ctx, &d, &la, &ulfd, extra));
	t0 = t_now_ms();
	T_TRY(conn2_open(&p, &la, ulfd));
	r = t_wait_eof(p.c, 3000);
	dt = t_now_ms() - t0;
	if (!t_is_closed(r))
		return t_fail(__FILE__, __LINE__,
		              "client: t_wait_eof = %d (%s) after %llu ms", r,
		              r < 0 ? strerror(-r) : "data",
		              (unsigned long long)dt);
	ASSERT_GE(dt, 250);
	ASSERT_LE(dt, 2000);
	ASSERT_TRUE(t_is_closed(t_wait_eof(p.u, 1000)));
	conn2_close(&p);
	close(ulfd);
	T_TRY(session_line(&d, line, sizeof(line)));
	ASSERT_HAS(line, " end=timeout");
	ASSERT_HAS(line, " up=0 down=0 ");
	return daemon_down(&d);
}

/* A byte every 100 ms for 1 s keeps a 300 ms idle timer from firing. */
TEST_MATRIX(test_daemon_idle_timeout_active_survives)
{
	const char *const extra[] = {"--idle-timeout", "300", NULL};
	struct t_daemon d;
	struct zc_addr la;
	struct conn2 p;
	char line[1024], c;
	int ulfd, i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(setup_inet(ctx, &d, &la, &ulfd, extra));
	T_TRY(conn2_open(&p, &la, ulfd));
	for (i = 0; i < 11; i++) {
		c = (char)('a' + i);
		ASSERT_OK(t_write_all(p.c, &c, 1));
		ASSERT_EQ(t_read_full(p.u, &c, 1, 1000), 1);
		ASSERT_EQ(c, 'a' + i);
		t_sleep_ms(100);
	}
	/* still open both ways after 1.1 s */
	ASSERT_ERR(t_wait_eof(p.c, 0), -ETIMEDOUT);
	ASSERT_OK(t_write_all(p.u, "z", 1));
	ASSERT_EQ(t_read_full(p.c, &c, 1, 1000), 1);
	ASSERT_EQ(c, 'z');
	/* and then it times out once idle */
	ASSERT_TRUE(t_is_closed(t_wait_eof(p.c, 3000)));
	conn2_close(&p);
	close(ulfd);
	T_TRY(session_line(&d, line, sizeof(line)));
	ASSERT_HAS(line, " up=11 down=1 ");
	ASSERT_HAS(line, " end=timeout");
	return daemon_down(&d);
}

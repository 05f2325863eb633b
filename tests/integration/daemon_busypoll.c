/*
 * daemon_busypoll.c - busy-poll through the daemon, black-box: with
 * --busy-poll the worker spins after relaying a message and catches the
 * reply (the busy-poll counters of /metrics move, promtool accepts them),
 * the sessions stay byte-exact; without it the counters stay 0; a bulk
 * transfer does not spin; bad values are usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"
#define HITS      "zcrelay_worker_busy_poll_hits_total{worker=\"0\"}"
#define SECS      "zcrelay_worker_busy_poll_seconds_total{worker=\"0\"}"

/* The value of sample in the Prometheus text body as a double; -1 if it
 * is not there. */
static double metric_f(const char *body, const char *sample)
{
	size_t n = strlen(sample);
	const char *p = body;

	while (p && *p) {
		if (strncmp(p, sample, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* rounds 1-byte round trips client -> upstream -> client through the
 * daemon; every byte is checked. */
static int ping_pong(int c, int u, int rounds)
{
	unsigned char b, r;
	int i;

	for (i = 0; i < rounds; i++) {
		b = (unsigned char)i;
		ASSERT_EQ(write(c, &b, 1), 1);
		ASSERT_EQ(read(u, &r, 1), 1);
		ASSERT_EQ(r, b);
		r = (unsigned char)~r;
		ASSERT_EQ(write(u, &r, 1), 1);
		ASSERT_EQ(read(c, &b, 1), 1);
		ASSERT_EQ(b, (unsigned char)~(unsigned char)i);
	}
	return T_PASS;
}

/* The daemon with one worker, conf lines bp (busy-poll settings) and an
 * admin address (aa), and one session through it: c the client's end, u
 * the upstream's. */
static int session_up(const struct t_ctx *ctx, const char *bp,
                      struct t_daemon *d, struct zc_addr *aa, int *c, int *u)
{
	char s[3][128];
	struct zc_addr la, ua;
	int ulfd;

	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, aa));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	ASSERT_OK(t_addr_str(&la, s[0], sizeof(s[0])));
	ASSERT_OK(t_addr_str(&ua, s[1], sizeof(s[1])));
	ASSERT_OK(t_addr_str(aa, s[2], sizeof(s[2])));
	T_TRY(t_daemon_conf(d, &la,
	                    "workers = 1;\n%s\n%s\nadmin = \"%s\";\n"
	                    "routes = ( { name = \"r\"; listen = \"%s\";"
	                    " upstreams = \"%s\";"
	                    " mover = \"%s\"; } );\n",
	                    t_cfg_engine(ctx), bp, s[2], s[0], s[1],
	                    t_cfg_mover(ctx)));
	ASSERT_OK(t_wait_listen(aa, 5000));
	*c = t_connect(&la);
	ASSERT_OK(*c);
	*u = t_accept_ms(ulfd, 5000);
	close(ulfd);
	ASSERT_OK(*u);
	return T_PASS;
}

/* The daemon with one worker, busy-poll bp ("" for the default), an admin
 * address; 2000 round trips and a 4 MiB transfer each way; then the
 * worker's busy-poll counters. */
static int run(const struct t_ctx *ctx, const char *bp, int want_hits,
               double *secs, long long *hits)
{
	char *body = NULL;
	struct zc_addr aa;
	struct t_daemon d;
	int c, u, rc, i;

	T_TRY(session_up(ctx, bp, &d, &aa, &c, &u));
	rc = ping_pong(c, u, 2000);
	if (rc == T_PASS)
		rc = t_xfer_check(c, u, 4u << 20, 41);
	if (rc == T_PASS)
		rc = t_xfer_check(u, c, 4u << 20, 42);
	close(c);
	close(u);
	if (rc != T_PASS)
		return rc;
	ASSERT_EQ(t_wait_log_count(&d, "info session ", NULL, 1, 5000), 1);
	/* The workers' counters reach /metrics in a snapshot taken every
	 * 500 ms: wait for one taken after the session (hits > 0), or 1.5 s
	 * when none is expected. */
	for (i = 0; i < (want_hits ? 50 : 1); i++) {
		usleep(want_hits ? 100000 : 1500000);
		free(body);
		ASSERT_EQ(t_http_get(&aa, "/metrics", &body), 200);
		*hits = t_metric(body, HITS);
		if (*hits > 0)
			break;
	}
	*secs = metric_f(body, SECS);
	if (t_in_path("promtool")) {
		char in[256], cmd[300];

		ASSERT_OK(t_write_tmp("metrics.txt", body, in, sizeof(in)));
		snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s'", in);
		ASSERT_EQ(t_run(cmd), 0);
	}
	free(body);
	return t_daemon_down(&d);
}

TEST_MATRIX(test_daemon_busy_poll_counts_spins)
{
	long long hits;
	double secs;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(run(ctx, "busy-poll = 200; busy-poll-cap = 50;", 1, &secs,
	          &hits));
	t_log("busy-poll 200 us: %lld hits, %.6f s spinning", hits, secs);
	ASSERT_GT(hits, 0);
	ASSERT_TRUE(secs > 0);
	T_TRY(run(ctx, "busy-poll = \"off\";", 0, &secs, &hits));
	ASSERT_EQ(hits, 0);
	ASSERT_TRUE(secs == 0);
	return T_PASS;
}

/* The worker's spin seconds and hits from a /metrics snapshot taken after
 * everything before this call (snapshots come every 500 ms). */
static int spin_now(const struct zc_addr *aa, double *secs, long long *hits)
{
	char *body = NULL;

	usleep(1200000);
	ASSERT_EQ(t_http_get(aa, "/metrics", &body), 200);
	*secs = metric_f(body, SECS);
	*hits = t_metric(body, HITS);
	free(body);
	ASSERT_TRUE(*secs >= 0 && *hits >= 0);
	return T_PASS;
}

/* A fixed 200 us window, which without the bulk test would spin after
 * every turn of a transfer: 2000 one-byte round trips spin, then 64 MiB
 * each way (hash-checked) on the same session spin next to nothing. */
TEST_MATRIX(test_daemon_busy_poll_skips_bulk)
{
	struct zc_addr aa;
	struct t_daemon d;
	double s0, s1, s2;
	long long h0, h1, h2;
	uint64_t t0, bulk_ns = 0;
	int c, u, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(session_up(ctx, "busy-poll = 200;", &d, &aa, &c, &u));
	rc = spin_now(&aa, &s0, &h0);
	if (rc == T_PASS)
		rc = ping_pong(c, u, 2000);
	if (rc == T_PASS)
		rc = spin_now(&aa, &s1, &h1);
	t0 = t_now_ns();
	if (rc == T_PASS)
		rc = t_xfer_check(c, u, 64u << 20, 51);
	if (rc == T_PASS)
		rc = t_xfer_check(u, c, 64u << 20, 52);
	bulk_ns = t_now_ns() - t0;
	if (rc == T_PASS)
		rc = spin_now(&aa, &s2, &h2);
	close(c);
	close(u);
	if (rc != T_PASS)
		return rc;
	t_log("2000 round trips: %.1f ms spinning (%lld hits); bulk: %.1f ms "
	      "(%lld hits) in %.0f ms",
	      (s1 - s0) * 1e3, h1 - h0, (s2 - s1) * 1e3, h2 - h1,
	      (double)bulk_ns / 1e6);
	ASSERT_GT(h1 - h0, 100);
	/* Spinning after every bulk turn took 45-63 % of the transfer's time
	 * here (333-1751 spins); with the bulk test 3-14 %: the turns where
	 * the relay caught up with the sender and read little. */
	ASSERT_TRUE(s2 - s1 < 0.02 + 0.25 * (double)bulk_ns / 1e9);
	return t_daemon_down(&d);
}

/*
 * daemon_counts.c - the daemon's shared counters come back to where they
 * were after every kind of session end: the route's and the upstream's
 * active sessions (/metrics), the worker's sessions (/metrics, and the
 * drain that waits for them to reach zero) and the per-client count
 * (max-conns-per-client admits exactly as many as it should).
 *
 * One session, the anchor, stays open through the whole of the first
 * test, so a release done twice shows as a count one too low (or, for
 * the per-client count, one client too many admitted), and one missing
 * as a count one too high: both fail. The second test ends sessions
 * before they relay (connect timeout, kill, drain abort); there a
 * release done twice wraps the gauge below 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"
#define REFUSED   "rejected: client at max-conns-per-client"

/*
 * A daemon (one worker) with an admin address and two routes: "r" to
 * the upstream listener ulfd and to dead (an address nobody listens on,
 * so connects there are refused and retried on ulfd), at most 2
 * sessions per client; "t" to tlfd with a 300 ms idle timeout. The
 * anchor session (ac, au) holds one count of r, of r's upstream, of the
 * worker and of the client 127.0.0.1 on r.
 */
struct cnt {
	struct t_daemon d;
	struct zc_addr lr, lt, aa, ua, ta, dead;
	int ulfd, tlfd;
	char us[64], ts[64], ds[64];
	int ac, au;
};

/* The counts a test expects, anchor included. */
struct want {
	int r, t; /* sessions on routes r and t (each on its live upstream) */
};

static int cnt_start(struct cnt *C, const struct t_ctx *ctx)
{
	char lr[64], lt[64], as[64];

	C->ac = C->au = -1;
	C->ulfd = t_listen(AF_INET, &C->ua);
	ASSERT_OK(C->ulfd);
	C->tlfd = t_listen(AF_INET, &C->ta);
	ASSERT_OK(C->tlfd);
	ASSERT_OK(t_free_addr(AF_INET, &C->dead));
	ASSERT_OK(t_free_addr(AF_INET, &C->lr));
	ASSERT_OK(t_free_addr(AF_INET, &C->lt));
	ASSERT_OK(t_free_addr(AF_INET, &C->aa));
	ASSERT_OK(t_addr_str(&C->ua, C->us, sizeof(C->us)));
	ASSERT_OK(t_addr_str(&C->ta, C->ts, sizeof(C->ts)));
	ASSERT_OK(t_addr_str(&C->dead, C->ds, sizeof(C->ds)));
	ASSERT_OK(t_addr_str(&C->lr, lr, sizeof(lr)));
	ASSERT_OK(t_addr_str(&C->lt, lt, sizeof(lt)));
	ASSERT_OK(t_addr_str(&C->aa, as, sizeof(as)));
	ASSERT_EQ(
	        t_daemon_conf(&C->d, &C->lr,
	                      "workers = 1;\n%s\nadmin = \"%s\";\n"
	                      "drain-timeout = \"20s\";\n"
	                      "routes = (\n"
	                      "  { name = \"r\"; listen = \"%s\";\n"
	                      "    upstreams = ( \"%s\", \"%s\" );\n"
	                      "    mover = \"%s\"; max-conns-per-client = 2;\n"
	                      "  },\n"
	                      "  { name = \"t\"; listen = \"%s\";\n"
	                      "    upstreams = \"%s\"; mover = \"%s\";\n"
	                      "    idle-timeout = \"300ms\"; }\n);\n",
	                      t_cfg_engine(ctx), as, lr, C->us, C->ds,
	                      t_cfg_mover(ctx), lt, C->ts, t_cfg_mover(ctx)),
	        T_PASS);
	ASSERT_OK(t_wait_listen(&C->aa, 5000));
	ASSERT_OK(t_wait_listen(&C->lt, 5000));
	return t_session(&C->lr, NULL, &C->ulfd, 1, &C->ac, &C->au, NULL);
}

/* A gauge of /metrics (name and labels, as rendered) and its value. */
struct sample {
	char name[128];
	long long want;
};

/* Where body differs from the n samples v, as text in why; 0 if not. */
static int samples_differ(const char *body, const struct sample *v, int n,
                          char *why, size_t size)
{
	int i;

	for (i = 0; i < n; i++)
		if (t_metric(body, v[i].name) != v[i].want) {
			snprintf(why, size, "%s is %lld, not %lld", v[i].name,
			         t_metric(body, v[i].name), v[i].want);
			return 1;
		}
	return 0;
}

/* Waits up to 3 s (the worker's count is refreshed every 500 ms) for
 * the n samples v of the /metrics of the admin address aa. */
static int samples_are(const struct zc_addr *aa, const struct sample *v, int n,
                       int line)
{
	uint64_t t0 = t_now_ms();
	char why[256] = "no /metrics";
	char *body;
	int differ = 1;

	while (differ && t_now_ms() - t0 < 3000) {
		body = NULL;
		if (t_http_get(aa, "/metrics", &body) == 200 && body)
			differ = samples_differ(body, v, n, why, sizeof(why));
		free(body);
		if (differ)
			t_sleep_ms(50);
	}
	if (differ)
		return t_fail(__FILE__, line, "%s", why);
	return T_PASS;
}

/* Sets v to the gauge of route r, or of its upstream up (not NULL). */
static void sample_set(struct sample *v, const char *r, const char *up,
                       long long want)
{
	if (up)
		snprintf(v->name, sizeof(v->name),
		         "zcrelay_upstream_sessions_active{route=\"%s\","
		         "upstream=\"%s\"}",
		         r, up);
	else
		snprintf(v->name, sizeof(v->name),
		         "zcrelay_route_sessions_active{route=\"%s\"}", r);
	v->want = want;
}

/* The counts of C are w: routes r and t, their live upstreams, r's dead
 * one (0) and the worker's sessions. */
static int counts_are(const struct cnt *C, const struct want *w, int line)
{
	struct sample v[6];

	sample_set(&v[0], "r", NULL, w->r);
	sample_set(&v[1], "r", C->us, w->r);
	sample_set(&v[2], "r", C->ds, 0);
	sample_set(&v[3], "t", NULL, w->t);
	sample_set(&v[4], "t", C->ts, w->t);
	snprintf(v[5].name, sizeof(v[5].name),
	         "zcrelay_worker_sessions{worker=\"0\"}");
	v[5].want = w->r + w->t;
	return samples_are(&C->aa, v, 6, line);
}

#define COUNTS_ARE(C, rn, tn)                                                  \
	do {                                                                   \
		struct want w_ = {(rn), (tn)};                                 \
		T_TRY(counts_are((C), &w_, __LINE__));                         \
	} while (0)

/* A session on route r: c and u. */
static int r_open(const struct cnt *C, int *c, int *u)
{
	return t_session(&C->lr, NULL, &C->ulfd, 1, c, u, NULL);
}

/* Closes c and u, each with a reset if asked. */
static void close_both(int c, int c_reset, int u, int u_reset)
{
	if (c_reset)
		t_set_linger0(c);
	if (u_reset)
		t_set_linger0(u);
	close(c);
	close(u);
}

/* Ends kind: 0 both FIN, 1 client reset, 2 upstream reset. */
static int end_plain(const struct cnt *C, int kind)
{
	int c, u;

	T_TRY(r_open(C, &c, &u));
	COUNTS_ARE(C, 2, 0);
	close_both(c, kind == 1, u, kind == 2);
	COUNTS_ARE(C, 1, 0);
	return T_PASS;
}

/* Round-robin over (live, dead): of two sessions, one starts on dead,
 * is refused and retried on live. */
static int end_after_retry(const struct cnt *C)
{
	int c, u, i;

	for (i = 0; i < 2; i++) {
		T_TRY(r_open(C, &c, &u));
		close_both(c, 0, u, 0);
		COUNTS_ARE(C, 1, 0);
	}
	ASSERT_GE(t_log_count(&C->d, " connect: ", C->ds), 1);
	return T_PASS;
}

/* Killed by DELETE /sessions?client=ADDR while relaying. */
static int end_killed(const struct cnt *C)
{
	char addr[64], path[128], *body = NULL;
	struct zc_addr me;
	socklen_t len = sizeof(me.ss);
	int c, u;

	T_TRY(r_open(C, &c, &u));
	ASSERT_OK(getsockname(c, (struct sockaddr *)&me.ss, &len));
	me.len = len;
	ASSERT_OK(t_addr_str(&me, addr, sizeof(addr)));
	snprintf(path, sizeof(path), "/sessions?client=%s", addr);
	ASSERT_EQ(t_http(&C->aa, "DELETE", path, NULL, &body), 200);
	ASSERT_EQ(t_json_num(body, "killed", 0), 1);
	free(body);
	ASSERT_TRUE(t_is_closed(t_wait_eof(c, 2000)));
	close_both(c, 0, u, 0);
	COUNTS_ARE(C, 1, 0);
	return T_PASS;
}

/* With the anchor and one more, the client is at its limit of 2: a
 * third is turned away (its route hold given back); once the second
 * ends, exactly one more gets in. */
static int end_refused(const struct cnt *C)
{
	int c[2], u[2];
	uint64_t ms;

	T_TRY(r_open(C, &c[0], &u[0]));
	T_TRY(t_expect_closed(&C->lr, NULL, 1000, &ms));
	ASSERT_EQ(t_wait_log_count(&C->d, REFUSED, NULL, 1, 2000), 1);
	COUNTS_ARE(C, 2, 0);
	close_both(c[0], 0, u[0], 0);
	COUNTS_ARE(C, 1, 0);
	T_TRY(r_open(C, &c[1], &u[1]));
	T_TRY(t_expect_closed(&C->lr, NULL, 1000, &ms));
	ASSERT_EQ(t_wait_log_count(&C->d, REFUSED, NULL, 2, 2000), 2);
	close_both(c[1], 0, u[1], 0);
	COUNTS_ARE(C, 1, 0);
	return T_PASS;
}

/* Route t's idle timeout ends a quiet session. */
static int end_idle(const struct cnt *C)
{
	int c, u;

	T_TRY(t_session(&C->lt, NULL, &C->tlfd, 1, &c, &u, NULL));
	ASSERT_TRUE(t_is_closed(t_wait_eof(c, 3000)));
	close_both(c, 0, u, 0);
	COUNTS_ARE(C, 1, 0);
	return T_PASS;
}

/* A session that started before a reload ends after it: the old
 * generation's holds go back to the counters the new one shows. */
static int end_after_reload(const struct cnt *C)
{
	char *body = NULL;
	int c, u;

	T_TRY(r_open(C, &c, &u));
	ASSERT_EQ(t_http(&C->aa, "POST", "/reload", NULL, &body), 200);
	free(body);
	ASSERT_EQ(t_wait_log_count(&C->d, "reloaded ", "route(s)", 1, 3000), 1);
	COUNTS_ARE(C, 2, 0);
	close_both(c, 0, u, 0);
	COUNTS_ARE(C, 1, 0);
	return end_plain(C, 0); /* and one of the new generation */
}

/*
 * Every way a relaying session can end, on every data path: the counts
 * come back to the anchor's after each; then SIGTERM drains, and the
 * daemon exits as soon as the anchor ends (the drain waits for the
 * worker's count to reach 0).
 */
TEST_MATRIX(test_daemon_counts_every_end)
{
	struct cnt C;
	uint64_t t0;
	int k;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(cnt_start(&C, ctx));
	COUNTS_ARE(&C, 1, 0);
	for (k = 0; k < 3; k++)
		T_TRY(end_plain(&C, k));
	T_TRY(end_after_retry(&C));
	T_TRY(end_killed(&C));
	T_TRY(end_refused(&C));
	T_TRY(end_idle(&C));
	T_TRY(end_after_reload(&C));
	ASSERT_OK(kill(C.d.pid, SIGTERM));
	ASSERT_EQ(t_wait_log_count(&C.d, ": draining (up to", NULL, 1, 2000),
	          1);
	ASSERT_EQ(t_ping(C.ac, C.au), T_PASS);
	t0 = t_now_ms();
	close_both(C.ac, 0, C.au, 0);
	ASSERT_EQ(t_daemon_wait(&C.d, 5000), 0);
	ASSERT_LE(t_now_ms() - t0, 3000);
	close(C.ulfd);
	close(C.tlfd);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Sessions that end while connecting                                   */

/* The counts of route "b" (to the unanswering upstream bs) and of the
 * worker are all n. */
static int b_counts_are(const struct zc_addr *aa, const char *bs, int n,
                        int line)
{
	struct sample v[3];

	sample_set(&v[0], "b", NULL, n);
	sample_set(&v[1], "b", bs, n);
	snprintf(v[2].name, sizeof(v[2].name),
	         "zcrelay_worker_sessions{worker=\"0\"}");
	v[2].want = n;
	return samples_are(aa, v, 3, line);
}

#define B_COUNTS_ARE(n)                                                        \
	do {                                                                   \
		int rc_ = b_counts_are(&aa, bs, (n), __LINE__);                \
		if (rc_)                                                       \
			return rc_;                                            \
	} while (0)

/*
 * An upstream that never answers: a session ends by its connect timeout,
 * one is killed through the admin API while connecting, and two still
 * connecting are aborted at the drain deadline; each time the counts
 * come back to 0, and the drain's end shows the worker's did too. At
 * most 2 per client: a third is refused while two connect.
 */
TEST_MATRIX(test_daemon_counts_connecting_ends)
{
	struct t_blackhole bh;
	struct t_daemon d;
	struct zc_addr lb, aa;
	char ls[64], as[64], bs[64], *body = NULL;
	int c[3], i;
	uint64_t t0, ms;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(t_blackhole_open(&bh));
	ASSERT_OK(t_free_addr(AF_INET, &lb));
	ASSERT_OK(t_free_addr(AF_INET, &aa));
	ASSERT_OK(t_addr_str(&lb, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(&aa, as, sizeof(as)));
	ASSERT_OK(t_addr_str(&bh.a, bs, sizeof(bs)));
	ASSERT_EQ(t_daemon_conf(&d, &lb,
	                        "workers = 1;\n%s\nadmin = \"%s\";\n"
	                        "drain-timeout = \"300ms\";\n"
	                        "routes = ( { name = \"b\"; listen = \"%s\";\n"
	                        "  upstreams = \"%s\"; mover = \"%s\";\n"
	                        "  connect-timeout = \"1500ms\";\n"
	                        "  max-conns-per-client = 2;\n"
	                        "  health = { fail-max = 0; }; } );\n",
	                        t_cfg_engine(ctx), as, ls, bs,
	                        t_cfg_mover(ctx)),
	          T_PASS);
	ASSERT_OK(t_wait_listen(&aa, 5000));
	/* The connect timeout. */
	c[0] = t_connect(&lb);
	ASSERT_OK(c[0]);
	B_COUNTS_ARE(1);
	ASSERT_TRUE(t_is_closed(t_wait_eof(c[0], 3000)));
	close(c[0]);
	ASSERT_EQ(t_wait_log_count(&d, "no upstream reachable", NULL, 1, 2000),
	          1);
	B_COUNTS_ARE(0);
	/* Killed while connecting. */
	c[0] = t_connect(&lb);
	ASSERT_OK(c[0]);
	B_COUNTS_ARE(1);
	ASSERT_EQ(t_http(&aa, "DELETE", "/sessions?route=b", NULL, &body), 200);
	ASSERT_EQ(t_json_num(body, "killed", 0), 1);
	free(body);
	ASSERT_TRUE(t_is_closed(t_wait_eof(c[0], 1000)));
	close(c[0]);
	B_COUNTS_ARE(0);
	/* Two connecting, the third refused; then the drain's abort. */
	for (i = 0; i < 2; i++) {
		c[i] = t_connect(&lb);
		ASSERT_OK(c[i]);
	}
	B_COUNTS_ARE(2);
	T_TRY(t_expect_closed(&lb, NULL, 1000, &ms));
	ASSERT_EQ(t_wait_log_count(&d, REFUSED, NULL, 1, 2000), 1);
	B_COUNTS_ARE(2);
	t0 = t_now_ms();
	ASSERT_OK(kill(d.pid, SIGTERM));
	ASSERT_EQ(t_daemon_wait(&d, 5000), 0);
	ASSERT_LE(t_now_ms() - t0, 1200); /* before the connects' timeout */
	for (i = 0; i < 2; i++) {
		ASSERT_TRUE(t_is_closed(t_wait_eof(c[i], 1000)));
		close(c[i]);
	}
	t_blackhole_close(&bh);
	return T_PASS;
}

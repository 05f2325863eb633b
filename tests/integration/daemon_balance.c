/*
 * daemon_balance.c - which upstream a connection goes to (weighted
 * roundrobin, leastconn, source) and passive health (an upstream that
 * refuses is ejected after fail-max failed connects and tried again
 * after the cool-down), through a daemon started from a config file.
 * Every upstream is a t_listen socket (or a free port nobody listens
 * on); the test counts where each session arrives.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"
#define MAXUP     4
#define MAXSESS   16

/* ------------------------------------------------------------------ */
/* Helpers (the shared ones are in tests/lib/tdaemon.c)                */

/* A daemon with one route and its upstreams. */
struct bal {
	struct t_daemon d;
	struct zc_addr la;
	struct zc_addr ua[MAXUP];
	int lfd[MAXUP]; /* -1: nobody listens (refuses) */
	char us[MAXUP][64];
	int n;
};

/* Adds an upstream to b: listening when live, else a free port. */
static int bal_add(struct bal *b, int live)
{
	struct zc_addr *a = &b->ua[b->n];

	ASSERT_LT(b->n, MAXUP);
	if (live) {
		b->lfd[b->n] = t_listen(AF_INET, a);
		ASSERT_OK(b->lfd[b->n]);
	} else {
		b->lfd[b->n] = -1;
		ASSERT_OK(t_free_addr(AF_INET, a));
	}
	ASSERT_OK(t_addr_str(a, b->us[b->n], sizeof(b->us[0])));
	b->n++;
	return T_PASS;
}

/*
 * Starts the daemon on a fresh b->la with one worker (so that the order
 * of choices is the order of the connections) and one route "r" to b's
 * upstreams with the given weights (NULL: 1 each), balance method and
 * further route settings (extra, may be "").
 */
static int bal_start(struct bal *b, const char *method, const unsigned *weights,
                     const char *extra)
{
	char ups[1024], la[64];
	size_t len = 0;
	int i;

	for (i = 0; i < b->n; i++) {
		len += (size_t)snprintf(ups + len, sizeof(ups) - len,
		                        "%s{ address = \"%s\"; weight = %u; }",
		                        i ? ", " : "", b->us[i],
		                        weights ? weights[i] : 1);
		ASSERT_LT(len, sizeof(ups));
	}
	ASSERT_OK(t_free_addr(AF_INET, &b->la));
	ASSERT_OK(t_addr_str(&b->la, la, sizeof(la)));
	return t_daemon_conf(&b->d, &b->la,
	                     "workers = 1;\n"
	                     "routes = ( {\n"
	                     "  name = \"r\"; listen = \"%s\";\n"
	                     "  upstreams = ( %s );\n"
	                     "  balance = \"%s\";\n"
	                     "  %s\n"
	                     "} );\n",
	                     la, ups, method, extra);
}

/* bal_start with two live upstreams. */
static int bal_two(struct bal *b, const char *method, const unsigned *weights)
{
	if (bal_add(b, 1) || bal_add(b, 1))
		return T_FAIL;
	return bal_start(b, method, weights, "");
}

/* Stops the daemon and closes the listeners. */
static int bal_stop(struct bal *b)
{
	int i, rc = t_daemon_down(&b->d);

	for (i = 0; i < b->n; i++)
		if (b->lfd[i] >= 0)
			close(b->lfd[i]);
	return rc;
}

/* One session from src (NULL: 127.0.0.1) that is closed at once; the
 * index of the upstream it reached goes to *which. */
static int bal_one(struct bal *b, const char *src, int *which)
{
	int c, u;

	T_TRY(t_session(&b->la, src, b->lfd, b->n, &c, &u, which));
	close(c);
	close(u);
	return T_PASS;
}

/* Sessions held open by a test. */
struct held {
	int c[MAXSESS], u[MAXSESS], up[MAXSESS];
	int n;
	int per[MAXUP]; /* open sessions per upstream */
};

/* Opens one more held session; *which gets its upstream. */
static int held_open(struct held *h, struct bal *b, int *which)
{
	int k = -1;

	ASSERT_LT(h->n, MAXSESS);
	T_TRY(t_session(&b->la, NULL, b->lfd, b->n, &h->c[h->n], &h->u[h->n],
	                &k));
	h->up[h->n++] = k;
	h->per[k]++;
	*which = k;
	return T_PASS;
}

/* Closes every held session on upstream k (k -1: all of them) and waits
 * until the daemon has logged their end, so its counts are down. */
static int held_close(struct held *h, struct bal *b, int k)
{
	char up[96];
	const char *what = up;
	int i, j = 0, n;

	snprintf(up, sizeof(up), " upstream=%s ", k < 0 ? "" : b->us[k]);
	if (k < 0)
		what = " end=";
	n = t_log_count(&b->d, " session ", what);
	for (i = 0; i < h->n; i++) {
		if (k >= 0 && h->up[i] != k) {
			h->c[j] = h->c[i];
			h->u[j] = h->u[i];
			h->up[j++] = h->up[i];
			continue;
		}
		close(h->c[i]);
		close(h->u[i]);
		h->per[h->up[i]]--;
		n++;
	}
	h->n = j;
	ASSERT_EQ(t_wait_log_count(&b->d, " session ", what, n, 5000), n);
	return T_PASS;
}

/* k, just chosen by leastconn, had the fewest sessions per weight. */
static int least_loaded(const struct held *h, const unsigned *w, int n, int k)
{
	int j;

	for (j = 0; j < n; j++)
		ASSERT_LE((h->per[k] - 1) * (int)w[j], h->per[j] * (int)w[k]);
	return T_PASS;
}

/* A leastconn daemon with weights w over two upstreams, and n sessions
 * opened one by one, each on a least loaded upstream. */
static int leastconn_open(struct held *h, struct bal *b, const unsigned w[2],
                          int n)
{
	int i, k, rc = bal_two(b, "leastconn", w);

	for (i = 0; rc == T_PASS && i < n; i++) {
		rc = held_open(h, b, &k);
		if (rc == T_PASS)
			rc = least_loaded(h, w, 2, k);
	}
	return rc;
}

/* Closes every held session, then stops the daemon. */
static int held_stop(struct held *h, struct bal *b)
{
	int rc = held_close(h, b, -1);

	return rc ? rc : bal_stop(b);
}

/* ------------------------------------------------------------------ */
/* Methods                                                              */

/*
 * roundrobin with weights 1 and 3: every run of 4 connections (the sum
 * of the weights) gives exactly 1 to the first and 3 to the second, so
 * 40 connections give 10 and 30.
 */
TEST(test_daemon_balance_roundrobin_weights)
{
	static const unsigned w[2] = {1, 3};
	struct bal b = {0};
	int got[2] = {0, 0}, blk[2] = {0, 0};
	int i, k = -1;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(bal_two(&b, "roundrobin", w));
	for (i = 0; i < 40; i++) {
		T_TRY(bal_one(&b, NULL, &k));
		got[k]++;
		blk[k]++;
		if (i % 4 == 3) {
			ASSERT_EQ(blk[0], 1);
			ASSERT_EQ(blk[1], 3);
			blk[0] = blk[1] = 0;
		}
	}
	ASSERT_EQ(got[0], 10);
	ASSERT_EQ(got[1], 30);
	ASSERT_ERR(t_accept_any(b.lfd, 2, 100, NULL), -ETIMEDOUT);
	ASSERT_EQ(t_wait_log_count(&b.d, " session ", " end=eof", 40, 5000),
	          40);
	return bal_stop(&b);
}

/*
 * leastconn: sessions spread evenly while all stay open; with the ones
 * on B closed, the next connections all go to B until both hold as
 * many, then they alternate again.
 */
TEST(test_daemon_balance_leastconn)
{
	static const unsigned w[2] = {1, 1};
	struct held h = {0};
	struct bal b = {0};
	int i, k, first, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(leastconn_open(&h, &b, w, 6));
	ASSERT_EQ(h.per[0], 3);
	ASSERT_EQ(h.per[1], 3);
	T_TRY(held_close(&h, &b, 1));
	for (i = 0; i < 3; i++) {
		T_TRY(held_open(&h, &b, &k));
		ASSERT_EQ(k, 1);
	}
	/* even again: one each */
	rc = held_open(&h, &b, &first);
	if (rc || (rc = held_open(&h, &b, &k)))
		return rc;
	ASSERT_NE(k, first);
	ASSERT_EQ(h.per[0], 4);
	ASSERT_EQ(h.per[1], 4);
	return held_stop(&h, &b);
}

/*
 * leastconn with a burst: A holds 2 sessions, B none, and 4 clients
 * arrive while the daemon is stopped (SIGSTOP), so that it accepts them
 * in one go, before any of their connects to the upstreams completed.
 * Sessions still connecting count: 3 go to B and 1 to A, as when they
 * come one by one, and not all 4 to B.
 */
TEST(test_daemon_balance_leastconn_burst)
{
	static const unsigned w[2] = {1, 1};
	struct held h = {0};
	struct bal b = {0};
	int c[4], u[4], got[2] = {0, 0};
	int i, k, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	rc = leastconn_open(&h, &b, w, 4);
	if (rc || (rc = held_close(&h, &b, 1)))
		return rc;
	ASSERT_EQ(h.per[0], 2);
	ASSERT_EQ(kill(b.d.pid, SIGSTOP), 0);
	for (i = 0; i < 4; i++) {
		c[i] = t_connect(&b.la); /* completes in the backlog */
		ASSERT_OK(c[i]);
	}
	ASSERT_EQ(kill(b.d.pid, SIGCONT), 0);
	for (i = 0; i < 4; i++) {
		u[i] = t_accept_any(b.lfd, 2, 2000, &k);
		ASSERT_OK(u[i]);
		got[k]++;
	}
	ASSERT_EQ(got[1], 3);
	ASSERT_EQ(got[0], 1);
	for (i = 0; i < 4; i++) {
		close(c[i]);
		close(u[i]);
	}
	ASSERT_EQ(t_wait_log_count(&b.d, " session ", " end=", 6, 5000), 6);
	return held_stop(&h, &b);
}

/* leastconn counts sessions per unit of weight: with weights 1 and 2,
 * every choice goes to the least loaded, and 9 sessions split 3 and 6. */
TEST(test_daemon_balance_leastconn_weights)
{
	static const unsigned w[2] = {1, 2};
	struct held h = {0};
	struct bal b = {0};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(leastconn_open(&h, &b, w, 9));
	ASSERT_EQ(h.per[0], 3);
	ASSERT_EQ(h.per[1], 6);
	return held_stop(&h, &b);
}

/*
 * source: the same client address always lands on the same upstream,
 * whatever its port. Four loopback addresses, three rounds; the hash
 * (FNV-1a) sends 127.0.0.1 and 127.0.0.2 to different upstreams of two,
 * so both must be used.
 */
TEST(test_daemon_balance_source)
{
	static const char *const src[4] = {"127.0.0.1", "127.0.0.2",
	                                   "127.0.0.3", "127.0.0.4"};
	struct bal b = {0};
	int first[4], used[2] = {0, 0};
	int round, i, k = -1;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(bal_two(&b, "source", NULL));
	for (round = 0; round < 3; round++)
		for (i = 0; i < 4; i++) {
			T_TRY(bal_one(&b, src[i], &k));
			if (round == 0)
				first[i] = k;
			ASSERT_EQ(k, first[i]);
			used[k]++;
		}
	ASSERT_NE(first[0], first[1]);
	ASSERT_GT(used[0], 0);
	ASSERT_GT(used[1], 0);
	ASSERT_EQ(t_wait_log_count(&b.d, " session ", " client=127.0.0.2:", 3,
	                           5000),
	          3);
	return bal_stop(&b);
}

/* ------------------------------------------------------------------ */
/* Passive health                                                       */

#define COOLDOWN_MS 1000
#define HEALTH_CONF "health = { fail-max = 2; cooldown = 1000; };"

/* The number of failed connects the daemon logged for upstream k. */
static int connect_fails(const struct bal *b, int k)
{
	char line[128];

	snprintf(line, sizeof(line), "route=r upstream=%s connect: ", b->us[k]);
	return t_log_count(&b->d, line, NULL);
}

/*
 * A refusing upstream and a healthy one, fail-max 2, cool-down 1 s:
 * after its second failure the dead one is ejected (logged once) and
 * not tried any more; once the cool-down is over it is tried again, and
 * when it listens by then it gets connections again.
 */
TEST(test_daemon_health_eject_and_return)
{
	struct bal b = {0};
	uint64_t t_ej, t_back = 0;
	int i, k = -1, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	if (bal_add(&b, 0) || bal_add(&b, 1))
		return T_FAIL;
	T_TRY(bal_start(&b, "roundrobin", NULL, HEALTH_CONF));
	/* turns 0 and 2 try the dead one first, then go to the live one */
	for (i = 0; i < 3; i++) {
		T_TRY(bal_one(&b, NULL, &k));
		ASSERT_EQ(k, 1);
	}
	ASSERT_EQ(t_wait_log_count(&b.d, " ejected for 1000 ms after 2 failed",
	                           b.us[0], 1, 2000),
	          1);
	t_ej = t_now_ms();
	ASSERT_EQ(connect_fails(&b, 0), 2);
	/* It listens again at once, but during the cool-down it is not
	 * tried, whatever its turn. */
	b.lfd[0] = t_listen_at(&b.ua[0]);
	ASSERT_OK(b.lfd[0]);
	for (i = 0; i < 4; i++) {
		T_TRY(bal_one(&b, NULL, &k));
		ASSERT_EQ(k, 1);
	}
	ASSERT_LT(t_now_ms() - t_ej, COOLDOWN_MS); /* else the above proves
	                                              nothing */
	ASSERT_EQ(connect_fails(&b, 0), 2);
	ASSERT_EQ(t_log_count(&b.d, "ejected", NULL), 1);

	/* after the cool-down its turn reaches it again */
	while (t_now_ms() - t_ej < COOLDOWN_MS + 5000) {
		T_TRY(bal_one(&b, NULL, &k));
		if (k == 0) {
			t_back = t_now_ms();
			break;
		}
		t_sleep_ms(20); /* polling for the end of the cool-down */
	}
	ASSERT_GT(t_back, 0);
	ASSERT_GE(t_back - t_ej, COOLDOWN_MS - 100);
	ASSERT_EQ(connect_fails(&b, 0), 2);
	ASSERT_EQ(t_wait_log_count(&b.d, "is back after 2 failed connects",
	                           b.us[0], 1, 2000),
	          1);
	/* and round-robin goes on over both */
	rc = bal_one(&b, NULL, &k);
	ASSERT_EQ(rc, T_PASS);
	ASSERT_EQ(k, 1);
	rc = bal_one(&b, NULL, &k);
	ASSERT_EQ(rc, T_PASS);
	ASSERT_EQ(k, 0);
	ASSERT_EQ(t_log_count(&b.d, "ejected", NULL), 1);
	return bal_stop(&b);
}

/*
 * Every upstream refuses: the clients are closed at once. First both
 * are tried ("no upstream reachable"); once both are ejected nothing is
 * tried ("no healthy upstream").
 */
TEST(test_daemon_health_all_down)
{
	struct bal b = {0};
	uint64_t ms;
	int i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	if (bal_add(&b, 0) || bal_add(&b, 0))
		return T_FAIL;
	T_TRY(bal_start(&b, "roundrobin", NULL,
	                "health = { fail-max = 2; cooldown = \"1m\"; };"));
	for (i = 1; i <= 2; i++) {
		T_TRY(t_expect_closed(&b.la, NULL, 1000, &ms));
		ASSERT_EQ(t_wait_log_count(&b.d, " no upstream reachable: ",
		                           strerror(ECONNREFUSED), i, 2000),
		          i);
	}
	ASSERT_EQ(
	        t_wait_log_count(&b.d, " ejected for 60000 ms ", NULL, 2, 2000),
	        2);
	for (i = 1; i <= 3; i++) {
		T_TRY(t_expect_closed(&b.la, NULL, 1000, &ms));
		ASSERT_EQ(t_wait_log_count(&b.d, " no healthy upstream",
		                           " route=r ", i, 2000),
		          i);
	}
	ASSERT_EQ(connect_fails(&b, 0), 2);
	ASSERT_EQ(connect_fails(&b, 1), 2);
	ASSERT_EQ(t_log_count(&b.d, "no upstream reachable", NULL), 2);
	return bal_stop(&b);
}

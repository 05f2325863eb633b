/*
 * daemon_upgrade.c - SIGUSR2 replaces the running process (A) with a new
 * one (B) of the same binary, black-box: B takes A's listening sockets,
 * so a client connecting in a loop through 10 back-to-back upgrades is
 * never refused or reset and every transfer is SHA-256 exact; sessions
 * open in A finish there byte-exact (phase 1: sessions are not moved);
 * the pid file follows the process that serves; and every failure of B
 * (bad config, a crash while it takes the listeners, SIGKILL, a
 * hand-over version it does not know) leaves A serving.
 *
 * The test process is a child subreaper: each B, orphaned when its A
 * exits, becomes the test's child and can be waited for.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"
#define XFER_LEN  (64u << 10) /* bytes of each looper transfer */
#define FAILED    "upgrade failed: "
/* The configuration that turns phase 2 off (on by default). */
#define KEEP_SESSIONS "upgrade-sessions = false;"

/* ------------------------------------------------------------------ */
/* A sink upstream: reads each connection to its end, answers with the  */
/* SHA-256 of what it read, closes. One connection at a time.           */

struct sink {
	struct zc_addr a;
	int lfd;
	int stop[2]; /* a byte on stop[1]: the thread ends */
	pthread_t th;
};

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
	                      {.fd = s->stop[0], .events = POLLIN}};
	struct t_xfer x;
	int u;

	while (poll(p, 2, -1) >= 0 && !p[1].revents) {
		if (!p[0].revents || (u = t_accept_ms(s->lfd, 0)) < 0)
			continue;
		if (t_receiver_start(&x, u, 0) == 0 && t_xfer_join(&x) == 0 &&
		    x.eof)
			t_write_all(u, x.digest, sizeof(x.digest));
		close(u);
	}
	return NULL;
}

static int sink_start(struct sink *s)
{
	s->lfd = t_listen(AF_INET, &s->a);
	ASSERT_OK(s->lfd);
	ASSERT_EQ(pipe2(s->stop, O_CLOEXEC), 0);
	ASSERT_EQ(pthread_create(&s->th, NULL, sink_main, s), 0);
	return T_PASS;
}

static void sink_stop(struct sink *s)
{
	if (write(s->stop[1], "", 1) != 1)
		abort();
	pthread_join(s->th, NULL);
	close(s->stop[0]);
	close(s->stop[1]);
	close(s->lfd);
}

/* ------------------------------------------------------------------ */
/* A client that connects in a loop: XFER_LEN bytes of stream n, then   */
/* the sink's digest of them back.                                      */

struct looper {
	const struct zc_addr *la;
	pthread_t th;
	int stop;      /* atomic */
	int done;      /* atomic: transfers completed */
	int failed;    /* transfers that failed */
	int first_err; /* -errno of the first failure */
	unsigned char buf[XFER_LEN];
};

/* A failed transfer: the kernel's view of its connection (queues,
 * states, which process holds each end) goes to the test's log. */
static void show_sockets(int c)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	char cmd[160];
	unsigned port;

	if (getsockname(c, (struct sockaddr *)&me, &len) == -1)
		return;
	port = ntohs(me.sin_port);
	snprintf(cmd, sizeof(cmd),
	         "ss -tanpoi '( sport = :%u or dport = :%u )' >&2", port, port);
	if (system(cmd) == -1)
		t_log("ss: %s", strerror(errno));
}

/* One transfer; 0 or -errno (-EBADMSG: wrong digest). */
static int looper_once(struct looper *l, uint64_t seed)
{
	unsigned char want[T_SHA256_LEN], got[T_SHA256_LEN];
	struct t_rng r;
	ssize_t n;
	int c = t_connect(l->la), err;

	if (c < 0)
		return c;
	t_rng_init(&r, seed);
	t_rng_fill(&r, l->buf, XFER_LEN);
	err = t_write_all(c, l->buf, XFER_LEN);
	if (!err && shutdown(c, SHUT_WR) == -1)
		err = -errno;
	if (!err) {
		n = t_read_full(c, got, sizeof(got), 5000);
		err = n < 0 ? (int)n : n != sizeof(got) ? -EPIPE : 0;
	}
	if (err)
		show_sockets(c);
	t_expect_digest(seed, XFER_LEN, want);
	if (!err && memcmp(got, want, sizeof(want)))
		err = -EBADMSG;
	close(c);
	return err;
}

static void *looper_main(void *arg)
{
	struct looper *l = arg;
	int n = 0, err;

	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		err = looper_once(l, (uint64_t)n + 1);
		if (err && !l->failed++)
			l->first_err = err;
		__atomic_store_n(&l->done, ++n, __ATOMIC_RELEASE);
	}
	return NULL;
}

static int looper_start(struct looper *l, const struct zc_addr *la)
{
	memset(l, 0, sizeof(*l));
	l->la = la;
	ASSERT_EQ(pthread_create(&l->th, NULL, looper_main, l), 0);
	return T_PASS;
}

/* Waits until the looper has completed n more transfers. */
static int looper_more(struct looper *l, int n)
{
	int want = __atomic_load_n(&l->done, __ATOMIC_ACQUIRE) + n;
	uint64_t end = t_now_ms() + 10000;

	while (__atomic_load_n(&l->done, __ATOMIC_ACQUIRE) < want) {
		ASSERT_LT(t_now_ms(), end);
		t_sleep_ms(1);
	}
	return T_PASS;
}

/* Stops the looper: no transfer may have failed. */
static int looper_stop(struct looper *l)
{
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
	pthread_join(l->th, NULL);
	t_log("%d transfers, %d failed", l->done, l->failed);
	if (l->failed)
		return t_fail(__FILE__, __LINE__,
		              "%d of %d failed, the first: %s", l->failed,
		              l->done, strerror(-l->first_err));
	ASSERT_GT(l->done, 0);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* The daemon                                                           */

struct up {
	struct t_daemon d; /* A, the first process; its log is everyone's */
	pid_t pid;         /* the process that serves now */
	struct zc_addr la; /* route "r", to the sink */
	struct sink s;
	struct zc_addr la2, ua2; /* route "s", to the test's ulfd */
	int ulfd;
	int workers;        /* of the configuration; 0: 2 */
	const char *s_opts; /* more settings of route "s", or NULL */
	int log_sessions;   /* a log line per session */
	char cfg[256], pidf[256];
};

/* The configuration: route "r" from U->la to the sink, route "s" from
 * U->la2 to U->ulfd, 2 workers, a pid file, and extra top-level
 * settings. */
static int up_write_cfg(struct up *U, const struct t_ctx *ctx,
                        const char *extra)
{
	char text[1024], la[128], ua[128], la2[128], ua2[128];
	const char *m = t_cfg_mover(ctx);

	ASSERT_OK(t_addr_str(&U->la, la, sizeof(la)));
	ASSERT_OK(t_addr_str(&U->s.a, ua, sizeof(ua)));
	ASSERT_OK(t_addr_str(&U->la2, la2, sizeof(la2)));
	ASSERT_OK(t_addr_str(&U->ua2, ua2, sizeof(ua2)));
	snprintf(U->pidf, sizeof(U->pidf), "%s/zcrelay.pid", t_tmpdir());
	snprintf(text, sizeof(text),
	         "workers = %d;\nlog = { sessions = %s; };\n%s\n"
	         "pid-file = \"%s\";\n%s\n"
	         "routes = ({ name = \"r\"; mover = \"%s\"; listen = \"%s\";"
	         " upstreams = [\"%s\"]; },\n"
	         "{ name = \"s\"; mover = \"%s\"; listen = \"%s\";"
	         " upstreams = [\"%s\"]; %s });\n",
	         U->workers ? U->workers : 2,
	         U->log_sessions ? "true" : "false", t_cfg_engine(ctx), U->pidf,
	         extra ? extra : "", m, la, ua, m, la2, ua2,
	         U->s_opts ? U->s_opts : "");
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, U->cfg, sizeof(U->cfg)));
	/* A new process that runs as user = "nobody" reads it too. */
	ASSERT_EQ(chmod(U->cfg, 0644), 0);
	return T_PASS;
}

/* Starts A (with env added, may be NULL) on a fresh address, unless
 * U->la is set already. */
static int up_start(struct up *U, const struct t_ctx *ctx, const char *extra,
                    const char *const env[])
{
	struct t_dargs a;
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	if (U->la.len == 0)
		ASSERT_OK(t_free_addr(AF_INET, &U->la));
	ASSERT_OK(t_free_addr(AF_INET, &U->la2));
	U->ulfd = t_listen(AF_INET, &U->ua2);
	ASSERT_OK(U->ulfd);
	rc = sink_start(&U->s);
	if (!rc)
		rc = up_write_cfg(U, ctx, extra);
	if (rc)
		return rc;
	t_dargs_cfg(&a, U->cfg);
	rc = t_daemon_up_env(&U->d, &a, &U->la, env);
	U->pid = U->d.pid;
	U->d.pid = 0; /* waited for here, with the Bs */
	return rc;
}

/* The pid in the pid file, or -1. */
static long read_pid(const char *path)
{
	char *t = t_file_text(path);
	long pid = t ? strtol(t, NULL, 10) : -1;

	free(t);
	return pid > 0 ? pid : -1;
}

/* Waits at most ms for pid (a child) to exit; its status (exit code,
 * 128 + signal) or -ETIMEDOUT. */
static int wait_exit(pid_t pid, int ms)
{
	uint64_t end = t_now_ms() + (uint64_t)ms;
	int st;
	pid_t r;

	while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
		if (t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(5);
	}
	if (r != pid)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Whether pid (a child) still runs. */
static int running(pid_t pid)
{
	int st;

	return waitpid(pid, &st, WNOHANG) == 0;
}

/* SIGUSR2 to the serving process: waits until the pid file names the
 * new one (U->pid from then on). The old one's pid goes to *old. */
static int upgrade(struct up *U, pid_t *old)
{
	uint64_t end = t_now_ms() + 10000;
	long p;

	*old = U->pid;
	ASSERT_EQ(kill(U->pid, SIGUSR2), 0);
	while ((p = read_pid(U->pidf)) == (long)U->pid || p < 0) {
		if (t_now_ms() >= end)
			return t_fail(__FILE__, __LINE__,
			              "the pid file still says %ld 10 s after "
			              "SIGUSR2",
			              p);
		t_sleep_ms(5);
	}
	U->pid = (pid_t)p;
	return T_PASS;
}

/* SIGTERM to the serving process: exits 0 and removes its pid file. */
static int up_stop(struct up *U)
{
	ASSERT_EQ(kill(U->pid, SIGTERM), 0);
	ASSERT_EQ(wait_exit(U->pid, 5000), 0);
	ASSERT_EQ(access(U->pidf, F_OK), -1);
	sink_stop(&U->s);
	close(U->ulfd);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Upgrades                                                             */

/*
 * n upgrades in a row while l loops: each old process exits 0 and
 * leaves the pid file to its successor, which runs as uid (-1: any),
 * and l completes 5 transfers after each.
 */
static int upgrades(struct up *U, struct looper *l, int n, long uid)
{
	struct stat st;
	char proc[64];
	pid_t old;
	int i;

	if (looper_start(l, &U->la) || looper_more(l, 5))
		return T_FAIL;
	for (i = 0; i < n; i++) {
		if (upgrade(U, &old))
			return T_FAIL;
		ASSERT_EQ(wait_exit(old, 5000), 0);
		ASSERT_EQ(read_pid(U->pidf), (long)U->pid);
		snprintf(proc, sizeof(proc), "/proc/%d", (int)U->pid);
		ASSERT_EQ(stat(proc, &st), 0);
		if (uid >= 0)
			ASSERT_EQ((long)st.st_uid, uid);
		if (looper_more(l, 5))
			return T_FAIL;
	}
	return T_PASS;
}

/*
 * A client connects in a loop while 10 upgrades follow each other: no
 * transfer fails (no refused or reset connect, every digest exact),
 * each old process exits 0 and leaves the pid file to its successor.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_no_refusals, 180)
{
	struct up U = {0};
	struct looper *l;
	int rc;

	l = malloc(sizeof(*l));
	ASSERT_TRUE(l);
	rc = up_start(&U, ctx, NULL, NULL);
	if (rc)
		return rc;
	if (upgrades(&U, l, 10, -1))
		return T_FAIL;
	rc = looper_stop(l);
	free(l);
	if (rc)
		return rc;
	ASSERT_EQ(t_log_count(&U.d, "accepts now", NULL), 10);
	ASSERT_EQ(t_log_count(&U.d, FAILED, NULL), 0);
	return up_stop(&U);
}

#define SESS_LEN (4u << 20)

/* A session through route "s": c (client) and u (upstream side). */
static int session(struct up *U, int *c, int *u)
{
	*c = t_connect(&U->la2);
	ASSERT_OK(*c);
	*u = t_accept_ms(U->ulfd, 5000);
	ASSERT_OK(*u);
	return t_ping(*c, *u);
}

/* len bytes each way, 16 KiB every pause_us, streams seed and seed + 1:
 * paced so that the session runs through the upgrade(s). */
static int paced_start(struct t_xfer x[4], int c, int u, uint64_t len,
                       unsigned pause_us, uint64_t seed)
{
	ASSERT_OK(t_sender_start_paced(&x[0], c, len, seed, T_XFER_SHUT_WR,
	                               16384, pause_us));
	ASSERT_OK(t_receiver_start(&x[1], u, 0));
	ASSERT_OK(t_sender_start_paced(&x[2], u, len, seed + 1, T_XFER_SHUT_WR,
	                               16384, pause_us));
	ASSERT_OK(t_receiver_start(&x[3], c, 0));
	return T_PASS;
}

/* Every byte of paced_start's arrived, in order, and the EOF after. */
static int paced_check(struct t_xfer x[4], uint64_t len, uint64_t seed)
{
	unsigned char want[T_SHA256_LEN];
	int i;

	for (i = 0; i < 4; i++)
		ASSERT_OK(t_xfer_join(&x[i]));
	ASSERT_EQ(x[1].bytes, len);
	ASSERT_EQ(x[3].bytes, len);
	ASSERT_TRUE(x[1].eof && x[3].eof);
	t_expect_digest(seed, len, want);
	ASSERT_MEMEQ(x[1].digest, want, sizeof(want));
	t_expect_digest(seed + 1, len, want);
	ASSERT_MEMEQ(x[3].digest, want, sizeof(want));
	return T_PASS;
}

static int xfer_start(struct t_xfer x[4], int c, int u)
{
	return paced_start(x, c, u, SESS_LEN, 2000, 7);
}

static int xfer_check(struct t_xfer x[4])
{
	return paced_check(x, SESS_LEN, 7);
}

/*
 * Sessions moving bytes both ways while the upgrade happens move to B
 * (phase 2), whatever their mover (the io_uring movers settle their
 * requests first), and finish there byte-exact, and A exits at once,
 * leaving B's pid file alone; new clients reach B while A exits.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_sessions_move, 120)
{
	struct t_xfer x[2][4];
	struct up U = {0};
	struct looper *l = malloc(sizeof(*l));
	int rc, c[2], u[2], i;
	pid_t old;

	ASSERT_TRUE(l);
	rc = up_start(&U, ctx, NULL, NULL);
	for (i = 0; i < 2 && !rc; i++)
		rc = session(&U, &c[i], &u[i]);
	if (rc || xfer_start(x[0], c[0], u[0]) || upgrade(&U, &old))
		return T_FAIL;
	/* Started in A before the upgrade, its bytes all moved after it. */
	if (xfer_start(x[1], c[1], u[1]))
		return T_FAIL;
	/* The new clients only once the hand-over is done: until A stops
	 * accepting, one of them could land in A and move as a third. */
	ASSERT_EQ(t_wait_log_count(&U.d, "upgrade: took ",
	                           " session(s) from the old process", 1, 5000),
	          1);
	if (looper_start(l, &U.la) || looper_more(l, 5))
		return T_FAIL;
	ASSERT_EQ(wait_exit(old, 3000), 0);
	ASSERT_EQ(t_log_count(&U.d, "took 2 session(s)", NULL), 1);
	for (i = 0; i < 2; i++) {
		if (xfer_check(x[i]))
			return T_FAIL;
		close(c[i]);
		ASSERT_EQ(t_is_closed(t_wait_eof(u[i], 5000)), 1);
		close(u[i]);
	}
	ASSERT_EQ(read_pid(U.pidf), (long)U.pid);
	rc = looper_stop(l);
	free(l);
	return rc ? rc : up_stop(&U);
}

/*
 * With upgrade-sessions = false, sessions moving bytes both ways while
 * the upgrade happens stay in A and finish there byte-exact; A exits
 * once they have ended, without removing B's pid file.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_sessions_stay_when_off, 120)
{
	struct t_xfer x[4];
	struct up U = {0};
	int rc, c, u;
	pid_t old;

	rc = up_start(&U, ctx, KEEP_SESSIONS, NULL);
	if (!rc)
		rc = session(&U, &c, &u);
	if (rc || xfer_start(x, c, u) || upgrade(&U, &old))
		return T_FAIL;
	ASSERT_TRUE(running(old));
	ASSERT_EQ(t_log_count(&U.d, "session(s) from the old", NULL), 0);
	if (xfer_check(x))
		return T_FAIL;
	close(c);
	ASSERT_EQ(t_is_closed(t_wait_eof(u, 5000)), 1);
	close(u);
	ASSERT_EQ(wait_exit(old, 5000), 0);
	ASSERT_EQ(read_pid(U.pidf), (long)U.pid);
	return up_stop(&U);
}

#define SLOW_LEN (2u << 20)

/* Slower: 2 MiB in 16 KiB steps 25 ms apart (about 3 s) each way, so
 * that the session lives through many upgrades. */
static int slow_start(struct t_xfer x[4], int c, int u)
{
	return paced_start(x, c, u, SLOW_LEN, 25000, 17);
}

static int slow_check(struct t_xfer x[4])
{
	return paced_check(x, SLOW_LEN, 17);
}

#define NSESS 8

/*
 * NSESS sessions moving bytes both ways (and one idle) live through 10
 * back-to-back upgrades: each process hands them to the next and exits
 * at once, and every byte arrives once, in order. Each session has one
 * log line, written where it ended, with the bytes of its whole life.
 * The ring mover sends with SEND_ZC from 4 KiB on here, so its relays
 * settle notifications the slow readers hold back at every upgrade.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_sessions_ten_moves, 180)
{
	static const char *const zc_env[] = {"ZC_RING_ZC=4096", NULL};
	char whole[64];
	struct t_xfer(*x)[4] = calloc(NSESS, sizeof(*x));
	struct up U = {.log_sessions = 1};
	int rc, c[NSESS + 1], u[NSESS + 1], i;
	pid_t old;

	ASSERT_TRUE(x);
	rc = up_start(&U, ctx, NULL, zc_env);
	for (i = 0; i <= NSESS && !rc; i++)
		rc = session(&U, &c[i], &u[i]);
	for (i = 0; i < NSESS && !rc; i++)
		rc = slow_start(x[i], c[i], u[i]);
	if (rc)
		return T_FAIL;
	for (i = 0; i < 10; i++) {
		if (upgrade(&U, &old))
			return T_FAIL;
		ASSERT_EQ(wait_exit(old, 3000), 0);
	}
	ASSERT_EQ(t_log_count(&U.d, "accepts now", NULL), 10);
	for (i = 0; i < NSESS; i++) {
		if (slow_check(x[i]))
			return T_FAIL;
		close(c[i]);
		ASSERT_EQ(t_is_closed(t_wait_eof(u[i], 5000)), 1);
		close(u[i]);
	}
	/* The idle one still relays, in the eleventh process. */
	ASSERT_EQ(t_ping(c[NSESS], u[NSESS]), T_PASS);
	close(c[NSESS]);
	close(u[NSESS]);
	/* A ping at the start (and, for the idle one, at the end), 1 byte
	 * each way, and the stream. */
	snprintf(whole, sizeof(whole), " up=%u down=%u ", SLOW_LEN + 1,
	         SLOW_LEN + 1);
	ASSERT_EQ(t_wait_log_count(&U.d, "route=s", " up=", NSESS + 1, 5000),
	          NSESS + 1);
	ASSERT_EQ(t_log_count(&U.d, "route=s", whole), NSESS);
	ASSERT_EQ(t_log_count(&U.d, "route=s", " up=2 down=2 "), 1);
	free(x);
	return up_stop(&U);
}

/*
 * A session that is not relaying yet when the upgrade starts (its PROXY
 * header has not come) is waited for: once the header comes, it relays,
 * moves to B, and A exits; its bytes arrive whole.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_waits_for_pending_sessions, 60)
{
	static const char hdr[] = "PROXY TCP4 192.0.2.7 192.0.2.8 4000 80\r\n";
	struct t_xfer x[4];
	struct up U = {.s_opts = "proxy-protocol = { accept = true; "
	                         "trusted = [\"127.0.0.1\"]; };"};
	int rc, c, u;
	pid_t old;

	rc = up_start(&U, ctx, NULL, NULL);
	if (rc)
		return rc;
	c = t_connect(&U.la2);
	ASSERT_OK(c);
	t_sleep_ms(50); /* accepted: waiting for its header */
	if (upgrade(&U, &old))
		return T_FAIL;
	t_sleep_ms(200);
	ASSERT_TRUE(running(old)); /* it waits for the session */
	ASSERT_OK(t_write_all(c, hdr, sizeof(hdr) - 1));
	u = t_accept_ms(U.ulfd, 5000);
	ASSERT_OK(u);
	if (xfer_start(x, c, u))
		return T_FAIL;
	ASSERT_EQ(wait_exit(old, 3000), 0);
	ASSERT_EQ(t_log_count(&U.d, "took 1 session(s)", NULL), 1);
	if (xfer_check(x))
		return T_FAIL;
	close(c);
	ASSERT_EQ(t_is_closed(t_wait_eof(u, 5000)), 1);
	close(u);
	return up_stop(&U);
}

/*
 * Deadlines carry over: a session 3 s into a 4 s idle timeout, and a
 * half-closed one 3 s into a 4 s half-close timeout, end about 1 s after
 * the upgrade in the new process, not 4 s.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_deadlines_carry_over, 60)
{
	struct up U = {.s_opts = "idle-timeout = 4000; "
	                         "halfclose-timeout = 4000;"};
	int rc, c[2], u[2], i;
	uint64_t t0, t;
	pid_t old;

	rc = up_start(&U, ctx, NULL, NULL);
	for (i = 0; i < 2 && !rc; i++)
		rc = session(&U, &c[i], &u[i]);
	if (rc)
		return rc;
	ASSERT_EQ(shutdown(c[1], SHUT_WR), 0); /* half-closed from now */
	ASSERT_EQ(t_read_full(u[1], &t, 1, 2000), 0);
	t_sleep_ms(3000);
	t0 = t_now_ms();
	if (upgrade(&U, &old))
		return T_FAIL;
	ASSERT_EQ(wait_exit(old, 3000), 0);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(t_is_closed(t_wait_eof(c[i], 6000)), 1);
		t = t_now_ms() - t0;
		t_log("session %d ended %llu ms after the upgrade", i,
		      (unsigned long long)t);
		ASSERT_LT(t, 3000);
		close(c[i]);
		close(u[i]);
	}
	return up_stop(&U);
}

/* n bytes each way through c <-> u, 64 KiB at a time. */
static int both_ways(int c, int u, size_t n)
{
	static char buf[65536], got[65536];
	size_t done;

	for (done = 0; done < n; done += sizeof(buf)) {
		memset(buf, (int)(done >> 16) + 1, sizeof(buf));
		ASSERT_OK(t_write_all(c, buf, sizeof(buf)));
		ASSERT_EQ(t_read_full(u, got, sizeof(got), 5000),
		          (ssize_t)sizeof(got));
		ASSERT_MEMEQ(got, buf, sizeof(buf));
		ASSERT_OK(t_write_all(u, buf, sizeof(buf)));
		ASSERT_EQ(t_read_full(c, got, sizeof(got), 5000),
		          (ssize_t)sizeof(got));
	}
	return T_PASS;
}

/* Waits (5 s at most) until route s's byte counters on aa read in and
 * out; T_PASS, or T_FAIL with what they read. */
static int wait_route_bytes(const struct zc_addr *aa, long long in,
                            long long out)
{
	uint64_t end = t_now_ms() + 5000;
	long long gi = -1, go = -1;
	char *body;

	do {
		body = NULL;
		if (t_http_get(aa, "/metrics", &body) == 200) {
			gi = t_metric(body, "zcrelay_route_bytes_total"
			                    "{route=\"s\",direction=\"in\"}");
			go = t_metric(body, "zcrelay_route_bytes_total"
			                    "{route=\"s\",direction=\"out\"}");
		}
		free(body);
		if (gi == in && go == out)
			return T_PASS;
		t_sleep_ms(50);
	} while (t_now_ms() < end);
	return t_fail(__FILE__, __LINE__,
	              "route s counted %lld in, %lld out; want %lld, %lld", gi,
	              go, in, out);
}

/*
 * Bytes are counted once across an upgrade: the old process's metrics
 * hold what moved there, the new one's only what moved after (nothing
 * twice, nothing lost: the sum is every byte), and the session's one
 * log line has the whole.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_metrics_count_once, 60)
{
	enum { X = 16 * 65536, Y = 8 * 65536 };
	struct up U = {.log_sessions = 1};
	char adm[300], extra[400], whole[64];
	struct zc_addr aa;
	int rc, c, u;
	pid_t old;

	snprintf(extra, sizeof(extra), "admin = \"unix:%s/admin.sock\";",
	         t_tmpdir());
	snprintf(adm, sizeof(adm), "unix:%s/admin.sock", t_tmpdir());
	ASSERT_OK(zc_addr_parse(&aa, adm, ZC_ADDR_PASSIVE));
	rc = up_start(&U, ctx, extra, NULL);
	if (!rc)
		rc = session(&U, &c, &u);
	if (rc || both_ways(c, u, X))
		return T_FAIL;
	/* The ping's byte and X, each way, in the old process. */
	if (wait_route_bytes(&aa, X + 1, X + 1) || upgrade(&U, &old))
		return T_FAIL;
	ASSERT_EQ(wait_exit(old, 3000), 0);
	if (both_ways(c, u, Y) || wait_route_bytes(&aa, Y, Y))
		return T_FAIL;
	close(c);
	ASSERT_EQ(t_is_closed(t_wait_eof(u, 5000)), 1);
	close(u);
	snprintf(whole, sizeof(whole), " up=%d down=%d ", X + Y + 1, X + Y + 1);
	ASSERT_EQ(t_wait_log_count(&U.d, "route=s", whole, 1, 5000), 1);
	ASSERT_EQ(t_log_count(&U.d, "route=s", " up="), 1);
	return up_stop(&U);
}

#define NIDLE 1000

/*
 * NIDLE idle sessions through 3 upgrades: each process hands all of them
 * to the next (the old one exits within 3 s), and every one still
 * relays both ways at the end, in the fourth process.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_thousand_idle, 180)
{
	int *c = calloc(NIDLE, sizeof(int)), *u = calloc(NIDLE, sizeof(int));
	struct up U = {0};
	pid_t old;
	int rc, i;

	ASSERT_TRUE(c && u);
	rc = up_start(&U, ctx, NULL, NULL);
	for (i = 0; i < NIDLE && !rc; i++)
		rc = session(&U, &c[i], &u[i]);
	if (rc)
		return rc;
	for (i = 0; i < 3; i++) {
		if (upgrade(&U, &old))
			return T_FAIL;
		ASSERT_EQ(wait_exit(old, 3000), 0);
	}
	ASSERT_EQ(t_log_count(&U.d, "took 1000 session(s)", NULL), 3);
	for (i = 0; i < NIDLE; i++) {
		ASSERT_EQ(t_ping(c[i], u[i]), T_PASS);
		close(c[i]);
		close(u[i]);
	}
	free(c);
	free(u);
	return up_stop(&U);
}

/*
 * The new process dies in the middle of phase 2 — before it adopts a
 * batch, or after it adopted one but before it said so: the old one
 * resumes every session it had not been told about, and they finish
 * byte-exact there (no byte lost, none twice).
 */
static int sessions_rollback(const struct t_ctx *ctx, const char *step)
{
	char env_s[64];
	const char *const env[] = {env_s, NULL};
	struct t_xfer x[2][4];
	struct up U = {0};
	int rc, c[2], u[2], i;
	pid_t old;

	snprintf(env_s, sizeof(env_s), "ZCRELAY_TEST_UPGRADE_FAIL=%s", step);
	rc = up_start(&U, ctx, NULL, env);
	for (i = 0; i < 2 && !rc; i++)
		rc = session(&U, &c[i], &u[i]);
	for (i = 0; i < 2 && !rc; i++)
		rc = xfer_start(x[i], c[i], u[i]);
	if (rc)
		return T_FAIL;
	old = U.pid;
	ASSERT_EQ(kill(U.pid, SIGUSR2), 0);
	ASSERT_EQ(t_wait_log_count(&U.d, "no answer from pid", NULL, 1, 15000),
	          1);
	for (i = 0; i < 2; i++) {
		if (xfer_check(x[i]))
			return T_FAIL;
		close(c[i]);
		ASSERT_EQ(t_is_closed(t_wait_eof(u[i], 5000)), 1);
		close(u[i]);
	}
	/* A drained its sessions and ends (B took the listeners with it). */
	ASSERT_EQ(wait_exit(old, 5000), 0);
	sink_stop(&U.s);
	close(U.ulfd);
	return T_PASS;
}

TEST_MATRIX_TIMEOUT(test_daemon_upgrade_sessions_b_dies_before_adopting, 60)
{
	return sessions_rollback(ctx, "sessions");
}

TEST_MATRIX_TIMEOUT(test_daemon_upgrade_sessions_b_dies_after_adopting, 60)
{
	return sessions_rollback(ctx, "adopted");
}

/* ------------------------------------------------------------------ */
/* Rollback: A keeps serving                                            */

/*
 * A failed upgrade, started with SIGUSR2 after env: the log says why
 * (reason), A still runs and owns the pid file, and a client looping
 * throughout never fails. Then A stops normally.
 */
static int rollback_case(const struct t_ctx *ctx, const char *const env[],
                         const char *reason, int bad_cfg)
{
	struct up U = {0};
	struct looper *l = malloc(sizeof(*l));
	char line[512];
	int rc;

	ASSERT_TRUE(l);
	rc = up_start(&U, ctx, NULL, env);
	if (rc)
		return rc;
	if (looper_start(l, &U.la) || looper_more(l, 3))
		return T_FAIL;
	if (bad_cfg)
		ASSERT_OK(t_write_tmp("zcrelay.conf", "routes = (;\n", U.cfg,
		                      sizeof(U.cfg)));
	ASSERT_EQ(kill(U.pid, SIGUSR2), 0);
	if (t_wait_log_line(&U.d, FAILED, reason, line, sizeof(line), 10000))
		return t_fail(__FILE__, __LINE__, "no \"%s\" in the log",
		              reason);
	t_log("%s", line);
	ASSERT_HAS(line, "keeps running");
	if (looper_more(l, 5))
		return T_FAIL;
	ASSERT_TRUE(running(U.pid));
	ASSERT_EQ(read_pid(U.pidf), (long)U.pid);
	rc = looper_stop(l);
	free(l);
	if (rc)
		return rc;
	ASSERT_EQ(t_log_count(&U.d, "accepts now", NULL), 0);
	return up_stop(&U);
}

/* B's configuration does not load: B exits before it takes anything. */
TEST_MATRIX(test_daemon_upgrade_rollback_bad_config)
{
	return rollback_case(ctx, NULL, "configuration check failed", 1);
}

/* B crashes (abort) once it holds the listeners, before it accepts. */
TEST_MATRIX(test_daemon_upgrade_rollback_crash)
{
	static const char *const env[] = {"ZCRELAY_TEST_UPGRADE_FAIL=taken",
	                                  NULL};

	return rollback_case(ctx, env, "killed by signal 6", 0);
}

/* B speaks another hand-over version (A announces 99): B refuses. */
TEST_MATRIX(test_daemon_upgrade_rollback_version)
{
	static const char *const env[] = {"ZCRELAY_TEST_HANDOFF_VERSION=99",
	                                  NULL};

	return rollback_case(ctx, env, "unknown hand-over version 99", 0);
}

/* B hangs once it holds the listeners: A gives up after its time (cut
 * to 1 s here), kills B and serves on. */
TEST_MATRIX(test_daemon_upgrade_rollback_timeout)
{
	static const char *const env[] = {
	        "ZCRELAY_TEST_UPGRADE_FAIL=stall",
	        "ZCRELAY_TEST_UPGRADE_TIMEOUT_MS=1000", NULL};

	return rollback_case(ctx, env, "not ready within 1000 ms: killed", 0);
}

/* B is killed (SIGKILL) in the middle: it holds the listeners and has
 * not said it accepts. */
TEST_MATRIX(test_daemon_upgrade_rollback_sigkill)
{
	static const char *const env[] = {"ZCRELAY_TEST_UPGRADE_FAIL=stall",
	                                  NULL};
	struct up U = {0};
	struct looper *l = malloc(sizeof(*l));
	char line[512], *p;
	long b;
	int rc;

	ASSERT_TRUE(l);
	rc = up_start(&U, ctx, NULL, env);
	if (rc)
		return rc;
	if (looper_start(l, &U.la) || looper_more(l, 3))
		return T_FAIL;
	ASSERT_EQ(kill(U.pid, SIGUSR2), 0);
	ASSERT_OK(t_wait_log_line(&U.d, "upgrade: started", NULL, line,
	                          sizeof(line), 5000));
	p = strstr(line, " as pid ");
	ASSERT_TRUE(p);
	b = strtol(p + 8, NULL, 10);
	ASSERT_GT(b, 0);
	ASSERT_EQ(t_wait_log_count(&U.d, "failing at 'stall'", NULL, 1, 5000),
	          1);
	if (looper_more(l, 3))
		return T_FAIL;
	ASSERT_EQ(kill((pid_t)b, SIGKILL), 0);
	ASSERT_OK(t_wait_log_line(&U.d, FAILED, "killed by signal 9", line,
	                          sizeof(line), 5000));
	if (looper_more(l, 5))
		return T_FAIL;
	ASSERT_TRUE(running(U.pid));
	ASSERT_EQ(read_pid(U.pidf), (long)U.pid);
	rc = looper_stop(l);
	free(l);
	return rc ? rc : up_stop(&U);
}

/* ------------------------------------------------------------------ */
/* The pid file, privileges                                             */

/* A pid file that names another process when the daemon stops is not
 * the daemon's to remove (an upgrade's new process wrote it). */
TEST(test_daemon_upgrade_pid_file_foreign)
{
	static const struct t_ctx plain = {ZC_MOVER_AUTO, ZC_ENGINE_AUTO, NULL};
	struct up U = {0};
	char *t;
	int rc = up_start(&U, &plain, NULL, NULL);

	if (rc)
		return rc;
	ASSERT_EQ(read_pid(U.pidf), (long)U.pid);
	ASSERT_OK(t_write_tmp("zcrelay.pid", "1\n", U.pidf, sizeof(U.pidf)));
	ASSERT_EQ(kill(U.pid, SIGTERM), 0);
	ASSERT_EQ(wait_exit(U.pid, 5000), 0);
	t = t_file_text(U.pidf);
	ASSERT_TRUE(t);
	ASSERT_STREQ(t, "1\n");
	free(t);
	sink_stop(&U.s);
	close(U.ulfd);
	return T_PASS;
}

/* A free TCP port below 1024 on 127.0.0.1: only root may bind it. */
static int low_port(struct zc_addr *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	int p, fd;

	for (p = 1000; p > 600; p--) {
		memset(a, 0, sizeof(*a));
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->len = sizeof(*sin);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && bind(fd, (struct sockaddr *)sin, a->len) == 0) {
			close(fd);
			return 0;
		}
		if (fd >= 0)
			close(fd);
	}
	return -EADDRINUSE;
}

/*
 * user = "nobody": the daemon binds a port below 1024 as root, drops
 * to nobody, and still upgrades twice without a failed transfer: the
 * new process, started as nobody, never binds (it could not) and
 * rewrites the pid file the first one made its user's.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_after_user_drop, 120)
{
	struct up U = {0};
	struct looper *l;
	struct passwd *pw;
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_SKIP_IF(geteuid() != 0, "needs root to drop privileges");
	pw = getpwnam("nobody");
	T_SKIP_IF(!pw, "no user nobody");
	T_SKIP_IF(low_port(&U.la), "no free port below 1024");
	/* nobody reads the config and removes its pid file (sticky). */
	ASSERT_EQ(chmod(t_tmpdir(), 01777), 0);
	l = malloc(sizeof(*l));
	ASSERT_TRUE(l);
	rc = up_start(&U, ctx, "user = \"nobody\";", NULL);
	if (rc)
		return rc;
	if (upgrades(&U, l, 2, (long)pw->pw_uid))
		return T_FAIL;
	rc = looper_stop(l);
	free(l);
	return rc ? rc : up_stop(&U);
}

/* ------------------------------------------------------------------ */
/* The admin API                                                        */

/*
 * POST /upgrade does what SIGUSR2 does and answers with the result: 200
 * and the new pid, after which the admin socket (a Unix path) is served
 * by the new process, its file kept; 500 and the reason when the new
 * process fails, the old one serving on. The last process removes the
 * socket file when it stops.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_admin_api, 120)
{
	struct up U = {0};
	struct looper *l = malloc(sizeof(*l));
	struct zc_addr aa;
	char adm[300], extra[400], *body = NULL;
	pid_t old;
	long pid;
	int rc;

	ASSERT_TRUE(l);
	snprintf(adm, sizeof(adm), "%s/admin.sock", t_tmpdir());
	snprintf(extra, sizeof(extra), "admin = \"unix:%s\";", adm);
	snprintf(adm, sizeof(adm), "unix:%s/admin.sock", t_tmpdir());
	ASSERT_OK(zc_addr_parse(&aa, adm, ZC_ADDR_PASSIVE));
	rc = up_start(&U, ctx, extra, NULL);
	if (rc || looper_start(l, &U.la) || looper_more(l, 3))
		return rc ? rc : T_FAIL;
	old = U.pid;
	ASSERT_EQ(t_http(&aa, "POST", "/upgrade", NULL, &body), 200);
	ASSERT_EQ(t_json_check(body, "d['ok'] and d['pid'] > 0"), T_PASS);
	pid = t_json_num(body, "pid", 0);
	free(body);
	ASSERT_EQ(wait_exit(old, 5000), 0);
	ASSERT_EQ(read_pid(U.pidf), pid);
	U.pid = (pid_t)pid;
	/* The new process answers on the same socket file. */
	ASSERT_EQ(t_http_get(&aa, "/status", NULL), 200);
	if (looper_more(l, 5))
		return T_FAIL;
	ASSERT_OK(t_write_tmp("zcrelay.conf", "routes = (;\n", U.cfg,
	                      sizeof(U.cfg)));
	ASSERT_EQ(t_http(&aa, "POST", "/upgrade", NULL, &body), 500);
	ASSERT_EQ(t_json_check(body, "not d['ok'] and 'configuration check "
	                             "failed' in d['error']"),
	          T_PASS);
	free(body);
	ASSERT_TRUE(running(U.pid));
	ASSERT_EQ(t_http_get(&aa, "/status", NULL), 200);
	if (looper_more(l, 5))
		return T_FAIL;
	rc = looper_stop(l);
	free(l);
	if (rc || up_stop(&U))
		return T_FAIL;
	ASSERT_EQ(access(adm + 5, F_OK), -1);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Listeners the new configuration adds or drops                        */

/*
 * The new process's file drops route "s" and adds route "t" on a new
 * address: "r" goes on without a failed transfer, "t" is bound fresh
 * and relays, and the socket of "s" is closed by the new process (its
 * clients are refused once the old one has gone).
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_listeners_change, 120)
{
	struct up U = {0};
	struct looper *l = malloc(sizeof(*l)), *l3x;
	struct zc_addr la3;
	char text[1024], la[128], ua[128], l3[128];
	pid_t old;
	int rc, c;

	ASSERT_TRUE(l);
	rc = up_start(&U, ctx, NULL, NULL);
	if (rc || looper_start(l, &U.la) || looper_more(l, 3))
		return rc ? rc : T_FAIL;
	ASSERT_OK(t_free_addr(AF_INET, &la3));
	ASSERT_OK(t_addr_str(&U.la, la, sizeof(la)));
	ASSERT_OK(t_addr_str(&U.s.a, ua, sizeof(ua)));
	ASSERT_OK(t_addr_str(&la3, l3, sizeof(l3)));
	snprintf(text, sizeof(text),
	         "workers = 2;\nlog = { sessions = false; };\n%s\n"
	         "pid-file = \"%s\";\nroutes = ("
	         "{ name = \"r\"; mover = \"%s\"; listen = \"%s\";"
	         " upstreams = [\"%s\"]; },\n"
	         "{ name = \"t\"; mover = \"%s\"; listen = \"%s\";"
	         " upstreams = [\"%s\"]; });\n",
	         t_cfg_engine(ctx), U.pidf, t_cfg_mover(ctx), la, ua,
	         t_cfg_mover(ctx), l3, ua);
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, U.cfg, sizeof(U.cfg)));
	if (upgrade(&U, &old))
		return T_FAIL;
	ASSERT_EQ(wait_exit(old, 5000), 0);
	/* Its two sockets (one per worker of the old process). */
	ASSERT_EQ(t_log_count(&U.d, "upgrade: inherited fd",
	                      "matches no listener; closing it"),
	          2);
	c = t_connect(&U.la2);
	ASSERT_ERR(c, -ECONNREFUSED);
	/* A transfer through "t" (in this thread, while l loops on "r"). */
	l3x = calloc(1, sizeof(*l3x));
	ASSERT_TRUE(l3x);
	l3x->la = &la3;
	ASSERT_OK(looper_once(l3x, 99));
	free(l3x);
	if (looper_more(l, 5))
		return T_FAIL;
	rc = looper_stop(l);
	free(l);
	return rc ? rc : up_stop(&U);
}

/*
 * The worker count changes across upgrades, 2 -> 3 -> 1 -> 2: the new
 * process watches every socket it is given (a worker more than sockets
 * shares one, sockets more than workers get listeners of their own), so
 * the looping client still never fails.
 */
TEST_MATRIX_TIMEOUT(test_daemon_upgrade_workers_change, 120)
{
	static const int counts[] = {3, 1, 2};
	struct up U = {0};
	struct looper *l = malloc(sizeof(*l));
	pid_t old;
	size_t i;
	int rc;

	ASSERT_TRUE(l);
	rc = up_start(&U, ctx, NULL, NULL);
	if (rc || looper_start(l, &U.la) || looper_more(l, 3))
		return rc ? rc : T_FAIL;
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		U.workers = counts[i];
		if (up_write_cfg(&U, ctx, NULL) || upgrade(&U, &old))
			return T_FAIL;
		ASSERT_EQ(wait_exit(old, 5000), 0);
		if (looper_more(l, 10))
			return T_FAIL;
	}
	ASSERT_EQ(t_log_count(&U.d, "worker(s)", "1 worker(s)"), 1);
	ASSERT_EQ(t_log_count(&U.d, "worker(s)", "3 worker(s)"), 1);
	rc = looper_stop(l);
	free(l);
	return rc ? rc : up_stop(&U);
}

/* ------------------------------------------------------------------ */
/* systemd                                                              */

/* An abstract datagram socket as NOTIFY_SOCKET "@name". */
static int notify_open(char *name, size_t size)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, n;

	n = snprintf(name, size, "@zctest-upgrade-%d", (int)getpid());
	memcpy(sun.sun_path + 1, name + 1, (size_t)n - 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(fd);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&sun,
	               (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	                           (size_t)n)),
	          0);
	return fd;
}

/* The next notification (waiting at most ms), or "" when none came. */
static void notify_next(int fd, char *buf, size_t size, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n = 0;

	if (poll(&p, 1, ms) == 1)
		n = recv(fd, buf, size - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
}

/*
 * Under systemd (NOTIFY_SOCKET) the new process says MAINPID=<its pid>
 * and READY=1 once it serves; the old one, draining, never says
 * STOPPING=1 (systemd would take the service for stopping).
 */
TEST(test_daemon_upgrade_systemd_mainpid)
{
	static const struct t_ctx plain = {ZC_MOVER_AUTO, ZC_ENGINE_AUTO, NULL};
	char name[64], env_s[96], got[256], want[64];
	const char *env[] = {env_s, NULL};
	struct up U = {0};
	pid_t old;
	int fd, rc;

	fd = notify_open(name, sizeof(name));
	if (fd < 0)
		return T_FAIL;
	snprintf(env_s, sizeof(env_s), "NOTIFY_SOCKET=%s", name);
	rc = up_start(&U, &plain, NULL, env);
	if (rc)
		return rc;
	notify_next(fd, got, sizeof(got), 5000);
	ASSERT_STREQ(got, "READY=1");
	if (upgrade(&U, &old))
		return T_FAIL;
	notify_next(fd, got, sizeof(got), 5000);
	snprintf(want, sizeof(want), "MAINPID=%d\nREADY=1", (int)U.pid);
	ASSERT_STREQ(got, want);
	ASSERT_EQ(wait_exit(old, 5000), 0);
	notify_next(fd, got, sizeof(got), 100);
	ASSERT_STREQ(got, "");
	rc = up_stop(&U);
	notify_next(fd, got, sizeof(got), 1000);
	ASSERT_STREQ(got, "STOPPING=1");
	close(fd);
	return rc;
}

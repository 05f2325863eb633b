/*
 * daemon_reload.c - SIGHUP reloads the -c file, black-box: no client is
 * refused while reloads change the upstreams, a session keeps its
 * upstream and its bytes across reloads while new sessions go to the new
 * upstream, listeners and routes come and go, a bad file (syntax, a
 * missing upstream, a listener that cannot bind) leaves the running
 * configuration serving, and a reload can move the log to a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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
#define RELOADED  "info reloaded "
#define KEEPING   "keeping the running configuration"

/* ------------------------------------------------------------------ */
/* Configuration files                                                  */

/* A route of a configuration: up to 3 upstreams, NULL-terminated. */
struct rt {
	const char *name;
	const struct zc_addr *listen;
	const struct zc_addr *ups[4];
};

/* The text of a configuration with the routes r[0..n-1] on the data
 * path of ctx, and more top-level settings (top, may be NULL). */
static int cfg_text(char *buf, size_t size, const struct t_ctx *ctx,
                    const struct rt *r, int n, const char *top)
{
	char a[128];
	size_t len;
	int i, k;

	len = (size_t)snprintf(buf, size, "workers = 2;\n%s\n%s\nroutes = (",
	                       t_cfg_engine(ctx), top ? top : "");
	for (i = 0; i < n && len < size; i++) {
		ASSERT_OK(t_addr_str(r[i].listen, a, sizeof(a)));
		len += (size_t)snprintf(buf + len, size - len,
		                        "%s\n  { name = \"%s\"; mover = \"%s\";"
		                        " listen = \"%s\"; upstreams = [",
		                        i ? "," : "", r[i].name,
		                        t_cfg_mover(ctx), a);
		for (k = 0; k < 3 && r[i].ups[k] && len < size; k++) {
			ASSERT_OK(t_addr_str(r[i].ups[k], a, sizeof(a)));
			len += (size_t)snprintf(buf + len, size - len,
			                        "%s \"%s\"", k ? "," : "", a);
		}
		if (len < size)
			len += (size_t)snprintf(buf + len, size - len, " ]; }");
	}
	if (len < size)
		len += (size_t)snprintf(buf + len, size - len, "\n);\n");
	ASSERT_LT(len, size);
	return T_PASS;
}

/* Starts a daemon on the configuration of the routes r[0..n-1] (file
 * "zcrelay.conf", path in path) and waits until it serves r[0]. */
static int start_cfg(struct t_daemon *d, const struct t_ctx *ctx,
                     const struct rt *r, int n, char *path, size_t size)
{
	char text[4096];

	if (cfg_text(text, sizeof(text), ctx, r, n, NULL))
		return T_FAIL;
	return t_daemon_up_cfg(d, "zcrelay.conf", text, path, size,
	                       r[0].listen);
}

/* Rewrites the file with text, sends SIGHUP, and waits until the log
 * has nth "reloaded" lines. */
static int reload_text(const struct t_daemon *d, const char *text, int nth)
{
	char path[256];

	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
	ASSERT_EQ(kill(d->pid, SIGHUP), 0);
	ASSERT_EQ(t_wait_log_count(d, RELOADED, NULL, nth, 5000), nth);
	return T_PASS;
}

/* The same with the routes r[0..n-1]. */
static int reload_cfg(const struct t_daemon *d, const struct t_ctx *ctx,
                      const struct rt *r, int n, int nth)
{
	char text[4096];

	if (cfg_text(text, sizeof(text), ctx, r, n, NULL))
		return T_FAIL;
	return reload_text(d, text, nth);
}

/* SIGTERM with no session left: the daemon must exit 0 promptly. */
static int daemon_down(struct t_daemon *d)
{
	ASSERT_EQ(t_daemon_stop(d, SIGTERM), 0);
	return T_PASS;
}

/*
 * A client through la whose upstream side is accepted on ulfd: "ping"
 * one way, "pong" back, then both close. Fails if ulfd does not get it.
 */
static int ping_via(const struct zc_addr *la, int ulfd)
{
	int c, u;

	c = t_connect(la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, "ping", 4));
	u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(u);
	return t_ping_pong(c, u, "ping", 4);
}

/* ------------------------------------------------------------------ */
/* Tag servers and a client that never stops                            */

/*
 * An upstream on its own thread: for each connection, reads a byte,
 * answers with its tag, and closes after the client's EOF. One at a
 * time; the others wait in the backlog.
 */
struct tagsrv {
	struct zc_addr addr;
	char tag;
	int lfd;
	int stop[2]; /* a byte on stop[1]: the thread ends */
	pthread_t th;
};

static void *tagsrv_main(void *arg)
{
	struct tagsrv *s = arg;
	struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
	                      {.fd = s->stop[0], .events = POLLIN}};
	char ch;
	int u;

	while (poll(p, 2, -1) >= 0 && !p[1].revents) {
		if (!p[0].revents)
			continue;
		u = t_accept_ms(s->lfd, 0);
		if (u < 0)
			continue;
		if (t_read_full(u, &ch, 1, 5000) == 1 &&
		    t_write_all(u, &s->tag, 1) == 0)
			t_wait_eof(u, 5000);
		close(u);
	}
	return NULL;
}

static int tagsrv_start(struct tagsrv *s, char tag)
{
	s->tag = tag;
	s->lfd = t_listen(AF_INET, &s->addr);
	ASSERT_OK(s->lfd);
	ASSERT_EQ(pipe2(s->stop, O_CLOEXEC), 0);
	ASSERT_EQ(pthread_create(&s->th, NULL, tagsrv_main, s), 0);
	return T_PASS;
}

static void tagsrv_stop(struct tagsrv *s)
{
	if (write(s->stop[1], "", 1) != 1)
		abort();
	pthread_join(s->th, NULL);
	close(s->stop[0]);
	close(s->stop[1]);
	close(s->lfd);
}

#define NTAGS 4096

/* Connects in a loop: connect, a byte, the tag back, close. */
struct looper {
	const struct zc_addr *la;
	pthread_t th;
	int stop;         /* atomic */
	int done;         /* atomic: connections completed */
	int failed;       /* connections that failed */
	int first_err;    /* -errno of the first failure */
	char tags[NTAGS]; /* the tag of connection i */
};

static void *looper_main(void *arg)
{
	struct looper *l = arg;
	int c, n = 0, err;
	char tag;

	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE) && n < NTAGS) {
		err = 0;
		c = t_connect(l->la);
		if (c < 0)
			err = c;
		else if ((err = t_write_all(c, "x", 1)) == 0 &&
		         t_read_full(c, &tag, 1, 5000) != 1)
			err = -EPIPE;
		if (c >= 0)
			close(c);
		if (err) {
			if (!l->failed++)
				l->first_err = err;
			tag = '?';
		}
		l->tags[n++] = tag;
		__atomic_store_n(&l->done, n, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Waits until the looper has completed at least n connections. */
static int looper_wait(struct looper *l, int n)
{
	uint64_t end = t_now_ms() + 10000;

	while (__atomic_load_n(&l->done, __ATOMIC_ACQUIRE) < n) {
		ASSERT_LT(t_now_ms(), end);
		t_sleep_ms(1);
	}
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Reloads under load                                                   */

#define NLOOP 3

/* After a reload to the upstreams list: the next 20 connections each
 * looper begins go to one of them. */
static int loopers_check(struct looper *l, const char *list, int reload)
{
	int from[NLOOP], i, k;

	for (i = 0; i < NLOOP; i++)
		from[i] = __atomic_load_n(&l[i].done, __ATOMIC_ACQUIRE) + 1;
	for (i = 0; i < NLOOP; i++) {
		ASSERT_OK(looper_wait(&l[i], from[i] + 20));
		for (k = from[i]; k < from[i] + 20; k++)
			if (!strchr(list, l[i].tags[k]))
				return t_fail(__FILE__, __LINE__,
				              "reload %d: connection %d.%d "
				              "went to %c, not one of %s",
				              reload, i, k, l[i].tags[k], list);
	}
	return T_PASS;
}

/*
 * Three clients connect in a loop while five reloads change the
 * upstream list: no connection fails, and every connection begun after
 * a reload is served by an upstream of the new list.
 */
TEST_TIMEOUT(test_daemon_reload_no_refusals, 180)
{
	/* The upstreams of the initial file and of each reload. */
	static const char *const lists[6] = {"A", "BC", "C", "AB", "B", "AC"};
	struct tagsrv srv[3];
	struct looper *l;
	struct zc_addr la;
	struct t_daemon d;
	struct rt r = {"r", &la, {NULL}};
	char path[256];
	int i, rc, failed = 0, done = 0;
	size_t j;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	for (i = 0; i < 3; i++)
		if (tagsrv_start(&srv[i], (char)('A' + i)))
			return T_FAIL;
	r.ups[0] = &srv[0].addr;
	T_TRY(start_cfg(&d, ctx, &r, 1, path, sizeof(path)));
	l = calloc(NLOOP, sizeof(*l));
	ASSERT_TRUE(l);
	for (i = 0; i < NLOOP; i++) {
		l[i].la = &la;
		ASSERT_EQ(pthread_create(&l[i].th, NULL, looper_main, &l[i]),
		          0);
	}
	rc = loopers_check(l, lists[0], 0);
	for (i = 1; i <= 5 && !rc; i++) {
		memset(r.ups, 0, sizeof(r.ups));
		for (j = 0; lists[i][j]; j++)
			r.ups[j] = &srv[lists[i][j] - 'A'].addr;
		rc = reload_cfg(&d, ctx, &r, 1, i);
		if (!rc)
			rc = loopers_check(l, lists[i], i);
	}
	if (rc)
		return rc;
	for (i = 0; i < NLOOP; i++) {
		__atomic_store_n(&l[i].stop, 1, __ATOMIC_RELEASE);
		pthread_join(l[i].th, NULL);
		failed += l[i].failed;
		done += l[i].done;
		if (l[i].failed)
			t_log("looper %d: %d failed, the first: %s", i,
			      l[i].failed, strerror(-l[i].first_err));
	}
	t_log("%d connections across 5 reloads", done);
	ASSERT_EQ(failed, 0);
	free(l);
	rc = daemon_down(&d);
	for (i = 0; i < 3; i++)
		tagsrv_stop(&srv[i]);
	return rc;
}

/*
 * One session relays while five reloads change the upstream (U1 -> U2
 * -> U3 -> ...): its bytes arrive exactly, both ways, and it stays on
 * U1; after each reload a new session goes to the new upstream only.
 */
TEST_MATRIX(test_daemon_reload_session_survives)
{
	const uint64_t seed_up = 41, seed_down = 42, part = 2u << 20;
	unsigned char want[T_SHA256_LEN];
	struct t_xfer rx_up, rx_down;
	struct t_rng r_up, r_down;
	struct zc_addr la, ua[3];
	struct t_daemon d;
	struct rt r = {"r", &la, {NULL}};
	char path[256], buf[65536], line[1024], as[128], us[140];
	int ulfd[3], c, u, i, k, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	for (i = 0; i < 3; i++) {
		ulfd[i] = t_listen(AF_INET, &ua[i]);
		ASSERT_OK(ulfd[i]);
	}
	r.ups[0] = &ua[0];
	T_TRY(start_cfg(&d, ctx, &r, 1, path, sizeof(path)));
	c = t_connect(&la);
	ASSERT_OK(c);
	u = t_accept_ms(ulfd[0], 5000);
	ASSERT_OK(u);
	ASSERT_OK(t_receiver_start(&rx_up, u, 0));
	ASSERT_OK(t_receiver_start(&rx_down, c, 0));
	t_rng_init(&r_up, seed_up);
	t_rng_init(&r_down, seed_down);

	for (i = 0; i <= 5; i++) {
		/* A part of the stream each way, then a reload. */
		for (k = 0; k < (int)(part / sizeof(buf)); k++) {
			t_rng_fill(&r_up, buf, sizeof(buf));
			ASSERT_OK(t_write_all(c, buf, sizeof(buf)));
			t_rng_fill(&r_down, buf, sizeof(buf));
			ASSERT_OK(t_write_all(u, buf, sizeof(buf)));
		}
		if (i == 5)
			break;
		r.ups[0] = &ua[1 + i % 2];
		rc = reload_cfg(&d, ctx, &r, 1, i + 1);
		if (!rc)
			rc = ping_via(&la, ulfd[1 + i % 2]);
		if (rc)
			return rc;
		ASSERT_ERR(t_accept_ms(ulfd[0], 0), -ETIMEDOUT);
	}
	ASSERT_EQ(shutdown(c, SHUT_WR), 0);
	ASSERT_EQ(shutdown(u, SHUT_WR), 0);
	ASSERT_OK(t_xfer_join_ms(&rx_up, 60000));
	ASSERT_OK(t_xfer_join_ms(&rx_down, 60000));
	ASSERT_EQ(rx_up.bytes, 6 * part);
	ASSERT_EQ(rx_down.bytes, 6 * part);
	t_expect_digest(seed_up, 6 * part, want);
	ASSERT_MEMEQ(rx_up.digest, want, T_SHA256_LEN);
	t_expect_digest(seed_down, 6 * part, want);
	ASSERT_MEMEQ(rx_down.digest, want, T_SHA256_LEN);
	close(c);
	close(u);

	ASSERT_OK(t_addr_str(&ua[0], as, sizeof(as)));
	snprintf(us, sizeof(us), " upstream=%s ", as);
	snprintf(line, sizeof(line), " up=%llu down=%llu ",
	         (unsigned long long)(6 * part),
	         (unsigned long long)(6 * part));
	ASSERT_OK(t_wait_log_line(&d, us, line, NULL, 0, 5000));
	rc = daemon_down(&d);
	for (i = 0; i < 3; i++)
		close(ulfd[i]);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Listeners and routes                                                 */

/*
 * Reload 1 adds route b on a new listener la2: it accepts. Reload 2
 * drops la1 from route a: connects to it are refused. Reload 3 gives la2
 * to a new route c with another upstream: it keeps accepting, for c.
 */
TEST(test_daemon_reload_listeners)
{
	struct zc_addr la1, la2, ua1, ua2;
	struct t_daemon d;
	struct rt r[2] = {{"a", &la1, {&ua1}}, {"b", &la2, {&ua2}}};
	char path[256];
	int u1, u2, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la1));
	ASSERT_OK(t_free_addr(AF_INET, &la2));
	u1 = t_listen(AF_INET, &ua1);
	ASSERT_OK(u1);
	u2 = t_listen(AF_INET, &ua2);
	ASSERT_OK(u2);
	T_TRY(start_cfg(&d, ctx, r, 1, path, sizeof(path)));
	ASSERT_ERR(t_connect(&la2), -ECONNREFUSED);

	rc = reload_cfg(&d, ctx, r, 2, 1);
	if (!rc)
		rc = ping_via(&la2, u2);
	if (!rc)
		rc = ping_via(&la1, u1);
	if (rc)
		return rc;

	rc = reload_cfg(&d, ctx, &r[1], 1, 2); /* only b, on la2 */
	if (!rc)
		rc = ping_via(&la2, u2);
	if (rc)
		return rc;
	ASSERT_ERR(t_connect(&la1), -ECONNREFUSED);

	r[0] = (struct rt){"c", &la2, {&ua1}};
	rc = reload_cfg(&d, ctx, r, 1, 3); /* la2 now feeds c -> ua1 */
	if (!rc)
		rc = ping_via(&la2, u1);
	if (rc)
		return rc;
	ASSERT_ERR(t_accept_ms(u2, 0), -ETIMEDOUT);
	ASSERT_OK(t_wait_log_line(&d, " session ", " route=c ", NULL, 0, 5000));
	rc = daemon_down(&d);
	close(u1);
	close(u2);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Bad files                                                            */

/*
 * Each bad file is refused with its reason in the log, and the running
 * configuration keeps serving (the bad files name another upstream,
 * which must see nothing): a syntax error, a route without upstream, a
 * listener whose address the test holds. A good file still loads after.
 */
TEST(test_daemon_reload_invalid)
{
	struct zc_addr la, lbusy, ua1, ua2;
	struct t_daemon d;
	struct rt r[2] = {{"a", &la, {&ua1}}, {"busy", &lbusy, {&ua2}}};
	char path[256], text[4096], why[512], bs[128];
	int u1, u2, busy, rc, i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	u1 = t_listen(AF_INET, &ua1);
	ASSERT_OK(u1);
	u2 = t_listen(AF_INET, &ua2);
	ASSERT_OK(u2);
	busy = t_listen(AF_INET, &lbusy);
	ASSERT_OK(busy);
	T_TRY(start_cfg(&d, ctx, r, 1, path, sizeof(path)));

	for (i = 0; i < 3; i++) {
		if (i == 0) {
			snprintf(text, sizeof(text),
			         "workers = 2;\nroutes = ( { name = \"a\";\n");
			snprintf(why, sizeof(why), "%s:3: ", path);
		} else if (i == 1) {
			snprintf(text, sizeof(text),
			         "workers = 2;\nroutes = ( { name = \"a\";\n"
			         "  listen = \"127.0.0.1:1\"; } );\n");
			snprintf(why, sizeof(why),
			         "%s:2: route 'a' has no upstream", path);
		} else {
			r[0].ups[0] = &ua2;
			if (cfg_text(text, sizeof(text), ctx, r, 2, NULL))
				return T_FAIL;
			ASSERT_OK(t_addr_str(&lbusy, bs, sizeof(bs)));
			snprintf(why, sizeof(why), "listen %s: %s", bs,
			         strerror(EADDRINUSE));
		}
		ASSERT_OK(
		        t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
		ASSERT_EQ(kill(d.pid, SIGHUP), 0);
		ASSERT_EQ(t_wait_log_count(&d, KEEPING, NULL, i + 1, 5000),
		          i + 1);
		if (t_log_count(&d, why, NULL) != 1)
			return t_fail(__FILE__, __LINE__,
			              "file %d: no log line \"%s\"", i, why);
		T_TRY(ping_via(&la, u1));
		ASSERT_ERR(t_accept_ms(u2, 0), -ETIMEDOUT);
		ASSERT_ERR(t_daemon_wait(&d, 0), -ETIMEDOUT);
	}
	ASSERT_EQ(t_log_count(&d, RELOADED, NULL), 0);

	rc = reload_cfg(&d, ctx, r, 1, 1); /* a -> ua2 now */
	if (!rc)
		rc = ping_via(&la, u2);
	if (rc)
		return rc;
	rc = daemon_down(&d);
	close(busy);
	close(u1);
	close(u2);
	return rc;
}

/* A reload that sets log.file moves the log there from stderr. */
TEST(test_daemon_reload_log_file)
{
	struct zc_addr la, ua;
	struct t_daemon d;
	struct rt r = {"a", &la, {&ua}};
	char path[256], logpath[256], top[512], text[4096];
	int u, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	u = t_listen(AF_INET, &ua);
	ASSERT_OK(u);
	T_TRY(start_cfg(&d, ctx, &r, 1, path, sizeof(path)));
	snprintf(logpath, sizeof(logpath), "%s/relay.log", t_tmpdir());
	snprintf(top, sizeof(top), "log = { file = \"%s\"; };", logpath);
	if (cfg_text(text, sizeof(text), ctx, &r, 1, top))
		return T_FAIL;
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
	ASSERT_EQ(kill(d.pid, SIGHUP), 0);
	ASSERT_OK(t_wait_file_line(logpath, RELOADED, NULL, NULL, 0, 5000));
	T_TRY(ping_via(&la, u));
	ASSERT_OK(t_wait_file_line(logpath, " session ", " route=a ", NULL, 0,
	                           5000));
	ASSERT_EQ(t_log_count(&d, " session ", NULL), 0);
	rc = daemon_down(&d);
	close(u);
	return rc;
}

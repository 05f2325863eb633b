/*
 * daemon_admin.c - the admin API through a running daemon: every
 * endpoint's JSON parsed by python3's json module, upstream drain /
 * disable / enable / weight taking effect on every worker's next session
 * and surviving a reload, sessions listed with their live byte counts and
 * killed one by one or by upstream, POST /reload with FILE:LINE errors,
 * the Unix admin socket's mode, and per-client limits keyed by the PROXY
 * source.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"
#include "tproc.h"

#define NO_DAEMON "ZC_DAEMON not set"
#define NUP       2

/* A daemon (4 workers) with one route "r" to NUP listening upstreams, a
 * TCP admin address and a Unix one. */
struct adm {
	struct t_daemon d;
	struct zc_addr la, aa, ux;
	struct zc_addr ua[NUP];
	int lfd[NUP];
	char us[NUP][64], as[64], uxs[160], path[256];
	char cfg[2048];
	int any;   /* the TCP admin address listens on 0.0.0.0 */
	int named; /* the upstreams are named "a" and "b" */
};

/* Starts b's daemon with the global settings glob and the route settings
 * extra (either may be ""). */
static int adm_start(struct adm *b, const char *glob, const char *extra)
{
	char ls[64];
	int i;

	ASSERT_OK(t_free_addr(AF_INET, &b->la));
	ASSERT_OK(t_free_addr(AF_INET, &b->aa));
	ASSERT_OK(t_free_addr(AF_UNIX, &b->ux));
	ASSERT_OK(t_addr_str(&b->la, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(&b->aa, b->as, sizeof(b->as)));
	if (b->any)
		snprintf(b->as, sizeof(b->as), "0.0.0.0%s", strchr(b->as, ':'));
	ASSERT_OK(t_addr_str(&b->ux, b->uxs, sizeof(b->uxs)));
	for (i = 0; i < NUP; i++) {
		b->lfd[i] = t_listen(AF_INET, &b->ua[i]);
		ASSERT_OK(b->lfd[i]);
		ASSERT_OK(t_addr_str(&b->ua[i], b->us[i], sizeof(b->us[i])));
	}
	snprintf(b->cfg, sizeof(b->cfg),
	         "workers = 4;\n%s\nadmin = [ \"%s\", \"%s\" ];\n"
	         "routes = (\n  { name = \"r\"; listen = \"%s\";\n"
	         "    upstreams = ( %s\"%s\"%s, %s\"%s\"%s );\n%s\n  }\n);\n",
	         glob, b->as, b->uxs, ls, b->named ? "{ address = " : "",
	         b->us[0], b->named ? "; name = \"a\"; }" : "",
	         b->named ? "{ address = " : "", b->us[1],
	         b->named ? "; name = \"b\"; }" : "", extra);
	T_TRY(t_daemon_up_cfg(&b->d, "zcrelay.conf", b->cfg, b->path,
	                      sizeof(b->path), &b->la));
	ASSERT_OK(t_wait_listen(&b->aa, 5000));
	ASSERT_OK(t_wait_listen(&b->ux, 5000));
	return T_PASS;
}

static int adm_stop(struct adm *b)
{
	int i, rc = t_daemon_down(&b->d);

	for (i = 0; i < NUP; i++)
		close(b->lfd[i]);
	t_cleanup_unix(&b->ux);
	return rc;
}

/* A request to the admin address; its JSON body must satisfy expr
 * (NULL: just parse). The body goes to *body if not NULL. */
static int adm_req(const struct zc_addr *a, const char *method,
                   const char *path, int want, const char *expr, char **body)
{
	char *b = NULL;
	int st = t_http(a, method, path, NULL, &b), rc;

	if (st != want)
		t_log("%s %s: %d, not %d: %s", method, path, st, want,
		      b ? b : "");
	ASSERT_EQ(st, want);
	ASSERT_TRUE(b != NULL);
	rc = t_json_check(b, expr ? expr : "True");
	if (body && rc == T_PASS)
		*body = b;
	else
		free(b);
	return rc;
}

/* n sessions one after the other; counts where each arrives in hits. */
static int sessions_to(const struct adm *b, int n, int *hits)
{
	int i, c, u, which;

	for (i = 0; i < n; i++) {
		if (t_session(&b->la, NULL, b->lfd, NUP, &c, &u, &which))
			return T_FAIL;
		hits[which]++;
		close(c);
		close(u);
	}
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

TEST(test_daemon_admin_endpoints)
{
	struct adm b = {0};
	struct stat sb;
	char q[512], *body = NULL;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "", ""), T_PASS);
	ASSERT_OK(stat(b.uxs + 5, &sb));
	ASSERT_EQ(sb.st_mode & 0777, 0600);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/healthz", 200, "d['status'] == 'ok'",
	                  NULL),
	          T_PASS);
	snprintf(q, sizeof(q),
	         "d['pid'] == %d and d['workers'] == 4 and d['generation'] "
	         "== 1 and d['config'].endswith('zcrelay.conf') and "
	         "d['state'] == 'accepting' and d['reload']['count'] == 0 "
	         "and d['sessions'] == 0 and d['engine'] in ('epoll', "
	         "'uring')",
	         (int)b.d.pid);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/status", 200, q, NULL), T_PASS);
	snprintf(q, sizeof(q),
	         "len(d) == 1 and d[0]['name'] == 'r' and "
	         "[u['address'] for u in d[0]['upstreams']] == ['%s', '%s'] "
	         "and all(u['state'] == 'enabled' and u['weight'] == 1 and "
	         "u['health']['healthy'] for u in d[0]['upstreams'])",
	         b.us[0], b.us[1]);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/routes", 200, q, NULL), T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/upstreams", 200,
	                  "len(d) == 2 and d[1]['route'] == 'r'", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions", 200,
	                  "d == {'total': 0, 'sessions': []}", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/nothing", 404, "'error' in d", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "POST", "/status", 405, "'error' in d", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/upgrade", 405, "'error' in d", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "POST", "/upstreams/drain?route=r", 400,
	                  "'required' in d['error']", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "POST",
	                  "/upstreams/drain?route=r&upstream=1.2.3.4:5", 404,
	                  "'no upstream' in d['error']", NULL),
	          T_PASS);
	snprintf(q, sizeof(q), "/upstreams/weight?route=r&upstream=%s&weight=0",
	         b.us[0]);
	ASSERT_EQ(
	        adm_req(&b.aa, "POST", q, 400, "'1-1000' in d['error']", NULL),
	        T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "DELETE", "/sessions", 400,
	                  "'filter' in d['error']", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "DELETE", "/sessions/77", 404,
	                  "'no session 77' in d['error']", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions?limit=x", 400,
	                  "'limit' in d['error']", NULL),
	          T_PASS);
	ASSERT_EQ(t_http_get(&b.aa, "/metrics", &body), 200);
	ASSERT_HAS(body, "zcrelay_route_sessions_total{route=\"r\"} 0\n");
	free(body);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* Once SIGTERM starts the drain, /healthz answers 503 (an outer
 * balancer stops sending), /status says draining and a reload is
 * refused, while a session still runs. */
TEST(test_daemon_admin_healthz_draining)
{
	struct adm b = {0};
	int c, u;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "drain-timeout = \"20s\";", ""), T_PASS);
	ASSERT_EQ(t_session(&b.la, NULL, b.lfd, NUP, &c, &u, NULL), T_PASS);
	ASSERT_OK(kill(b.d.pid, SIGTERM));
	ASSERT_EQ(t_wait_log_count(&b.d, "draining (up to 20000 ms)", NULL, 1,
	                           2000),
	          1);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/healthz", 503,
	                  "d == {'status': 'draining'}", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/status", 200,
	                  "d['state'] == 'draining' and d['sessions'] == 1",
	                  NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.ux, "POST", "/reload", 503,
	                  "'draining' in d['error']", NULL),
	          T_PASS);
	ASSERT_EQ(t_ping(c, u), T_PASS);
	ASSERT_EQ(adm_stop(&b), T_PASS); /* a second SIGTERM: it ends */
	close(c);
	close(u);
	return T_PASS;
}

/* A good reload and a bad one: generation and count move, the errors
 * come back as FILE:LINE; the running configuration stays. */
TEST(test_daemon_admin_reload)
{
	struct adm b = {0};
	char q[512];
	FILE *f;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "", ""), T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "POST", "/reload", 200,
	                  "d['ok'] and d['generation'] == 2 and d['errors'] "
	                  "== []",
	                  NULL),
	          T_PASS);
	f = fopen(b.path, "a");
	ASSERT_TRUE(f != NULL);
	fprintf(f, "bogus-setting = 1;\n");
	fclose(f);
	snprintf(q, sizeof(q),
	         "not d['ok'] and len(d['errors']) == 1 and "
	         "d['errors'][0].startswith('%s:') and 'bogus-setting' in "
	         "d['errors'][0]",
	         b.path);
	ASSERT_EQ(adm_req(&b.aa, "POST", "/reload", 400, q, NULL), T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/status", 200,
	                  "d['generation'] == 2 and d['reload']['count'] == 2 "
	                  "and d['reload']['failures'] == 1 and not "
	                  "d['reload']['last_ok'] and "
	                  "len(d['reload']['last_errors']) == 1",
	                  NULL),
	          T_PASS);
	/* Still relaying with generation 2. */
	{
		int hits[NUP] = {0};

		ASSERT_EQ(sessions_to(&b, 2, hits), T_PASS);
		ASSERT_EQ(hits[0] + hits[1], 2);
	}
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* Weights set through the API split round-robin exactly: 1:3 over 40. */
TEST(test_daemon_admin_weight)
{
	int hits[NUP] = {0};
	struct adm b = {0};
	char q[256];

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "", ""), T_PASS);
	snprintf(q, sizeof(q), "/upstreams/weight?route=r&upstream=%s&weight=3",
	         b.us[1]);
	ASSERT_EQ(adm_req(&b.ux, "POST", q, 200,
	                  "d['weight'] == 3 and d['config_weight'] == 1", NULL),
	          T_PASS);
	ASSERT_EQ(sessions_to(&b, 40, hits), T_PASS);
	ASSERT_EQ(hits[0], 10);
	ASSERT_EQ(hits[1], 30);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* Session sets held open: client and upstream fds, the upstream index. */
struct held {
	int c[8], u[8], which[8], n;
};

/* Opens sessions until want of them are on each upstream (round-robin
 * alternates, so it takes about NUP * want); the others are closed. */
static int hold(const struct adm *b, struct held *h, int want)
{
	int per[NUP] = {0}, c, u, which, tries;

	h->n = 0;
	for (tries = 0; tries < 8 * want && h->n < NUP * want; tries++) {
		if (t_session(&b->la, NULL, b->lfd, NUP, &c, &u, &which))
			return T_FAIL;
		if (per[which] == want) {
			close(c);
			close(u);
			continue;
		}
		per[which]++;
		h->c[h->n] = c;
		h->u[h->n] = u;
		h->which[h->n++] = which;
	}
	ASSERT_EQ(h->n, NUP * want);
	return T_PASS;
}

static void held_close(struct held *h)
{
	int i;

	for (i = 0; i < h->n; i++) {
		if (h->c[i] >= 0)
			close(h->c[i]);
		if (h->u[i] >= 0)
			close(h->u[i]);
	}
}

/* POST /upstreams/ACTION for upstream i of b; its reply must satisfy
 * expr. Through the Unix socket. */
static int up_action(struct adm *b, const char *action, int i, const char *q,
                     const char *expr)
{
	char p[256];

	snprintf(p, sizeof(p), "/upstreams/%s?route=r&upstream=%s%s", action,
	         b->us[i], q ? q : "");
	return adm_req(&b->ux, "POST", p, 200, expr, NULL);
}

/*
 * Drain: 1,000 sessions after the call, none on the drained upstream,
 * on any of the 4 workers; the sessions it had finish byte-exact. The
 * state survives a reload; enable brings it back.
 */
TEST_TIMEOUT(test_daemon_admin_drain, 120)
{
	int hits[NUP] = {0}, i;
	struct held h;
	struct adm b = {0};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "", ""), T_PASS);
	ASSERT_EQ(hold(&b, &h, 2), T_PASS);
	ASSERT_EQ(up_action(&b, "drain", 0, NULL, "d['state'] == 'drain'"),
	          T_PASS);
	ASSERT_EQ(sessions_to(&b, 1000, hits), T_PASS);
	ASSERT_EQ(hits[0], 0);
	ASSERT_EQ(hits[1], 1000);
	for (i = 0; i < h.n; i++)
		ASSERT_EQ(t_xfer_both(h.c[i], h.u[i], (1u << 20) + 7,
		                      900 + (uint64_t)i),
		          T_PASS);
	held_close(&h);

	ASSERT_OK(kill(b.d.pid, SIGHUP));
	ASSERT_EQ(t_wait_log_count(&b.d, "reloaded", NULL, 1, 5000), 1);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/upstreams", 200,
	                  "d[0]['state'] == 'drain' and d[1]['state'] == "
	                  "'enabled'",
	                  NULL),
	          T_PASS);
	hits[0] = hits[1] = 0;
	ASSERT_EQ(sessions_to(&b, 10, hits), T_PASS);
	ASSERT_EQ(hits[0], 0);
	ASSERT_EQ(up_action(&b, "enable", 0, NULL, "d['state'] == 'enabled'"),
	          T_PASS);
	ASSERT_EQ(sessions_to(&b, 10, hits), T_PASS);
	ASSERT_EQ(hits[0], 5);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* The id of the session whose client is the local address of fd. */
static long long session_id(const struct adm *b, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[128], path[256], *body = NULL;
	long long id = -1;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    zc_addr_format((struct sockaddr *)&ss, sl, addr, sizeof(addr)) < 0)
		return -1;
	snprintf(path, sizeof(path), "/sessions?client=%s", addr);
	if (t_http_get(&b->aa, path, &body) == 200 &&
	    t_json_num(body, "total", 0) == 1)
		id = t_json_num(body, "id", 0);
	free(body);
	return id;
}

/* Kill one session by id, then the rest of one upstream's in one call,
 * then the other upstream's with disable&kill=1: exactly those end. */
TEST(test_daemon_admin_kill)
{
	char p[256], q[512];
	struct held h;
	struct adm b = {0};
	long long id;
	int i, first = -1, other = -1;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "", ""), T_PASS);
	ASSERT_EQ(hold(&b, &h, 2), T_PASS);
	snprintf(q, sizeof(q),
	         "d['total'] == 4 and all(s['state'] == 'relaying' and "
	         "s['route'] == 'r' and s['bytes_in'] == 1 and "
	         "s['bytes_out'] == 1 and s['upstream'] in ('%s', '%s') and "
	         "s['client'].startswith('127.0.0.1:') for s in "
	         "d['sessions'])",
	         b.us[0], b.us[1]);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions", 200, q, NULL), T_PASS);
	snprintf(p, sizeof(p), "/sessions?upstream=%s&limit=1", b.us[0]);
	ASSERT_EQ(adm_req(&b.aa, "GET", p, 200,
	                  "d['total'] == 2 and len(d['sessions']) == 1", NULL),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions?min_age=3600", 200,
	                  "d['total'] == 0", NULL),
	          T_PASS);
	for (i = 0; i < h.n; i++)
		if (h.which[i] == 0)
			first < 0 ? (first = i) : (other = i);
	id = session_id(&b, h.c[first]);
	ASSERT_GT(id, 0);
	snprintf(p, sizeof(p), "/sessions/%lld", id);
	ASSERT_EQ(adm_req(&b.aa, "DELETE", p, 200, "d['killed'] == 1", NULL),
	          T_PASS);
	ASSERT_TRUE(t_is_closed(t_wait_eof(h.c[first], 2000)));
	ASSERT_TRUE(t_is_closed(t_wait_eof(h.u[first], 2000)));
	ASSERT_EQ(t_wait_log_count(&b.d, "end=killed", NULL, 1, 2000), 1);
	for (i = 0; i < h.n; i++)
		if (i != first)
			ASSERT_EQ(t_ping(h.c[i], h.u[i]), T_PASS);
	/* The rest of upstream 0 in one call. */
	snprintf(p, sizeof(p), "/sessions?route=r&upstream=%s", b.us[0]);
	ASSERT_EQ(adm_req(&b.ux, "DELETE", p, 200, "d['killed'] == 1", NULL),
	          T_PASS);
	ASSERT_TRUE(t_is_closed(t_wait_eof(h.c[other], 2000)));
	for (i = 0; i < h.n; i++)
		if (h.which[i] == 1)
			ASSERT_EQ(t_ping(h.c[i], h.u[i]), T_PASS);
	/* Upstream 1: disabled, its sessions ended. */
	ASSERT_EQ(up_action(&b, "disable", 1, "&kill=1", "d['killed'] == 2"),
	          T_PASS);
	for (i = 0; i < h.n; i++)
		if (h.which[i] == 1)
			ASSERT_TRUE(t_is_closed(t_wait_eof(h.c[i], 2000)));
	ASSERT_EQ(t_wait_log_count(&b.d, "end=killed", NULL, 4, 2000), 4);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/upstreams", 200,
	                  "d[1]['state'] == 'disabled' and d[0]['sessions'] "
	                  "== 0 and d[1]['sessions'] == 0",
	                  NULL),
	          T_PASS);
	held_close(&h);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* GET path on a, its body read after more(arg) ran: the listing is
 * made while more() changes the sessions. The body goes to *body. */
static int listing_during(const struct zc_addr *a, const char *path,
                          void (*more)(void *), void *arg, char **body)
{
	const size_t cap = 4u << 20;
	char req[256], *b, *resp = malloc(cap);
	ssize_t n;
	int fd;

	ASSERT_TRUE(resp != NULL);
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	fd = t_connect(a);
	ASSERT_OK(fd);
	ASSERT_OK(t_write_all(fd, req, strlen(req)));
	more(arg);
	n = t_read_full(fd, resp, cap - 1, 10000);
	close(fd);
	ASSERT_GT(n, 0);
	resp[n] = '\0';
	ASSERT_HAS(resp, "HTTP/1.1 200 ");
	b = strstr(resp, "\r\n\r\n");
	ASSERT_TRUE(b != NULL);
	*body = strdup(b + 4);
	free(resp);
	return T_PASS;
}

#define MANY 800 /* > 128 a worker: listings take several steps */

struct many {
	int c[MANY], u[MANY], from, n;
	const struct zc_addr *admin;
};

/* Lets this process and the daemon it starts hold 4 * MANY fds, then
 * starts b (with glob) and opens MANY sessions into m. T_SKIP if the
 * hard limit is lower. */
static int many_start(struct adm *b, const char *glob, struct many *m)
{
	struct rlimit rl;

	ASSERT_OK(getrlimit(RLIMIT_NOFILE, &rl));
	T_SKIP_IF(rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 4 * MANY,
	          "RLIMIT_NOFILE hard limit below 3200");
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 65536 : rl.rlim_max;
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &rl));
	ASSERT_EQ(adm_start(b, glob, ""), T_PASS);
	for (m->n = 0; m->n < MANY; m->n++)
		ASSERT_EQ(t_session(&b->la, NULL, b->lfd, NUP, &m->c[m->n],
		                    &m->u[m->n], NULL),
		          T_PASS);
	return T_PASS;
}

/* Closes the older half of m's sessions, oldest first: where a listing
 * (oldest first too) is. */
static void many_close_half(void *arg)
{
	struct many *m = arg;
	int i, to = m->from + (m->n - m->from) / 2;

	for (i = m->from; i < to; i++) {
		close(m->c[i]);
		close(m->u[i]);
	}
	m->from = to;
}

/* Kills every session of route r through the Unix admin socket. */
static void many_kill(void *arg)
{
	struct many *m = arg;

	if (t_http(m->admin, "DELETE", "/sessions?route=r", NULL, NULL) == 200)
		m->from = -1;
}

/*
 * A listing is made a step of 128 sessions at a time on each worker:
 * 800 sessions over 4 workers are listed whole and in id order, limit=50
 * gives the 50 oldest, and sessions that end or are killed while a
 * listing is being made neither crash it nor show. Whether one ends
 * just where a worker's listing paused (its cursor) is up to timing:
 * with STEP_SESSIONS at 1 and the cursor's move in list_del() removed,
 * an ASan build caught the use after free in 1 of 3 runs.
 */
TEST_TIMEOUT(test_daemon_admin_listing_in_steps, 120)
{
	static const char whole[] =
	        "len(d['sessions']) == d['total'] and "
	        "all(a['id'] < b['id'] for a, b in zip(d['sessions'], "
	        "d['sessions'][1:]))";
	struct adm b = {0};
	struct many m = {.from = 0};
	char *all = NULL, *few = NULL, q[256];
	int i, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	rc = many_start(&b, "", &m);
	if (rc)
		return rc;
	snprintf(q, sizeof(q), "d['total'] == %d and %s", MANY, whole);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions?limit=100000", 200, q, &all),
	          T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions?limit=50", 200,
	                  "d['total'] == 800 and len(d['sessions']) == 50",
	                  &few),
	          T_PASS);
	for (i = 0; i < 50; i++)
		ASSERT_EQ(t_json_num(few, "id", i), t_json_num(all, "id", i));
	free(all);
	free(few);
	/* Half of them end while a listing is under way, then the rest
	 * are killed while another one is. */
	ASSERT_EQ(listing_during(&b.aa, "/sessions?limit=100001",
	                         many_close_half, &m, &all),
	          T_PASS);
	snprintf(q, sizeof(q), "%d <= d['total'] <= %d and %s", MANY / 2, MANY,
	         whole);
	ASSERT_EQ(t_json_check(all, q), T_PASS);
	free(all);
	ASSERT_EQ(
	        t_wait_log_count(&b.d, "info session ", NULL, MANY / 2, 10000),
	        MANY / 2);
	snprintf(q, sizeof(q), "d['total'] == %d and %s", MANY / 2, whole);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions?limit=100002", 200, q, NULL),
	          T_PASS);
	m.admin = &b.ux;
	ASSERT_EQ(listing_during(&b.aa, "/sessions?limit=100003", many_kill, &m,
	                         &all),
	          T_PASS);
	ASSERT_EQ(m.from, -1);
	snprintf(q, sizeof(q), "d['total'] <= %d and %s", MANY / 2, whole);
	ASSERT_EQ(t_json_check(all, q), T_PASS);
	free(all);
	ASSERT_EQ(t_wait_log_count(&b.d, "end=killed", NULL, MANY / 2, 10000),
	          MANY / 2);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions?limit=100004", 200,
	                  "d['total'] == 0", NULL),
	          T_PASS);
	for (i = MANY / 2; i < m.n; i++) {
		close(m.c[i]);
		close(m.u[i]);
	}
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* Closes all of m's sessions but the first. */
static void many_close_rest(void *arg)
{
	struct many *m = arg;
	int i;

	for (i = 1; i < m->n; i++) {
		close(m->c[i]);
		close(m->u[i]);
	}
	m->n = 1;
}

/*
 * While draining, a worker stops with its last session and drops what
 * was posted to it: a listing under way there must still be answered
 * (counting the part lost), and the listings after it too. Whether a
 * step is posted in the very turn its worker stops is up to timing (in
 * four runs here both listings were answered in ~250 ms, before the
 * 1 s watch could act); what this proves is that listings made while
 * workers stop are answered and leave the queue working.
 */
TEST_TIMEOUT(test_daemon_admin_listing_while_workers_stop, 120)
{
	struct adm b = {0};
	struct many m = {.n = 0};
	char *all = NULL;
	uint64_t t0;
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	rc = many_start(&b, "drain-timeout = \"60s\";", &m);
	if (rc)
		return rc;
	ASSERT_OK(kill(b.d.pid, SIGTERM));
	ASSERT_EQ(t_wait_log_count(&b.d, "draining", NULL, 1, 2000), 1);
	t0 = t_now_ms();
	ASSERT_EQ(listing_during(&b.aa, "/sessions?limit=100001",
	                         many_close_rest, &m, &all),
	          T_PASS);
	ASSERT_EQ(t_json_check(all, "len(d['sessions']) <= d['total']"),
	          T_PASS);
	free(all);
	/* Three workers end; the next listing shows the one left. */
	ASSERT_EQ(
	        t_wait_log_count(&b.d, "info session ", NULL, MANY - 1, 10000),
	        MANY - 1);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions?limit=100002", 200,
	                  "d['total'] == 1", NULL),
	          T_PASS);
	t_log("both listings answered in %llu ms",
	      (unsigned long long)(t_now_ms() - t0));
	ASSERT_LT(t_now_ms() - t0, 10000);
	ASSERT_EQ(adm_stop(&b), T_PASS); /* a second SIGTERM ends it */
	close(m.c[0]);
	close(m.u[0]);
	return T_PASS;
}

/* A long session's bytes show in /metrics and /sessions while it runs,
 * and are not counted twice when it ends. */
TEST_MATRIX(test_daemon_admin_live_bytes)
{
	const uint64_t n = 3u << 20;
	struct t_xfer tx, rx;
	char *body = NULL, s[256], m[64];
	uint64_t t0;
	struct adm b = {0};
	int c, u, which;
	long long v = -1;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	snprintf(s, sizeof(s), "%s", t_cfg_engine(ctx));
	snprintf(m, sizeof(m), "    mover = \"%s\";", t_cfg_mover(ctx));
	ASSERT_EQ(adm_start(&b, s, m), T_PASS);
	ASSERT_EQ(t_session(&b.la, NULL, b.lfd, NUP, &c, &u, &which), T_PASS);
	ASSERT_OK(t_receiver_start(&rx, u, n));
	ASSERT_OK(t_sender_start(&tx, c, n, 42, 0));
	ASSERT_OK(t_xfer_join_ms(&tx, 30000));
	ASSERT_OK(t_xfer_join_ms(&rx, 30000));
	ASSERT_EQ(rx.bytes, n);
	/* Within about a second (the workers' 500 ms tick). */
	for (t0 = t_now_ms(); t_now_ms() - t0 < 5000; t_sleep_ms(50)) {
		free(body);
		ASSERT_EQ(t_http_get(&b.aa, "/metrics", &body), 200);
		v = t_metric(body, "zcrelay_route_bytes_total{route=\"r\","
		                   "direction=\"in\"}");
		if (v == (long long)n + 1)
			break;
	}
	ASSERT_EQ(v, (long long)n + 1); /* and the ping's byte */
	free(body);
	snprintf(s, sizeof(s),
	         "d['sessions'][0]['bytes_in'] == %llu and "
	         "d['sessions'][0]['bytes_out'] == 1",
	         (unsigned long long)n + 1);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions", 200, s, NULL), T_PASS);
	ASSERT_EQ(t_ping(c, u), T_PASS);
	close(c);
	close(u);
	ASSERT_EQ(t_wait_log_count(&b.d, "info session ", NULL, 1, 5000), 1);
	ASSERT_EQ(t_http_get(&b.aa, "/metrics", &body), 200);
	ASSERT_EQ(t_metric(body, "zcrelay_route_bytes_total{route=\"r\","
	                         "direction=\"in\"}"),
	          (long long)n + 2);
	ASSERT_EQ(t_metric(body, "zcrelay_route_bytes_total{route=\"r\","
	                         "direction=\"out\"}"),
	          2);
	free(body);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* Upstreams with a name in the file go by it too: in changes, in
 * session filters, and in the JSON. (And admin-unix-mode.) */
TEST(test_daemon_admin_upstream_names)
{
	struct adm b = {.named = 1};
	int hits[NUP] = {0};
	struct stat sb;
	char q[256];

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "admin-unix-mode = \"0660\";", ""), T_PASS);
	ASSERT_OK(stat(b.uxs + 5, &sb));
	ASSERT_EQ(sb.st_mode & 0777, 0660);
	snprintf(q, sizeof(q),
	         "[u['name'] for u in d] == ['a', 'b'] and d[0]['address'] == "
	         "'%s'",
	         b.us[0]);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/upstreams", 200, q, NULL), T_PASS);
	ASSERT_EQ(adm_req(&b.ux, "POST", "/upstreams/drain?route=r&upstream=a",
	                  200, "d['state'] == 'drain' and d['name'] == 'a'",
	                  NULL),
	          T_PASS);
	ASSERT_EQ(sessions_to(&b, 4, hits), T_PASS);
	ASSERT_EQ(hits[0], 0);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/sessions?upstream=b", 200,
	                  "d['total'] == 0", NULL),
	          T_PASS);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* zcrelay ctl                                                          */

/* Runs "$ZC_DAEMON ctl -s <b's Unix admin socket> ARGS"; its stdout
 * goes to *out (malloc'd), its stderr to *err; returns its exit status
 * (-1 if it could not run). */
static int ctl(const struct adm *b, const char *args, char **out, char **err)
{
	char cmd[1024], ef[256], buf[4096];
	size_t n = 0, cap = 0;
	FILE *p, *f;
	int st;

	snprintf(ef, sizeof(ef), "%s/ctl.err", t_tmpdir());
	snprintf(cmd, sizeof(cmd), "'%s' ctl -s '%s' %s 2>'%s'",
	         t_daemon_path(), b->uxs, args, ef);
	*out = NULL;
	*err = NULL;
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (!feof(p)) {
		size_t r = fread(buf, 1, sizeof(buf), p);
		char *o = realloc(*out, (cap = n + r + 1));

		if (!o)
			break;
		*out = o;
		memcpy(o + n, buf, r);
		n += r;
		o[n] = '\0';
	}
	(void)cap;
	st = pclose(p);
	f = fopen(ef, "r");
	if (f) {
		size_t r = fread(buf, 1, sizeof(buf) - 1, f);

		buf[r] = '\0';
		fclose(f);
		*err = strdup(buf);
	}
	if (!*out)
		*out = strdup("");
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ctl ARGS must exit want and print something holding has (NULL: any)
 * on stdout, and hers on stderr (NULL: any). */
static int ctl_expect(const struct adm *b, const char *args, int want,
                      const char *has, const char *hers)
{
	char *out, *err;
	int st = ctl(b, args, &out, &err);

	if (st != want || (has && !strstr(out, has)) ||
	    (hers && err && !strstr(err, hers)))
		t_log("zcrelay ctl %s: exit %d\n%s%s", args, st, out,
		      err ? err : "");
	ASSERT_EQ(st, want);
	ASSERT_TRUE(out && err);
	if (has)
		ASSERT_HAS(out, has);
	if (hers)
		ASSERT_HAS(err, hers);
	free(out);
	free(err);
	return T_PASS;
}

/* Every column of a table starts at the same offset on every line as in
 * its header (aligned), and the table has rows + 1 lines. */
static int table_aligned(const char *text, int rows)
{
	const char *line = text, *nl;
	size_t starts[16], ns = 0, i, len;
	int lines = 0;

	for (i = 0; text[i] && text[i] != '\n' && ns < 16; i++)
		if (text[i] != ' ' && (i == 0 || text[i - 1] == ' '))
			starts[ns++] = i;
	while ((nl = strchr(line, '\n')) != NULL) {
		len = (size_t)(nl - line);
		for (i = 1; i < ns; i++)
			ASSERT_TRUE(starts[i] < len &&
			            line[starts[i] - 1] == ' ' &&
			            line[starts[i]] != ' ');
		lines++;
		line = nl + 1;
	}
	ASSERT_EQ(lines, rows + 1);
	return T_PASS;
}

TEST(test_daemon_admin_ctl)
{
	char args[512], *out, *err;
	struct held h;
	struct adm b = {0};
	long long id;
	FILE *f;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "", ""), T_PASS);
	ASSERT_EQ(ctl_expect(&b, "status", 0, "state                accepting",
	                     NULL),
	          T_PASS);
	ASSERT_EQ(ctl(&b, "--json status", &out, &err), 0);
	ASSERT_EQ(t_json_check(out, "d['workers'] == 4"), T_PASS);
	free(out);
	free(err);
	ASSERT_EQ(ctl(&b, "upstreams", &out, &err), 0);
	ASSERT_EQ(table_aligned(out, 2), T_PASS);
	ASSERT_HAS(out, b.us[1]);
	free(out);
	free(err);

	snprintf(args, sizeof(args), "drain r %s", b.us[0]);
	ASSERT_EQ(ctl_expect(&b, args, 0, ": drain, weight 1", NULL), T_PASS);
	snprintf(args, sizeof(args), "weight r %s 7", b.us[1]);
	ASSERT_EQ(ctl_expect(&b, args, 0, ": enabled, weight 7", NULL), T_PASS);
	snprintf(args, sizeof(args), "weight r %s 1001", b.us[1]);
	ASSERT_EQ(ctl_expect(&b, args, 1, NULL, "weight must be 1-1000"),
	          T_PASS);
	snprintf(args, sizeof(args), "enable r %s", b.us[0]);
	ASSERT_EQ(ctl_expect(&b, args, 0, ": enabled, weight 1", NULL), T_PASS);
	ASSERT_EQ(ctl_expect(&b, "enable r 10.9.9.9:1", 1, NULL,
	                     "route r has no upstream 10.9.9.9:1"),
	          T_PASS);
	ASSERT_EQ(ctl_expect(&b, "bogus", 2, NULL, "unknown command"), T_PASS);
	ASSERT_EQ(ctl_expect(&b, "kill x", 2, NULL, "kill ID"), T_PASS);

	/* Sessions: one on each upstream. */
	snprintf(args, sizeof(args), "weight r %s 1", b.us[1]);
	ASSERT_EQ(ctl_expect(&b, args, 0, ": enabled, weight 1", NULL), T_PASS);
	ASSERT_EQ(hold(&b, &h, 1), T_PASS);
	ASSERT_EQ(ctl(&b, "sessions", &out, &err), 0);
	ASSERT_EQ(table_aligned(out, 2), T_PASS);
	ASSERT_HAS(out, "relaying");
	free(out);
	free(err);
	snprintf(args, sizeof(args), "--json sessions --upstream %s", b.us[0]);
	ASSERT_EQ(ctl(&b, args, &out, &err), 0);
	ASSERT_EQ(t_json_check(out, "d['total'] == 1"), T_PASS);
	id = t_json_num(out, "id", 0);
	free(out);
	free(err);
	ASSERT_GT(id, 0);
	snprintf(args, sizeof(args), "kill %lld", id);
	ASSERT_EQ(ctl_expect(&b, args, 0, "killed 1 session(s)", NULL), T_PASS);
	ASSERT_EQ(ctl_expect(&b, args, 1, NULL, "no session"), T_PASS);
	snprintf(args, sizeof(args), "disable r %s --kill", b.us[1]);
	ASSERT_EQ(ctl_expect(&b, args, 0, "killed 1 session(s)", NULL), T_PASS);
	ASSERT_EQ(t_wait_log_count(&b.d, "end=killed", NULL, 2, 2000), 2);
	held_close(&h);

	ASSERT_EQ(ctl_expect(&b, "reload", 0, "reloaded: generation 2", NULL),
	          T_PASS);
	f = fopen(b.path, "a");
	ASSERT_TRUE(f != NULL);
	fprintf(f, "workers = \"many\";\n");
	fclose(f);
	snprintf(args, sizeof(args), "%s:", b.path);
	ASSERT_EQ(ctl_expect(&b, "reload", 1, NULL, args), T_PASS);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	/* Nobody there. */
	ASSERT_EQ(ctl_expect(&b, "status", 1, NULL, b.uxs), T_PASS);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Policy, bounds, PROXY-keyed limits                                   */

/* A local IPv4 address that is not loopback, with b's admin port, in
 * *out; 0, or -ENOENT when the machine has none. */
static int non_loopback(const struct adm *b, struct zc_addr *out)
{
	struct ifaddrs *ifs, *i;
	int rc = -ENOENT;

	if (getifaddrs(&ifs))
		return -errno;
	for (i = ifs; i && rc; i = i->ifa_next) {
		const struct sockaddr_in *s4 = (void *)i->ifa_addr;

		if (!s4 || s4->sin_family != AF_INET ||
		    (ntohl(s4->sin_addr.s_addr) >> 24) == 127)
			continue;
		memcpy(&out->ss, &b->aa.ss, b->aa.len);
		out->len = b->aa.len;
		((struct sockaddr_in *)&out->ss)->sin_addr = s4->sin_addr;
		rc = 0;
	}
	freeifaddrs(ifs);
	return rc;
}

/* Can an unprivileged user (nobody) connect to the Unix socket path?
 * The child's connect result: 0 or -errno; 1 if not run as root. */
static int connect_as_nobody(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	pid_t pid;
	int st, fd;

	if (geteuid() != 0)
		return 1;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%.100s", path);
	pid = fork();
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(100);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			_exit(0);
		_exit(errno == EACCES ? 13 : 101);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -EIO;
	return WEXITSTATUS(st) == 13 ? -EACCES : -WEXITSTATUS(st);
}

/* Without a token, changes pass from loopback and the Unix socket only;
 * with one, on TCP only with it. GET passes everywhere. Nobody but the
 * daemon's user connects to the Unix socket. */
TEST(test_daemon_admin_policy)
{
	static const char bearer[] = "Authorization: Bearer s3cret\r\n";
	struct adm b = {.any = 1};
	struct zc_addr far;
	char drain[256];
	int have_far, st;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "", ""), T_PASS);
	snprintf(drain, sizeof(drain), "/upstreams/drain?route=r&upstream=%s",
	         b.us[0]);
	have_far = non_loopback(&b, &far) == 0;
	if (have_far) {
		ASSERT_EQ(adm_req(&far, "GET", "/status", 200, NULL, NULL),
		          T_PASS);
		ASSERT_EQ(
		        adm_req(&far, "POST", drain, 403, "'error' in d", NULL),
		        T_PASS);
		ASSERT_EQ(
		        adm_req(&far, "DELETE", "/sessions/1", 403, NULL, NULL),
		        T_PASS);
	} else {
		t_log("no non-loopback IPv4 address: remote peers not tried");
	}
	ASSERT_EQ(adm_req(&b.aa, "POST", drain, 200, NULL, NULL), T_PASS);
	ASSERT_EQ(adm_req(&b.ux, "POST", drain, 200, NULL, NULL), T_PASS);
	st = connect_as_nobody(b.uxs + 5);
	if (st != 1)
		ASSERT_ERR(st, -EACCES);
	ASSERT_EQ(adm_stop(&b), T_PASS);

	memset(&b, 0, sizeof(b));
	b.any = 1;
	ASSERT_EQ(adm_start(&b, "admin-token = \"s3cret\";", ""), T_PASS);
	snprintf(drain, sizeof(drain), "/upstreams/drain?route=r&upstream=%s",
	         b.us[0]);
	ASSERT_EQ(adm_req(&b.aa, "POST", drain, 403, NULL, NULL), T_PASS);
	ASSERT_EQ(t_http(&b.aa, "POST", drain,
	                 "Authorization: Bearer s3cre\r\n", NULL),
	          403);
	ASSERT_EQ(t_http(&b.aa, "POST", drain, bearer, NULL), 200);
	if (have_far && non_loopback(&b, &far) == 0)
		ASSERT_EQ(t_http(&far, "POST", drain, bearer, NULL), 200);
	ASSERT_EQ(adm_req(&b.ux, "POST", drain, 200, NULL, NULL), T_PASS);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	T_SKIP_IF(!have_far || geteuid() != 0,
	          "no non-loopback address or not root: parts not tried");
	return T_PASS;
}

/*
 * Slow and half-sent requests: a client sending a byte a second is cut
 * at the 5 s request deadline; 100 clients with 8000 bytes of an
 * unfinished head each cost bounded memory, are cut too, and the admin
 * API answers meanwhile.
 */
TEST_TIMEOUT(test_daemon_admin_slow_clients, 60)
{
	static const char req[] = "GET /status HTTP/1.1\r\nX-Slow: yes\r\n\r\n";
	struct t_proc_mem m0, m1, m2;
	int fds[100], slow, i;
	struct adm b = {0};
	char head[8000];
	uint64_t t0, t1;
	size_t k;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "", ""), T_PASS);
	ASSERT_EQ(adm_req(&b.aa, "GET", "/status", 200, NULL, NULL), T_PASS);
	ASSERT_OK(t_proc_mem(b.d.pid, &m0));
	memcpy(head, "GET /status HTTP/1.1\r\n", 22);
	memset(head + 22, 'h', sizeof(head) - 22);
	memcpy(head + 22, "X-Pad: ", 7);
	for (i = 0; i < 100; i++) {
		fds[i] = t_connect(&b.aa);
		ASSERT_OK(fds[i]);
		ASSERT_OK(t_write_all(fds[i], head, sizeof(head)));
	}
	slow = t_connect(&b.aa);
	ASSERT_OK(slow);
	t0 = t_now_ms();
	for (k = 0; k < sizeof(req) - 1; k++) {
		if (send(slow, req + k, 1, MSG_NOSIGNAL) != 1)
			break;
		if (k == 2) {
			ASSERT_OK(t_proc_mem(b.d.pid, &m1));
			/* Others are answered while these wait. */
			ASSERT_EQ(adm_req(&b.aa, "GET", "/healthz", 200, NULL,
			                  NULL),
			          T_PASS);
		}
		if (t_wait_eof(slow, 1000) != -ETIMEDOUT)
			break;
	}
	t1 = t_now_ms() - t0;
	t_log("slow client cut after %llu ms, %zu bytes; RSS %ld -> %ld KiB "
	      "with 101 pending requests",
	      (unsigned long long)t1, k, m0.rss_kb, m1.rss_kb);
	ASSERT_LT(k, sizeof(req) - 1);
	ASSERT_GE(t1, 4000);
	ASSERT_LE(t1, 9000);
	ASSERT_LT(m1.rss_kb - m0.rss_kb, 8 * 1024);
	for (i = 0; i < 100; i++) {
		ASSERT_TRUE(t_is_closed(t_wait_eof(fds[i], 5000)));
		close(fds[i]);
	}
	close(slow);
	ASSERT_OK(t_proc_mem(b.d.pid, &m2));
	ASSERT_LE(m2.fds, m0.fds + 1);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* A client through a PROXY header, from source src; the session must
 * reach an upstream (ok) or be closed. */
static int proxied(const struct adm *b, const char *src, int ok, int *c, int *u)
{
	char hdr[128];
	int n;

	*u = -1;
	*c = t_connect(&b->la);
	ASSERT_OK(*c);
	n = snprintf(hdr, sizeof(hdr), "PROXY TCP4 %s 10.0.0.9 1111 80\r\n",
	             src);
	ASSERT_OK(t_write_all(*c, hdr, (size_t)n));
	if (!ok) {
		ASSERT_TRUE(t_is_closed(t_wait_eof(*c, 3000)));
		return T_PASS;
	}
	*u = t_accept_any(b->lfd, NUP, 3000, NULL);
	ASSERT_OK(*u);
	return t_ping(*c, *u);
}

/* max-conns-per-client counts the PROXY source, not the proxy that
 * connects: two sources through one peer pass, a second session of one
 * source does not, and its end frees the slot. */
TEST(test_daemon_admin_limit_by_proxy_source)
{
	struct adm b = {0};
	int c[4], u[4];

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(adm_start(&b, "",
	                    "    max-conns-per-client = 1;\n"
	                    "    proxy-protocol = { accept = true;\n"
	                    "      trusted = [ \"127.0.0.0/8\" ]; };"),
	          T_PASS);
	ASSERT_EQ(proxied(&b, "10.0.0.1", 1, &c[0], &u[0]), T_PASS);
	ASSERT_EQ(proxied(&b, "10.0.0.2", 1, &c[1], &u[1]), T_PASS);
	ASSERT_EQ(proxied(&b, "10.0.0.1", 0, &c[2], &u[2]), T_PASS);
	ASSERT_EQ(t_wait_log_count(&b.d, "client at max-conns-per-client",
	                           "client=10.0.0.1:1111", 1, 2000),
	          1);
	close(c[0]);
	close(u[0]);
	close(c[2]);
	ASSERT_EQ(t_wait_log_count(&b.d, "info session ", "client=10.0.0.1", 1,
	                           5000),
	          1);
	ASSERT_EQ(proxied(&b, "10.0.0.1", 1, &c[3], &u[3]), T_PASS);
	close(c[1]);
	close(u[1]);
	close(c[3]);
	close(u[3]);
	ASSERT_EQ(adm_stop(&b), T_PASS);
	return T_PASS;
}

/* --admin given twice on the command line: both addresses serve, the
 * Unix one with mode 0600 and removed at exit; a bad one is refused
 * with exit 2. */
TEST(test_daemon_admin_cli_addresses)
{
	struct zc_addr la, ua, a1, a2;
	struct t_daemon d;
	struct t_dargs a;
	struct stat sb;
	char *body = NULL;
	const char *ux;
	int ulfd;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &a1));
	ASSERT_OK(t_free_addr(AF_UNIX, &a2));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	t_dargs_init(&a, ctx, &la, &ua);
	t_dargs_addr(&a, "--admin", &a1);
	ux = t_dargs_addr(&a, "--admin", &a2);
	T_TRY(t_daemon_up(&d, &a, &la));
	ASSERT_OK(t_wait_listen(&a2, 5000));
	ASSERT_EQ(t_http_get(&a1, "/healthz", &body), 200);
	free(body);
	ASSERT_EQ(t_http_get(&a2, "/healthz", &body), 200);
	free(body);
	ASSERT_OK(stat(ux + 5, &sb));
	ASSERT_EQ(sb.st_mode & 0777, 0600);
	ASSERT_EQ(t_daemon_down(&d), T_PASS);
	/* Its own socket file goes with it. */
	ASSERT_EQ(stat(ux + 5, &sb), -1);
	ASSERT_EQ(errno, ENOENT);
	close(ulfd);
	t_cleanup_unix(&a2);

	t_dargs_init(&a, ctx, &la, &ua);
	t_dargs_add(&a, "--admin");
	t_dargs_add(&a, "nowhere");
	ASSERT_OK(t_daemon_start(&d, a.v));
	ASSERT_OK(t_daemon_wait(&d, 5000));
	ASSERT_EQ(d.status, 2);
	ASSERT_EQ(t_log_count(&d, "--admin: admin 'nowhere'", NULL), 1);
	return T_PASS;
}

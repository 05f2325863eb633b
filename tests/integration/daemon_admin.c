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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
};

/* Starts b's daemon with the global settings glob and the route settings
 * extra (either may be ""). */
static int adm_start(struct adm *b, const char *glob, const char *extra)
{
	char ls[64];
	int i, rc;

	ASSERT_OK(t_free_addr(AF_INET, &b->la));
	ASSERT_OK(t_free_addr(AF_INET, &b->aa));
	ASSERT_OK(t_free_addr(AF_UNIX, &b->ux));
	ASSERT_OK(t_addr_str(&b->la, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(&b->aa, b->as, sizeof(b->as)));
	ASSERT_OK(t_addr_str(&b->ux, b->uxs, sizeof(b->uxs)));
	for (i = 0; i < NUP; i++) {
		b->lfd[i] = t_listen(AF_INET, &b->ua[i]);
		ASSERT_OK(b->lfd[i]);
		ASSERT_OK(t_addr_str(&b->ua[i], b->us[i], sizeof(b->us[i])));
	}
	snprintf(b->cfg, sizeof(b->cfg),
	         "workers = 4;\n%s\nadmin = [ \"%s\", \"%s\" ];\n"
	         "routes = (\n  { name = \"r\"; listen = \"%s\";\n"
	         "    upstreams = ( \"%s\", \"%s\" );\n%s\n  }\n);\n",
	         glob, b->as, b->uxs, ls, b->us[0], b->us[1], extra);
	rc = t_daemon_up_cfg(&b->d, "zcrelay.conf", b->cfg, b->path,
	                     sizeof(b->path), &b->la);
	if (rc)
		return rc;
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
	struct adm b;
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
	ASSERT_EQ(adm_req(&b.aa, "POST", "/upgrade", 501,
	                  "'not yet available' in d['error']", NULL),
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

/* A good reload and a bad one: generation and count move, the errors
 * come back as FILE:LINE; the running configuration stays. */
TEST(test_daemon_admin_reload)
{
	struct adm b;
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
	struct adm b;
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
	struct adm b;

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
	struct adm b;
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

/* A long session's bytes show in /metrics and /sessions while it runs,
 * and are not counted twice when it ends. */
TEST_MATRIX(test_daemon_admin_live_bytes)
{
	const uint64_t n = 3u << 20;
	struct t_xfer tx, rx;
	char *body = NULL, s[256], m[64];
	uint64_t t0;
	struct adm b;
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
	t_log("zcrelay ctl %s: exit %d\n%s%s", args,
	      WIFEXITED(st) ? WEXITSTATUS(st) : -1, *out, *err ? *err : "");
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ctl ARGS must exit want and print something holding has (NULL: any)
 * on stdout, and hers on stderr (NULL: any). */
static int ctl_expect(const struct adm *b, const char *args, int want,
                      const char *has, const char *hers)
{
	char *out, *err;
	int st = ctl(b, args, &out, &err);

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
	struct adm b;
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

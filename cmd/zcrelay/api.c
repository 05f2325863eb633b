/*
 * api.c - the admin API: the endpoints of docs/admin-api.md but the
 * sessions' (api_sessions.c). Everything here runs on the admin thread,
 * reading the running configuration (zcr_cfg_current) and the counters
 * the workers update atomically; upstream state changes are atomic
 * stores into the upstreams' shared stats, which every worker reads at
 * its next pick and which a reload carries over.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "metrics.h"

#define JSON "application/json"

static struct zcr_worker *workers;
static unsigned nworkers;
static uint64_t start_ms;
static int draining;

/* Reloads: counted by the main thread, waited for by POST /reload. A
 * request waits for the first reload that starts after it (its SIGHUP's
 * or one that was pending), never for one already loading the file. */
struct waiter {
	struct waiter *next;
	struct zcr_areq *rq;
	unsigned want; /* the reload that started after the request */
};

static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned rl_started, rl_done, rl_failed;
static int rl_ok = 1;
static char *rl_msgs; /* the last failure's lines */
static struct waiter *rl_waiters;

void zcr_api_init(struct zcr_worker *ws, unsigned nw)
{
	workers = ws;
	nworkers = nw;
	start_ms = zcr_now_ms();
}

struct zcr_worker *zcr_api_workers(unsigned *nw)
{
	*nw = nworkers;
	return workers;
}

void zcr_api_set_draining(void)
{
	__atomic_store_n(&draining, 1, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Replies                                                              */

void zcr_api_json(struct zcr_areq *rq, int code, struct zcr_json *j)
{
	size_t len;
	char *text = zcr_json_done(j, &len);

	if (!text) {
		zcr_admin_reply_text(rq, 500, JSON, NULL,
		                     "{\"error\":\"out of memory\"}\n");
		return;
	}
	zcr_admin_reply(rq, code, JSON, NULL, text, len);
}

void zcr_api_error(struct zcr_areq *rq, int code, const char *fmt, ...)
{
	struct zcr_json j = {0};
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zcr_json_obj(&j);
	zcr_json_kstr(&j, "error", msg);
	zcr_json_obj_end(&j);
	zcr_api_json(rq, code, &j);
}

/* ------------------------------------------------------------------ */
/* GET /metrics, /, /healthz, /status                                   */

static void get_metrics(struct zcr_areq *rq)
{
	struct zcr_cfg *c = zcr_cfg_current();
	struct zcr_wstats *ws = calloc(nworkers ? nworkers : 1, sizeof(*ws));
	char *text = NULL;
	size_t len = 0;
	unsigned i;

	if (c && ws) {
		for (i = 0; i < nworkers; i++) {
			pthread_mutex_lock(&workers[i].mu);
			ws[i].id = workers[i].id;
			ws[i].loop = workers[i].snap;
			ws[i].sessions = workers[i].snap_sessions;
			pthread_mutex_unlock(&workers[i].mu);
		}
		text = zcr_metrics_render(c, ws, nworkers, zcr_now_ms(), &len);
	}
	free(ws);
	zcr_cfg_unref(c);
	if (!text) {
		zcr_api_error(rq, 500, "out of memory");
		return;
	}
	zcr_admin_reply(rq, 200, "text/plain; version=0.0.4; charset=utf-8",
	                NULL, text, len);
}

static void get_index(struct zcr_areq *rq)
{
	static const char page[] =
	        "<html><head><title>zcrelay</title></head><body>"
	        "<h1>zcrelay</h1><ul>"
	        "<li><a href=\"/metrics\">/metrics</a></li>"
	        "<li><a href=\"/healthz\">/healthz</a></li>"
	        "<li><a href=\"/status\">/status</a></li>"
	        "<li><a href=\"/routes\">/routes</a></li>"
	        "<li><a href=\"/upstreams\">/upstreams</a></li>"
	        "<li><a href=\"/sessions\">/sessions</a></li>"
	        "</ul></body></html>\n";

	zcr_admin_reply_text(rq, 200, "text/html; charset=utf-8", NULL, page);
}

static int is_draining(void)
{
	return __atomic_load_n(&draining, __ATOMIC_RELAXED);
}

static void get_healthz(struct zcr_areq *rq)
{
	if (is_draining())
		zcr_admin_reply_text(rq, 503, JSON, NULL,
		                     "{\"status\":\"draining\"}\n");
	else
		zcr_admin_reply_text(rq, 200, JSON, NULL,
		                     "{\"status\":\"ok\"}\n");
}

/* The lines of msgs as a JSON array. */
static void json_lines(struct zcr_json *j, const char *msgs)
{
	const char *p = msgs, *e;
	char line[1024];
	size_t n;

	zcr_json_arr(j);
	while (p && *p) {
		e = strchr(p, '\n');
		n = e ? (size_t)(e - p) : strlen(p);
		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		zcr_json_str(j, line);
		p = e ? e + 1 : p + n;
	}
	zcr_json_arr_end(j);
}

static uint64_t sessions_now(const struct zcr_cfg *c)
{
	uint64_t n = 0;
	unsigned i;

	for (i = 0; i < c->nroutes; i++)
		n += zcr_get(&c->routes[i].st->active);
	return n;
}

/* "reload": {count, failures, last: {ok, errors}}; rl_lock held. */
static void json_reload(struct zcr_json *j)
{
	zcr_json_key(j, "reload");
	zcr_json_obj(j);
	zcr_json_ku64(j, "count", rl_done);
	zcr_json_ku64(j, "failures", rl_failed);
	zcr_json_kbool(j, "last_ok", rl_ok);
	zcr_json_key(j, "last_errors");
	json_lines(j, rl_ok ? NULL : rl_msgs);
	zcr_json_obj_end(j);
}

static void get_status(struct zcr_areq *rq)
{
	struct zcr_cfg *c = zcr_cfg_current();
	struct zcr_json j = {0};
	char v[32];

	if (!c) {
		zcr_api_error(rq, 503, "not running");
		return;
	}
	snprintf(v, sizeof(v), "%d.%d.%d", ZC_VERSION_MAJOR, ZC_VERSION_MINOR,
	         ZC_VERSION_PATCH);
	zcr_json_obj(&j);
	zcr_json_kstr(&j, "version", v);
	zcr_json_ku64(&j, "pid", (uint64_t)getpid());
	zcr_json_ku64(&j, "uptime_s", (zcr_now_ms() - start_ms) / 1000);
	zcr_json_kstr(&j, "state", is_draining() ? "draining" : "accepting");
	zcr_json_kstr(&j, "engine",
	              zc_engine_name(nworkers ? workers[0].engine : c->engine));
	zcr_json_ku64(&j, "workers", c->workers);
	zcr_json_kstr(&j, "config", c->path);
	zcr_json_ku64(&j, "generation", c->gen);
	zcr_json_ku64(&j, "routes", c->nroutes);
	zcr_json_ku64(&j, "sessions", sessions_now(c));
	pthread_mutex_lock(&rl_lock);
	json_reload(&j);
	pthread_mutex_unlock(&rl_lock);
	zcr_json_obj_end(&j);
	zcr_cfg_unref(c);
	zcr_api_json(rq, 200, &j);
}

/* ------------------------------------------------------------------ */
/* GET /routes, /upstreams                                              */

static const char *admin_name(int st)
{
	return st == ZCR_UP_DRAIN      ? "drain"
	       : st == ZCR_UP_DISABLED ? "disabled"
	                               : "enabled";
}

static void json_traffic(struct zcr_json *j, const struct zcr_stats *st)
{
	zcr_json_ku64(j, "sessions", zcr_get(&st->active));
	zcr_json_ku64(j, "sessions_total", zcr_get(&st->total));
	zcr_json_ku64(j, "bytes_in", zcr_get(&st->bytes_in));
	zcr_json_ku64(j, "bytes_out", zcr_get(&st->bytes_out));
	zcr_json_ku64(j, "spliced", zcr_get(&st->spliced));
	zcr_json_ku64(j, "copied", zcr_get(&st->copied));
	zcr_json_ku64(j, "connect_failures", zcr_get(&st->connect_fail));
}

static void json_health(struct zcr_json *j, const struct zcr_route *r,
                        const struct zcr_upstream *u, uint64_t now)
{
	const struct zcr_stats *st = u->st;
	uint64_t until = zcr_get(&st->down_until);

	zcr_json_key(j, "health");
	zcr_json_obj(j);
	zcr_json_kbool(j, "healthy", zcr_upstream_healthy(u, now));
	zcr_json_kstr(j, "check",
	              !r->check_ms ? "off"
	              : __atomic_load_n(&st->check_down, __ATOMIC_RELAXED)
	                      ? "down"
	                      : "up");
	zcr_json_kbool(j, "ejected", now < until);
	zcr_json_ku64(j, "ejected_ms_left", now < until ? until - now : 0);
	zcr_json_ku64(j, "failed_connects_in_a_row",
	              __atomic_load_n(&st->fails, __ATOMIC_RELAXED));
	zcr_json_obj_end(j);
}

static void json_upstream(struct zcr_json *j, const struct zcr_route *r,
                          const struct zcr_upstream *u, uint64_t now)
{
	zcr_json_obj(j);
	zcr_json_kstr(j, "route", r->name);
	zcr_json_kstr(j, "address", u->str);
	zcr_json_kstr(j, "name", u->name[0] ? u->name : NULL);
	zcr_json_ku64(j, "weight", zcr_upstream_weight(u));
	zcr_json_ku64(j, "config_weight", u->weight);
	zcr_json_kstr(
	        j, "state",
	        admin_name(__atomic_load_n(&u->st->admin, __ATOMIC_RELAXED)));
	json_health(j, r, u, now);
	json_traffic(j, u->st);
	zcr_json_obj_end(j);
}

static void json_route(struct zcr_json *j, const struct zcr_route *r,
                       uint64_t now)
{
	unsigned i;

	zcr_json_obj(j);
	zcr_json_kstr(j, "name", r->name);
	zcr_json_key(j, "listen");
	zcr_json_arr(j);
	for (i = 0; i < r->nlisten; i++)
		zcr_json_str(j, r->listen[i].str);
	zcr_json_arr_end(j);
	zcr_json_kstr(j, "balance",
	              r->balance == ZCR_BAL_LEASTCONN ? "leastconn"
	              : r->balance == ZCR_BAL_SOURCE  ? "source"
	                                              : "roundrobin");
	zcr_json_kstr(j, "mover", zc_mover_name(r->mover));
	json_traffic(j, r->st);
	zcr_json_key(j, "upstreams");
	zcr_json_arr(j);
	for (i = 0; i < r->nups; i++)
		json_upstream(j, r, &r->ups[i], now);
	zcr_json_arr_end(j);
	zcr_json_obj_end(j);
}

static void get_routes(struct zcr_areq *rq, int ups_only)
{
	struct zcr_cfg *c = zcr_cfg_current();
	struct zcr_json j = {0};
	uint64_t now = zcr_now_ms();
	unsigned i, k;

	if (!c) {
		zcr_api_error(rq, 503, "not running");
		return;
	}
	zcr_json_arr(&j);
	for (i = 0; i < c->nroutes; i++) {
		if (!ups_only) {
			json_route(&j, &c->routes[i], now);
			continue;
		}
		for (k = 0; k < c->routes[i].nups; k++)
			json_upstream(&j, &c->routes[i], &c->routes[i].ups[k],
			              now);
	}
	zcr_json_arr_end(&j);
	zcr_cfg_unref(c);
	zcr_api_json(rq, 200, &j);
}

/* ------------------------------------------------------------------ */
/* POST /upstreams/{drain,enable,disable,weight}                        */

/* The upstream of the query's route= and upstream=, or NULL after an
 * error reply. c holds it. */
static const struct zcr_upstream *find_upstream(struct zcr_areq *rq,
                                                const struct zcr_cfg *c,
                                                const struct zcr_route **rp)
{
	char route[ZCR_NAME_MAX], ups[ZCR_ADDR_STR];
	const struct zcr_route *r;
	unsigned i, k;

	if (zcr_http_query(rq->http.path, "route", route, sizeof(route)) ||
	    zcr_http_query(rq->http.path, "upstream", ups, sizeof(ups))) {
		zcr_api_error(rq, 400, "route= and upstream= are required");
		return NULL;
	}
	for (i = 0; i < c->nroutes; i++) {
		r = &c->routes[i];
		if (strcmp(r->name, route) != 0)
			continue;
		for (k = 0; k < r->nups; k++)
			if (zcr_upstream_is(&r->ups[k], ups)) {
				*rp = r;
				return &r->ups[k];
			}
		zcr_api_error(rq, 404, "route %s has no upstream %s", route,
		              ups);
		return NULL;
	}
	zcr_api_error(rq, 404, "no route %s", route);
	return NULL;
}

/* weight=N of the query: 1..1000, or -EINVAL after an error reply. */
static int query_weight(struct zcr_areq *rq)
{
	char v[16], *end;
	long w;

	if (zcr_http_query(rq->http.path, "weight", v, sizeof(v))) {
		zcr_api_error(rq, 400, "weight= is required");
		return -EINVAL;
	}
	w = strtol(v, &end, 10);
	if (!v[0] || *end || w < 1 || w > 1000) {
		zcr_api_error(rq, 400, "weight must be 1-1000, not '%s'", v);
		return -EINVAL;
	}
	return (int)w;
}

/* kill=1 (or true, yes): also end the upstream's sessions. */
static int query_kill(const struct zcr_areq *rq)
{
	char v[8];

	if (zcr_http_query(rq->http.path, "kill", v, sizeof(v)))
		return 0;
	return !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes");
}

static void json_upstream_reply(struct zcr_areq *rq, const struct zcr_route *r,
                                const struct zcr_upstream *u)
{
	struct zcr_json j = {0};

	json_upstream(&j, r, u, zcr_now_ms());
	zcr_api_json(rq, 200, &j);
}

static void post_upstream(struct zcr_areq *rq, const char *action)
{
	struct zcr_cfg *c = zcr_cfg_current();
	const struct zcr_route *r = NULL;
	const struct zcr_upstream *u = c ? find_upstream(rq, c, &r) : NULL;
	int w, state = -1;

	if (!c)
		zcr_api_error(rq, 503, "not running");
	if (!u)
		goto out;
	if (strcmp(action, "weight") == 0) {
		w = query_weight(rq);
		if (w < 0)
			goto out;
		__atomic_store_n(&u->st->weight_set, (unsigned)w,
		                 __ATOMIC_RELAXED);
	} else {
		state = !strcmp(action, "drain")     ? ZCR_UP_DRAIN
		        : !strcmp(action, "disable") ? ZCR_UP_DISABLED
		                                     : ZCR_UP_ENABLED;
		__atomic_store_n(&u->st->admin, state, __ATOMIC_RELAXED);
	}
	zcr_log(ZC_LOG_INFO, "admin: route=%s upstream=%s %s%s%s", r->name,
	        u->str, action, state < 0 ? " " : "",
	        state < 0 ? rq->http.path + strcspn(rq->http.path, "?") : "");
	if (state == ZCR_UP_DISABLED && query_kill(rq))
		zcr_api_sessions_delete(rq, NULL);
	else
		json_upstream_reply(rq, r, u);
out:
	zcr_cfg_unref(c);
}

/* ------------------------------------------------------------------ */
/* POST /reload                                                         */

static void reload_answer(struct zcr_areq *rq)
{
	struct zcr_json j = {0};
	int ok;

	pthread_mutex_lock(&rl_lock);
	ok = rl_ok;
	zcr_json_obj(&j);
	zcr_json_kbool(&j, "ok", ok);
	if (ok) {
		struct zcr_cfg *c = zcr_cfg_current();

		zcr_json_ku64(&j, "generation", c ? c->gen : 0);
		zcr_cfg_unref(c);
	}
	zcr_json_key(&j, "errors");
	json_lines(&j, ok ? NULL : rl_msgs);
	zcr_json_obj_end(&j);
	pthread_mutex_unlock(&rl_lock);
	zcr_api_json(rq, ok ? 200 : 400, &j);
}

static void reload_on_done(struct zc_loop *loop, void *arg)
{
	struct waiter *w = arg;

	reload_answer(w->rq);
	free(w);
}

void zcr_api_reload_start(void)
{
	pthread_mutex_lock(&rl_lock);
	rl_started++;
	pthread_mutex_unlock(&rl_lock);
}

/* Posts fn(w) to the admin loop for each waiter of *list whose attempt
 * (want) is done; keeps the others (and those a post failed for: out of
 * memory, the next attempt answers them). */
static void waiters_answer(struct waiter **list, unsigned done, zc_post_fn *fn)
{
	struct waiter *w, *keep = NULL, *next;

	for (w = *list; w; w = next) {
		next = w->next;
		if (w->want > done || zcr_admin_post(w->rq->a, fn, w)) {
			w->next = keep;
			keep = w;
		}
	}
	*list = keep;
}

void zcr_api_reloaded(int ok, const char *msgs)
{

	pthread_mutex_lock(&rl_lock);
	rl_done = rl_started;
	rl_failed += !ok;
	rl_ok = ok;
	free(rl_msgs);
	rl_msgs = msgs ? strdup(msgs) : NULL;
	waiters_answer(&rl_waiters, rl_done, reload_on_done);
	pthread_mutex_unlock(&rl_lock);
}

/* rq waits on *list for the answer to the attempt after *started,
 * which sig makes the main thread begin. */
static void wait_for(struct zcr_areq *rq, struct waiter **list,
                     const unsigned *started, int sig)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		zcr_api_error(rq, 500, "out of memory");
		return;
	}
	w->rq = rq;
	pthread_mutex_lock(&rl_lock);
	w->want = *started + 1;
	w->next = *list;
	*list = w;
	pthread_mutex_unlock(&rl_lock);
	kill(getpid(), sig);
}

static void post_reload(struct zcr_areq *rq)
{
	struct zcr_cfg *c = zcr_cfg_current();
	int has_file = c && c->path;

	zcr_cfg_unref(c);
	if (is_draining()) {
		zcr_api_error(rq, 503, "draining: no more reloads");
		return;
	}
	if (!has_file) {
		zcr_api_error(rq, 409, "no -c file to reload");
		return;
	}
	/* the main thread reloads, as for SIGHUP */
	wait_for(rq, &rl_waiters, &rl_started, SIGHUP);
}

/* ------------------------------------------------------------------ */
/* POST /upgrade                                                        */

static struct waiter *ug_waiters;
static unsigned ug_started, ug_done;
static int ug_pid;       /* the new process, or 0: failed */
static char ug_why[256]; /* why it failed */

static void upgrade_on_done(struct zc_loop *loop, void *arg)
{
	struct waiter *w = arg;
	struct zcr_json j = {0};
	int pid;

	pthread_mutex_lock(&rl_lock);
	pid = ug_pid;
	zcr_json_obj(&j);
	zcr_json_kbool(&j, "ok", pid > 0);
	if (pid > 0)
		zcr_json_ku64(&j, "pid", (uint64_t)pid);
	else
		zcr_json_kstr(&j, "error", ug_why);
	zcr_json_obj_end(&j);
	pthread_mutex_unlock(&rl_lock);
	zcr_api_json(w->rq, pid > 0 ? 200 : 500, &j);
	free(w);
}

void zcr_api_upgrade_start(void)
{
	pthread_mutex_lock(&rl_lock);
	ug_started++;
	pthread_mutex_unlock(&rl_lock);
}

void zcr_api_upgraded(int pid, const char *why)
{
	pthread_mutex_lock(&rl_lock);
	ug_done = ug_started;
	ug_pid = pid;
	snprintf(ug_why, sizeof(ug_why), "%s", why ? why : "");
	waiters_answer(&ug_waiters, ug_done, upgrade_on_done);
	pthread_mutex_unlock(&rl_lock);
}

static void post_upgrade(struct zcr_areq *rq)
{
	if (is_draining()) {
		zcr_api_error(rq, 503, "draining: no upgrade");
		return;
	}
	/* the main thread upgrades, as for SIGUSR2 */
	wait_for(rq, &ug_waiters, &ug_started, SIGUSR2);
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                             */

/* Does the path (without its query) equal want? */
static int path_is(const char *path, const char *want)
{
	size_t n = strcspn(path, "?");

	return n == strlen(want) && memcmp(path, want, n) == 0;
}

/* Is the path "prefix" followed by one more segment? Returns that
 * segment (up to '?'), or NULL. */
static const char *path_under(const char *path, const char *prefix, char *seg,
                              size_t cap)
{
	size_t pl = strlen(prefix), n;

	if (strncmp(path, prefix, pl) != 0)
		return NULL;
	n = strcspn(path + pl, "?/");
	if (n == 0 || n >= cap || (path[pl + n] != '\0' && path[pl + n] != '?'))
		return NULL;
	memcpy(seg, path + pl, n);
	seg[n] = '\0';
	return seg;
}

static int method_is(const struct zcr_areq *rq, const char *m)
{
	if (strcmp(m, "GET") == 0 && strcmp(rq->http.method, "HEAD") == 0)
		return 1;
	return strcmp(rq->http.method, m) == 0;
}

static void not_allowed(struct zcr_areq *rq, const char *allow)
{
	char extra[64];

	snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
	zcr_admin_reply_text(rq, 405, JSON, extra,
	                     "{\"error\":\"method not allowed\"}\n");
}

/* GET-only resources. Returns 1 if path was one of them. */
static int handle_get(struct zcr_areq *rq, const char *path)
{
	static const struct {
		const char *path;
		void (*fn)(struct zcr_areq *);
	} gets[] = {
	        {"/metrics", get_metrics},           {"/", get_index},
	        {"/healthz", get_healthz},           {"/status", get_status},
	        {"/sessions", zcr_api_sessions_get},
	};
	size_t i;

	for (i = 0; i < sizeof(gets) / sizeof(gets[0]); i++) {
		if (!path_is(path, gets[i].path))
			continue;
		if (path_is(path, "/sessions") && method_is(rq, "DELETE"))
			zcr_api_sessions_delete(rq, NULL);
		else if (!method_is(rq, "GET"))
			not_allowed(rq, path_is(path, "/sessions")
			                        ? "GET, HEAD, DELETE"
			                        : "GET, HEAD");
		else
			gets[i].fn(rq);
		return 1;
	}
	return 0;
}

void zcr_api_handle(void *arg, struct zcr_areq *rq)
{
	const char *path = rq->http.path;
	char seg[64];

	if (handle_get(rq, path))
		return;
	if (path_is(path, "/routes") || path_is(path, "/upstreams")) {
		if (method_is(rq, "GET"))
			get_routes(rq, path_is(path, "/upstreams"));
		else
			not_allowed(rq, "GET, HEAD");
	} else if (path_under(path, "/upstreams/", seg, sizeof(seg)) &&
	           (!strcmp(seg, "drain") || !strcmp(seg, "enable") ||
	            !strcmp(seg, "disable") || !strcmp(seg, "weight"))) {
		if (method_is(rq, "POST"))
			post_upstream(rq, seg);
		else
			not_allowed(rq, "POST");
	} else if (path_under(path, "/sessions/", seg, sizeof(seg))) {
		if (method_is(rq, "DELETE"))
			zcr_api_sessions_delete(rq, seg);
		else
			not_allowed(rq, "DELETE");
	} else if (path_is(path, "/reload") || path_is(path, "/upgrade")) {
		if (!method_is(rq, "POST"))
			not_allowed(rq, "POST");
		else if (path_is(path, "/reload"))
			post_reload(rq);
		else
			post_upgrade(rq);
	} else {
		zcr_api_error(rq, 404, "no such resource");
	}
}

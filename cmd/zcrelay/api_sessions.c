/*
 * api_sessions.c - GET /sessions and DELETE /sessions: the request is
 * fanned out to every worker with zc_loop_post (a worker answers from
 * its own thread, between two events, and never waits), and the last
 * worker to answer posts the gathered parts back to the admin thread,
 * which renders the reply. Nothing on a worker blocks on the admin
 * thread, and the admin thread blocks on nobody.
 *
 * A listing is made on each worker a step of STEP_SESSIONS sessions at
 * a time (zcr_session_list_step), the worker relaying between two
 * steps: a walk of 4,500 sessions in one go held a worker for 1.1 ms
 * (p50; 18 ms p99 on a loaded machine), which showed in the relay's
 * p99 round trip. A worker has one listing cursor, so listings run one
 * after the other (a queue); kills run at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

#define LIMIT_DEFAULT 1000 /* sessions listed without limit= */
#define SHARE_MS      250  /* a listing answers the same GET this long */
#define WAITERS_MAX   256  /* same GETs waiting for one listing */
#define STEP_SESSIONS 128  /* visited per step: ~10-50 us of a worker */
#define WATCH_MS      1000 /* how often a fan looks for lost parts */

struct fan;

/* One worker's share. */
struct part {
	struct fan *fan;
	struct zcr_worker *w;
	struct zcr_sess_walk walk; /* a listing's */
	unsigned killed;
	int done; /* under fan->mu */
};

struct fan {
	struct fan *next; /* listings: the queue */
	char path[ZCR_HTTP_PATH_MAX];
	struct zcr_areq *rq;
	struct zcr_areq *also[WAITERS_MAX]; /* the same GET, arrived later */
	unsigned nalso;
	unsigned kills; /* shared.kills when it started */
	struct zcr_sess_filter f;
	int kill;
	size_t limit;
	unsigned left;          /* parts not done yet */
	struct zc_timer *watch; /* for parts lost with their worker */
	pthread_mutex_t mu;
	unsigned n;
	struct part parts[];
};

/*
 * Many clients polling the same listing (dashboards, 50 pollers every
 * 100 ms) must not each cost a walk of every worker's sessions, nor a
 * rendering, nor a copy of a 200 KB text: a GET that equals the one in
 * flight waits for its answer, and one rendered listing (a shared body,
 * sent from where it is) answers the same GET for SHARE_MS after it was
 * made. 250 ms: the byte counts in it are refreshed every 500 ms anyway
 * (the workers' tick), so a poller sees nothing older than it would
 * without the sharing, within a tick. Admin thread only. A kill forgets
 * it.
 */
static struct {
	char path[ZCR_HTTP_PATH_MAX]; /* of body */
	struct zcr_abody *body;
	uint64_t at;
	struct fan *head, *tail; /* listings: head under way, then queued */
	unsigned kills; /* kills started: a listing from before is stale */
} shared;

static void shared_forget(void)
{
	zcr_abody_put(shared.body);
	shared.body = NULL;
	shared.at = 0;
}

/* Answers rq from the shared listing, or adds it to an equal one under
 * way or queued. Returns 1 if rq is taken care of. */
static int shared_take(struct zcr_areq *rq)
{
	struct fan *f;

	for (f = shared.head; f; f = f->next)
		if (strcmp(f->path, rq->http.path) == 0 &&
		    f->nalso < WAITERS_MAX) {
			f->also[f->nalso++] = rq;
			return 1;
		}
	if (!shared.body || strcmp(shared.path, rq->http.path) != 0 ||
	    zcr_now_ms() - shared.at >= SHARE_MS)
		return 0;
	zcr_admin_reply_body(rq, 200, "application/json", NULL, shared.body);
	return 1;
}

/* The listing text is done: it answers the request and every waiter,
 * and is kept for SHARE_MS. Takes text. */
static void shared_done(struct fan *fan, char *text, size_t len)
{
	struct zcr_abody *b = zcr_abody_new(text, len);
	unsigned i;

	if (!b)
		return; /* fan_on_done answers them all with 500 */
	for (i = 0; i < fan->nalso; i++)
		zcr_admin_reply_body(fan->also[i], 200, "application/json",
		                     NULL, b);
	fan->nalso = 0;
	shared_forget();
	if (fan->kills == shared.kills) {
		snprintf(shared.path, sizeof(shared.path), "%s", fan->path);
		shared.body = zcr_abody_ref(b);
		shared.at = zcr_now_ms();
	}
	zcr_admin_reply_body(fan->rq, 200, "application/json", NULL, b);
	fan->rq = NULL;
	zcr_abody_put(b);
}

static void fan_free(struct fan *fan)
{
	unsigned i;

	zc_timer_free(fan->watch);
	for (i = 0; i < fan->n; i++)
		free(fan->parts[i].walk.v);
	pthread_mutex_destroy(&fan->mu);
	free(fan);
}

/* ------------------------------------------------------------------ */
/* Replies (admin thread)                                               */

static void json_session(struct zcr_json *j, const struct zcr_sess_info *s)
{
	zcr_json_obj(j);
	zcr_json_ku64(j, "id", s->id);
	zcr_json_ku64(j, "worker", (uint64_t)s->worker);
	zcr_json_kstr(j, "route", s->route);
	zcr_json_kstr(j, "client", s->client);
	zcr_json_kstr(j, "peer", s->peer);
	zcr_json_kstr(j, "upstream", s->upstream[0] ? s->upstream : NULL);
	zcr_json_kstr(j, "state", s->state);
	zcr_json_ku64(j, "age_ms", s->age_ms);
	zcr_json_ku64(j, "idle_ms", s->idle_ms);
	zcr_json_ku64(j, "bytes_in", s->bytes_in);
	zcr_json_ku64(j, "bytes_out", s->bytes_out);
	zcr_json_ku64(j, "spliced", s->spliced);
	zcr_json_ku64(j, "copied", s->copied);
	zcr_json_kstr(j, "mover", s->mover[0] ? s->mover : NULL);
	if (s->protocol) {
		zcr_json_kstr(j, "protocol", s->protocol);
		zcr_json_kstr(j, "sni", s->sni[0] ? s->sni : NULL);
		zcr_json_kstr(j, "alpn", s->alpn[0] ? s->alpn : NULL);
	}
	zcr_json_obj_end(j);
}

static int by_id(const void *a, const void *b)
{
	const struct zcr_sess_info *x = *(const struct zcr_sess_info *const *)a;
	const struct zcr_sess_info *y = *(const struct zcr_sess_info *const *)b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* The parts merged, oldest first (ids grow), at most limit of them:
 * each worker sent its oldest limit, so these are the oldest of all. */
static void reply_list(struct fan *fan)
{
	struct zcr_json j = {0};
	const struct zcr_sess_info **all;
	size_t n = 0, total = 0, i, k, len;
	char *text;

	for (i = 0; i < fan->n; i++) {
		n += fan->parts[i].walk.n;
		total += fan->parts[i].walk.total;
	}
	all = malloc((n ? n : 1) * sizeof(*all));
	if (!all) {
		zcr_api_error(fan->rq, 500, "out of memory");
		return;
	}
	for (i = 0, n = 0; i < fan->n; i++)
		for (k = 0; k < fan->parts[i].walk.n; k++)
			all[n++] = &fan->parts[i].walk.v[k];
	qsort(all, n, sizeof(*all), by_id);
	zcr_json_obj(&j);
	zcr_json_ku64(&j, "total", total);
	zcr_json_key(&j, "sessions");
	zcr_json_arr(&j);
	for (i = 0; i < n && i < fan->limit; i++)
		json_session(&j, all[i]);
	zcr_json_arr_end(&j);
	zcr_json_obj_end(&j);
	free(all);
	text = zcr_json_done(&j, &len);
	if (text)
		shared_done(fan, text, len);
	if (fan->rq)
		zcr_api_error(fan->rq, 500, "out of memory");
}

static void reply_killed(struct fan *fan)
{
	struct zcr_json j = {0};
	uint64_t n = 0;
	unsigned i;

	for (i = 0; i < fan->n; i++)
		n += fan->parts[i].killed;
	if (fan->f.id && n == 0) {
		zcr_api_error(fan->rq, 404, "no session %llu",
		              (unsigned long long)fan->f.id);
		return;
	}
	zcr_json_obj(&j);
	zcr_json_ku64(&j, "killed", n);
	zcr_json_obj_end(&j);
	zcr_api_json(fan->rq, 200, &j);
}

static void fan_go(struct fan *fan);

/* Takes the listing fan, now answered, off the queue; returns the next
 * one to start, or NULL. */
static struct fan *queue_pop(struct fan *fan)
{
	if (fan->kill || shared.head != fan)
		return NULL;
	shared.head = fan->next;
	if (!shared.head)
		shared.tail = NULL;
	return shared.head;
}

static void fan_on_done(struct zc_loop *loop, void *arg)
{
	struct fan *fan = arg, *next;
	unsigned i;

	if (fan->kill)
		reply_killed(fan);
	else
		reply_list(fan);
	/* Out of memory above: the waiters still get an answer. */
	for (i = 0; i < fan->nalso; i++)
		zcr_api_error(fan->also[i], 500, "out of memory");
	next = queue_pop(fan);
	fan_free(fan);
	if (next)
		fan_go(next);
}

/* ------------------------------------------------------------------ */
/* Workers                                                              */

/* Marks p done, once; returns 1 if it was the fan's last part. */
static int part_finish(struct part *p)
{
	struct fan *fan = p->fan;
	int last = 0;

	pthread_mutex_lock(&fan->mu);
	if (!p->done) {
		p->done = 1;
		last = --fan->left == 0;
	}
	pthread_mutex_unlock(&fan->mu);
	return last;
}

/* p is done (on its worker, or not run at all): the last one hands the
 * fan back to the admin thread. */
static void part_done(struct part *p)
{
	struct fan *fan = p->fan;

	if (!part_finish(p))
		return;
	/* A post fails only without memory; the reply must not be lost. */
	while (zcr_admin_post(fan->rq->a, fan_on_done, fan))
		usleep(1000);
}

/*
 * A worker that stops (a drain ends with its last session) frees the
 * posts still queued on its loop without running them, so a part posted
 * to it just before may never be done, and a fan would wait forever (and
 * the listings queued behind it). Every WATCH_MS the admin thread counts
 * the parts whose worker has gone (w->loop cleared, after its loop ran
 * for the last time) as done, with what they gathered.
 */
static void fan_on_watch(void *arg)
{
	struct fan *fan = arg;
	unsigned i;
	int gone;

	for (i = 0; i < fan->n; i++) {
		pthread_mutex_lock(&fan->parts[i].w->mu);
		gone = fan->parts[i].w->loop == NULL;
		pthread_mutex_unlock(&fan->parts[i].w->mu);
		if (gone && part_finish(&fan->parts[i])) {
			fan_on_done(NULL, fan);
			return;
		}
	}
	zc_timer_arm(fan->watch, WATCH_MS);
}

/* One step of a listing on p's worker; the next one is posted behind
 * the events that came meanwhile. A kill is done in one go: it is rare
 * and ends what it visits. */
static void part_on_worker(struct zc_loop *loop, void *arg)
{
	struct part *p = arg;

	if (p->fan->kill) {
		p->killed = zcr_session_kill(p->w, &p->fan->f);
		part_done(p);
		return;
	}
	if (zcr_session_list_step(p->w, &p->walk, STEP_SESSIONS) > 0 &&
	    zc_loop_post(loop, part_on_worker, p) == 0)
		return;
	/* Done, or out of memory: answered with what was gathered. */
	zcr_session_list_end(p->w);
	part_done(p);
}

static void fan_start(struct fan *fan, struct zcr_worker *ws)
{
	unsigned i;

	for (i = 0; i < fan->n; i++) {
		fan->parts[i].fan = fan;
		fan->parts[i].w = &ws[i];
		fan->parts[i].walk.f = fan->f;
		fan->parts[i].walk.limit = fan->limit;
	}
	for (i = 0; i < fan->n; i++)
		if (zcr_worker_post(&ws[i], part_on_worker, &fan->parts[i]))
			part_done(&fan->parts[i]); /* ended: nothing there */
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

/* A decimal number of the query, or -EINVAL after an error reply. */
static long long query_num(struct zcr_areq *rq, const char *key, long long dflt)
{
	char v[24], *end;
	long long n;
	int rc = zcr_http_query(rq->http.path, key, v, sizeof(v));

	if (rc == -ENOENT)
		return dflt;
	n = rc ? -1 : strtoll(v, &end, 10);
	if (rc || !v[0] || *end || n < 0) {
		zcr_api_error(rq, 400, "%s must be a number >= 0", key);
		return -EINVAL;
	}
	return n;
}

/* A text filter of the query into out; 0, or -EINVAL after an error
 * reply. */
static int query_text(struct zcr_areq *rq, const char *key, char *out,
                      size_t cap)
{
	int rc = zcr_http_query(rq->http.path, key, out, cap);

	if (rc == -ENOENT) {
		out[0] = '\0';
		return 0;
	}
	if (rc) {
		zcr_api_error(rq, 400, "bad %s= value", key);
		return -EINVAL;
	}
	return 0;
}

/* The filters of rq's query; 0, or -EINVAL after an error reply. */
static int query_filter(struct zcr_areq *rq, struct zcr_sess_filter *f)
{
	long long age;

	if (query_text(rq, "route", f->route, sizeof(f->route)) ||
	    query_text(rq, "upstream", f->upstream, sizeof(f->upstream)) ||
	    query_text(rq, "client", f->client, sizeof(f->client)))
		return -EINVAL;
	age = query_num(rq, "min_age", 0);
	if (age < 0)
		return -EINVAL;
	f->min_age_ms = (uint64_t)age * 1000;
	return 0;
}

static struct fan *fan_new(struct zcr_areq *rq, unsigned nw)
{
	struct fan *fan = calloc(1, sizeof(*fan) + nw * sizeof(fan->parts[0]));

	if (!fan) {
		zcr_api_error(rq, 500, "out of memory");
		return NULL;
	}
	fan->rq = rq;
	fan->n = nw;
	fan->left = nw;
	pthread_mutex_init(&fan->mu, NULL);
	return fan;
}

/* Runs fan on every worker; with none, answers at once. */
static void fan_go(struct fan *fan)
{
	unsigned nw;
	struct zcr_worker *ws = zcr_api_workers(&nw);

	fan->kills = shared.kills; /* a kill from now on makes it stale */
	if (fan->n > 0 && zc_timer_new(&fan->watch, zcr_admin_loop(fan->rq->a),
	                               fan_on_watch, fan) == 0)
		zc_timer_arm(fan->watch, WATCH_MS);
	if (fan->n == 0) {
		fan_on_done(NULL, fan);
		return;
	}
	fan_start(fan, ws);
}

void zcr_api_sessions_get(struct zcr_areq *rq)
{
	struct zcr_sess_filter f = {0};
	long long limit;
	struct fan *fan;
	unsigned nw;

	(void)zcr_api_workers(&nw);
	if (shared_take(rq))
		return;
	if (query_filter(rq, &f))
		return;
	limit = query_num(rq, "limit", LIMIT_DEFAULT);
	if (limit < 0)
		return;
	fan = fan_new(rq, nw);
	if (!fan)
		return;
	fan->f = f;
	fan->limit = (size_t)limit;
	snprintf(fan->path, sizeof(fan->path), "%s", rq->http.path);
	if (shared.tail)
		shared.tail->next = fan;
	else
		shared.head = fan;
	shared.tail = fan;
	if (shared.head == fan)
		fan_go(fan);
}

void zcr_api_sessions_delete(struct zcr_areq *rq, const char *id)
{
	struct zcr_sess_filter f = {0};
	struct fan *fan;
	char *end;
	unsigned nw;

	(void)zcr_api_workers(&nw);
	if (query_filter(rq, &f))
		return;
	if (id) {
		f.id = strtoull(id, &end, 10);
		if (!id[0] || *end || f.id == 0) {
			zcr_api_error(rq, 400, "bad session id '%s'", id);
			return;
		}
	} else if (!f.route[0] && !f.upstream[0] && !f.client[0]) {
		zcr_api_error(rq, 400,
		              "DELETE /sessions needs a filter: route=, "
		              "upstream= or client=");
		return;
	}
	fan = fan_new(rq, nw);
	if (!fan)
		return;
	fan->f = f;
	fan->kill = 1;
	shared_forget(); /* the next listing must not show them */
	shared.kills++;
	fan_go(fan);
}

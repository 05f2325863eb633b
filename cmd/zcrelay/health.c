/*
 * health.c - active health checks: a TCP connect to every upstream of the
 * routes that ask for it, every check-interval, on a thread of its own
 * (its own loop), so checks never compete with sessions.
 *
 * An upstream is marked down after `fall` failed checks in a row and up
 * again after `rise` good ones; balance.c skips it while it is down. The
 * state lives in the upstream's counters, so it survives reloads. Only
 * this thread writes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

struct hc {
	struct hc *next;
	const struct zcr_route *r;
	const struct zcr_upstream *u;
	struct zc_timer *t;
	struct zc_connect *cn;
};

static struct {
	pthread_t th;
	struct zc_loop *loop;
	struct zcr_cfg *cfg;
	struct hc *list;
	int running;
} H;

static void hc_arm(struct hc *h, unsigned ms)
{
	if (zc_timer_arm(h->t, ms))
		zcr_log(ZC_LOG_ERR,
		        "route=%s upstream=%s check: cannot arm "
		        "the timer",
		        h->r->name, h->u->str);
}

/* A check result: moves the upstream's state after rise/fall in a row. */
static void hc_result(struct hc *h, int ok)
{
	struct zcr_stats *st = h->u->st;
	int down = __atomic_load_n(&st->check_down, __ATOMIC_RELAXED);
	unsigned need = down ? h->r->rise : h->r->fall;

	if (ok == !down) { /* agrees with the state */
		st->check_streak = 0;
		return;
	}
	if (++st->check_streak < need)
		return;
	st->check_streak = 0;
	__atomic_store_n(&st->check_down, !down, __ATOMIC_RELAXED);
	zcr_log(down ? ZC_LOG_INFO : ZC_LOG_WARN,
	        "route=%s upstream=%s check: %s after %u %s checks", h->r->name,
	        h->u->str, down ? "up" : "down", need,
	        down ? "good" : "failed");
}

static void hc_on_connect(void *arg, int fd)
{
	struct hc *h = arg;

	h->cn = NULL;
	if (fd >= 0)
		close(fd);
	else if (zcr_err_local(fd)) /* our shortage: no verdict */
		zcr_log(ZC_LOG_WARN, "route=%s upstream=%s check skipped: %s",
		        h->r->name, h->u->str, zc_strerror(fd));
	else
		zcr_log(ZC_LOG_DEBUG, "route=%s upstream=%s check: %s",
		        h->r->name, h->u->str, zc_strerror(fd));
	if (!zcr_err_local(fd))
		hc_result(h, fd >= 0);
	hc_arm(h, h->r->check_ms);
}

static void hc_on_timer(void *arg)
{
	struct hc *h = arg;
	int err = zc_connect_start(
	        &h->cn, H.loop, (const struct sockaddr *)&h->u->addr.ss,
	        h->u->addr.len, h->r->check_timeout_ms, hc_on_connect, h);

	if (err)
		hc_on_connect(h, err);
}

static void hc_clear(void)
{
	while (H.list) {
		struct hc *h = H.list;

		H.list = h->next;
		zc_connect_cancel(h->cn);
		zc_timer_free(h->t);
		free(h);
	}
	zcr_cfg_unref(H.cfg);
	H.cfg = NULL;
}

static int hc_add(const struct zcr_route *r, const struct zcr_upstream *u)
{
	struct hc *h = calloc(1, sizeof(*h));

	if (!h || zc_timer_new(&h->t, H.loop, hc_on_timer, h)) {
		free(h);
		return -ENOMEM;
	}
	h->r = r;
	h->u = u;
	h->next = H.list;
	H.list = h;
	hc_arm(h, 0); /* the first check at once */
	return 0;
}

/* Checks for every upstream of c's routes that have them; the others
 * are never held down by a check. */
static void hc_build(struct zcr_cfg *c)
{
	unsigned i, j;

	hc_clear();
	zcr_cfg_ref(c);
	H.cfg = c;
	for (i = 0; i < c->nroutes; i++)
		for (j = 0; j < c->routes[i].nups; j++) {
			const struct zcr_route *r = &c->routes[i];

			if (!r->check_ms) {
				__atomic_store_n(&r->ups[j].st->check_down, 0,
				                 __ATOMIC_RELAXED);
				continue;
			}
			if (hc_add(r, &r->ups[j]))
				zcr_log(ZC_LOG_ERR, "health checks: out of "
				                    "memory");
		}
}

static void hc_on_apply(struct zc_loop *loop, void *arg)
{
	struct zcr_cfg *c = arg;

	hc_build(c);
	zcr_cfg_unref(c); /* the post's reference */
}

static void hc_on_stop(struct zc_loop *loop, void *arg)
{
	hc_clear();
	zc_loop_stop(loop);
}

static void *hc_main(void *arg)
{
	int err = zc_loop_run(H.loop);

	if (err)
		zcr_log(ZC_LOG_ERR, "health checks: %s", zc_strerror(err));
	hc_clear();
	zc_loop_free(H.loop);
	return NULL;
}

int zcr_health_start(struct zcr_cfg *c)
{
	struct zc_loop_opts lo;
	int err;

	zc_loop_opts_init(&lo);
	lo.engine = ZC_ENGINE_EPOLL; /* a few connects: no ring needed */
	lo.log = zcr_log_lib;
	err = zc_loop_new(&H.loop, &lo);
	if (err == 0)
		err = zcr_health_apply(c);
	if (err == 0)
		err = -pthread_create(&H.th, NULL, hc_main, NULL);
	if (err) {
		zcr_log(ZC_LOG_ERR, "health checks: %s", zc_strerror(err));
		return err;
	}
	H.running = 1;
	return 0;
}

int zcr_health_apply(struct zcr_cfg *c)
{
	int err;

	zcr_cfg_ref(c);
	err = zc_loop_post(H.loop, hc_on_apply, c);
	if (err)
		zcr_cfg_unref(c);
	return err;
}

void zcr_health_stop(void)
{
	if (!H.running)
		return;
	if (zc_loop_post(H.loop, hc_on_stop, NULL) == 0)
		pthread_join(H.th, NULL);
	H.running = 0;
}

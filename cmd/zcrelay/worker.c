/*
 * worker.c - one worker thread: a loop, the listeners it accepts on, and
 * the sessions it accepted (session.c). A session never changes worker.
 * Other threads talk to a worker only through zc_loop_post().
 *
 * A reload reaches a worker as an "apply" post carrying the new
 * configuration and listener set: listeners in both sets keep running
 * (only the routes they feed may change), the others stop, new ones
 * start. Sessions keep the generation they started with.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

#define SNAP_MS 500

int zcr_worker_failed;

/* A listener of this worker. */
struct zcr_wl {
	struct zcr_wl *next;
	struct zcr_worker *w;
	struct zcr_lsock *ls;
	struct zc_listener *lst;
	unsigned group; /* in the worker's cfg->groups */
	int keep;       /* apply: in the new set */
};

/* An apply request; the poster waits for every worker to finish it. */
struct apply {
	struct zcr_worker *w;
	struct zcr_cfg *cfg;
	struct zcr_lset set; /* borrowed from the poster */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, err;
};

static void wl_on_accept(void *arg, int fd, const struct sockaddr *sa,
                         socklen_t salen)
{
	struct zcr_wl *wl = arg;

	zcr_session_accept(wl->w, wl->group, fd, sa, salen);
}

static int wl_fd(const struct zcr_wl *wl)
{
	return wl->ls->fds[wl->ls->shared ? 0 : wl->w->id];
}

/* Stops accepting on wl and frees it; our own REUSEPORT socket is closed
 * now (clients queued on it are refused), a shared one by its last user. */
static void wl_stop(struct zcr_wl *wl)
{
	zc_listener_stop(wl->lst);
	if (!wl->ls->shared) {
		close(wl->ls->fds[wl->w->id]);
		wl->ls->fds[wl->w->id] = -1;
	}
	zcr_lsock_put(wl->ls);
	free(wl);
}

static int wl_start(struct zcr_worker *w, struct zcr_lsock *ls, unsigned g)
{
	struct zcr_wl *wl = calloc(1, sizeof(*wl));
	int err;

	if (!wl)
		return -ENOMEM;
	wl->w = w;
	wl->ls = ls;
	wl->group = g;
	err = zc_listener_start(&wl->lst, w->loop, wl_fd(wl), wl_on_accept, wl);
	if (err) {
		free(wl);
		return err;
	}
	zcr_lsock_ref(ls);
	wl->next = w->wls;
	w->wls = wl;
	return 0;
}

static struct zcr_wl *wl_find(struct zcr_worker *w, const struct zcr_lsock *ls)
{
	struct zcr_wl *wl;

	for (wl = w->wls; wl; wl = wl->next)
		if (wl->ls == ls)
			return wl;
	return NULL;
}

/* Stops the listeners not marked keep (all of them when drop_all). */
static void wl_sweep(struct zcr_worker *w, int drop_all)
{
	struct zcr_wl **pp = &w->wls, *wl;

	while ((wl = *pp) != NULL) {
		if (!drop_all && wl->keep) {
			wl->keep = 0;
			pp = &wl->next;
			continue;
		}
		*pp = wl->next;
		wl_stop(wl);
	}
}

static int worker_apply_set(struct zcr_worker *w, const struct zcr_lset *set)
{
	struct zcr_wl *wl;
	unsigned i;
	int err, first = 0;

	for (i = 0; i < set->n; i++) {
		wl = wl_find(w, set->ls[i]);
		if (wl) {
			wl->group = set->group[i];
			wl->keep = 1;
			continue;
		}
		err = wl_start(w, set->ls[i], set->group[i]);
		if (err) {
			zcr_log(ZC_LOG_ERR, "worker=%d listen %s: %s", w->id,
			        set->ls[i]->str, zc_strerror(err));
			first = first ? first : err;
			continue;
		}
		w->wls->keep = 1;
	}
	wl_sweep(w, 0);
	return first;
}

static void worker_on_apply(struct zc_loop *loop, void *arg)
{
	struct apply *a = arg;
	struct zcr_worker *w = a->w;
	int err = 0;

	if (!w->draining) {
		err = worker_apply_set(w, &a->set);
		zcr_cfg_ref(a->cfg);
		zcr_cfg_unref(w->cfg);
		w->cfg = a->cfg;
	}
	pthread_mutex_lock(&a->mu);
	a->done = 1;
	a->err = err;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void worker_snap(void *arg)
{
	struct zcr_worker *w = arg;
	struct zc_loop_stats st;

	zc_loop_get_stats(w->loop, &st);
	zcr_session_tick(w, zcr_now_ms());
	pthread_mutex_lock(&w->mu);
	w->snap = st;
	w->snap_sessions = w->nsessions;
	pthread_mutex_unlock(&w->mu);
	zc_timer_arm(w->snap_timer, SNAP_MS);
}

int zcr_worker_init(struct zcr_worker *w, struct zcr_cfg *cfg)
{
	struct zc_loop_opts lo;
	int err;

	zc_loop_opts_init(&lo);
	lo.engine = cfg->engine;
	lo.pipe_size = cfg->pipe_size;
	lo.max_pipes = cfg->max_pipes;
	lo.busy_poll_us = cfg->busy_poll_us;
	lo.busy_poll_cap = cfg->busy_poll_cap;
	lo.log = zcr_log_lib;
	lo.log_arg = w;
	lo.log_level = cfg->log_level;
	pthread_mutex_init(&w->mu, NULL);
	zcr_cfg_ref(cfg);
	w->cfg = cfg;
	err = zc_loop_new(&w->loop, &lo);
	if (err)
		return err;
	w->engine = zc_loop_engine(w->loop);
	err = zc_timer_new(&w->snap_timer, w->loop, worker_snap, w);
	if (err == 0)
		err = zc_timer_arm(w->snap_timer, 0);
	if (err) {
		zc_timer_free(w->snap_timer);
		zc_loop_free(w->loop);
		w->loop = NULL;
	}
	return err;
}

void *zcr_worker_main(void *arg)
{
	struct zcr_worker *w = arg;
	struct zc_loop *loop;
	int err = zc_loop_run(w->loop);

	if (err) {
		/* Its listeners would keep taking a share of the clients and
		 * leave them hanging: stop the whole daemon instead. */
		zcr_log(ZC_LOG_ERR, "worker=%d loop: %s: shutting down", w->id,
		        zc_strerror(err));
		__atomic_store_n(&zcr_worker_failed, 1, __ATOMIC_RELAXED);
		kill(getpid(), SIGTERM);
	}
	wl_sweep(w, 1);
	zcr_session_abort_all(w);
	zc_timer_free(w->snap_timer);
	w->snap_timer = NULL;
	/* Free the loop here, on its own thread: an io_uring loop can only
	 * cancel its polls (and so release its sockets at once) from the
	 * thread that ran it. Posts from main check w->loop under the lock. */
	pthread_mutex_lock(&w->mu);
	loop = w->loop;
	w->loop = NULL;
	pthread_mutex_unlock(&w->mu);
	zc_loop_free(loop);
	zcr_cfg_unref(w->cfg);
	w->cfg = NULL;
	return NULL;
}

int zcr_worker_post(struct zcr_worker *w, zc_post_fn *fn, void *arg)
{
	int err = -ESRCH;

	pthread_mutex_lock(&w->mu);
	if (w->loop)
		err = zc_loop_post(w->loop, fn, arg);
	pthread_mutex_unlock(&w->mu);
	return err;
}

/* Posts fn to the worker's loop unless the worker has already ended. */
static int worker_post(struct zcr_worker *w, zc_post_fn *fn, void *arg,
                       const char *what)
{
	int err = zcr_worker_post(w, fn, arg);

	if (err && err != -ESRCH)
		zcr_log(ZC_LOG_ERR, "worker=%d: cannot post %s: %s", w->id,
		        what, zc_strerror(err));
	return err;
}

int zcr_worker_apply(struct zcr_worker *w, struct zcr_cfg *cfg,
                     const struct zcr_lset *set)
{
	struct apply a = {.w = w, .cfg = cfg, .set = *set};
	int err;

	pthread_mutex_init(&a.mu, NULL);
	pthread_cond_init(&a.cv, NULL);
	err = worker_post(w, worker_on_apply, &a, "reload");
	pthread_mutex_lock(&a.mu);
	while (!err && !a.done)
		pthread_cond_wait(&a.cv, &a.mu);
	pthread_mutex_unlock(&a.mu);
	pthread_cond_destroy(&a.cv);
	pthread_mutex_destroy(&a.mu);
	return err ? err : a.err;
}

static void worker_on_drain(struct zc_loop *loop, void *arg)
{
	struct zcr_worker *w = arg;

	if (w->draining)
		return;
	w->draining = 1;
	/* Closing our listening sockets makes new clients refused, not
	 * queued. A shared (Unix) one closes with its last user. */
	wl_sweep(w, 1);
	zcr_worker_maybe_stop(w);
}

static void worker_on_abort(struct zc_loop *loop, void *arg)
{
	struct zcr_worker *w = arg;

	worker_on_drain(loop, arg);
	zcr_session_abort_all(w);
	zc_loop_close_relays(loop);
	zcr_worker_maybe_stop(w);
}

void zcr_worker_drain(struct zcr_worker *w)
{
	worker_post(w, worker_on_drain, w, "drain");
}

void zcr_worker_abort(struct zcr_worker *w)
{
	worker_post(w, worker_on_abort, w, "abort");
}

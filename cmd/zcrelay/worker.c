/*
 * worker.c - one worker thread: a loop, a listener, and the sessions it
 * accepted. A session never changes worker. Other threads talk to a
 * worker only through zc_loop_post().
 *
 * Session life: accept -> connect to the next upstream (round-robin) ->
 * on failure try the following one, until each was tried once -> relay
 * -> one log line.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

struct zcr_session {
	struct zcr_worker *w;
	struct zcr_session *prev, *next; /* on w->connecting */
	struct zc_connect *cn;
	int cfd;
	unsigned first, tries, up; /* upstream indexes */
	int last_err;
	struct timespec t0;
	char peer[ZCR_ADDR_STR];
};

static void session_connect_next(struct zcr_session *s);

static void worker_maybe_stop(struct zcr_worker *w)
{
	if (w->draining && w->active == 0)
		zc_loop_stop(w->loop);
}

static void connecting_add(struct zcr_session *s)
{
	struct zcr_worker *w = s->w;

	s->prev = NULL;
	s->next = w->connecting;
	if (w->connecting)
		w->connecting->prev = s;
	w->connecting = s;
}

static void connecting_del(struct zcr_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		s->w->connecting = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static void session_free(struct zcr_session *s)
{
	struct zcr_worker *w = s->w;

	free(s);
	w->active--;
	worker_maybe_stop(w);
}

static double session_secs(const struct zcr_session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - s->t0.tv_sec) +
	       (double)(now.tv_nsec - s->t0.tv_nsec) / 1e9;
}

/* "ECONNRESET" for -ECONNRESET: no spaces, so log lines stay key=value. */
static const char *err_name(int err)
{
	const char *n;

	if (err == 0)
		return "";
	n = err < 0 ? strerrorname_np(-err) : NULL;
	return n ? n : "EUNKNOWN";
}

static void session_done(void *arg, const struct zc_splice_stats *st)
{
	struct zcr_session *s = arg;
	const struct zc_dir_stats *up = &st->dir[ZC_DIR_AB];
	const struct zc_dir_stats *down = &st->dir[ZC_DIR_BA];
	int fb = up->fallback ? up->fallback : down->fallback;

	if (s->w->conf->log_sessions)
		zcr_log(ZC_LOG_INFO,
		        "session worker=%d client=%s upstream=%s up=%llu "
		        "down=%llu spliced=%llu copied=%llu duration=%.3fs "
		        "end=%s%s%s engine=%s mover=%s%s%s",
		        s->w->id, s->peer, s->w->conf->ups_str[s->up],
		        (unsigned long long)up->bytes,
		        (unsigned long long)down->bytes,
		        (unsigned long long)(up->spliced + down->spliced),
		        (unsigned long long)(up->copied + down->copied),
		        session_secs(s), zc_end_name(st->end),
		        st->error ? " error=" : "", err_name(st->error),
		        zc_engine_name(st->engine), zc_mover_name(st->mover),
		        fb ? " fallback=" : "", err_name(fb));
	session_free(s);
}

/* Every upstream failed, or the relay could not start. */
static void session_fail(struct zcr_session *s, const char *what, int err)
{
	zcr_log(ZC_LOG_WARN, "session worker=%d client=%s %s: %s", s->w->id,
	        s->peer, what, zc_strerror(err));
	close(s->cfd);
	session_free(s);
}

static void session_on_connect(void *arg, int fd)
{
	struct zcr_session *s = arg;
	const struct zcr_conf *c = s->w->conf;
	struct zc_splice_opts o;
	int err;

	connecting_del(s);
	s->cn = NULL;
	if (fd < 0) {
		zcr_log(ZC_LOG_WARN, "upstream %s: connect: %s",
		        c->ups_str[s->up], zc_strerror(fd));
		s->last_err = fd;
		s->tries++;
		session_connect_next(s);
		return;
	}
	zc_splice_opts_init(&o);
	o.mover = c->mover;
	o.idle_timeout_ms = c->idle_ms;
	o.flags = ZC_SPLICE_F_TRUSTED; /* from our accept and connect */
	err = zc_relay_start(NULL, s->w->loop, s->cfd, fd, &o, session_done, s);
	if (err) {
		close(fd);
		session_fail(s, "relay", err);
	}
}

static void session_connect_next(struct zcr_session *s)
{
	const struct zcr_conf *c = s->w->conf;
	int err;

	while (s->tries < c->nups) {
		s->up = (s->first + s->tries) % c->nups;
		err = zc_connect_start(
		        &s->cn, s->w->loop,
		        (const struct sockaddr *)&c->ups[s->up].ss,
		        c->ups[s->up].len, c->connect_ms, session_on_connect,
		        s);
		if (err == 0) {
			connecting_add(s);
			return;
		}
		zcr_log(ZC_LOG_WARN, "upstream %s: connect: %s",
		        c->ups_str[s->up], zc_strerror(err));
		s->last_err = err;
		s->tries++;
	}
	session_fail(s, "no upstream reachable", s->last_err);
}

static void worker_on_accept(void *arg, int fd, const struct sockaddr *sa,
                             socklen_t salen)
{
	struct zcr_worker *w = arg;
	struct zcr_session *s = calloc(1, sizeof(*s));

	if (!s) {
		zcr_log(ZC_LOG_ERR, "worker=%d accept: out of memory", w->id);
		close(fd);
		return;
	}
	s->w = w;
	s->cfd = fd;
	s->first = w->rr++ % w->conf->nups;
	clock_gettime(CLOCK_MONOTONIC, &s->t0);
	if (zc_addr_format(sa, salen, s->peer, sizeof(s->peer)) < 0)
		snprintf(s->peer, sizeof(s->peer), "?");
	w->active++;
	session_connect_next(s);
}

int zcr_worker_init(struct zcr_worker *w)
{
	struct zc_loop_opts lo;
	int err;

	zc_loop_opts_init(&lo);
	lo.engine = w->conf->engine;
	lo.pipe_size = w->conf->pipe_size;
	lo.max_pipes = w->conf->max_pipes;
	lo.log = zcr_log_lib;
	lo.log_arg = w;
	lo.log_level = w->conf->log_level;
	w->rr = (unsigned)w->id; /* spread the first picks of the workers */
	pthread_mutex_init(&w->mu, NULL);
	err = zc_loop_new(&w->loop, &lo);
	if (err)
		return err;
	err = zc_listener_start(&w->lst, w->loop, w->lfd, worker_on_accept, w);
	if (err) {
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
		/* Its listener would keep taking a share of the clients and
		 * leave them hanging: stop the whole daemon instead. */
		zcr_log(ZC_LOG_ERR, "worker=%d loop: %s: shutting down", w->id,
		        zc_strerror(err));
		kill(getpid(), SIGTERM);
	}
	/* Free the loop here, on its own thread: an io_uring loop can only
	 * cancel its polls (and so release its sockets at once) from the
	 * thread that ran it. Posts from main check w->loop under the lock. */
	pthread_mutex_lock(&w->mu);
	loop = w->loop;
	w->loop = NULL;
	pthread_mutex_unlock(&w->mu);
	zc_loop_free(loop);
	return NULL;
}

static void worker_on_drain(struct zc_loop *loop, void *arg)
{
	struct zcr_worker *w = arg;

	if (w->draining)
		return;
	w->draining = 1;
	zc_listener_stop(w->lst);
	w->lst = NULL;
	/* Close the listening socket so new clients are refused, not
	 * queued. A shared (Unix) one only when no worker watches it any
	 * more: closing an fd another epoll still holds is a race. */
	if (!w->lfd_shared ||
	    __atomic_sub_fetch(w->lfd_shared, 1, __ATOMIC_ACQ_REL) == 0)
		close(w->lfd);
	w->lfd = -1;
	worker_maybe_stop(w);
}

static void worker_on_abort(struct zc_loop *loop, void *arg)
{
	struct zcr_worker *w = arg;

	worker_on_drain(loop, arg);
	while (w->connecting) {
		struct zcr_session *s = w->connecting;

		connecting_del(s);
		zc_connect_cancel(s->cn);
		close(s->cfd);
		session_free(s);
	}
	zc_loop_close_relays(loop);
	worker_maybe_stop(w);
}

/* Posts fn to the worker's loop unless the worker has already ended. */
static void worker_post(struct zcr_worker *w, zc_post_fn *fn, const char *what)
{
	int err = 0;

	pthread_mutex_lock(&w->mu);
	if (w->loop)
		err = zc_loop_post(w->loop, fn, w);
	pthread_mutex_unlock(&w->mu);
	if (err)
		zcr_log(ZC_LOG_ERR, "worker=%d: cannot post %s: %s", w->id,
		        what, zc_strerror(err));
}

void zcr_worker_drain(struct zcr_worker *w)
{
	worker_post(w, worker_on_drain, "drain");
}

void zcr_worker_abort(struct zcr_worker *w)
{
	worker_post(w, worker_on_abort, "abort");
}

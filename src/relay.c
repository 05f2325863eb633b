/*
 * relay.c - a relay session: two sockets, two directions, and the one
 * teardown path, relay_close().
 *
 * Both sockets are watched edge-triggered for reading and writing; an
 * event only sets readiness flags, then both directions run. A direction
 * that used up its byte budget is run again on the next turn (a task),
 * so one fast pair cannot starve the others.
 */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dir.h"
#include "relay.h"
#include "log.h"
#include "sock.h"

#define RELAY_BUDGET_MIN (256U * 1024U)

static void relay_close(struct zc_relay *r, int end, int err);

static size_t relay_budget(const struct zc_relay *r)
{
	return ZC_MAX(2U * r->r_loop->pipes.pp_want, RELAY_BUDGET_MIN);
}

static uint64_t relay_bytes(const struct zc_relay *r)
{
	return r->r_dir[0].d_st.bytes + r->r_dir[1].d_st.bytes;
}

/* Which end a failure means: a peer's fault, or our own. */
static int relay_end_for(int err)
{
	switch (err) {
	case -ENOMEM:
	case -ENOBUFS:
	case -EIO:
	case -EBADF:
	case -EFAULT:
	case -EMFILE:
	case -ENFILE:
		return ZC_END_ERROR;
	default:
		return ZC_END_RESET;
	}
}

/* The quiet time that ends the relay now, in ns; 0: none. */
static uint64_t relay_quiet_limit(const struct zc_relay *r)
{
	unsigned ms = r->r_idle_ms;

	if (r->r_half && r->r_half_ms && (!ms || r->r_half_ms < ms))
		ms = r->r_half_ms;
	return (uint64_t)ms * 1000000ULL;
}

/* 1 while a hand-over settles the directions (zc__relay_settle_wait). */
static int relay_settling(const struct zc_relay *r)
{
	return (r->r_dir[0].d_flags & ZC_DIR_F_SETTLE) != 0;
}

/* Arms the idle timer at due, unless a settling hand-over has it armed
 * earlier (for the second after which the relay resumes). */
static int relay_idle_arm(struct zc_relay *r, uint64_t due)
{
	if (relay_settling(r) && r->r_idle.t_idx != ZC_TIMER_IDLE &&
	    r->r_idle.t_due < due)
		return 0;
	return zc__timer_arm_at(&r->r_idle, due);
}

/* One direction is done: the half-closed timeout (if any) starts. */
static int relay_half_start(struct zc_relay *r)
{
	r->r_half = 1;
	r->r_last = zc__loop_now(r->r_loop); /* the EOF is news too */
	if (!r->r_half_ms)
		return 0;
	return relay_idle_arm(r, r->r_last + relay_quiet_limit(r));
}

/* 1 if closing the fds releases the sockets at once, which sends the
 * FINs still due: the relay holds the only references (ZC_RELAY_F_FRESH,
 * it closes them) and the engine none (an io_uring poll or request holds
 * its file until removed). A fork that holds copies until its exec only
 * delays those FINs by as long. */
static int relay_close_releases(const struct zc_relay *r)
{
	return (r->r_flags & (ZC_RELAY_F_FRESH | ZC_RELAY_F_KEEP_FDS)) ==
	               ZC_RELAY_F_FRESH &&
	       zc_loop_engine(r->r_loop) == ZC_ENGINE_EPOLL;
}

static void relay_run(struct zc_relay *r)
{
	uint64_t before = relay_bytes(r);
	int i, rc, again = 0;

	for (i = 0; i < 2; i++) {
		/* The other way is done: this one's end closes the relay. */
		if (r->r_dir[!i].d_state >= ZC_STATE_HALF_CLOSED &&
		    relay_close_releases(r))
			r->r_dir[i].d_flags |= ZC_DIR_F_CLOSE_FINS;
		rc = zc__dir_run(r->r_loop, &r->r_dir[i], relay_budget(r));
		if (rc < 0) {
			relay_close(r, relay_end_for(rc), rc);
			return;
		}
		again |= rc;
	}
	if (relay_bytes(r) != before)
		r->r_last = zc__loop_now(r->r_loop);
	if (r->r_dir[0].d_state == ZC_STATE_HALF_CLOSED &&
	    r->r_dir[1].d_state == ZC_STATE_HALF_CLOSED) {
		relay_close(r, ZC_END_EOF, 0);
		return;
	}
	if (!r->r_half &&
	    (r->r_dir[0].d_state == ZC_STATE_HALF_CLOSED ||
	     r->r_dir[1].d_state == ZC_STATE_HALF_CLOSED) &&
	    relay_half_start(r)) {
		relay_close(r, ZC_END_ERROR, -ENOMEM);
		return;
	}
	if (again)
		zc__task_queue(r->r_loop, &r->r_task);
}

static void relay_on_io(struct zc_io *io, unsigned ev)
{
	struct zc_side *s = container_of(io, struct zc_side, s_io);
	int err;

	/* A reset on a side no direction is using any more (its EOF was
	 * forwarded, the other way is quiet) would go unnoticed: check.
	 * A hang-up alone (both ways shut) has no error to fetch. */
	if ((ev & ZC_IO_SOERR) && (err = zc__sock_error(s->s_fd)) < 0) {
		relay_close(s->s_relay, relay_end_for(err), err);
		return;
	}
	if (ev & (ZC_IO_IN | ZC_IO_RDHUP | ZC_IO_ERR))
		s->s_ready |= ZC_SIDE_R;
	if (ev & (ZC_IO_RDHUP | ZC_IO_ERR))
		s->s_ready |= ZC_SIDE_HUP;
	if (ev & (ZC_IO_OUT | ZC_IO_ERR))
		s->s_ready |= ZC_SIDE_W;
	relay_run(s->s_relay);
}

static void relay_on_task(struct zc_task *t)
{
	relay_run(container_of(t, struct zc_relay, r_task));
}

static void relay_on_idle(void *arg)
{
	struct zc_relay *r = arg;
	uint64_t now = zc__loop_now(r->r_loop);
	uint64_t idle = relay_quiet_limit(r);

	/* A hand-over that was not attempted again in time (or the idle
	 * deadline came first, and a timed-out relay ends anyway). */
	if (relay_settling(r))
		zc__relay_settle_end(r);
	if (!idle)
		return; /* armed for the settling alone */
	if (now - r->r_last >= idle) {
		if (r->r_half && idle == (uint64_t)r->r_half_ms * 1000000ULL)
			relay_close(r, ZC_END_HALF_TIMEOUT, -ETIMEDOUT);
		else
			relay_close(r, ZC_END_TIMEOUT, -ETIMEDOUT);
		return;
	}
	/* Bytes moved since it was armed: wait for the rest. */
	if (zc__timer_arm_at(&r->r_idle, r->r_last + idle))
		relay_close(r, ZC_END_ERROR, -ENOMEM);
}

static void relay_fill_stats(const struct zc_relay *r, int end, int err,
                             struct zc_relay_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->dir[0] = r->r_dir[0].d_st;
	st->dir[1] = r->r_dir[1].d_st;
	st->end = end;
	st->error = err;
	st->mover = r->r_dir[0].d_ops->mover;
	st->engine = zc_loop_engine(r->r_loop);
	st->duration_ns = zc__clock_ns() - r->r_start;
}

/* Closes a side's fd, with a reset unless the session ended cleanly. */
static void relay_close_side(struct zc_relay *r, struct zc_side *s, int end)
{
	if (end != ZC_END_EOF)
		zc__sock_set_reset(s->s_fd);
	if (!(r->r_flags & ZC_RELAY_F_KEEP_FDS))
		close(s->s_fd);
}

/* Stops everything that could still call into the relay: its watchers,
 * its task, its timer, the loop's list of relays to abort. (The watches
 * are removed even when the fds close next: a fork, even one about to
 * exec, keeps the sockets and so their epoll watches alive.) */
static void relay_unhook(struct zc_relay *r)
{
	int i;

	r->r_closing = 1;
	for (i = 0; i < 2; i++)
		zc__io_del(r->r_loop, &r->r_side[i].s_io);
	zc__task_cancel(&r->r_task);
	zc__timer_disarm(&r->r_idle);
	zc__loop_disown(&r->r_own);
}

/* After relay_unhook and the directions' release: the engine lets go of
 * the sockets, the loop stops counting the relay, and it is freed. */
static void relay_free(struct zc_relay *r, const char *how, int err,
                       const struct zc_relay_stats *st)
{
	struct zc_loop *loop = r->r_loop;

	/* With io_uring the sockets are released (FIN or RST sent) only when
	 * the poll removals reach the kernel: before done says they are. */
	zc__loop_flush(loop);
	loop->st.relays_active--;
	zc__log(loop, ZC_LOG_DEBUG, "relay fds %d/%d ended: %s (%s)",
	        r->r_side[0].s_fd, r->r_side[1].s_fd, how, zc_strerror(err));
	if (r->r_done && st)
		r->r_done(r->r_arg, st);
	free(r);
}

/*
 * The only teardown path of a relay that ends here. Stops watching,
 * gives back pipes and buffers, closes (or resets) the sockets, reports
 * once, and frees the session. (A relay that leaves for another loop
 * ends through zc__relay_end_detached instead: its fds stay open.)
 */
static void relay_close(struct zc_relay *r, int end, int err)
{
	struct zc_relay_stats st;
	int i;

	if (r->r_closing)
		return;
	relay_unhook(r);
	for (i = 0; i < 2; i++) {
		zc__dir_release(r->r_loop, &r->r_dir[i]);
		zc__dir_set_state(r->r_loop, &r->r_dir[i], ZC_STATE_CLOSED);
	}
	relay_fill_stats(r, end, err, &st);
	for (i = 0; i < 2; i++)
		relay_close_side(r, &r->r_side[i], end);
	relay_free(r, zc_end_name(end), err, &st);
}

int zc__relay_settle_wait(struct zc_relay *r, uint64_t ns)
{
	uint64_t quiet = relay_quiet_limit(r);
	uint64_t due = zc__loop_now(r->r_loop) + ns;

	if (quiet && r->r_last + quiet < due)
		due = r->r_last + quiet;
	return zc__timer_arm_at(&r->r_idle, due);
}

void zc__relay_settle_end(struct zc_relay *r)
{
	int i;

	for (i = 0; i < 2; i++)
		r->r_dir[i].d_flags &= ~ZC_DIR_F_SETTLE;
	zc__task_queue(r->r_loop, &r->r_task);
}

void zc__relay_end_detached(struct zc_relay *r, struct zc_pipe *made[2])
{
	int i;

	relay_unhook(r);
	for (i = 0; i < 2; i++)
		zc__dir_detach_commit(r->r_loop, &r->r_dir[i], made[i]);
	relay_free(r, "detached", 0, NULL);
}

static void relay_abort_owned(struct zc_owned *o)
{
	relay_close(container_of(o, struct zc_relay, r_own), ZC_END_ABORTED,
	            -ECONNABORTED);
}

void zc_relay_opts_init(struct zc_relay_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->mover = ZC_MOVER_AUTO;
}

/* The 0.1 name of zc_relay_opts_init(), kept as an exported symbol so
 * that programs linked against 0.1.0 keep running. Deprecated. */
void zc_splice_opts_init(struct zc_relay_opts *opts)
{
	zc_relay_opts_init(opts);
}

/* 1 if completions, not readiness events, drive the relay's data. */
static int relay_by_completion(const struct zc_relay *r)
{
	return r->r_dir[0].d_ops->by_completion;
}

static int relay_watch(struct zc_relay *r)
{
	int i, err;

	for (i = 0; i < 2; i++) {
		err = zc__io_add(r->r_loop, &r->r_side[i].s_io,
		                 r->r_side[i].s_fd, zc__side_events(r, i),
		                 relay_on_io);
		if (err) {
			while (i-- > 0)
				zc__io_del(r->r_loop, &r->r_side[i].s_io);
			return err;
		}
	}
	return 0;
}

static void relay_init(struct zc_relay *r, struct zc_loop *loop, int fd_a,
                       int fd_b, const struct zc_relay_opts *opts)
{
	const struct zc_mover_ops *m;
	int fallback;

	r->r_loop = loop;
	m = zc__mover_pick(loop, opts->mover, &fallback);
	r->r_flags = opts->flags;
	r->r_idle_ms = opts->idle_timeout_ms;
	r->r_half_ms = opts->halfclose_timeout_ms;
	r->r_side[0] = (struct zc_side){.s_fd = fd_a, .s_relay = r};
	r->r_side[1] = (struct zc_side){.s_fd = fd_b, .s_relay = r};
	zc__dir_init(&r->r_dir[0], ZC_DIR_AB, &r->r_side[0], &r->r_side[1], m);
	zc__dir_init(&r->r_dir[1], ZC_DIR_BA, &r->r_side[1], &r->r_side[0], m);
	r->r_dir[0].d_st.fallback = r->r_dir[1].d_st.fallback = fallback;
	zc__list_init(&r->r_task.tk_node);
	r->r_task.tk_fn = relay_on_task;
	zc__list_init(&r->r_own.ow_node);
	zc__timer_init(&r->r_idle, loop, relay_on_idle, r);
	r->r_start = zc__clock_ns();
	r->r_last = zc__loop_now(loop);
}

int zc__relay_alloc(struct zc_relay **out, struct zc_loop *loop, int fd_a,
                    int fd_b, const struct zc_relay_opts *opts,
                    zc_relay_done_fn *done, void *arg)
{
	struct zc_relay *r;
	int err;

	if (!zc__mover_valid(opts->mover))
		return -EINVAL;
	if (!(opts->flags & ZC_RELAY_F_TRUSTED) &&
	    (err = zc__sock_check_pair(fd_a, fd_b, ZC_SOCK_F_PEER)) != 0)
		return err;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	loop->now = zc__clock_ns(); /* may be called after an idle spell */
	relay_init(r, loop, fd_a, fd_b, opts);
	r->r_done = done;
	r->r_arg = arg;
	*out = r;
	return 0;
}

int zc__relay_go(struct zc_relay *r)
{
	struct zc_loop *loop = r->r_loop;
	int fd_a = r->r_side[0].s_fd, fd_b = r->r_side[1].s_fd;
	uint64_t quiet = relay_quiet_limit(r);
	int err, fl_a = -1, fl_b = -1;

	if (!(r->r_flags & ZC_RELAY_F_FRESH) &&
	    ((err = fl_a = zc__fd_set_nonblock(fd_a, 1)) < 0 ||
	     (err = fl_b = zc__fd_set_nonblock(fd_b, 1)) < 0))
		goto fail;
	if (quiet && (err = zc__timer_arm_at(&r->r_idle, r->r_last + quiet)))
		goto fail;
	err = relay_watch(r);
	if (err)
		goto fail_timer;
	zc__sock_nodelay(fd_a);
	zc__sock_nodelay(fd_b);
	zc__loop_own(loop, &r->r_own, relay_abort_owned);
	if (relay_by_completion(r)) /* no readiness event will come */
		zc__task_queue(loop, &r->r_task);
	loop->st.relays_active++;
	loop->st.relays_total++;
	return 0;
fail_timer:
	zc__timer_disarm(&r->r_idle);
fail:
	/* The caller keeps the fds, with their flags as they were. */
	zc__fd_restore_flags(fd_a, fl_a);
	zc__fd_restore_flags(fd_b, fl_b);
	return err;
}

void zc__relay_run_soon(struct zc_relay *r)
{
	int i;

	for (i = 0; i < 2; i++)
		r->r_side[i].s_ready |= ZC_SIDE_R | ZC_SIDE_W;
	zc__task_queue(r->r_loop, &r->r_task);
}

int zc_relay_start(struct zc_relay **out, struct zc_loop *loop, int fd_a,
                   int fd_b, const struct zc_relay_opts *opts,
                   zc_relay_done_fn *done, void *arg)
{
	struct zc_relay_opts dflt;
	struct zc_relay *r;
	int err;

	if (!loop)
		return -EINVAL;
	if (!opts) {
		zc_relay_opts_init(&dflt);
		opts = &dflt;
	}
	err = zc__relay_alloc(&r, loop, fd_a, fd_b, opts, done, arg);
	if (err)
		return err;
	err = zc__relay_go(r);
	if (err) {
		free(r);
		return err;
	}
	if (out)
		*out = r;
	return 0;
}

void zc_relay_close(struct zc_relay *relay)
{
	relay_close(relay, ZC_END_ABORTED, -ECONNABORTED);
}

void zc_relay_get_stats(const struct zc_relay *relay, struct zc_relay_stats *st)
{
	relay_fill_stats(relay, ZC_END_NONE, 0, st);
}

void zc_loop_close_relays(struct zc_loop *loop)
{
	struct zc_list *n;

	/* Only relays: listeners and connects stay. A done callback may
	 * close other relays, so start over after each one. */
restart:
	for (n = loop->owned.next; n != &loop->owned; n = n->next) {
		struct zc_owned *o = container_of(n, struct zc_owned, ow_node);

		if (o->ow_abort == relay_abort_owned) {
			relay_abort_owned(o);
			goto restart;
		}
	}
}

/*
 * loop.c - the per-thread event loop: engine selection, the turn (tasks,
 * wait, timers), cross-thread posts, and ownership of what runs on it.
 */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "log.h"
#include "loop.h"
#include "sock.h"

int zc__io_add(struct zc_loop *loop, struct zc_io *io, int fd, unsigned ev,
               zc_io_fn *cb)
{
	int err;

	io->io_fd = fd;
	io->io_cb = cb;
	err = loop->ops->io_add(loop, io, ev);
	io->io_events = err ? 0 : ev;
	return err;
}

int zc__io_mod(struct zc_loop *loop, struct zc_io *io, unsigned ev)
{
	int err;

	if (io->io_events == ev)
		return 0;
	err = loop->ops->io_mod(loop, io, ev);
	if (!err)
		io->io_events = ev;
	return err;
}

void zc__io_del(struct zc_loop *loop, struct zc_io *io)
{
	if (!io->io_events)
		return;
	loop->ops->io_del(loop, io);
	io->io_events = 0;
}

void zc__task_queue(struct zc_loop *loop, struct zc_task *t)
{
	if (!zc__list_empty(&t->tk_node))
		return;
	zc__list_add_tail(&loop->tasks, &t->tk_node);
}

void zc__task_cancel(struct zc_task *t)
{
	zc__list_del(&t->tk_node);
}

void zc__loop_own(struct zc_loop *loop, struct zc_owned *o,
                  void (*abort_fn)(struct zc_owned *o))
{
	o->ow_abort = abort_fn;
	zc__list_add_tail(&loop->owned, &o->ow_node);
}

void zc__loop_disown(struct zc_owned *o)
{
	zc__list_del(&o->ow_node);
}

/* Runs the tasks queued before this turn; those they queue wait. */
static void loop_run_tasks(struct zc_loop *loop)
{
	struct zc_list batch;

	if (zc__list_empty(&loop->tasks))
		return;
	/* Move the queue to a local head, then pop one at a time, so a task
	 * may cancel any other task safely. */
	batch = loop->tasks;
	batch.next->prev = &batch;
	batch.prev->next = &batch;
	zc__list_init(&loop->tasks);
	while (!zc__list_empty(&batch)) {
		struct zc_task *t =
		        container_of(batch.next, struct zc_task, tk_node);

		zc__list_del(&t->tk_node);
		t->tk_fn(t);
	}
}

static void loop_post_drain(struct zc_io *io, unsigned events)
{
	struct zc_loop *loop = container_of(io, struct zc_loop, post_io);
	struct zc_post *p, *next;
	uint64_t v;

	if (read(loop->post_fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		zc__log(loop, ZC_LOG_WARN, "eventfd read: %s",
		        zc_strerror(zc__neg_errno()));
	pthread_mutex_lock(&loop->post_lock);
	p = loop->post_head;
	loop->post_head = NULL;
	loop->post_tail = &loop->post_head;
	pthread_mutex_unlock(&loop->post_lock);
	for (; p; p = next) {
		next = p->next;
		p->fn(loop, p->arg);
		free(p);
	}
}

int zc_loop_post(struct zc_loop *loop, zc_post_fn *fn, void *arg)
{
	struct zc_post *p;
	uint64_t one = 1;

	if (!loop || !fn)
		return -EINVAL;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->next = NULL;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&loop->post_lock);
	*loop->post_tail = p;
	loop->post_tail = &p->next;
	pthread_mutex_unlock(&loop->post_lock);
	/* An eventfd write only fails on counter overflow: it is then
	 * readable anyway. */
	(void)!write(loop->post_fd, &one, sizeof(one));
	return 0;
}

/* The ring mover's buffers (uring_bufs.c): at most 32768 (a power of
 * two, as the kernel's buffer ring wants) of at most 1 MiB. */
#define RING_BUFS_MAX 32768U
#define RING_BUF_MAX  (1024U * 1024U)

int zc__ring_opts_check(unsigned nbufs, unsigned size)
{
	if (nbufs && (nbufs > RING_BUFS_MAX || (nbufs & (nbufs - 1))))
		return -EINVAL;
	if (size > RING_BUF_MAX)
		return -EINVAL;
	return 0;
}

/* ZC_MOVER=copy|splice|ring|uring-splice in the environment: what an
 * "auto" mover means for this loop's relays. Read once per loop, never
 * per relay; anything else means auto. */
static int loop_env_mover(void)
{
	const char *env = getenv("ZC_MOVER");
	int m;

	/* zc_mover_name() says "?" past the last mover. */
	for (m = ZC_MOVER_SPLICE; env && strcmp(zc_mover_name(m), "?"); m++)
		if (strcmp(env, zc_mover_name(m)) == 0)
			return m;
	return ZC_MOVER_AUTO;
}

void zc_loop_opts_init(struct zc_loop_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->engine = ZC_ENGINE_AUTO;
	opts->log_level = ZC_LOG_INFO;
}

/*
 * Picks and starts the backend. Auto means io_uring where the kernel
 * allows it, epoll otherwise: on every row of docs/benchmarks.md the
 * io_uring engine moved as much or more, with fewer system calls per
 * connection (no epoll_ctl). ZC_ENGINE=epoll in the environment makes
 * auto use epoll. An explicit ZC_ENGINE_URING fails with ZC_ENOURING
 * when the kernel refuses io_uring; auto never fails for that reason.
 */
static int loop_start_engine(struct zc_loop *loop, int engine)
{
	const char *env = getenv("ZC_ENGINE");
	int auto_uring =
	        engine == ZC_ENGINE_AUTO && !(env && strcmp(env, "epoll") == 0);
	int err;

	if (engine == ZC_ENGINE_URING || auto_uring) {
		loop->ops = &zc__uring_ops; /* uring_none.c without liburing */
		err = loop->ops->init(loop);
		if (err == 0)
			return 0;
		if (engine == ZC_ENGINE_URING)
			return ZC_ENOURING;
		zc__log(loop, ZC_LOG_INFO, "io_uring unavailable (%s): epoll",
		        zc_strerror(err));
	}
	loop->ops = &zc__epoll_ops;
	return loop->ops->init(loop);
}

int zc_loop_new(struct zc_loop **out, const struct zc_loop_opts *opts)
{
	struct zc_loop_opts dflt;
	struct zc_busypoll bp;
	struct zc_loop *loop;
	int err;

	if (!out)
		return -EINVAL;
	if (!opts) {
		zc_loop_opts_init(&dflt);
		opts = &dflt;
	}
	if (opts->engine < ZC_ENGINE_AUTO || opts->engine > ZC_ENGINE_URING)
		return -EINVAL;
	if (zc__ring_opts_check(opts->ring_bufs, opts->ring_buf_size))
		return -EINVAL;
	if (zc__busypoll_init(&bp, opts->busy_poll_us, opts->busy_poll_cap))
		return -EINVAL;
	zc__sigpipe_ignore();
	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->log = opts->log;
	loop->log_arg = opts->log_arg;
	loop->log_level = opts->log_level;
	zc__list_init(&loop->tasks);
	zc__list_init(&loop->owned);
	zc__pipepool_init(&loop->pipes, opts->pipe_size, opts->max_pipes);
	loop->bufs.bp_max_free = 16;
	loop->mover = loop_env_mover();
	loop->ring_bufs = opts->ring_bufs;
	loop->ring_buf_size = opts->ring_buf_size;
	loop->ring_zc_min = opts->ring_zc_min;
	loop->bp = bp;
	pthread_mutex_init(&loop->post_lock, NULL);
	loop->post_tail = &loop->post_head;
	loop->post_fd = -1;
	loop->spare_fd = -1;
	loop->now = zc__clock_ns();
	err = loop_start_engine(loop, opts->engine);
	if (err)
		goto fail_free;
	loop->post_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->post_fd == -1) {
		err = zc__neg_errno();
		goto fail_fini;
	}
	err = zc__io_add(loop, &loop->post_io, loop->post_fd, ZC_IO_IN,
	                 loop_post_drain);
	if (err)
		goto fail_close;
	*out = loop;
	return 0;
fail_close:
	close(loop->post_fd);
fail_fini:
	loop->ops->fini(loop);
fail_free:
	pthread_mutex_destroy(&loop->post_lock);
	free(loop);
	return err;
}

/* Milliseconds until the next timer, rounded up; -1 when none. */
static int loop_timeout(struct zc_loop *loop, int max_ms)
{
	uint64_t next = zc__timer_next(&loop->timers);
	uint64_t ms;

	if (!zc__list_empty(&loop->tasks) || loop->stop)
		return 0;
	if (next == UINT64_MAX)
		return max_ms;
	if (next <= loop->now)
		return 0;
	ms = (next - loop->now + 999999) / 1000000;
	if (max_ms >= 0 && ms > (uint64_t)max_ms)
		return max_ms;
	return ms > 86400000 ? 86400000 : (int)ms;
}

int zc_loop_run_once(struct zc_loop *loop, int timeout_ms)
{
	int err;

	loop->stop = 0; /* a stop asked during this turn ends zc_loop_run */
	loop_run_tasks(loop);
	err = zc__busypoll_wait(loop, loop_timeout(loop, timeout_ms));
	loop->now = zc__clock_ns();
	zc__timer_run(&loop->timers, loop->now);
	return err < 0 ? err : 0;
}

int zc_loop_run(struct zc_loop *loop)
{
	int err = 0;

	do {
		err = zc_loop_run_once(loop, -1);
	} while (!loop->stop && !err);
	return err;
}

void zc_loop_stop(struct zc_loop *loop)
{
	loop->stop = 1;
}

int zc_loop_engine(const struct zc_loop *loop)
{
	return loop->ops->engine;
}

void zc_loop_get_stats(struct zc_loop *loop, struct zc_loop_stats *st)
{
	*st = loop->st;
	st->pipes_used = loop->pipes.pp_nused;
	st->pipes_free = loop->pipes.pp_nfree;
	st->pipe_size = loop->pipes.pp_want;
	st->bufs_used = loop->bufs.bp_nused;
	st->pipes_small = loop->pipes.pp_nsmall;
	st->spin_window_ns = loop->bp.window_ns;
}

void zc_loop_free(struct zc_loop *loop)
{
	struct zc_post *p, *next;

	if (!loop)
		return;
	while (!zc__list_empty(&loop->owned)) {
		struct zc_owned *o = container_of(loop->owned.next,
		                                  struct zc_owned, ow_node);

		zc__loop_disown(o);
		o->ow_abort(o);
	}
	zc__io_del(loop, &loop->post_io);
	close(loop->post_fd);
	for (p = loop->post_head; p; p = next) {
		next = p->next;
		free(p);
	}
	loop->ops->fini(loop);
	zc__timer_heap_free(&loop->timers);
	zc__pipepool_fini(&loop->pipes);
	zc__bufpool_fini(&loop->bufs);
	pthread_mutex_destroy(&loop->post_lock);
	free(loop);
}

/*
 * loop.h - the engine interface. The loop knows nothing of relays: it
 * watches fds, runs timers, deferred tasks and posted functions.
 */
#ifndef ZC_LOOP_H
#define ZC_LOOP_H

#include <pthread.h>
#include <stdint.h>

#include "busypoll.h"
#include "compat.h"
#include "pipepool.h"
#include "timer.h"

/* Events an io watcher asks for and receives. */
#define ZC_IO_IN    0x01
#define ZC_IO_OUT   0x02
#define ZC_IO_ERR   0x04 /* error or hang-up; always reported */
#define ZC_IO_RDHUP 0x08
/* Reported with ZC_IO_ERR when the fd has an error pending (EPOLLERR,
 * POLLERR), which SO_ERROR returns; a hang-up alone does not set it. */
#define ZC_IO_SOERR 0x10
#define ZC_IO_ET    0x100 /* edge-triggered (asked for, never reported) */

struct zc_io;
typedef void zc_io_fn(struct zc_io *io, unsigned events);

/* An fd watcher; embed it in the object that owns the fd. */
struct zc_io {
	int io_fd;
	unsigned io_events; /* what the backend watches for; 0: not added */
	zc_io_fn *io_cb;
	void *io_op; /* backend state (io_uring: the poll request) */
};

/* A backend (epoll or io_uring), chosen per loop at run time. */
struct zc_loop_ops {
	int engine; /* enum zc_engine */
	int (*init)(struct zc_loop *loop);
	void (*fini)(struct zc_loop *loop);
	int (*io_add)(struct zc_loop *loop, struct zc_io *io, unsigned ev);
	int (*io_mod)(struct zc_loop *loop, struct zc_io *io, unsigned ev);
	void (*io_del)(struct zc_loop *loop, struct zc_io *io);
	/* Waits up to timeout_ms (-1: no limit) and dispatches events.
	 * Returns how many it dispatched (>= 0) or -errno. */
	int (*wait)(struct zc_loop *loop, int timeout_ms);
	/* Optional: hands queued requests to the kernel now (io_uring
	 * holds a closed socket open until its poll removal is submitted). */
	void (*flush)(struct zc_loop *loop);
};

/* Work to redo on the next turn (a relay that used up its budget). */
struct zc_task {
	struct zc_list tk_node;
	void (*tk_fn)(struct zc_task *t);
};

/* Something that must be torn down with the loop (relays, listeners,
 * connect attempts, public timers). */
struct zc_owned {
	struct zc_list ow_node;
	void (*ow_abort)(struct zc_owned *o);
};

struct zc_post {
	struct zc_post *next;
	zc_post_fn *fn;
	void *arg;
};

struct zc_loop {
	const struct zc_loop_ops *ops;
	void *backend;
	uint64_t now; /* CLOCK_MONOTONIC ns, cached per turn */
	int stop;
	struct zc_timer_heap timers;
	struct zc_list tasks; /* struct zc_task, run once per turn */
	struct zc_list owned; /* struct zc_owned */
	struct zc_pipepool pipes;
	struct zc_bufpool bufs;
	/* What ZC_MOVER_AUTO means for relays of this loop: ZC_MOVER in
	 * the environment at zc_loop_new(), else auto (mover.c). */
	int mover;
	/* zc_loop_opts.ring_*: the ring mover's buffers (uring_bufs.c). */
	unsigned ring_bufs, ring_buf_size, ring_zc_min;
	/* Cross-thread posts: the only lock, and never on the data path. */
	pthread_mutex_t post_lock;
	struct zc_post *post_head, **post_tail;
	int post_fd; /* eventfd */
	/* A reserved fd (/dev/null) the listeners give up to shed a client
	 * when fds run out; one per loop, open while a listener runs. */
	int spare_fd;
	unsigned spare_users;
	struct zc_io post_io;
	zc_log_fn *log;
	void *log_arg;
	int log_level;
	struct zc_loop_stats st;
	struct zc_busypoll bp;
};

extern const struct zc_loop_ops zc__epoll_ops; /* loop_epoll.c */
/* loop_uring.c; without liburing uring_none.c's, whose init fails. */
extern const struct zc_loop_ops zc__uring_ops;

/* Validates zc_loop_opts.ring_bufs/ring_buf_size: 0 or -EINVAL. */
int zc__ring_opts_check(unsigned nbufs, unsigned size);

/* Tests: a negative errno makes the next io_uring set-up fail with it. */
extern int zc__uring_inject_err;
/* Tests: nonzero makes io_uring set-up skip DEFER_TASKRUN (as on kernels
 * before 6.1: COOP_TASKRUN then). */
extern int zc__uring_no_defer;
/* Tests: nonzero makes the kernel refuse a multishot recv armed with a
 * byte limit (-EINVAL), as kernels before 6.17 do. */
extern int zc__uring_inject_recv_einval;

/* Returns the loop's cached monotonic time in ns. */
static inline uint64_t zc__loop_now(const struct zc_loop *loop)
{
	return loop->now;
}

/* Watch helpers; they forward to the backend. Return 0 or -errno. */
int zc__io_add(struct zc_loop *loop, struct zc_io *io, int fd, unsigned ev,
               zc_io_fn *cb);
int zc__io_mod(struct zc_loop *loop, struct zc_io *io, unsigned ev);
/* Stops watching io; events already collected for it are dropped. */
void zc__io_del(struct zc_loop *loop, struct zc_io *io);

/* Ties o to the loop so that zc_loop_free() aborts it. */
void zc__loop_own(struct zc_loop *loop, struct zc_owned *o,
                  void (*abort_fn)(struct zc_owned *o));
/* Unties o; harmless if it is not tied. */
void zc__loop_disown(struct zc_owned *o);

/* Makes queued backend requests take effect now (see ops.flush). */
static inline void zc__loop_flush(struct zc_loop *loop)
{
	if (loop->ops->flush)
		loop->ops->flush(loop);
}

/* Queues t to run on the next turn (once, however often it is queued). */
void zc__task_queue(struct zc_loop *loop, struct zc_task *t);
/* Removes t from the queue; harmless if it is not queued. */
void zc__task_cancel(struct zc_task *t);

#endif

/*
 * loop_uring.c - the io_uring backend: readiness through multishot
 * POLL_ADD, then the movers' own non-blocking splice()/recv()/send().
 *
 * Why poll and not IORING_OP_SPLICE: an io_uring splice is always punted
 * to io-wq worker threads (docs/benchmarks.md, "uring-splice mover":
 * 1.8x the relay CPU per GB of splice(2), and iou-wrk threads besides).
 * Multishot poll keeps the data path identical to epoll's and removes
 * every epoll_ctl() system call:
 * arming and disarming are SQEs, submitted in one batch per turn.
 *
 * Lifetime: an SQE's user_data must stay valid until its last CQE (the
 * one without IORING_CQE_F_MORE). So each watched fd gets a small request
 * object owned by the backend. io_del() detaches it from its zc_io and
 * cancels it; the owner may free the zc_io at once, the request is freed
 * when its last CQE is reaped. Stale CQEs of a detached request are
 * dropped. Edge-triggered watchers are multishot polls (EPOLLET
 * semantics, like epoll); level-triggered ones are one-shot polls re-armed
 * after each event.
 *
 * The movers' data requests (recv into the buffer ring, send, SEND_ZC,
 * splice) live in uring_ops.c, the buffer ring in uring_bufs.c; they
 * share the request list, and this file's dispatch calls the completion
 * function each request's header names (its ops table) without knowing
 * what the request is.
 *
 * Ring set-up: SINGLE_ISSUER | DEFER_TASKRUN where the kernel takes them
 * (6.1+), else SINGLE_ISSUER | COOP_TASKRUN | TASKRUN_FLAG (6.0), fewer
 * flags on older kernels. SINGLE_ISSUER binds the ring to the thread that
 * creates it unless it starts disabled (R_DISABLED): then the thread that
 * enables it is the issuer. The daemon creates its loops on the main
 * thread and runs them on workers, so the ring is enabled by the first
 * wait(), on the loop's thread.
 *
 * DEFER_TASKRUN: the kernel's completion work (a poll wakeup, an accept,
 * a connect) waits until the issuer asks for completions, instead of
 * interrupting it at its next system call; work piles up and runs in one
 * batch per turn. Measured: relay CPU per short connection 0.79x epoll's
 * (COOP_TASKRUN: 0.96x), bulk CPU per GB level with epoll (COOP: about
 * 5 % above); docs/benchmarks.md. Completions then appear only through
 * io_uring_enter(GETEVENTS): every wait, even a non-blocking one, asks
 * for them.
 */
#include "compat.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <liburing.h>

#include "log.h"
#include "loop.h"
#include "uring-t.h"

int zc__uring_inject_err;
int zc__uring_no_defer;

#define UR_ENTRIES 1024

/* A watched fd's poll request. */
struct ur_req {
	struct ur_hdr h;
	struct zc_io *io; /* NULL once detached */
};

static ur_complete_fn ur_dispatch_poll;

static const struct ur_req_ops ur_poll_ops = {.complete = ur_dispatch_poll};

struct ur *zc__ur_of(const struct zc_loop *loop)
{
	return loop->ops == &zc__uring_ops ? loop->backend : NULL;
}

static unsigned ur_mask(unsigned ev)
{
	unsigned m = 0;

	if (ev & ZC_IO_IN)
		m |= POLLIN;
	if (ev & ZC_IO_OUT)
		m |= POLLOUT;
	if (ev & ZC_IO_RDHUP)
		m |= POLLRDHUP;
	return m;
}

static int ur_setup(struct io_uring *ring, int *disabled)
{
	static const unsigned flag_sets[] = {
	        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED |
	                IORING_SETUP_DEFER_TASKRUN,
	        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED |
	                IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	        IORING_SETUP_COOP_TASKRUN,
	        0,
	};
	struct io_uring_params p;
	size_t i;
	int err = -EINVAL;

	if (zc__uring_inject_err)
		return zc__uring_inject_err;
	for (i = zc__uring_no_defer ? 1 : 0;
	     i < countof(flag_sets) && err == -EINVAL; i++) {
		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = UR_ENTRIES * 8;
		err = io_uring_queue_init_params(UR_ENTRIES, ring, &p);
	}
	if (err)
		return err;
	*disabled = (p.flags & IORING_SETUP_R_DISABLED) != 0;
	/* Multishot poll is 5.13; CQE_SKIP (5.17) is a feature bit that
	 * proves a kernel at least that new. NODROP keeps CQEs on overflow. */
	if (!(p.features & IORING_FEAT_CQE_SKIP) ||
	    !(p.features & IORING_FEAT_NODROP)) {
		io_uring_queue_exit(ring);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int ur_init(struct zc_loop *loop)
{
	struct ur *ur = calloc(1, sizeof(*ur));
	const char *env;
	int err;

	if (!ur)
		return -ENOMEM;
	err = ur_setup(&ur->ring, &ur->disabled);
	if (err) {
		free(ur);
		zc__log(loop, ZC_LOG_INFO, "io_uring unavailable: %s",
		        zc_strerror(err));
		return err;
	}
	zc__list_init(&ur->reqs);
	/* Read once here, not on every accept or connect (uring.h). */
	env = getenv("ZC_URING_NET");
	ur->net = !env || strcmp(env, "poll") != 0;
	loop->backend = ur;
	return 0;
}

struct io_uring_sqe *zc__ur_sqe(struct ur *ur)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ur->ring);

	if (!sqe && !ur->disabled) {
		io_uring_submit(&ur->ring);
		sqe = io_uring_get_sqe(&ur->ring);
	}
	return sqe;
}

/* 1 while some request still waits for its final CQE. */
static int ur_any_armed(const struct ur *ur)
{
	const struct zc_list *n;

	for (n = ur->reqs.next; n != &ur->reqs; n = n->next) {
		const struct ur_hdr *h = (const void *)n; /* node is first */

		if (h->armed)
			return 1;
	}
	return 0;
}

/*
 * Cancels every poll and reaps the CQEs before the ring goes. The kernel
 * holds a polled socket open until its poll ends, and a ring torn down
 * with polls pending releases them later from a workqueue: a listening
 * socket would outlive the process for a moment, and a restarted daemon
 * could find its port still taken. Loop thread (the ring's issuer).
 */
static void ur_cancel_all(struct ur *ur)
{
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
	struct io_uring_sqe *sqe;
	uint64_t deadline = zc__clock_ns() + 2000000000ULL;
	struct io_uring_cqe *cqe;

	if (ur->disabled || !ur_any_armed(ur))
		return;
	sqe = zc__ur_sqe(ur);
	if (!sqe)
		return;
	io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
	io_uring_sqe_set_data(sqe, NULL);
	if (io_uring_submit(&ur->ring) < 0)
		return; /* not the issuer thread: leave it to the kernel */
	/* Bounded by time, not by rounds: with DEFER_TASKRUN one wait runs
	 * only a batch of the kernel's deferred work (thousands of
	 * cancelled requests take many rounds). */
	while (ur_any_armed(ur) && zc__clock_ns() < deadline) {
		if (io_uring_wait_cqe_timeout(&ur->ring, &cqe, &ts) != 0)
			continue;
		do {
			struct ur_hdr *h = io_uring_cqe_get_data(cqe);

			if (h && h->ops->reap)
				h->ops->reap(h, cqe);
			if (h && !(cqe->flags & IORING_CQE_F_MORE))
				h->armed = 0;
			io_uring_cqe_seen(&ur->ring, cqe);
		} while (io_uring_peek_cqe(&ur->ring, &cqe) == 0);
	}
}

static void ur_fini(struct zc_loop *loop)
{
	struct ur *ur = loop->backend;

	ur_cancel_all(ur);
	io_uring_queue_exit(&ur->ring);
	if (ur->bufs_fini)
		ur->bufs_fini(ur);
	while (!zc__list_empty(&ur->reqs)) {
		struct ur_hdr *h =
		        container_of(ur->reqs.next, struct ur_hdr, node);

		zc__list_del(&h->node);
		free(h);
	}
	free(ur);
	loop->backend = NULL;
}

static int ur_arm(struct ur *ur, struct ur_req *r, int fd, unsigned ev)
{
	struct io_uring_sqe *sqe = zc__ur_sqe(ur);

	if (!sqe)
		return -EBUSY;
	/* Multishot polls are edge-triggered only (LEVEL | MULTI is EINVAL).
	 * A level-triggered watcher gets a one-shot poll, re-armed after
	 * each event: still ready then, it fires again at once. */
	if (ev & ZC_IO_ET)
		io_uring_prep_poll_multishot(sqe, fd, ur_mask(ev));
	else
		io_uring_prep_poll_add(sqe, fd, ur_mask(ev));
	io_uring_sqe_set_data(sqe, r);
	r->h.armed = 1;
	return 0;
}

static int ur_add(struct zc_loop *loop, struct zc_io *io, unsigned ev)
{
	struct ur *ur = loop->backend;
	struct ur_req *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	r->h.ops = &ur_poll_ops;
	r->io = io;
	err = ur_arm(ur, r, io->io_fd, ev);
	if (err) {
		free(r);
		return err;
	}
	zc__list_add_tail(&ur->reqs, &r->h.node);
	io->io_op = r;
	return 0;
}

static void ur_del(struct zc_loop *loop, struct zc_io *io)
{
	struct ur *ur = loop->backend;
	struct ur_req *r = io->io_op;
	struct io_uring_sqe *sqe;

	io->io_op = NULL;
	if (!r)
		return;
	r->io = NULL;
	if (!r->h.armed) {
		/* Its last CQE is in: free it, unless that CQE is being
		 * dispatched right now (the callback detached it). */
		if (&r->h != ur->cur) {
			zc__list_del(&r->h.node);
			free(r);
		}
		return;
	}
	sqe = zc__ur_sqe(ur);
	if (!sqe)
		return; /* its final CQE comes when the fd's last ref goes */
	/*
	 * An async cancel, not IORING_OP_POLL_REMOVE: a remove fails with
	 * -EALREADY while a wakeup of the poll waits for its task work
	 * (with DEFER_TASKRUN, until our next wait), and the multishot poll
	 * then stays armed, holding the socket open after close(): a reset
	 * peer never got its RST and blocked (fault_io's send tests, about
	 * one run in 300). A cancel marks the poll cancelled either way.
	 */
	io_uring_prep_cancel64(sqe, (__u64)(uintptr_t)r, 0);
	io_uring_sqe_set_data(sqe, NULL);
	/* The cancel's own CQE is of no interest. */
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

static int ur_mod(struct zc_loop *loop, struct zc_io *io, unsigned ev)
{
	ur_del(loop, io);
	return ur_add(loop, io, ev);
}

/* A poll's CQE: the watcher's callback; re-arms an ended multishot. */
static void ur_dispatch_poll(struct zc_loop *loop, struct ur_hdr *h,
                             const struct io_uring_cqe *cqe)
{
	struct ur_req *r = container_of(h, struct ur_req, h);
	struct ur *ur = loop->backend;
	unsigned ev = 0;
	struct zc_io *io;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		r->h.armed = 0;
	io = r->io;
	if (io && cqe->res > 0) {
		if (cqe->res & POLLIN)
			ev |= ZC_IO_IN;
		if (cqe->res & POLLOUT)
			ev |= ZC_IO_OUT;
		if (cqe->res & POLLRDHUP)
			ev |= ZC_IO_RDHUP;
		if (cqe->res & (POLLERR | POLLHUP))
			ev |= ZC_IO_ERR;
		if (cqe->res & POLLERR)
			ev |= ZC_IO_SOERR;
		ur->cur = &r->h;
		io->io_cb(io, ev); /* may detach r, or free io */
		ur->cur = NULL;
	}
	if (r->h.armed)
		return;
	if (r->io && cqe->res < 0) {
		/* The poll itself failed: tell the owner, never re-arm into a
		 * loop of failures. */
		zc__log(loop, ZC_LOG_ERR, "fd %d: poll: %s", r->io->io_fd,
		        zc_strerror(cqe->res));
		io = r->io;
		io->io_op = NULL;
		zc__list_del(&r->h.node);
		free(r);
		/* r is gone: io_del is a no-op */
		io->io_cb(io, ZC_IO_ERR | ZC_IO_SOERR);
		return;
	}
	if (r->io) {
		/* The kernel ended the multishot (overflow, error): re-arm. */
		if (ur_arm(ur, r, r->io->io_fd, r->io->io_events) == 0)
			return;
		zc__log(loop, ZC_LOG_ERR, "fd %d: cannot re-arm poll",
		        r->io->io_fd);
		r->io->io_op = NULL;
	}
	zc__list_del(&r->h.node);
	free(r);
}

static void ur_dispatch(struct zc_loop *loop, struct io_uring_cqe *cqe)
{
	struct ur_hdr *h = io_uring_cqe_get_data(cqe);

	if (!h)
		return; /* a poll remove or cancel that failed: nothing to do */
	h->ops->complete(loop, h, cqe);
}

/*
 * Takes the next CQE off the ring into *out; 0 when there is none. The
 * ring's head moves past it before it is dispatched: a callback that
 * looks at the CQEs still in the ring (zc__uop_accept_take, when a
 * listener stops) must not see one that is being, or has been,
 * dispatched, or the client it carries would be handed out twice.
 */
static int ur_next_cqe(struct ur *ur, struct io_uring_cqe *out)
{
	struct io_uring_cqe *cqe;
	unsigned head;

	io_uring_for_each_cqe (&ur->ring, head, cqe) {
		*out = *cqe;
		io_uring_cq_advance(&ur->ring, 1);
		return 1;
	}
	return 0;
}

static int ur_wait(struct zc_loop *loop, int timeout_ms)
{
	struct ur *ur = loop->backend;
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe, copy;
	unsigned n = 0;
	int err;

	if (ur->disabled) {
		/* liburing 2.3 declares io_uring_enable_rings() but does not
		 * export it: register directly. */
		if (syscall(__NR_io_uring_register, ur->ring.ring_fd,
		            IORING_REGISTER_ENABLE_RINGS, NULL, 0) == -1)
			return zc__neg_errno();
		ur->disabled = 0;
	}
	if (timeout_ms == 0) {
		err = io_uring_submit_and_get_events(&ur->ring);
	} else {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000LL;
		err = io_uring_submit_and_wait_timeout(
		        &ur->ring, &cqe, 1, timeout_ms < 0 ? NULL : &ts, NULL);
	}
	if (err < 0 && err != -ETIME && err != -EINTR && err != -EAGAIN &&
	    err != -EBUSY)
		return err;
	loop->now = zc__clock_ns();
	while (ur_next_cqe(ur, &copy)) {
		ur_dispatch(loop, &copy);
		n++;
	}
	return (int)n;
}

/*
 * Submits what is queued. With DEFER_TASKRUN the kernel also finishes
 * the work this started (a removed poll lets go of its socket only in
 * the deferred completion work), so enter with GETEVENTS: completions
 * posted meanwhile wait in the CQ ring for the next turn.
 */
static void ur_flush(struct zc_loop *loop)
{
	struct ur *ur = loop->backend;

	if (ur->disabled)
		return;
	if (ur->ring.flags & IORING_SETUP_DEFER_TASKRUN)
		io_uring_submit_and_get_events(&ur->ring);
	else if (io_uring_sq_ready(&ur->ring))
		io_uring_submit(&ur->ring);
}

const struct zc_loop_ops zc__uring_ops = {
        .engine = ZC_ENGINE_URING,
        .init = ur_init,
        .fini = ur_fini,
        .flush = ur_flush,
        .io_add = ur_add,
        .io_mod = ur_mod,
        .io_del = ur_del,
        .wait = ur_wait,
};
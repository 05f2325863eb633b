/*
 * xfer_usplice.c - the uring-splice mover (experimental): socket ->
 * pooled pipe -> socket with IORING_OP_SPLICE requests, driven by
 * completions like the ring mover.
 *
 * io-wq and EAGAIN. The kernel runs every IORING_OP_SPLICE on an io-wq
 * worker thread (REQ_F_FORCE_ASYNC), and for an O_NONBLOCK socket with
 * nothing to read or no room to write it posts -EAGAIN as the result:
 * io-wq neither retries nor polls for this opcode (uring_ops.c has the
 * kernel details). A mover that resubmitted on -EAGAIN would make the
 * workers and the loop spin. So each half of a direction splices only
 * when it has reason to believe the socket is ready, and otherwise
 * waits with a one-shot IORING_OP_POLL_ADD (zc__uop_poll) first:
 *  - the drain (source -> pipe) is ready after its poll fired, and stays
 *    ready while each splice fills all the room it asked for; a short
 *    splice or -EAGAIN means "polled next time";
 *  - the pump (pipe -> destination) starts ready (a fresh socket has
 *    room), and stays ready while each splice sends all it was asked
 *    to; a short one or -EAGAIN means "poll for POLLOUT first".
 * So at most one splice per poll can find nothing to do, and no retry
 * happens without a completion in between: no worker and no loop spins.
 * A poll rather than a linked POLL_ADD -> SPLICE pair, because a drain
 * that waits for bytes must not hold a pipe: idle relays hold none.
 *
 * The EAGAIN ambiguity of socket -> pipe (socket empty, or no free pipe
 * slot when small segments filled them): with bytes in the pipe or a
 * pump in flight, -EAGAIN is taken as "pipe full" (ZC_DIR_F_PIPE_FULL)
 * and the drain waits for the pump's next completion, never for a poll
 * that would fire again at once; with an empty pipe it can only mean
 * "socket empty".
 *
 * The rest is the splice mover's: the direction counts the bytes in its
 * pipe exactly (d_inpipe), asks a drain for at most the room left and a
 * pump for what is there; a pipe is held only while bytes or a splice
 * are in it; when the pool has no pipe the drain copies one buffer with
 * recv() and sends it before splicing again (order kept). A splice the
 * kernel refuses (EINVAL, ENOSYS, ... : zc__splice_unsupported) turns
 * that half to copy for good, after the pipe is emptied: drains with
 * recv(), pumps through the buffer, on readiness from the same polls.
 * EOF: once the pipe is empty dir.c forwards the FIN. A completion's
 * error is kept (zc__dir_fail) and ends the relay at the next run.
 *
 * Hand-over (usplice_detach): the polls and splices are cancelled and
 * their completions awaited (-EAGAIN meanwhile); then the pipe and the
 * buffer hold everything, and travel as the splice mover's do.
 *
 * Teardown: the requests are cancelled and detached (uring.h). A splice
 * that io-wq already runs finishes on its own; its pipe is destroyed,
 * never reused. The cancels are submitted before the relay closes its
 * sockets: a splice resolves its fds when a worker starts it, so one
 * still queued must be cancelled before the fd numbers can be reused.
 * (A worker that has just passed its cancel check can still resolve a
 * number that another thread reuses at that instant; registered files
 * would close that window. One reason this mover is experimental.)
 */
#include "compat.h"

#include <poll.h>

#include "dir.h"
#include "log.h"
#include "uring.h"
#include "xfer.h"

/* Flags of struct zc_dir_usplice. */
#define USPLICE_F_RPOLL 0x1 /* rop is a poll, not a splice */
#define USPLICE_F_SPOLL 0x2 /* sop is a poll, not a splice */

int (*zc__usplice_seam)(int fd_in, int fd_out);

/* The kernel refused a splice: this half copies from now on. */
static void usplice_fallback(struct zc_dir *d, unsigned flag, int err)
{
	d->d_flags |= flag;
	if (!d->d_st.fallback)
		d->d_st.fallback = err;
	zc__log(zc__dir_loop(d), ZC_LOG_DEBUG,
	        "dir %d: io_uring splice: %s: copying", d->d_idx,
	        zc_strerror(err));
}

/* 1 while bytes wait to leave through the buffer (a copied drain, or a
 * pump that copies out of the pipe). */
static int usplice_copy_pending(const struct zc_dir *d)
{
	return d->d_boff != d->d_blen ||
	       ((d->d_flags & ZC_DIR_F_PUMP_COPY) && d->d_inpipe);
}

/* 1 while a splice in flight may still use the pipe. */
static int usplice_pipe_busy(const struct zc_dir *d)
{
	return (d->d_m.usplice.rop &&
	        !(d->d_m.usplice.flags & USPLICE_F_RPOLL)) ||
	       (d->d_m.usplice.sop &&
	        !(d->d_m.usplice.flags & USPLICE_F_SPOLL));
}

/* Idle directions hold nothing: an empty pipe goes back once no splice
 * uses it, and so does an empty buffer. */
static void usplice_release_empty(struct zc_loop *loop, struct zc_dir *d)
{
	if (!usplice_pipe_busy(d))
		zc__dir_release_empty(loop, d);
}

/* A completion came: give back what is empty now (so that a reader who
 * got the bytes sees no pipe held), and run the directions next turn. */
static void usplice_wake(struct zc_dir *d)
{
	usplice_release_empty(zc__dir_loop(d), d);
	zc__dir_wake(d);
}

/* The kernel's -ERESTARTSYS, which an io-wq splice can complete with
 * when its worker is interrupted (not in the user-space headers). */
#define ZC_ERESTARTSYS 512

/* A completion that moved nothing and means "ask again": interrupted
 * (-EINTR, or -ERESTARTSYS leaked from io-wq: seen once in about 7,000
 * hand-over tests under load, where it ended the relay with error -512),
 * or cancelled by us. */
static int usplice_retry(int res)
{
	return res == -EINTR || res == -ZC_ERESTARTSYS || res == -ECANCELED;
}

/* A poll's completion: the side is ready (or failed: the splice will
 * tell how), unless the poll itself failed. */
static void usplice_polled(struct zc_dir *d, struct zc_side *s, unsigned bit,
                           int res)
{
	if (res >= 0)
		s->s_ready |= bit;
	else if (!usplice_retry(res))
		zc__dir_fail(d, res);
	usplice_wake(d);
}

static void usplice_on_rpoll(void *arg, int res, int id, int more)
{
	struct zc_dir *d = arg;

	d->d_m.usplice.rop = NULL;
	d->d_m.usplice.flags &= ~USPLICE_F_RPOLL;
	usplice_polled(d, d->d_src, ZC_SIDE_R, res);
}

static void usplice_on_spoll(void *arg, int res, int id, int more)
{
	struct zc_dir *d = arg;

	d->d_m.usplice.sop = NULL;
	d->d_m.usplice.flags &= ~USPLICE_F_SPOLL;
	usplice_polled(d, d->d_dst, ZC_SIDE_W, res);
}

static void usplice_on_drain(void *arg, int res, int id, int more)
{
	struct zc_dir *d = arg;

	d->d_m.usplice.rop = NULL;
	if (res > 0) {
		d->d_inpipe += (size_t)res;
		zc__dir_read(d, (size_t)res);
		if ((size_t)res < d->d_m.usplice.rask)
			d->d_src->s_ready &= ~ZC_SIDE_R;
	} else if (res == 0) {
		zc__dir_eof(zc__dir_loop(d), d);
	} else if (res == -EAGAIN) {
		if (d->d_inpipe || d->d_m.usplice.sop)
			d->d_flags |= ZC_DIR_F_PIPE_FULL;
		else
			d->d_src->s_ready &= ~ZC_SIDE_R;
	} else if (zc__splice_unsupported(res)) {
		usplice_fallback(d, ZC_DIR_F_COPY, res);
	} else if (!usplice_retry(res)) {
		zc__dir_fail(d, res);
	}
	usplice_wake(d);
}

static void usplice_on_pump(void *arg, int res, int id, int more)
{
	struct zc_dir *d = arg;

	d->d_m.usplice.sop = NULL;
	if (res > 0) {
		d->d_inpipe -= (size_t)res;
		zc__dir_count(d, (size_t)res, 1);
		d->d_flags &= ~ZC_DIR_F_PIPE_FULL;
		if ((size_t)res < d->d_m.usplice.sask)
			d->d_dst->s_ready &= ~ZC_SIDE_W;
	} else if (res == -EAGAIN) {
		d->d_dst->s_ready &= ~ZC_SIDE_W;
	} else if (res == 0) {
		zc__dir_fail(d, -EIO); /* the pipe held bytes we counted */
	} else if (zc__splice_unsupported(res)) {
		usplice_fallback(d, ZC_DIR_F_PUMP_COPY, res);
	} else if (!usplice_retry(res)) {
		zc__dir_fail(d, res);
	}
	usplice_wake(d);
}

/* Submits a splice, or (tests) completes it at once with the seam's
 * refusal, as the kernel would. */
static int usplice_splice(struct zc_loop *loop, struct zc_dir *d, int fd_in,
                          int fd_out, size_t len, zc_uop_fn *cb,
                          struct zc_uop **op)
{
	int err = zc__usplice_seam ? zc__usplice_seam(fd_in, fd_out) : 0;

	if (!err)
		return zc__uop_splice(loop, fd_in, fd_out, len, cb, d, op);
	cb(d, err, -1, 0);
	return 0;
}

static int usplice_poll(struct zc_loop *loop, struct zc_dir *d, int fd,
                        unsigned mask, zc_uop_fn *cb, struct zc_uop **op,
                        unsigned flag)
{
	int err = zc__uop_poll(loop, fd, mask, cb, d, op);

	if (!err)
		d->d_m.usplice.flags |= flag;
	return err;
}

/* Bytes in the buffer (copied after a pipe shortage, or out of the pipe
 * once the destination refused splice) leave synchronously while the
 * destination takes them. Returns 1 if bytes moved, 0, or -errno. */
static int usplice_pump_copy(struct zc_loop *loop, struct zc_dir *d)
{
	int n, moved = 0;

	while (usplice_copy_pending(d) && (d->d_dst->s_ready & ZC_SIDE_W)) {
		n = zc__copy_pump(loop, d); /* -EAGAIN clears ZC_SIDE_W */
		if (n > 0)
			moved = 1;
		else if (n != -EAGAIN)
			return n;
	}
	if (!usplice_copy_pending(d))
		return moved;
	n = usplice_poll(loop, d, d->d_dst->s_fd, POLLOUT, usplice_on_spoll,
	                 &d->d_m.usplice.sop, USPLICE_F_SPOLL);
	return n ? n : moved;
}

/* Pipe -> destination. Returns 1 if bytes moved here, 0, or -errno. */
static int usplice_pump(struct zc_loop *loop, struct zc_dir *d)
{
	if (d->d_m.usplice.sop)
		return 0;
	if (usplice_copy_pending(d))
		return usplice_pump_copy(loop, d);
	if (!d->d_inpipe)
		return 0;
	if (!(d->d_dst->s_ready & ZC_SIDE_W))
		return usplice_poll(loop, d, d->d_dst->s_fd, POLLOUT,
		                    usplice_on_spoll, &d->d_m.usplice.sop,
		                    USPLICE_F_SPOLL);
	d->d_m.usplice.sask = d->d_inpipe;
	return usplice_splice(loop, d, d->d_pipe->p_rfd, d->d_dst->s_fd,
	                      d->d_m.usplice.sask, usplice_on_pump,
	                      &d->d_m.usplice.sop);
}

static int usplice_poll_src(struct zc_loop *loop, struct zc_dir *d)
{
	return usplice_poll(loop, d, d->d_src->s_fd, POLLIN | POLLRDHUP,
	                    usplice_on_rpoll, &d->d_m.usplice.rop,
	                    USPLICE_F_RPOLL);
}

/* One recv() into the buffer: no pipe to be had (the client never sees
 * the shortage), or the kernel refused splice from this source.
 * Returns 1 if bytes came, 0, or -errno. */
static int usplice_drain_copy(struct zc_loop *loop, struct zc_dir *d)
{
	int n;

	n = zc__copy_drain(loop, d); /* -EAGAIN clears ZC_SIDE_R */
	if (n > 0)
		return 1;
	if (n == 0) {
		zc__dir_eof(loop, d);
		return 1;
	}
	return n == -EAGAIN ? usplice_poll_src(loop, d) : n;
}

/* Source -> pipe. Returns 1 if bytes moved here, 0, or -errno. */
static int usplice_drain(struct zc_loop *loop, struct zc_dir *d)
{
	if (d->d_m.usplice.rop ||
	    (d->d_flags & (ZC_DIR_F_EOF | ZC_DIR_F_PIPE_FULL)))
		return 0;
	if (d->d_boff != d->d_blen) /* the buffer goes out first */
		return 0;
	if (d->d_pipe && d->d_inpipe >= d->d_pipe->p_size)
		return 0;
	if ((d->d_flags & ZC_DIR_F_COPY) && d->d_inpipe)
		return 0; /* the pipe's bytes leave before any copied */
	if (!(d->d_src->s_ready & ZC_SIDE_R))
		return usplice_poll_src(loop, d);
	if (d->d_flags & ZC_DIR_F_COPY)
		return usplice_drain_copy(loop, d);
	if (!d->d_pipe && zc__pipe_get(&loop->pipes, &d->d_pipe)) {
		loop->st.pipe_shortage++;
		return usplice_drain_copy(loop, d);
	}
	d->d_m.usplice.rask = d->d_pipe->p_size - d->d_inpipe;
	return usplice_splice(loop, d, d->d_src->s_fd, d->d_pipe->p_wfd,
	                      d->d_m.usplice.rask, usplice_on_drain,
	                      &d->d_m.usplice.rop);
}

/* Returns 1 when it moved bytes itself (copies after a pipe shortage
 * or a refused splice: run again next turn), 0, or -errno. Nothing
 * while a hand-over settles the direction. */
static int usplice_run(struct zc_loop *loop, struct zc_dir *d, size_t budget)
{
	int rc, moved;

	if (d->d_flags & ZC_DIR_F_SETTLE)
		return 0;
	/* Pump, drain, and pump again what a copying drain just read. */
	if ((rc = usplice_pump(loop, d)) < 0)
		return rc;
	moved = rc;
	if ((rc = usplice_drain(loop, d)) < 0)
		return rc;
	moved |= rc;
	if ((rc = usplice_pump(loop, d)) < 0)
		return rc;
	usplice_release_empty(loop, d);
	return moved | rc;
}

/* Cancels the requests (io-wq may still finish a splice already
 * running: the pipe is then destroyed, never reused). */
static void usplice_release(struct zc_loop *loop, struct zc_dir *d)
{
	int busy = usplice_pipe_busy(d);

	if (d->d_m.usplice.rop)
		zc__uop_cancel(loop, d->d_m.usplice.rop, 1);
	if (d->d_m.usplice.sop)
		zc__uop_cancel(loop, d->d_m.usplice.sop, 1);
	if (d->d_m.usplice.rop || d->d_m.usplice.sop)
		zc__loop_flush(loop); /* before the relay closes its fds */
	d->d_m.usplice.rop = d->d_m.usplice.sop = NULL;
	d->d_m.usplice.flags &= ~(USPLICE_F_RPOLL | USPLICE_F_SPOLL);
	if (busy && d->d_pipe) {
		/* A running splice may still fill or empty it. */
		zc__pipe_put(&loop->pipes, d->d_pipe, 1);
		d->d_pipe = NULL;
		d->d_inpipe = 0;
	}
}

/* Bytes in the pipe or buffer, or a request that may still move some. */
static int usplice_holds(const struct zc_dir *d)
{
	return zc__dir_pending(d) || d->d_m.usplice.sop || d->d_m.usplice.rop;
}

/*
 * Settles the direction for a hand-over: its polls and splices are
 * cancelled. A splice io-wq has not started ends with -ECANCELED, one
 * it runs completes (it never blocks: SPLICE_F_NONBLOCK) and its bytes
 * are counted as usual. Once none is left, all the direction holds is
 * in the pipe and the buffer, as with the splice mover; -EAGAIN until
 * then.
 */
static int usplice_detach(struct zc_loop *loop, struct zc_dir *d)
{
	if (d->d_m.usplice.rop)
		zc__uop_cancel(loop, d->d_m.usplice.rop, 0);
	if (d->d_m.usplice.sop)
		zc__uop_cancel(loop, d->d_m.usplice.sop, 0);
	return d->d_m.usplice.rop || d->d_m.usplice.sop ? -EAGAIN : 0;
}

/* An adopted pipe's bytes go out first: a drain only adds to its end,
 * and the pump empties it. Both sockets count as ready at the first run
 * (zc__relay_run_soon): a splice that finds nothing polls after. */
static int usplice_adopt(struct zc_loop *loop, struct zc_dir *d)
{
	return 0;
}

const struct zc_mover_ops zc__mover_usplice = {
        .name = "uring-splice",
        .mover = ZC_MOVER_URING_SPLICE,
        .by_completion = 1,
        .fallback = ZC_MOVER_SPLICE,
        .prepare = zc__uop_splice_init,
        .run = usplice_run,
        .holds = usplice_holds,
        .release = usplice_release,
        .detach = usplice_detach,
        .adopt = usplice_adopt,
};

/*
 * dir_handover.c - one direction leaving its loop (detach) and joining
 * another (adopt), with every byte it holds (docs/internals/relay-state.md).
 *
 * What a detached direction holds travels in one pipe. The readiness
 * movers hold bytes in a pipe, a buffer, or (a pipe emptied through the
 * buffer) both, the buffer's being the older; the ring mover holds them
 * in its queue of ring buffers (mover.h's held/gather). The pipe alone
 * travels as it is. Other bytes are written into a new pipe, followed
 * by a copy of the old pipe's bytes, so the order holds. The io_uring
 * movers settle first (their requests stopped: -EAGAIN until then).
 * Nothing else is changed until both directions are prepared: a failure
 * leaves the relay as it was, running.
 */
#include "compat.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "dir.h"

#define PAGE 4096U

static int phase_of(const struct zc_dir *d)
{
	if (d->d_state >= ZC_STATE_HALF_CLOSED)
		return ZC_PHASE_EOF_SENT;
	return (d->d_flags & ZC_DIR_F_EOF) ? ZC_PHASE_EOF_READ : ZC_PHASE_OPEN;
}

/* Copies the len bytes of from (left in place, by tee(2) through a
 * scratch pipe) to the end of to, packed into whole pages. */
static int pipe_append_copy(struct zc_loop *loop, struct zc_pipe *from,
                            size_t len, struct zc_pipe *to)
{
	struct zc_pipe *t;
	size_t done;
	ssize_t k;
	char *chunk;
	int err;

	err = zc__pipe_get(&loop->pipes, &t);
	if (err)
		return err;
	err = zc__pipe_grow(&loop->pipes, t, from->p_size);
	chunk = err ? NULL : malloc(ZC_BUF_SIZE);
	if (!err && !chunk)
		err = -ENOMEM;
	for (done = 0; !err && done < len; done += (size_t)k) {
		k = tee(from->p_rfd, t->p_wfd, len - done, SPLICE_F_NONBLOCK);
		if (k <= 0)
			err = k < 0 && errno != EAGAIN ? zc__neg_errno()
			                               : -ENOBUFS;
	}
	for (done = 0; !err && done < len; done += (size_t)k) {
		k = read(t->p_rfd, chunk,
		         ZC_MIN(len - done, (size_t)ZC_BUF_SIZE));
		if (k <= 0)
			err = -EIO;
		else
			err = zc__pipe_write_all(to, chunk, (size_t)k);
	}
	free(chunk);
	zc__pipe_put(&loop->pipes, t, 1);
	return err;
}

/* Bytes the mover holds outside the pipe and the buffer. */
static size_t mover_held(const struct zc_dir *d)
{
	return d->d_ops->held ? d->d_ops->held(d) : 0;
}

/*
 * A new pipe holding the buffer's unsent bytes, then the mover's own
 * (the ring's queue), then the pipe's: that is their age, oldest first
 * (a mover that holds bytes of its own uses neither buffer nor pipe for
 * them). The pipe's bytes are copied, packed, not moved: a spliced
 * pipe's pages may be partly filled, and a new pipe cannot grow past
 * pipe-max-size to take them as they lie. The direction's own pipe,
 * buffer and queue are left as they were.
 */
static int pipe_gather(struct zc_loop *loop, struct zc_dir *d, size_t m,
                       struct zc_pipe **out)
{
	size_t b = d->d_blen - d->d_boff, p = d->d_inpipe;
	size_t need = (b + m + p + PAGE - 1) / PAGE * PAGE;
	struct zc_pipe *n;
	int err;

	err = zc__pipe_get(&loop->pipes, &n);
	if (err)
		return err;
	err = zc__pipe_grow(&loop->pipes, n, need);
	if (!err && b)
		err = zc__pipe_write_all(n, d->d_buf->b_data + d->d_boff, b);
	if (!err && m)
		err = d->d_ops->gather(loop, d, n);
	if (!err && p)
		err = pipe_append_copy(loop, d->d_pipe, p, n);
	if (err) {
		zc__pipe_put(&loop->pipes, n, 1);
		return err;
	}
	*out = n;
	return 0;
}

int zc__dir_settle(struct zc_loop *loop, struct zc_dir *d)
{
	if (!d->d_ops->detach)
		return -EOPNOTSUPP;
	if (d->d_err)
		return d->d_err; /* the relay is ending anyway */
	d->d_flags |= ZC_DIR_F_SETTLE;
	return d->d_ops->detach(loop, d);
}

int zc__dir_detach_prepare(struct zc_loop *loop, struct zc_dir *d,
                           struct zc_dir_state *ds, struct zc_pipe **made)
{
	size_t held, m;
	int err;

	*made = NULL;
	m = mover_held(d);
	held = zc__dir_pending(d) + m;
	if (held > UINT32_MAX)
		return -ENOBUFS;
	ds->st = d->d_st;
	ds->phase = phase_of(d);
	ds->pipe_rd = ds->pipe_wr = -1;
	ds->inpipe = (uint32_t)held;
	if (!held)
		return 0;
	if (d->d_blen != d->d_boff || m) {
		err = pipe_gather(loop, d, m, made);
		if (err)
			return err;
		ds->pipe_rd = (*made)->p_rfd;
		ds->pipe_wr = (*made)->p_wfd;
	} else {
		ds->pipe_rd = d->d_pipe->p_rfd;
		ds->pipe_wr = d->d_pipe->p_wfd;
	}
	return 0;
}

void zc__dir_detach_undo(struct zc_loop *loop, struct zc_pipe *made)
{
	if (made)
		zc__pipe_put(&loop->pipes, made, 1);
}

void zc__dir_detach_commit(struct zc_loop *loop, struct zc_dir *d,
                           struct zc_pipe *made)
{
	int rfd, wfd; /* recorded by prepare; now the caller's */

	if (made) {
		zc__pipe_take(&loop->pipes, made, &rfd, &wfd);
	} else if (d->d_pipe && d->d_inpipe) {
		zc__pipe_take(&loop->pipes, d->d_pipe, &rfd, &wfd);
		d->d_pipe = NULL;
		d->d_inpipe = 0;
	}
	/* What is left is empty, or copied into made: back to the pools. */
	zc__dir_release(loop, d);
	zc__dir_set_state(loop, d, ZC_STATE_CLOSED);
}

int zc__dir_adopt(struct zc_loop *loop, struct zc_dir *d,
                  const struct zc_dir_state *ds)
{
	int fallback = d->d_st.fallback, err;

	if (!d->d_ops->adopt)
		return -EOPNOTSUPP;
	if (ds->inpipe) {
		err = zc__pipe_adopt(&loop->pipes, ds->pipe_rd, ds->pipe_wr,
		                     &d->d_pipe);
		if (err)
			return err;
		d->d_inpipe = ds->inpipe;
	}
	d->d_st = ds->st;
	if (!d->d_st.fallback)
		d->d_st.fallback = fallback;
	if (ds->phase == ZC_PHASE_EOF_SENT)
		zc__dir_set_state(loop, d, ZC_STATE_HALF_CLOSED);
	else if (ds->phase == ZC_PHASE_EOF_READ)
		zc__dir_eof(loop, d);
	err = d->d_ops->adopt(loop, d);
	if (err)
		zc__dir_adopt_undo(loop, d);
	return err;
}

void zc__dir_adopt_undo(struct zc_loop *loop, struct zc_dir *d)
{
	int rfd, wfd; /* the caller's again, open */

	if (!d->d_pipe)
		return;
	zc__pipe_take(&loop->pipes, d->d_pipe, &rfd, &wfd);
	d->d_pipe = NULL;
	d->d_inpipe = 0;
}

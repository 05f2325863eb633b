/*
 * conn_handover.c - one direction leaving its loop (detach) and joining
 * another (adopt), with every byte it holds (docs/internals/relay-state.md).
 *
 * What a detached direction holds travels in one pipe. The readiness
 * movers hold bytes in a pipe, a buffer, or (a pipe emptied through the
 * buffer) both, the buffer's being the older. The pipe alone travels as
 * it is. A buffer's bytes are written into a new pipe, followed by a
 * copy of the old pipe's bytes, so the order holds. Nothing is changed
 * until both directions are prepared: a failure leaves the relay as it
 * was, running.
 */
#include "compat.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "conn.h"

#define PAGE 4096U

static int phase_of(const struct zc_conn *c)
{
	if (c->c_state >= ZC_STATE_HALF_CLOSED)
		return ZC_PHASE_EOF_SENT;
	return (c->c_flags & ZC_CONN_F_EOF) ? ZC_PHASE_EOF_READ : ZC_PHASE_OPEN;
}

/* Writes len bytes from at into the pipe p, which has room for them.
 * 0 or -errno. */
static int pipe_write_all(struct zc_pipe *p, const char *at, size_t len)
{
	size_t done;
	ssize_t k;

	for (done = 0; done < len; done += (size_t)k) {
		k = write(p->p_wfd, at + done, len - done);
		if (k <= 0)
			return k < 0 && errno != EAGAIN ? zc__neg_errno()
			                                : -ENOBUFS;
	}
	return 0;
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
			err = pipe_write_all(to, chunk, (size_t)k);
	}
	free(chunk);
	zc__pipe_put(&loop->pipes, t, 1);
	return err;
}

/*
 * A new pipe holding the buffer's unsent bytes, then the pipe's (the
 * buffer's are the older). The pipe's bytes are copied, packed, not
 * moved: a spliced pipe's pages may be partly filled, and a new pipe
 * cannot grow past pipe-max-size to take them as they lie. The
 * direction's own pipe and buffer are left as they were.
 */
static int pipe_gather(struct zc_loop *loop, struct zc_conn *c,
                       struct zc_pipe **out)
{
	size_t b = c->c_blen - c->c_boff, p = c->c_inpipe;
	size_t need = (b + p + PAGE - 1) / PAGE * PAGE;
	struct zc_pipe *n;
	int err;

	err = zc__pipe_get(&loop->pipes, &n);
	if (err)
		return err;
	err = zc__pipe_grow(&loop->pipes, n, need);
	if (!err)
		err = pipe_write_all(n, c->c_buf->b_data + c->c_boff, b);
	if (!err && p)
		err = pipe_append_copy(loop, c->c_pipe, p, n);
	if (err) {
		zc__pipe_put(&loop->pipes, n, 1);
		return err;
	}
	*out = n;
	return 0;
}

int zc__conn_detach_prepare(struct zc_loop *loop, struct zc_conn *c,
                            struct zc_dir_state *d, struct zc_pipe **made)
{
	size_t held = zc__conn_pending(c);
	int err;

	*made = NULL;
	if (!c->c_ops->detach)
		return -EOPNOTSUPP;
	if (c->c_err)
		return c->c_err; /* the relay is ending anyway */
	err = c->c_ops->detach(loop, c);
	if (err)
		return err;
	d->st = c->c_st;
	d->phase = phase_of(c);
	d->pipe_rd = d->pipe_wr = -1;
	d->inpipe = (uint32_t)held;
	if (!held)
		return 0;
	if (c->c_blen != c->c_boff) {
		err = pipe_gather(loop, c, made);
		if (err)
			return err;
		d->pipe_rd = (*made)->p_rfd;
		d->pipe_wr = (*made)->p_wfd;
	} else {
		d->pipe_rd = c->c_pipe->p_rfd;
		d->pipe_wr = c->c_pipe->p_wfd;
	}
	return 0;
}

void zc__conn_detach_undo(struct zc_loop *loop, struct zc_pipe *made)
{
	if (made)
		zc__pipe_put(&loop->pipes, made, 1);
}

void zc__conn_detach_commit(struct zc_loop *loop, struct zc_conn *c,
                            struct zc_pipe *made)
{
	int rfd, wfd; /* recorded by prepare; now the caller's */

	if (made) {
		zc__pipe_take(&loop->pipes, made, &rfd, &wfd);
	} else if (c->c_pipe && c->c_inpipe) {
		zc__pipe_take(&loop->pipes, c->c_pipe, &rfd, &wfd);
		c->c_pipe = NULL;
		c->c_inpipe = 0;
	}
	/* What is left is empty, or copied into made: back to the pools. */
	zc__conn_release(loop, c);
	zc__conn_set_state(loop, c, ZC_STATE_CLOSED);
}

int zc__conn_adopt(struct zc_loop *loop, struct zc_conn *c,
                   const struct zc_dir_state *d)
{
	int fallback = c->c_st.fallback, err;

	if (!c->c_ops->adopt)
		return -EOPNOTSUPP;
	if (d->inpipe) {
		err = zc__pipe_adopt(&loop->pipes, d->pipe_rd, d->pipe_wr,
		                     &c->c_pipe);
		if (err)
			return err;
		c->c_inpipe = d->inpipe;
	}
	c->c_st = d->st;
	if (!c->c_st.fallback)
		c->c_st.fallback = fallback;
	if (d->phase == ZC_PHASE_EOF_SENT)
		zc__conn_set_state(loop, c, ZC_STATE_HALF_CLOSED);
	else if (d->phase == ZC_PHASE_EOF_READ)
		zc__conn_eof(loop, c);
	err = c->c_ops->adopt(loop, c);
	if (err)
		zc__conn_adopt_undo(loop, c);
	return err;
}

void zc__conn_adopt_undo(struct zc_loop *loop, struct zc_conn *c)
{
	int rfd, wfd; /* the caller's again, open */

	if (!c->c_pipe)
		return;
	zc__pipe_take(&loop->pipes, c->c_pipe, &rfd, &wfd);
	c->c_pipe = NULL;
	c->c_inpipe = 0;
}

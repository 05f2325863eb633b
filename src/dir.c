/*
 * dir.c - one direction of a relay, whatever moves its bytes.
 *
 * Rules (docs/design.md, "One direction"):
 *  - the mover (mover.h) moves bytes; this file owns what every mover
 *    shares: the state, the EOF, the first error, the byte counts, the
 *    pipe and buffer going back to their pools, and the FIN;
 *  - source EOF: once the mover holds nothing, shutdown(dst, SHUT_WR)
 *    forwards the FIN and this direction is done; the other one keeps
 *    flowing;
 *  - a pipe or buffer is held only while it holds bytes.
 */
#include "compat.h"

#include <sys/socket.h>

#include "dir.h"
#include "log.h"

static const char *const state_names[] = {
        [ZC_STATE_ESTABLISHED] = "established",
        [ZC_STATE_DRAINING] = "draining",
        [ZC_STATE_HALF_CLOSED] = "half-closed",
        [ZC_STATE_CLOSED] = "closed",
};

void zc__dir_set_state(struct zc_loop *loop, struct zc_dir *d, int state)
{
	if (d->d_state == state)
		return;
	zc__log(loop, ZC_LOG_DEBUG, "dir %d: %s -> %s", d->d_idx,
	        state_names[d->d_state], state_names[state]);
	d->d_state = state;
}

void zc__dir_init(struct zc_dir *d, int idx, struct zc_side *src,
                  struct zc_side *dst, const struct zc_mover_ops *ops)
{
	*d = (struct zc_dir){
	        .d_src = src,
	        .d_dst = dst,
	        .d_ops = ops,
	        .d_idx = idx,
	        .d_state = ZC_STATE_ESTABLISHED,
	};
	if (ops->init)
		ops->init(d);
}

struct zc_loop *zc__dir_loop(const struct zc_dir *d)
{
	return d->d_src->s_relay->r_loop;
}

void zc__dir_wake(struct zc_dir *d)
{
	struct zc_relay *r = d->d_src->s_relay;

	zc__task_queue(r->r_loop, &r->r_task);
}

void zc__dir_eof(struct zc_loop *loop, struct zc_dir *d)
{
	d->d_flags |= ZC_DIR_F_EOF;
	zc__dir_set_state(loop, d, ZC_STATE_DRAINING);
}

void zc__dir_fail(struct zc_dir *d, int err)
{
	if (!d->d_err)
		d->d_err = err;
}

void zc__dir_read(struct zc_dir *d, size_t n)
{
	zc__busypoll_count(&d->d_src->s_relay->r_loop->bp, n);
}

void zc__dir_count(struct zc_dir *d, size_t n, int spliced)
{
	struct zc_relay *r = d->d_src->s_relay;

	if (spliced)
		d->d_st.spliced += (uint64_t)n;
	else
		d->d_st.copied += (uint64_t)n;
	d->d_st.bytes += (uint64_t)n;
	zc__busypoll_count(&r->r_loop->bp, n);
	r->r_last = zc__loop_now(r->r_loop);
}

/* 1 if readiness events drive direction d now. */
static int dir_on_ready(const struct zc_dir *d)
{
	return !d->d_ops->by_completion || (d->d_flags & ZC_DIR_F_READY);
}

/* r_dir[i] reads r_side[i] and writes r_side[!i]. */
unsigned zc__side_events(const struct zc_relay *r, int i)
{
	unsigned ev = ZC_IO_ET;

	if (dir_on_ready(&r->r_dir[i]))
		ev |= ZC_IO_IN | ZC_IO_RDHUP;
	if (dir_on_ready(&r->r_dir[!i]))
		ev |= ZC_IO_OUT;
	return ev;
}

int zc__dir_by_ready(struct zc_loop *loop, struct zc_dir *d, int on)
{
	struct zc_relay *r = d->d_src->s_relay;
	int i, err;

	if (on)
		d->d_flags |= ZC_DIR_F_READY;
	else
		d->d_flags &= ~ZC_DIR_F_READY;
	for (i = 0; i < 2; i++) {
		err = zc__io_mod(loop, &r->r_side[i].s_io,
		                 zc__side_events(r, i));
		if (err)
			return err;
	}
	if (on) {
		d->d_src->s_ready |= ZC_SIDE_R;
		d->d_dst->s_ready |= ZC_SIDE_W;
	}
	return 0;
}

void zc__dir_release(struct zc_loop *loop, struct zc_dir *d)
{
	if (d->d_ops->release)
		d->d_ops->release(loop, d);
	if (d->d_pipe) {
		zc__pipe_put(&loop->pipes, d->d_pipe, d->d_inpipe != 0);
		d->d_pipe = NULL;
		d->d_inpipe = 0;
		d->d_flags &= ~ZC_DIR_F_PIPE_FULL;
	}
	if (d->d_buf) {
		zc__buf_put(&loop->bufs, d->d_buf);
		d->d_buf = NULL;
		d->d_boff = d->d_blen = 0;
	}
}

void zc__dir_release_empty(struct zc_loop *loop, struct zc_dir *d)
{
	if (d->d_pipe && d->d_inpipe == 0) {
		zc__pipe_put(&loop->pipes, d->d_pipe, 0);
		d->d_pipe = NULL;
		d->d_flags &= ~ZC_DIR_F_PIPE_FULL;
	}
	if (d->d_buf && d->d_boff == d->d_blen) {
		zc__buf_put(&loop->bufs, d->d_buf);
		d->d_buf = NULL;
		d->d_boff = d->d_blen = 0;
	}
}

/* Source EOF and nothing held: forward the FIN (or leave it to the
 * close that follows at once, ZC_DIR_F_CLOSE_FINS). */
static int conn_finish(struct zc_loop *loop, struct zc_dir *d)
{
	zc__dir_release_empty(loop, d);
	if (!(d->d_flags & ZC_DIR_F_CLOSE_FINS) &&
	    shutdown(d->d_dst->s_fd, SHUT_WR) == -1 && errno != ENOTCONN)
		return zc__neg_errno();
	d->d_st.fin = 1;
	zc__dir_set_state(loop, d, ZC_STATE_HALF_CLOSED);
	return 0;
}

int zc__dir_run(struct zc_loop *loop, struct zc_dir *d, size_t budget)
{
	int rc;

	if (d->d_state >= ZC_STATE_HALF_CLOSED)
		return 0;
	if (d->d_err)
		return d->d_err;
	rc = d->d_ops->run(loop, d, budget);
	if (rc < 0)
		return rc;
	if ((d->d_flags & ZC_DIR_F_EOF) && !d->d_ops->holds(d))
		return conn_finish(loop, d);
	return rc;
}

/*
 * conn.c - one direction of a relay, whatever moves its bytes.
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

#include "conn.h"
#include "log.h"

static const char *const state_names[] = {
        [ZC_STATE_ESTABLISHED] = "established",
        [ZC_STATE_DRAINING] = "draining",
        [ZC_STATE_HALF_CLOSED] = "half-closed",
        [ZC_STATE_CLOSED] = "closed",
};

void zc__conn_set_state(struct zc_loop *loop, struct zc_conn *c, int state)
{
	if (c->c_state == state)
		return;
	zc__log(loop, ZC_LOG_DEBUG, "dir %d: %s -> %s", c->c_idx,
	        state_names[c->c_state], state_names[state]);
	c->c_state = state;
}

void zc__conn_init(struct zc_conn *c, int idx, struct zc_side *src,
                   struct zc_side *dst, const struct zc_mover_ops *ops)
{
	*c = (struct zc_conn){
	        .c_src = src,
	        .c_dst = dst,
	        .c_ops = ops,
	        .c_idx = idx,
	        .c_state = ZC_STATE_ESTABLISHED,
	};
	if (ops->init)
		ops->init(c);
}

struct zc_loop *zc__conn_loop(const struct zc_conn *c)
{
	return c->c_src->s_relay->r_loop;
}

void zc__conn_wake(struct zc_conn *c)
{
	struct zc_relay *r = c->c_src->s_relay;

	zc__task_queue(r->r_loop, &r->r_task);
}

void zc__conn_eof(struct zc_loop *loop, struct zc_conn *c)
{
	c->c_flags |= ZC_CONN_F_EOF;
	zc__conn_set_state(loop, c, ZC_STATE_DRAINING);
}

void zc__conn_fail(struct zc_conn *c, int err)
{
	if (!c->c_err)
		c->c_err = err;
}

void zc__conn_count(struct zc_conn *c, size_t n, int spliced)
{
	struct zc_relay *r = c->c_src->s_relay;

	if (spliced)
		c->c_st.spliced += (uint64_t)n;
	else
		c->c_st.copied += (uint64_t)n;
	c->c_st.bytes += (uint64_t)n;
	r->r_last = zc__loop_now(r->r_loop);
}

void zc__conn_release(struct zc_loop *loop, struct zc_conn *c)
{
	if (c->c_ops->release)
		c->c_ops->release(loop, c);
	if (c->c_pipe) {
		zc__pipe_put(&loop->pipes, c->c_pipe, c->c_inpipe != 0);
		c->c_pipe = NULL;
		c->c_inpipe = 0;
		c->c_flags &= ~ZC_CONN_F_PIPE_FULL;
	}
	if (c->c_buf) {
		zc__buf_put(&loop->bufs, c->c_buf);
		c->c_buf = NULL;
		c->c_boff = c->c_blen = 0;
	}
}

void zc__conn_release_empty(struct zc_loop *loop, struct zc_conn *c)
{
	if (c->c_pipe && c->c_inpipe == 0) {
		zc__pipe_put(&loop->pipes, c->c_pipe, 0);
		c->c_pipe = NULL;
		c->c_flags &= ~ZC_CONN_F_PIPE_FULL;
	}
	if (c->c_buf && c->c_boff == c->c_blen) {
		zc__buf_put(&loop->bufs, c->c_buf);
		c->c_buf = NULL;
		c->c_boff = c->c_blen = 0;
	}
}

/* Source EOF and nothing held: forward the FIN. */
static int conn_finish(struct zc_loop *loop, struct zc_conn *c)
{
	zc__conn_release_empty(loop, c);
	if (shutdown(c->c_dst->s_fd, SHUT_WR) == -1 && errno != ENOTCONN)
		return zc__neg_errno();
	c->c_st.fin = 1;
	zc__conn_set_state(loop, c, ZC_STATE_HALF_CLOSED);
	return 0;
}

int zc__conn_run(struct zc_loop *loop, struct zc_conn *c, size_t budget)
{
	int rc;

	if (c->c_state >= ZC_STATE_HALF_CLOSED)
		return 0;
	if (c->c_err)
		return c->c_err;
	rc = c->c_ops->run(loop, c, budget);
	if (rc < 0)
		return rc;
	if ((c->c_flags & ZC_CONN_F_EOF) && !c->c_ops->holds(c))
		return conn_finish(loop, c);
	return rc;
}

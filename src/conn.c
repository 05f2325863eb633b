/*
 * conn.c - one direction of a relay.
 *
 * Rules (DESIGN.md, "One direction"):
 *  - drain while there is room and the source is readable, pump while
 *    bytes are held and the destination is writable; both in one pass, so
 *    the pipe stays full while the destination is slow;
 *  - a drain starts only when the other kind of holding is empty, which
 *    keeps the byte order when the mover changes;
 *  - source EOF: once nothing is held, shutdown(dst, SHUT_WR) forwards the
 *    FIN and this direction is done; the other one keeps flowing;
 *  - a pipe or buffer is held only while it holds bytes.
 */
#include "compat.h"

#include <sys/socket.h>

#include "conn.h"
#include "log.h"
#include "xfer.h"

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

/*
 * The auto mover starts a direction in copy mode and promotes it to
 * splice once a single read fills the whole buffer: small exchanges
 * (requests, handshakes, keystrokes) cost one recv and one send, cheaper
 * than two splices and a pipe, and bulk transfers splice. The switch
 * happens only when the buffer is empty, so byte order is kept.
 */
void zc__conn_init(struct zc_conn *c, int idx, struct zc_side *src,
                   struct zc_side *dst, int mover)
{
	unsigned flags = 0;

	if (mover == ZC_MOVER_COPY)
		flags = ZC_CONN_F_COPY;
	else if (mover == ZC_MOVER_AUTO)
		flags = ZC_CONN_F_COPY | ZC_CONN_F_PROBE;
	else if (mover == ZC_MOVER_RING)
		flags = ZC_CONN_F_RING;
	else if (mover == ZC_MOVER_URING_SPLICE)
		flags = ZC_CONN_F_WQS;
	*c = (struct zc_conn){
	        .c_src = src,
	        .c_dst = dst,
	        .c_idx = idx,
	        .c_qhead = -1,
	        .c_qtail = -1,
	        .c_flags = flags,
	        .c_state = ZC_STATE_ESTABLISHED,
	};
}

void zc__conn_release(struct zc_loop *loop, struct zc_conn *c)
{
	if (c->c_flags & ZC_CONN_F_RING)
		zc__ring_release(loop, c);
	if (c->c_flags & ZC_CONN_F_WQS)
		zc__wqs_release(loop, c);
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

static int conn_can_drain(const struct zc_conn *c)
{
	if (c->c_flags & ZC_CONN_F_EOF)
		return 0;
	if (!(c->c_src->s_ready & ZC_SIDE_R))
		return 0;
	if (c->c_boff != c->c_blen) /* the buffer goes out first */
		return 0;
	if (c->c_flags & ZC_CONN_F_COPY)
		return c->c_inpipe == 0;
	if (c->c_flags & ZC_CONN_F_PIPE_FULL)
		return 0;
	return !c->c_pipe || c->c_inpipe < c->c_pipe->p_size;
}

static int conn_pump(struct zc_loop *loop, struct zc_conn *c)
{
	if (c->c_boff != c->c_blen || (c->c_flags & ZC_CONN_F_PUMP_COPY))
		return zc__copy_pump(loop, c);
	return zc__splice_pump(loop, c);
}

static int conn_drain(struct zc_loop *loop, struct zc_conn *c)
{
	int n;

	if (!(c->c_flags & ZC_CONN_F_COPY))
		return zc__splice_drain(loop, c);
	n = zc__copy_drain(loop, c);
	if (n == ZC_BUF_SIZE && (c->c_flags & ZC_CONN_F_PROBE)) {
		/* A full buffer: a bulk stream. Splice from the next read. */
		c->c_flags &= ~(ZC_CONN_F_COPY | ZC_CONN_F_PROBE);
		zc__log(loop, ZC_LOG_DEBUG, "dir %d: bulk: splicing", c->c_idx);
	}
	return n;
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

/* The ring mover: completions did the work; submit the next steps. */
static int conn_run_ring(struct zc_loop *loop, struct zc_conn *c)
{
	int err = zc__ring_run(loop, c);

	if (err)
		return err;
	if ((c->c_flags & ZC_CONN_F_EOF) && !c->c_qn && !c->c_sop && !c->c_rop)
		return conn_finish(loop, c);
	return 0;
}

/* The uring-splice mover: the same, with its own requests; it returns
 * 1 when it moved bytes itself (a pipe shortage: copies) and should run
 * again next turn. */
static int conn_run_wqs(struct zc_loop *loop, struct zc_conn *c)
{
	int rc = zc__wqs_run(loop, c);

	if (rc < 0)
		return rc;
	if ((c->c_flags & ZC_CONN_F_EOF) && !zc__conn_pending(c) && !c->c_sop &&
	    !c->c_rop)
		return conn_finish(loop, c);
	return rc > 0;
}

int zc__conn_run(struct zc_loop *loop, struct zc_conn *c, size_t budget)
{
	size_t moved = 0;
	int n, progress;

	if (c->c_state >= ZC_STATE_HALF_CLOSED)
		return 0;
	if (c->c_flags & ZC_CONN_F_RING)
		return conn_run_ring(loop, c);
	if (c->c_flags & ZC_CONN_F_WQS)
		return conn_run_wqs(loop, c);
	do {
		progress = 0;
		if (zc__conn_pending(c) && (c->c_dst->s_ready & ZC_SIDE_W)) {
			n = conn_pump(loop, c);
			if (n > 0) {
				progress = 1;
				moved += (size_t)n;
			} else if (n != -EAGAIN) {
				return n;
			}
		}
		if (conn_can_drain(c)) {
			n = conn_drain(loop, c);
			if (n > 0) {
				progress = 1;
			} else if (n == 0) {
				c->c_flags |= ZC_CONN_F_EOF;
				zc__conn_set_state(loop, c, ZC_STATE_DRAINING);
				progress = 1;
			} else if (n != -EAGAIN) {
				return n;
			}
		}
		if ((c->c_flags & ZC_CONN_F_EOF) && !zc__conn_pending(c))
			return conn_finish(loop, c);
		if (progress && moved >= budget)
			return 1;
	} while (progress);
	zc__conn_release_empty(loop, c);
	return 0;
}

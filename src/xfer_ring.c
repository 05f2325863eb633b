/*
 * xfer_ring.c - the ring mover: a multishot recv into the loop's
 * provided-buffer ring, then send (SEND_ZC for large chunks), all through
 * io_uring. No readiness flags: completions drive it.
 *
 * Per direction: one multishot recv on the source; the buffers it fills
 * wait in a FIFO queue; one send at a time takes the oldest (sends to one
 * socket are not ordered among themselves unless linked, so one is in
 * flight); a short send sends the rest next. A buffer goes back to the
 * ring when it is fully sent, or for SEND_ZC when the notification says
 * the kernel let go of it (uring_ops.c keeps a reference until then).
 *
 * Backpressure: each multishot recv is armed with a byte limit, the room
 * left up to ring_high() full buffers, and the kernel ends it there
 * (6.17+). Recv is armed again when at most ring_low() buffers are held.
 * Small segments fill buffers partly, so the count is checked too: a
 * direction holding ring_high() buffers cancels its recv (what the
 * kernel already received still arrives). Kernels without the limit
 * rely on the cancel alone, which is soft by what the kernel delivers
 * before it lands (a stalled reader was seen holding 116 buffers).
 *
 * An empty ring (-ENOBUFS ends the multishot): a direction that holds
 * buffers waits for its own sends to give them back, then tries the
 * ring again if it has buffers; one that holds none while the ring is
 * still empty reads into a spare buffer with recv(), or waits with a
 * one-shot poll when nothing is there. No loop spins, every retry
 * follows a completion, and no relay waits for another.
 *
 * SEND_ZC is refused by some sockets (Unix: -EOPNOTSUPP, nothing sent):
 * the direction sends plainly from then on.
 *
 * EOF (a recv result of 0): once everything queued is sent, conn.c
 * forwards the FIN. Errors of a completion are kept in c_err and
 * reported by the next run, which ends the relay.
 */
#include "compat.h"

#include <poll.h>
#include <sys/socket.h>

#include "conn.h"
#include "uring.h"
#include "xfer.h"

/* Buffers a direction may hold before its recv is stopped. */
static unsigned ring_high(const struct zc_loop *loop)
{
	unsigned n = zc__ubuf_count(loop) / 8;

	return ZC_MIN(ZC_MAX(n, 2U), 8U);
}

/* ...and at most this many held again before it restarts. */
static unsigned ring_low(const struct zc_loop *loop)
{
	return ring_high(loop) / 4;
}

static struct zc_loop *ring_loop(const struct zc_conn *c)
{
	return c->c_src->s_relay->r_loop;
}

/* A completion came: run the relay's directions on the next turn. */
static void ring_wake(struct zc_conn *c)
{
	struct zc_relay *r = c->c_src->s_relay;

	zc__task_queue(r->r_loop, &r->r_task);
}

static void ring_enqueue(struct zc_loop *loop, struct zc_conn *c, int id,
                         size_t len)
{
	struct zc_ubuf *b = zc__ubuf(loop, id);

	b->len = (uint32_t)len;
	b->next = -1;
	if (c->c_qtail >= 0)
		zc__ubuf(loop, c->c_qtail)->next = id;
	else
		c->c_qhead = id;
	c->c_qtail = id;
	c->c_qn++;
}

/* Drops the head buffer (sent, or the relay is closing). */
static void ring_dequeue(struct zc_loop *loop, struct zc_conn *c)
{
	int id = c->c_qhead;

	c->c_qhead = zc__ubuf(loop, id)->next;
	if (c->c_qhead < 0)
		c->c_qtail = -1;
	c->c_qn--;
	c->c_qoff = 0;
	zc__ubuf_put(loop, id);
}

/* n bytes from the head of the queue were sent. */
static void ring_consume(struct zc_loop *loop, struct zc_conn *c, size_t n)
{
	size_t left;

	while (n) {
		left = zc__ubuf(loop, c->c_qhead)->len - c->c_qoff;
		if (n < left) {
			c->c_qoff += n;
			return;
		}
		n -= left;
		ring_dequeue(loop, c);
	}
}

static void ring_set_eof(struct zc_loop *loop, struct zc_conn *c)
{
	c->c_flags |= ZC_CONN_F_EOF;
	zc__conn_set_state(loop, c, ZC_STATE_DRAINING);
}

static void ring_set_err(struct zc_conn *c, int err)
{
	if (!c->c_err)
		c->c_err = err;
}

static void ring_on_recv(void *arg, int res, int id, int more)
{
	struct zc_conn *c = arg;
	struct zc_loop *loop = ring_loop(c);

	if (id >= 0) {
		if (res > 0)
			ring_enqueue(loop, c, id, (size_t)res);
		else
			zc__ubuf_put(loop, id);
	} else if (res > 0) {
		ring_set_err(c, -EIO); /* bytes without a buffer: never */
	}
	if (res == 0)
		ring_set_eof(loop, c);
	else if (res == -ENOBUFS)
		c->c_flags |= ZC_CONN_F_NOBUFS;
	else if (res < 0 && res != -ECANCELED)
		ring_set_err(c, res);
	if (!more)
		c->c_rop = NULL;
	ring_wake(c);
}

/* The source became readable while the ring was empty: try again. */
static void ring_on_poll(void *arg, int res, int id, int more)
{
	struct zc_conn *c = arg;

	c->c_rop = NULL;
	c->c_flags &= ~(ZC_CONN_F_RPOLL | ZC_CONN_F_NOBUFS);
	ring_wake(c);
}

static void ring_on_send(void *arg, int res, int id, int more)
{
	struct zc_conn *c = arg;
	struct zc_loop *loop = ring_loop(c);

	c->c_sop = NULL;
	if (res == -EOPNOTSUPP && !(c->c_flags & ZC_CONN_F_NOZC)) {
		/* SEND_ZC refused (Unix sockets): plain sends from now on. */
		c->c_flags |= ZC_CONN_F_NOZC;
		res = -EAGAIN;
	}
	if (res > 0) {
		c->c_st.copied += (uint64_t)res;
		c->c_st.bytes += (uint64_t)res;
		c->c_src->s_relay->r_last = zc__loop_now(loop);
		ring_consume(loop, c, (size_t)res);
	} else if (res == 0) {
		ring_set_err(c, -EIO); /* a send of >0 bytes moved nothing */
	} else if (res != -EAGAIN && res != -EINTR) {
		ring_set_err(c, res);
	}
	ring_wake(c);
}

/*
 * The ring was empty and this direction holds nothing: take what is
 * waiting with recv() into a spare buffer, or wait for bytes with a
 * poll (never holding a buffer while idle).
 */
static int ring_recv_spare(struct zc_loop *loop, struct zc_conn *c)
{
	int id = zc__ubuf_spare(loop);
	ssize_t n;
	int err;

	if (id < 0)
		return id;
	do {
		n = recv(c->c_src->s_fd, zc__ubuf(loop, id)->data,
		         zc__ubuf_size(loop), MSG_DONTWAIT);
	} while (n == -1 && errno == EINTR);
	if (n > 0) {
		ring_enqueue(loop, c, id, (size_t)n);
		loop->st.ring_shortage++;
		c->c_flags &= ~ZC_CONN_F_NOBUFS;
		return 0;
	}
	err = n == 0 ? 0 : zc__neg_errno();
	zc__ubuf_put(loop, id);
	if (n == 0) {
		ring_set_eof(loop, c);
		return 0;
	}
	if (err != -EAGAIN)
		return err;
	err = zc__uop_poll(loop, c->c_src->s_fd, POLLIN | POLLRDHUP,
	                   ring_on_poll, c, &c->c_rop);
	if (!err)
		c->c_flags |= ZC_CONN_F_RPOLL;
	return err;
}

static int ring_arm_recv(struct zc_loop *loop, struct zc_conn *c)
{
	unsigned high = ring_high(loop);

	if (c->c_rop || (c->c_flags & ZC_CONN_F_EOF))
		return 0;
	if (c->c_qn >= high)
		c->c_flags |= ZC_CONN_F_STOPPED;
	if ((c->c_flags & (ZC_CONN_F_STOPPED | ZC_CONN_F_NOBUFS)) &&
	    c->c_qn > ring_low(loop))
		return 0;
	if (c->c_flags & ZC_CONN_F_NOBUFS) {
		/* Some came back (ours or others'): try the ring again. */
		if (zc__ubuf_avail(loop))
			c->c_flags &= ~ZC_CONN_F_NOBUFS;
		else if (!c->c_qn)
			return ring_recv_spare(loop, c);
		else
			return 0; /* ours come back when sent */
	}
	c->c_flags &= ~ZC_CONN_F_STOPPED;
	/* At most the room left up to the limit: the kernel ends the
	 * multishot there, so the bound holds however fast bytes come. */
	return zc__uop_recv(loop, c->c_src->s_fd,
	                    (high - c->c_qn) * zc__ubuf_size(loop),
	                    ring_on_recv, c, &c->c_rop);
}

/* Backpressure: stop receiving while the destination is behind. */
static void ring_stop_recv(struct zc_loop *loop, struct zc_conn *c)
{
	if (!c->c_rop || (c->c_flags & (ZC_CONN_F_STOPPED | ZC_CONN_F_RPOLL)))
		return;
	if (c->c_qn < ring_high(loop))
		return;
	c->c_flags |= ZC_CONN_F_STOPPED;
	zc__uop_cancel(loop, c->c_rop, 0);
}

/* Sends what is queued (up to ZC_UOP_IOV buffers) in one request. */
static int ring_send(struct zc_loop *loop, struct zc_conn *c)
{
	int ids[ZC_UOP_IOV], n = 0, id;
	size_t len = 0;

	for (id = c->c_qhead; id >= 0 && n < ZC_UOP_IOV;
	     id = zc__ubuf(loop, id)->next) {
		len += zc__ubuf(loop, id)->len;
		ids[n++] = id;
	}
	len -= c->c_qoff;
	return zc__uop_send(loop, c->c_dst->s_fd, ids, n, c->c_qoff,
	                    len >= zc__ubuf_zc_min(loop) &&
	                            !(c->c_flags & ZC_CONN_F_NOZC),
	                    ring_on_send, c, &c->c_sop);
}

int zc__ring_run(struct zc_loop *loop, struct zc_conn *c)
{
	int err;

	if (c->c_err)
		return c->c_err;
	err = ring_arm_recv(loop, c);
	if (err)
		return err;
	ring_stop_recv(loop, c);
	if (!c->c_qn || c->c_sop)
		return 0;
	return ring_send(loop, c);
}

void zc__ring_release(struct zc_loop *loop, struct zc_conn *c)
{
	if (c->c_rop)
		zc__uop_cancel(loop, c->c_rop, 1);
	if (c->c_sop)
		zc__uop_cancel(loop, c->c_sop, 1);
	c->c_rop = c->c_sop = NULL;
	while (c->c_qn)
		ring_dequeue(loop, c);
	c->c_flags &= ~(ZC_CONN_F_NOBUFS | ZC_CONN_F_STOPPED | ZC_CONN_F_RPOLL);
}

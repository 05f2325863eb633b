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
 * Hand-over (ring_detach): the recv and the send are cancelled, what
 * they still complete is kept, and every SEND_ZC notification is waited
 * for; the queue then travels in the record's pipe. An adopted pipe's
 * bytes go out (through spare buffers) before the first recv.
 *
 * Under the io_uring auto mover (xfer_uauto.c, ZC_DIR_F_AUTO), a recv
 * that fills a whole buffer says the direction turned bulk: it stops
 * receiving (RING_F_BULK), sends what it queued, and then
 * zc__ring_turned_bulk() tells auto to splice it on readiness.
 *
 * EOF (a recv result of 0): once everything queued is sent, dir.c
 * forwards the FIN. Errors of a completion are kept (zc__dir_fail)
 * and reported by the next run, which ends the relay.
 */
#include "compat.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dir.h"
#include "uring.h"

/* Flags of struct zc_dir_ring. */
#define RING_F_NOBUFS  0x1  /* the buffer ring was empty */
#define RING_F_STOPPED 0x2  /* recv stopped, too much is held */
#define RING_F_RPOLL   0x4  /* rop is a poll, not a recv */
#define RING_F_NOZC    0x8  /* dst refuses SEND_ZC (Unix) */
#define RING_F_BULK    0x10 /* auto: a recv filled a buffer: stop receiving */

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

static void ring_enqueue(struct zc_loop *loop, struct zc_dir *d, int id,
                         size_t len)
{
	struct zc_ubuf *b = zc__ubuf(loop, id);

	b->len = (uint32_t)len;
	b->next = -1;
	if (d->d_m.ring.qtail >= 0)
		zc__ubuf(loop, d->d_m.ring.qtail)->next = id;
	else
		d->d_m.ring.qhead = id;
	d->d_m.ring.qtail = id;
	d->d_m.ring.qn++;
}

/* Drops the head buffer (sent, or the relay is closing). */
static void ring_dequeue(struct zc_loop *loop, struct zc_dir *d)
{
	int id = d->d_m.ring.qhead;

	d->d_m.ring.qhead = zc__ubuf(loop, id)->next;
	if (d->d_m.ring.qhead < 0)
		d->d_m.ring.qtail = -1;
	d->d_m.ring.qn--;
	d->d_m.ring.qoff = 0;
	zc__ubuf_put(loop, id);
}

/* n bytes from the head of the queue were sent. */
static void ring_consume(struct zc_loop *loop, struct zc_dir *d, size_t n)
{
	size_t left;

	while (n) {
		left = zc__ubuf(loop, d->d_m.ring.qhead)->len -
		       d->d_m.ring.qoff;
		if (n < left) {
			d->d_m.ring.qoff += (uint32_t)n;
			return;
		}
		n -= left;
		ring_dequeue(loop, d);
	}
}

static void ring_on_recv(void *arg, int res, int id, int more)
{
	struct zc_dir *d = arg;
	struct zc_loop *loop = zc__dir_loop(d);

	if (id >= 0) {
		if (res > 0) {
			ring_enqueue(loop, d, id, (size_t)res);
			zc__dir_read(d, (size_t)res);
			if ((size_t)res == zc__ubuf_size(loop) &&
			    (d->d_flags & ZC_DIR_F_AUTO))
				d->d_m.ring.flags |= RING_F_BULK;
		} else
			zc__ubuf_put(loop, id);
	} else if (res > 0) {
		zc__dir_fail(d, -EIO); /* bytes without a buffer: never */
	}
	if (res == 0)
		zc__dir_eof(loop, d);
	else if (res == -ENOBUFS)
		d->d_m.ring.flags |= RING_F_NOBUFS;
	else if (res < 0 && res != -ECANCELED)
		zc__dir_fail(d, res);
	if (!more)
		d->d_m.ring.rop = NULL;
	zc__dir_wake(d);
}

/* The source became readable while the ring was empty: try again. */
static void ring_on_poll(void *arg, int res, int id, int more)
{
	struct zc_dir *d = arg;

	d->d_m.ring.rop = NULL;
	d->d_m.ring.flags &= ~(RING_F_RPOLL | RING_F_NOBUFS);
	zc__dir_wake(d);
}

static void ring_on_send(void *arg, int res, int id, int more)
{
	struct zc_dir *d = arg;
	struct zc_loop *loop = zc__dir_loop(d);

	d->d_m.ring.sop = NULL;
	if (res == -EOPNOTSUPP && !(d->d_m.ring.flags & RING_F_NOZC)) {
		/* SEND_ZC refused (Unix sockets): plain sends from now on. */
		d->d_m.ring.flags |= RING_F_NOZC;
		res = -EAGAIN;
	}
	if (res > 0) {
		zc__dir_count(d, (size_t)res, 0);
		ring_consume(loop, d, (size_t)res);
	} else if (res == 0) {
		zc__dir_fail(d, -EIO); /* a send of >0 bytes moved nothing */
	} else if (res != -EAGAIN && res != -EINTR && res != -ECANCELED) {
		zc__dir_fail(d, res); /* (a hand-over cancels: nothing sent) */
	}
	zc__dir_wake(d);
}

/*
 * The ring was empty and this direction holds nothing: take what is
 * waiting with recv() into a spare buffer, or wait for bytes with a
 * poll (never holding a buffer while idle).
 */
static int ring_recv_spare(struct zc_loop *loop, struct zc_dir *d)
{
	int id = zc__ubuf_spare(loop);
	ssize_t n;
	int err;

	if (id < 0)
		return id;
	do {
		n = recv(d->d_src->s_fd, zc__ubuf(loop, id)->data,
		         zc__ubuf_size(loop), MSG_DONTWAIT);
	} while (n == -1 && errno == EINTR);
	if (n > 0) {
		ring_enqueue(loop, d, id, (size_t)n);
		loop->st.ring_shortage++;
		d->d_m.ring.flags &= ~RING_F_NOBUFS;
		return 0;
	}
	err = n == 0 ? 0 : zc__neg_errno();
	zc__ubuf_put(loop, id);
	if (n == 0) {
		zc__dir_eof(loop, d);
		return 0;
	}
	if (err != -EAGAIN)
		return err;
	err = zc__uop_poll(loop, d->d_src->s_fd, POLLIN | POLLRDHUP,
	                   ring_on_poll, d, &d->d_m.ring.rop);
	if (!err)
		d->d_m.ring.flags |= RING_F_RPOLL;
	return err;
}

static int ring_arm_recv(struct zc_loop *loop, struct zc_dir *d)
{
	unsigned high = ring_high(loop);

	if (d->d_m.ring.rop || (d->d_flags & ZC_DIR_F_EOF) ||
	    (d->d_m.ring.flags & RING_F_BULK))
		return 0;
	if (d->d_m.ring.qn >= high)
		d->d_m.ring.flags |= RING_F_STOPPED;
	if ((d->d_m.ring.flags & (RING_F_STOPPED | RING_F_NOBUFS)) &&
	    d->d_m.ring.qn > ring_low(loop))
		return 0;
	if (d->d_m.ring.flags & RING_F_NOBUFS) {
		/* Some came back (ours or others'): try the ring again. */
		if (zc__ubuf_avail(loop))
			d->d_m.ring.flags &= ~RING_F_NOBUFS;
		else if (!d->d_m.ring.qn)
			return ring_recv_spare(loop, d);
		else
			return 0; /* ours come back when sent */
	}
	d->d_m.ring.flags &= ~RING_F_STOPPED;
	/* At most the room left up to the limit: the kernel ends the
	 * multishot there, so the bound holds however fast bytes come. */
	return zc__uop_recv(loop, d->d_src->s_fd,
	                    (high - d->d_m.ring.qn) * zc__ubuf_size(loop),
	                    ring_on_recv, d, &d->d_m.ring.rop);
}

/* Backpressure: stop receiving while the destination is behind; and
 * for auto, once the direction turned bulk (its recv's last bytes
 * still arrive, and are queued). */
static void ring_stop_recv(struct zc_loop *loop, struct zc_dir *d)
{
	if (!d->d_m.ring.rop ||
	    (d->d_m.ring.flags & (RING_F_STOPPED | RING_F_RPOLL)))
		return;
	if (d->d_m.ring.qn < ring_high(loop) &&
	    !(d->d_m.ring.flags & RING_F_BULK))
		return;
	d->d_m.ring.flags |= RING_F_STOPPED;
	zc__uop_cancel(loop, d->d_m.ring.rop, 0);
}

/* Sends what is queued (up to ZC_UOP_IOV buffers) in one request. */
static int ring_send(struct zc_loop *loop, struct zc_dir *d)
{
	int ids[ZC_UOP_IOV], n = 0, id;
	size_t len = 0;

	for (id = d->d_m.ring.qhead; id >= 0 && n < ZC_UOP_IOV;
	     id = zc__ubuf(loop, id)->next) {
		len += zc__ubuf(loop, id)->len;
		ids[n++] = id;
	}
	len -= d->d_m.ring.qoff;
	return zc__uop_send(loop, d->d_dst->s_fd, ids, n, d->d_m.ring.qoff,
	                    len >= zc__ubuf_zc_min(loop) &&
	                            !(d->d_m.ring.flags & RING_F_NOZC),
	                    &d->d_m.ring.nzc, ring_on_send, d,
	                    &d->d_m.ring.sop);
}

/* Bytes queued, not yet sent. */
static size_t ring_held(const struct zc_dir *d)
{
	struct zc_loop *loop = zc__dir_loop(d);
	size_t n = 0;
	int id;

	for (id = d->d_m.ring.qhead; id >= 0; id = zc__ubuf(loop, id)->next)
		n += zc__ubuf(loop, id)->len;
	return n - d->d_m.ring.qoff;
}

/* The most a settled direction may hold: what a pipe of the pool's
 * size takes, so that its queue travels in one. */
static size_t ring_settle_max(const struct zc_loop *loop)
{
	return loop->pipes.pp_want;
}

/*
 * Bytes an adopted direction brought in its pipe go out first, before
 * anything is received: they are read into spare buffers and queued,
 * at most ring_high() buffers at a time. Returns 0 or -errno.
 */
static int ring_unpipe(struct zc_loop *loop, struct zc_dir *d)
{
	ssize_t n;
	int id;

	while (d->d_inpipe && d->d_m.ring.qn < ring_high(loop)) {
		id = zc__ubuf_spare(loop);
		if (id < 0)
			return id;
		n = read(d->d_pipe->p_rfd, zc__ubuf(loop, id)->data,
		         ZC_MIN(d->d_inpipe, zc__ubuf_size(loop)));
		if (n <= 0) { /* the pipe holds d_inpipe bytes: never */
			zc__ubuf_put(loop, id);
			return -EIO;
		}
		d->d_inpipe -= (size_t)n;
		ring_enqueue(loop, d, id, (size_t)n);
	}
	zc__dir_release_empty(loop, d);
	return 0;
}

/*
 * Submits what the direction can do now: returns 0, or -errno. While a
 * hand-over settles it, nothing is received, and only a queue too long
 * for one pipe is sent (down to what one takes).
 */
static int ring_run(struct zc_loop *loop, struct zc_dir *d, size_t budget)
{
	int err;

	if (d->d_inpipe && (err = ring_unpipe(loop, d)))
		return err;
	if (d->d_flags & ZC_DIR_F_SETTLE) {
		if (ring_held(d) <= ring_settle_max(loop))
			return 0;
	} else if (!d->d_inpipe) {
		err = ring_arm_recv(loop, d);
		if (err)
			return err;
		ring_stop_recv(loop, d);
	}
	if (!d->d_m.ring.qn || d->d_m.ring.sop)
		return 0;
	return ring_send(loop, d);
}

/* Cancels the requests and drops the queued buffers; requests in
 * flight keep theirs until their final CQE. */
static void ring_release(struct zc_loop *loop, struct zc_dir *d)
{
	if (d->d_m.ring.nzc)
		zc__uop_forget_notifs(loop, &d->d_m.ring.nzc);
	d->d_m.ring.nzc = 0;
	if (d->d_m.ring.rop)
		zc__uop_cancel(loop, d->d_m.ring.rop, 1);
	if (d->d_m.ring.sop)
		zc__uop_cancel(loop, d->d_m.ring.sop, 1);
	d->d_m.ring.rop = d->d_m.ring.sop = NULL;
	while (d->d_m.ring.qn)
		ring_dequeue(loop, d);
	d->d_m.ring.flags &= ~(RING_F_NOBUFS | RING_F_STOPPED | RING_F_RPOLL);
}

static void ring_init(struct zc_dir *d)
{
	d->d_m.ring.qhead = d->d_m.ring.qtail = -1;
}

/* Queued buffers (or an adopted pipe's bytes) wait to be sent; a recv
 * in flight may still deliver. */
static int ring_holds(const struct zc_dir *d)
{
	return d->d_m.ring.qn || d->d_m.ring.sop || d->d_m.ring.rop ||
	       d->d_inpipe;
}

/*
 * Settles the direction for a hand-over: the recv (or poll) is
 * cancelled, and what it had received still arrives and is queued; the
 * send in flight is cancelled once the queue fits in one pipe (a send
 * the kernel had started completes short or whole, one still waiting
 * for room does nothing). Done when no request is left and every
 * SEND_ZC notification came, so no buffer is the kernel's; the queue
 * then travels through gather. -EAGAIN until then.
 */
static int ring_detach(struct zc_loop *loop, struct zc_dir *d)
{
	struct zc_dir_ring *m = &d->d_m.ring;
	int fits = ring_held(d) <= ring_settle_max(loop);

	if (m->rop)
		zc__uop_cancel(loop, m->rop, 0);
	if (m->sop && fits)
		zc__uop_cancel(loop, m->sop, 0);
	if (m->rop || m->sop || m->nzc || !fits)
		return -EAGAIN;
	return 0;
}

/* Writes the queued bytes, oldest first, into to (dir_handover.c). */
static int ring_gather(struct zc_loop *loop, const struct zc_dir *d,
                       struct zc_pipe *to)
{
	size_t off = d->d_m.ring.qoff;
	struct zc_ubuf *b;
	int id, err;

	for (id = d->d_m.ring.qhead; id >= 0; id = b->next, off = 0) {
		b = zc__ubuf(loop, id);
		err = zc__pipe_write_all(to, b->data + off, b->len - off);
		if (err)
			return err;
	}
	return 0;
}

/* An adopted direction's pipe goes out first (ring_unpipe). Its flags
 * start clear: the buffer ring of this loop is another one. */
static int ring_adopt(struct zc_loop *loop, struct zc_dir *d)
{
	return 0;
}

/* The loop's buffer ring (registered on the first ring relay). */
static int ring_prepare(struct zc_loop *loop)
{
	return zc__ubuf_init(loop);
}

int zc__ring_turned_bulk(const struct zc_dir *d)
{
	const struct zc_dir_ring *m = &d->d_m.ring;

	return (m->flags & RING_F_BULK) && !m->rop && !m->sop && !m->qn &&
	       !d->d_inpipe;
}

void zc__ring_restart(struct zc_dir *d)
{
	d->d_m.ring.flags &= ~(RING_F_BULK | RING_F_STOPPED | RING_F_NOBUFS);
}

const struct zc_mover_ops zc__mover_ring = {
        .name = "ring",
        .mover = ZC_MOVER_RING,
        .by_completion = 1,
        .fallback = ZC_MOVER_COPY,
        .prepare = ring_prepare,
        .init = ring_init,
        .run = ring_run,
        .holds = ring_holds,
        .release = ring_release,
        .detach = ring_detach,
        .adopt = ring_adopt,
        .held = ring_held,
        .gather = ring_gather,
};

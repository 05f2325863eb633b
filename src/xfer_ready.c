/*
 * xfer_ready.c - the readiness movers: copy, splice and auto share one
 * loop that edge-triggered readiness (epoll, or io_uring polls) drives;
 * they differ only in how a direction starts (mover.h).
 *
 *  - drain while there is room and the source is readable, pump while
 *    bytes are held and the destination is writable; both in one pass,
 *    so the pipe stays full while the destination is slow;
 *  - a drain starts only when the other kind of holding is empty, which
 *    keeps the byte order when the way of draining changes (a splice
 *    that falls back to copy, auto promoting copy to splice).
 *
 * The auto mover starts a direction in copy mode and promotes it to
 * splice once a single read fills the whole buffer: small exchanges
 * (requests, handshakes, keystrokes) cost one recv and one send, cheaper
 * than two splices and a pipe (and the EAGAIN splice that follows each:
 * a short splice does not say the socket is drained), and bulk transfers
 * splice. A promoted direction whose last DEMOTE_RUN splices each moved
 * less than DEMOTE_BYTES goes back to copying, and may be promoted again
 * (a keep-alive connection after a download). Each switch happens only
 * when nothing is held, so byte order is kept.
 */
#include "compat.h"

#include "dir.h"
#include "log.h"
#include "xfer.h"

static int ready_can_drain(const struct zc_dir *d)
{
	if (d->d_flags & ZC_DIR_F_EOF)
		return 0;
	if (!(d->d_src->s_ready & ZC_SIDE_R))
		return 0;
	if (d->d_boff != d->d_blen) /* the buffer goes out first */
		return 0;
	if (d->d_flags & ZC_DIR_F_COPY)
		return d->d_inpipe == 0;
	if (d->d_flags & ZC_DIR_F_PIPE_FULL)
		return 0;
	return !d->d_pipe || d->d_inpipe < d->d_pipe->p_size;
}

static int ready_pump(struct zc_loop *loop, struct zc_dir *d)
{
	if (d->d_boff != d->d_blen || (d->d_flags & ZC_DIR_F_PUMP_COPY))
		return zc__copy_pump(loop, d);
	return zc__splice_pump(loop, d);
}

#define DEMOTE_BYTES 4096 /* a splice that moved less was a small message */
#define DEMOTE_RUN   8    /* small splices in a row that end splicing */

/* auto, splicing: counts the run of small splices (n bytes each, into a
 * pipe that had room bytes free: a splice cut short by a full pipe says
 * nothing about the messages). A splice that fell back to copying for
 * good has cleared ZC_DIR_F_AUTO, so it is never counted. */
static void ready_count_small(struct zc_dir *d, int n, size_t room)
{
	unsigned run =
	        (d->d_flags & ZC_DIR_F_SMALL_COUNT) >> ZC_DIR_SMALL_SHIFT;

	if (n <= 0 || room < DEMOTE_BYTES)
		return;
	run = (size_t)n >= DEMOTE_BYTES ? 0 : run < DEMOTE_RUN ? run + 1 : run;
	d->d_flags = (d->d_flags & ~ZC_DIR_F_SMALL_COUNT) |
	             (run << ZC_DIR_SMALL_SHIFT);
}

/* auto, splicing, nothing held: after a run of small splices, copy
 * again (and probe for the next bulk stretch). */
static void ready_maybe_demote(struct zc_loop *loop, struct zc_dir *d)
{
	if ((d->d_flags & ZC_DIR_F_SMALL_COUNT) >> ZC_DIR_SMALL_SHIFT <
	            DEMOTE_RUN ||
	    d->d_inpipe)
		return;
	d->d_flags &= ~ZC_DIR_F_SMALL_COUNT;
	d->d_flags |= ZC_DIR_F_COPY | ZC_DIR_F_PROBE;
	zc__log(loop, ZC_LOG_DEBUG, "dir %d: small again: copying", d->d_idx);
}

static int ready_drain(struct zc_loop *loop, struct zc_dir *d)
{
	size_t room;
	int n;

	if ((d->d_flags & (ZC_DIR_F_AUTO | ZC_DIR_F_COPY)) == ZC_DIR_F_AUTO)
		ready_maybe_demote(loop, d);
	if (!(d->d_flags & ZC_DIR_F_COPY)) {
		room = d->d_pipe ? d->d_pipe->p_size - d->d_inpipe : SIZE_MAX;
		n = zc__splice_drain(loop, d);
		if (d->d_flags & ZC_DIR_F_AUTO)
			ready_count_small(d, n, room);
		return n;
	}
	n = zc__copy_drain(loop, d);
	if (n == ZC_BUF_SIZE && (d->d_flags & ZC_DIR_F_PROBE)) {
		/* A full buffer: a bulk stream. Splice from the next read. */
		d->d_flags &= ~(ZC_DIR_F_COPY | ZC_DIR_F_PROBE);
		zc__log(loop, ZC_LOG_DEBUG, "dir %d: bulk: splicing", d->d_idx);
	}
	return n;
}

/* Returns 0 at EOF with nothing held (dir.c forwards the FIN) or when
 * nothing more can move now, 1 when the budget ran out, or -errno. */
static int ready_run(struct zc_loop *loop, struct zc_dir *d, size_t budget)
{
	size_t moved = 0;
	int n, progress;

	do {
		progress = 0;
		if (zc__dir_pending(d) && (d->d_dst->s_ready & ZC_SIDE_W)) {
			n = ready_pump(loop, d);
			if (n > 0) {
				progress = 1;
				moved += (size_t)n;
			} else if (n != -EAGAIN) {
				return n;
			}
		}
		if (ready_can_drain(d)) {
			n = ready_drain(loop, d);
			if (n > 0) {
				progress = 1;
			} else if (n == 0) {
				zc__dir_eof(loop, d);
				progress = 1;
			} else if (n != -EAGAIN) {
				return n;
			}
		}
		if ((d->d_flags & ZC_DIR_F_EOF) && !zc__dir_pending(d))
			return 0;
		if (progress && moved >= budget)
			return 1;
	} while (progress);
	zc__dir_release_empty(loop, d);
	return 0;
}

static int ready_holds(const struct zc_dir *d)
{
	return zc__dir_pending(d) != 0;
}

/* Nothing in flight: the pipe and buffer are all a direction holds,
 * and dir_handover.c carries them. */
static int ready_detach(struct zc_loop *loop, struct zc_dir *d)
{
	return 0;
}

/* Bytes that arrive in the pipe go out before any new drain
 * (ready_can_drain), whichever way this mover drains. */
static int ready_adopt(struct zc_loop *loop, struct zc_dir *d)
{
	return 0;
}

static void copy_init(struct zc_dir *d)
{
	d->d_flags = ZC_DIR_F_COPY;
}

static void auto_init(struct zc_dir *d)
{
	d->d_flags = ZC_DIR_F_COPY | ZC_DIR_F_PROBE | ZC_DIR_F_AUTO;
}

const struct zc_mover_ops zc__mover_splice = {
        .name = "splice",
        .mover = ZC_MOVER_SPLICE,
        .run = ready_run,
        .holds = ready_holds,
        .detach = ready_detach,
        .adopt = ready_adopt,
};

const struct zc_mover_ops zc__mover_copy = {
        .name = "copy",
        .mover = ZC_MOVER_COPY,
        .init = copy_init,
        .run = ready_run,
        .holds = ready_holds,
        .detach = ready_detach,
        .adopt = ready_adopt,
};

const struct zc_mover_ops zc__mover_auto = {
        .name = "auto",
        .mover = ZC_MOVER_AUTO,
        .init = auto_init,
        .run = ready_run,
        .holds = ready_holds,
        .detach = ready_detach,
        .adopt = ready_adopt,
};

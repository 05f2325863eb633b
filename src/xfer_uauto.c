/*
 * xfer_uauto.c - the auto mover of an io_uring loop: each direction
 * moves small exchanges with the ring mover (one multishot recv into
 * the loop's buffer ring, sends as requests: no readiness event, no
 * trailing EAGAIN read per message) and bulk stretches by splice on
 * readiness, as the readiness auto mover does (xfer_ready.c).
 *
 * A direction starts on the ring. A recv that fills a whole ring
 * buffer says it turned bulk: it stops receiving, sends what it queued
 * (zc__ring_turned_bulk), and then splices on readiness events
 * (zc__dir_by_ready: the relay now watches its sockets for it). Once
 * its splices turn small again (xfer_ready.c's demotion to copying) and
 * nothing is held in the pipe or the buffer, it goes back to the ring.
 * Each switch waits until the way it leaves holds nothing, so byte
 * order is kept. A direction whose splice fell back to copying for
 * good (ZC_DIR_F_AUTO cleared) stays on the ring.
 *
 * The relay's other duties are the two movers' own: a hand-over
 * settles the ring's requests (and any SEND_ZC notification still due)
 * whichever way the direction moves; the pipe and buffer of readiness
 * travel as they do for the readiness movers, the ring's queue through
 * held/gather; an adopted direction starts on the ring.
 */
#include "compat.h"

#include "dir.h"
#include "log.h"

static int uauto_on_ready(const struct zc_dir *d)
{
	return (d->d_flags & ZC_DIR_F_READY) != 0;
}

/* On the ring, turned bulk and emptied: splice on readiness. */
static int uauto_to_ready(struct zc_loop *loop, struct zc_dir *d)
{
	d->d_flags &= ~(ZC_DIR_F_COPY | ZC_DIR_F_PROBE | ZC_DIR_F_SMALL_COUNT);
	zc__log(loop, ZC_LOG_DEBUG, "dir %d: bulk: splicing", d->d_idx);
	return zc__dir_by_ready(loop, d, 1);
}

/* On readiness, copying again (small splices, or a splice refused for
 * good) and holding nothing: back to the ring. */
static int uauto_to_ring(struct zc_loop *loop, struct zc_dir *d)
{
	d->d_flags &= ~(ZC_DIR_F_COPY | ZC_DIR_F_PROBE | ZC_DIR_F_SMALL_COUNT);
	zc__ring_restart(d);
	zc__dir_release_empty(loop, d);
	zc__log(loop, ZC_LOG_DEBUG, "dir %d: small again: ring", d->d_idx);
	return zc__dir_by_ready(loop, d, 0);
}

/* Returns 1 when the direction switched (run it again next turn). */
static int uauto_switch(struct zc_loop *loop, struct zc_dir *d, int *err)
{
	if (d->d_flags & (ZC_DIR_F_SETTLE | ZC_DIR_F_EOF))
		return 0; /* a hand-over, or the end: stay as it is */
	if (uauto_on_ready(d)) {
		if (!(d->d_flags & ZC_DIR_F_COPY) || zc__dir_pending(d))
			return 0;
		*err = uauto_to_ring(loop, d);
		return 1;
	}
	if (!zc__ring_turned_bulk(d))
		return 0;
	*err = uauto_to_ready(loop, d);
	return 1;
}

static int uauto_run(struct zc_loop *loop, struct zc_dir *d, size_t budget)
{
	int rc, err = 0;

	if (uauto_on_ready(d)) {
		/* Nothing is in flight: a settling hand-over takes the
		 * pipe and buffer as they are. */
		if (d->d_flags & ZC_DIR_F_SETTLE)
			return 0;
		rc = zc__mover_auto.run(loop, d, budget);
	} else {
		rc = zc__mover_ring.run(loop, d, budget);
	}
	if (rc < 0)
		return rc;
	if (uauto_switch(loop, d, &err))
		return err ? err : 1;
	return rc;
}

/* The ring's requests, or the pipe and buffer of readiness. */
static int uauto_holds(const struct zc_dir *d)
{
	return zc__mover_ring.holds(d) || zc__dir_pending(d) != 0;
}

static void uauto_init(struct zc_dir *d)
{
	zc__mover_ring.init(d);
	d->d_flags = ZC_DIR_F_AUTO;
}

/* The rest is the ring's: the buffer ring, its requests and queue (in
 * readiness, none is left: the direction switched only once idle). */
static int uauto_prepare(struct zc_loop *loop)
{
	return zc__mover_ring.prepare(loop);
}

static void uauto_release(struct zc_loop *loop, struct zc_dir *d)
{
	zc__mover_ring.release(loop, d);
}

static int uauto_detach(struct zc_loop *loop, struct zc_dir *d)
{
	return zc__mover_ring.detach(loop, d);
}

static int uauto_adopt(struct zc_loop *loop, struct zc_dir *d)
{
	return zc__mover_ring.adopt(loop, d);
}

static size_t uauto_held(const struct zc_dir *d)
{
	return zc__mover_ring.held(d);
}

static int uauto_gather(struct zc_loop *loop, const struct zc_dir *d,
                        struct zc_pipe *to)
{
	return zc__mover_ring.gather(loop, d, to);
}

const struct zc_mover_ops zc__mover_uauto = {
        .name = "auto",
        .mover = ZC_MOVER_AUTO,
        .by_completion = 1,
        .fallback = ZC_MOVER_AUTO, /* the readiness auto mover */
        .prepare = uauto_prepare,
        .init = uauto_init,
        .run = uauto_run,
        .holds = uauto_holds,
        .release = uauto_release,
        .detach = uauto_detach,
        .adopt = uauto_adopt,
        .held = uauto_held,
        .gather = uauto_gather,
};

/*
 * mover.c - the table of movers (mover.h): which operations move a
 * relay's bytes for each enum zc_mover, and the choice per relay with
 * its fallback. Adding a mover: its file, and one entry here.
 */
#include "compat.h"
#include "config.h"

#include "log.h"
#include "mover.h"

#if !ZC_HAVE_LIBURING
/* Built without liburing: the io_uring movers are not here. A relay
 * asking for one moves the nearest way, as on an epoll loop. */
static int mover_unbuilt(struct zc_loop *loop)
{
	return -EOPNOTSUPP;
}

static const struct zc_mover_ops mover_ring_unbuilt = {
        .name = "ring",
        .mover = ZC_MOVER_RING,
        .fallback = ZC_MOVER_COPY,
        .prepare = mover_unbuilt,
};

static const struct zc_mover_ops mover_usplice_unbuilt = {
        .name = "uring-splice",
        .mover = ZC_MOVER_URING_SPLICE,
        .fallback = ZC_MOVER_SPLICE,
        .prepare = mover_unbuilt,
};
#endif

static const struct zc_mover_ops *const movers[] = {
        [ZC_MOVER_AUTO] = &zc__mover_auto,
        [ZC_MOVER_SPLICE] = &zc__mover_splice,
        [ZC_MOVER_COPY] = &zc__mover_copy,
#if ZC_HAVE_LIBURING
        [ZC_MOVER_RING] = &zc__mover_ring,
        [ZC_MOVER_URING_SPLICE] = &zc__mover_usplice,
#else
        [ZC_MOVER_RING] = &mover_ring_unbuilt,
        [ZC_MOVER_URING_SPLICE] = &mover_usplice_unbuilt,
#endif
};

int zc__mover_valid(int mover)
{
	return mover >= 0 && (size_t)mover < countof(movers) && movers[mover];
}

/*
 * On an io_uring loop, auto is zc__mover_uauto, which falls back to the
 * readiness auto mover where the buffer ring is refused.
 *
 * The io_uring movers need the io_uring engine and their kernel
 * features: the ring mover the loop's buffer ring, the uring-splice
 * mover IORING_OP_SPLICE. Without them (an epoll loop, an older kernel)
 * the relay moves bytes the nearest way the loop can (each mover's
 * fallback): the caller asked for a way of moving bytes, not for a
 * failure.
 */
const struct zc_mover_ops *zc__mover_pick(struct zc_loop *loop, int mover,
                                          int *err)
{
	const struct zc_mover_ops *m;

	if (mover == ZC_MOVER_AUTO)
		mover = loop->mover;
	m = movers[mover];
#if ZC_HAVE_LIBURING
	/* auto on io_uring: the ring for small exchanges, splice on
	 * readiness for bulk (xfer_uauto.c). */
	if (m == &zc__mover_auto && zc_loop_engine(loop) == ZC_ENGINE_URING)
		m = &zc__mover_uauto;
#endif
	*err = m->prepare ? m->prepare(loop) : 0;
	if (!*err)
		return m;
	zc__log(loop, ZC_LOG_DEBUG, "%s mover: %s: %s instead", m->name,
	        zc_strerror(*err), movers[m->fallback]->name);
	return movers[m->fallback];
}

/*
 * watch.c - public fd watchers: readiness of a caller's own fd on a loop
 * (a PROXY header still to be read, a socket to write a greeting on).
 *
 * Level-triggered, so a callback that reads only part of what is there
 * is called again. The handle belongs to the caller, like a timer.
 */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>

#include "loop.h"

struct zc_watch {
	struct zc_io w_io;
	struct zc_loop *w_loop;
	zc_watch_fn *w_cb;
	void *w_arg;
};

static unsigned watch_io_events(unsigned ev)
{
	return (ev & ZC_WATCH_IN ? ZC_IO_IN : 0) |
	       (ev & ZC_WATCH_OUT ? ZC_IO_OUT : 0);
}

static void watch_on_io(struct zc_io *io, unsigned ev)
{
	struct zc_watch *w = container_of(io, struct zc_watch, w_io);
	unsigned out = (ev & ZC_IO_IN ? ZC_WATCH_IN : 0) |
	               (ev & ZC_IO_OUT ? ZC_WATCH_OUT : 0) |
	               (ev & (ZC_IO_ERR | ZC_IO_RDHUP) ? ZC_WATCH_ERR : 0);

	w->w_cb(w->w_arg, out);
}

int zc_watch_start(struct zc_watch **out, struct zc_loop *loop, int fd,
                   unsigned events, zc_watch_fn *cb, void *arg)
{
	struct zc_watch *w;
	int err;

	if (!out || !loop || fd < 0 || !cb || !watch_io_events(events) ||
	    (events & ~(ZC_WATCH_IN | ZC_WATCH_OUT)))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->w_loop = loop;
	w->w_cb = cb;
	w->w_arg = arg;
	err = zc__io_add(loop, &w->w_io, fd, watch_io_events(events),
	                 watch_on_io);
	if (err) {
		free(w);
		return err;
	}
	*out = w;
	return 0;
}

int zc_watch_set(struct zc_watch *w, unsigned events)
{
	if (!watch_io_events(events) ||
	    (events & ~(ZC_WATCH_IN | ZC_WATCH_OUT)))
		return -EINVAL;
	return zc__io_mod(w->w_loop, &w->w_io, watch_io_events(events));
}

void zc_watch_stop(struct zc_watch *w)
{
	if (!w)
		return;
	zc__io_del(w->w_loop, &w->w_io);
	free(w);
}

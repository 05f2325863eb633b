/*
 * loop_epoll.c - the epoll backend.
 *
 * Relays ask for edge-triggered events (ZC_IO_ET) and keep their own
 * readiness flags; listeners and the post eventfd are level-triggered.
 * When a watcher is removed while a batch of events is being dispatched,
 * its pending entries in the batch are cleared, so the owner may free
 * itself from inside a callback.
 */
#include "compat.h"

#include <stdlib.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "loop.h"

#define EP_BATCH 256

struct ep {
	int fd;
	int n, cur; /* events in the batch being dispatched, and position */
	struct epoll_event ev[EP_BATCH];
};

static uint32_t ep_events(unsigned ev)
{
	uint32_t e = 0;

	if (ev & ZC_IO_IN)
		e |= EPOLLIN;
	if (ev & ZC_IO_OUT)
		e |= EPOLLOUT;
	if (ev & ZC_IO_RDHUP)
		e |= EPOLLRDHUP;
	if (ev & ZC_IO_ET)
		e |= EPOLLET;
	return e;
}

static int ep_init(struct zc_loop *loop)
{
	struct ep *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return -ENOMEM;
	ep->fd = epoll_create1(EPOLL_CLOEXEC);
	if (ep->fd == -1) {
		int err = zc__neg_errno();

		free(ep);
		return err;
	}
	loop->backend = ep;
	return 0;
}

static void ep_fini(struct zc_loop *loop)
{
	struct ep *ep = loop->backend;

	close(ep->fd);
	free(ep);
	loop->backend = NULL;
}

static int ep_ctl(struct zc_loop *loop, int op, struct zc_io *io, unsigned ev)
{
	struct ep *ep = loop->backend;
	struct epoll_event e = {.events = ep_events(ev), .data.ptr = io};

	if (epoll_ctl(ep->fd, op, io->io_fd, &e) == -1)
		return zc__neg_errno();
	return 0;
}

static int ep_add(struct zc_loop *loop, struct zc_io *io, unsigned ev)
{
	return ep_ctl(loop, EPOLL_CTL_ADD, io, ev);
}

static int ep_mod(struct zc_loop *loop, struct zc_io *io, unsigned ev)
{
	return ep_ctl(loop, EPOLL_CTL_MOD, io, ev);
}

static void ep_del(struct zc_loop *loop, struct zc_io *io)
{
	struct ep *ep = loop->backend;
	int i;

	/* Fails only if the fd is already closed, which removed it too. */
	(void)epoll_ctl(ep->fd, EPOLL_CTL_DEL, io->io_fd, NULL);
	for (i = ep->cur; i < ep->n; i++)
		if (ep->ev[i].data.ptr == io)
			ep->ev[i].data.ptr = NULL;
}

static int ep_wait(struct zc_loop *loop, int timeout_ms)
{
	struct ep *ep = loop->backend;
	int n;

	n = epoll_wait(ep->fd, ep->ev, EP_BATCH, timeout_ms);
	if (n == -1)
		return errno == EINTR ? 0 : zc__neg_errno();
	if (n > 0)
		loop->now = zc__clock_ns();
	ep->n = n;
	for (ep->cur = 0; ep->cur < ep->n; ep->cur++) {
		struct epoll_event *e = &ep->ev[ep->cur];
		struct zc_io *io = e->data.ptr;
		unsigned ev = 0;

		if (!io)
			continue;
		if (e->events & EPOLLIN)
			ev |= ZC_IO_IN;
		if (e->events & EPOLLOUT)
			ev |= ZC_IO_OUT;
		if (e->events & EPOLLRDHUP)
			ev |= ZC_IO_RDHUP;
		if (e->events & (EPOLLERR | EPOLLHUP))
			ev |= ZC_IO_ERR;
		if (e->events & EPOLLERR)
			ev |= ZC_IO_SOERR;
		io->io_cb(io, ev);
	}
	ep->n = ep->cur = 0;
	return n;
}

const struct zc_loop_ops zc__epoll_ops = {
        .engine = ZC_ENGINE_EPOLL,
        .init = ep_init,
        .fini = ep_fini,
        .io_add = ep_add,
        .io_mod = ep_mod,
        .io_del = ep_del,
        .wait = ep_wait,
};

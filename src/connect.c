/*
 * connect.c - non-blocking connect with a timeout.
 *
 * The callback always runs from the loop, never from inside
 * zc_connect_start(), so a caller may start the next attempt from the
 * callback without recursion. A connect that completes at once (Unix
 * sockets usually do) is reported too: the socket is writable, so the
 * first wait reports it.
 *
 * On the io_uring engine a TCP connect is an IORING_OP_CONNECT request:
 * no connect() or getsockopt(SO_ERROR) system call and no poll, its
 * completion carries the result. A timeout cancels the request (the
 * socket closes once the kernel has let go of it). Unix sockets keep the
 * system call: their connect completes or fails at once, and a full
 * backlog must be refused, not waited for.
 */
#include "compat.h"

#include <stdlib.h>
#include <unistd.h>

#include "loop.h"
#include "sock.h"
#include "uring.h"

struct zc_connect {
	struct zc_owned cn_own;
	struct zc_loop *cn_loop;
	struct zc_io cn_io;
	struct zc_timer cn_timer;
	int cn_fd;
	struct zc_uop *cn_op; /* the io_uring connect in flight, or NULL */
	zc_connect_fn *cn_cb;
	void *cn_arg;
};

static void connect_free(struct zc_connect *c, int close_fd)
{
	if (c->cn_op)
		zc__uop_cancel(c->cn_loop, c->cn_op, 1);
	zc__io_del(c->cn_loop, &c->cn_io);
	zc__timer_disarm(&c->cn_timer);
	zc__loop_disown(&c->cn_own);
	if (close_fd && c->cn_fd >= 0)
		close(c->cn_fd);
	free(c);
}

/* Reports fd_or_err once and frees the attempt. */
static void connect_done(struct zc_connect *c, int fd_or_err)
{
	zc_connect_fn *cb = c->cn_cb;
	void *arg = c->cn_arg;

	connect_free(c, fd_or_err < 0);
	cb(arg, fd_or_err);
}

static void connect_on_io(struct zc_io *io, unsigned ev)
{
	struct zc_connect *c = container_of(io, struct zc_connect, cn_io);
	int err = 0;

	/* Writable with no error or hang-up: the connect completed, and
	 * there is nothing to ask. A failed one always leaves an error
	 * pending (refused, timed out, unreachable): SO_ERROR fetches it. */
	if ((ev & ZC_IO_ERR) || !(ev & ZC_IO_OUT))
		err = zc__sock_error(c->cn_fd);
	connect_done(c, err ? err : c->cn_fd);
}

static void connect_on_uop(void *arg, int res, int id, int more)
{
	struct zc_connect *c = arg;

	c->cn_op = NULL; /* its only completion */
	connect_done(c, res < 0 ? res : c->cn_fd);
}

/* Starts connecting c->cn_fd: with io_uring's connect where the loop
 * has it (TCP), else with connect() and a watch for writability. */
static int connect_begin(struct zc_connect *c, const struct sockaddr *sa,
                         socklen_t salen)
{
	struct zc_loop *loop = c->cn_loop;

	if (sa->sa_family != AF_UNIX && zc__uop_net(loop)) {
		c->cn_fd = zc__sock_stream(sa->sa_family);
		if (c->cn_fd < 0)
			return c->cn_fd;
		return zc__uop_connect(loop, c->cn_fd, sa, salen,
		                       connect_on_uop, c, &c->cn_op);
	}
	c->cn_fd = zc__sock_connect_start(sa, salen);
	if (c->cn_fd < 0)
		return c->cn_fd;
	return zc__io_add(loop, &c->cn_io, c->cn_fd, ZC_IO_OUT, connect_on_io);
}

static void connect_on_timeout(void *arg)
{
	connect_done(arg, -ETIMEDOUT);
}

static void connect_abort_owned(struct zc_owned *o)
{
	connect_free(container_of(o, struct zc_connect, cn_own), 1);
}

int zc_connect_start(struct zc_connect **out, struct zc_loop *loop,
                     const struct sockaddr *sa, socklen_t salen,
                     unsigned timeout_ms, zc_connect_fn *cb, void *arg)
{
	struct zc_connect *c;
	int err;

	if (!loop || !sa || !cb)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	loop->now = zc__clock_ns(); /* the deadline counts from now */
	c->cn_loop = loop;
	c->cn_cb = cb;
	c->cn_arg = arg;
	zc__list_init(&c->cn_own.ow_node);
	zc__timer_init(&c->cn_timer, loop, connect_on_timeout, c);
	err = connect_begin(c, sa, salen);
	if (err && c->cn_fd < 0) {
		free(c);
		return err;
	}
	if (!err && timeout_ms)
		err = zc__timer_arm_at(&c->cn_timer,
		                       zc__loop_now(loop) +
		                               timeout_ms * 1000000ULL);
	if (err) {
		connect_free(c, 1);
		return err;
	}
	zc__loop_own(loop, &c->cn_own, connect_abort_owned);
	if (out)
		*out = c;
	return 0;
}

void zc_connect_cancel(struct zc_connect *c)
{
	if (c)
		connect_free(c, 1);
}

/*
 * uring_none.c - what a build without liburing has of the io_uring
 * engine: an engine whose init says -ENOSYS (the loop falls back to
 * epoll, or ZC_ENOURING when io_uring was asked for), no accept or
 * connect requests (zc__uop_net() is 0, so listeners and connects use
 * the system calls), and the tests' seams, so that one test binary
 * builds either way. The io_uring movers are not built at all: the
 * mover table (mover.c) has no entry for them and relays asking for
 * them fall back. Built instead of loop_uring.c, uring_ops.c and
 * uring_bufs.c (Makefile).
 */
#include "compat.h"

#include "log.h"
#include "loop.h"
#include "uring.h"

int zc__uring_inject_err;
int zc__uring_no_defer;
int zc__uring_inject_recv_einval;
int zc__usplice_inject_probe;
int (*zc__usplice_seam)(int fd_in, int fd_out);

static int none_init(struct zc_loop *loop)
{
	zc__log(loop, ZC_LOG_INFO, "io_uring: built without liburing");
	return -ENOSYS;
}

const struct zc_loop_ops zc__uring_ops = {
        .engine = ZC_ENGINE_URING,
        .init = none_init,
};

int zc__uop_net(const struct zc_loop *loop)
{
	return 0;
}

/* Never called: zc__uop_net() is 0. */
int zc__uop_accept(struct zc_loop *loop, int lfd, zc_uop_fn *cb, void *arg,
                   struct zc_uop **out)
{
	return -EOPNOTSUPP;
}

int zc__uop_connect(struct zc_loop *loop, int fd, const struct sockaddr *sa,
                    socklen_t salen, zc_uop_fn *cb, void *arg,
                    struct zc_uop **out)
{
	return -EOPNOTSUPP;
}

void zc__uop_cancel(struct zc_loop *loop, struct zc_uop *op, int detach)
{
}

void zc__uop_accept_take(struct zc_loop *loop, const struct zc_uop *op,
                         void (*fn)(void *arg, int fd), void *arg)
{
}

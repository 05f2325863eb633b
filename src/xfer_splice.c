/*
 * xfer_splice.c - the splice mover: socket -> pipe -> socket.
 *
 * The direction knows exactly how many bytes sit in its pipe (d_inpipe),
 * so it never asks to splice more than the room left, and a pump can
 * never mistake an empty pipe for a full socket.
 *
 * The one ambiguity left: socket -> pipe returns EAGAIN both when the
 * socket is empty and when the pipe has no free slot. Slots, not bytes,
 * run out first when small segments arrive (a 1 MiB pipe has 256 slots,
 * each can hold a 100-byte skb fragment). With an empty pipe EAGAIN can
 * only mean "socket empty". With bytes in the pipe a zero-timeout poll()
 * tells the two apart: a readable socket means the pipe is full, so the
 * drain waits for the pump instead of waiting for an edge that has
 * already come (edge-triggered epoll would never report it again).
 *
 * Lengths: each call asks for at most the pipe's free room, far below
 * INT_MAX (a length of SIZE_MAX is negative as ssize_t and kernels from
 * 6.8 return EINVAL, which silently turned other relays into copy relays).
 * SPLICE_F_MORE is never set on the socket side: it can hold data back
 * for up to 200 ms.
 */
#include "compat.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include "dir.h"
#include "log.h"
#include "xfer.h"

#define ZC_SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

ssize_t (*zc__sys_splice)(int, loff_t *, int, loff_t *, size_t,
                          unsigned) = splice;

/* After EAGAIN with bytes in the pipe: is the socket still readable? */
static int splice_src_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

	if (poll(&p, 1, 0) != 1)
		return 0;
	return (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Switches the drain of d to copy for good, recording why. */
static void splice_fallback(struct zc_loop *loop, struct zc_dir *d, int err)
{
	d->d_flags |= ZC_DIR_F_COPY;
	/* for good: never promote again (nor demote) */
	d->d_flags &= ~(ZC_DIR_F_PROBE | ZC_DIR_F_AUTO);
	if (!d->d_st.fallback)
		d->d_st.fallback = err;
	zc__log(loop, ZC_LOG_DEBUG, "dir %d: splice from fd %d: %s: copying",
	        d->d_idx, d->d_src->s_fd, zc_strerror(err));
}

int zc__splice_drain(struct zc_loop *loop, struct zc_dir *d)
{
	ssize_t n;
	size_t room;
	int err;

	if (!d->d_pipe) {
		err = zc__pipe_get(&loop->pipes, &d->d_pipe);
		if (err) {
			/* No pipe to be had now: copy this round, so the
			 * client never sees the shortage. */
			loop->st.pipe_shortage++;
			return zc__copy_drain(loop, d);
		}
	}
	room = d->d_pipe->p_size - d->d_inpipe;
	do {
		n = zc__sys_splice(d->d_src->s_fd, NULL, d->d_pipe->p_wfd, NULL,
		                   room, ZC_SPLICE_FLAGS);
	} while (n == -1 && errno == EINTR);
	if (n > 0) {
		d->d_inpipe += (size_t)n;
		zc__dir_read(d, (size_t)n);
		return (int)n;
	}
	if (n == 0)
		return 0;
	err = zc__neg_errno();
	if (err == -EAGAIN) {
		if (d->d_inpipe && splice_src_readable(d->d_src->s_fd))
			d->d_flags |= ZC_DIR_F_PIPE_FULL;
		else
			d->d_src->s_ready &= ~ZC_SIDE_R;
		return -EAGAIN;
	}
	if (zc__splice_unsupported(err)) {
		splice_fallback(loop, d, err);
		/* Bytes already in the pipe must leave before any copied. */
		return d->d_inpipe ? -EAGAIN : zc__copy_drain(loop, d);
	}
	return err;
}

int zc__splice_pump(struct zc_loop *loop, struct zc_dir *d)
{
	ssize_t n;
	int err;

	if (d->d_flags & ZC_DIR_F_PUMP_COPY)
		return zc__copy_pump(loop, d);
	do {
		n = zc__sys_splice(d->d_pipe->p_rfd, NULL, d->d_dst->s_fd, NULL,
		                   d->d_inpipe, ZC_SPLICE_FLAGS);
	} while (n == -1 && errno == EINTR);
	if (n > 0) {
		d->d_inpipe -= (size_t)n;
		zc__dir_count(d, (size_t)n, 1);
		d->d_flags &= ~ZC_DIR_F_PIPE_FULL;
		return (int)n;
	}
	if (n == 0)
		return -EIO; /* the pipe is empty although we counted bytes */
	err = zc__neg_errno();
	if (err == -EAGAIN) {
		d->d_dst->s_ready &= ~ZC_SIDE_W;
		return -EAGAIN;
	}
	if (zc__splice_unsupported(err)) {
		/* The destination refuses splice: empty the pipe through the
		 * buffer from now on (read from the pipe, then send). */
		d->d_flags |= ZC_DIR_F_PUMP_COPY;
		splice_fallback(loop, d, err);
		return zc__copy_pump(loop, d);
	}
	return err;
}

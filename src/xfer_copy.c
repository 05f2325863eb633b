/*
 * xfer_copy.c - the copy mover: recv() into a pooled buffer, send() out.
 *
 * Also empties a pipe through the buffer when the destination refused
 * splice after bytes were already spliced into the pipe. Order is kept:
 * the buffer always holds older bytes than the pipe, and a drain only
 * starts when the other holding is empty.
 */
#include "compat.h"

#include <unistd.h>
#include <sys/socket.h>

#include "dir.h"
#include "xfer.h"

static int copy_buf(struct zc_loop *loop, struct zc_dir *d)
{
	if (d->d_buf)
		return 0;
	d->d_buf = zc__buf_get(&loop->bufs);
	return d->d_buf ? 0 : -ENOMEM;
}

int zc__copy_drain(struct zc_loop *loop, struct zc_dir *d)
{
	ssize_t n;
	int err;

	err = copy_buf(loop, d);
	if (err)
		return err;
	do {
		n = recv(d->d_src->s_fd, d->d_buf->b_data, ZC_BUF_SIZE, 0);
	} while (n == -1 && errno == EINTR);
	if (n > 0) {
		/* A short read emptied the socket: bytes that come later are
		 * a new event (edge-triggered epoll and io_uring polls report
		 * every arrival), so do not ask again only to hear EAGAIN, a
		 * system call per small message saved. Once the FIN was
		 * reported no new event will come: read on to the EOF. */
		if ((size_t)n < ZC_BUF_SIZE &&
		    !(d->d_src->s_ready & ZC_SIDE_HUP))
			d->d_src->s_ready &= ~ZC_SIDE_R;
		d->d_boff = 0;
		d->d_blen = (size_t)n;
		zc__dir_read(d, (size_t)n);
		return (int)n;
	}
	if (n == 0)
		return 0;
	err = zc__neg_errno();
	if (err == -EAGAIN)
		d->d_src->s_ready &= ~ZC_SIDE_R;
	return err;
}

/* Refills the empty buffer from the pipe (PUMP_COPY). */
static int copy_from_pipe(struct zc_dir *d)
{
	size_t want = ZC_MIN(d->d_inpipe, (size_t)ZC_BUF_SIZE);
	ssize_t n;

	do {
		n = read(d->d_pipe->p_rfd, d->d_buf->b_data, want);
	} while (n == -1 && errno == EINTR);
	if (n <= 0)
		return -EIO; /* our own pipe holds d_inpipe bytes */
	d->d_inpipe -= (size_t)n;
	d->d_flags &= ~ZC_DIR_F_PIPE_FULL;
	d->d_boff = 0;
	d->d_blen = (size_t)n;
	return 0;
}

int zc__copy_pump(struct zc_loop *loop, struct zc_dir *d)
{
	ssize_t n;
	int err;

	if (d->d_boff == d->d_blen) {
		err = copy_buf(loop, d);
		if (!err)
			err = copy_from_pipe(d);
		if (err)
			return err;
	}
	do {
		n = send(d->d_dst->s_fd, d->d_buf->b_data + d->d_boff,
		         d->d_blen - d->d_boff, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n == -1 && errno == EINTR);
	if (n > 0) {
		d->d_boff += (size_t)n;
		if (d->d_boff == d->d_blen)
			d->d_boff = d->d_blen = 0;
		zc__dir_count(d, (size_t)n, 0);
		return (int)n;
	}
	err = n == 0 ? -EIO : zc__neg_errno();
	if (err == -EAGAIN)
		d->d_dst->s_ready &= ~ZC_SIDE_W;
	return err;
}

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

#include "conn.h"
#include "xfer.h"

static int copy_buf(struct zc_loop *loop, struct zc_conn *c)
{
	if (c->c_buf)
		return 0;
	c->c_buf = zc__buf_get(&loop->bufs);
	return c->c_buf ? 0 : -ENOMEM;
}

int zc__copy_drain(struct zc_loop *loop, struct zc_conn *c)
{
	ssize_t n;
	int err;

	err = copy_buf(loop, c);
	if (err)
		return err;
	do {
		n = recv(c->c_src->s_fd, c->c_buf->b_data, ZC_BUF_SIZE, 0);
	} while (n == -1 && errno == EINTR);
	if (n > 0) {
		/* A short read emptied the socket: bytes that come later are
		 * a new event (edge-triggered epoll and io_uring polls report
		 * every arrival), so do not ask again only to hear EAGAIN, a
		 * system call per small message saved. Once the FIN was
		 * reported no new event will come: read on to the EOF. */
		if ((size_t)n < ZC_BUF_SIZE &&
		    !(c->c_src->s_ready & ZC_SIDE_HUP))
			c->c_src->s_ready &= ~ZC_SIDE_R;
		c->c_boff = 0;
		c->c_blen = (size_t)n;
		return (int)n;
	}
	if (n == 0)
		return 0;
	err = zc__neg_errno();
	if (err == -EAGAIN)
		c->c_src->s_ready &= ~ZC_SIDE_R;
	return err;
}

/* Refills the empty buffer from the pipe (PUMP_COPY). */
static int copy_from_pipe(struct zc_conn *c)
{
	size_t want = ZC_MIN(c->c_inpipe, (size_t)ZC_BUF_SIZE);
	ssize_t n;

	do {
		n = read(c->c_pipe->p_rfd, c->c_buf->b_data, want);
	} while (n == -1 && errno == EINTR);
	if (n <= 0)
		return -EIO; /* our own pipe holds c_inpipe bytes */
	c->c_inpipe -= (size_t)n;
	c->c_flags &= ~ZC_CONN_F_PIPE_FULL;
	c->c_boff = 0;
	c->c_blen = (size_t)n;
	return 0;
}

int zc__copy_pump(struct zc_loop *loop, struct zc_conn *c)
{
	ssize_t n;
	int err;

	if (c->c_boff == c->c_blen) {
		err = copy_buf(loop, c);
		if (!err)
			err = copy_from_pipe(c);
		if (err)
			return err;
	}
	do {
		n = send(c->c_dst->s_fd, c->c_buf->b_data + c->c_boff,
		         c->c_blen - c->c_boff, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n == -1 && errno == EINTR);
	if (n > 0) {
		c->c_boff += (size_t)n;
		if (c->c_boff == c->c_blen)
			c->c_boff = c->c_blen = 0;
		zc__conn_count(c, (size_t)n, 0);
		return (int)n;
	}
	err = n == 0 ? -EIO : zc__neg_errno();
	if (err == -EAGAIN)
		c->c_dst->s_ready &= ~ZC_SIDE_W;
	return err;
}

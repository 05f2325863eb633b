/*
 * transfer.c - zc_transfer(): one direction, blocking, from a socket, a
 * pipe or a regular file into a socket.
 *
 *   regular file -> sendfile(2) (zero-copy; pread/send as the copy mover)
 *   pipe         -> splice(2) straight into the socket
 *   socket       -> splice(2) through a private pipe
 *
 * Sockets and pipes are switched to O_NONBLOCK for the call so that the
 * idle timeout can be kept with poll(); their flags are restored at the
 * end. A zero-copy call that fails with EINVAL/ENOSYS/EBADF/... before it
 * moved anything switches the rest of the transfer to read/write.
 */
#include "compat.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "sock.h"
#include "xfer.h"

#define XFER_CHUNK (1U << 20) /* bytes per call: far below INT_MAX */

enum xfer_src { XFER_FILE, XFER_PIPE, XFER_SOCK };

struct xfer {
	int dst, src, kind;
	int copy;    /* 1: read/write */
	int use_off; /* 1: file read at off, position untouched */
	off_t off;
	uint64_t limit; /* bytes to write to dst; UINT64_MAX: until EOF */
	int idle_ms;    /* -1: none */
	int pfd[2];     /* private pipe (socket source) */
	size_t inpipe;
	struct zc_transfer_stats *st;
	char buf[ZC_BUF_SIZE];
};

void zc_transfer_opts_init(struct zc_transfer_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->offset = -1;
	opts->length = -1;
	opts->mover = ZC_MOVER_AUTO;
}

/* Waits until fd is ready for events; -ETIMEDOUT after the idle time. */
static int xfer_wait(const struct xfer *x, int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	int n;

	do {
		n = poll(&p, 1, x->idle_ms);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return zc__neg_errno();
	return n == 0 ? -ETIMEDOUT : 0;
}

/* Sends len bytes of buf completely. */
static int xfer_send_all(struct xfer *x, const char *buf, size_t len)
{
	ssize_t n;
	int err;

	while (len) {
		n = send(x->dst, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			x->st->copied += (uint64_t)n;
			x->st->bytes += (uint64_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN)
			return zc__neg_errno();
		err = xfer_wait(x, x->dst, POLLOUT);
		if (err)
			return err;
	}
	return 0;
}

static uint64_t xfer_left(const struct xfer *x)
{
	return x->limit == UINT64_MAX ? UINT64_MAX : x->limit - x->st->bytes;
}

static size_t xfer_want(const struct xfer *x, size_t cap)
{
	/* Counted from what reached dst, so bytes flushed after a fallback
	 * are never sent twice or past the limit. */
	uint64_t left = xfer_left(x);

	return left < cap ? (size_t)left : cap;
}

/* One read/write step. Returns bytes moved, 0 at EOF, or -errno. */
static int xfer_copy_step(struct xfer *x)
{
	size_t want = xfer_want(x, sizeof(x->buf));
	ssize_t n;
	int err;

	for (;;) {
		n = x->use_off ? pread(x->src, x->buf, want, x->off)
		               : read(x->src, x->buf, want);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return zc__neg_errno();
		err = xfer_wait(x, x->src, POLLIN);
		if (err)
			return err;
	}
	if (n == 0)
		return 0;
	if (x->use_off)
		x->off += n;
	err = xfer_send_all(x, x->buf, (size_t)n);
	return err ? err : (int)n;
}

/* Moves what sits in the private pipe out through the buffer. */
static int xfer_pipe_flush_copy(struct xfer *x)
{
	ssize_t n;
	int err;

	while (x->inpipe) {
		n = read(x->pfd[0], x->buf, ZC_MIN(x->inpipe, sizeof(x->buf)));
		if (n <= 0)
			return -EIO;
		x->inpipe -= (size_t)n;
		err = xfer_send_all(x, x->buf, (size_t)n);
		if (err)
			return err;
	}
	return 0;
}

/* pipe (ours or the source) -> dst. Returns bytes, or -errno. */
static int xfer_pump(struct xfer *x, int rfd, size_t len)
{
	ssize_t n;
	int err;

	for (;;) {
		n = zc__sys_splice(rfd, NULL, x->dst, NULL, len,
		                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			x->st->spliced += (uint64_t)n;
			x->st->bytes += (uint64_t)n;
			x->st->handled = 1;
			return (int)n;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return zc__neg_errno();
		/* A pipe source may be the empty side, a socket the full
		 * one: wait for data, then for room. */
		if (rfd == x->src) {
			err = xfer_wait(x, rfd, POLLIN);
			if (err)
				return err;
		}
		err = xfer_wait(x, x->dst, POLLOUT);
		if (err)
			return err;
	}
}

/* socket -> private pipe. Returns bytes, 0 at EOF, or -errno. */
static int xfer_drain(struct xfer *x)
{
	ssize_t n;
	int err;

	for (;;) {
		n = zc__sys_splice(x->src, NULL, x->pfd[1], NULL,
		                   xfer_want(x, XFER_CHUNK),
		                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return zc__neg_errno();
		/* The pipe is empty here, so EAGAIN means "socket empty". */
		err = xfer_wait(x, x->src, POLLIN);
		if (err)
			return err;
	}
}

/* One zero-copy step. Returns bytes moved, 0 at EOF, or -errno. */
static int xfer_zc_step(struct xfer *x)
{
	ssize_t n;
	int err;

	switch (x->kind) {
	case XFER_FILE:
		for (;;) {
			n = sendfile(x->dst, x->src,
			             x->use_off ? &x->off : NULL,
			             xfer_want(x, XFER_CHUNK));
			if (n >= 0)
				break;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return zc__neg_errno();
			err = xfer_wait(x, x->dst, POLLOUT);
			if (err)
				return err;
		}
		x->st->spliced += (uint64_t)n;
		x->st->bytes += (uint64_t)n;
		x->st->handled |= n > 0;
		return (int)n;
	case XFER_PIPE:
		return xfer_pump(x, x->src, xfer_want(x, XFER_CHUNK));
	default:
		n = xfer_drain(x);
		if (n <= 0)
			return (int)n;
		x->inpipe = (size_t)n;
		while (x->inpipe) {
			err = xfer_pump(x, x->pfd[0], x->inpipe);
			if (err <= 0)
				return err == 0 ? -EIO : err;
			x->inpipe -= (size_t)err;
		}
		return (int)n;
	}
}

static int xfer_run(struct xfer *x)
{
	int n;

	while (xfer_left(x)) {
		n = x->copy ? xfer_copy_step(x) : xfer_zc_step(x);
		if (!x->copy && n < 0 && zc__splice_unsupported(n)) {
			/* Nothing was moved by the failed call. */
			x->copy = 1;
			x->st->fallback = n;
			n = x->inpipe ? xfer_pipe_flush_copy(x) : 0;
			if (n < 0)
				return n;
			continue;
		}
		if (n < 0)
			return n;
		if (n == 0) {
			x->st->eof = 1;
			return x->limit == UINT64_MAX ? 0 : -ENODATA;
		}
	}
	return 0;
}

/* Classifies src and checks the range against the file. */
static int xfer_check_src(struct xfer *x, const struct zc_transfer_opts *o)
{
	struct stat st;
	off_t start;

	if (fstat(x->src, &st) == -1)
		return -EBADF;
	if (S_ISREG(st.st_mode)) {
		x->kind = XFER_FILE;
		x->use_off = o->offset >= 0;
		start = x->use_off ? (off_t)o->offset
		                   : lseek(x->src, 0, SEEK_CUR);
		if (start == -1)
			return zc__neg_errno();
		x->off = start;
		if (start > st.st_size ||
		    (o->length >= 0 && o->length > st.st_size - start))
			return -EINVAL;
		return 0;
	}
	if (o->offset >= 0)
		return -ESPIPE;
	if (S_ISFIFO(st.st_mode))
		x->kind = XFER_PIPE;
	else if (S_ISSOCK(st.st_mode))
		x->kind = XFER_SOCK;
	else
		return -EINVAL;
	return 0;
}

static int xfer_setup(struct xfer *x, int dst, int src,
                      const struct zc_transfer_opts *o)
{
	int err;

	if (o->offset < -1 || o->length < -1 || o->mover < ZC_MOVER_AUTO ||
	    o->mover > ZC_MOVER_URING_SPLICE)
		return -EINVAL;
	x->dst = dst;
	x->src = src;
	x->pfd[0] = x->pfd[1] = -1;
	/* No loop here, so no io_uring: the ring mover copies, the
	 * uring-splice mover splices with splice(2). */
	x->copy = o->mover == ZC_MOVER_COPY || o->mover == ZC_MOVER_RING;
	x->limit = o->length < 0 ? UINT64_MAX : (uint64_t)o->length;
	x->idle_ms = o->idle_timeout_ms ? (int)ZC_MIN(o->idle_timeout_ms,
	                                              (unsigned)INT32_MAX)
	                                : -1;
	err = zc__sock_check_stream(dst, ZC_SOCK_F_PEER, NULL);
	if (err)
		return err;
	err = xfer_check_src(x, o);
	if (err)
		return err;
	if (x->kind == XFER_SOCK && !x->copy &&
	    pipe2(x->pfd, O_NONBLOCK | O_CLOEXEC) == -1)
		x->copy = 1; /* no pipe to be had: copy, still correct */
	if (x->pfd[1] >= 0)  /* EPERM past the user's budget: keep 64 KiB */
		(void)fcntl(x->pfd[1], F_SETPIPE_SZ, (int)XFER_CHUNK);
	return 0;
}

int zc_transfer(int dst, int src, const struct zc_transfer_opts *opts,
                struct zc_transfer_stats *stats)
{
	struct zc_transfer_opts o;
	struct zc_transfer_stats dummy;
	struct xfer *x;
	int err, fl_dst, fl_src = -1;

	if (opts)
		o = *opts;
	else
		zc_transfer_opts_init(&o);
	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	zc__sigpipe_ignore();
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->st = stats;
	err = xfer_setup(x, dst, src, &o);
	if (err)
		goto out;
	fl_dst = zc__fd_set_nonblock(dst, 1);
	if (x->kind != XFER_FILE)
		fl_src = zc__fd_set_nonblock(src, 1);
	err = xfer_run(x);
	zc__fd_restore_flags(dst, fl_dst);
	zc__fd_restore_flags(src, fl_src);
out:
	if (x->pfd[0] >= 0) {
		close(x->pfd[0]);
		close(x->pfd[1]);
	}
	free(x);
	return err;
}

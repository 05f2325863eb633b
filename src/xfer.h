/*
 * xfer.h - data movers. A drain moves bytes from the source socket into
 * what the direction holds (pipe or buffer); a pump moves held bytes to
 * the destination socket. All return > 0 (bytes), 0 (EOF, drains only),
 * -EAGAIN (would block; readiness flags updated), or -errno.
 */
#ifndef ZC_XFER_H
#define ZC_XFER_H

#include <fcntl.h>
#include <sys/types.h>

#include "relay-t.h"

/* 1 if err from a first splice means "this fd pair cannot splice". */
static inline int zc__splice_unsupported(int err)
{
	return err == -EINVAL || err == -ENOSYS || err == -EBADF ||
	       err == -ENOMEM || err == -EOPNOTSUPP;
}

/* splice(2), behind a pointer so tests can inject failures. */
extern ssize_t (*zc__sys_splice)(int fd_in, loff_t *off_in, int fd_out,
                                 loff_t *off_out, size_t len, unsigned flags);

int zc__splice_drain(struct zc_loop *loop, struct zc_conn *c);
int zc__splice_pump(struct zc_loop *loop, struct zc_conn *c);
int zc__copy_drain(struct zc_loop *loop, struct zc_conn *c);
int zc__copy_pump(struct zc_loop *loop, struct zc_conn *c);

/*
 * The ring mover (xfer_ring.c) is driven by completions, not readiness:
 * zc__ring_run() submits what the direction can do now (a send of the
 * oldest buffer, a multishot recv) and returns 0, or the -errno a
 * completion reported. Completions queue the relay's task, which runs
 * the directions again. zc__ring_release() cancels the requests and
 * drops the queued buffers; requests in flight keep theirs until their
 * final CQE.
 */
int zc__ring_run(struct zc_loop *loop, struct zc_conn *c);
void zc__ring_release(struct zc_loop *loop, struct zc_conn *c);

/*
 * The uring-splice mover (xfer_wqsplice.c), driven by completions like
 * the ring mover: zc__wqs_run() submits the poll or IORING_OP_SPLICE
 * each half of the direction can do now and returns 0, or the -errno a
 * completion reported. zc__wqs_release() cancels the requests (io-wq
 * may still finish a splice already running: the pipe is then
 * destroyed, never reused) and gives the pipe and buffer back.
 * Loop thread.
 */
int zc__wqs_run(struct zc_loop *loop, struct zc_conn *c);
/* Tests: called before each IORING_OP_SPLICE is submitted; a negative
 * errno stands for the kernel refusing it (nothing is submitted and the
 * mover sees that result). NULL: no seam. */
extern int (*zc__uring_splice_seam)(int fd_in, int fd_out);
void zc__wqs_release(struct zc_loop *loop, struct zc_conn *c);

#endif

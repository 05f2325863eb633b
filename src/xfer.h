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

int zc__splice_drain(struct zc_loop *loop, struct zc_dir *d);
int zc__splice_pump(struct zc_loop *loop, struct zc_dir *d);
int zc__copy_drain(struct zc_loop *loop, struct zc_dir *d);
int zc__copy_pump(struct zc_loop *loop, struct zc_dir *d);

/* Tests: called before each IORING_OP_SPLICE of the uring-splice mover
 * (xfer_usplice.c) is submitted; a negative errno stands for the kernel
 * refusing it (nothing is submitted and the mover sees that result).
 * NULL: no seam. */
extern int (*zc__usplice_seam)(int fd_in, int fd_out);

#endif

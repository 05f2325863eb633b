/* sock.h - socket helpers (leaf module). All return -errno on failure. */
#ifndef ZC_SOCK_H
#define ZC_SOCK_H

#include <sys/socket.h>

/* Sets or clears O_NONBLOCK on fd. Returns the previous file status
 * flags (>= 0) or -errno. */
int zc__fd_set_nonblock(int fd, int on);

/* Restores file status flags saved by zc__fd_set_nonblock(). */
void zc__fd_restore_flags(int fd, int flags);

struct stat;

/* Flags of the checks below. */
#define ZC_SOCK_F_PEER 0x1 /* demand a connected peer (getpeername) */

/*
 * Checks that fd is a stream socket, and with ZC_SOCK_F_PEER that it is
 * connected (the splice contract; an adopted relay's sockets may have
 * lost their peer since). Returns 0 or -EBADF, -ENOTSOCK,
 * -ESOCKTNOSUPPORT, -ENOTCONN. When st is not NULL, stores fstat's
 * answer (st_dev and st_ino name the socket behind the fd).
 */
int zc__sock_check_stream(int fd, unsigned flags, struct stat *st);

/* Validates a pair for a relay: both checked as above (with flags) and
 * two different sockets, not two fds of one (-EINVAL otherwise). */
int zc__sock_check_pair(int fd_a, int fd_b, unsigned flags);

/* Sets SO_LINGER {1, 0} so that close() sends a reset. */
void zc__sock_set_reset(int fd);

/* Sets TCP_NODELAY if fd is a TCP socket; ignores other families. */
void zc__sock_nodelay(int fd);

/* Returns the pending socket error as -errno (0 if none). */
int zc__sock_error(int fd);

/* accept4(SOCK_NONBLOCK | SOCK_CLOEXEC), retrying EINTR. Returns the fd or
 * -errno. */
int zc__sock_accept(int lfd, struct sockaddr *sa, socklen_t *len);

/* A non-blocking, close-on-exec stream socket of family; fd or -errno. */
int zc__sock_stream(int family);

/* Creates a non-blocking socket for sa's family and starts connecting.
 * Returns the fd (connect in progress or done) or -errno. */
int zc__sock_connect_start(const struct sockaddr *sa, socklen_t len);

/* Ignores SIGPIPE if it still has its default disposition. */
void zc__sigpipe_ignore(void);

#endif

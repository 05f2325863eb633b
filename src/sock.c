/* sock.c - socket helpers: flags, validation, accept, connect, listen. */
#include "compat.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "sock.h"

int zc__fd_set_nonblock(int fd, int on)
{
	int fl, nfl;

	fl = fcntl(fd, F_GETFL);
	if (fl == -1)
		return zc__neg_errno();
	nfl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	if (nfl != fl && fcntl(fd, F_SETFL, nfl) == -1)
		return zc__neg_errno();
	return fl;
}

void zc__fd_restore_flags(int fd, int flags)
{
	if (flags >= 0)
		(void)fcntl(fd, F_SETFL, flags);
}

int zc__sock_check_stream(int fd, unsigned flags, struct stat *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct stat st;
	int type = 0;
	socklen_t tlen = sizeof(type);

	if (fd < 0 || fstat(fd, &st) == -1)
		return -EBADF;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == -1)
		return zc__neg_errno();
	if (type != SOCK_STREAM)
		return -ESOCKTNOSUPPORT;
	if ((flags & ZC_SOCK_F_PEER) &&
	    getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return errno == ENOTCONN ? -ENOTCONN : zc__neg_errno();
	if (out)
		*out = st;
	return 0;
}

int zc__sock_check_pair(int fd_a, int fd_b, unsigned flags)
{
	struct stat sa, sb;
	int err;

	err = zc__sock_check_stream(fd_a, flags, &sa);
	if (err)
		return err;
	err = zc__sock_check_stream(fd_b, flags, &sb);
	if (err)
		return err;
	/* Two fds of one socket (dup) would relay a socket to itself. */
	if (fd_a == fd_b || (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino))
		return -EINVAL;
	return 0;
}

void zc__sock_set_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void zc__sock_nodelay(int fd)
{
	int one = 1;

	/* Fails with EOPNOTSUPP on Unix sockets: nothing to do there. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int zc__sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return zc__neg_errno();
	return -err;
}

int zc__sock_accept(int lfd, struct sockaddr *sa, socklen_t *len)
{
	int fd;

	do {
		fd = accept4(lfd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	} while (fd == -1 && errno == EINTR);
	if (fd == -1)
		return zc__neg_errno();
	return fd;
}

int zc__sock_stream(int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	return fd == -1 ? zc__neg_errno() : fd;
}

int zc__sock_connect_start(const struct sockaddr *sa, socklen_t len)
{
	int fd, err;

	fd = zc__sock_stream(sa->sa_family);
	if (fd < 0)
		return fd;
	if (connect(fd, sa, len) == -1 && errno != EINPROGRESS &&
	    errno != EINTR) {
		/* EAGAIN on a Unix socket means its backlog is full. */
		err = errno == EAGAIN ? -ECONNREFUSED : zc__neg_errno();
		close(fd);
		return err;
	}
	return fd;
}

void zc__sigpipe_ignore(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == -1)
		return;
	if (sa.sa_handler != SIG_DFL || (sa.sa_flags & SA_SIGINFO))
		return;
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	(void)sigaction(SIGPIPE, &sa, NULL);
}

/* Removes a Unix socket file if nobody accepts on it any more. */
static int listen_unix_unlink_stale(const struct sockaddr_un *sun,
                                    socklen_t len)
{
	struct stat st;
	int fd, err;

	if (sun->sun_path[0] == '\0') /* abstract: nothing on disk */
		return 0;
	if (lstat(sun->sun_path, &st) == -1)
		return errno == ENOENT ? 0 : zc__neg_errno();
	if (!S_ISSOCK(st.st_mode))
		return -EADDRINUSE;
	/* Non-blocking: a live server with a full backlog answers EAGAIN
	 * at once instead of making us wait. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return zc__neg_errno();
	err = connect(fd, (const struct sockaddr *)sun, len) == -1 ? errno : 0;
	close(fd);
	if (err == 0 || err == EAGAIN)
		return -EADDRINUSE; /* somebody is listening there */
	if (err != ECONNREFUSED)
		return -err;
	if (unlink(sun->sun_path) == -1 && errno != ENOENT)
		return zc__neg_errno();
	return 0;
}

int zc_listen(const struct zc_addr *a, unsigned flags, int backlog)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	int fd, err, one = 1;

	if (sa->sa_family == AF_UNIX) {
		err = listen_unix_unlink_stale((const struct sockaddr_un *)sa,
		                               a->len);
		if (err)
			return err;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd == -1)
		return zc__neg_errno();
	if (sa->sa_family != AF_UNIX) {
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		               sizeof(one)) == -1)
			goto fail;
		if ((flags & ZC_LISTEN_REUSEPORT) &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
		               sizeof(one)) == -1)
			goto fail;
	}
	if (bind(fd, sa, a->len) == -1)
		goto fail;
	if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) == -1)
		goto fail;
	return fd;
fail:
	err = zc__neg_errno();
	close(fd);
	return err;
}

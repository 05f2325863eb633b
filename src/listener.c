/*
 * listener.c - accept connections on a listening socket.
 *
 * Level-triggered; at most LISTEN_BATCH accepts per wakeup so that a
 * connect flood cannot starve established sessions.
 *
 * fd exhaustion (EMFILE/ENFILE, or ENOBUFS/ENOMEM): the pending client
 * would otherwise keep the listener readable and spin the loop. We keep a
 * spare fd (/dev/null): close it, accept the client and close it at once
 * (the client sees its connection closed, not a hang), reopen the spare
 * and stop watching for one second (libuv's trick, relayd's pause). The
 * spare is the loop's, shared by its listeners: hundreds of listeners
 * cost their sockets and nothing more.
 *
 * On the io_uring engine a listener is one multishot accept (5.19+):
 * the kernel accepts and each completion brings a client, with no
 * readiness event, no accept4() and no trailing EAGAIN. The peer address
 * comes from getpeername() (a multishot accept has one address buffer
 * for all its completions). An error ends the request: EMFILE and the
 * like shed and pause as above, others re-arm it (the kernel reads
 * RLIMIT_NOFILE when the request is submitted: a limit lowered later
 * applies from the next pause on). A kernel without
 * multishot accept (-EINVAL at once), or ZC_URING_NET=poll in the
 * environment (fault-injection tests, which see only system calls),
 * gives the readiness path. Stopping cancels the request and submits
 * the cancel at once; the clients the kernel accepted before it saw the
 * cancel, whose completions are not reaped yet, go to the callback
 * before zc_listener_stop() returns (an upgrade's old process stops
 * accepting on sockets the new one goes on serving: none may be lost),
 * and so do the clients still queued then, whose wakeup the cancelled
 * accept may have taken from the socket's other waiters.
 * Only a stop from inside the callback, or the loop's end, closes such a
 * client, as one left in the backlog of a closed listener is reset.
 */
#include "compat.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "log.h"
#include "loop.h"
#include "sock.h"
#include "uring.h"

#define LISTEN_BATCH    64
#define LISTEN_PAUSE_MS 1000

struct zc_listener {
	struct zc_owned l_own;
	struct zc_loop *l_loop;
	struct zc_io l_io;
	struct zc_timer l_pause;
	int l_fd;
	int l_busy;           /* inside the accept loop or callback */
	int l_stopped;        /* stop was asked from inside a callback */
	int l_multi;          /* io_uring: accept with l_acc, not l_io */
	int l_got;            /* the multishot accept produced a client */
	int l_errs;           /* its failures since the last client */
	struct zc_uop *l_acc; /* the multishot accept in flight, or NULL */
	zc_accept_fn *l_cb;
	void *l_arg;
};

/* The loop's spare fd is open while any of its listeners runs. */
static void spare_get(struct zc_loop *loop)
{
	if (loop->spare_users++ == 0 && loop->spare_fd < 0)
		loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void spare_put(struct zc_loop *loop)
{
	if (--loop->spare_users == 0 && loop->spare_fd >= 0) {
		close(loop->spare_fd);
		loop->spare_fd = -1;
	}
}

static void listener_on_io(struct zc_io *io, unsigned ev);
static void listener_on_accept(void *arg, int res, int id, int more);

/* Starts accepting: a multishot accept or a readiness watch. */
static int listener_arm(struct zc_listener *l)
{
	if (l->l_multi)
		return zc__uop_accept(l->l_loop, l->l_fd, listener_on_accept, l,
		                      &l->l_acc);
	return zc__io_add(l->l_loop, &l->l_io, l->l_fd, ZC_IO_IN,
	                  listener_on_io);
}

static void listener_disarm(struct zc_listener *l)
{
	if (l->l_acc) {
		zc__uop_cancel(l->l_loop, l->l_acc, 1);
		l->l_acc = NULL;
	}
	zc__io_del(l->l_loop, &l->l_io);
}

static void listener_free(struct zc_listener *l)
{
	listener_disarm(l);
	zc__loop_flush(l->l_loop); /* the kernel lets go of the socket now */
	zc__timer_disarm(&l->l_pause);
	zc__loop_disown(&l->l_own);
	spare_put(l->l_loop);
	free(l);
}

/* Arms the pause timer: the listener resumes in LISTEN_PAUSE_MS. */
static int listener_pause_timer(struct zc_listener *l)
{
	return zc__timer_arm_at(&l->l_pause,
	                        zc__loop_now(l->l_loop) +
	                                LISTEN_PAUSE_MS * 1000000ULL);
}

/* Arming failed (what: "resume", "re-arm"): log and try again later. */
static void listener_retry_later(struct zc_listener *l, const char *what,
                                 int err)
{
	zc__log(l->l_loop, ZC_LOG_ERR, "listener fd %d: %s: %s", l->l_fd, what,
	        zc_strerror(err));
	listener_pause_timer(l);
}

/* Stops accepting for LISTEN_PAUSE_MS after accept failed with err;
 * 0, or the timer's error (then nothing will resume it). */
static int listener_pause(struct zc_listener *l, int err)
{
	zc__log(l->l_loop, ZC_LOG_WARN,
	        "listener fd %d: accept: %s: pausing for %d ms", l->l_fd,
	        zc_strerror(err), LISTEN_PAUSE_MS);
	listener_disarm(l);
	return listener_pause_timer(l);
}

/* 1 if an accept failed for want of fds or memory. */
static int listener_starved(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOBUFS ||
	       err == -ENOMEM;
}

static void listener_resume(void *arg)
{
	struct zc_listener *l = arg;
	int err;

	if (l->l_loop->spare_fd < 0)
		l->l_loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	err = listener_arm(l);
	if (err)
		listener_retry_later(l, "resume", err);
}

/* Out of fds or memory: shed the waiting client and pause. */
static void listener_shed(struct zc_listener *l, int err)
{
	struct zc_loop *loop = l->l_loop;
	int fd;

	if (loop->spare_fd >= 0) {
		close(loop->spare_fd);
		loop->spare_fd = -1;
		fd = zc__sock_accept(l->l_fd, NULL, NULL);
		if (fd >= 0)
			close(fd);
		loop->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	l->l_loop->st.accept_paused++;
	if (listener_pause(l, err))
		listener_resume(l);
}

static void listener_on_io(struct zc_io *io, unsigned ev)
{
	struct zc_listener *l = container_of(io, struct zc_listener, l_io);
	struct sockaddr_storage ss;
	socklen_t len;
	int i, fd;

	l->l_busy = 1;
	for (i = 0; i < LISTEN_BATCH && !l->l_stopped; i++) {
		len = sizeof(ss);
		fd = zc__sock_accept(l->l_fd, (struct sockaddr *)&ss, &len);
		if (fd == -EAGAIN)
			break;
		if (listener_starved(fd)) {
			listener_shed(l, fd);
			break;
		}
		if (fd < 0) {
			/* ECONNABORTED and the like: that client is gone. */
			continue;
		}
		l->l_cb(l->l_arg, fd, (struct sockaddr *)&ss, len);
	}
	l->l_busy = 0;
	if (l->l_stopped)
		listener_free(l);
}

/* Hands a client from the multishot accept to the callback. */
static void listener_deliver(struct zc_listener *l, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1) {
		close(fd); /* gone already (reset): as ECONNABORTED */
		return;
	}
	l->l_got = 1;
	l->l_errs = 0;
	l->l_cb(l->l_arg, fd, (struct sockaddr *)&ss, len);
}

/* Handles a failed accept; 1 if the listener is paused now. */
static int listener_accept_err(struct zc_listener *l, int err)
{
	if (listener_starved(err)) {
		listener_shed(l, err);
		return 1;
	}
	if (err == -EINVAL && !l->l_got) {
		zc__log(l->l_loop, ZC_LOG_INFO,
		        "listener fd %d: no multishot accept: polling instead",
		        l->l_fd);
		l->l_multi = 0;
	}
	/* ECONNABORTED and the like: that client is gone. An error that
	 * keeps coming would re-arm in a tight loop: pause then. */
	if (++l->l_errs < LISTEN_BATCH)
		return 0;
	l->l_errs = 0;
	listener_pause(l, err);
	return 1;
}

static void listener_on_accept(void *arg, int res, int id, int more)
{
	struct zc_listener *l = arg;
	int paused = 0, err;

	if (!more)
		l->l_acc = NULL; /* this was its last completion */
	l->l_busy = 1;
	if (res >= 0)
		listener_deliver(l, res);
	else
		paused = listener_accept_err(l, res);
	l->l_busy = 0;
	if (l->l_stopped) {
		listener_free(l);
		return;
	}
	if (more || paused || l->l_acc)
		return;
	err = listener_arm(l); /* the kernel ended it: go on */
	if (err)
		listener_retry_later(l, "re-arm", err);
}

static void listener_abort_owned(struct zc_owned *o)
{
	listener_free(container_of(o, struct zc_listener, l_own));
}

int zc_listener_start(struct zc_listener **out, struct zc_loop *loop, int lfd,
                      zc_accept_fn *cb, void *arg)
{
	struct zc_listener *l;
	int acc = 0, err;
	socklen_t len = sizeof(acc);

	if (!out || !loop || !cb)
		return -EINVAL;
	if (getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == -1)
		return zc__neg_errno();
	if (!acc)
		return -EINVAL;
	err = zc__fd_set_nonblock(lfd, 1);
	if (err < 0)
		return err;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->l_loop = loop;
	l->l_fd = lfd;
	l->l_cb = cb;
	l->l_arg = arg;
	spare_get(loop);
	zc__timer_init(&l->l_pause, loop, listener_resume, l);
	l->l_multi = zc__uop_net(loop);
	err = listener_arm(l);
	if (err) {
		spare_put(loop);
		free(l);
		return err;
	}
	zc__loop_own(loop, &l->l_own, listener_abort_owned);
	*out = l;
	return 0;
}

/* A client accepted before the cancel took effect (zc__uop_accept_take). */
static void listener_take_late(void *arg, int fd)
{
	struct zc_listener *l = arg;

	l->l_busy = 1;
	if (l->l_stopped)
		close(fd); /* the callback stopped it again */
	else
		listener_deliver(l, fd);
}

/*
 * Clients still queued on the socket after a multishot accept was
 * cancelled. io_uring's accept waits exclusively (one new connection
 * wakes one waiter): a wakeup that reached this accept while it was
 * being cancelled is passed to no other waiter, so another listener on
 * the same socket (a worker's, a new process's after an upgrade) would
 * not hear of that client until the next one came. The cancel has taken
 * effect (the flush ran it), so what is queued now is taken here.
 */
static void listener_take_queued(struct zc_listener *l)
{
	int fd, i;

	for (i = 0; i < LISTEN_BATCH && !l->l_stopped; i++) {
		fd = zc__sock_accept(l->l_fd, NULL, NULL);
		if (fd == -ECONNABORTED)
			continue; /* that client is gone */
		if (fd < 0)
			return; /* EAGAIN: none left; EMFILE & co: shed later */
		listener_take_late(l, fd);
	}
}

void zc_listener_stop(struct zc_listener *l)
{
	struct zc_uop *acc;

	if (!l)
		return;
	if (l->l_busy) {
		l->l_stopped = 1;
		listener_disarm(l);
		return;
	}
	acc = l->l_acc;
	if (acc) {
		listener_disarm(l);
		zc__loop_flush(l->l_loop);
		zc__uop_accept_take(l->l_loop, acc, listener_take_late, l);
		listener_take_queued(l);
	}
	listener_free(l);
}

/*
 * uring.h - operations of the io_uring engine: for the ring mover
 * (xfer_ring.c) the loop's provided-buffer ring and recv/send/poll
 * requests, for listeners a multishot accept, for upstreams a connect;
 * the backend owns each
 * request until its last completion.
 *
 * Ownership. A request (struct zc_uop) belongs to the backend from
 * submission to its final CQE (the one without IORING_CQE_F_MORE; for
 * SEND_ZC that is the notification). Its owner may forget it at any
 * time with zc__uop_cancel(op, 1): the callback is never called again,
 * the request is cancelled, and whatever it still references (a buffer)
 * is released when the kernel is done with it. So an SQE never points
 * to freed memory, and a relay may be freed with requests in flight.
 *
 * Buffers are numbered: ids below zc__ubuf_count() are the ring's (the
 * kernel picks one for each multishot recv completion), higher ids are
 * spares taken by zc__ubuf_spare() when the ring is empty. A buffer has
 * a reference count; at zero a ring buffer goes back to the ring, a
 * spare to the spare list. Everything here runs on the loop's thread.
 */
#ifndef ZC_URING_H
#define ZC_URING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct zc_loop;
struct zc_uop;

/* Buffers one send may carry (sendmsg with an iovec). */
#define ZC_UOP_IOV 8

/*
 * A completion: res is the CQE's result. id >= 0 is a ring buffer the
 * kernel filled (recv), which now belongs to the callee (one
 * reference); -1 otherwise. more is 0 on the request's last call. Must
 * not free what the request uses; may submit and cancel requests.
 */
typedef void zc_uop_fn(void *arg, int res, int id, int more);

/* One buffer. Pointers into the table are valid until the next
 * zc__ubuf_spare() (the table may move). */
struct zc_ubuf {
	char *data;
	uint32_t len;  /* bytes received into it */
	int32_t next;  /* next id in its owner's queue, or -1 */
	uint32_t refs; /* 0: in the ring, or a free spare */
};

/*
 * Registers the loop's buffer ring if not done yet (on the first ring
 * relay, so that loops that never use it allocate nothing). Returns 0,
 * -EOPNOTSUPP on an epoll loop or without liburing, or the error of the
 * allocation or the registration (old kernel: -EINVAL). Loop thread.
 */
int zc__ubuf_init(struct zc_loop *loop);

/* The buffer id; id must be a valid, referenced buffer. */
struct zc_ubuf *zc__ubuf(struct zc_loop *loop, int id);
/* Ring buffers, and the size of every buffer (ring and spare). */
unsigned zc__ubuf_count(const struct zc_loop *loop);
size_t zc__ubuf_size(const struct zc_loop *loop);
/* Ring buffers the kernel may still pick (none held by us). */
unsigned zc__ubuf_avail(const struct zc_loop *loop);
/* Sends of at least this many bytes should use SEND_ZC. */
size_t zc__ubuf_zc_min(const struct zc_loop *loop);

/* A spare buffer (one reference), or -ENOMEM. */
int zc__ubuf_spare(struct zc_loop *loop);
/* Drops one reference; at zero the buffer goes back (ring or spares). */
void zc__ubuf_put(struct zc_loop *loop, int id);

/*
 * Submit requests; each returns 0 and *out, or -EBUSY (no SQE) or
 * -ENOMEM, and then cb is never called.
 *
 * zc__uop_recv: a multishot recv on fd into the buffer ring; it ends by
 *   itself after limit bytes (0: no limit) where the kernel can (6.17+;
 *   older kernels refuse the limit and get a recv without one).
 * zc__uop_poll: a one-shot poll on fd for mask (POLLIN...).
 * zc__uop_accept: a multishot accept (5.19+) on the listening socket
 *   lfd; each completion is an accepted fd (non-blocking, close-on-exec,
 *   the callee's) or -errno; errors such as -EMFILE end it (more 0), an
 *   older kernel ends it at once with -EINVAL. A client accepted after
 *   the owner detached is closed.
 * zc__uop_connect: connect the non-blocking socket fd to sa (copied;
 *   salen at most a sockaddr_storage, else -EINVAL); cb gets 0 or the
 *   -errno of the attempt, once.
 * zc__uop_send: one send of buffers ids[0..n) (at most ZC_UOP_IOV; the
 *   first from byte off, each up to its len), with SEND_ZC if zc. The
 *   request holds a reference on each until its final CQE. cb is called
 *   once, with the result (a short send is possible). *notifs (may be
 *   NULL) counts the SEND_ZC notifications still to come: one more when
 *   the result says one follows, one less when it comes, until
 *   zc__uop_forget_notifs() (a hand-over waits for 0: then the kernel
 *   holds none of the buffers).
 */
int zc__uop_recv(struct zc_loop *loop, int fd, size_t limit, zc_uop_fn *cb,
                 void *arg, struct zc_uop **out);
int zc__uop_poll(struct zc_loop *loop, int fd, unsigned mask, zc_uop_fn *cb,
                 void *arg, struct zc_uop **out);
/* 1 if listeners and connects of this loop should use io_uring's accept
 * and connect: an io_uring loop, unless ZC_URING_NET=poll is in the
 * environment when the loop was created (then they use the system
 * calls after readiness, as on epoll, which a syscall fault-injection
 * shim can see). */
int zc__uop_net(const struct zc_loop *loop);

int zc__uop_accept(struct zc_loop *loop, int lfd, zc_uop_fn *cb, void *arg,
                   struct zc_uop **out);
int zc__uop_connect(struct zc_loop *loop, int fd, const struct sockaddr *sa,
                    socklen_t salen, zc_uop_fn *cb, void *arg,
                    struct zc_uop **out);
int zc__uop_send(struct zc_loop *loop, int fd, const int *ids, int n,
                 size_t off, int zc, unsigned *notifs, zc_uop_fn *cb, void *arg,
                 struct zc_uop **out);

/* The owner of the counter notifs goes: no request touches it again.
 * Walks the loop's requests (a teardown with notifications pending). */
void zc__uop_forget_notifs(struct zc_loop *loop, const unsigned *notifs);

/*
 * Asks the kernel to cancel op (its final CQE then says -ECANCELED).
 * With detach, cb is never called again (nor is a send's notifs counter
 * touched) and the owner must forget op; without, completions keep
 * coming until the final one (a multishot recv being stopped still
 * delivers what it received). The request is freed by the backend in
 * any case. op may already have its final CQE pending; a second cancel
 * only detaches.
 */
void zc__uop_cancel(struct zc_loop *loop, struct zc_uop *op, int detach);

/*
 * zc__uop_accept_take - the clients the multishot accept op (cancelled,
 * the cancel submitted) accepted whose completions wait in the CQ ring,
 * unreaped: each fd goes to fn(arg, fd), which owns it, and its
 * completion is marked -ECANCELED so that no later reap closes it. Once
 * the kernel has seen the cancel it accepts no more, so a listener that
 * stops loses no client. Loop thread; op is not dereferenced.
 */
void zc__uop_accept_take(struct zc_loop *loop, const struct zc_uop *op,
                         void (*fn)(void *arg, int fd), void *arg);

/*
 * The uring-splice mover (xfer_usplice.c).
 *
 * zc__uop_splice_init: readies the loop for IORING_OP_SPLICE requests, once:
 *   probes the opcode and bounds the loop thread's io-wq to
 *   ZC_USPLICE_MAX_WORKERS unbound workers (IORING_REGISTER_IOWQ_MAX_WORKERS).
 *   Returns 0, -EOPNOTSUPP on an epoll loop or without liburing, the
 *   probe's error, or -ENOSYS where the kernel lacks IORING_OP_SPLICE.
 *   Loop thread (the ring's issuer).
 * zc__uop_splice: one splice of up to len bytes from fd_in to fd_out
 *   (SPLICE_F_MOVE | SPLICE_F_NONBLOCK), executed by io-wq; cb is called
 *   once with the result (bytes, 0 at EOF, -EAGAIN, -errno). Returns 0
 *   and *out, or -ENOMEM (no memory or no SQE); cb is then never called.
 *   Cancel with zc__uop_cancel() like the others.
 */
#define ZC_USPLICE_MAX_WORKERS 4U

/* Tests: a negative errno makes the next zc__uop_splice_init() probe fail. */
extern int zc__usplice_inject_probe;

int zc__uop_splice_init(struct zc_loop *loop);
int zc__uop_splice(struct zc_loop *loop, int fd_in, int fd_out, size_t len,
                   zc_uop_fn *cb, void *arg, struct zc_uop **out);

#endif

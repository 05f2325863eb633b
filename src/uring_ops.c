/*
 * uring_ops.c - the io_uring engine's requests (uring.h): for the ring
 * mover recv/send/poll (the buffers are uring_bufs.c's), for the
 * uring-splice mover IORING_OP_SPLICE, for listeners a multishot accept,
 * for upstreams a connect.
 *
 * A struct zc_uop is the user_data of its SQEs and lives until its
 * final CQE; its header's completion function (uop_complete) calls the
 * owner's callback, returns buffers whose owner has gone, and frees the
 * request after its last CQE. The request list (ur->reqs) lets the
 * engine's fini cancel and reap them all. Only built with liburing.
 */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/uio.h>

#include <liburing.h>

#include "log.h"
#include "loop.h"
#include "uring-t.h"
#include "uring.h"

struct zc_uop {
	struct ur_hdr h;
	zc_uop_fn *cb; /* NULL once detached */
	void *arg;
	/* Sends: the buffers referenced until the final CQE, and the
	 * message the SQE points to (sendmsg). */
	int ids[ZC_UOP_IOV];
	int nids;
	struct msghdr msg;
	struct iovec iov[ZC_UOP_IOV];
	unsigned
	        *notifs; /* sends: the owner's count of SEND_ZC notifications */
	int fd;          /* recv: to submit it again without a limit */
	unsigned lim;    /* recv: its byte limit, 0: none */
	int once;        /* sends: detach after the first (result) CQE */
	int cancelled;   /* a cancel SQE went out */
	int accept;      /* a result >= 0 is an fd: close it if orphaned */
	/* Connect: the address, read by the kernel at submission. */
	struct sockaddr_storage sa;
};

int zc__uring_inject_recv_einval;

static void uop_prep_recv(struct io_uring_sqe *sqe, struct zc_uop *op)
{
	io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	/* sqe->optlen in newer headers: the multishot's total byte limit
	 * (6.17+); older kernels see a file_index and say -EINVAL. */
	sqe->file_index = op->lim;
	if (op->lim && zc__uring_inject_recv_einval)
		sqe->addr2 = 1; /* a field recv must leave 0: -EINVAL */
	io_uring_sqe_set_data(sqe, op);
}

/*
 * A recv refused for its byte limit (an older kernel): never ask for a
 * limit again, and submit it again without one, unless its owner is
 * stopping it anyway. Returns 1 if it did, else the result the owner
 * should see (-ECANCELED for a stopped one: it did nothing).
 */
static int uop_retry_unlimited(struct zc_loop *loop, struct zc_uop *op,
                               int *res)
{
	struct ur *ur = zc__ur_of(loop);
	struct io_uring_sqe *sqe;

	if (!ur->recv_no_lim)
		zc__log(loop, ZC_LOG_INFO,
		        "io_uring: no multishot recv byte "
		        "limit (kernel < 6.17)");
	ur->recv_no_lim = 1;
	op->lim = 0;
	if (op->cancelled || !(sqe = zc__ur_sqe(ur))) {
		*res = -ECANCELED;
		return 0;
	}
	uop_prep_recv(sqe, op);
	return 1;
}

/* A CQE nobody receives (a detached request, or one reaped at
 * teardown): a client accepted for an owner that has gone is closed. */
static void uop_reap(struct ur_hdr *h, const struct io_uring_cqe *cqe)
{
	const struct zc_uop *op = (const struct zc_uop *)h;

	if (op->accept && cqe->res >= 0)
		close(cqe->res);
}

/* A request's CQE: calls the owner's callback, gives back buffers whose
 * owner has gone, frees the request after its last CQE. */
static void uop_complete(struct zc_loop *loop, struct ur_hdr *h,
                         const struct io_uring_cqe *cqe)
{
	struct zc_uop *op = (struct zc_uop *)h;
	unsigned fl = cqe->flags;
	zc_uop_fn *cb = op->cb;
	int id = -1, res = cqe->res;

	if (op->lim && res == -EINVAL && !(fl & IORING_CQE_F_MORE) &&
	    uop_retry_unlimited(loop, op, &res))
		return; /* still armed: the same request, resubmitted */
	if (!(fl & IORING_CQE_F_MORE))
		h->armed = 0;
	if (op->notifs && (fl & IORING_CQE_F_NOTIF))
		(*op->notifs)--;
	else if (op->notifs && (fl & IORING_CQE_F_MORE))
		(*op->notifs)++; /* a SEND_ZC's result: its notification follows */
	if (fl & IORING_CQE_F_BUFFER) {
		/* The kernel handed us a ring buffer: one reference. */
		id = (int)(fl >> IORING_CQE_BUFFER_SHIFT);
		zc__ubuf(loop, id)->refs = 1;
		loop->st.ring_bufs_used++;
	}
	if (cb && !(fl & IORING_CQE_F_NOTIF)) {
		if (op->once)
			op->cb = NULL;
		/* takes the buffer */
		cb(op->arg, res, id, (fl & IORING_CQE_F_MORE) != 0);
	} else if (id >= 0) {
		zc__ubuf_put(loop, id); /* nobody wants it any more */
	} else {
		uop_reap(h, cqe);
	}
	if (h->armed)
		return;
	while (op->nids > 0)
		zc__ubuf_put(loop, op->ids[--op->nids]);
	zc__list_del(&h->node);
	free(op);
}

static const struct ur_req_ops uop_ops = {
        .complete = uop_complete,
        .reap = uop_reap,
};

/* A new request with its SQE, or NULL (no memory, no SQE). */
static struct zc_uop *uop_new(struct zc_loop *loop, zc_uop_fn *cb, void *arg,
                              struct io_uring_sqe **sqe)
{
	struct ur *ur = zc__ur_of(loop);
	struct zc_uop *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	*sqe = zc__ur_sqe(ur);
	if (!*sqe) {
		free(op);
		return NULL;
	}
	op->h.ops = &uop_ops;
	op->h.armed = 1;
	op->cb = cb;
	op->arg = arg;
	zc__list_add_tail(&ur->reqs, &op->h.node);
	return op;
}

int zc__uop_recv(struct zc_loop *loop, int fd, size_t limit, zc_uop_fn *cb,
                 void *arg, struct zc_uop **out)
{
	struct io_uring_sqe *sqe;
	struct zc_uop *op = uop_new(loop, cb, arg, &sqe);

	if (!op)
		return -ENOMEM;
	op->fd = fd;
	if (!zc__ur_of(loop)->recv_no_lim)
		op->lim = (unsigned)ZC_MIN(limit, (size_t)UINT32_MAX);
	uop_prep_recv(sqe, op);
	*out = op;
	return 0;
}

int zc__uop_poll(struct zc_loop *loop, int fd, unsigned mask, zc_uop_fn *cb,
                 void *arg, struct zc_uop **out)
{
	struct io_uring_sqe *sqe;
	struct zc_uop *op = uop_new(loop, cb, arg, &sqe);

	if (!op)
		return -ENOMEM;
	io_uring_prep_poll_add(sqe, fd, mask);
	io_uring_sqe_set_data(sqe, op);
	*out = op;
	return 0;
}

int zc__uop_accept(struct zc_loop *loop, int lfd, zc_uop_fn *cb, void *arg,
                   struct zc_uop **out)
{
	struct io_uring_sqe *sqe;
	struct zc_uop *op = uop_new(loop, cb, arg, &sqe);

	if (!op)
		return -ENOMEM;
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL,
	                               SOCK_NONBLOCK | SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, op);
	op->accept = 1;
	*out = op;
	return 0;
}

int zc__uop_net(const struct zc_loop *loop)
{
	const struct ur *ur = zc__ur_of(loop);

	return ur && ur->net;
}

int zc__uop_connect(struct zc_loop *loop, int fd, const struct sockaddr *sa,
                    socklen_t salen, zc_uop_fn *cb, void *arg,
                    struct zc_uop **out)
{
	struct io_uring_sqe *sqe;
	struct zc_uop *op;

	if (salen > sizeof(op->sa))
		return -EINVAL;
	op = uop_new(loop, cb, arg, &sqe);
	if (!op)
		return -ENOMEM;
	memcpy(&op->sa, sa, salen);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&op->sa, salen);
	io_uring_sqe_set_data(sqe, op);
	*out = op;
	return 0;
}

int zc__uop_send(struct zc_loop *loop, int fd, const int *ids, int n,
                 size_t off, int zc, unsigned *notifs, zc_uop_fn *cb, void *arg,
                 struct zc_uop **out)
{
	struct io_uring_sqe *sqe;
	struct zc_uop *op = uop_new(loop, cb, arg, &sqe);
	struct zc_ubuf *b;
	int i;

	if (!op)
		return -ENOMEM;
	for (i = 0; i < n && i < ZC_UOP_IOV; i++) {
		b = zc__ubuf(loop, ids[i]);
		op->iov[i].iov_base = b->data + (i ? 0 : off);
		op->iov[i].iov_len = b->len - (i ? 0 : off);
		op->ids[i] = ids[i];
		b->refs++;
	}
	op->nids = i;
	op->notifs = notifs;
	op->msg.msg_iov = op->iov;
	op->msg.msg_iovlen = (size_t)i;
	/* One buffer: send (no msghdr to copy in); more: sendmsg. */
	if (i == 1 && zc)
		io_uring_prep_send_zc(sqe, fd, op->iov[0].iov_base,
		                      op->iov[0].iov_len, MSG_NOSIGNAL, 0);
	else if (i == 1)
		io_uring_prep_send(sqe, fd, op->iov[0].iov_base,
		                   op->iov[0].iov_len, MSG_NOSIGNAL);
	else if (zc)
		io_uring_prep_sendmsg_zc(sqe, fd, &op->msg, MSG_NOSIGNAL);
	else
		io_uring_prep_sendmsg(sqe, fd, &op->msg, MSG_NOSIGNAL);
	if (zc)
		loop->st.ring_zc_sends++;
	io_uring_sqe_set_data(sqe, op);
	op->once = 1;
	*out = op;
	return 0;
}

void zc__uop_accept_take(struct zc_loop *loop, const struct zc_uop *op,
                         void (*fn)(void *arg, int fd), void *arg)
{
	struct ur *ur = zc__ur_of(loop);
	struct io_uring_cqe *cqe;
	unsigned head;
	int fd;

	/* The ring is shared memory: a completion whose client was taken
	 * here says -ECANCELED to the reap that comes later. */
	io_uring_for_each_cqe (&ur->ring, head, cqe) {
		if (io_uring_cqe_get_data(cqe) != op || cqe->res < 0)
			continue;
		fd = cqe->res;
		cqe->res = -ECANCELED;
		fn(arg, fd);
	}
}

void zc__uop_forget_notifs(struct zc_loop *loop, const unsigned *notifs)
{
	struct ur *ur = zc__ur_of(loop);
	struct zc_list *n;
	struct zc_uop *op;

	for (n = ur->reqs.next; n != &ur->reqs; n = n->next) {
		op = (struct zc_uop *)n; /* the header's node comes first */
		if (op->h.ops == &uop_ops && op->notifs == notifs)
			op->notifs = NULL;
	}
}

void zc__uop_cancel(struct zc_loop *loop, struct zc_uop *op, int detach)
{
	struct io_uring_sqe *sqe;

	if (detach) {
		op->cb = NULL;
		op->notifs = NULL; /* its owner is going */
	}
	if (op->cancelled)
		return;
	sqe = zc__ur_sqe(zc__ur_of(loop));
	if (!sqe)
		return; /* it ends with its fd's last reference */
	op->cancelled = 1;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	io_uring_sqe_set_data(sqe, NULL);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

/*
 * The uring-splice mover's requests (xfer_usplice.c).
 *
 * IORING_OP_SPLICE is always punted to io-wq (io_uring/splice.c: the
 * prep sets REQ_F_FORCE_ASYNC), and as a socket is not a regular file
 * it runs as unbound work (opdef.c: unbound_nonreg_file). The opcode
 * has neither pollin nor pollout, so io_wq_submit_work() arms no poll
 * for it: on an O_NONBLOCK socket do_splice() returns -EAGAIN, which
 * io_splice() posts as the CQE's result, once (no retry loop, no spin;
 * checked in io_uring.c of 6.18). The mover therefore polls before it
 * splices; a worker only ever runs a splice that finds bytes or room.
 *
 * Unbound io-wq workers are limited by RLIMIT_NPROC alone, per task.
 * Each loop bounds its thread's io-wq to ZC_USPLICE_MAX_WORKERS with
 * IORING_REGISTER_IOWQ_MAX_WORKERS (5.15+): the splices never block,
 * so more workers than CPUs only add threads. A task that gets its
 * io-wq later inherits the limit from the ring (__io_uring_add_tctx_node).
 */
int zc__usplice_inject_probe;

/* 0 if the kernel knows IORING_OP_SPLICE, else -ENOSYS or the error. */
static int uop_splice_probe(struct ur *ur)
{
	struct io_uring_probe *p;
	int ok;

	if (zc__usplice_inject_probe)
		return zc__usplice_inject_probe;
	p = io_uring_get_probe_ring(&ur->ring);
	if (!p)
		return -ENOMEM; /* or the kernel refused the probe */
	ok = io_uring_opcode_supported(p, IORING_OP_SPLICE);
	io_uring_free_probe(p);
	return ok ? 0 : -ENOSYS;
}

int zc__uop_splice_init(struct zc_loop *loop)
{
	struct ur *ur = zc__ur_of(loop);
	unsigned max[2] = {0,
	                   ZC_USPLICE_MAX_WORKERS}; /* 0: bounded unchanged */
	int err;

	if (!ur)
		return -EOPNOTSUPP;
	if (ur->wq_ready)
		return ur->wq_ready < 0 ? ur->wq_ready : 0;
	err = uop_splice_probe(ur);
	ur->wq_ready = err ? err : 1;
	if (err) {
		zc__log(loop, ZC_LOG_INFO, "io_uring splice: %s",
		        zc_strerror(err));
		return err;
	}
	/* Without the bound (older kernel) RLIMIT_NPROC still applies. */
	err = io_uring_register_iowq_max_workers(&ur->ring, max);
	if (err)
		zc__log(loop, ZC_LOG_INFO, "io_uring: io-wq worker bound: %s",
		        zc_strerror(err));
	return 0;
}

int zc__uop_splice(struct zc_loop *loop, int fd_in, int fd_out, size_t len,
                   zc_uop_fn *cb, void *arg, struct zc_uop **out)
{
	struct io_uring_sqe *sqe;
	struct zc_uop *op = uop_new(loop, cb, arg, &sqe);

	if (!op)
		return -ENOMEM;
	len = ZC_MIN(len, (size_t)UINT32_MAX);
	io_uring_prep_splice(sqe, fd_in, -1, fd_out, -1, (unsigned)len,
	                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	io_uring_sqe_set_data(sqe, op);
	op->once = 1;
	*out = op;
	return 0;
}

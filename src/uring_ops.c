/*
 * uring_ops.c - the io_uring engine's requests (uring.h): the ring
 * mover's provided-buffer ring and recv/send/poll requests, and the
 * listeners' multishot accept.
 *
 * The buffer ring (IORING_REGISTER_PBUF_RING, 5.19) is one per loop,
 * group 0, ring_bufs buffers of ring_buf_size bytes in one anonymous
 * mapping. The kernel takes a buffer only when a multishot recv has
 * bytes to put in it, so an idle relay holds none; the memory is
 * touched only where data went. A buffer comes back to the ring when
 * its last reference goes: the queue of the direction that received
 * it, and each send (or SEND_ZC until its notification) that reads it.
 *
 * Spares: when the ring is empty (-ENOBUFS) the mover may receive into
 * a spare buffer instead, allocated here and cached (at most
 * SPARE_CACHE). That keeps a relay moving while others hold every ring
 * buffer, so a slow peer elsewhere can never stall it.
 *
 * Requests: a struct zc_uop is the user_data of its SQEs and lives until
 * its final CQE. zc__ur_data_cqe() calls the owner's callback, returns
 * buffers whose owner has gone, and frees the request after its last
 * CQE. The request list (ur->reqs) lets fini cancel and reap them all.
 */
#include "compat.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/uio.h>

#include "log.h"
#include "loop.h"
#include "uring.h"

#define RING_BUFS_DEFAULT   256U
#define RING_BUF_DEFAULT    (64U * 1024U)
#define RING_BUF_MAX        (1024U * 1024U)
#define RING_BUFS_MAX       32768U
#define RING_ZC_MIN_DEFAULT UINT32_MAX /* see docs/benchmarks.md */
#define SPARE_CACHE         16U

int zc__ring_opts_check(unsigned nbufs, unsigned size)
{
	if (nbufs && (nbufs > RING_BUFS_MAX || (nbufs & (nbufs - 1))))
		return -EINVAL;
	if (size > RING_BUF_MAX)
		return -EINVAL;
	return 0;
}

#if ZC_HAVE_LIBURING
#include "uring-t.h"

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
	int fd;        /* recv: to submit it again without a limit */
	unsigned lim;  /* recv: its byte limit, 0: none */
	int once;      /* sends: detach after the first (result) CQE */
	int cancelled; /* a cancel SQE went out */
	int accept;    /* a result >= 0 is an fd: close it if orphaned */
	/* Connect: the address, read by the kernel at submission. */
	struct sockaddr_storage sa;
};

struct ur_bufs {
	struct io_uring_buf_ring *br;
	size_t br_len;
	char *mem; /* nbufs * size */
	size_t mem_len;
	unsigned nbufs, mask;
	size_t size, zc_min;
	struct zc_ubuf *tab; /* nbufs ring entries, then spares */
	unsigned ntab, captab;
	int spare_free;        /* free spare ids, linked through next */
	unsigned spare_cached; /* free spares that kept their memory */
	int no_lim; /* the kernel refused a multishot recv byte limit */
};

static struct ur *ops_ur(const struct zc_loop *loop)
{
	return loop->ops == &zc__uring_ops ? loop->backend : NULL;
}

/* Spare buffers are mappings of their own, not malloc() memory: a burst
 * of ring shortages can take hundreds of them, and unmapped they give
 * their pages back (freed 64 KiB heap chunks stayed resident: the soak
 * saw the daemon's RSS stay 59 MiB up after the load). NULL: no memory. */
static char *spare_map(const struct ur_bufs *b)
{
	void *p = mmap(NULL, b->size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void spare_unmap(const struct ur_bufs *b, char *data)
{
	if (data)
		munmap(data, b->size);
}

static void bufs_release(struct ur_bufs *b)
{
	unsigned i;

	for (i = b->nbufs; i < b->ntab; i++)
		spare_unmap(b, b->tab[i].data);
	free(b->tab);
	if (b->mem)
		munmap(b->mem, b->mem_len);
	if (b->br)
		munmap(b->br, b->br_len);
	free(b);
}

/* Puts ring buffer id at the ring's tail: the kernel may use it again. */
static void bufs_recycle(struct ur_bufs *b, unsigned id)
{
	io_uring_buf_ring_add(b->br, b->tab[id].data, (unsigned)b->size,
	                      (unsigned short)id, (int)b->mask, 0);
	io_uring_buf_ring_advance(b->br, 1);
}

/* The SEND_ZC threshold when the options leave it 0: ZC_RING_ZC=BYTES
 * in the environment (benchmarks), else the default. */
static size_t ring_zc_env(void)
{
	const char *env = getenv("ZC_RING_ZC");
	unsigned long v;
	char *end;

	if (!env || !*env)
		return RING_ZC_MIN_DEFAULT;
	v = strtoul(env, &end, 10);
	return *end || !v ? RING_ZC_MIN_DEFAULT : v;
}

static int bufs_alloc(struct zc_loop *loop, struct ur_bufs **out)
{
	unsigned n = loop->ring_bufs ? loop->ring_bufs : RING_BUFS_DEFAULT;
	size_t size =
	        loop->ring_buf_size ? loop->ring_buf_size : RING_BUF_DEFAULT;
	struct ur_bufs *b = calloc(1, sizeof(*b));
	unsigned i;

	if (!b)
		return -ENOMEM;
	b->nbufs = n;
	b->mask = n - 1;
	b->size = size;
	b->zc_min = loop->ring_zc_min ? loop->ring_zc_min : ring_zc_env();
	b->spare_free = -1;
	b->br_len = (n * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
	b->mem_len = (size_t)n * size;
	b->br = mmap(NULL, b->br_len, PROT_READ | PROT_WRITE,
	             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b->mem = mmap(NULL, b->mem_len, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	b->captab = n + 64;
	b->tab = calloc(b->captab, sizeof(*b->tab));
	if (b->br == MAP_FAILED)
		b->br = NULL;
	if (b->mem == MAP_FAILED)
		b->mem = NULL;
	if (!b->br || !b->mem || !b->tab) {
		bufs_release(b);
		return -ENOMEM;
	}
	b->ntab = n;
	io_uring_buf_ring_init(b->br);
	for (i = 0; i < n; i++) {
		b->tab[i].data = b->mem + (size_t)i * size;
		b->tab[i].next = -1;
		io_uring_buf_ring_add(b->br, b->tab[i].data, (unsigned)size,
		                      (unsigned short)i, (int)b->mask, (int)i);
	}
	io_uring_buf_ring_advance(b->br, (int)n);
	*out = b;
	return 0;
}

int zc__ubuf_init(struct zc_loop *loop)
{
	struct ur *ur = ops_ur(loop);
	struct io_uring_buf_reg reg;
	struct ur_bufs *b;
	int err;

	if (!ur)
		return -EOPNOTSUPP;
	if (ur->bufs)
		return 0;
	err = bufs_alloc(loop, &b);
	if (err)
		return err;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)b->br;
	reg.ring_entries = b->nbufs;
	reg.bgid = 0;
	err = io_uring_register_buf_ring(&ur->ring, &reg, 0);
	if (err) {
		zc__log(loop, ZC_LOG_INFO, "io_uring buffer ring: %s",
		        zc_strerror(err));
		bufs_release(b);
		return err;
	}
	ur->bufs = b;
	loop->st.ring_bufs = b->nbufs;
	return 0;
}

void zc__ur_bufs_free(struct ur *ur)
{
	const struct zc_list *n;

	if (!ur->bufs)
		return;
	for (n = ur->reqs.next; n != &ur->reqs; n = n->next)
		if (((const struct ur_hdr *)n)->armed)
			return; /* the kernel may still use them: leave them */
	bufs_release(ur->bufs);
	ur->bufs = NULL;
}

struct zc_ubuf *zc__ubuf(struct zc_loop *loop, int id)
{
	return &ops_ur(loop)->bufs->tab[id];
}

unsigned zc__ubuf_count(const struct zc_loop *loop)
{
	return ops_ur(loop)->bufs->nbufs;
}

size_t zc__ubuf_size(const struct zc_loop *loop)
{
	return ops_ur(loop)->bufs->size;
}

size_t zc__ubuf_zc_min(const struct zc_loop *loop)
{
	return ops_ur(loop)->bufs->zc_min;
}

unsigned zc__ubuf_avail(const struct zc_loop *loop)
{
	return ops_ur(loop)->bufs->nbufs - (unsigned)loop->st.ring_bufs_used;
}

int zc__ubuf_spare(struct zc_loop *loop)
{
	struct ur_bufs *b = ops_ur(loop)->bufs;
	struct zc_ubuf *t;
	int id = b->spare_free;

	if (id < 0) {
		if (b->ntab == b->captab) {
			t = realloc(b->tab, 2 * b->captab * sizeof(*t));
			if (!t)
				return -ENOMEM;
			b->tab = t;
			b->captab *= 2;
		}
		id = (int)b->ntab++;
		b->tab[id] = (struct zc_ubuf){.next = -1};
	} else {
		b->spare_free = b->tab[id].next;
		if (b->tab[id].data)
			b->spare_cached--;
	}
	t = &b->tab[id];
	if (!t->data && !(t->data = spare_map(b))) {
		t->next = b->spare_free;
		b->spare_free = id;
		return -ENOMEM;
	}
	t->refs = 1;
	t->len = 0;
	t->next = -1;
	return id;
}

void zc__ubuf_put(struct zc_loop *loop, int id)
{
	struct ur_bufs *b = ops_ur(loop)->bufs;
	struct zc_ubuf *t = &b->tab[id];

	if (--t->refs)
		return;
	if ((unsigned)id < b->nbufs) {
		bufs_recycle(b, (unsigned)id);
		loop->st.ring_bufs_used--;
		return;
	}
	if (b->spare_cached < SPARE_CACHE) {
		b->spare_cached++;
	} else {
		spare_unmap(b, t->data);
		t->data = NULL;
	}
	t->next = b->spare_free;
	b->spare_free = id;
}

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
	struct ur *ur = ops_ur(loop);
	struct io_uring_sqe *sqe;

	if (!ur->bufs->no_lim)
		zc__log(loop, ZC_LOG_INFO,
		        "io_uring: no multishot recv byte "
		        "limit (kernel < 6.17)");
	ur->bufs->no_lim = 1;
	op->lim = 0;
	if (op->cancelled || !(sqe = zc__ur_sqe(ur))) {
		*res = -ECANCELED;
		return 0;
	}
	uop_prep_recv(sqe, op);
	return 1;
}

void zc__ur_data_cqe(struct zc_loop *loop, struct ur_hdr *h,
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
		zc__ur_data_reap(h, cqe);
	}
	if (h->armed)
		return;
	while (op->nids > 0)
		zc__ubuf_put(loop, op->ids[--op->nids]);
	zc__list_del(&h->node);
	free(op);
}

void zc__ur_data_reap(struct ur_hdr *h, const struct io_uring_cqe *cqe)
{
	const struct zc_uop *op = (const struct zc_uop *)h;

	/* A client the kernel accepted for an owner that has gone. */
	if (op->accept && cqe->res >= 0)
		close(cqe->res);
}

/* A new request with its SQE, or NULL (no memory, no SQE). */
static struct zc_uop *uop_new(struct zc_loop *loop, zc_uop_fn *cb, void *arg,
                              struct io_uring_sqe **sqe)
{
	struct ur *ur = ops_ur(loop);
	struct zc_uop *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	*sqe = zc__ur_sqe(ur);
	if (!*sqe) {
		free(op);
		return NULL;
	}
	op->h.kind = UR_DATA;
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
	if (!ops_ur(loop)->bufs->no_lim)
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
	const struct ur *ur = ops_ur(loop);

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
                 size_t off, int zc, zc_uop_fn *cb, void *arg,
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
	struct ur *ur = ops_ur(loop);
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

void zc__uop_cancel(struct zc_loop *loop, struct zc_uop *op, int detach)
{
	struct io_uring_sqe *sqe;

	if (detach)
		op->cb = NULL;
	if (op->cancelled)
		return;
	sqe = zc__ur_sqe(ops_ur(loop));
	if (!sqe)
		return; /* it ends with its fd's last reference */
	op->cancelled = 1;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	io_uring_sqe_set_data(sqe, NULL);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

#else /* !ZC_HAVE_LIBURING: zc__ubuf_init fails, the rest is unused. */

int zc__uring_inject_recv_einval;

int zc__ubuf_init(struct zc_loop *loop)
{
	return -EOPNOTSUPP;
}

struct zc_ubuf *zc__ubuf(struct zc_loop *loop, int id)
{
	return NULL;
}

unsigned zc__ubuf_count(const struct zc_loop *loop)
{
	return 0;
}

size_t zc__ubuf_size(const struct zc_loop *loop)
{
	return 0;
}

size_t zc__ubuf_zc_min(const struct zc_loop *loop)
{
	return SIZE_MAX;
}

unsigned zc__ubuf_avail(const struct zc_loop *loop)
{
	return 0;
}

int zc__ubuf_spare(struct zc_loop *loop)
{
	return -ENOMEM;
}

void zc__ubuf_put(struct zc_loop *loop, int id)
{
}

int zc__uop_recv(struct zc_loop *loop, int fd, size_t limit, zc_uop_fn *cb,
                 void *arg, struct zc_uop **out)
{
	return -EOPNOTSUPP;
}

int zc__uop_poll(struct zc_loop *loop, int fd, unsigned mask, zc_uop_fn *cb,
                 void *arg, struct zc_uop **out)
{
	return -EOPNOTSUPP;
}

int zc__uop_accept(struct zc_loop *loop, int lfd, zc_uop_fn *cb, void *arg,
                   struct zc_uop **out)
{
	return -EOPNOTSUPP;
}

int zc__uop_net(const struct zc_loop *loop)
{
	return 0;
}

int zc__uop_connect(struct zc_loop *loop, int fd, const struct sockaddr *sa,
                    socklen_t salen, zc_uop_fn *cb, void *arg,
                    struct zc_uop **out)
{
	return -EOPNOTSUPP;
}

int zc__uop_send(struct zc_loop *loop, int fd, const int *ids, int n,
                 size_t off, int zc, zc_uop_fn *cb, void *arg,
                 struct zc_uop **out)
{
	return -EOPNOTSUPP;
}

void zc__uop_accept_take(struct zc_loop *loop, const struct zc_uop *op,
                         void (*fn)(void *arg, int fd), void *arg)
{
}

void zc__uop_cancel(struct zc_loop *loop, struct zc_uop *op, int detach)
{
}

#endif

/*
 * The uring-splice mover's requests (xfer_wqsplice.c).
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
 * Each loop bounds its thread's io-wq to ZC_UWQ_MAX_WORKERS with
 * IORING_REGISTER_IOWQ_MAX_WORKERS (5.15+): the splices never block,
 * so more workers than CPUs only add threads. A task that gets its
 * io-wq later inherits the limit from the ring (__io_uring_add_tctx_node).
 */
int zc__uring_inject_splice_probe;

#if ZC_HAVE_LIBURING
/* 0 if the kernel knows IORING_OP_SPLICE, else -ENOSYS or the error. */
static int uwq_probe(struct ur *ur)
{
	struct io_uring_probe *p;
	int ok;

	if (zc__uring_inject_splice_probe)
		return zc__uring_inject_splice_probe;
	p = io_uring_get_probe_ring(&ur->ring);
	if (!p)
		return -ENOMEM; /* or the kernel refused the probe */
	ok = io_uring_opcode_supported(p, IORING_OP_SPLICE);
	io_uring_free_probe(p);
	return ok ? 0 : -ENOSYS;
}

int zc__uwq_init(struct zc_loop *loop)
{
	struct ur *ur = ops_ur(loop);
	unsigned max[2] = {0, ZC_UWQ_MAX_WORKERS}; /* 0: bounded unchanged */
	int err;

	if (!ur)
		return -EOPNOTSUPP;
	if (ur->wq_ready)
		return ur->wq_ready < 0 ? ur->wq_ready : 0;
	err = uwq_probe(ur);
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

#else /* !ZC_HAVE_LIBURING */

int zc__uwq_init(struct zc_loop *loop)
{
	return -EOPNOTSUPP;
}

int zc__uop_splice(struct zc_loop *loop, int fd_in, int fd_out, size_t len,
                   zc_uop_fn *cb, void *arg, struct zc_uop **out)
{
	return -EOPNOTSUPP;
}

#endif

/*
 * uring-t.h - the io_uring backend's private types, shared by
 * loop_uring.c (ring, polls, dispatch), uring_ops.c (data requests) and
 * uring_bufs.c (the buffer ring). The engine calls the others only
 * through function pointers (a request's completion, the buffer ring's
 * fini), so no file of the engine includes another's functions back.
 * Only built with liburing.
 */
#ifndef ZC_URING_T_H
#define ZC_URING_T_H

#include <liburing.h>

#include "compat.h"

struct zc_loop;

struct ur_hdr;

/* Handles one CQE of the request h (and frees h after its last one). */
typedef void ur_complete_fn(struct zc_loop *loop, struct ur_hdr *h,
                            const struct io_uring_cqe *cqe);
/* Cleans up after a CQE nobody receives (a detached request, or one
 * reaped at teardown); must not free h. */
typedef void ur_reap_fn(struct ur_hdr *h, const struct io_uring_cqe *cqe);

/* What a kind of request does with its CQEs: one static table per
 * kind, so a header costs one pointer (every watched fd has one). */
struct ur_req_ops {
	ur_complete_fn *complete;
	ur_reap_fn *reap; /* NULL: nothing to clean up */
};

/* What a CQE's user_data points to: every request starts with this. */
struct ur_hdr {
	struct zc_list node; /* on ur->reqs, for fini; must come first */
	const struct ur_req_ops *ops;
	int armed; /* a final CQE is still to come */
};

struct ur_bufs; /* uring_bufs.c */

struct ur {
	struct io_uring ring;
	struct zc_list reqs; /* struct ur_hdr */
	int disabled; /* R_DISABLED: enable on the loop thread's first wait */
	struct ur_hdr *cur;   /* being dispatched: ur_dispatch frees it */
	struct ur_bufs *bufs; /* the buffer ring; NULL until first used */
	/* Frees bufs at fini, after io_uring_queue_exit (set with bufs). */
	void (*bufs_fini)(struct ur *ur);
	int net; /* accept/connect as requests (ZC_URING_NET, read once) */
	int recv_no_lim; /* the kernel refused a multishot recv byte limit */
	int wq_ready;    /* uring-splice: 0 not probed, 1 ready, or -errno */
};

/* The loop's io_uring backend, or NULL on another engine. */
struct ur *zc__ur_of(const struct zc_loop *loop);

/* An SQE, submitting the batch first if the queue is full; or NULL. */
struct io_uring_sqe *zc__ur_sqe(struct ur *ur);

#endif

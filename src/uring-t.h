/*
 * uring-t.h - the io_uring backend's private types, shared by
 * loop_uring.c (ring, polls, dispatch) and uring_ops.c (buffer ring and
 * data requests). Only built with liburing.
 */
#ifndef ZC_URING_T_H
#define ZC_URING_T_H

#include <liburing.h>

#include "compat.h"

struct zc_loop;

/* What a CQE's user_data points to: every request starts with this. */
enum { UR_POLL = 1, UR_DATA };

struct ur_hdr {
	struct zc_list node; /* on ur->reqs, for fini; must come first */
	int kind;            /* UR_POLL or UR_DATA */
	int armed;           /* a final CQE is still to come */
};

struct ur_bufs; /* uring_ops.c */

struct ur {
	struct io_uring ring;
	struct zc_list reqs; /* struct ur_hdr */
	int disabled; /* R_DISABLED: enable on the loop thread's first wait */
	struct ur_hdr *cur;   /* being dispatched: ur_dispatch frees it */
	struct ur_bufs *bufs; /* the buffer ring; NULL until first used */
	int net;      /* accept/connect as requests (ZC_URING_NET, read once) */
	int wq_ready; /* uring-splice: 0 not probed, 1 ready, or -errno */
};

/* An SQE, submitting the batch first if the queue is full; or NULL. */
struct io_uring_sqe *zc__ur_sqe(struct ur *ur);

/* Handles a CQE of a UR_DATA request (frees it after its last one). */
void zc__ur_data_cqe(struct zc_loop *loop, struct ur_hdr *h,
                     const struct io_uring_cqe *cqe);

/* Cleans up after a CQE nobody receives (a detached request, or one
 * reaped at teardown): closes an fd a multishot accept produced. */
void zc__ur_data_reap(struct ur_hdr *h, const struct io_uring_cqe *cqe);

/* Frees the buffer ring once no request is armed (else leaves it: the
 * kernel may still write into it). After io_uring_queue_exit. */
void zc__ur_bufs_free(struct ur *ur);

#endif

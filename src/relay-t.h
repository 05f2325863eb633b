/* relay-t.h - types of a relay session and of its two directions. */
#ifndef ZC_RELAY_T_H
#define ZC_RELAY_T_H

#include "loop.h"

/* Readiness a side has seen and not yet used up (edge-triggered). */
#define ZC_SIDE_R 0x1 /* readable (data, EOF or error pending) */
#define ZC_SIDE_W 0x2 /* writable */
/* The peer's FIN or an error was reported: read on to EOF, even after a
 * short read (which otherwise means the socket is drained). */
#define ZC_SIDE_HUP 0x4

/* One socket of a relay. */
struct zc_side {
	int s_fd;
	unsigned s_ready;
	struct zc_io s_io;
	struct zc_relay *s_relay;
};

/* Direction flags. */
#define ZC_CONN_F_COPY      0x01 /* drain with read(), not splice() */
#define ZC_CONN_F_PUMP_COPY 0x02 /* the pipe is emptied through the buffer */
#define ZC_CONN_F_EOF       0x04 /* the source reached EOF */
#define ZC_CONN_F_PIPE_FULL 0x08 /* the pipe has no free slot: wait for pump */
#define ZC_CONN_F_PROBE     0x10 /* auto: copy until a read fills the buffer */
#define ZC_CONN_F_RING      0x20 /* ring mover: io_uring recv/send (xfer_ring.c) */
#define ZC_CONN_F_NOBUFS    0x40  /* ring: the buffer ring was empty */
#define ZC_CONN_F_STOPPED   0x80  /* ring: recv stopped, too much is held */
#define ZC_CONN_F_RPOLL     0x100 /* ring: c_rop is a poll, not a recv */
#define ZC_CONN_F_NOZC      0x200 /* ring: dst refuses SEND_ZC (Unix) */
#define ZC_CONN_F_WQS       0x400 /* uring-splice mover (xfer_wqsplice.c) */
#define ZC_CONN_F_SPOLL     0x800 /* uring-splice: c_sop is a poll */

/* Direction states; every change goes through zc__conn_set_state(). */
enum zc_conn_state {
	ZC_STATE_ESTABLISHED = 0, /* bytes flow */
	ZC_STATE_DRAINING,        /* EOF seen, flushing what is held */
	ZC_STATE_HALF_CLOSED,     /* EOF forwarded: this direction is done */
	ZC_STATE_CLOSED,          /* the session ended */
};

/* One direction: bytes from c_src to c_dst. */
struct zc_conn {
	struct zc_side *c_src, *c_dst;
	struct zc_pipe *c_pipe; /* only while bytes are in flight */
	size_t c_inpipe;        /* bytes sitting in c_pipe, exactly */
	struct zc_buf *c_buf;   /* only while bytes are in flight */
	size_t c_boff, c_blen; /* unsent bytes: c_buf->b_data[c_boff..c_blen) */
	/* Ring mover: received buffers (ids) wait in a queue linked
	 * through the buffer table; requests are the backend's (uring.h). */
	struct zc_uop *c_rop; /* recv (or poll) in flight, or NULL */
	struct zc_uop *c_sop; /* send in flight (at most one), or NULL */
	int c_qhead, c_qtail; /* buffer ids; -1: empty */
	unsigned c_qn;        /* buffers queued */
	size_t c_qoff;        /* bytes of the head buffer already sent */
	int c_err;            /* a completion's error, for the next run */
	/* uring-splice: bytes the splice in flight asked for (c_rop: the
	 * drain into the pipe, c_sop: the pump out of it). */
	size_t c_rask, c_sask;
	unsigned c_flags;
	int c_state;
	int c_idx; /* ZC_DIR_AB or ZC_DIR_BA, for logs */
	struct zc_dir_stats c_st;
};

/* A relay session: two sides, two directions, one teardown path. */
struct zc_relay {
	struct zc_owned r_own;
	struct zc_loop *r_loop;
	struct zc_side r_side[2];
	struct zc_conn r_conn[2];
	struct zc_task r_task; /* re-run after using up the budget */
	struct zc_timer r_idle;
	uint64_t r_start, r_last; /* ns: start, last byte moved */
	unsigned r_idle_ms;
	unsigned r_half_ms; /* half-closed timeout; 0: none */
	int r_half;         /* the idle timer now runs the half-closed one */
	unsigned r_flags;   /* ZC_RELAY_F_* */
	int r_mover;
	int r_closing;
	zc_relay_done_fn *r_done;
	void *r_arg;
};

#endif

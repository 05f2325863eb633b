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

/* Direction flags: the copy/splice family's (xfer_ready.c, and
 * xfer_usplice.c, which moves the same pipe and buffer). Flags private
 * to one mover live in its state (struct zc_dir_ring, ...). */
#define ZC_DIR_F_COPY      0x01 /* drain with read(), not splice() */
#define ZC_DIR_F_PUMP_COPY 0x02 /* the pipe is emptied through the buffer */
#define ZC_DIR_F_EOF       0x04 /* the source reached EOF: zc__dir_eof() */
#define ZC_DIR_F_PIPE_FULL 0x08 /* the pipe has no free slot: wait for pump */
#define ZC_DIR_F_PROBE     0x10 /* auto: copy until a read fills the buffer */
/* Every mover's: a hand-over is settling the direction (mover.h's
 * detach): its mover starts no new request until it is cleared. */
#define ZC_DIR_F_SETTLE 0x20
/* auto: the direction may go back from splice to copy (xfer_ready.c);
 * bits 8-11 count its last small splices in a row. */
#define ZC_DIR_F_AUTO 0x40
/* Every mover's: the relay closes the fds once this direction is done,
 * and closing forwards its FIN (relay.c, relay_close_fins). */
#define ZC_DIR_F_CLOSE_FINS  0x80
#define ZC_DIR_SMALL_SHIFT   8
#define ZC_DIR_F_SMALL_COUNT (0xfu << ZC_DIR_SMALL_SHIFT)
/* io_uring auto (xfer_uauto.c): readiness events, not completions,
 * drive this direction now (zc__dir_by_ready). */
#define ZC_DIR_F_READY 0x1000

/* Direction states; every change goes through zc__dir_set_state(). */
enum zc_state {
	ZC_STATE_ESTABLISHED = 0, /* bytes flow */
	ZC_STATE_DRAINING,        /* EOF seen, flushing what is held */
	ZC_STATE_HALF_CLOSED,     /* EOF forwarded: this direction is done */
	ZC_STATE_CLOSED,          /* the session ended */
};

struct zc_uop;
struct zc_mover_ops;

/* The ring mover's (xfer_ring.c): received buffers (ids) wait in a
 * queue linked through the buffer table; requests are the engine's
 * (uring.h). */
struct zc_dir_ring {
	struct zc_uop *rop; /* recv (or poll) in flight, or NULL */
	struct zc_uop *sop; /* send in flight (at most one), or NULL */
	uint32_t qoff;      /* bytes of the head buffer already sent */
	int qhead, qtail;   /* buffer ids; -1: empty */
	unsigned qn;        /* buffers queued */
	unsigned nzc;       /* SEND_ZC notifications still to come */
	unsigned flags;     /* RING_F_* (xfer_ring.c) */
};

/* The uring-splice mover's (xfer_usplice.c): its requests, and the
 * bytes the splice in flight asked for (rop: the drain into the pipe,
 * sop: the pump out of it). */
struct zc_dir_usplice {
	struct zc_uop *rop, *sop;
	size_t rask, sask;
	unsigned flags; /* USPLICE_F_* (xfer_usplice.c) */
};

/*
 * One direction: bytes from d_src to d_dst, moved by d_ops (mover.h).
 * The pipe and the buffer are what the copy/splice family holds; the
 * rest of a mover's state is in d_m, the member its ops use.
 */
struct zc_dir {
	struct zc_side *d_src, *d_dst;
	const struct zc_mover_ops *d_ops;
	struct zc_pipe *d_pipe; /* only while bytes are in flight */
	size_t d_inpipe;        /* bytes sitting in d_pipe, exactly */
	struct zc_buf *d_buf;   /* only while bytes are in flight */
	size_t d_boff, d_blen; /* unsent bytes: d_buf->b_data[d_boff..d_blen) */
	union {
		struct zc_dir_ring ring;
		struct zc_dir_usplice usplice;
	} d_m;
	int d_err; /* a completion's error, for the next run (zc__dir_fail) */
	unsigned d_flags;
	int d_state;
	int d_idx; /* ZC_DIR_AB or ZC_DIR_BA, for logs */
	struct zc_dir_stats d_st;
};

/* A relay session: two sides, two directions, one teardown path. */
struct zc_relay {
	struct zc_owned r_own;
	struct zc_loop *r_loop;
	struct zc_side r_side[2];
	struct zc_dir r_dir[2];
	struct zc_task r_task; /* re-run after using up the budget */
	/* The idle (or half-closed) deadline; while a hand-over settles
	 * the directions, also the second after which they resume. */
	struct zc_timer r_idle;
	uint64_t r_start, r_last; /* ns: start, last byte moved */
	unsigned r_idle_ms;
	unsigned r_half_ms; /* half-closed timeout; 0: none */
	int r_half;         /* the idle timer now runs the half-closed one */
	unsigned r_flags;   /* ZC_RELAY_F_* */
	int r_closing;
	zc_relay_done_fn *r_done;
	void *r_arg;
};

#endif

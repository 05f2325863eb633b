/*
 * mover.h - the data mover interface: one operations table per way of
 * moving a direction's bytes, chosen per relay at run time (HAProxy's
 * xprt_ops is the precedent). docs/design.md, "Movers", shows how to
 * add one.
 *
 * A mover sees one direction (struct zc_dir) and the loop; it never
 * reaches into the relay. What it needs of the direction's owner it
 * asks through dir.h: zc__dir_wake() (run me again next turn, after a
 * completion), zc__dir_eof() (the source ended), zc__dir_fail() (end
 * the relay with this error at the next run), zc__dir_count() (bytes
 * went out). dir.c decides when the FIN is forwarded (EOF seen and
 * ops->holds() says nothing is left) and gives back the pipe and the
 * buffer.
 */
#ifndef ZC_MOVER_H
#define ZC_MOVER_H

#include <stddef.h>

#include "relay-t.h"

struct zc_mover_ops {
	const char *name; /* zc_mover_name()'s, for logs */
	int mover;        /* enum zc_mover */
	/* 1: completions, not readiness events, drive it; the relay then
	 * watches its sockets only for errors and runs it once at start. */
	int by_completion;
	/* The mover a relay gets instead when prepare fails. */
	int fallback;
	/* Optional: readies the loop for this mover (probes, a buffer
	 * ring), once per loop, on the first relay that asks. Returns 0 or
	 * the -errno that makes the relay take the fallback (recorded as
	 * each direction's fallback). Loop thread. */
	int (*prepare)(struct zc_loop *loop);
	/* Optional: sets up d->d_m and d->d_flags after the common fields. */
	void (*init)(struct zc_dir *d);
	/* Moves bytes, at most about budget (readiness movers; completion
	 * movers submit what they can). Returns 0 (wait for an event), 1
	 * (budget used up or bytes moved synchronously: run again next
	 * turn) or -errno (end the relay). Not called once the direction
	 * is half-closed. */
	int (*run)(struct zc_loop *loop, struct zc_dir *d, size_t budget);
	/* 1 while the direction still holds bytes or has a request in
	 * flight: the FIN waits for 0. */
	int (*holds)(const struct zc_dir *d);
	/* Optional: cancels the mover's requests and drops what only it
	 * holds (queued buffers); dir.c gives back the pipe and buffer
	 * after. Requests in flight are the engine's until their final
	 * CQE. Loop thread. */
	void (*release)(struct zc_loop *loop, struct zc_dir *d);
	/*
	 * Hand-over of live relays (zc_relay_detach/zc_relay_adopt,
	 * dir_handover.c). NULL means "cannot be handed over". detach
	 * settles the direction, which dir_handover.c has marked
	 * ZC_DIR_F_SETTLE (start nothing new while it is set): it stops the
	 * requests in flight, returning 0 once none is left (all the
	 * direction holds is then in the pipe, the buffer and what held()
	 * counts), -EAGAIN while some are still being stopped (the caller
	 * tries again after a loop turn; the completions keep what they
	 * bring), or -errno. Called again on every attempt. adopt readies a
	 * direction whose counters, phase and pipe dir_handover.c has just
	 * set, returning 0 or -errno. Loop thread.
	 */
	int (*detach)(struct zc_loop *loop, struct zc_dir *d);
	int (*adopt)(struct zc_loop *loop, struct zc_dir *d);
	/* Optional, for a settled direction: bytes it holds outside the
	 * pipe and the buffer (the ring mover's queued buffers), and
	 * gather, which writes them, in order, into the pipe to (which has
	 * room for them) and leaves them held. 0 or -errno. */
	size_t (*held)(const struct zc_dir *d);
	int (*gather)(struct zc_loop *loop, const struct zc_dir *d,
	              struct zc_pipe *to);
};

/* The movers (one table each). */
extern const struct zc_mover_ops zc__mover_auto;    /* xfer_ready.c */
extern const struct zc_mover_ops zc__mover_splice;  /* xfer_ready.c */
extern const struct zc_mover_ops zc__mover_copy;    /* xfer_ready.c */
extern const struct zc_mover_ops zc__mover_ring;    /* xfer_ring.c */
extern const struct zc_mover_ops zc__mover_usplice; /* xfer_usplice.c */

extern const struct zc_mover_ops zc__mover_uauto; /* xfer_uauto.c */

/*
 * The ring mover's part in the io_uring auto mover (xfer_ring.c), for
 * a direction with ZC_DIR_F_AUTO. zc__ring_turned_bulk - 1 once a recv
 * filled a whole ring buffer (the direction stopped receiving then)
 * and nothing is queued, in flight or in the pipe any more: the
 * direction may now move on readiness. zc__ring_restart - the
 * direction is back from readiness: it receives into the ring again.
 */
int zc__ring_turned_bulk(const struct zc_dir *d);
void zc__ring_restart(struct zc_dir *d);

/* 1 if mover is an enum zc_mover the table knows, else 0. */
int zc__mover_valid(int mover);

/*
 * The table of the mover (enum zc_mover) a relay on loop moves with:
 * ZC_MOVER_AUTO means the loop's default (ZC_MOVER in the environment
 * when the loop was created, else auto). When the mover cannot run on
 * this loop (its prepare fails, or it was not built), *err is set to
 * why and its fallback is returned; else *err is 0. mover must be
 * valid. Loop thread.
 */
const struct zc_mover_ops *zc__mover_pick(struct zc_loop *loop, int mover,
                                          int *err);

#endif

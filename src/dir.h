/* dir.h - one direction of a relay: the pump between two sockets, and
 * what its mover (mover.h) may ask of it. */
#ifndef ZC_DIR_H
#define ZC_DIR_H

#include "mover.h"
#include "relay-t.h"

/* Initialises direction idx from src to dst, moved by ops. */
void zc__dir_init(struct zc_dir *d, int idx, struct zc_side *src,
                  struct zc_side *dst, const struct zc_mover_ops *ops);

/*
 * Runs the direction's mover, at most about budget bytes, and forwards
 * the FIN once the source's EOF was seen and nothing is held.
 * Returns 0 when it must wait for an event (or the direction is done),
 * 1 when it should run again next turn, or -errno when the session
 * must end (the error of a socket, or a local failure). Loop thread.
 */
int zc__dir_run(struct zc_loop *loop, struct zc_dir *d, size_t budget);

/* Bytes held in the pipe and the buffer. */
static inline size_t zc__dir_pending(const struct zc_dir *d)
{
	return d->d_inpipe + (d->d_blen - d->d_boff);
}

/* Cancels the mover's requests, gives the pipe and buffer back to the
 * pools (a pipe with bytes in it is destroyed). */
void zc__dir_release(struct zc_loop *loop, struct zc_dir *d);

/* Gives back whatever is empty (the pipe, the buffer): idle directions
 * hold nothing. The caller makes sure no request still uses the pipe. */
void zc__dir_release_empty(struct zc_loop *loop, struct zc_dir *d);

/* Records a state change (and logs it at debug level). */
void zc__dir_set_state(struct zc_loop *loop, struct zc_dir *d, int state);

/* For movers (mover.h). Loop thread. */
/* The loop the direction's relay runs on (for completion callbacks). */
struct zc_loop *zc__dir_loop(const struct zc_dir *d);
/* A completion came: run the relay's directions on the next turn. */
void zc__dir_wake(struct zc_dir *d);
/* The source reached EOF: the direction drains what it holds. */
void zc__dir_eof(struct zc_loop *loop, struct zc_dir *d);
/* Keeps err (the first one) for the next run, which ends the relay. */
void zc__dir_fail(struct zc_dir *d, int err);
/* n bytes reached the destination, by splice or through a buffer. */
void zc__dir_count(struct zc_dir *d, size_t n, int spliced);

#endif

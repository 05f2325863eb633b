/* dir.h - one direction of a relay: the pump between two sockets, and
 * what its mover (mover.h) may ask of it. */
#ifndef ZC_DIR_H
#define ZC_DIR_H

#include "mover.h"
#include "relay-t.h"
#include "relay_state.h"

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

/*
 * Hand-over (dir_handover.c), loop thread. Detaching a relay settles
 * both directions, prepares both, then commits both; a failed prepare
 * is undone and changes nothing.
 *
 * zc__dir_settle - marks the direction settling (ZC_DIR_F_SETTLE: its
 * mover starts nothing new) and asks its mover to stop its requests.
 * Returns 0 (nothing in flight), -EAGAIN (requests are still being
 * stopped: try again after a loop turn), -EOPNOTSUPP (the mover cannot
 * be handed over), or the error that is already ending the relay. The
 * caller clears ZC_DIR_F_SETTLE when it gives up.
 *
 * zc__dir_detach_prepare - for a settled direction, fills *ds with its
 * progress and the pipe that will carry what it holds: its own pipe, or
 * a new one (*made) holding the buffer's bytes, the mover's own and
 * then the pipe's. Returns 0, or -ENOBUFS/-EMFILE/... (no pipe for the
 * bytes now: try again later).
 */
int zc__dir_settle(struct zc_loop *loop, struct zc_dir *d);
int zc__dir_detach_prepare(struct zc_loop *loop, struct zc_dir *d,
                           struct zc_dir_state *ds, struct zc_pipe **made);
/* Gives back what a prepare made (NULL: nothing). */
void zc__dir_detach_undo(struct zc_loop *loop, struct zc_pipe *made);
/* The pipe named in the state leaves the pool (its fds are now the
 * caller's); the rest goes back to the pools; the direction is closed. */
void zc__dir_detach_commit(struct zc_loop *loop, struct zc_dir *d,
                           struct zc_pipe *made);
/*
 * zc__dir_adopt - resumes a fresh direction from *ds: counters, phase
 * (an EOF read but not forwarded drains first; one forwarded leaves the
 * direction half-closed) and the pipe of held bytes, which the pool
 * counts from now on. Returns 0, -EOPNOTSUPP (the mover cannot adopt),
 * -ENOBUFS/-ENOMEM/-EINVAL (the fds stay the caller's).
 */
int zc__dir_adopt(struct zc_loop *loop, struct zc_dir *d,
                  const struct zc_dir_state *ds);
/* Undoes an adopt: the pipe's fds are the caller's again, still open. */
void zc__dir_adopt_undo(struct zc_loop *loop, struct zc_dir *d);

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

/*
 * Moves the direction to readiness events (on 1) or back to its
 * mover's completions (0): the relay's sockets are watched for what
 * its directions now need, and on 1 the direction runs as if both its
 * sockets were ready (it learns otherwise from EAGAIN). Returns 0 or
 * the -errno of the engine (the relay must end). For a mover with
 * by_completion set. Loop thread.
 */
int zc__dir_by_ready(struct zc_loop *loop, struct zc_dir *d, int on);

/*
 * What side i of relay r is watched for: reading for the direction it
 * feeds and writing for the one it ends, where readiness drives them
 * (zc__dir_by_ready). Where completions bring the data, the watch only
 * catches a reset on a side no request is using any more (errors and
 * hang-ups are always reported).
 */
unsigned zc__side_events(const struct zc_relay *r, int i);

/* Counts a read of n bytes from d's source into the relay (the pipe, the
 * buffer or a ring buffer), for busy polling's bulk test (busypoll.h). */
void zc__dir_read(struct zc_dir *d, size_t n);

#endif

/* conn.h - one direction of a relay: the pump between two sockets. */
#ifndef ZC_CONN_H
#define ZC_CONN_H

#include "relay-t.h"

/* Initialises direction idx from src to dst with mover (enum zc_mover). */
void zc__conn_init(struct zc_conn *c, int idx, struct zc_side *src,
                   struct zc_side *dst, int mover);

/*
 * Moves bytes while the sockets are ready, at most about budget bytes.
 * Returns 0 when it must wait for readiness (or the direction is done),
 * 1 when the budget ran out and it should run again next turn, or -errno
 * when the session must end (the error of a socket, or a local failure).
 * Loop thread.
 */
int zc__conn_run(struct zc_loop *loop, struct zc_conn *c, size_t budget);

/* Bytes held in the pipe and the buffer. */
static inline size_t zc__conn_pending(const struct zc_conn *c)
{
	return c->c_inpipe + (c->c_blen - c->c_boff);
}

/* Gives the pipe and buffer back to the pools (a pipe with bytes in it
 * is destroyed). */
void zc__conn_release(struct zc_loop *loop, struct zc_conn *c);

/* Gives back whatever is empty (the pipe, the buffer): idle directions
 * hold nothing. The caller makes sure no request still uses the pipe. */
void zc__conn_release_empty(struct zc_loop *loop, struct zc_conn *c);

/* Records a state change (and logs it at debug level). */
void zc__conn_set_state(struct zc_loop *loop, struct zc_conn *c, int state);

#endif

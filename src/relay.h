/*
 * relay.h - what relay_handover.c needs of relay.c: a relay built in two
 * steps (so that an adopted one can be given its past between them), and
 * the end of a relay that leaves for another loop.
 */
#ifndef ZC_RELAY_H
#define ZC_RELAY_H

#include "relay-t.h"

struct zc_pipe;

/*
 * zc__relay_alloc - validates opts and the fds (unless ZC_RELAY_F_TRUSTED)
 * like zc_relay_start and builds a relay that is not running yet: no
 * watcher, no timer, nothing the loop knows of. Free it with free() if
 * zc__relay_go is never called or fails. Returns 0 and *out, or -errno.
 */
int zc__relay_alloc(struct zc_relay **out, struct zc_loop *loop, int fd_a,
                    int fd_b, const struct zc_relay_opts *opts,
                    zc_relay_done_fn *done, void *arg);

/*
 * zc__relay_go - starts a built relay: non-blocking fds, the idle (or
 * half-closed) deadline counted from r_last, watchers, the loop's
 * counts. Returns 0 (the relay owns the fds) or -errno (nothing started,
 * the fds' flags restored).
 */
int zc__relay_go(struct zc_relay *r);

/* Runs the relay's directions on the next turn as if both sockets were
 * readable and writable (for a relay whose edges another loop saw). */
void zc__relay_run_soon(struct zc_relay *r);

/*
 * A hand-over settling the relay's directions (relay_handover.c):
 * zc__relay_settle_wait - the relay resumes by itself after ns unless
 * settled again or detached (the idle timer fires then, or at its own
 * deadline if that comes first). 0 or -ENOMEM.
 * zc__relay_settle_end - the directions start requests again (their
 * ZC_DIR_F_SETTLE cleared), from the next turn.
 */
int zc__relay_settle_wait(struct zc_relay *r, uint64_t ns);
void zc__relay_settle_end(struct zc_relay *r);

/*
 * zc__relay_end_detached - ends a relay whose two directions were
 * prepared for detaching (dir.h): commits them, stops watching, and
 * frees it without closing its sockets or calling done. made[i] is what
 * direction i's prepare made (or NULL).
 */
void zc__relay_end_detached(struct zc_relay *r, struct zc_pipe *made[2]);

#endif

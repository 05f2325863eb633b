/*
 * busypoll.h - adaptive busy polling: after a turn that handled events the
 * loop keeps asking its engine for new ones, without sleeping, for a short
 * window before it sleeps. A reply that arrives within the window finds the
 * thread awake instead of paying a wake-up (tens of microseconds on a
 * halted vCPU). See docs/design.md, "Busy polling".
 */
#ifndef ZC_BUSYPOLL_H
#define ZC_BUSYPOLL_H

#include <stddef.h>
#include <stdint.h>

struct zc_loop;

struct zc_busypoll {
	uint64_t max_ns;    /* the window's ceiling; 0: never spin */
	uint64_t window_ns; /* how long the next spin may last */
	uint64_t cap_ns;    /* spin time allowed in one second */
	uint64_t sec_start; /* the current second began here */
	uint64_t sec_spent; /* spin time used in it */
	uint64_t rest_ns;   /* the cap's back-off: 0, or 1 s doubling to 16 s */
	uint64_t rest_end;  /* no spinning before this time */
	uint64_t bytes;     /* bytes relays read or wrote since the last wait */
	uint64_t moves;     /* the reads and writes that moved them */
	int adaptive;       /* window follows the traffic (else = max_ns) */
	int worked;         /* the last wait handled events */
	int bulk;           /* the last turn that moved bytes was bulk */
};

/* Spinning follows only while the last turn that moved bytes through
 * relays averaged at most this many per read or write: small messages,
 * where a wake-up is most of the cost. A bulk transfer moves far more
 * per call and is not slowed by a wake-up. Turns that move nothing
 * (accepts, posts, watches, EAGAIN) keep the last verdict. */
#define ZC_BUSYPOLL_SMALL_BYTES 16384

/* Counts one read or write of n bytes by a relay of this loop (dir.c). */
static inline void zc__busypoll_count(struct zc_busypoll *bp, size_t n)
{
	bp->bytes += n;
	bp->moves++;
}

/* Sets bp up from zc_loop_opts.busy_poll_us / busy_poll_cap. Returns 0, or
 * -EINVAL for a value out of range. */
int zc__busypoll_init(struct zc_busypoll *bp, int us, unsigned cap_pct);

/* The cap: spin time (sec_spent, added by the caller) is summed per
 * second of the loop. A second that uses the whole cap starts a rest
 * without spinning, of 1 s, doubling up to 16 s while the second after
 * each rest uses it up again; a second that stays within the cap forgets
 * the rest. A cap of 100 % never rests. Spinning through part of the
 * gaps only was measured worse than not spinning at all (the relay's
 * busy CPU moves its peers' wake-ups to the other, halted, one;
 * docs/benchmarks.md), so a load that needs more than the cap mostly
 * does not spin. Returns 1 while no spin may start at now, else 0. */
int zc__busypoll_capped(struct zc_busypoll *bp, uint64_t now);

/* Waits for events like loop->ops->wait(loop, timeout_ms), spinning first
 * when the last turn handled events and the window and cap allow it; the
 * spin ends before the next timer is due and before timeout_ms. Returns the
 * number of events dispatched (>= 0) or -errno. Loop thread only. */
int zc__busypoll_wait(struct zc_loop *loop, int timeout_ms);

#endif

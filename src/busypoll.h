/*
 * busypoll.h - adaptive busy polling: after a turn that handled events the
 * loop keeps asking its engine for new ones, without sleeping, for a short
 * window before it sleeps. A reply that arrives within the window finds the
 * thread awake instead of paying a wake-up (tens of microseconds on a
 * halted vCPU). See docs/design.md, "Busy polling".
 */
#ifndef ZC_BUSYPOLL_H
#define ZC_BUSYPOLL_H

#include <stdint.h>

struct zc_loop;

struct zc_busypoll {
	uint64_t max_ns;    /* the window's ceiling; 0: never spin */
	uint64_t window_ns; /* how long the next spin may last */
	uint64_t cap_ns;    /* spin time allowed in one second */
	uint64_t sec_start; /* the current second began here */
	uint64_t sec_spent; /* spin time used in it */
	int adaptive;       /* window follows the traffic (else = max_ns) */
	int worked;         /* the last wait handled events */
};

/* Sets bp up from zc_loop_opts.busy_poll_us / busy_poll_cap. Returns 0, or
 * -EINVAL for a value out of range. */
int zc__busypoll_init(struct zc_busypoll *bp, int us, unsigned cap_pct);

/* Waits for events like loop->ops->wait(loop, timeout_ms), spinning first
 * when the last turn handled events and the window and cap allow it; the
 * spin ends before the next timer is due and before timeout_ms. Returns the
 * number of events dispatched (>= 0) or -errno. Loop thread only. */
int zc__busypoll_wait(struct zc_loop *loop, int timeout_ms);

#endif

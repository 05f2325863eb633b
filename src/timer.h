/* timer.h - one-shot timers in a binary min-heap, per loop. */
#ifndef ZC_TIMER_H
#define ZC_TIMER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct zc_loop;

/* A timer; embed it, or allocate one through the public zc_timer_new(). */
struct zc_timer {
	uint64_t t_due; /* CLOCK_MONOTONIC ns */
	size_t t_idx;   /* heap slot, or ZC_TIMER_IDLE */
	void (*t_cb)(void *arg);
	void *t_arg;
	struct zc_loop *t_loop;
};

#define ZC_TIMER_IDLE ((size_t)-1)

/* Reads CLOCK_MONOTONIC in ns. Inline, so that the timers, the engines
 * and busy polling need nothing of loop.c. */
static inline uint64_t zc__clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The heap itself, kept inside struct zc_loop. */
struct zc_timer_heap {
	struct zc_timer **h;
	size_t n, cap;
};

/* Initialises an embedded timer (not armed). */
void zc__timer_init(struct zc_timer *t, struct zc_loop *loop,
                    void (*cb)(void *), void *arg);
/* Arms t to fire at the absolute time due_ns. Returns 0 or -ENOMEM (the
 * heap could not grow; t is then not armed). */
int zc__timer_arm_at(struct zc_timer *t, uint64_t due_ns);
/* Disarms t; harmless when it is not armed. */
void zc__timer_disarm(struct zc_timer *t);
/* Returns the due time of the earliest timer, or UINT64_MAX. */
uint64_t zc__timer_next(const struct zc_timer_heap *th);
/* Runs every timer due at or before now_ns. */
void zc__timer_run(struct zc_timer_heap *th, uint64_t now_ns);
/* Frees the heap array (the timers belong to their owners). */
void zc__timer_heap_free(struct zc_timer_heap *th);

#endif

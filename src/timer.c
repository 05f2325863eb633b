/*
 * timer.c - one-shot timers in a binary min-heap.
 *
 * Each timer remembers its heap slot, so disarming is O(log n). Idle
 * timeouts do not re-arm on every byte: the owner records its last
 * activity and, when the timer fires early, re-arms for the remainder.
 */
#include "compat.h"

#include <stdlib.h>

#include "loop.h"
#include "timer.h"

static void heap_set(struct zc_timer_heap *th, size_t i, struct zc_timer *t)
{
	th->h[i] = t;
	t->t_idx = i;
}

static void heap_up(struct zc_timer_heap *th, size_t i)
{
	struct zc_timer *t = th->h[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (th->h[p]->t_due <= t->t_due)
			break;
		heap_set(th, i, th->h[p]);
		i = p;
	}
	heap_set(th, i, t);
}

static void heap_down(struct zc_timer_heap *th, size_t i)
{
	struct zc_timer *t = th->h[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= th->n)
			break;
		if (c + 1 < th->n && th->h[c + 1]->t_due < th->h[c]->t_due)
			c++;
		if (t->t_due <= th->h[c]->t_due)
			break;
		heap_set(th, i, th->h[c]);
		i = c;
	}
	heap_set(th, i, t);
}

void zc__timer_init(struct zc_timer *t, struct zc_loop *loop,
                    void (*cb)(void *), void *arg)
{
	t->t_due = 0;
	t->t_idx = ZC_TIMER_IDLE;
	t->t_cb = cb;
	t->t_arg = arg;
	t->t_loop = loop;
}

void zc__timer_disarm(struct zc_timer *t)
{
	struct zc_timer_heap *th = &t->t_loop->timers;
	size_t i = t->t_idx;
	struct zc_timer *m;

	if (i == ZC_TIMER_IDLE)
		return;
	t->t_idx = ZC_TIMER_IDLE;
	th->n--;
	if (i == th->n)
		return;
	m = th->h[th->n];
	heap_set(th, i, m);
	heap_down(th, i);
	heap_up(th, m->t_idx);
}

int zc__timer_arm_at(struct zc_timer *t, uint64_t due_ns)
{
	struct zc_timer_heap *th = &t->t_loop->timers;

	zc__timer_disarm(t);
	if (th->n == th->cap) {
		size_t cap = th->cap ? th->cap * 2 : 64;
		struct zc_timer **h = realloc(th->h, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		th->h = h;
		th->cap = cap;
	}
	t->t_due = due_ns;
	heap_set(th, th->n++, t);
	heap_up(th, t->t_idx);
	return 0;
}

uint64_t zc__timer_next(const struct zc_timer_heap *th)
{
	return th->n ? th->h[0]->t_due : UINT64_MAX;
}

void zc__timer_run(struct zc_timer_heap *th, uint64_t now_ns)
{
	/* A callback may arm or disarm any timer, so re-read the root. */
	while (th->n && th->h[0]->t_due <= now_ns) {
		struct zc_timer *t = th->h[0];

		zc__timer_disarm(t);
		t->t_cb(t->t_arg);
	}
}

void zc__timer_heap_free(struct zc_timer_heap *th)
{
	free(th->h);
	th->h = NULL;
	th->n = th->cap = 0;
}

/* Public timers: a heap-allocated struct zc_timer. */

int zc_timer_new(struct zc_timer **out, struct zc_loop *loop, zc_timer_fn *cb,
                 void *arg)
{
	struct zc_timer *t;

	if (!out || !loop || !cb)
		return -EINVAL;
	t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	zc__timer_init(t, loop, cb, arg);
	*out = t;
	return 0;
}

int zc_timer_arm(struct zc_timer *t, uint64_t ms)
{
	t->t_loop->now = zc__clock_ns();
	return zc__timer_arm_at(t, t->t_loop->now + ms * 1000000ULL);
}

void zc_timer_disarm(struct zc_timer *t)
{
	zc__timer_disarm(t);
}

void zc_timer_free(struct zc_timer *t)
{
	if (!t)
		return;
	zc__timer_disarm(t);
	free(t);
}

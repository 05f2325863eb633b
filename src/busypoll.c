/*
 * busypoll.c - adaptive busy polling around the engine's wait.
 *
 * One idle period is the time from the end of a turn that handled events
 * to the next event. In it the loop first spins (the engine's wait with a
 * zero timeout, again and again) for up to window_ns, then sleeps. The
 * window learns once per idle period from the gap it saw: an event that
 * came within the ceiling (caught by the spin, or by the sleep after it)
 * means a spin of twice that gap would have paid, so the window grows to
 * it; a gap beyond the ceiling, or a sleep that ended with no event,
 * halves the window, and below 1 us it is 0. An idle loop therefore never
 * spins (no turn handles events), and one whose events come rarely stops
 * spinning after a few periods.
 *
 * Only after small messages: no spin follows while the last turn that
 * moved relay bytes was bulk (busypoll.h, ZC_BUSYPOLL_SMALL_BYTES).
 * Each round of a spin yields first, so a task ready to run on this CPU
 * (often the very peer the relay waits for) is not kept waiting.
 * The cap, with its rests: zc__busypoll_capped() (busypoll.h).
 * Timers and posts: the spin ends no later than the next timer is due, and
 * a zc_loop_post() is an event on the loop's eventfd, which ends it.
 */
#include "compat.h"

#include <sched.h>

#include "busypoll.h"
#include "loop.h"

#define NS_PER_US       1000ULL
#define NS_PER_SEC      1000000000ULL
#define WINDOW_MIN_NS   (1 * NS_PER_US)
#define CAP_DEFAULT_PCT 100
#define REST_MAX_NS     (16 * NS_PER_SEC)

int zc__busypoll_init(struct zc_busypoll *bp, int us, unsigned cap_pct)
{
	if (us < ZC_BUSY_POLL_AUTO || us > ZC_BUSY_POLL_MAX_US || cap_pct > 100)
		return -EINVAL;
	bp->adaptive = us == ZC_BUSY_POLL_AUTO;
	bp->max_ns = (uint64_t)(bp->adaptive ? ZC_BUSY_POLL_AUTO_MAX_US : us) *
	             NS_PER_US;
	bp->window_ns = bp->adaptive ? 0 : bp->max_ns;
	bp->cap_ns = (cap_pct ? cap_pct : CAP_DEFAULT_PCT) * (NS_PER_SEC / 100);
	bp->sec_start = 0;
	bp->sec_spent = 0;
	bp->rest_ns = 0;
	bp->rest_end = 0;
	bp->bytes = 0;
	bp->moves = 0;
	bp->bulk = 0;
	bp->worked = 0;
	return 0;
}

/* Learns from one idle period: the first event came gap_ns after it began
 * (UINT64_MAX: none came before the wait timed out). */
static void bp_learn(struct zc_busypoll *bp, uint64_t gap_ns)
{
	uint64_t w;

	if (!bp->adaptive)
		return;
	if (gap_ns <= bp->max_ns) {
		w = 2 * gap_ns;
		if (w < WINDOW_MIN_NS)
			w = WINDOW_MIN_NS;
		if (w > bp->window_ns)
			bp->window_ns = w < bp->max_ns ? w : bp->max_ns;
		return;
	}
	bp->window_ns /= 2;
	if (bp->window_ns < WINDOW_MIN_NS)
		bp->window_ns = 0;
}

int zc__busypoll_capped(struct zc_busypoll *bp, uint64_t now)
{
	if (now < bp->rest_end)
		return 1;
	if (now - bp->sec_start >= NS_PER_SEC) {
		bp->sec_start = now;
		bp->sec_spent = 0;
		bp->rest_ns = 0;
	}
	if (bp->sec_spent < bp->cap_ns || bp->cap_ns >= NS_PER_SEC)
		return 0;
	bp->rest_ns = bp->rest_ns ? 2 * bp->rest_ns : NS_PER_SEC;
	if (bp->rest_ns > REST_MAX_NS)
		bp->rest_ns = REST_MAX_NS;
	bp->rest_end = now + bp->rest_ns;
	bp->sec_start = bp->rest_end;
	bp->sec_spent = 0;
	return 1;
}

/* How long a spin starting at now may last: the window, less what the cap
 * leaves of this second, ending before the next timer and the caller's
 * timeout. 0: do not spin. */
static uint64_t bp_budget(struct zc_loop *loop, uint64_t now, int timeout_ms)
{
	struct zc_busypoll *bp = &loop->bp;
	uint64_t budget = bp->window_ns, next;

	if (zc__busypoll_capped(bp, now)) {
		loop->st.spin_capped++;
		return 0;
	}
	if (bp->sec_spent < bp->cap_ns && budget > bp->cap_ns - bp->sec_spent)
		budget = bp->cap_ns - bp->sec_spent;
	next = zc__timer_next(&loop->timers);
	if (next <= now)
		return 0;
	if (next - now < budget)
		budget = next - now;
	if (timeout_ms >= 0 && (uint64_t)timeout_ms * 1000000ULL < budget)
		budget = (uint64_t)timeout_ms * 1000000ULL;
	return budget;
}

/* Spins for up to budget_ns from start. Returns the events dispatched (0:
 * none came) or -errno. */
static int bp_spin(struct zc_loop *loop, uint64_t start, uint64_t budget_ns)
{
	uint64_t now;
	int n;

	do {
		sched_yield(); /* a task ready to run here goes first */
		n = loop->ops->wait(loop, 0);
		now = zc__clock_ns();
	} while (n == 0 && now - start < budget_ns);
	loop->bp.sec_spent += now - start;
	loop->st.spin_ns += now - start;
	if (n > 0)
		loop->st.spin_hits++;
	else if (n == 0)
		loop->st.spin_misses++;
	return n;
}

/* The caller's timeout less the time already spent since start. */
static int bp_remaining_ms(int timeout_ms, uint64_t start, uint64_t now)
{
	uint64_t spent_ms = (now - start) / 1000000ULL;

	if (timeout_ms < 0)
		return timeout_ms;
	return spent_ms >= (uint64_t)timeout_ms ? 0
	                                        : timeout_ms - (int)spent_ms;
}

int zc__busypoll_wait(struct zc_loop *loop, int timeout_ms)
{
	struct zc_busypoll *bp = &loop->bp;
	uint64_t start, budget, now;
	int n;

	if (!bp->max_ns)
		return loop->ops->wait(loop, timeout_ms);
	if (bp->moves)
		bp->bulk = bp->bytes > bp->moves * ZC_BUSYPOLL_SMALL_BYTES;
	bp->bytes = 0;
	bp->moves = 0;
	if (!bp->worked || bp->bulk || timeout_ms == 0) {
		n = loop->ops->wait(loop, timeout_ms);
		bp->worked = n > 0;
		return n;
	}
	start = zc__clock_ns();
	budget = bp_budget(loop, start, timeout_ms);
	n = budget ? bp_spin(loop, start, budget) : 0;
	if (n == 0) {
		now = zc__clock_ns();
		n = loop->ops->wait(
		        loop,
		        zc__timer_next(&loop->timers) <= now
		                ? 0
		                : bp_remaining_ms(timeout_ms, start, now));
	}
	if (n < 0)
		return n;
	bp_learn(bp, n > 0 ? zc__clock_ns() - start : UINT64_MAX);
	bp->worked = n > 0;
	return n;
}

/* unit/timer.c - the timer heap: order, disarm, re-arm from a callback. */
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "loop.h"
#include "timer.h"

#define N 257

static int fired[N], order[N], nfired;

static void on_fire(void *arg)
{
	int i = (int)(intptr_t)arg;

	fired[i]++;
	order[nfired++] = i;
}

TEST(test_timer_heap_order_and_disarm)
{
	struct zc_loop loop;
	struct zc_timer t[N];
	int i;

	memset(&loop, 0, sizeof(loop));
	/* Due times in a scrambled order, every third one disarmed. */
	for (i = 0; i < N; i++) {
		zc__timer_init(&t[i], &loop, on_fire, (void *)(intptr_t)i);
		ASSERT_EQ(zc__timer_arm_at(&t[i], (uint64_t)((i * 97) % N) + 1),
		          0);
	}
	for (i = 0; i < N; i += 3)
		zc__timer_disarm(&t[i]);
	zc__timer_disarm(&t[0]); /* twice: harmless */
	zc__timer_run(&loop.timers, (uint64_t)N / 2);
	for (i = 1; i < nfired; i++)
		ASSERT_LE(t[order[i - 1]].t_due, t[order[i]].t_due);
	zc__timer_run(&loop.timers, UINT64_MAX);
	for (i = 0; i < N; i++)
		ASSERT_EQ(fired[i], i % 3 == 0 ? 0 : 1);
	ASSERT_EQ(loop.timers.n, 0);
	ASSERT_EQ(zc__timer_next(&loop.timers), UINT64_MAX);
	zc__timer_heap_free(&loop.timers);
	return T_PASS;
}

static struct zc_timer rearm;
static int rearm_count;

static void on_rearm(void *arg)
{
	if (++rearm_count < 5)
		zc__timer_arm_at(&rearm, rearm.t_due + 10);
}

TEST(test_timer_rearm_from_callback)
{
	struct zc_loop loop;

	memset(&loop, 0, sizeof(loop));
	zc__timer_init(&rearm, &loop, on_rearm, NULL);
	ASSERT_EQ(zc__timer_arm_at(&rearm, 10), 0);
	zc__timer_run(&loop.timers, 25); /* fires at 10 and 20 */
	ASSERT_EQ(rearm_count, 2);
	ASSERT_EQ(zc__timer_next(&loop.timers), 30);
	zc__timer_run(&loop.timers, 1000);
	ASSERT_EQ(rearm_count, 5);
	zc__timer_heap_free(&loop.timers);
	return T_PASS;
}

/*
 * unit/busypoll.c - the busy-poll cap's clock, on made-up times: a second
 * that uses up the cap starts a rest of 1 s without spinning, doubling to
 * 16 s while the second after each rest uses it up again; a second within
 * the cap forgets the rest; a cap of 100 % never rests.
 */
#include <stdint.h>

#include "runner.h"
#include "busypoll.h"

#define SEC 1000000000ULL
#define MS  1000000ULL

/* Spins (as the loop would) from t until the cap stops it, 1 ms at a
 * time, for at most one second. Returns when it stopped (the time of the
 * first refused spin), or t + 1 s if it never was. */
static uint64_t spin_until_capped(struct zc_busypoll *bp, uint64_t t)
{
	uint64_t end = t + SEC;

	for (; t < end; t += MS) {
		if (zc__busypoll_capped(bp, t))
			return t;
		bp->sec_spent += MS;
	}
	return t;
}

TEST(test_busypoll_cap_rests_and_doubles)
{
	struct zc_busypoll bp;
	uint64_t t = 100 * SEC, stop, rest = SEC, next;
	int i;

	ASSERT_EQ(zc__busypoll_init(&bp, ZC_BUSY_POLL_AUTO, 25), 0);
	/* 250 ms of spinning, then no more: a rest of 1 s. */
	stop = spin_until_capped(&bp, t);
	ASSERT_EQ(stop, t + 250 * MS);
	ASSERT_EQ(bp.rest_ns, SEC);
	ASSERT_EQ(zc__busypoll_capped(&bp, stop + SEC - MS), 1);
	/* After each rest the next second may spin its cap again; using it
	 * up doubles the rest: 2, 4, 8, 16 and then 16 s again. */
	for (i = 0; i < 5; i++) {
		next = rest * 2 > 16 * SEC ? 16 * SEC : rest * 2;
		t = stop + rest;
		ASSERT_EQ(zc__busypoll_capped(&bp, t), 0);
		stop = spin_until_capped(&bp, t);
		ASSERT_EQ(stop, t + 250 * MS);
		ASSERT_EQ(bp.rest_ns, next);
		ASSERT_EQ(zc__busypoll_capped(&bp, stop + next - MS), 1);
		rest = next;
	}
	return T_PASS;
}

TEST(test_busypoll_cap_second_within_forgets_rest)
{
	struct zc_busypoll bp;
	uint64_t t = 5 * SEC, stop;

	ASSERT_EQ(zc__busypoll_init(&bp, 100, 10), 0);
	stop = spin_until_capped(&bp, t);
	ASSERT_EQ(stop, t + 100 * MS); /* rest 1 s */
	t = stop + SEC;
	ASSERT_EQ(zc__busypoll_capped(&bp, t), 0);
	bp.sec_spent += 50 * MS; /* a second that stays within the cap */
	t += SEC;
	ASSERT_EQ(zc__busypoll_capped(&bp, t), 0);
	ASSERT_EQ(bp.rest_ns, 0);
	/* so the next capped second rests 1 s again, not 2 */
	stop = spin_until_capped(&bp, t);
	ASSERT_EQ(stop, t + 100 * MS);
	ASSERT_EQ(bp.rest_ns, SEC);
	ASSERT_EQ(zc__busypoll_capped(&bp, stop + SEC - MS), 1);
	ASSERT_EQ(zc__busypoll_capped(&bp, stop + SEC), 0);
	return T_PASS;
}

TEST(test_busypoll_cap_full_never_rests)
{
	struct zc_busypoll bp;
	uint64_t t = SEC;
	int i;

	/* 0 is the default cap: 100 %, a whole core. */
	ASSERT_EQ(zc__busypoll_init(&bp, ZC_BUSY_POLL_AUTO, 0), 0);
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(spin_until_capped(&bp, t), t + SEC);
		t += SEC;
	}
	ASSERT_EQ(bp.rest_ns, 0);
	return T_PASS;
}

/*
 * fault_storm.c - EAGAIN where the kernel had bytes or room: the relay's
 * sockets are edge-triggered, so a spurious EAGAIN must neither spin
 * (retrying at once) nor lose bytes. Two cases:
 *  - an eagain-storm (EAGAIN, then the kernel signals readiness again, as
 *    after a real EAGAIN): the relay goes back to the loop once per
 *    EAGAIN and the transfers complete byte-exact;
 *  - a plain EAGAIN for good on the client's socket: the relay waits
 *    (next to no CPU) and moves nothing; once the fault is lifted, the
 *    next edge (one more byte from the client) moves everything, once.
 * Faults from the zcfault shim.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tfault.h"

#define KIB (1ull << 10)
#define MIB (1ull << 20)

TEST_MATRIX(test_fault_eagain_storm_completes)
{
	char line[2][T_FAULT_LINE];
	struct t_fault f;
	long cpu0, cpu1, n;
	int i;
	const char *spec = ctx->mover == ZC_MOVER_COPY
	                           ? "recv:eagain-storm:every=2:count=300,"
	                             "send:eagain-storm:every=2:count=300"
	                           : "splice:eagain-storm:every=2:count=300";

	T_TRY(t_fault_start(&f, ctx, t_fault_io_skip(ctx), spec));
	T_TRY(t_fault_sessions(&f, 2, 8 * MIB, 8 * MIB, 80, line));
	for (i = 0; i < 2; i++)
		ASSERT_FALSE(strstr(line[i], "fallback="));
	n = ctx->mover == ZC_MOVER_COPY
	            ? t_fault_count(&f, "recv:eagain-storm", NULL) +
	                      t_fault_count(&f, "send:eagain-storm", NULL)
	            : t_fault_count(&f, "splice:eagain-storm", NULL);
	ASSERT_GT(n, 0);
	close(f.ulfd);
	f.ulfd = -1;
	T_TRY(t_fault_settled(&f));
	/* Nothing keeps spinning after the storm. */
	cpu0 = t_fault_cpu_ms(&f);
	t_sleep_ms(500);
	cpu1 = t_fault_cpu_ms(&f);
	ASSERT_OK(cpu0);
	ASSERT_LE(cpu1 - cpu0, 50);
	return t_fault_down(&f, ctx, "EAGAIN storm");
}

#define HELD (16 * KIB) /* within the first receive window */

TEST_MATRIX(test_fault_eagain_waits_for_edge)
{
	char spec[128], label[64];
	unsigned char *buf, *got;
	struct t_rng rng;
	struct t_pair2 p;
	struct t_fault f;
	long cpu0, cpu1;
	const char *fn = ctx->mover == ZC_MOVER_COPY ? "recv" : "splice";

	T_TRY(t_fault_start(&f, ctx, t_fault_io_skip(ctx), ""));
	T_TRY(t_pair2_open(&f, f.ulfd, &p));
	/* Reads from this client's socket say EAGAIN, for good. */
	snprintf(spec, sizeof(spec), "%s:EAGAIN:port=%d%s", fn,
	         t_local_port(p.c),
	         ctx->mover == ZC_MOVER_COPY ? "" : ":src=sock");
	T_TRY(t_fault_set(&f, spec));
	buf = malloc(HELD + 1);
	got = malloc(HELD + 1);
	ASSERT_TRUE(buf && got);
	t_rng_init(&rng, 99);
	t_rng_fill(&rng, buf, HELD + 1);
	cpu0 = t_fault_cpu_ms(&f);
	ASSERT_OK(t_write_all(p.c, buf, HELD));
	/* Held back, and no spinning meanwhile. */
	ASSERT_EQ(t_read_full(p.u, got, 1, 500), -ETIMEDOUT);
	cpu1 = t_fault_cpu_ms(&f);
	ASSERT_OK(cpu0);
	ASSERT_LE(cpu1 - cpu0, 50);
	snprintf(label, sizeof(label), "%s:EAGAIN", fn);
	ASSERT_GT(t_fault_count(&f, label, NULL), 0);
	/* Lifted: the next byte's edge moves everything, in order. */
	T_TRY(t_fault_set(&f, ""));
	ASSERT_OK(t_write_all(p.c, buf + HELD, 1));
	ASSERT_EQ(t_read_full(p.u, got, HELD + 1, 5000), HELD + 1);
	ASSERT_MEMEQ(got, buf, HELD + 1);
	free(buf);
	free(got);
	t_pair2_close(&p);
	return t_fault_end(&f, ctx, "EAGAIN wait");
}

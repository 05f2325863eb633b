/*
 * fault_pipe.c - no pipes, or no big pipes: pipe2() failing with EMFILE
 * makes every drain copy (pipe shortage, counted in /metrics), and
 * F_SETPIPE_SZ failing with EPERM (the kernel's per-user pipe budget)
 * keeps splicing through default-size pipes (counted as small pipes).
 * Either way every byte arrives, once, in order. Faults from the zcfault
 * shim; the copy mover makes no pipes and skips.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tfault.h"

#define MIB (1ull << 20)

/* Two sessions, 4 MiB each way each, under spec; their session lines go
 * to line[]. */
static int two_sessions(const struct t_ctx *ctx, struct t_fault *f,
                        const char *spec, char line[2][1024])
{
	struct t_pair2 p[2];
	struct t_xfer4 x[2];
	struct zc_addr ua;
	struct t_dargs a;
	int ulfd, i, port[2];

	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	ASSERT_OK(t_free_addr(AF_INET, &f->la));
	t_dargs_init(&a, ctx, &f->la, &ua);
	T_TRY(t_fault_up(f, &a, spec));
	for (i = 0; i < 2; i++) {
		T_TRY(t_pair2_open(f, ulfd, &p[i]));
		port[i] = t_local_port(p[i].c);
		T_TRY(t_pair2_start(&p[i], &x[i], 4 * MIB, 4 * MIB,
		                    40 + 2 * i));
	}
	for (i = 0; i < 2; i++) {
		T_TRY(t_pair2_finish(&x[i], 60000));
		t_pair2_close(&p[i]);
		T_TRY(t_fault_session(f, port[i], line[i], sizeof(line[i])));
		ASSERT_HAS(line[i], " up=4194304 down=4194304 ");
		ASSERT_HAS(line[i], " end=eof");
	}
	close(ulfd);
	return t_fault_settled(f);
}

TEST_MATRIX(test_fault_pipe2_emfile)
{
	char line[2][1024], mover[64];
	struct t_fault f;
	int i;

	snprintf(mover, sizeof(mover), " mover=%s", zc_mover_name(ctx->mover));
	T_SKIP_IF(t_fault_pipe_skip(ctx), "%s", t_fault_pipe_skip(ctx));
	T_SKIP_IF(ctx->mover == ZC_MOVER_COPY,
	          "the copy mover never creates pipes");
	T_TRY(two_sessions(ctx, &f, "pipe2:EMFILE", line));
	for (i = 0; i < 2; i++) {
		ASSERT_HAS(line[i], " spliced=0 copied=8388608 ");
		ASSERT_HAS(line[i], mover);
	}
	ASSERT_GT(t_fault_count(&f, "pipe2:EMFILE", NULL), 0);
	ASSERT_GT(t_fault_metric_wait(&f, "zcrelay_worker_pipe_shortages_total",
	                              1),
	          0);
	ASSERT_EQ(t_fault_metric(&f, "zcrelay_worker_pipes_free"), 0);
	return t_fault_down(&f, ctx, "pipe2");
}

TEST_MATRIX(test_fault_setpipe_sz_eperm)
{
	char line[2][1024];
	struct t_fault f;
	int i;

	T_SKIP_IF(t_fault_pipe_skip(ctx), "%s", t_fault_pipe_skip(ctx));
	T_SKIP_IF(ctx->mover == ZC_MOVER_COPY,
	          "the copy mover never creates pipes");
	T_TRY(two_sessions(ctx, &f, "fcntl:EPERM", line));
	for (i = 0; i < 2; i++) {
		ASSERT_HAS(line[i], " spliced=8388608 copied=0 ");
		ASSERT_FALSE(strstr(line[i], "fallback="));
	}
	ASSERT_GT(t_fault_count(&f, "fcntl:EPERM", NULL), 0);
	ASSERT_GT(
	        t_fault_metric_wait(&f, "zcrelay_worker_pipes_small_total", 1),
	        0);
	ASSERT_EQ(t_fault_metric(&f, "zcrelay_worker_pipe_shortages_total"), 0);
	return t_fault_down(&f, ctx, "F_SETPIPE_SZ");
}

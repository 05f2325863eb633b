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

/*
 * Two sessions, 4 MiB each way each, under the row's fault spec: each
 * session line shows how the bytes moved (line_has, never line_lacks),
 * the shim injected the fault, metric_up counted it and metric_zero
 * stayed 0.
 */
static const struct pipe_row {
	const char *name;
	const char *spec;
	const char *label;
	const char *line_has;
	const char *line_lacks; /* or NULL */
	const char *metric_up;
	const char *metric_zero;
	const char *what;
} pipe_rows[] = {
        {"pipe2_emfile", "pipe2:EMFILE", "pipe2:EMFILE",
         " spliced=0 copied=8388608 ", NULL,
         "zcrelay_worker_pipe_shortages_total", "zcrelay_worker_pipes_free",
         "pipe2"},
        {"setpipe_sz_eperm", "fcntl:EPERM", "fcntl:EPERM",
         " spliced=8388608 copied=0 ",
         "fallback=", "zcrelay_worker_pipes_small_total",
         "zcrelay_worker_pipe_shortages_total", "F_SETPIPE_SZ"},
};

TEST_MATRIX_TABLE(test_fault, pipe_rows)
{
	const struct pipe_row *k = t_row();
	char line[2][T_FAULT_LINE], mover[64];
	struct t_fault f;
	int i;

	snprintf(mover, sizeof(mover), " mover=%s", zc_mover_name(ctx->mover));
	T_SKIP_IF(t_fault_pipe_skip(ctx), "%s", t_fault_pipe_skip(ctx));
	T_SKIP_IF(ctx->mover == ZC_MOVER_COPY,
	          "the copy mover never creates pipes");
	T_TRY(t_fault_start(&f, ctx, NULL, k->spec));
	T_TRY(t_fault_sessions(&f, 2, 4 * MIB, 4 * MIB, 40, line));
	close(f.ulfd);
	f.ulfd = -1;
	T_TRY(t_fault_settled(&f));
	for (i = 0; i < 2; i++) {
		ASSERT_HAS(line[i], k->line_has);
		ASSERT_HAS(line[i], mover);
		if (k->line_lacks)
			ASSERT_FALSE(strstr(line[i], k->line_lacks));
	}
	ASSERT_GT(t_fault_count(&f, k->label, NULL), 0);
	ASSERT_GT(t_fault_metric_wait(&f, k->metric_up, 1), 0);
	ASSERT_EQ(t_fault_metric(&f, k->metric_zero), 0);
	return t_fault_down(&f, ctx, k->what);
}

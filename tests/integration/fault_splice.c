/*
 * fault_splice.c - splice(2) failing in the middle of a stream: the
 * direction that saw EINVAL or ENOMEM falls back to copying with no byte
 * lost or doubled (what sat in its pipe leaves first), the session line
 * names the reason, a concurrent session keeps splicing, and no fd is
 * left behind. Faults from the zcfault shim (tests/fault/zcfault.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tfault.h"

#define MIB (1ull << 20)

/* Sessions at once, and bytes each way per session. */
#define NSESS 2
#define BYTES (8 * MIB)

/*
 * splice() fails once with errname, one row per errno and side: src
 * "sock": the drain (socket -> pipe) fails, maybe with bytes in the
 * pipe, which must leave before the first copied byte; "pipe": the pump
 * (pipe -> socket) fails, and the pipe is emptied through the buffer.
 */
static const struct splice_row {
	const char *name;
	const char *errname;
	const char *src;
} splice_rows[] = {
        {"einval_drain", "EINVAL", "sock"},
        {"einval_pump", "EINVAL", "pipe"},
        {"enomem_drain", "ENOMEM", "sock"},
        {"enomem_pump", "ENOMEM", "pipe"},
};

TEST_MATRIX_TABLE(test_fault_splice, splice_rows)
{
	const struct splice_row *k = t_row();
	const char *errname = k->errname, *src = k->src;
	char spec[128], label[64], line[NSESS][T_FAULT_LINE], fb[64];
	struct t_dargs a;
	struct t_fault f;
	int i, fell = 0;

	T_SKIP_IF(t_fault_io_skip(ctx), "%s", t_fault_io_skip(ctx));
	T_SKIP_IF(ctx->mover == ZC_MOVER_COPY,
	          "the copy mover never calls splice()");
	T_TRY(t_fault_open(&f, ctx, NULL, &a));
	/* The 16th splice call of that half fails, once: into the streams
	 * (2 x 16 MiB take about 130 calls with 1 MiB pipes). */
	snprintf(spec, sizeof(spec), "splice:%s:after=15:count=1:src=%s",
	         errname, src);
	T_TRY(t_fault_up(&f, &a, spec));
	/* Both sessions at once, on one worker. */
	T_TRY(t_fault_sessions(&f, NSESS, BYTES, BYTES, 100, line));
	snprintf(label, sizeof(label), "splice:%s", errname);
	ASSERT_EQ(t_fault_count(&f, label, NULL), 1);
	snprintf(fb, sizeof(fb), " fallback=%s", errname);
	for (i = 0; i < NSESS; i++) {
		ASSERT_HAS(line[i], " mover=splice");
		if (strstr(line[i], fb)) {
			fell++;
			ASSERT_FALSE(strstr(line[i], " copied=0 "));
		} else {
			ASSERT_FALSE(strstr(line[i], "fallback="));
			ASSERT_HAS(line[i], " copied=0 ");
		}
		ASSERT_FALSE(strstr(line[i], " spliced=0 "));
	}
	ASSERT_EQ(fell, 1);
	return t_fault_end(&f, ctx,
	                   src[0] == 's' ? "splice drain" : "splice pump");
}

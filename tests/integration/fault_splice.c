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
 * src "sock": the drain (socket -> pipe) fails, maybe with bytes in the
 * pipe, which must leave before the first copied byte; "pipe": the pump
 * (pipe -> socket) fails, and the pipe is emptied through the buffer.
 */
static int splice_midstream(const struct t_ctx *ctx, const char *errname,
                            const char *src)
{
	struct t_pair2 p[NSESS];
	struct t_xfer4 x[NSESS];
	char spec[128], label[64], line[NSESS][1024], fb[64];
	struct zc_addr ua;
	struct t_dargs a;
	struct t_fault f;
	int ulfd, i, port[NSESS], fell = 0;

	T_SKIP_IF(t_fault_io_skip(ctx), "%s", t_fault_io_skip(ctx));
	T_SKIP_IF(ctx->mover == ZC_MOVER_COPY,
	          "the copy mover never calls splice()");
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	ASSERT_OK(t_free_addr(AF_INET, &f.la));
	t_dargs_init(&a, ctx, &f.la, &ua);
	/* The 16th splice call of that half fails, once: into the streams
	 * (2 x 16 MiB take about 130 calls with 1 MiB pipes). */
	snprintf(spec, sizeof(spec), "splice:%s:after=15:count=1:src=%s",
	         errname, src);
	T_TRY(t_fault_up(&f, &a, spec));
	for (i = 0; i < NSESS; i++) {
		T_TRY(t_pair2_open(&f, ulfd, &p[i]));
		port[i] = t_local_port(p[i].c);
	}
	/* Both sessions at once, on one worker. */
	for (i = 0; i < NSESS; i++) {
		T_TRY(t_pair2_start(&p[i], &x[i], BYTES, BYTES, 100 + 10 * i));
	}
	for (i = 0; i < NSESS; i++) {
		T_TRY(t_pair2_finish(&x[i], 60000));
	}
	snprintf(label, sizeof(label), "splice:%s", errname);
	ASSERT_EQ(t_fault_count(&f, label, NULL), 1);
	snprintf(fb, sizeof(fb), " fallback=%s", errname);
	for (i = 0; i < NSESS; i++) {
		t_pair2_close(&p[i]);
		T_TRY(t_fault_session(&f, port[i], line[i], sizeof(line[i])));
		ASSERT_HAS(line[i], " end=eof");
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
	close(ulfd);
	T_TRY(t_fault_settled(&f));
	return t_fault_down(&f, ctx,
	                    src[0] == 's' ? "splice drain" : "splice pump");
}

TEST_MATRIX(test_fault_splice_einval_drain)
{
	return splice_midstream(ctx, "EINVAL", "sock");
}

TEST_MATRIX(test_fault_splice_einval_pump)
{
	return splice_midstream(ctx, "EINVAL", "pipe");
}

TEST_MATRIX(test_fault_splice_enomem_drain)
{
	return splice_midstream(ctx, "ENOMEM", "sock");
}

TEST_MATRIX(test_fault_splice_enomem_pump)
{
	return splice_midstream(ctx, "ENOMEM", "pipe");
}

/*
 * fault_io.c - the byte movers' own calls failing or falling short:
 * sends into the client failing mid-stream with ECONNRESET or EPIPE end
 * that session with a reset and nothing else (a concurrent session stays
 * byte-exact), and every read and write moving only a few bytes at a
 * time leaves every stream byte-exact. Faults from the zcfault shim.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tfault.h"

#define MIB (1ull << 20)
/* More than the upstream's socket buffers can take in (tcp_wmem max 4 MiB
 * plus the daemon side's tcp_rmem max, 32 MiB here): the upstream must
 * still be sending when the relay resets it, or it sees no error. */
#define BIG (64 * MIB)

/*
 * Session a streams BIG bytes to a slow client; b moves 4 MiB each way.
 * Once both run, the daemon's sends into a's client fail with errname
 * (one row each): send() for the copy mover, splice() from the pipe for
 * splice.
 */
static const struct t_errno_row send_rows[] = {
        {"econnreset_midstream", "ECONNRESET"},
        {"epipe_midstream", "EPIPE"},
};

TEST_MATRIX_TABLE(test_fault_send, send_rows)
{
	const char *errname = ((const struct t_errno_row *)t_row())->errname;
	char spec[128], label[64], line[1024], want[64];
	struct t_xfer a_tx, a_rx;
	struct t_pair2 pa, pb;
	struct t_xfer4 xb;
	struct t_fault f;
	int port;
	const char *fn = ctx->mover == ZC_MOVER_COPY ? "send" : "splice";

	T_TRY(t_fault_start(&f, ctx, t_fault_io_skip(ctx), ""));
	T_TRY(t_pair2_open(&f, f.ulfd, &pa));
	T_TRY(t_pair2_open(&f, f.ulfd, &pb));
	port = t_local_port(pa.c);
	/* 64 KiB a millisecond at most: BIG takes at least 1 s. */
	ASSERT_OK(t_receiver_start_paced(&a_rx, pa.c, 0, 64 * 1024, 1000));
	ASSERT_OK(t_sender_start(&a_tx, pa.u, BIG, 5, T_XFER_SHUT_WR));
	T_TRY(t_pair2_start(&pb, &xb, 4 * MIB, 4 * MIB, 50));
	t_sleep_ms(50);
	snprintf(spec, sizeof(spec), "%s:%s:port=%d%s", fn, errname, port,
	         ctx->mover == ZC_MOVER_COPY ? "" : ":src=pipe");
	T_TRY(t_fault_set(&f, spec));

	/* b: untouched. */
	T_TRY(t_pair2_finish(&xb, 60000));
	/* a: cut short by a reset, both ends. */
	t_xfer_join(&a_rx);
	t_xfer_join(&a_tx);
	ASSERT_LT(a_rx.bytes, BIG);
	ASSERT_TRUE(a_rx.err == -ECONNRESET || (a_rx.eof && !a_rx.err));
	ASSERT_TRUE(a_tx.err == -ECONNRESET || a_tx.err == -EPIPE);
	snprintf(label, sizeof(label), "%s:%s", fn, errname);
	ASSERT_EQ(t_fault_count(&f, label, NULL), 1);
	T_TRY(t_fault_session(&f, port, line, sizeof(line)));
	ASSERT_HAS(line, " end=reset");
	snprintf(want, sizeof(want), " error=%s ", errname);
	ASSERT_HAS(line, want);
	T_TRY(t_fault_session(&f, t_local_port(pb.c), line, sizeof(line)));
	ASSERT_HAS(line, " up=4194304 down=4194304 ");
	ASSERT_HAS(line, " end=eof");
	t_pair2_close(&pa);
	t_pair2_close(&pb);
	return t_fault_end(&f, ctx, "send reset");
}

/* Every data call the daemon could make moves a few bytes at a time,
 * on every socket and pipe (the admin endpoint's too). */
#define SHORT_SPEC                                                             \
	"recv:short:max=1500,send:short:max=1000,splice:short:max=6000,"       \
	"read:short:max=700,write:short:max=700,readv:short:max=800,"          \
	"recvfrom:short:max=900,sendto:short:max=600,sendmsg:short:max=500"

TEST_MATRIX(test_fault_short_io_everywhere)
{
	char line[2][T_FAULT_LINE];
	struct t_fault f;
	int i;

	T_TRY(t_fault_start(&f, ctx, t_fault_io_skip(ctx), SHORT_SPEC));
	T_TRY(t_fault_sessions(&f, 2, MIB + 17, MIB + 33, 70, line));
	for (i = 0; i < 2; i++)
		ASSERT_FALSE(strstr(line[i], "fallback="));
	if (ctx->mover == ZC_MOVER_COPY) {
		ASSERT_GT(t_fault_count(&f, "recv:short", NULL), 0);
		ASSERT_GT(t_fault_count(&f, "send:short", NULL), 0);
	} else {
		ASSERT_GT(t_fault_count(&f, "splice:short", NULL), 0);
	}
	/* t_fault_end scrapes /metrics through short I/O */
	return t_fault_end(&f, ctx, "short I/O");
}

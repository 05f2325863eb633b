/*
 * relay_data.c - byte-exact transfers through a relay on every data path:
 * 256 MiB of pseudo-random bytes up, down, and both at once, checked with
 * SHA-256, for TCPv4, TCPv6, Unix -> TCP and TCP -> Unix; and on an
 * io_uring set up without DEFER_TASKRUN, as kernels before 6.1 have it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "loop.h"
#include "runner.h"
#include "tnet.h"

#define MIB (1024ULL * 1024ULL)
#define BIG (256 * MIB)

/*
 * Client (family fa) <-> relay <-> server (family fb). up bytes go from
 * the client to the server, down bytes the other way, both at once, each
 * followed by shutdown(SHUT_WR). Checks digests, counts, the relay's
 * stats, and that its fds are closed.
 */
static int relay_xfer(const struct t_ctx *ctx, int fa, int fb, uint64_t up,
                      uint64_t down)
{
	struct t_xfer cs, sr, ss, cr;
	unsigned char want_up[T_SHA256_LEN], want_down[T_SHA256_LEN];
	struct t_loop l;
	struct t_done d;
	int pa[2], pb[2];

	T_SKIP_IF((fa == AF_INET6 || fb == AF_INET6) && !t_have_ipv6(),
	          "no IPv6 loopback (::1)");
	ASSERT_OK(t_pair(fa, pa)); /* pa[0] client, pa[1] relay side A */
	ASSERT_OK(t_pair(fb, pb)); /* pb[0] relay side B, pb[1] server */
	ASSERT_OK(t_loop_start(&l, ctx));
	ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ctx->mover, 0, &d), 0);

	ASSERT_OK(t_receiver_start(&sr, pb[1], 0));
	ASSERT_OK(t_receiver_start(&cr, pa[0], 0));
	ASSERT_OK(t_sender_start(&cs, pa[0], up, 1, T_XFER_SHUT_WR));
	ASSERT_OK(t_sender_start(&ss, pb[1], down, 2, T_XFER_SHUT_WR));
	ASSERT_EQ(t_xfer_join(&cs), 0);
	ASSERT_EQ(t_xfer_join(&ss), 0);
	ASSERT_EQ(t_xfer_join(&sr), 0);
	ASSERT_EQ(t_xfer_join(&cr), 0);
	ASSERT_EQ(t_done_wait(&d, 30000), 0);

	t_expect_digest(1, up, want_up);
	t_expect_digest(2, down, want_down);
	ASSERT_EQ(sr.bytes, up);
	ASSERT_EQ(cr.bytes, down);
	ASSERT_TRUE(sr.eof && cr.eof);
	ASSERT_MEMEQ(sr.digest, want_up, T_SHA256_LEN);
	ASSERT_MEMEQ(cr.digest, want_down, T_SHA256_LEN);

	ASSERT_EQ(d.calls, 1);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	ASSERT_EQ(d.st.error, 0);
	ASSERT_EQ(d.st.dir[ZC_DIR_AB].bytes, up);
	ASSERT_EQ(d.st.dir[ZC_DIR_BA].bytes, down);
	ASSERT_EQ(d.st.dir[ZC_DIR_AB].fin, 1);
	ASSERT_EQ(d.st.dir[ZC_DIR_BA].fin, 1);
	for (int i = 0; i < 2; i++) {
		const struct zc_dir_stats *s = &d.st.dir[i];

		ASSERT_EQ(s->spliced + s->copied, s->bytes);
		ASSERT_EQ(s->fallback, 0);
		if (t_never_splices(ctx))
			ASSERT_EQ(s->spliced, 0);
		else if (t_splices(ctx)) /* these families all splice */
			ASSERT_EQ(s->copied, 0);
		else if (s->bytes >= MIB) /* auto: the bulk splices */
			ASSERT_GT(s->spliced, s->bytes / 2);
	}
	ASSERT_EQ(t_loop_stop(&l), 0);
	/* The relay closed its sides: only ours are left. */
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

/* One row per pair of families and direction(s). */
static const struct xfer_row {
	const char *name;
	int fa, fb; /* client's and server's family */
	uint64_t up, down;
} xfer_rows[] = {
        {"tcp4_up", AF_INET, AF_INET, BIG, 0},
        {"tcp4_down", AF_INET, AF_INET, 0, BIG},
        {"tcp4_both", AF_INET, AF_INET, BIG, BIG},
        {"tcp6_up", AF_INET6, AF_INET6, BIG, 0},
        {"tcp6_down", AF_INET6, AF_INET6, 0, BIG},
        {"tcp6_both", AF_INET6, AF_INET6, BIG, BIG},
        {"unix_tcp_up", AF_UNIX, AF_INET, BIG, 0},
        {"unix_tcp_down", AF_UNIX, AF_INET, 0, BIG},
        {"unix_tcp_both", AF_UNIX, AF_INET, BIG, BIG},
        {"tcp_unix_up", AF_INET, AF_UNIX, BIG, 0},
        {"tcp_unix_down", AF_INET, AF_UNIX, 0, BIG},
        {"tcp_unix_both", AF_INET, AF_UNIX, BIG, BIG},
};

TEST_MATRIX_TABLE_TIMEOUT(test_relay, xfer_rows, 300)
{
	const struct xfer_row *k = t_row();

	return relay_xfer(ctx, k->fa, k->fb, k->up, k->down);
}

/* The io_uring engine's second ring set-up (COOP_TASKRUN: completion
 * work runs at the loop thread's next system call, not batched per
 * wait) moves the same bytes. */
TEST_MATRIX_TIMEOUT(test_relay_tcp4_both_coop_taskrun, 300)
{
	T_SKIP_IF(ctx->engine != ZC_ENGINE_URING,
	          "a set-up of the io_uring engine");
	zc__uring_no_defer = 1;
	return relay_xfer(ctx, AF_INET, AF_INET, BIG, BIG);
}

TEST_MATRIX(test_relay_empty_both)
{
	/* No byte either way: both FINs still cross and the relay ends. */
	return relay_xfer(ctx, AF_INET, AF_INET, 0, 0);
}

TEST_MATRIX(test_relay_unix_unix_odd_sizes)
{
	/* Sizes that are not multiples of any buffer or pipe size. */
	return relay_xfer(ctx, AF_UNIX, AF_UNIX, 3 * MIB + 12345, 777777);
}

/* 50 request/response exchanges of 64 bytes, client pa0, server pb1. */
static int small_exchanges(int pa0, int pb1)
{
	char buf[64];
	int i;

	for (i = 0; i < 50; i++) {
		memset(buf, 'a' + i % 26, sizeof(buf));
		ASSERT_OK(t_write_all(pa0, buf, sizeof(buf)));
		ASSERT_EQ(t_read_full(pb1, buf, sizeof(buf), 5000), 64);
		ASSERT_EQ(buf[0], 'a' + i % 26);
		ASSERT_OK(t_write_all(pb1, buf, sizeof(buf)));
		ASSERT_EQ(t_read_full(pa0, buf, sizeof(buf), 5000), 64);
	}
	return T_PASS;
}

/*
 * The auto mover: small exchanges are copied (one recv, one send), a
 * direction that fills a whole read buffer switches to splice, one whose
 * messages turn small again goes back to copying after a few, and the
 * next bulk stretch splices again, without losing or reordering a byte.
 */
TEST_MATRIX(test_relay_auto_mover_small_copied_bulk_spliced)
{
	struct zc_relay_stats st;
	struct t_loop l;
	struct t_done d;
	uint64_t copied, spliced;
	int pa[2], pb[2];

	T_SKIP_IF(!t_splices(ctx),
	          "auto is tested once per engine, on the splice variant");
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_OK(t_loop_start(&l, ctx));
	ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ZC_MOVER_AUTO, 0, &d), 0);
	T_TRY(small_exchanges(pa[0], pb[1]));
	ASSERT_EQ(t_relay_stats(&l, &d, &st), 0);
	ASSERT_EQ(st.dir[0].copied, 50 * 64);
	ASSERT_EQ(st.dir[0].spliced + st.dir[1].spliced, 0);
	/* A bulk stretch splices; small messages after it are spliced for
	 * the first 8 and then copied again. */
	T_TRY(t_xfer_check_open(pa[0], pb[1], 8 * MIB, 80));
	ASSERT_EQ(t_relay_stats(&l, &d, &st), 0);
	ASSERT_GT(st.dir[0].spliced, 6 * MIB);
	copied = st.dir[0].copied;
	spliced = st.dir[0].spliced;
	T_TRY(small_exchanges(pa[0], pb[1]));
	ASSERT_EQ(t_relay_stats(&l, &d, &st), 0);
	t_log("50 messages after bulk: %llu bytes spliced, %llu copied",
	      (unsigned long long)(st.dir[0].spliced - spliced),
	      (unsigned long long)(st.dir[0].copied - copied));
	ASSERT_LE(st.dir[0].spliced - spliced, 9 * 64);
	ASSERT_GE(st.dir[0].copied - copied, 41 * 64);
	/* Now a bulk upload: it must end up spliced. */
	ASSERT_EQ(t_xfer_check(pa[0], pb[1], 64 * MIB, 81), T_PASS);
	shutdown(pb[1], SHUT_WR);
	ASSERT_EQ(t_done_wait(&d, 10000), 0);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	ASSERT_EQ(d.st.dir[0].bytes, 2 * 50 * 64 + 8 * MIB + 64 * MIB);
	t_log("auto: %llu bytes copied, %llu spliced",
	      (unsigned long long)d.st.dir[0].copied,
	      (unsigned long long)d.st.dir[0].spliced);
	ASSERT_GT(d.st.dir[0].spliced, 60 * MIB);
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

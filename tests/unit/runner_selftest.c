/*
 * runner_selftest.c - tests of the test helpers themselves: if these
 * fail, nothing else the suite says can be trusted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "tnet.h"

/* The stream does not depend on how it is cut into reads. */
TEST(test_runner_rng_chunking)
{
	static unsigned char a[4099], b[4099];
	struct t_rng r;
	size_t off, n;

	t_rng_init(&r, 42);
	t_rng_fill(&r, a, sizeof(a));
	t_rng_init(&r, 42);
	for (off = 0, n = 1; off < sizeof(b); off += n, n = n % 13 + 1) {
		if (n > sizeof(b) - off)
			n = sizeof(b) - off;
		t_rng_fill(&r, b + off, n);
	}
	ASSERT_MEMEQ(a, b, sizeof(a));
	t_rng_init(&r, 43);
	t_rng_fill(&r, b, sizeof(b));
	ASSERT_TRUE(memcmp(a, b, sizeof(a)) != 0);
	return T_PASS;
}

/* 8 MiB through a connected pair of each family: digests agree. */
static int pair_transfer(int family)
{
	const uint64_t len = 8u << 20;
	unsigned char want[T_SHA256_LEN];
	struct t_xfer tx, rx;
	int fds[2];

	ASSERT_OK(t_pair(family, fds));
	ASSERT_OK(t_receiver_start(&rx, fds[1], 0));
	ASSERT_OK(t_sender_start(&tx, fds[0], len, 7, T_XFER_SHUT_WR));
	ASSERT_OK(t_xfer_join(&tx));
	ASSERT_OK(t_xfer_join_ms(&rx, 30000));
	ASSERT_EQ(tx.bytes, len);
	ASSERT_EQ(rx.bytes, len);
	ASSERT_TRUE(rx.eof);
	t_expect_digest(7, len, want);
	ASSERT_MEMEQ(tx.digest, want, T_SHA256_LEN);
	ASSERT_MEMEQ(rx.digest, want, T_SHA256_LEN);
	close(fds[0]);
	close(fds[1]);
	return T_PASS;
}

/* Families, one test each: test_tnet_pair_inet, ..._inet6, ..._unix. */
static const struct family_row {
	const char *name;
	int family;
} pair_families[] = {
        {"inet", AF_INET},
        {"inet6", AF_INET6},
        {"unix", AF_UNIX},
};

TEST_TABLE(test_tnet_pair, pair_families)
{
	const struct family_row *k = t_row();

	T_SKIP_IF(k->family == AF_INET6 && !t_have_ipv6(), "no IPv6 on ::1");
	return pair_transfer(k->family);
}

/* Helpers leave no fds behind; t_pipe_count sees pipes. */
TEST(test_tnet_fd_count_stable)
{
	int n0 = t_fd_count(), p0 = t_pipe_count();
	struct zc_addr a;
	int fds[2], lfd;

	ASSERT_GE(n0, 3);
	ASSERT_OK(t_pair(AF_UNIX, fds));
	ASSERT_EQ(t_fd_count(), n0 + 2);
	close(fds[0]);
	close(fds[1]);
	lfd = t_listen(AF_INET, &a);
	ASSERT_OK(lfd);
	ASSERT_ERR(t_accept_ms(lfd, 10), -ETIMEDOUT);
	close(lfd);
	ASSERT_EQ(pipe(fds), 0);
	ASSERT_EQ(t_pipe_count(), p0 + 2);
	close(fds[0]);
	close(fds[1]);
	ASSERT_EQ(t_fd_count(), n0);
	ASSERT_EQ(t_pipe_count(), p0);
	return T_PASS;
}

/* A reset peer is reported as -ECONNRESET by the receiver and
 * t_wait_eof; a half-close as EOF. */
TEST(test_tnet_reset_and_eof)
{
	struct t_xfer rx;
	int fds[2];

	ASSERT_OK(t_pair(AF_INET, fds));
	ASSERT_OK(t_write_all(fds[0], "x", 1));
	ASSERT_OK(t_set_linger0(fds[0]));
	close(fds[0]);
	ASSERT_OK(t_receiver_start(&rx, fds[1], 0));
	ASSERT_ERR(t_xfer_join(&rx), -ECONNRESET);
	ASSERT_FALSE(rx.eof);
	close(fds[1]);

	ASSERT_OK(t_pair(AF_UNIX, fds));
	ASSERT_ERR(t_wait_eof(fds[1], 10), -ETIMEDOUT);
	ASSERT_EQ(shutdown(fds[0], SHUT_WR), 0);
	ASSERT_EQ(t_wait_eof(fds[1], 1000), 0);
	close(fds[0]);
	close(fds[1]);
	return T_PASS;
}

/* Matrix tests see their variant. */
TEST_MATRIX(test_runner_matrix_ctx)
{
	ASSERT_TRUE(ctx->variant != NULL);
	ASSERT_TRUE(ctx->mover == ZC_MOVER_SPLICE ||
	            ctx->mover == ZC_MOVER_COPY ||
	            ctx->mover == ZC_MOVER_RING ||
	            ctx->mover == ZC_MOVER_URING_SPLICE ||
	            (ctx->mover == ZC_MOVER_AUTO &&
	             ctx->engine == ZC_ENGINE_URING));
	ASSERT_NE(ctx->engine, ZC_ENGINE_AUTO);
	ASSERT_STREQ(strchr(ctx->variant, ':') + 1, zc_mover_name(ctx->mover));
	return T_PASS;
}

/* A table test runs once per row and sees its own row; rows[i].n == i
 * proves that row i got row i, not another or none. */
static const struct self_row {
	const char *name;
	int n;
} self_rows[] = {
        {"zero", 0},
        {"one", 1},
};

TEST_MATRIX_TABLE(test_runner_table_row, self_rows)
{
	const struct self_row *k = t_row();

	ASSERT_TRUE(k != NULL);
	ASSERT_TRUE(k >= self_rows && k < self_rows + 2);
	ASSERT_EQ(k->n, k - self_rows);
	ASSERT_TRUE(ctx->variant != NULL);
	return T_PASS;
}

/* Plain and matrix tests have no row. */
TEST(test_runner_no_row)
{
	ASSERT_TRUE(t_row() == NULL);
	return T_PASS;
}

/* T_TRY passes 0 on and returns anything else unchanged. */
static int try_twice(int first, int second, int *reached)
{
	T_TRY(first);
	*reached = 1;
	T_TRY(second);
	return T_PASS;
}

TEST(test_runner_try)
{
	int reached = 0;

	ASSERT_EQ(try_twice(0, 0, &reached), T_PASS);
	ASSERT_EQ(reached, 1);
	reached = 0;
	ASSERT_EQ(try_twice(T_SKIP, 0, &reached), T_SKIP);
	ASSERT_EQ(reached, 0);
	ASSERT_EQ(try_twice(0, -EINVAL, &reached), -EINVAL);
	ASSERT_EQ(reached, 1);
	return T_PASS;
}

/* The loop harness: start, call, relay a pair of pairs, stop. */
TEST_MATRIX(test_tnet_loop_relay)
{
	const uint64_t len = 4u << 20;
	struct zc_loop_stats ls;
	struct t_xfer tx, rx;
	struct t_loop l;
	struct t_done d;
	int a[2], b[2];

	ASSERT_OK(t_loop_start(&l, ctx));
	ASSERT_OK(t_pair(AF_INET, a));
	ASSERT_OK(t_pair(AF_UNIX, b));
	/* client a[0] -> relay(a[1], b[0]) -> b[1] server */
	ASSERT_OK(t_relay_run(&l, a[1], b[0], ctx->mover, 0, &d));
	ASSERT_OK(t_loop_stats(&l, &ls));
	ASSERT_EQ(ls.relays_active, 1);
	ASSERT_OK(t_receiver_start(&rx, b[1], 0));
	ASSERT_OK(t_sender_start(&tx, a[0], len, 99, T_XFER_SHUT_WR));
	ASSERT_OK(t_xfer_join(&tx));
	ASSERT_OK(t_xfer_join_ms(&rx, 30000));
	ASSERT_MEMEQ(tx.digest, rx.digest, T_SHA256_LEN);
	ASSERT_EQ(shutdown(b[1], SHUT_WR), 0);
	ASSERT_OK(t_done_wait(&d, 10000));
	ASSERT_EQ(d.calls, 1);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	ASSERT_EQ(d.st.dir[ZC_DIR_AB].bytes, len);
	ASSERT_ERR(t_relay_close(&l, &d), -ESRCH);
	ASSERT_OK(t_loop_stop(&l));
	close(a[0]);
	close(b[1]);
	return T_PASS;
}

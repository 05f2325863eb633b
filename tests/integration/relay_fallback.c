/*
 * relay_fallback.c - splice refused by the kernel: the direction switches
 * to copy without losing or reordering a byte. Failures are injected
 * through the library's splice seams (zc__sys_splice, and for the
 * uring-splice mover zc__usplice_seam, before each IORING_OP_SPLICE).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "runner.h"
#include "tnet.h"
#include "xfer.h"

#define MIB (1024ULL * 1024ULL)

static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t, unsigned);
static int fail_errno; /* what the fake returns */
static long drains_ok; /* successful socket->pipe calls before failing */
static long pumps_ok;  /* successful pipe->socket calls before failing */

static int is_pipe(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

static ssize_t fake_splice(int in, loff_t *oi, int out, loff_t *oo, size_t len,
                           unsigned flags)
{
	long *budget = is_pipe(in) ? &pumps_ok : &drains_ok;
	ssize_t n;

	if (*budget == 0) {
		errno = fail_errno;
		return -1;
	}
	n = real_splice(in, oi, out, oo, len, flags);
	if (n > 0 && *budget > 0)
		(*budget)--;
	return n;
}

/* The same budgets for io_uring splices, counted per request: a request
 * that moves nothing (the socket was empty) still counts. */
static int fake_uring_splice(int in, int out)
{
	long *budget = is_pipe(in) ? &pumps_ok : &drains_ok;

	if (*budget == 0)
		return -fail_errno;
	if (*budget > 0)
		(*budget)--;
	return 0;
}

static void inject(int err, long drains, long pumps)
{
	real_splice = zc__sys_splice;
	zc__sys_splice = fake_splice;
	zc__usplice_seam = fake_uring_splice;
	fail_errno = err;
	drains_ok = drains;
	pumps_ok = pumps;
}

/* 32 MiB each way through a relay with the injected failures. */
static int run(const struct t_ctx *ctx, int want_fallback)
{
	unsigned char w1[T_SHA256_LEN], w2[T_SHA256_LEN];
	struct t_xfer us, ur, ds, dr;
	struct t_loop l;
	struct t_done d;
	int pa[2], pb[2];

	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_UNIX, pb));
	ASSERT_OK(t_loop_start(&l, ctx));
	ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ctx->mover, 0, &d), 0);
	ASSERT_OK(t_receiver_start(&ur, pb[1], 0));
	ASSERT_OK(t_receiver_start(&dr, pa[0], 0));
	ASSERT_OK(t_sender_start(&us, pa[0], 32 * MIB, 51, T_XFER_SHUT_WR));
	ASSERT_OK(t_sender_start(&ds, pb[1], 32 * MIB + 9, 52, T_XFER_SHUT_WR));
	ASSERT_EQ(t_xfer_join(&us), 0);
	ASSERT_EQ(t_xfer_join(&ds), 0);
	ASSERT_EQ(t_xfer_join(&ur), 0);
	ASSERT_EQ(t_xfer_join(&dr), 0);
	ASSERT_EQ(t_done_wait(&d, 10000), 0);
	t_expect_digest(51, 32 * MIB, w1);
	t_expect_digest(52, 32 * MIB + 9, w2);
	ASSERT_MEMEQ(ur.digest, w1, T_SHA256_LEN);
	ASSERT_MEMEQ(dr.digest, w2, T_SHA256_LEN);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	for (int i = 0; i < 2; i++) {
		const struct zc_dir_stats *s = &d.st.dir[i];

		ASSERT_EQ(s->spliced + s->copied, s->bytes);
		if (want_fallback && t_splices(ctx)) {
			ASSERT_EQ(s->fallback, -fail_errno);
			ASSERT_GT(s->copied, 0);
		}
	}
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

TEST_MATRIX(test_fallback_einval_first_splice)
{
	inject(EINVAL, 0, 0);
	ASSERT_EQ(run(ctx, 1), T_PASS);
	if (t_splices(ctx))
		ASSERT_EQ(drains_ok, 0);
	return T_PASS;
}

TEST_MATRIX(test_fallback_enosys_mid_stream_drain)
{
	/* Bytes already sit in the pipe when the drain starts failing: they
	 * must leave before the first copied byte. */
	inject(ENOSYS, 7, -1);
	return run(ctx, 1);
}

TEST_MATRIX(test_fallback_einval_on_pump)
{
	/* The destination refuses splice with bytes in the pipe: the pipe
	 * is emptied through the buffer. */
	inject(EINVAL, -1, 5);
	return run(ctx, 1);
}

TEST_MATRIX(test_fallback_ebadf_both)
{
	inject(EBADF, 3, 2);
	return run(ctx, 1);
}

/* Every 5th io_uring splice completes with the kernel's -ERESTARTSYS
 * (512), as an io-wq worker interrupted mid-splice can: the uring-splice
 * mover asks again, and the relay ends by EOF with every byte. */
static long restart_calls;

static int restart_uring_splice(int in, int out)
{
	return ++restart_calls % 5 == 0 ? -512 : 0;
}

TEST_MATRIX(test_fallback_uring_splice_restartsys_retried)
{
	T_SKIP_IF(ctx->mover != ZC_MOVER_URING_SPLICE,
	          "only the uring-splice mover splices through io-wq");
	restart_calls = 0;
	zc__usplice_seam = restart_uring_splice;
	ASSERT_EQ(run(ctx, 0), T_PASS);
	t_log("%ld io_uring splices, %ld of them -ERESTARTSYS", restart_calls,
	      restart_calls / 5);
	ASSERT_GT(restart_calls / 5, 10);
	return T_PASS;
}

/* zc_transfer with a length: splice refused on the pump with a chunk in
 * the private pipe. The chunk is flushed by copy and counted, so exactly
 * length bytes arrive. */
TEST(test_fallback_transfer_limit_exact)
{
	unsigned char want[T_SHA256_LEN];
	struct zc_transfer_opts o;
	struct zc_transfer_stats st;
	struct t_xfer w, r;
	int src[2], dst[2];

	ASSERT_OK(t_pair(AF_INET, src));
	ASSERT_OK(t_pair(AF_INET, dst));
	ASSERT_OK(t_sender_start(&w, src[0], 8 * MIB, 71, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start(&r, dst[1], 0));
	inject(EINVAL, -1, 3);
	zc_transfer_opts_init(&o);
	o.length = 5 * MIB + 3;
	ASSERT_EQ(zc_transfer(dst[0], src[1], &o, &st), 0);
	shutdown(dst[0], SHUT_WR);
	ASSERT_EQ(t_xfer_join(&r), 0);
	ASSERT_EQ(st.fallback, -EINVAL);
	ASSERT_EQ(st.bytes, 5 * MIB + 3);
	ASSERT_EQ(r.bytes, 5 * MIB + 3);
	t_expect_digest(71, 5 * MIB + 3, want);
	ASSERT_MEMEQ(r.digest, want, T_SHA256_LEN);
	close(src[1]); /* the sender sees the rest refused */
	t_xfer_join(&w);
	close(src[0]);
	close(dst[0]);
	close(dst[1]);
	return T_PASS;
}

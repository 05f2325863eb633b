/*
 * lib_splice.c - zc_splice() and zc_relay_start(): input validation like
 * the BSD splice proposals, and the blocking call end to end.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "runner.h"
#include "tnet.h"

#define MIB (1024ULL * 1024ULL)

TEST(test_zc_splice_rejects_non_sockets)
{
	int p[2], s[2], fd;
	char path[256];

	ASSERT_OK(pipe(p));
	ASSERT_OK(t_pair(AF_INET, s));
	ASSERT_EQ(zc_splice(p[0], s[0], NULL, NULL), -ENOTSOCK);
	ASSERT_EQ(zc_splice(s[0], p[1], NULL, NULL), -ENOTSOCK);
	ASSERT_OK(t_write_tmp("f", "data", path, sizeof(path)));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_EQ(zc_splice(fd, s[0], NULL, NULL), -ENOTSOCK);
	ASSERT_EQ(zc_splice(-1, s[0], NULL, NULL), -EBADF);
	ASSERT_EQ(zc_splice(s[0], 1000, NULL, NULL), -EBADF);
	close(fd);
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
	return T_PASS;
}

TEST(test_zc_splice_rejects_same_socket)
{
	int s[2], d;

	ASSERT_OK(t_pair(AF_INET, s));
	ASSERT_EQ(zc_splice(s[0], s[0], NULL, NULL), -EINVAL);
	d = dup(s[0]); /* another fd, the same socket */
	ASSERT_OK(d);
	ASSERT_EQ(zc_splice(s[0], d, NULL, NULL), -EINVAL);
	close(d);
	close(s[0]);
	close(s[1]);
	return T_PASS;
}

TEST(test_zc_splice_rejects_unconnected)
{
	struct zc_addr a;
	int s[2], fresh, lfd;

	ASSERT_OK(t_pair(AF_INET, s));
	fresh = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(fresh);
	ASSERT_EQ(zc_splice(fresh, s[0], NULL, NULL), -ENOTCONN);
	lfd = t_listen(AF_INET, &a); /* listening is not connected */
	ASSERT_OK(lfd);
	ASSERT_EQ(zc_splice(s[0], lfd, NULL, NULL), -ENOTCONN);
	close(lfd);
	close(fresh);
	close(s[0]);
	close(s[1]);
	return T_PASS;
}

TEST(test_zc_splice_rejects_non_stream)
{
	int s[2], u[2], q[2];

	ASSERT_OK(t_pair(AF_INET, s));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, u));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, q));
	ASSERT_EQ(zc_splice(u[0], s[0], NULL, NULL), -ESOCKTNOSUPPORT);
	ASSERT_EQ(zc_splice(s[0], q[0], NULL, NULL), -ESOCKTNOSUPPORT);
	close(u[0]);
	close(u[1]);
	close(q[0]);
	close(q[1]);
	close(s[0]);
	close(s[1]);
	return T_PASS;
}

TEST(test_zc_splice_rejects_bad_opts)
{
	struct zc_relay_opts o;
	int a[2], b[2];

	ASSERT_OK(t_pair(AF_INET, a));
	ASSERT_OK(t_pair(AF_INET, b));
	zc_relay_opts_init(&o);
	o.mover = 42;
	ASSERT_EQ(zc_splice(a[1], b[0], &o, NULL), -EINVAL);
	o.mover = -1;
	ASSERT_EQ(zc_splice(a[1], b[0], &o, NULL), -EINVAL);
	o.mover = ZC_MOVER_URING_SPLICE + 1; /* one past the last */
	ASSERT_EQ(zc_splice(a[1], b[0], &o, NULL), -EINVAL);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	return T_PASS;
}

TEST(test_zc_relay_start_failure_keeps_fds)
{
	struct t_loop l;
	struct t_done d;
	int s[2], p[2];

	ASSERT_OK(t_pair(AF_INET, s));
	ASSERT_OK(pipe(p));
	ASSERT_OK(t_loop_start(&l, ctx));
	ASSERT_EQ(t_relay_run(&l, s[0], p[0], ZC_MOVER_AUTO, 0, &d), -ENOTSOCK);
	ASSERT_EQ(t_relay_run(&l, s[0], s[0], ZC_MOVER_AUTO, 0, &d), -EINVAL);
	ASSERT_EQ(d.calls, 0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	/* Still ours: these closes must succeed. */
	ASSERT_EQ(close(s[0]), 0);
	ASSERT_EQ(close(s[1]), 0);
	ASSERT_EQ(close(p[0]), 0);
	ASSERT_EQ(close(p[1]), 0);
	return T_PASS;
}

struct splice_call {
	int a, b, mover, rc;
	struct zc_relay_stats st;
};

static void *splice_thread(void *arg)
{
	struct splice_call *c = arg;
	struct zc_relay_opts o;

	zc_relay_opts_init(&o);
	o.mover = c->mover;
	c->rc = zc_splice(c->a, c->b, &o, &c->st);
	return NULL;
}

/* zc_splice between a Unix pair and a TCP pair, both directions. */
TEST_MATRIX(test_zc_splice_blocking_both_ways)
{
	struct splice_call c = {.mover = ctx->mover};
	int pa[2], pb[2];
	pthread_t th;

	ASSERT_OK(t_pair(AF_UNIX, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	c.a = pa[1];
	c.b = pb[0];
	ASSERT_EQ(pthread_create(&th, NULL, splice_thread, &c), 0);
	T_TRY(t_xfer_both_ways(pa[0], pb[1], 32 * MIB + 1, 16 * MIB - 1, 21));
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(c.rc, 0);
	ASSERT_EQ(c.st.end, ZC_END_EOF);
	ASSERT_EQ(c.st.dir[ZC_DIR_AB].bytes, 32 * MIB + 1);
	ASSERT_EQ(c.st.dir[ZC_DIR_BA].bytes, 16 * MIB - 1);
	if (t_never_splices(ctx))
		ASSERT_EQ(c.st.dir[0].spliced + c.st.dir[1].spliced, 0);
	else if (t_splices(ctx))
		ASSERT_EQ(c.st.dir[0].copied + c.st.dir[1].copied, 0);
	else /* auto: the bulk splices */
		ASSERT_GT(c.st.dir[0].spliced, 16 * MIB);
	/* The caller's fds are open and blocking again. */
	ASSERT_EQ(fcntl(pa[1], F_GETFL) & O_NONBLOCK, 0);
	ASSERT_EQ(fcntl(pb[0], F_GETFL) & O_NONBLOCK, 0);
	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
	return T_PASS;
}

TEST_MATRIX(test_zc_splice_reset_and_timeout)
{
	struct splice_call c = {.mover = ctx->mover};
	struct zc_relay_opts o;
	int pa[2], pb[2];
	char buf[1];
	pthread_t th;

	/* A peer resets: zc_splice returns the error, the other sees RST
	 * when the caller closes. */
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	c.a = pa[1];
	c.b = pb[0];
	ASSERT_EQ(pthread_create(&th, NULL, splice_thread, &c), 0);
	/* One byte through proves the relay runs before the reset. */
	ASSERT_OK(t_write_all(pa[0], "x", 1));
	ASSERT_EQ(t_read_full(pb[1], buf, 1, 5000), 1);
	ASSERT_OK(t_set_linger0(pb[1]));
	close(pb[1]);
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(c.rc, -ECONNRESET);
	ASSERT_EQ(c.st.end, ZC_END_RESET);
	close(pa[1]);
	close(pb[0]);
	ASSERT_EQ(t_wait_eof(pa[0], 2000), -ECONNRESET);
	close(pa[0]);

	/* Idle timeout: -ETIMEDOUT. */
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	zc_relay_opts_init(&o);
	o.mover = ctx->mover;
	o.idle_timeout_ms = 150;
	ASSERT_EQ(zc_splice(pa[1], pb[0], &o, &c.st), -ETIMEDOUT);
	ASSERT_EQ(c.st.end, ZC_END_TIMEOUT);
	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
	return T_PASS;
}

static void done_flag(void *arg, const struct zc_relay_stats *st)
{
	*(int *)arg = st->end;
}

/* A relay started outside any callback, after the loop sat idle, counts
 * its idle timeout from its start, not from the loop's last turn. */
TEST(test_relay_idle_timeout_counts_from_start)
{
	struct zc_relay_opts o;
	struct zc_loop *loop;
	int pa[2], pb[2], end = ZC_END_NONE;
	uint64_t t0;

	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_EQ(zc_loop_new(&loop, NULL), 0);
	ASSERT_EQ(zc_loop_run_once(loop, 0), 0);
	t_sleep_ms(1200);
	zc_relay_opts_init(&o);
	o.idle_timeout_ms = 1000;
	ASSERT_EQ(zc_relay_start(NULL, loop, pa[1], pb[0], &o, done_flag, &end),
	          0);
	t0 = t_now_ms();
	while (t_now_ms() - t0 < 500)
		ASSERT_EQ(zc_loop_run_once(loop, 100), 0);
	ASSERT_EQ(end, ZC_END_NONE);
	while (end == ZC_END_NONE && t_now_ms() - t0 < 3000)
		ASSERT_EQ(zc_loop_run_once(loop, 100), 0);
	ASSERT_EQ(end, ZC_END_TIMEOUT);
	ASSERT_GE(t_now_ms() - t0, 900);
	zc_loop_free(loop);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

static void stop_now(struct zc_loop *loop, void *arg)
{
	zc_loop_stop(loop);
}

/* After zc_loop_stop, run_once waits again instead of spinning. */
TEST(test_loop_run_once_waits_after_stop)
{
	struct zc_loop *loop;
	uint64_t t0;

	ASSERT_EQ(zc_loop_new(&loop, NULL), 0);
	ASSERT_EQ(zc_loop_post(loop, stop_now, NULL), 0);
	ASSERT_EQ(zc_loop_run(loop), 0);
	t0 = t_now_ms();
	ASSERT_EQ(zc_loop_run_once(loop, 200), 0);
	ASSERT_GE(t_now_ms() - t0, 150);
	zc_loop_free(loop);
	return T_PASS;
}

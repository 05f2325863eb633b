/*
 * relay_usplice.c - what only the uring-splice mover (IORING_OP_SPLICE,
 * run by io-wq workers) has: the splice(2) fallback on epoll and where
 * the kernel lacks the opcode, and a bounded number of io-wq threads
 * while many relays stream. The rest of the suite runs on it as the
 * uring:uring-splice variant.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "runner.h"
#include "tnet.h"
#include "uring.h"

#define MIB (1024ULL * 1024ULL)

/* 4 MiB through a uring-splice relay on an engine where the mover
 * cannot run: it must splice with splice(2) and say why. */
static int usplice_fallback(int engine, int want_err)
{
	struct t_ctx c = {ZC_MOVER_URING_SPLICE, engine, NULL};
	struct t_loop l;
	struct t_done d;
	int pa[2], pb[2], err;

	err = t_loop_start(&l, &c);
	T_SKIP_IF(err == ZC_ENOURING, "io_uring unavailable");
	ASSERT_OK(err);
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], c.mover, 0, &d), 0);
	ASSERT_EQ(t_xfer_check(pa[0], pb[1], 4 * MIB, 93), T_PASS);
	shutdown(pb[1], SHUT_WR);
	ASSERT_EQ(t_done_wait(&d, 5000), 0);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	ASSERT_EQ(d.st.engine, engine);
	ASSERT_EQ(d.st.mover, ZC_MOVER_SPLICE);
	ASSERT_EQ(d.st.dir[ZC_DIR_AB].fallback, want_err);
	ASSERT_EQ(d.st.dir[ZC_DIR_AB].spliced, 4 * MIB);
	ASSERT_EQ(d.st.dir[ZC_DIR_AB].copied, 0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

/* On epoll the uring-splice mover splices with splice(2), and says so. */
TEST(test_usplice_on_epoll_splices)
{
	return usplice_fallback(ZC_ENGINE_EPOLL, -EOPNOTSUPP);
}

/* A kernel without IORING_OP_SPLICE (the probe says -ENOSYS): the same. */
TEST(test_usplice_probe_refused_splices)
{
	zc__usplice_inject_probe = -ENOSYS; /* this test's child only */
	return usplice_fallback(ZC_ENGINE_URING, -ENOSYS);
}

/* io-wq workers of this process ("iou-wrk-TID" threads). */
static int iowq_threads(void)
{
	char path[300], comm[32];
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");
	FILE *f;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
		         de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue; /* the thread has just exited */
		if (fgets(comm, sizeof(comm), f) &&
		    strncmp(comm, "iou-wrk-", 8) == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

#define NSTREAM 16
#define STREAM  (16 * MIB)

struct stream {
	struct t_xfer up_tx, up_rx, dn_tx, dn_rx;
	struct t_done d;
	int cli, srv;
};

/* Starts relay i and its four transfer threads. */
static int stream_start(struct t_loop *l, struct stream *s, int i)
{
	int pa[2], pb[2];

	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_EQ(t_relay_run(l, pa[1], pb[0], ZC_MOVER_URING_SPLICE, 0, &s->d),
	          0);
	s->cli = pa[0];
	s->srv = pb[1];
	ASSERT_OK(t_receiver_start(&s->up_rx, s->srv, 0));
	ASSERT_OK(t_receiver_start(&s->dn_rx, s->cli, 0));
	ASSERT_OK(t_sender_start(&s->up_tx, s->cli, STREAM, 300 + i,
	                         T_XFER_SHUT_WR));
	ASSERT_OK(t_sender_start(&s->dn_tx, s->srv, STREAM, 400 + i,
	                         T_XFER_SHUT_WR));
	return T_PASS;
}

/* Joins relay i's transfers and checks every byte and the relay's end. */
static int stream_check(struct stream *s, int i)
{
	unsigned char w[T_SHA256_LEN];

	ASSERT_OK(t_xfer_join(&s->up_tx));
	ASSERT_OK(t_xfer_join(&s->dn_tx));
	ASSERT_OK(t_xfer_join(&s->up_rx));
	ASSERT_OK(t_xfer_join(&s->dn_rx));
	t_expect_digest(300 + i, STREAM, w);
	ASSERT_MEMEQ(s->up_rx.digest, w, T_SHA256_LEN);
	t_expect_digest(400 + i, STREAM, w);
	ASSERT_MEMEQ(s->dn_rx.digest, w, T_SHA256_LEN);
	ASSERT_EQ(t_done_wait(&s->d, 10000), 0);
	ASSERT_EQ(s->d.st.end, ZC_END_EOF);
	ASSERT_EQ(s->d.st.mover, ZC_MOVER_URING_SPLICE);
	ASSERT_EQ(s->d.st.dir[ZC_DIR_AB].spliced, STREAM);
	ASSERT_EQ(s->d.st.dir[ZC_DIR_BA].spliced, STREAM);
	close(s->cli);
	close(s->srv);
	return T_PASS;
}

/* 1 while some relay has not ended. */
static int streams_running(struct stream *s)
{
	int i;

	for (i = 0; i < NSTREAM; i++)
		if (t_done_wait(&s[i].d, 0))
			return 1;
	return 0;
}

/*
 * 16 relays stream 16 MiB each way at once on one loop while the io-wq
 * threads are counted every 2 ms. The loop bounds its thread's io-wq to
 * ZC_USPLICE_MAX_WORKERS unbound workers: however many splices wait, no
 * more threads may appear (and some must, or the test saw nothing).
 */
TEST_TIMEOUT(test_usplice_iowq_threads_bounded, 240)
{
	static struct stream s[NSTREAM];
	struct t_ctx c = {ZC_MOVER_URING_SPLICE, ZC_ENGINE_URING, NULL};
	struct t_loop l;
	int i, n, max = 0, samples = 0, err;

	err = t_loop_start(&l, &c);
	T_SKIP_IF(err == ZC_ENOURING, "io_uring unavailable");
	ASSERT_OK(err);
	for (i = 0; i < NSTREAM; i++)
		ASSERT_EQ(stream_start(&l, &s[i], i), T_PASS);
	do {
		n = iowq_threads();
		ASSERT_OK(n);
		max = n > max ? n : max;
		samples++;
		t_sleep_ms(2);
	} while (streams_running(s));
	for (i = 0; i < NSTREAM; i++)
		ASSERT_EQ(stream_check(&s[i], i), T_PASS);
	t_log("%d relays x 2 x %llu MiB: at most %d io-wq threads "
	      "(%d samples, bound %u)",
	      NSTREAM, (unsigned long long)(STREAM / MIB), max, samples,
	      ZC_USPLICE_MAX_WORKERS);
	ASSERT_GT(max, 0);
	ASSERT_LE(max, (int)ZC_USPLICE_MAX_WORKERS);
	ASSERT_EQ(t_loop_stop(&l), 0);
	return T_PASS;
}

/* CPU time of the whole process (all threads, io-wq workers included)
 * in ms. */
static long cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec * 1000L + ru.ru_utime.tv_usec / 1000 +
	       ru.ru_stime.tv_sec * 1000L + ru.ru_stime.tv_usec / 1000;
}

#define NSTALL 8

/*
 * No spinning: relays whose destinations stop reading wait on polls
 * (their pipes full, their pumps waiting for POLLOUT), and relays with
 * nothing to read wait on polls too. Neither the loop nor an io-wq
 * worker may burn CPU meanwhile: the process uses less than 10 % of one
 * CPU over a second. Then the readers start and every byte arrives.
 */
TEST_TIMEOUT(test_usplice_stalled_and_idle_relays_do_not_spin, 120)
{
	static struct t_xfer tx[NSTALL], rx[NSTALL];
	static struct t_done d[NSTALL], idle_d[NSTALL];
	struct t_ctx c = {ZC_MOVER_URING_SPLICE, ZC_ENGINE_URING, NULL};
	unsigned char w[T_SHA256_LEN];
	int i, err, pa[2], pb[2], cli[NSTALL], srv[NSTALL], icli[NSTALL],
	        isrv[NSTALL];
	struct t_loop l;
	long c0, used;

	err = t_loop_start(&l, &c);
	T_SKIP_IF(err == ZC_ENOURING, "io_uring unavailable");
	ASSERT_OK(err);
	for (i = 0; i < NSTALL; i++) {
		ASSERT_OK(t_pair(AF_INET, pa));
		ASSERT_OK(t_pair(AF_INET, pb));
		ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], c.mover, 0, &d[i]), 0);
		cli[i] = pa[0];
		srv[i] = pb[1];
		ASSERT_OK(t_sender_start(&tx[i], cli[i], 64 * MIB, 500 + i,
		                         T_XFER_SHUT_WR));
		ASSERT_OK(t_pair(AF_INET, pa));
		ASSERT_OK(t_pair(AF_INET, pb));
		ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], c.mover, 0, &idle_d[i]),
		          0);
		icli[i] = pa[0];
		isrv[i] = pb[1];
	}
	t_sleep_ms(500); /* every buffer on the way fills up */
	c0 = cpu_ms();
	t_sleep_ms(1000);
	used = cpu_ms() - c0;
	t_log("%d stalled and %d idle relays: %ld ms CPU in 1 s", NSTALL,
	      NSTALL, used);
	ASSERT_LT(used, 100);
	for (i = 0; i < NSTALL; i++)
		ASSERT_OK(t_receiver_start(&rx[i], srv[i], 0));
	for (i = 0; i < NSTALL; i++) {
		ASSERT_OK(t_xfer_join(&tx[i]));
		ASSERT_OK(t_xfer_join(&rx[i]));
		t_expect_digest(500 + i, 64 * MIB, w);
		ASSERT_MEMEQ(rx[i].digest, w, T_SHA256_LEN);
		ASSERT_EQ(shutdown(srv[i], SHUT_WR), 0);
		ASSERT_EQ(t_done_wait(&d[i], 10000), 0);
		ASSERT_EQ(d[i].st.end, ZC_END_EOF);
		close(cli[i]);
		close(srv[i]);
		close(icli[i]);
		close(isrv[i]);
		ASSERT_EQ(t_done_wait(&idle_d[i], 10000), 0);
	}
	ASSERT_EQ(t_loop_stop(&l), 0);
	return T_PASS;
}

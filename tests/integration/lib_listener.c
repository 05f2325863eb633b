/*
 * lib_listener.c - zc_listener_start() and zc_connect_start(): accepting,
 * shedding clients when out of fds (EMFILE) and resuming, connect
 * failures and timeouts reported through the callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "runner.h"
#include "tnet.h"

struct acc {
	struct zc_listener *l;
	int lfd;
	int accepted; /* count, loop thread */
	int last_fd;
};

static void on_accept(void *arg, int fd, const struct sockaddr *sa,
                      socklen_t len)
{
	struct acc *a = arg;

	__atomic_add_fetch(&a->accepted, 1, __ATOMIC_SEQ_CST);
	close(fd);
}

static void start_listener(struct zc_loop *loop, void *arg)
{
	struct acc *a = arg;

	a->last_fd = zc_listener_start(&a->l, loop, a->lfd, on_accept, a);
}

static void stop_listener(struct zc_loop *loop, void *arg)
{
	struct acc *a = arg;

	zc_listener_stop(a->l);
}

TEST_TIMEOUT(test_listener_sheds_on_emfile_then_resumes, 30)
{
	struct zc_loop_stats st;
	struct rlimit rl;
	struct zc_addr addr;
	struct t_loop l;
	struct acc a = {0};
	int fill[64], n = 0, c, fds;

	a.lfd = t_listen(AF_INET, &addr);
	ASSERT_OK(a.lfd);
	ASSERT_OK(t_loop_start(&l, NULL));
	ASSERT_OK(t_loop_call(&l, start_listener, &a));
	ASSERT_EQ(a.last_fd, 0);

	/* Leave the process no free fd, then connect. */
	fds = t_fd_count();
	rl.rlim_cur = rl.rlim_max = (rlim_t)fds + 40;
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &rl));
	c = t_connect(&addr); /* takes one */
	ASSERT_OK(c);
	/* Its accept must be over (and its fd closed) before we fill the
	 * table, or that fd's slot frees up behind our back. */
	for (int w = 0;
	     w < 500 && !__atomic_load_n(&a.accepted, __ATOMIC_SEQ_CST); w++)
		t_sleep_ms(10);
	ASSERT_EQ(__atomic_load_n(&a.accepted, __ATOMIC_SEQ_CST), 1);
	while (n < 64 && (fill[n] = dup(0)) >= 0)
		n++;
	ASSERT_EQ(errno, EMFILE);
	ASSERT_LT(n, 64);
	/* A client arriving now is closed at once, not left hanging. */
	close(fill[--n]); /* room for exactly our test's next socket */
	{
		int c2 = t_connect(&addr);

		ASSERT_OK(c2);
		ASSERT_TRUE(t_wait_eof(c2, 3000) == 0 ||
		            t_wait_eof(c2, 0) == -ECONNRESET);
		close(c2);
	}
	ASSERT_OK(t_loop_stats(&l, &st));
	ASSERT_GE(st.accept_paused, 1);
	/* fds come back: after the pause, clients are accepted again. */
	while (n > 0)
		close(fill[--n]);
	close(c);
	{
		uint64_t t0 = t_now_ms();
		int before = __atomic_load_n(&a.accepted, __ATOMIC_SEQ_CST);
		int c3 = t_connect(&addr);

		ASSERT_OK(c3);
		while (__atomic_load_n(&a.accepted, __ATOMIC_SEQ_CST) ==
		               before &&
		       t_now_ms() - t0 < 5000)
			t_sleep_ms(10);
		ASSERT_GT(__atomic_load_n(&a.accepted, __ATOMIC_SEQ_CST),
		          before);
		close(c3);
	}
	ASSERT_OK(t_loop_call(&l, stop_listener, &a));
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(a.lfd);
	return T_PASS;
}

struct conn_res {
	int result;
	int done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const struct zc_addr *to;
	unsigned timeout_ms;
	int start_err;
};

static void on_connect(void *arg, int fd_or_err)
{
	struct conn_res *r = arg;

	if (fd_or_err >= 0)
		close(fd_or_err);
	pthread_mutex_lock(&r->mu);
	r->result = fd_or_err >= 0 ? 0 : fd_or_err;
	r->done++;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void start_connect(struct zc_loop *loop, void *arg)
{
	struct conn_res *r = arg;

	r->start_err = zc_connect_start(
	        NULL, loop, (const struct sockaddr *)&r->to->ss, r->to->len,
	        r->timeout_ms, on_connect, r);
}

/* Connects through the loop; returns the callback's result. */
static int do_connect(struct t_loop *l, const struct zc_addr *to,
                      unsigned timeout_ms)
{
	struct conn_res r = {.to = to, .timeout_ms = timeout_ms};
	struct timespec ts;
	int rc = 0;

	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (t_loop_call(l, start_connect, &r))
		return -EIO;
	if (r.start_err)
		return r.start_err;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&r.mu);
	while (!r.done && rc == 0)
		rc = pthread_cond_timedwait(&r.cv, &r.mu, &ts);
	pthread_mutex_unlock(&r.mu);
	if (!r.done)
		return -EIO;
	return r.done == 1 ? r.result : -EPROTO;
}

TEST(test_connect_ok_refused_timeout)
{
	struct zc_addr ok, dead, full;
	struct t_loop l;
	int lfd, lfd2, fill[4], i, nfill = 0;
	uint64_t t0;

	lfd = t_listen(AF_INET, &ok);
	ASSERT_OK(lfd);
	ASSERT_OK(t_free_addr(AF_INET, &dead));
	ASSERT_OK(t_loop_start(&l, NULL));
	ASSERT_EQ(do_connect(&l, &ok, 1000), 0);
	ASSERT_EQ(do_connect(&l, &dead, 1000), -ECONNREFUSED);

	/* A listener whose queue is full drops SYNs: the timeout fires. */
	lfd2 = t_listen(AF_INET, &full);
	ASSERT_OK(lfd2);
	ASSERT_OK(listen(lfd2, 0));
	for (i = 0; i < 4; i++) {
		fill[nfill] = socket(
		        AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		ASSERT_OK(fill[nfill]);
		connect(fill[nfill], (struct sockaddr *)&full.ss, full.len);
		nfill++;
	}
	t_sleep_ms(50);
	t0 = t_now_ms();
	i = do_connect(&l, &full, 300);
	T_SKIP_IF(i == 0, "the kernel accepted past a full backlog here");
	ASSERT_EQ(i, -ETIMEDOUT);
	ASSERT_GE(t_now_ms() - t0, 290);
	ASSERT_LT(t_now_ms() - t0, 3000);
	ASSERT_EQ(t_loop_stop(&l), 0);
	for (i = 0; i < nfill; i++)
		close(fill[i]);
	close(lfd);
	close(lfd2);
	return T_PASS;
}

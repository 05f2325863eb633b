/*
 * lib_listener.c - zc_listener_start() and zc_connect_start(): accepting,
 * shedding clients when out of fds (EMFILE) and resuming, connect
 * failures and timeouts reported through the callback.
 */
#include <errno.h>
#include <fcntl.h>
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
	/* The last client's peer address and fd flags, set before the
	 * count goes up. */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	int fl, fdfl;
};

static void on_accept(void *arg, int fd, const struct sockaddr *sa,
                      socklen_t len)
{
	struct acc *a = arg;

	memcpy(&a->peer, sa, len < sizeof(a->peer) ? len : sizeof(a->peer));
	a->peer_len = len;
	a->fl = fcntl(fd, F_GETFL);
	a->fdfl = fcntl(fd, F_GETFD);
	close(fd);
	__atomic_add_fetch(&a->accepted, 1, __ATOMIC_SEQ_CST);
}

/* Waits up to ms for at least n accepted clients; the count. */
static int acc_wait(struct acc *a, int n, int ms)
{
	uint64_t t0 = t_now_ms();
	int got;

	while ((got = __atomic_load_n(&a->accepted, __ATOMIC_SEQ_CST)) < n &&
	       t_now_ms() - t0 < (uint64_t)ms)
		t_sleep_ms(5);
	return got;
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

static void stop_listener_noop(struct zc_loop *loop, void *arg)
{
}

TEST_MATRIX_TIMEOUT(test_listener_sheds_on_emfile_then_resumes, 30)
{
	struct zc_loop_stats st;
	struct rlimit rl;
	struct zc_addr addr;
	struct t_loop l;
	struct acc a = {0};
	int fill[64], n = 0, c, fds;

	a.lfd = t_listen(AF_INET, &addr);
	ASSERT_OK(a.lfd);
	ASSERT_OK(t_loop_start(&l, ctx));
	/* Lower the limit first: io_uring's accept reads it when the
	 * request is submitted, so a multishot accept armed before would
	 * keep the old one. */
	fds = t_fd_count();
	rl.rlim_cur = rl.rlim_max = (rlim_t)fds + 40;
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &rl));
	ASSERT_OK(t_loop_call(&l, start_listener, &a));
	ASSERT_EQ(a.last_fd, 0);

	/* Leave the process no free fd, then connect. */
	c = t_connect(&addr); /* takes one */
	ASSERT_OK(c);
	/* Its accept must be over (and its fd closed) before we fill the
	 * table, or that fd's slot frees up behind our back. */
	ASSERT_EQ(acc_wait(&a, 1, 5000), 1);
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
		int before = __atomic_load_n(&a.accepted, __ATOMIC_SEQ_CST);
		int c3 = t_connect(&addr);

		ASSERT_OK(c3);
		ASSERT_GT(acc_wait(&a, before + 1, 5000), before);
		close(c3);
	}
	ASSERT_OK(t_loop_call(&l, stop_listener, &a));
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(a.lfd);
	return T_PASS;
}

/* Every family: the callback gets the client's own address as the peer
 * (io_uring's multishot accept has it from getpeername()), and an fd
 * that is non-blocking and close-on-exec. */
static int peer_check(const struct t_ctx *ctx, int family)
{
	struct sockaddr_storage me;
	socklen_t len = sizeof(me);
	struct zc_addr addr;
	struct t_loop l;
	struct acc a = {0};
	int c;

	a.lfd = t_listen(family, &addr);
	ASSERT_OK(a.lfd);
	ASSERT_OK(t_loop_start(&l, ctx));
	ASSERT_OK(t_loop_call(&l, start_listener, &a));
	ASSERT_EQ(a.last_fd, 0);
	c = t_connect(&addr);
	ASSERT_OK(c);
	ASSERT_EQ(acc_wait(&a, 1, 5000), 1);
	ASSERT_OK(getsockname(c, (struct sockaddr *)&me, &len));
	ASSERT_TRUE(a.fl & O_NONBLOCK);
	ASSERT_TRUE(a.fdfl & FD_CLOEXEC);
	ASSERT_EQ(a.peer.ss_family, family);
	if (family != AF_UNIX) { /* an unbound Unix client has no name */
		ASSERT_EQ(a.peer_len, len);
		ASSERT_MEMEQ(&a.peer, &me, len);
	}
	ASSERT_EQ(t_wait_eof(c, 2000), 0);
	close(c);
	ASSERT_OK(t_loop_call(&l, stop_listener, &a));
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(a.lfd);
	t_cleanup_unix(&addr);
	return T_PASS;
}

TEST_MATRIX(test_listener_peer_address)
{
	ASSERT_EQ(peer_check(ctx, AF_INET), T_PASS);
	ASSERT_EQ(peer_check(ctx, AF_UNIX), T_PASS);
	if (t_have_ipv6())
		ASSERT_EQ(peer_check(ctx, AF_INET6), T_PASS);
	return T_PASS;
}

struct flood {
	struct zc_addr addr;
	int stop;
	int connected, hung, hung_r; /* hung_r: the last bad result */
};

/* Connects until told to stop or refused; every connected client must
 * see its connection end (accepted and closed, or reset when the
 * listener goes), never hang. Accepted clients are closed with a byte
 * unread: they may see a reset rather than EOF. */
static void *flood_run(void *arg)
{
	struct flood *f = arg;
	int c, r;

	while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
		c = t_connect(&f->addr);
		if (c < 0)
			break;
		f->connected++;
		/* One byte: a client whose final ACK the full accept queue
		 * dropped is established only on its side, and learns that
		 * the listener has gone (RST) only when it sends. */
		r = t_write_all(c, "x", 1);
		if (r == 0)
			r = t_wait_eof(c, 3000);
		if (r == -EPIPE)
			r = -ECONNRESET;
		if (r != 0 && r != -ECONNRESET) {
			f->hung++;
			f->hung_r = r;
		}
		close(c);
	}
	return NULL;
}

/* A listener stopped while clients keep coming (the multishot accept may
 * have clients in flight): nothing leaks, no client hangs. */
TEST_MATRIX_TIMEOUT(test_listener_stop_under_flood, 60)
{
	struct flood f = {0};
	struct acc a = {0};
	struct t_loop l;
	pthread_t th[4];
	int fds0, i, n;

	a.lfd = t_listen(AF_INET, &f.addr);
	ASSERT_OK(a.lfd);
	ASSERT_OK(t_loop_start(&l, ctx));
	fds0 = t_fd_count();
	ASSERT_OK(t_loop_call(&l, start_listener, &a));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, flood_run, &f), 0);
	ASSERT_GE(acc_wait(&a, 400, 20000), 400);
	ASSERT_OK(t_loop_call(&l, stop_listener, &a));
	close(a.lfd); /* clients in the backlog are reset */
	__atomic_store_n(&f.stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	if (f.hung)
		t_log("a client's end: %s", strerror(-f.hung_r));
	ASSERT_EQ(f.hung, 0);
	t_log("%d clients connected, %d accepted", f.connected,
	      __atomic_load_n(&a.accepted, __ATOMIC_SEQ_CST));
	/* The loop lets go of what the kernel accepted after the stop. */
	for (i = 0; i < 200 && (n = t_fd_count()) != fds0 - 1; i++) {
		ASSERT_OK(t_loop_call(&l, stop_listener_noop, NULL));
		t_sleep_ms(10);
	}
	ASSERT_EQ(t_fd_count(), fds0 - 1);
	ASSERT_EQ(t_loop_stop(&l), 0);
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

/* Connects that succeed, are refused, and time out (a listener whose
 * queue is full drops SYNs); a timed-out attempt leaves no fd behind. */
static int connect_cases(const struct t_ctx *ctx)
{
	struct zc_addr ok, dead, full, uok, udead;
	struct t_loop l;
	int lfd, lfd2, ulfd, fill[4], i, nfill = 0, fds0;
	uint64_t t0;

	lfd = t_listen(AF_INET, &ok);
	ASSERT_OK(lfd);
	ulfd = t_listen(AF_UNIX, &uok);
	ASSERT_OK(ulfd);
	ASSERT_OK(t_free_addr(AF_INET, &dead));
	ASSERT_OK(t_free_addr(AF_UNIX, &udead));
	ASSERT_OK(t_loop_start(&l, ctx));
	ASSERT_EQ(do_connect(&l, &ok, 1000), 0);
	ASSERT_EQ(do_connect(&l, &dead, 1000), -ECONNREFUSED);
	ASSERT_EQ(do_connect(&l, &uok, 1000), 0);
	ASSERT_EQ(do_connect(&l, &udead, 1000), -ENOENT);

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
	fds0 = t_fd_count();
	t0 = t_now_ms();
	i = do_connect(&l, &full, 300);
	T_SKIP_IF(i == 0, "the kernel accepted past a full backlog here");
	ASSERT_EQ(i, -ETIMEDOUT);
	ASSERT_GE(t_now_ms() - t0, 290);
	ASSERT_LT(t_now_ms() - t0, 3000);
	/* io_uring: the cancelled request lets go of the socket. */
	for (i = 0; i < 100 && t_fd_count() != fds0; i++)
		t_sleep_ms(10);
	ASSERT_EQ(t_fd_count(), fds0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	for (i = 0; i < nfill; i++)
		close(fill[i]);
	close(lfd);
	close(lfd2);
	close(ulfd);
	t_cleanup_unix(&uok);
	t_cleanup_unix(&udead);
	return T_PASS;
}

TEST_MATRIX(test_connect_ok_refused_timeout)
{
	return connect_cases(ctx);
}

/* The same with io_uring's accept and connect requests turned off
 * (ZC_URING_NET=poll: the system calls after readiness). */
TEST_MATRIX(test_connect_ok_refused_timeout_syscalls)
{
	T_SKIP_IF(ctx->engine != ZC_ENGINE_URING,
	          "only io_uring has accept and connect requests");
	ASSERT_OK(setenv("ZC_URING_NET", "poll", 1));
	return connect_cases(ctx);
}

TEST_MATRIX(test_listener_peer_address_syscalls)
{
	T_SKIP_IF(ctx->engine != ZC_ENGINE_URING,
	          "only io_uring has accept and connect requests");
	ASSERT_OK(setenv("ZC_URING_NET", "poll", 1));
	ASSERT_EQ(peer_check(ctx, AF_INET), T_PASS);
	ASSERT_EQ(peer_check(ctx, AF_UNIX), T_PASS);
	return T_PASS;
}

struct race {
	struct acc *a;
	const struct zc_addr *to;
	int c;
};

/* On the listening loop's thread, so that it cannot accept meanwhile: a
 * client connects, then the listener stops. */
static void connect_then_stop(struct zc_loop *loop, void *arg)
{
	struct race *r = arg;

	(void)loop;
	r->c = t_connect(r->to);
	zc_listener_stop(r->a->l);
}

/*
 * Two loops listen on one socket, as an upgrade's old and new process
 * do; a client connects while the first loop's thread is busy, and the
 * first loop then stops its listener. The client is accepted by one of
 * them at once. io_uring's accept waits exclusively: the connection's
 * wakeup went to the first loop's accept (the older waiter), which was
 * then cancelled; unless the stop takes what is queued, the second
 * loop never hears of the client until another one connects.
 */
TEST_MATRIX_TIMEOUT(test_listener_stop_passes_no_wakeup_on, 30)
{
	struct acc a = {0}, b = {0};
	struct zc_addr addr;
	struct t_loop la, lb;
	struct race r = {.a = &a, .to = &addr, .c = -1};

	a.lfd = t_listen(AF_INET, &addr);
	ASSERT_OK(a.lfd);
	b.lfd = a.lfd;
	ASSERT_OK(t_loop_start(&la, ctx));
	ASSERT_OK(t_loop_start(&lb, ctx));
	ASSERT_OK(t_loop_call(&la, start_listener, &a));
	ASSERT_OK(a.last_fd);
	t_sleep_ms(50); /* a's accept armed first: the older waiter */
	ASSERT_OK(t_loop_call(&lb, start_listener, &b));
	ASSERT_OK(b.last_fd);
	t_sleep_ms(50);
	ASSERT_OK(t_loop_call(&la, connect_then_stop, &r));
	ASSERT_OK(r.c);
	ASSERT_EQ(acc_wait(&a, 1, 0) + acc_wait(&b, 1, 2000), 1);
	t_log("accepted by the %s loop", a.accepted ? "stopping" : "other");
	close(r.c);
	ASSERT_OK(t_loop_call(&lb, stop_listener, &b));
	ASSERT_EQ(t_loop_stop(&la), 0);
	ASSERT_EQ(t_loop_stop(&lb), 0);
	close(a.lfd);
	return T_PASS;
}

/*
 * daemon_load.c - many sessions at once through the daemon, and what it
 * holds afterwards: every session's bytes checked at the upstream, no
 * fd left behind, no pipe held by an idle session.
 *
 * One thread drives all the sockets with poll(): 200 clients and the 200
 * connections the upstream accepted, 400 fds in all.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"
#include "tproc.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* ------------------------------------------------------------------ */
/* Helpers (the shared ones are in tests/lib/tdaemon.c)                */

/* The daemon's open fds: all of them to *all, pipes to *pipes. Returns
 * 0 or -errno. */
static int daemon_fds(const struct t_daemon *d, int *all, int *pipes)
{
	struct t_proc_mem m;
	int err = t_proc_mem(d->pid, &m);

	*all = m.fds;
	*pipes = m.pipes;
	return err;
}

/* Waits at most timeout_ms until the daemon's non-pipe fd count
 * satisfies lo <= count <= hi; the last counts go to *all and *pipes. */
static int wait_fds(const struct t_daemon *d, int lo, int hi, int timeout_ms,
                    int *all, int *pipes)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	int socks;

	for (;;) {
		T_TRY(daemon_fds(d, all, pipes));
		socks = *all - *pipes;
		if (socks >= lo && socks <= hi)
			return 0;
		if (t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(10);
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -errno;
	return 0;
}

/* ------------------------------------------------------------------ */
/* 200 sessions at once                                                 */

#define NCONN   200
#define PER     (256u * 1024) /* stream bytes per session */
#define HDR     4             /* the client's index, before the stream */
#define CHUNK   16384
#define SEED(i) (5000u + (uint64_t)(i))

/* A client: sends its index, then PER bytes of stream SEED(index),
 * shuts its write side and waits for the EOF the upstream sends back. */
struct cli {
	int fd;
	int state;    /* 0 sending, 1 waiting for EOF, 2 done */
	uint64_t gen; /* stream bytes generated so far */
	struct t_rng rng;
	size_t pos, len;
	unsigned char buf[CHUNK];
};

/* The upstream's side of a session: hashes what follows the index. */
struct srv {
	int fd;
	int done;
	unsigned char hdr[HDR];
	unsigned hlen;
	uint32_t idx;
	uint64_t got;
	EVP_MD_CTX *md;
};

struct load {
	struct cli cli[NCONN];
	struct srv srv[NCONN];
	struct pollfd pfd[2 * NCONN];
	unsigned char want[NCONN][T_SHA256_LEN];
	int seen[NCONN];
	int left;
};

static void cli_fill(struct cli *c, uint32_t idx)
{
	size_t off = 0, n;

	if (c->gen == 0) {
		memcpy(c->buf, &idx, HDR);
		off = HDR;
		t_rng_init(&c->rng, SEED(idx));
	}
	n = CHUNK - off;
	if (n > PER - c->gen)
		n = (size_t)(PER - c->gen);
	t_rng_fill(&c->rng, c->buf + off, n);
	c->gen += n;
	c->pos = 0;
	c->len = off + n;
}

/* Makes progress on client i; returns 0 or a failure. */
static int cli_step(struct load *L, int i, short rev)
{
	struct cli *c = &L->cli[i];
	char b;
	ssize_t n;

	if (c->state == 0 && (rev & (POLLOUT | POLLERR | POLLHUP))) {
		for (;;) {
			if (c->pos == c->len) {
				if (c->gen == PER) {
					ASSERT_EQ(shutdown(c->fd, SHUT_WR), 0);
					c->state = 1;
					break;
				}
				cli_fill(c, (uint32_t)i);
			}
			n = send(c->fd, c->buf + c->pos, c->len - c->pos,
			         MSG_NOSIGNAL);
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n == -1)
				return t_fail(__FILE__, __LINE__,
				              "client %d: send: %s", i,
				              strerror(errno));
			c->pos += (size_t)n;
		}
	} else if (c->state == 1 && (rev & (POLLIN | POLLERR | POLLHUP))) {
		n = read(c->fd, &b, 1);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return T_PASS;
		if (n != 0)
			return t_fail(
			        __FILE__, __LINE__,
			        "client %d: expected EOF, read = %zd (%s)", i,
			        n, n < 0 ? strerror(errno) : "data");
		close(c->fd);
		c->fd = -1;
		c->state = 2;
		L->left--;
	}
	return T_PASS;
}

/* Makes progress on upstream side j; returns 0 or a failure. */
static int srv_step(struct load *L, int j)
{
	struct srv *s = &L->srv[j];
	unsigned char buf[65536], dig[T_SHA256_LEN];
	size_t off, k;
	ssize_t n;

	for (;;) {
		n = read(s->fd, buf, sizeof(buf));
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return T_PASS;
		if (n == -1)
			return t_fail(__FILE__, __LINE__,
			              "upstream side %d: read: %s", j,
			              strerror(errno));
		if (n == 0)
			break;
		off = 0;
		while (s->hlen < HDR && off < (size_t)n)
			s->hdr[s->hlen++] = buf[off++];
		if (s->hlen == HDR && !s->md) {
			memcpy(&s->idx, s->hdr, HDR);
			ASSERT_LT(s->idx, NCONN);
			ASSERT_EQ(L->seen[s->idx], 0);
			L->seen[s->idx] = 1;
			s->md = EVP_MD_CTX_new();
			ASSERT_TRUE(s->md != NULL);
			EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
		}
		k = (size_t)n - off;
		if (k) {
			EVP_DigestUpdate(s->md, buf + off, k);
			s->got += k;
		}
	}
	/* EOF: the session's bytes must be exactly the client's stream */
	ASSERT_TRUE(s->md != NULL);
	EVP_DigestFinal_ex(s->md, dig, NULL);
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
	ASSERT_EQ(s->got, PER);
	ASSERT_MEMEQ(dig, L->want[s->idx], T_SHA256_LEN);
	close(s->fd); /* our FIN goes back to the client */
	s->fd = -1;
	s->done = 1;
	return T_PASS;
}

/* Polls every socket until all sessions ended, at most timeout_ms. */
static int load_run(struct load *L, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	int i, n;

	while (L->left > 0) {
		for (i = 0; i < NCONN; i++) {
			struct cli *c = &L->cli[i];
			struct srv *s = &L->srv[i];

			L->pfd[i].fd = c->fd;
			L->pfd[i].events = c->state == 0 ? POLLOUT : POLLIN;
			L->pfd[i].revents = 0;
			L->pfd[NCONN + i].fd = s->done ? -1 : s->fd;
			L->pfd[NCONN + i].events = POLLIN;
			L->pfd[NCONN + i].revents = 0;
		}
		if (t_now_ms() >= end)
			return t_fail(__FILE__, __LINE__,
			              "%d sessions still open after %d ms",
			              L->left, timeout_ms);
		n = poll(L->pfd, 2 * NCONN, 1000);
		if (n == -1 && errno != EINTR)
			return t_fail(__FILE__, __LINE__, "poll: %s",
			              strerror(errno));
		for (i = 0; n > 0 && i < NCONN; i++) {
			if (L->pfd[i].revents) {
				T_TRY(cli_step(L, i, L->pfd[i].revents));
			}
			if (L->pfd[NCONN + i].revents) {
				T_TRY(srv_step(L, i));
			}
		}
	}
	return T_PASS;
}

/* Opens NCONN clients through the daemon, then accepts NCONN on the
 * upstream: all are open at the same time. */
static int load_open(struct load *L, const struct zc_addr *la, int ulfd)
{
	int i;

	for (i = 0; i < NCONN; i++) {
		L->cli[i].fd = t_connect(la);
		ASSERT_OK(L->cli[i].fd);
		ASSERT_OK(set_nonblock(L->cli[i].fd));
	}
	for (i = 0; i < NCONN; i++) {
		L->srv[i].fd = t_accept_ms(ulfd, 5000);
		ASSERT_OK(L->srv[i].fd);
		ASSERT_OK(set_nonblock(L->srv[i].fd));
	}
	L->left = NCONN;
	return T_PASS;
}

/*
 * 200 concurrent sessions (--workers 2), 256 KiB each, checked with
 * SHA-256 at the upstream. Afterwards the daemon holds as many non-pipe
 * fds as when it was idle (+-2), and only the pool's cached pipes.
 */
TEST_MATRIX_TIMEOUT(test_daemon_many_sessions, 120)
{
	/* a worker keeps at most 64 empty pipes (src/pipepool.c) */
	const int workers = 2, max_cached_pipe_fds = 64 * 2 * workers;
	struct t_daemon d;
	struct zc_addr la, ua;
	struct t_dargs a;
	struct load *L;
	int ulfd, rc, i, idle_all, idle_pipes, all, pipes;
	uint64_t t0;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	L = calloc(1, sizeof(*L));
	ASSERT_TRUE(L != NULL);
	for (i = 0; i < NCONN; i++)
		t_expect_digest(SEED(i), PER, L->want[i]);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	t_dargs_init(&a, ctx, &la, &ua);
	t_dargs_add(&a, "--workers");
	t_dargs_add(&a, "2");
	T_TRY(t_daemon_up(&d, &a, &la));
	ASSERT_OK(daemon_fds(&d, &idle_all, &idle_pipes));
	ASSERT_EQ(idle_pipes, 0);

	t0 = t_now_ms();
	T_TRY(load_open(L, &la, ulfd));
	T_TRY(load_run(L, 60000));
	for (i = 0; i < NCONN; i++)
		ASSERT_EQ(L->seen[i], 1);
	t_log("%d sessions x %u KiB in %llu ms", NCONN, PER >> 10,
	      (unsigned long long)(t_now_ms() - t0));
	ASSERT_EQ(t_wait_log_count(&d, " session ", " end=eof", NCONN, 10000),
	          NCONN);
	ASSERT_EQ(t_log_count(&d, " session ", NULL), NCONN);

	rc = wait_fds(&d, idle_all - 2, idle_all + 2, 5000, &all, &pipes);
	if (rc)
		t_log("daemon fds: idle %d, now %d of which %d pipes", idle_all,
		      all, pipes);
	ASSERT_OK(rc);
	ASSERT_LE(pipes, max_cached_pipe_fds);
	if (t_never_splices(ctx))
		ASSERT_EQ(pipes, 0);
	t_log("daemon fds: idle %d, after %d (%d pipes)", idle_all, all, pipes);
	close(ulfd);
	free(L);
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	return T_PASS;
}

/*
 * A fresh daemon with 50 open sessions that never moved a byte holds
 * no pipe: pipes are taken only while bytes are in flight. Once each
 * session has moved a byte each way and is idle again, the one worker
 * holds no more than its pool's cache of empty pipes (64), not a pipe
 * per direction.
 */
TEST_MATRIX(test_daemon_idle_sessions_hold_no_pipes)
{
	enum { N = 50, MAX_CACHED_PIPE_FDS = 64 * 2 };
	struct t_daemon d;
	struct zc_addr la, ua;
	struct t_dargs a;
	int c[N], u[N];
	int ulfd, rc, i, idle_all, idle_pipes, all, pipes;
	char ch;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	t_dargs_init(&a, ctx, &la, &ua);
	t_dargs_add(&a, "--workers");
	t_dargs_add(&a, "1");
	T_TRY(t_daemon_up(&d, &a, &la));
	ASSERT_OK(daemon_fds(&d, &idle_all, &idle_pipes));
	ASSERT_EQ(idle_pipes, 0);
	for (i = 0; i < N; i++) {
		c[i] = t_connect(&la);
		ASSERT_OK(c[i]);
		u[i] = t_accept_ms(ulfd, 5000);
		ASSERT_OK(u[i]);
	}
	/* every session holds its two sockets in the daemon */
	rc = wait_fds(&d, idle_all + 2 * N, idle_all + 2 * N, 5000, &all,
	              &pipes);
	if (rc)
		t_log("daemon fds: idle %d, now %d of which %d pipes", idle_all,
		      all, pipes);
	ASSERT_OK(rc);
	t_sleep_ms(50); /* any lazily taken pipe would show up by now */
	ASSERT_OK(daemon_fds(&d, &all, &pipes));
	ASSERT_EQ(pipes, 0);
	ASSERT_EQ(all, idle_all + 2 * N);

	for (i = 0; i < N; i++) {
		ASSERT_OK(t_write_all(c[i], "u", 1));
		ASSERT_EQ(t_read_full(u[i], &ch, 1, 2000), 1);
		ASSERT_OK(t_write_all(u[i], "d", 1));
		ASSERT_EQ(t_read_full(c[i], &ch, 1, 2000), 1);
	}
	ASSERT_OK(daemon_fds(&d, &all, &pipes));
	ASSERT_LE(pipes, MAX_CACHED_PIPE_FDS);
	ASSERT_EQ(all - pipes, idle_all + 2 * N);
	if (t_never_splices(ctx))
		ASSERT_EQ(pipes, 0);

	for (i = 0; i < N; i++) {
		close(c[i]);
		close(u[i]);
	}
	close(ulfd);
	ASSERT_EQ(t_wait_log_count(&d, " session ", " end=eof", N, 5000), N);
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	return T_PASS;
}

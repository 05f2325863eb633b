/*
 * relay_many.c - many relays on one loop: 1,000 concurrent transfers both
 * ways checked with SHA-256; idle sessions hold no pipe and no buffer;
 * a pipe cap forces copies without losing a byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <grp.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "runner.h"
#include "tnet.h"

#define CHUNK 16384

static int unix_ok = 1; /* Unix sockets in t_tmpdir() usable */
#define MIB (1024ULL * 1024ULL)

/* One of our two ends of a relayed connection, driven by poll(). */
struct end {
	int fd;
	uint64_t to_send, sent, got;
	uint64_t seed;
	struct t_rng rng;
	char buf[CHUNK];
	size_t off, len;
	EVP_MD_CTX *md;
	int eof, shut;
};

static int end_init(struct end *e, int fd, uint64_t n, uint64_t seed)
{
	memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->to_send = n;
	e->seed = seed;
	t_rng_init(&e->rng, seed);
	e->md = EVP_MD_CTX_new();
	if (!e->md || !EVP_DigestInit_ex(e->md, EVP_sha256(), NULL))
		return -ENOMEM;
	return fcntl(fd, F_SETFL, O_NONBLOCK) == -1 ? -errno : 0;
}

static int end_write(struct end *e)
{
	ssize_t n;

	if (e->off == e->len) {
		size_t want = e->to_send - e->sent < CHUNK
		                      ? (size_t)(e->to_send - e->sent)
		                      : CHUNK;

		t_rng_fill(&e->rng, e->buf, want);
		e->off = 0;
		e->len = want;
	}
	n = send(e->fd, e->buf + e->off, e->len - e->off, MSG_NOSIGNAL);
	if (n == -1)
		return errno == EAGAIN ? 0 : -errno;
	e->off += (size_t)n;
	e->sent += (uint64_t)n;
	if (e->sent == e->to_send) {
		shutdown(e->fd, SHUT_WR);
		e->shut = 1;
	}
	return 0;
}

static int end_read(struct end *e)
{
	char buf[CHUNK];
	ssize_t n = recv(e->fd, buf, sizeof(buf), 0);

	if (n == -1)
		return errno == EAGAIN ? 0 : -errno;
	if (n == 0) {
		e->eof = 1;
		return 0;
	}
	e->got += (uint64_t)n;
	EVP_DigestUpdate(e->md, buf, (size_t)n);
	return 0;
}

/* Runs every end until all have sent and seen EOF. */
static int drive(struct end *ends, size_t n, int timeout_ms)
{
	struct pollfd *p = calloc(n, sizeof(*p));
	uint64_t deadline = t_now_ms() + (uint64_t)timeout_ms;
	size_t i, live;
	int err = 0;

	if (!p)
		return -ENOMEM;
	do {
		for (i = live = 0; i < n; i++) {
			struct end *e = &ends[i];

			p[i].fd = e->eof && e->shut ? -1 : e->fd;
			p[i].events =
			        (e->eof ? 0 : POLLIN) | (e->shut ? 0 : POLLOUT);
			live += p[i].fd >= 0;
		}
		if (!live)
			break;
		if (poll(p, n, 1000) == -1 && errno != EINTR) {
			err = -errno;
			break;
		}
		for (i = 0; i < n && !err; i++) {
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
				err = end_read(&ends[i]);
			if (!err && !ends[i].shut &&
			    (p[i].revents & (POLLOUT | POLLERR)))
				err = end_write(&ends[i]);
		}
		if (!err && t_now_ms() > deadline)
			err = -ETIMEDOUT;
	} while (!err);
	free(p);
	return err;
}

/* What the peer of end e must have received, as its digest says. */
static int end_check(struct end *e, const struct end *peer)
{
	unsigned char got[T_SHA256_LEN], want[T_SHA256_LEN];
	unsigned int len = T_SHA256_LEN;

	EVP_DigestFinal_ex(e->md, got, &len);
	EVP_MD_CTX_free(e->md);
	t_expect_digest(peer->seed, peer->to_send, want);
	ASSERT_EQ(e->got, peer->to_send);
	ASSERT_MEMEQ(got, want, T_SHA256_LEN);
	return T_PASS;
}

/*
 * n relays; client i sends up(i) bytes, server i sends down(i) bytes, all
 * at once. Every digest and every relay's stats are checked.
 */
static int many(struct t_loop *l, int mover, size_t n, uint64_t up_base,
                uint64_t down_base, uint64_t *copied)
{
	struct end *e = calloc(2 * n, sizeof(*e));
	struct t_done *d = calloc(n, sizeof(*d));
	int pa[2], pb[2];
	size_t i;

	ASSERT_TRUE(e && d);
	for (i = 0; i < n; i++) {
		ASSERT_OK(
		        t_pair(i % 3 == 2 && unix_ok ? AF_UNIX : AF_INET, pa));
		ASSERT_OK(t_pair(AF_INET, pb));
		ASSERT_EQ(t_relay_run(l, pa[1], pb[0], mover, 0, &d[i]), 0);
		ASSERT_OK(end_init(&e[2 * i], pa[0], up_base + i * 13, i + 1));
		ASSERT_OK(end_init(&e[2 * i + 1], pb[1], down_base + i * 7,
		                   100000 + i));
	}
	ASSERT_EQ(drive(e, 2 * n, 90000), 0);
	*copied = 0;
	for (i = 0; i < n; i++) {
		ASSERT_EQ(end_check(&e[2 * i + 1], &e[2 * i]), T_PASS);
		ASSERT_EQ(end_check(&e[2 * i], &e[2 * i + 1]), T_PASS);
		ASSERT_EQ(t_done_wait(&d[i], 10000), 0);
		ASSERT_EQ(d[i].st.end, ZC_END_EOF);
		ASSERT_EQ(d[i].st.dir[0].bytes, up_base + i * 13);
		ASSERT_EQ(d[i].st.dir[1].bytes, down_base + i * 7);
		*copied += d[i].st.dir[0].copied + d[i].st.dir[1].copied;
		close(e[2 * i].fd);
		close(e[2 * i + 1].fd);
	}
	free(e);
	free(d);
	return T_PASS;
}

TEST_MATRIX_TIMEOUT(test_relay_1000_concurrent, 240)
{
	struct zc_loop_stats st;
	struct t_loop l;
	uint64_t copied = 0;

	ASSERT_OK(t_loop_start(&l, ctx));
	ASSERT_EQ(many(&l, ctx->mover, 1000, 96 * 1024, 64 * 1024, &copied),
	          T_PASS);
	ASSERT_OK(t_loop_stats(&l, &st));
	ASSERT_EQ(st.relays_active, 0);
	ASSERT_EQ(st.relays_total, 1000);
	ASSERT_EQ(st.pipes_used, 0);
	ASSERT_EQ(st.bufs_used, 0);
	if (t_splices(ctx))
		ASSERT_EQ(copied, 0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	return T_PASS;
}

TEST_MATRIX(test_relay_pipe_cap_copies_without_loss)
{
	unsigned char w1[T_SHA256_LEN], w2[T_SHA256_LEN];
	struct t_xfer s1, r1, s2, r2;
	struct zc_loop_opts o;
	struct zc_loop_stats st;
	struct t_loop l;
	struct t_done d1, d2;
	int a1[2], b1[2], a2[2], b2[2];

	T_SKIP_IF(!t_splices(ctx), "%s mover uses no pipes",
	          zc_mover_name(ctx->mover));
	zc_loop_opts_init(&o);
	o.engine = ctx->engine;
	o.max_pipes = 1;
	ASSERT_OK(t_loop_start_opts(&l, &o));
	ASSERT_OK(t_pair(AF_INET, a1));
	ASSERT_OK(t_pair(AF_INET, b1));
	ASSERT_OK(t_pair(AF_INET, a2));
	ASSERT_OK(t_pair(AF_INET, b2));
	ASSERT_EQ(t_relay_run(&l, a1[1], b1[0], ctx->mover, 0, &d1), 0);
	ASSERT_EQ(t_relay_run(&l, a2[1], b2[0], ctx->mover, 0, &d2), 0);
	/* Relay 1's reader sleeps: its direction keeps the only pipe. */
	ASSERT_OK(t_sender_start(&s1, a1[0], 64 * MIB, 61, T_XFER_SHUT_WR));
	t_sleep_ms(300);
	ASSERT_OK(t_loop_stats(&l, &st));
	ASSERT_EQ(st.pipes_used, 1);
	/* Relay 2 must copy, and lose nothing. */
	ASSERT_OK(t_receiver_start(&r2, b2[1], 0));
	ASSERT_OK(t_sender_start(&s2, a2[0], 8 * MIB + 1, 62, T_XFER_SHUT_WR));
	ASSERT_EQ(t_xfer_join(&s2), 0);
	ASSERT_EQ(t_xfer_join(&r2), 0);
	ASSERT_OK(t_receiver_start(&r1, b1[1], 0));
	ASSERT_EQ(t_xfer_join(&s1), 0);
	ASSERT_EQ(t_xfer_join(&r1), 0);
	t_expect_digest(61, 64 * MIB, w1);
	t_expect_digest(62, 8 * MIB + 1, w2);
	ASSERT_MEMEQ(r1.digest, w1, T_SHA256_LEN);
	ASSERT_MEMEQ(r2.digest, w2, T_SHA256_LEN);
	shutdown(b1[1], SHUT_WR);
	shutdown(b2[1], SHUT_WR);
	ASSERT_EQ(t_done_wait(&d1, 5000), 0);
	ASSERT_EQ(t_done_wait(&d2, 5000), 0);
	ASSERT_OK(t_loop_stats(&l, &st));
	ASSERT_GT(st.pipe_shortage, 0);
	ASSERT_EQ(d2.st.dir[ZC_DIR_AB].copied, 8 * MIB + 1);
	ASSERT_EQ(d1.st.dir[ZC_DIR_AB].spliced, 64 * MIB);
	ASSERT_EQ(st.pipes_used, 0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(a1[0]);
	close(b1[1]);
	close(a2[0]);
	close(b2[1]);
	return T_PASS;
}

/* Drops root for good: the pipe budget of a plain user applies. */
static int drop_root(void)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534))
		return -errno;
	unix_ok = 0; /* the test's temp dir is root's */
	return 0;
}

/*
 * As an unprivileged user the kernel gives 1 MiB pipes only up to
 * pipe-user-pages-soft (the library enlarges at most 3/4 of it); past
 * that, pipes keep a smaller size. 120 relays whose readers stall hold
 * 120 pipes at once; then all must finish byte-exact: smaller pipes or
 * copies, never an error.
 */
#define NB 120

TEST_MATRIX_TIMEOUT(test_relay_unprivileged_pipe_budget, 240)
{
	static struct t_xfer s[NB], r[NB];
	static struct t_done d[NB];
	unsigned char want[T_SHA256_LEN];
	struct zc_loop_stats st;
	struct t_loop l;
	int i, pa[2], pb[2], cli[NB], srv[NB];

	T_SKIP_IF(!t_splices(ctx), "%s mover uses no pipes",
	          zc_mover_name(ctx->mover));
	ASSERT_EQ(drop_root(), 0);
	ASSERT_OK(t_loop_start(&l, ctx));
	for (i = 0; i < NB; i++) {
		ASSERT_OK(t_pair(AF_INET, pa));
		ASSERT_OK(t_pair(AF_INET, pb));
		ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ctx->mover, 0, &d[i]),
		          0);
		cli[i] = pa[0];
		srv[i] = pb[1];
		ASSERT_OK(t_sender_start(&s[i], cli[i], 16 * MIB, 500 + i,
		                         T_XFER_SHUT_WR));
	}
	/* Nobody reads: soon every direction holds a full pipe. */
	for (i = 0; i < 200; i++) {
		ASSERT_OK(t_loop_stats(&l, &st));
		if (st.pipes_used + st.pipe_shortage >= NB * 3 / 4)
			break;
		t_sleep_ms(100);
	}
	t_log("uid %d: %llu pipes in use, %llu created smaller than asked",
	      (int)geteuid(), (unsigned long long)st.pipes_used,
	      (unsigned long long)st.pipes_small);
	ASSERT_GE(st.pipes_used + st.pipe_shortage, NB * 3 / 4);
	if (geteuid() != 0)
		ASSERT_GT(st.pipes_small, 0);
	for (i = 0; i < NB; i++)
		ASSERT_OK(t_receiver_start(&r[i], srv[i], 0));
	for (i = 0; i < NB; i++) {
		ASSERT_EQ(t_xfer_join(&s[i]), 0);
		ASSERT_EQ(t_xfer_join(&r[i]), 0);
		t_expect_digest(500 + i, 16 * MIB, want);
		ASSERT_EQ(r[i].bytes, 16 * MIB);
		ASSERT_MEMEQ(r[i].digest, want, T_SHA256_LEN);
		shutdown(srv[i], SHUT_WR);
		ASSERT_EQ(t_done_wait(&d[i], 5000), 0);
		ASSERT_EQ(d[i].st.end, ZC_END_EOF);
		close(cli[i]);
		close(srv[i]);
	}
	ASSERT_OK(t_loop_stats(&l, &st));
	ASSERT_EQ(st.pipes_used, 0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	return T_PASS;
}

struct idle_conn {
	int cli, srv;
	struct t_done d;
};

TEST_MATRIX(test_relay_idle_sessions_hold_nothing)
{
	const int n = 500;
	struct idle_conn *c = calloc(n, sizeof(*c));
	struct zc_loop_stats st;
	struct t_loop l;
	int i, pa[2], pb[2], fds0, pipes0, pipes;
	char x;

	ASSERT_TRUE(c);
	ASSERT_OK(t_loop_start(&l, ctx));
	fds0 = t_fd_count();
	pipes0 = t_pipe_count(); /* the runner's own */
	for (i = 0; i < n; i++) {
		ASSERT_OK(t_pair(AF_INET, pa));
		ASSERT_OK(t_pair(AF_INET, pb));
		ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ctx->mover, 0, &c[i].d),
		          0);
		c[i].cli = pa[0];
		c[i].srv = pb[1];
	}
	/* Two fds per relay, no pipe, no buffer. */
	ASSERT_EQ(t_fd_count() - fds0, 4 * n);
	ASSERT_EQ(t_pipe_count(), pipes0);
	ASSERT_OK(t_loop_stats(&l, &st));
	ASSERT_EQ(st.pipes_used, 0);
	ASSERT_EQ(st.bufs_used, 0);
	ASSERT_EQ(st.ring_bufs_used, 0);
	/* A byte each way through every one, then idle again. */
	for (i = 0; i < n; i++) {
		ASSERT_OK(t_write_all(c[i].cli, "u", 1));
		ASSERT_OK(t_write_all(c[i].srv, "d", 1));
		ASSERT_EQ(t_read_full(c[i].srv, &x, 1, 5000), 1);
		ASSERT_EQ(x, 'u');
		ASSERT_EQ(t_read_full(c[i].cli, &x, 1, 5000), 1);
		ASSERT_EQ(x, 'd');
	}
	ASSERT_OK(t_loop_stats(&l, &st));
	ASSERT_EQ(st.pipes_used, 0);
	ASSERT_EQ(st.bufs_used, 0);
	/* Only the pool's cache of empty pipes remains. */
	pipes = t_pipe_count() - pipes0;
	ASSERT_EQ(pipes, 2 * (int)st.pipes_free);
	ASSERT_LE(st.pipes_free, 64);
	t_log("%d idle relays: %d fds each, %llu cached pipes", n, 2,
	      (unsigned long long)st.pipes_free);
	for (i = 0; i < n; i++) {
		close(c[i].cli);
		close(c[i].srv);
		ASSERT_EQ(t_done_wait(&c[i].d, 5000), 0);
	}
	ASSERT_EQ(t_loop_stop(&l), 0);
	free(c);
	return T_PASS;
}

/*
 * Sessions torn down while bytes are in flight, over and over: the client
 * writes and resets at once, the server closes without reading. Nothing
 * may leak (the runner checks fds; the loop's pipe and buffer counts
 * must return to zero) and every relay must report exactly once.
 */
TEST_MATRIX_TIMEOUT(test_relay_churn_close_in_flight, 240)
{
	static char junk[96 * 1024];
	struct zc_loop_stats st;
	struct t_loop l;
	struct t_done d;
	int i, pa[2], pb[2];

	ASSERT_OK(t_loop_start(&l, ctx));
	for (i = 0; i < 2000; i++) {
		ASSERT_OK(t_pair(AF_INET, pa));
		ASSERT_OK(t_pair(i % 2 ? AF_UNIX : AF_INET, pb));
		ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ctx->mover, 0, &d), 0);
		/* Some bytes on their way, then a reset or a plain close. */
		ASSERT_EQ(send(pa[0], junk, sizeof(junk),
		               MSG_NOSIGNAL | MSG_DONTWAIT) > 0,
		          1);
		if (i % 3 == 0)
			ASSERT_OK(t_set_linger0(pa[0]));
		close(pa[0]);
		close(pb[1]); /* unread bytes: the server's close resets */
		ASSERT_EQ(t_done_wait(&d, 10000), 0);
		ASSERT_EQ(d.calls, 1);
	}
	ASSERT_OK(t_loop_stats(&l, &st));
	ASSERT_EQ(st.relays_active, 0);
	ASSERT_EQ(st.pipes_used, 0);
	ASSERT_EQ(st.bufs_used, 0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	return T_PASS;
}

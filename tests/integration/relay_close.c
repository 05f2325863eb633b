/*
 * relay_close.c - how relays end: half-close both ways, resets in both
 * directions, idle timeouts, zc_relay_close(), a server that speaks first,
 * and a slow reader that must not make the relay buffer without bound.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"
#include "tproc.h"

#define MIB (1024ULL * 1024ULL)

/* A client <-> relay <-> server set-up on TCP. */
struct fix {
	struct t_loop l;
	struct t_done d;
	int cli, srv; /* our ends */
	int rfd[2];   /* the relay's ends (closed by it without KEEP_FDS) */
};

/* fix_start with relay flags (ZC_RELAY_F_*): with ZC_RELAY_F_FRESH the
 * relay's fds are made non-blocking first, as its contract asks. */
static int fix_start_flags(struct fix *f, const struct t_ctx *ctx,
                           unsigned idle, unsigned flags)
{
	struct zc_relay_opts o;
	int pa[2], pb[2], err;

	if ((err = t_pair(AF_INET, pa)) < 0)
		return err;
	if ((err = t_pair(AF_INET, pb)) < 0)
		return err;
	if ((flags & ZC_RELAY_F_FRESH) && ((err = t_set_nonblock(pa[1])) < 0 ||
	                                   (err = t_set_nonblock(pb[0])) < 0))
		return err;
	if ((err = t_loop_start(&f->l, ctx)) < 0)
		return err;
	zc_relay_opts_init(&o);
	o.mover = ctx->mover;
	o.idle_timeout_ms = idle;
	o.flags = flags;
	err = t_relay_run_opts(&f->l, pa[1], pb[0], &o, &f->d);
	f->cli = pa[0];
	f->srv = pb[1];
	f->rfd[0] = pa[1];
	f->rfd[1] = pb[0];
	return err;
}

static int fix_start(struct fix *f, const struct t_ctx *ctx, unsigned idle)
{
	return fix_start_flags(f, ctx, idle, 0);
}

static void fix_stop(struct fix *f)
{
	t_loop_stop(&f->l);
	close(f->cli);
	close(f->srv);
}

TEST_MATRIX(test_relay_server_speaks_first)
{
	static const char banner[] = "220 zcrelay test ready\r\n";
	char buf[64];
	struct fix f;

	ASSERT_EQ(fix_start(&f, ctx, 0), 0);
	ASSERT_OK(t_write_all(f.srv, banner, sizeof(banner) - 1));
	ASSERT_EQ(t_read_full(f.cli, buf, sizeof(banner) - 1, 5000),
	          (ssize_t)sizeof(banner) - 1);
	ASSERT_MEMEQ(buf, banner, sizeof(banner) - 1);
	ASSERT_OK(t_write_all(f.cli, "QUIT\r\n", 6));
	ASSERT_EQ(t_read_full(f.srv, buf, 6, 5000), 6);
	ASSERT_MEMEQ(buf, "QUIT\r\n", 6);
	shutdown(f.srv, SHUT_WR);
	shutdown(f.cli, SHUT_WR);
	ASSERT_EQ(t_wait_eof(f.cli, 5000), 0);
	ASSERT_EQ(t_wait_eof(f.srv, 5000), 0);
	ASSERT_EQ(t_done_wait(&f.d, 5000), 0);
	ASSERT_EQ(f.d.st.end, ZC_END_EOF);
	fix_stop(&f);
	return T_PASS;
}

/*
 * One side sends its request and shuts down its write side; the other
 * reads it to EOF and only then sends its whole answer. first_fd is the
 * side that talks first.
 */
static int half_close(const struct t_ctx *ctx, int client_first, unsigned flags)
{
	unsigned char want[T_SHA256_LEN];
	struct t_xfer req_s, req_r, rsp_s, rsp_r;
	struct fix f;
	int a, b;

	ASSERT_EQ(fix_start_flags(&f, ctx, 0, flags), 0);
	a = client_first ? f.cli : f.srv;
	b = client_first ? f.srv : f.cli;
	ASSERT_OK(t_sender_start(&req_s, a, 1 * MIB + 7, 11, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start(&req_r, b, 0));
	ASSERT_EQ(t_xfer_join(&req_s), 0);
	ASSERT_EQ(t_xfer_join(&req_r), 0);
	ASSERT_TRUE(req_r.eof);
	ASSERT_EQ(req_r.bytes, 1 * MIB + 7);
	ASSERT_MEMEQ(req_r.digest, req_s.digest, T_SHA256_LEN);

	/* The half-closed session still carries the answer. */
	ASSERT_OK(t_sender_start(&rsp_s, b, 8 * MIB, 12, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start(&rsp_r, a, 0));
	ASSERT_EQ(t_xfer_join(&rsp_s), 0);
	ASSERT_EQ(t_xfer_join(&rsp_r), 0);
	t_expect_digest(12, 8 * MIB, want);
	ASSERT_EQ(rsp_r.bytes, 8 * MIB);
	ASSERT_MEMEQ(rsp_r.digest, want, T_SHA256_LEN);
	ASSERT_EQ(t_done_wait(&f.d, 5000), 0);
	ASSERT_EQ(f.d.st.end, ZC_END_EOF);
	ASSERT_EQ(f.d.st.dir[0].fin + f.d.st.dir[1].fin, 2);
	if (flags & ZC_RELAY_F_KEEP_FDS) { /* still open, and ours */
		ASSERT_OK(t_fd_open(f.rfd[0]));
		ASSERT_OK(t_fd_open(f.rfd[1]));
		close(f.rfd[0]);
		close(f.rfd[1]);
	}
	fix_stop(&f);
	return T_PASS;
}

TEST_MATRIX(test_relay_half_close_client_first)
{
	return half_close(ctx, 1, 0);
}

TEST_MATRIX(test_relay_half_close_server_first)
{
	return half_close(ctx, 0, 0);
}

/* ZC_RELAY_F_FRESH: on epoll the last FIN goes with the close, not a
 * shutdown(), and the watches go with it too; every engine must still
 * deliver every byte and both FINs (an unread byte would make the close
 * a reset). */
TEST_MATRIX(test_relay_fresh_half_close_client_first)
{
	return half_close(ctx, 1, ZC_RELAY_F_TRUSTED | ZC_RELAY_F_FRESH);
}

TEST_MATRIX(test_relay_fresh_half_close_server_first)
{
	return half_close(ctx, 0, ZC_RELAY_F_TRUSTED | ZC_RELAY_F_FRESH);
}

/* With ZC_RELAY_F_KEEP_FDS the relay closes nothing, so FRESH must not
 * leave a FIN to a close: both FINs still arrive while the fds live. */
TEST_MATRIX(test_relay_fresh_keep_fds_still_forwards_fins)
{
	return half_close(ctx, 0, ZC_RELAY_F_FRESH | ZC_RELAY_F_KEEP_FDS);
}

/* One side sends data then resets; the other must see a reset. */
static int reset_from(const struct t_ctx *ctx, int from_server)
{
	struct t_xfer s, r;
	struct fix f;
	int bad, good;

	ASSERT_EQ(fix_start(&f, ctx, 0), 0);
	bad = from_server ? f.srv : f.cli;
	good = from_server ? f.cli : f.srv;
	ASSERT_OK(t_sender_start(&s, bad, 2 * MIB, 5, 0));
	ASSERT_EQ(t_xfer_join(&s), 0);
	ASSERT_OK(t_set_linger0(bad));
	close(bad);
	/* Whatever data arrives first, the stream must end in a reset. */
	ASSERT_OK(t_receiver_start(&r, good, 0));
	ASSERT_EQ(t_xfer_join_ms(&r, 10000), -ECONNRESET);
	ASSERT_FALSE(r.eof);
	ASSERT_EQ(t_done_wait(&f.d, 5000), 0);
	ASSERT_EQ(f.d.calls, 1);
	ASSERT_EQ(f.d.st.end, ZC_END_RESET);
	ASSERT_TRUE(f.d.st.error == -ECONNRESET || f.d.st.error == -EPIPE);
	if (from_server)
		f.srv = -1;
	else
		f.cli = -1;
	fix_stop(&f);
	return T_PASS;
}

TEST_MATRIX(test_relay_reset_from_server)
{
	return reset_from(ctx, 1);
}

TEST_MATRIX(test_relay_reset_from_client)
{
	return reset_from(ctx, 0);
}

TEST_MATRIX(test_relay_idle_timeout)
{
	uint64_t t0 = t_now_ms();
	struct fix f;

	ASSERT_EQ(fix_start(&f, ctx, 200), 0);
	ASSERT_EQ(t_done_wait(&f.d, 5000), 0);
	ASSERT_GE(t_now_ms() - t0, 190);
	ASSERT_EQ(f.d.st.end, ZC_END_TIMEOUT);
	ASSERT_EQ(f.d.st.error, -ETIMEDOUT);
	/* An abort, not a clean end: both peers see a reset. */
	ASSERT_EQ(t_wait_eof(f.cli, 2000), -ECONNRESET);
	ASSERT_EQ(t_wait_eof(f.srv, 2000), -ECONNRESET);
	fix_stop(&f);
	return T_PASS;
}

TEST_MATRIX(test_relay_idle_timeout_reset_by_traffic)
{
	struct zc_relay_stats st;
	struct fix f;
	char c;
	int i;

	ASSERT_EQ(fix_start(&f, ctx, 300), 0);
	for (i = 0; i < 12; i++) { /* 1.2 s of one byte every 100 ms */
		ASSERT_OK(t_write_all(f.cli, "x", 1));
		ASSERT_EQ(t_read_full(f.srv, &c, 1, 2000), 1);
		t_sleep_ms(100);
	}
	ASSERT_EQ(t_relay_stats(&f.l, &f.d, &st), 0); /* still running */
	ASSERT_EQ(st.dir[ZC_DIR_AB].bytes, 12);
	ASSERT_EQ(t_done_wait(&f.d, 5000), 0); /* then idle: it ends */
	ASSERT_EQ(f.d.st.end, ZC_END_TIMEOUT);
	fix_stop(&f);
	return T_PASS;
}

/* Starts the fixture with a half-closed timeout of half_ms, no idle. */
static int fix_start_half(struct fix *f, const struct t_ctx *ctx,
                          unsigned half_ms)
{
	struct zc_relay_opts o;
	int pa[2], pb[2], err;

	if ((err = t_pair(AF_INET, pa)) < 0 || (err = t_pair(AF_INET, pb)) < 0)
		return err;
	if ((err = t_loop_start(&f->l, ctx)) < 0)
		return err;
	zc_relay_opts_init(&o);
	o.mover = ctx->mover;
	o.halfclose_timeout_ms = half_ms;
	err = t_relay_run_opts(&f->l, pa[1], pb[0], &o, &f->d);
	f->cli = pa[0];
	f->srv = pb[1];
	return err;
}

/* The client half-closes; the server keeps its side open but silent: the
 * half-closed timeout ends the relay, and says so. Before the EOF, the
 * same quiet time is no reason to end. */
TEST_MATRIX(test_relay_halfclose_timeout)
{
	struct zc_relay_stats st;
	struct fix f;
	uint64_t t0;
	char c;

	ASSERT_EQ(fix_start_half(&f, ctx, 300), 0);
	t_sleep_ms(600); /* quiet but both open: not half-closed */
	ASSERT_EQ(t_relay_stats(&f.l, &f.d, &st), 0);
	ASSERT_OK(t_write_all(f.srv, "r", 1));
	ASSERT_EQ(t_read_full(f.cli, &c, 1, 2000), 1);
	ASSERT_OK(shutdown(f.cli, SHUT_WR));
	ASSERT_EQ(t_wait_eof(f.srv, 2000), 0);
	t0 = t_now_ms();
	ASSERT_EQ(t_done_wait(&f.d, 5000), 0);
	ASSERT_GE(t_now_ms() - t0, 250);
	ASSERT_EQ(f.d.st.end, ZC_END_HALF_TIMEOUT);
	ASSERT_EQ(f.d.st.error, -ETIMEDOUT);
	ASSERT_STREQ(zc_end_name(f.d.st.end), "halfclose-timeout");
	fix_stop(&f);
	return T_PASS;
}

/* Bytes still flowing the other way keep a half-closed relay alive; it
 * ends cleanly when that side closes too. */
TEST_MATRIX(test_relay_halfclose_timeout_reset_by_traffic)
{
	struct fix f;
	char c;
	int i;

	ASSERT_EQ(fix_start_half(&f, ctx, 300), 0);
	ASSERT_OK(shutdown(f.cli, SHUT_WR));
	ASSERT_EQ(t_wait_eof(f.srv, 2000), 0);
	for (i = 0; i < 10; i++) { /* 1 s of one byte every 100 ms */
		ASSERT_OK(t_write_all(f.srv, "x", 1));
		ASSERT_EQ(t_read_full(f.cli, &c, 1, 2000), 1);
		t_sleep_ms(100);
	}
	ASSERT_OK(shutdown(f.srv, SHUT_WR));
	ASSERT_EQ(t_done_wait(&f.d, 5000), 0);
	ASSERT_EQ(f.d.st.end, ZC_END_EOF);
	ASSERT_EQ(f.d.st.dir[ZC_DIR_BA].bytes, 10);
	fix_stop(&f);
	return T_PASS;
}

TEST_MATRIX(test_relay_close_api_mid_transfer)
{
	struct t_xfer s, r;
	struct fix f;

	ASSERT_EQ(fix_start(&f, ctx, 0), 0);
	/* Nobody reads: the transfer is stuck mid-way when we close. */
	ASSERT_OK(t_sender_start(&s, f.cli, 64 * MIB, 3, 0));
	t_sleep_ms(200);
	ASSERT_EQ(t_relay_close(&f.l, &f.d), 0);
	ASSERT_EQ(f.d.calls, 1);
	ASSERT_EQ(f.d.st.end, ZC_END_ABORTED);
	ASSERT_GT(f.d.st.dir[ZC_DIR_AB].bytes, 0);
	ASSERT_OK(t_receiver_start(&r, f.srv, 0));
	ASSERT_EQ(t_xfer_join_ms(&r, 10000), -ECONNRESET);
	ASSERT_LT(t_xfer_join_ms(&s, 10000), 0); /* the sender failed too */
	ASSERT_EQ(t_relay_close(&f.l, &f.d), -ESRCH);
	fix_stop(&f);
	return T_PASS;
}

struct woken {
	struct fix *f;
	int err;
};

/* On the loop thread, so that the wakeup's work cannot run first: the
 * client's byte wakes the relay's watch on its socket, then the relay
 * is closed. */
static void wake_then_close(struct zc_loop *loop, void *arg)
{
	struct woken *w = arg;

	(void)loop;
	w->err = t_write_all(w->f->cli, "x", 1);
	zc_relay_close(w->f->d.relay);
}

/*
 * A relay closed while a wakeup of one of its sockets waits to be
 * handled lets go of both sockets at once. On io_uring the wakeup holds
 * the socket's multishot poll, a POLL_REMOVE of it fails (-EALREADY),
 * and the socket stayed open after close(): the peers saw neither FIN
 * nor RST. Repeated, as the wakeup must still be pending at the close.
 */
TEST_MATRIX(test_relay_close_with_a_wakeup_pending)
{
	struct woken w;
	struct fix f;
	int i;

	for (i = 0; i < 20; i++) {
		ASSERT_EQ(fix_start(&f, ctx, 0), 0);
		ASSERT_EQ(t_ping(f.cli, f.srv), T_PASS);
		w.f = &f;
		ASSERT_OK(t_loop_call(&f.l, wake_then_close, &w));
		ASSERT_OK(w.err);
		ASSERT_EQ(t_is_closed(t_wait_eof(f.cli, 2000)), 1);
		ASSERT_EQ(t_is_closed(t_wait_eof(f.srv, 2000)), 1);
		fix_stop(&f);
	}
	return T_PASS;
}

static void read_stats(struct zc_loop *loop, void *arg)
{
	zc_loop_get_stats(loop, arg);
}

/* Largest TCP buffer (tcp_rmem or tcp_wmem third field) of this host. */
static uint64_t tcp_buf_max(const char *path)
{
	unsigned long long lo, def, max = 0;
	FILE *fp = fopen(path, "r");

	if (fp) {
		if (fscanf(fp, "%llu %llu %llu", &lo, &def, &max) != 3)
			max = 0;
		fclose(fp);
	}
	return max ? max : 32 * MIB;
}

/* What a stalled two-hop path may hold before the relay: two receive
 * and two send buffers at their autotuning maximum, plus 8 MiB for the
 * relay's own pipe or buffers and kernel rounding. */
static uint64_t stall_bound(void)
{
	return 2 * tcp_buf_max("/proc/sys/net/ipv4/tcp_rmem") +
	       2 * tcp_buf_max("/proc/sys/net/ipv4/tcp_wmem") + 8 * MIB;
}

/* Waits until the sender's byte count stays put for quiet_ms; 0 with
 * the count in *bytes, -ETIMEDOUT if it still moves after limit_ms. */
static int wait_stalled(struct t_xfer *s, unsigned quiet_ms, unsigned limit_ms,
                        uint64_t *bytes)
{
	uint64_t t0 = t_now_ms(), prev, now;

	prev = __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
	while (t_now_ms() - t0 < limit_ms) {
		t_sleep_ms(quiet_ms);
		now = __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
		if (now == prev) {
			*bytes = now;
			return 0;
		}
		prev = now;
	}
	return -ETIMEDOUT;
}

TEST_MATRIX_TIMEOUT(test_relay_slow_reader_bounded, 180)
{
	const uint64_t total = 512 * MIB;
	unsigned char want[T_SHA256_LEN];
	struct zc_loop_stats ls;
	struct t_xfer s, r;
	uint64_t sent1;
	struct fix f;

	ASSERT_EQ(fix_start(&f, ctx, 0), 0);
	ASSERT_OK(t_sender_start(&s, f.cli, total, 9, T_XFER_SHUT_WR));
	/* The server reads nothing: the writer must stall (no progress for
	 * 500 ms; autotuned socket buffers may take a while to fill)... */
	ASSERT_EQ(wait_stalled(&s, 500, 20000, &sent1), 0);
	/* ...after at most the socket buffers plus one pipe or buffer. */
	ASSERT_LT(sent1, stall_bound());
	ASSERT_OK(t_loop_call(&f.l, read_stats, &ls));
	ASSERT_LE(ls.pipes_used, 1);
	ASSERT_LE(ls.bufs_used, 1);
	/* Ring: each recv may take the room left up to 8 full buffers
	 * (partly filled ones can make it one or two more). */
	ASSERT_LE(ls.ring_bufs_used, 12);
	t_log("stalled after %llu bytes; pipes %llu bufs %llu ring bufs %llu",
	      (unsigned long long)sent1, (unsigned long long)ls.pipes_used,
	      (unsigned long long)ls.bufs_used,
	      (unsigned long long)ls.ring_bufs_used);

	/* A slow consumer: 64 KiB reads with pauses, then full speed. */
	ASSERT_OK(t_receiver_start_paced(&r, f.srv, 0, 64 * 1024, 200));
	ASSERT_EQ(t_xfer_join(&s), 0);
	ASSERT_EQ(t_xfer_join(&r), 0);
	t_expect_digest(9, total, want);
	ASSERT_EQ(r.bytes, total);
	ASSERT_MEMEQ(r.digest, want, T_SHA256_LEN);
	shutdown(f.srv, SHUT_WR);
	ASSERT_EQ(t_done_wait(&f.d, 10000), 0);
	ASSERT_EQ(f.d.st.end, ZC_END_EOF);
	fix_stop(&f);
	return T_PASS;
}

/* The client's EOF was forwarded, the upstream is quiet, then the client
 * resets: the upstream must be reset too, not left waiting. */
static int reset_after_half_close(const struct t_ctx *ctx, unsigned flags)
{
	struct fix f;
	char buf[4];

	ASSERT_EQ(fix_start_flags(&f, ctx, 0, flags), 0);
	ASSERT_OK(t_write_all(f.cli, "req", 3));
	shutdown(f.cli, SHUT_WR);
	ASSERT_EQ(t_read_full(f.srv, buf, 3, 5000), 3);
	ASSERT_EQ(t_wait_eof(f.srv, 5000), 0);
	ASSERT_OK(t_set_linger0(f.cli));
	close(f.cli);
	f.cli = -1;
	ASSERT_EQ(t_done_wait(&f.d, 5000), 0);
	ASSERT_EQ(f.d.st.end, ZC_END_RESET);
	/* The kernel reports EPIPE for a reset in CLOSE_WAIT. */
	ASSERT_TRUE(f.d.st.error == -ECONNRESET || f.d.st.error == -EPIPE);
	/* The server already read our FIN, so reads say EOF; its next write
	 * must fail: the relay reset it rather than leave it hanging. */
	ASSERT_LT(t_write_all(f.srv, "resp", 4), 0);
	fix_stop(&f);
	return T_PASS;
}

TEST_MATRIX(test_relay_reset_after_half_close)
{
	return reset_after_half_close(ctx, 0);
}

/* The same with the watches left to the close (ZC_RELAY_F_FRESH): the
 * reset is an error event, which still fetches SO_ERROR. */
TEST_MATRIX(test_relay_fresh_reset_after_half_close)
{
	return reset_after_half_close(ctx,
	                              ZC_RELAY_F_TRUSTED | ZC_RELAY_F_FRESH);
}

/* The inode of the socket fd refers to, for t_epoll_watches(). */
static unsigned long sock_ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? 0 : (unsigned long)st.st_ino;
}

/*
 * A ZC_RELAY_F_FRESH relay whose sockets outlive its close, as they do
 * while a fork (the daemon's upgrade) holds copies until its exec: the
 * relay must still remove its epoll watches (the loop's epoll instance
 * must not watch the sockets any more), or the next event on a living
 * socket reaches the freed relay. On epoll the last FIN goes with the
 * close, so it waits for the last copy; elsewhere shutdown() sends it.
 */
TEST_MATRIX(test_relay_fresh_close_with_copies_alive)
{
	int pa[2], pb[2], ca, cb, want_eof, epoll;
	unsigned long ia, ib;
	struct zc_relay_opts o;
	struct t_loop l;
	struct t_done d;
	char buf[4];

	epoll = ctx->engine == ZC_ENGINE_EPOLL;
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_OK(t_set_nonblock(pa[1]));
	ASSERT_OK(t_set_nonblock(pb[0]));
	ca = dup(pa[1]);
	cb = dup(pb[0]);
	ASSERT_TRUE(ca >= 0 && cb >= 0);
	ia = sock_ino(ca);
	ib = sock_ino(cb);
	ASSERT_OK(t_loop_start(&l, ctx));
	zc_relay_opts_init(&o);
	o.mover = ctx->mover;
	o.flags = ZC_RELAY_F_TRUSTED | ZC_RELAY_F_FRESH;
	ASSERT_OK(t_relay_run_opts(&l, pa[1], pb[0], &o, &d));
	ASSERT_OK(t_write_all(pa[0], "ping", 4));
	ASSERT_EQ(t_read_full(pb[1], buf, 4, 5000), 4);
	/* the helper sees the watches while the relay runs */
	ASSERT_EQ(t_epoll_watches(ia), epoll);
	ASSERT_EQ(t_epoll_watches(ib), epoll);
	shutdown(pb[1], SHUT_WR);
	ASSERT_EQ(t_wait_eof(pa[0], 5000), 0);
	shutdown(pa[0], SHUT_WR);
	ASSERT_EQ(t_done_wait(&d, 5000), 0);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	ASSERT_EQ(t_epoll_watches(ia), 0);
	ASSERT_EQ(t_epoll_watches(ib), 0);
	want_eof = epoll ? -ETIMEDOUT : 0;
	ASSERT_EQ(t_wait_eof(pb[1], 300), want_eof);
	/* Events on the relay's old sockets, while the loop runs. */
	ASSERT_OK(t_set_linger0(pa[0]));
	close(pa[0]);
	t_sleep_ms(100);
	close(cb); /* the last copy: now the FIN */
	ASSERT_EQ(t_wait_eof(pb[1], 5000), 0);
	close(ca);
	close(pb[1]);
	t_loop_stop(&l);
	return T_PASS;
}

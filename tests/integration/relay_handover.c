/*
 * relay_handover.c - zc_relay_detach / zc_relay_adopt: a live relay
 * leaves one loop mid-transfer and finishes on another (of the other
 * engine where io_uring works), every byte checked with SHA-256, its
 * counters, half-closed direction and deadlines carried over.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "runner.h"
#include "tnet.h"
#include "loop.h"
#include "relay_state.h"
#include "xfer.h"

#define MIB (1024ULL * 1024ULL)

/* A record and its fds, between two loops. */
struct hand {
	struct t_done *from; /* the relay on the first loop */
	uint8_t rec[ZC_RELAY_STATE_LEN];
	int fds[ZC_RELAY_STATE_FDS];
	unsigned nfds;
	size_t len;     /* room given to detach */
	int rc;         /* zc_relay_detach's, or -ESRCH: it had ended */
	int fail_pipes; /* make the pool's pipe2() fail during detach */
};

static int no_pipe2(int fds[2], int flags)
{
	errno = EMFILE;
	return -1;
}

static void detach_fn(struct zc_loop *loop, void *arg)
{
	struct hand *h = arg;
	int (*saved)(int[2], int) = loop->pipes.pp_pipe2;
	struct zc_pipe *cached = loop->pipes.pp_free;
	unsigned ncached = loop->pipes.pp_nfree;

	if (!h->from->relay) {
		h->rc = -ESRCH;
		return;
	}
	if (h->fail_pipes) { /* no cached pipe, and no new one */
		loop->pipes.pp_pipe2 = no_pipe2;
		loop->pipes.pp_free = NULL;
		loop->pipes.pp_nfree = 0;
	}
	h->rc = zc_relay_detach(h->from->relay, h->rec, h->len, h->fds,
	                        &h->nfds);
	if (h->fail_pipes) {
		loop->pipes.pp_pipe2 = saved;
		loop->pipes.pp_free = cached;
		loop->pipes.pp_nfree = ncached;
	}
	if (h->rc == 0)
		h->from->relay = NULL; /* gone, with no done call */
}

/* Detaches d's relay on l into h. Returns zc_relay_detach's result. */
static int hand_detach(struct t_loop *l, struct t_done *d, struct hand *h)
{
	memset(h, 0, sizeof(*h));
	h->from = d;
	h->len = sizeof(h->rec);
	if (t_loop_call(l, detach_fn, h))
		return -EIO;
	return h->rc;
}

struct adopt_call {
	struct hand *h;
	struct t_done *to;
	int rc;
};

static void adopt_fn(struct zc_loop *loop, void *arg)
{
	struct adopt_call *a = arg;

	a->rc = zc_relay_adopt(&a->to->relay, loop, a->h->rec,
	                       sizeof(a->h->rec), a->h->fds, a->h->nfds,
	                       t_done_cb, a->to);
}

/* Adopts h's relay on l, reporting to d. Returns zc_relay_adopt's. */
static int hand_adopt(struct t_loop *l, struct hand *h, struct t_done *d)
{
	struct adopt_call a = {h, d, -EIO};

	t_done_init(d);
	if (t_loop_call(l, adopt_fn, &a))
		return -EIO;
	return a.rc;
}

static int movable(int mover)
{
	return mover != ZC_MOVER_RING && mover != ZC_MOVER_URING_SPLICE;
}

/* The engine the relay moves to: from io_uring to epoll, from epoll to
 * io_uring where it works (auto picks it then). */
static int other_engine(const struct t_ctx *ctx)
{
	return ctx->engine == ZC_ENGINE_URING ? ZC_ENGINE_EPOLL
	                                      : ZC_ENGINE_AUTO;
}

/* Moves d1's relay from l1 to l2 (reporting to d2) and returns the
 * t_done that will see its end; for a mover that cannot be handed over,
 * checks the refusal and returns d1 (the relay runs on where it was).
 * NULL on a failure. */
static struct t_done *hand_move(struct t_loop *l1, struct t_done *d1,
                                struct t_loop *l2, struct t_done *d2, int mover,
                                struct hand *h)
{
	int rc = hand_detach(l1, d1, h);

	if (!movable(mover)) {
		if (rc != -EOPNOTSUPP || h->nfds != 0) {
			t_log("detach of a %s relay: %d, %u fds",
			      zc_mover_name(mover), rc, h->nfds);
			return NULL;
		}
		return d1;
	}
	if (rc != 0 || h->nfds < 2) {
		t_log("detach: %s", zc_strerror(rc));
		return NULL;
	}
	rc = hand_adopt(l2, h, d2);
	if (rc != 0) {
		t_log("adopt: %s", zc_strerror(rc));
		return NULL;
	}
	return d2;
}

/* Waits until direction dir of d's relay has moved at least n bytes. */
static int wait_bytes(struct t_loop *l, struct t_done *d, int dir, uint64_t n)
{
	struct zc_relay_stats st;
	int i;

	for (i = 0; i < 1000; i++) {
		if (t_relay_stats(l, d, &st))
			return -ESRCH;
		if (st.dir[dir].bytes >= n)
			return 0;
		t_sleep_ms(10);
	}
	return -ETIMEDOUT;
}

/* Waits until direction dir of d's relay stops moving (a blocked
 * destination): the same count over 300 ms. */
static int wait_stalled(struct t_loop *l, struct t_done *d, int dir)
{
	struct zc_relay_stats st;
	uint64_t last = UINT64_MAX;
	int i, same = 0;

	for (i = 0; i < 500 && same < 3; i++) {
		t_sleep_ms(100);
		if (t_relay_stats(l, d, &st))
			return -ESRCH;
		same = st.dir[dir].bytes == last ? same + 1 : 0;
		last = st.dir[dir].bytes;
	}
	return same >= 3 ? 0 : -ETIMEDOUT;
}

/* Starts l1 on ctx's engine and l2 on the other one. */
static int hand_loops(const struct t_ctx *ctx, struct t_loop *l1,
                      struct t_loop *l2)
{
	struct t_ctx to = *ctx;

	to.engine = other_engine(ctx);
	ASSERT_OK(t_loop_start(l1, ctx));
	ASSERT_OK(t_loop_start(l2, &to));
	return 0;
}

/* Stops both loops (l2 may be NULL), checks that only end (d1 or d2)
 * reported the relay's end, once, and closes the test's own ends. */
static int hand_finish(struct t_loop *l1, struct t_loop *l2, struct t_done *d1,
                       struct t_done *end, int fa, int fb)
{
	ASSERT_OK(t_loop_stop(l1));
	if (l2)
		ASSERT_OK(t_loop_stop(l2));
	ASSERT_EQ(end->calls, 1);
	if (end != d1)
		ASSERT_EQ(d1->calls, 0);
	close(fa);
	close(fb);
	return T_PASS;
}

/* Uploads and downloads at once; the relay moves to the other engine
 * half-way, and every byte arrives once, in order. */
TEST_MATRIX(test_handover_mid_transfer_both_ways)
{
	unsigned char want_up[T_SHA256_LEN], want_down[T_SHA256_LEN];
	const uint64_t up = 48 * MIB + 7, down = 24 * MIB + 5;
	struct t_loop l1, l2;
	struct t_done d1, d2, *end = &d1;
	struct t_xfer us, ur, ds, dr;
	struct hand h;
	int pa[2], pb[2];

	ASSERT_OK(hand_loops(ctx, &l1, &l2));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ctx->mover, 0, &d1));
	/* Slow readers keep the relay busy until it has moved. */
	ASSERT_OK(t_sender_start(&us, pa[0], up, 41, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start_paced(&ur, pb[1], 0, 64 * 1024, 200));
	ASSERT_OK(t_sender_start(&ds, pb[1], down, 42, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start_paced(&dr, pa[0], 0, 64 * 1024, 200));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_AB, 2 * MIB));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_BA, 2 * MIB));
	/* Ring and uring-splice relays refuse and run on untouched. */
	ASSERT_TRUE((end = hand_move(&l1, &d1, &l2, &d2, ctx->mover, &h)));
	ASSERT_EQ(t_xfer_join(&us), 0);
	ASSERT_EQ(t_xfer_join(&ds), 0);
	ASSERT_EQ(t_xfer_join(&ur), 0);
	ASSERT_EQ(t_xfer_join(&dr), 0);
	ASSERT_OK(t_done_wait(end, 20000));
	t_expect_digest(41, up, want_up);
	t_expect_digest(42, down, want_down);
	ASSERT_EQ(ur.bytes, up);
	ASSERT_EQ(dr.bytes, down);
	ASSERT_MEMEQ(ur.digest, want_up, T_SHA256_LEN);
	ASSERT_MEMEQ(dr.digest, want_down, T_SHA256_LEN);
	/* One report, from the loop it ended on, counting the whole life. */
	ASSERT_EQ(end->calls, 1);
	ASSERT_EQ(end->st.end, ZC_END_EOF);
	ASSERT_EQ(end->st.dir[ZC_DIR_AB].bytes, up);
	ASSERT_EQ(end->st.dir[ZC_DIR_BA].bytes, down);
	if (end == &d2) {
		ASSERT_EQ(d1.calls, 0);
		ASSERT_EQ(d2.st.engine, zc_loop_engine(l2.loop));
	}
	return hand_finish(&l1, &l2, &d1, end, pa[0], pb[1]);
}

/* The destination reads nothing: the relay holds bytes (in its pipe, or
 * its buffer), which travel in the record's pipe and come out first. */
TEST_MATRIX(test_handover_held_bytes_travel)
{
	unsigned char want[T_SHA256_LEN];
	const uint64_t up = 16 * MIB + 3;
	struct zc_relay_state s;
	struct t_loop l1, l2;
	struct t_done d1, d2, *end;
	struct t_xfer us, ur;
	struct hand h;
	int pa[2], pb[2];

	ASSERT_OK(hand_loops(ctx, &l1, &l2));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_UNIX, pb)); /* a small destination buffer */
	ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ctx->mover, 0, &d1));
	ASSERT_OK(t_sender_start(&us, pa[0], up, 43, T_XFER_SHUT_WR));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_AB, 1));
	ASSERT_OK(wait_stalled(&l1, &d1, ZC_DIR_AB));
	ASSERT_TRUE((end = hand_move(&l1, &d1, &l2, &d2, ctx->mover, &h)));
	if (end == &d2) {
		ASSERT_EQ(zc__relay_state_unpack(&s, h.rec, sizeof(h.rec),
		                                 h.fds, h.nfds),
		          ZC_RELAY_STATE_LEN);
		t_log("held: %u bytes in the record's pipe, %llu written",
		      s.dir[0].inpipe, (unsigned long long)s.dir[0].st.bytes);
		ASSERT_GT(s.dir[0].inpipe, 0);
		ASSERT_EQ(h.nfds, 4);
		ASSERT_EQ(s.dir[0].phase, ZC_PHASE_OPEN);
	}
	ASSERT_OK(t_receiver_start(&ur, pb[1], 0));
	ASSERT_EQ(t_xfer_join(&us), 0);
	ASSERT_EQ(t_xfer_join(&ur), 0);
	t_expect_digest(43, up, want);
	ASSERT_EQ(ur.bytes, up);
	ASSERT_MEMEQ(ur.digest, want, T_SHA256_LEN);
	shutdown(pb[1], SHUT_WR);
	ASSERT_OK(t_done_wait(end, 10000));
	ASSERT_EQ(end->st.end, ZC_END_EOF);
	ASSERT_EQ(end->st.dir[ZC_DIR_AB].bytes, up);
	ASSERT_EQ(end->st.dir[ZC_DIR_AB].spliced +
	                  end->st.dir[ZC_DIR_AB].copied,
	          up);
	return hand_finish(&l1, &l2, &d1, end, pa[0], pb[1]);
}

/* A copy relay holding a buffer's bytes needs a new pipe to hand them
 * over; with none to be had, detach fails and the relay runs on, no byte
 * lost. */
TEST(test_handover_no_pipe_relay_runs_on)
{
	unsigned char want[T_SHA256_LEN];
	const uint64_t up = 16 * MIB + 1;
	struct t_ctx ep = {.mover = ZC_MOVER_COPY, .engine = ZC_ENGINE_EPOLL};
	struct t_loop l1;
	struct t_done d1;
	struct t_xfer us, ur;
	struct hand h;
	int pa[2], pb[2];

	ASSERT_OK(t_loop_start(&l1, &ep));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_UNIX, pb));
	ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ZC_MOVER_COPY, 0, &d1));
	ASSERT_OK(t_sender_start(&us, pa[0], up, 44, T_XFER_SHUT_WR));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_AB, 1));
	ASSERT_OK(wait_stalled(&l1, &d1, ZC_DIR_AB));
	memset(&h, 0, sizeof(h));
	h.from = &d1;
	h.len = sizeof(h.rec);
	h.fail_pipes = 1;
	ASSERT_OK(t_loop_call(&l1, detach_fn, &h));
	ASSERT_EQ(h.rc, -EMFILE);
	ASSERT_EQ(h.nfds, 0);
	h.fail_pipes = 0;
	h.len = ZC_RELAY_STATE_LEN - 1; /* no room: refused, runs on */
	ASSERT_OK(t_loop_call(&l1, detach_fn, &h));
	ASSERT_EQ(h.rc, -ENOSPC);
	ASSERT_OK(t_receiver_start(&ur, pb[1], 0));
	ASSERT_EQ(t_xfer_join(&us), 0);
	ASSERT_EQ(t_xfer_join(&ur), 0);
	t_expect_digest(44, up, want);
	ASSERT_MEMEQ(ur.digest, want, T_SHA256_LEN);
	shutdown(pb[1], SHUT_WR);
	ASSERT_OK(t_done_wait(&d1, 10000));
	ASSERT_EQ(d1.st.end, ZC_END_EOF);
	ASSERT_EQ(d1.st.dir[ZC_DIR_AB].bytes, up);
	ASSERT_OK(t_loop_stop(&l1));
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

/* A half-closed relay moves: the forwarded EOF stays forwarded, the
 * other direction flows on, and its age carries over. */
TEST_MATRIX(test_handover_half_closed)
{
	const unsigned idle_ms = 3000, quiet_ms = 1000;
	struct zc_relay_opts o;
	struct zc_relay_state s;
	struct t_loop l1, l2;
	struct t_done d1, d2, *end;
	struct hand h;
	int pa[2], pb[2];
	char c;

	ASSERT_OK(hand_loops(ctx, &l1, &l2));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	zc_relay_opts_init(&o);
	o.mover = ctx->mover;
	o.idle_timeout_ms = idle_ms;
	ASSERT_OK(t_relay_run_opts(&l1, pa[1], pb[0], &o, &d1));
	ASSERT_EQ(shutdown(pa[0], SHUT_WR), 0); /* the client is done */
	ASSERT_OK(t_wait_eof(pb[1], 5000));
	t_sleep_ms(quiet_ms);
	ASSERT_TRUE((end = hand_move(&l1, &d1, &l2, &d2, ctx->mover, &h)));
	if (end == &d2) {
		ASSERT_EQ(zc__relay_state_unpack(&s, h.rec, sizeof(h.rec),
		                                 h.fds, h.nfds),
		          ZC_RELAY_STATE_LEN);
		ASSERT_EQ(s.dir[ZC_DIR_AB].phase, ZC_PHASE_EOF_SENT);
		ASSERT_EQ(s.dir[ZC_DIR_BA].phase, ZC_PHASE_OPEN);
		ASSERT_GE(s.quiet_ns, (uint64_t)(quiet_ms / 2) * 1000000ULL);
	}
	/* The other way still relays after the move, and still ends. */
	ASSERT_EQ(write(pb[1], "x", 1), 1);
	ASSERT_EQ(t_read_full(pa[0], &c, 1, 5000), 1);
	ASSERT_EQ(c, 'x');
	ASSERT_EQ(shutdown(pb[1], SHUT_WR), 0);
	ASSERT_OK(t_wait_eof(pa[0], 5000));
	ASSERT_OK(t_done_wait(end, 5000));
	ASSERT_EQ(end->st.end, ZC_END_EOF);
	ASSERT_EQ(end->st.dir[ZC_DIR_AB].fin, 1);
	ASSERT_EQ(end->st.dir[ZC_DIR_BA].fin, 1);
	ASSERT_EQ(end->st.dir[ZC_DIR_BA].bytes, 1);
	/* Its life counts from its start on the first loop. */
	ASSERT_GE(end->st.duration_ns, (uint64_t)quiet_ms * 1000000ULL);
	return hand_finish(&l1, &l2, &d1, end, pa[0], pb[1]);
}

/* No traffic at all: a session 3 s into a 4 s idle timeout ends about
 * 1 s after it moved, not 4 s. */
TEST(test_handover_idle_deadline_carries_over)
{
	const unsigned idle_ms = 4000, quiet_ms = 3000;
	struct t_ctx ep = {.mover = ZC_MOVER_SPLICE, .engine = ZC_ENGINE_EPOLL};
	struct zc_relay_opts o;
	struct t_loop l1, l2;
	struct t_done d1, d2;
	struct hand h;
	uint64_t t0, waited;
	int pa[2], pb[2];

	ASSERT_OK(t_loop_start(&l1, &ep));
	ep.engine = other_engine(&ep);
	ASSERT_OK(t_loop_start(&l2, &ep));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	zc_relay_opts_init(&o);
	o.mover = ZC_MOVER_SPLICE;
	o.idle_timeout_ms = idle_ms;
	ASSERT_OK(t_relay_run_opts(&l1, pa[1], pb[0], &o, &d1));
	t_sleep_ms(quiet_ms);
	ASSERT_EQ(hand_detach(&l1, &d1, &h), 0);
	t0 = t_now_ms();
	ASSERT_EQ(hand_adopt(&l2, &h, &d2), 0);
	ASSERT_OK(t_done_wait(&d2, idle_ms + 3000));
	waited = t_now_ms() - t0;
	t_log("idle timeout %u ms, quiet %u ms before the move, ended %llu ms "
	      "after it",
	      idle_ms, quiet_ms, (unsigned long long)waited);
	ASSERT_EQ(d2.st.end, ZC_END_TIMEOUT);
	ASSERT_LT(waited, idle_ms - 1500); /* a restarted clock: >= 4000 */
	ASSERT_OK(t_loop_stop(&l1));
	ASSERT_OK(t_loop_stop(&l2));
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

/* Records that cannot be adopted leave their fds with the caller. */
TEST(test_handover_adopt_refusals)
{
	struct t_ctx ep = {.mover = ZC_MOVER_AUTO, .engine = ZC_ENGINE_EPOLL};
	struct t_loop l1, l2;
	struct t_done d1, d2;
	int pa[2], pb[2], got[ZC_RELAY_STATE_FDS], i;
	struct hand h;

	ASSERT_OK(t_loop_start(&l1, &ep));
	ASSERT_OK(t_loop_start(&l2, &ep));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ZC_MOVER_AUTO, 0, &d1));
	ASSERT_EQ(hand_detach(&l1, &d1, &h), 0);
	ASSERT_EQ(zc_relay_state_fds(h.rec, sizeof(h.rec), h.fds, h.nfds, got),
	          2);
	ASSERT_EQ(got[0], pa[1]);
	ASSERT_EQ(got[1], pb[0]);
	h.rec[4] = 2; /* a format version this library does not know */
	ASSERT_EQ(hand_adopt(&l2, &h, &d2), -EPROTONOSUPPORT);
	ASSERT_EQ(zc_relay_state_fds(h.rec, sizeof(h.rec), h.fds, h.nfds, got),
	          -EPROTONOSUPPORT);
	h.rec[4] = 1;
	h.nfds = 1; /* fd_b's index is outside the array */
	ASSERT_EQ(hand_adopt(&l2, &h, &d2), -EBADMSG);
	h.nfds = 2;
	ASSERT_EQ(hand_adopt(&l2, &h, &d2), 0); /* the fds were left alone */
	ASSERT_EQ(d2.calls, 0);
	for (i = 0; i < 3; i++) { /* and it relays */
		ASSERT_EQ(write(pa[0], "ab", 2), 2);
		ASSERT_EQ(t_read_full(pb[1], got, 2, 5000), 2);
	}
	ASSERT_OK(t_loop_stop(&l2));
	ASSERT_EQ(d2.calls, 1);
	ASSERT_EQ(d2.st.dir[ZC_DIR_AB].bytes, 6);
	ASSERT_OK(t_loop_stop(&l1));
	ASSERT_EQ(d1.calls, 0);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t, unsigned);
static long pumps_ok; /* pipe -> socket splices allowed before EINVAL */

static ssize_t pump_fails(int in, loff_t *oi, int out, loff_t *oo, size_t len,
                          unsigned flags)
{
	struct stat st;
	ssize_t n;

	if (fstat(in, &st) == 0 && S_ISFIFO(st.st_mode) &&
	    __atomic_load_n(&pumps_ok, __ATOMIC_RELAXED) <= 0) {
		errno = EINVAL;
		return -1;
	}
	n = real_splice(in, oi, out, oo, len, flags);
	if (n > 0 && fstat(in, &st) == 0 && S_ISFIFO(st.st_mode))
		__atomic_sub_fetch(&pumps_ok, 1, __ATOMIC_RELAXED);
	return n;
}

/* The destination refused splice after some bytes: the pipe is emptied
 * through the buffer, so a stalled direction holds bytes in both, the
 * buffer's older. They travel in one pipe in that order. */
TEST(test_handover_buffer_and_pipe_keep_order)
{
	unsigned char want[T_SHA256_LEN];
	const uint64_t up = 16 * MIB + 11;
	struct t_ctx ep = {.mover = ZC_MOVER_SPLICE, .engine = ZC_ENGINE_EPOLL};
	struct zc_relay_state s;
	struct t_loop l1, l2;
	struct t_done d1, d2;
	struct t_xfer us, ur;
	struct hand h;
	int pa[2], pb[2], rc;

	real_splice = zc__sys_splice;
	pumps_ok = 0; /* the first pipe -> socket splice fails */
	zc__sys_splice = pump_fails;
	ASSERT_OK(t_loop_start(&l1, &ep));
	ASSERT_OK(t_loop_start(&l2, &ep));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_UNIX, pb));
	/* Bytes wait before the relay starts: its first splice fills the
	 * pipe, far beyond what one buffer takes out of it. */
	ASSERT_OK(t_sender_start(&us, pa[0], up, 45, T_XFER_SHUT_WR));
	t_sleep_ms(300);
	ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ZC_MOVER_SPLICE, 0, &d1));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_AB, 1));
	ASSERT_OK(wait_stalled(&l1, &d1, ZC_DIR_AB));
	rc = hand_detach(&l1, &d1, &h);
	zc__sys_splice = real_splice;
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(
	        zc__relay_state_unpack(&s, h.rec, sizeof(h.rec), h.fds, h.nfds),
	        ZC_RELAY_STATE_LEN);
	t_log("held %u bytes; fallback %d; %llu spliced, %llu copied",
	      s.dir[0].inpipe, s.dir[0].st.fallback,
	      (unsigned long long)s.dir[0].st.spliced,
	      (unsigned long long)s.dir[0].st.copied);
	ASSERT_EQ(s.dir[0].st.fallback, -EINVAL);
	ASSERT_GT(s.dir[0].inpipe, 64 * 1024); /* more than one buffer */
	ASSERT_EQ(hand_adopt(&l2, &h, &d2), 0);
	ASSERT_OK(t_receiver_start(&ur, pb[1], 0));
	ASSERT_EQ(t_xfer_join(&us), 0);
	ASSERT_EQ(t_xfer_join(&ur), 0);
	t_expect_digest(45, up, want);
	ASSERT_EQ(ur.bytes, up);
	ASSERT_MEMEQ(ur.digest, want, T_SHA256_LEN);
	shutdown(pb[1], SHUT_WR);
	ASSERT_OK(t_done_wait(&d2, 10000));
	ASSERT_EQ(d2.st.end, ZC_END_EOF);
	ASSERT_EQ(d2.st.dir[ZC_DIR_AB].bytes, up);
	ASSERT_EQ(d2.st.dir[ZC_DIR_AB].fallback, -EINVAL);
	return hand_finish(&l1, &l2, &d1, &d2, pa[0], pb[1]);
}

/* Many short transfers (64 KiB up, then EOF; 32 bytes back), each moved
 * to the other loop at a different moment of its life. */
TEST_MATRIX_TIMEOUT(test_handover_short_sessions_any_moment, 120)
{
	unsigned char want[T_SHA256_LEN], got[T_SHA256_LEN];
	static unsigned char buf[64 * 1024];
	struct t_loop l1, l2;
	struct t_done d1, d2;
	struct t_xfer ur;
	struct hand h;
	int pa[2], pb[2], i, rc;
	struct t_rng r;
	size_t cut;

	ASSERT_OK(hand_loops(ctx, &l1, &l2));
	for (i = 0; i < 300; i++) {
		ASSERT_OK(t_pair(AF_INET, pa));
		ASSERT_OK(t_pair(AF_INET, pb));
		ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ctx->mover, 0, &d1));
		t_rng_init(&r, (uint64_t)i + 100);
		t_rng_fill(&r, buf, sizeof(buf));
		ASSERT_OK(t_receiver_start(&ur, pb[1], 0));
		cut = i % 2 ? sizeof(buf) : (size_t)(i * 331) % sizeof(buf);
		ASSERT_OK(t_write_all(pa[0], buf, cut));
		if (cut == sizeof(buf)) /* the EOF too, before the move */
			ASSERT_EQ(shutdown(pa[0], SHUT_WR), 0);
		if (i % 4 == 1)
			t_sleep_ms(i % 3);
		rc = hand_detach(&l1, &d1, &h);
		ASSERT_OK(t_write_all(pa[0], buf + cut, sizeof(buf) - cut));
		if (cut != sizeof(buf))
			ASSERT_EQ(shutdown(pa[0], SHUT_WR), 0);
		if (rc == 0)
			ASSERT_EQ(hand_adopt(&l2, &h, &d2), 0);
		else
			ASSERT_EQ(rc, movable(ctx->mover) ? 0 : -EOPNOTSUPP);
		ASSERT_EQ(t_xfer_join(&ur), 0);
		t_expect_digest((uint64_t)i + 100, sizeof(buf), want);
		(void)got;
		if (memcmp(ur.digest, want, sizeof(want)))
			return t_fail(__FILE__, __LINE__,
			              "transfer %d: wrong digest (%llu bytes)",
			              i, (unsigned long long)ur.bytes);
		shutdown(pb[1], SHUT_WR);
		ASSERT_OK(t_done_wait(rc == 0 ? &d2 : &d1, 5000));
		close(pa[0]);
		close(pb[1]);
	}
	ASSERT_OK(t_loop_stop(&l1));
	ASSERT_OK(t_loop_stop(&l2));
	return T_PASS;
}

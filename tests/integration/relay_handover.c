/*
 * relay_handover.c - zc_relay_detach / zc_relay_adopt: a live relay
 * leaves one loop mid-transfer and finishes on another (of the other
 * engine where io_uring works, or of the same one), every byte checked
 * with SHA-256, its counters, half-closed direction and deadlines
 * carried over, on every mover: the ring and uring-splice movers settle
 * their requests first (detach answers -EAGAIN meanwhile).
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
#include "relay-t.h"
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
	int tries;      /* detach calls made (hand_detach_again) */
	uint64_t bufs;  /* the loop's ring buffers in use right after it */
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
	if (h->rc == 0) {
		struct zc_loop_stats st;

		h->from->relay = NULL; /* gone, with no done call */
		zc_loop_get_stats(loop, &st);
		h->bufs = st.ring_bufs_used;
	}
}

/* Calls detach on l until it no longer answers -EAGAIN (a relay whose
 * requests are being settled), a loop turn or more between the calls,
 * for up to 10 s. Returns the last answer; h->tries counts the calls. */
static int hand_detach_again(struct t_loop *l, struct hand *h)
{
	for (h->tries = 0; h->tries < 10000; h->tries++) {
		if (h->tries)
			t_sleep_ms(1);
		if (t_loop_call(l, detach_fn, h))
			return -EIO;
		if (h->rc != -EAGAIN)
			break;
		if (h->nfds != 0)
			return -EFAULT; /* -EAGAIN must append nothing */
	}
	return h->rc;
}

/* Detaches d's relay on l into h. Returns zc_relay_detach's result. */
static int hand_detach(struct t_loop *l, struct t_done *d, struct hand *h)
{
	memset(h, 0, sizeof(*h));
	h->from = d;
	h->len = sizeof(h->rec);
	return hand_detach_again(l, h);
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

/* The engine the relay moves to: from io_uring to epoll, from epoll to
 * io_uring where it works (auto picks it then). */
static int other_engine(const struct t_ctx *ctx)
{
	return ctx->engine == ZC_ENGINE_URING ? ZC_ENGINE_EPOLL
	                                      : ZC_ENGINE_AUTO;
}

/* Moves d1's relay from l1 to l2 (reporting to d2) and returns the
 * t_done that will see its end (d2), or NULL on a failure. */
static struct t_done *hand_move(struct t_loop *l1, struct t_done *d1,
                                struct t_loop *l2, struct t_done *d2,
                                struct hand *h)
{
	int rc = hand_detach(l1, d1, h);

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

/* The upload us -> ur (seed, up bytes) arrived whole and in order; then
 * the receiver's side (sink) ends too, and end reports the relay's EOF
 * with every byte counted. */
static int upload_done(struct t_done *end, struct t_xfer *us, struct t_xfer *ur,
                       int sink, uint64_t up, uint64_t seed)
{
	unsigned char want[T_SHA256_LEN];

	ASSERT_EQ(t_xfer_join(us), 0);
	ASSERT_EQ(t_xfer_join(ur), 0);
	t_expect_digest(seed, up, want);
	ASSERT_EQ(ur->bytes, up);
	ASSERT_MEMEQ(ur->digest, want, T_SHA256_LEN);
	shutdown(sink, SHUT_WR);
	ASSERT_OK(t_done_wait(end, 10000));
	ASSERT_EQ(end->st.end, ZC_END_EOF);
	ASSERT_EQ(end->st.dir[ZC_DIR_AB].bytes, up);
	return T_PASS;
}

/* Transfers x[0] -> x[1] (seed, up bytes) and x[2] -> x[3] (seed + 1,
 * down bytes) at once: both arrived whole and in order. */
static int both_ways_done(struct t_xfer x[4], uint64_t up, uint64_t down,
                          uint64_t seed)
{
	unsigned char want[T_SHA256_LEN];
	int i;

	for (i = 0; i < 4; i++)
		ASSERT_EQ(t_xfer_join(&x[i]), 0);
	t_expect_digest(seed, up, want);
	ASSERT_EQ(x[1].bytes, up);
	ASSERT_MEMEQ(x[1].digest, want, T_SHA256_LEN);
	t_expect_digest(seed + 1, down, want);
	ASSERT_EQ(x[3].bytes, down);
	ASSERT_MEMEQ(x[3].digest, want, T_SHA256_LEN);
	return T_PASS;
}

/* Uploads and downloads at once; the relay moves to the other engine
 * half-way, and every byte arrives once, in order. */
TEST_MATRIX(test_handover_mid_transfer_both_ways)
{
	const uint64_t up = 48 * MIB + 7, down = 24 * MIB + 5;
	struct t_loop l1, l2;
	struct t_done d1, d2, *end;
	struct t_xfer x[4];
	struct hand h;
	int pa[2], pb[2];

	ASSERT_OK(hand_loops(ctx, &l1, &l2));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ctx->mover, 0, &d1));
	/* Slow readers keep the relay busy until it has moved. */
	ASSERT_OK(t_sender_start(&x[0], pa[0], up, 41, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start_paced(&x[1], pb[1], 0, 64 * 1024, 200));
	ASSERT_OK(t_sender_start(&x[2], pb[1], down, 42, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start_paced(&x[3], pa[0], 0, 64 * 1024, 200));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_AB, 2 * MIB));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_BA, 2 * MIB));
	ASSERT_TRUE((end = hand_move(&l1, &d1, &l2, &d2, &h)));
	ASSERT_EQ(both_ways_done(x, up, down, 41), T_PASS);
	ASSERT_OK(t_done_wait(end, 20000));
	/* One report, from the loop it ended on, counting the whole life. */
	ASSERT_EQ(end->calls, 1);
	ASSERT_EQ(end->st.end, ZC_END_EOF);
	ASSERT_EQ(end->st.dir[ZC_DIR_AB].bytes, up);
	ASSERT_EQ(end->st.dir[ZC_DIR_BA].bytes, down);
	ASSERT_EQ(d1.calls, 0);
	ASSERT_EQ(d2.st.engine, zc_loop_engine(l2.loop));
	return hand_finish(&l1, &l2, &d1, end, pa[0], pb[1]);
}

/* The destination reads nothing: the relay holds bytes (in its pipe, or
 * its buffer), which travel in the record's pipe and come out first. */
TEST_MATRIX(test_handover_held_bytes_travel)
{
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
	ASSERT_TRUE((end = hand_move(&l1, &d1, &l2, &d2, &h)));
	ASSERT_EQ(
	        zc__relay_state_unpack(&s, h.rec, sizeof(h.rec), h.fds, h.nfds),
	        ZC_RELAY_STATE_LEN);
	t_log("held: %u bytes in the record's pipe, %llu written",
	      s.dir[0].inpipe, (unsigned long long)s.dir[0].st.bytes);
	ASSERT_GT(s.dir[0].inpipe, 0);
	ASSERT_EQ(h.nfds, 4);
	ASSERT_EQ(s.dir[0].phase, ZC_PHASE_OPEN);
	ASSERT_OK(t_receiver_start(&ur, pb[1], 0));
	ASSERT_EQ(upload_done(end, &us, &ur, pb[1], up, 43), T_PASS);
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
	ASSERT_EQ(upload_done(&d1, &us, &ur, pb[1], up, 44), T_PASS);
	return hand_finish(&l1, NULL, &d1, &d1, pa[0], pb[1]);
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
	ASSERT_TRUE((end = hand_move(&l1, &d1, &l2, &d2, &h)));
	ASSERT_EQ(
	        zc__relay_state_unpack(&s, h.rec, sizeof(h.rec), h.fds, h.nfds),
	        ZC_RELAY_STATE_LEN);
	ASSERT_EQ(s.dir[ZC_DIR_AB].phase, ZC_PHASE_EOF_SENT);
	ASSERT_EQ(s.dir[ZC_DIR_BA].phase, ZC_PHASE_OPEN);
	ASSERT_GE(s.quiet_ns, (uint64_t)(quiet_ms / 2) * 1000000ULL);
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

/* Two epoll loops, and an auto relay pa[1] <-> pb[0] started on l1 and
 * detached at once (idle) into h. */
static int idle_detached(struct t_loop *l1, struct t_loop *l2,
                         struct t_done *d1, struct hand *h, int pa[2],
                         int pb[2])
{
	struct t_ctx ep = {.mover = ZC_MOVER_AUTO, .engine = ZC_ENGINE_EPOLL};

	ASSERT_OK(t_loop_start(l1, &ep));
	ASSERT_OK(t_loop_start(l2, &ep));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_OK(t_relay_run(l1, pa[1], pb[0], ZC_MOVER_AUTO, 0, d1));
	ASSERT_EQ(hand_detach(l1, d1, h), 0);
	return T_PASS;
}

/* Records that cannot be adopted leave their fds with the caller. */
TEST(test_handover_adopt_refusals)
{
	struct t_loop l1, l2;
	struct t_done d1, d2;
	int pa[2], pb[2], got[ZC_RELAY_STATE_FDS], i;
	struct hand h;

	ASSERT_EQ(idle_detached(&l1, &l2, &d1, &h, pa, pb), T_PASS);
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
	/* Two fds of one socket: distinct numbers, the same socket. */
	got[0] = h.fds[1];
	ASSERT_GE((h.fds[1] = dup(h.fds[0])), 0);
	ASSERT_EQ(hand_adopt(&l2, &h, &d2), -EINVAL);
	close(h.fds[1]);
	h.fds[1] = got[0];
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
	ASSERT_EQ(upload_done(&d2, &us, &ur, pb[1], up, 45), T_PASS);
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
		if (rc == -ESRCH) /* ended on l1 before the move: how? */
			return t_fail(__FILE__, __LINE__,
			              "transfer %d (cut %zu): the relay ended "
			              "before the move: end %d, error %d, "
			              "%llu bytes up",
			              i, cut, d1.st.end, d1.st.error,
			              (unsigned long long)d1.st.dir[0].bytes);
		ASSERT_EQ(rc, 0);
		ASSERT_EQ(hand_adopt(&l2, &h, &d2), 0);
		ASSERT_EQ(t_xfer_join(&ur), 0);
		t_expect_digest((uint64_t)i + 100, sizeof(buf), want);
		(void)got;
		if (memcmp(ur.digest, want, sizeof(want)))
			return t_fail(__FILE__, __LINE__,
			              "transfer %d: wrong digest (%llu bytes)",
			              i, (unsigned long long)ur.bytes);
		shutdown(pb[1], SHUT_WR);
		ASSERT_OK(t_done_wait(&d2, 5000));
		close(pa[0]);
		close(pb[1]);
	}
	ASSERT_OK(t_loop_stop(&l1));
	ASSERT_OK(t_loop_stop(&l2));
	return T_PASS;
}

/* Both destinations read nothing, both sources sent their EOF: each
 * direction holds bytes and has its EOF still to forward. The relay
 * moves to a loop of the same engine and mover (ring to ring: the
 * adopted pipe goes out through the new loop's buffers), and both ways
 * finish byte-exact. */
TEST_MATRIX(test_handover_same_engine_held_both_ways)
{
	const uint64_t up = 8 * MIB + 13, down = 6 * MIB + 17;
	struct zc_relay_state s;
	struct t_loop l1, l2;
	struct t_done d1, d2;
	struct t_xfer x[4];
	struct hand h;
	int pa[2], pb[2];

	ASSERT_OK(t_loop_start(&l1, ctx));
	ASSERT_OK(t_loop_start(&l2, ctx));
	ASSERT_OK(t_pair(AF_UNIX, pa)); /* small buffers both ways */
	ASSERT_OK(t_pair(AF_UNIX, pb));
	ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ctx->mover, 0, &d1));
	ASSERT_OK(t_sender_start(&x[0], pa[0], up, 51, T_XFER_SHUT_WR));
	ASSERT_OK(t_sender_start(&x[2], pb[1], down, 52, T_XFER_SHUT_WR));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_AB, 1));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_BA, 1));
	ASSERT_OK(wait_stalled(&l1, &d1, ZC_DIR_AB));
	ASSERT_OK(wait_stalled(&l1, &d1, ZC_DIR_BA));
	ASSERT_TRUE(hand_move(&l1, &d1, &l2, &d2, &h) == &d2);
	ASSERT_EQ(
	        zc__relay_state_unpack(&s, h.rec, sizeof(h.rec), h.fds, h.nfds),
	        ZC_RELAY_STATE_LEN);
	t_log("held %u and %u bytes, after %d detach calls", s.dir[0].inpipe,
	      s.dir[1].inpipe, h.tries + 1);
	ASSERT_GT(s.dir[0].inpipe, 0);
	ASSERT_GT(s.dir[1].inpipe, 0);
	ASSERT_EQ(h.nfds, 6);
	ASSERT_OK(t_receiver_start(&x[1], pb[1], 0));
	ASSERT_OK(t_receiver_start(&x[3], pa[0], 0));
	ASSERT_EQ(both_ways_done(x, up, down, 51), T_PASS);
	ASSERT_OK(t_done_wait(&d2, 10000));
	ASSERT_EQ(d2.st.end, ZC_END_EOF);
	ASSERT_EQ(d2.st.mover, ctx->mover); /* the same engine has it */
	ASSERT_EQ(d2.st.dir[ZC_DIR_AB].bytes, up);
	ASSERT_EQ(d2.st.dir[ZC_DIR_BA].bytes, down);
	return hand_finish(&l1, &l2, &d1, &d2, pa[0], pb[1]);
}

/* Starts l on io_uring with mover as the loop's default (what an auto
 * relay adopted there moves with), or skips. */
static int uring_loop_with(struct t_loop *l, int mover)
{
	struct zc_loop_opts o;
	int err;

	zc_loop_opts_init(&o);
	o.engine = ZC_ENGINE_URING;
	setenv("ZC_MOVER", zc_mover_name(mover), 1);
	err = t_loop_start_opts(l, &o);
	unsetenv("ZC_MOVER");
	if (err == ZC_ENOURING)
		return t_skip("io_uring unavailable");
	return err < 0 ? T_FAIL : T_PASS;
}

/* An auto relay on epoll, holding bytes, is adopted by io_uring loops
 * whose movers are ring, then uring-splice: the pipe's bytes go out
 * first through each, then new ones. */
TEST(test_handover_epoll_to_uring_movers)
{
	static const int movers[] = {ZC_MOVER_RING, ZC_MOVER_URING_SPLICE};
	const uint64_t up = 8 * MIB + 5;
	struct t_ctx ep = {.mover = ZC_MOVER_AUTO, .engine = ZC_ENGINE_EPOLL};
	struct t_loop l1, l2;
	struct t_done d1, d2;
	struct t_xfer us, ur;
	struct hand h;
	int pa[2], pb[2];
	size_t i;

	ASSERT_OK(t_loop_start(&l1, &ep));
	for (i = 0; i < countof(movers); i++) {
		T_TRY(uring_loop_with(&l2, movers[i]));
		ASSERT_OK(t_pair(AF_INET, pa));
		ASSERT_OK(t_pair(AF_UNIX, pb));
		ASSERT_OK(
		        t_relay_run(&l1, pa[1], pb[0], ZC_MOVER_AUTO, 0, &d1));
		ASSERT_OK(
		        t_sender_start(&us, pa[0], up, 60 + i, T_XFER_SHUT_WR));
		ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_AB, 1));
		ASSERT_OK(wait_stalled(&l1, &d1, ZC_DIR_AB));
		ASSERT_TRUE(hand_move(&l1, &d1, &l2, &d2, &h) == &d2);
		ASSERT_GE(h.nfds, 4); /* a pipe of held bytes */
		ASSERT_OK(t_receiver_start(&ur, pb[1], 0));
		ASSERT_EQ(upload_done(&d2, &us, &ur, pb[1], up, 60 + i),
		          T_PASS);
		ASSERT_EQ(d2.st.mover, movers[i]);
		ASSERT_EQ(d2.st.engine, ZC_ENGINE_URING);
		ASSERT_OK(t_loop_stop(&l2));
		ASSERT_EQ(d1.calls, 0);
		close(pa[0]);
		close(pb[1]);
	}
	ASSERT_OK(t_loop_stop(&l1));
	return T_PASS;
}

static void read_loop_stats(struct zc_loop *loop, void *arg)
{
	zc_loop_get_stats(loop, arg);
}

/* What a ring direction had in flight when a detach was first asked. */
struct ring_seen {
	struct hand *h;
	unsigned qn, nzc;
	int sending, recving;
};

/* Detaches only at the moment the ring direction A->B holds received
 * buffers and waits for a SEND_ZC notification; else does nothing. */
static void detach_when_busy(struct zc_loop *loop, void *arg)
{
	struct ring_seen *w = arg;
	const struct zc_dir_ring *m;

	if (!w->h->from->relay) {
		w->h->rc = -ESRCH;
		return;
	}
	m = &w->h->from->relay->r_dir[ZC_DIR_AB].d_m.ring;
	if (!m->qn || !m->nzc)
		return;
	w->qn = m->qn;
	w->nzc = m->nzc;
	w->sending = m->sop != NULL;
	w->recving = m->rop != NULL;
	detach_fn(loop, w->h);
}

/* A ring loop with SEND_ZC from 4 KiB on, pipes of pipe_size bytes
 * (0: the default) and the given engine; or a skip. */
static int zc_ring_loop(struct t_loop *l, int engine, unsigned pipe_size)
{
	struct zc_loop_opts o;
	int err;

	zc_loop_opts_init(&o);
	o.engine = engine;
	o.ring_zc_min = 4096;
	o.pipe_size = pipe_size;
	err = t_loop_start_opts(l, &o);
	if (err == ZC_ENOURING)
		return t_skip("io_uring unavailable");
	return err < 0 ? T_FAIL : T_PASS;
}

/*
 * A large upload to a slow reader through the ring mover with SEND_ZC,
 * and a download at the same time. The detach comes while the multishot
 * recv has filled buffers that wait in the queue and a SEND_ZC is not
 * yet acknowledged: it answers -EAGAIN until the recv is cancelled and
 * reaped, the send finished or cancelled, every notification in; then
 * the queue travels in the record's pipe, in order. With pipes smaller
 * than the queue, the direction first sends until the rest fits.
 */
static int ring_settle_body(int to_engine, unsigned pipe_size)
{
	const uint64_t up = 96 * MIB + 3, down = 16 * MIB + 1;
	struct zc_loop_stats st;
	struct zc_relay_state s;
	struct t_loop l1, l2;
	struct t_done d1, d2;
	struct t_xfer x[4];
	struct ring_seen w;
	struct hand h;
	int pa[2], pb[2], i;

	T_TRY(zc_ring_loop(&l1, ZC_ENGINE_URING, pipe_size));
	T_TRY(zc_ring_loop(&l2, to_engine, 0));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ZC_MOVER_RING, 0, &d1));
	ASSERT_OK(t_sender_start(&x[0], pa[0], up, 71, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start_paced(&x[1], pb[1], 0, 64 * 1024, 2000));
	ASSERT_OK(t_sender_start(&x[2], pb[1], down, 72, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start_paced(&x[3], pa[0], 0, 64 * 1024, 2000));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_AB, 4 * MIB));
	memset(&h, 0, sizeof(h));
	memset(&w, 0, sizeof(w));
	h.from = &d1;
	h.len = sizeof(h.rec);
	h.rc = 1; /* not asked yet */
	w.h = &h;
	for (i = 0; i < 5000 && h.rc == 1; i++) {
		ASSERT_OK(t_loop_call(&l1, detach_when_busy, &w));
		if (h.rc == 1)
			t_sleep_ms(1);
	}
	t_log("first detach: %s, with %u buffers queued, %u SEND_ZC "
	      "notifications pending, send %s, recv %s",
	      zc_strerror(h.rc), w.qn, w.nzc, w.sending ? "in flight" : "-",
	      w.recving ? "in flight" : "-");
	ASSERT_EQ(h.rc, -EAGAIN);
	ASSERT_EQ(h.nfds, 0);
	ASSERT_EQ(hand_detach_again(&l1, &h), 0);
	ASSERT_EQ(
	        zc__relay_state_unpack(&s, h.rec, sizeof(h.rec), h.fds, h.nfds),
	        ZC_RELAY_STATE_LEN);
	t_log("settled after %d more calls; %u bytes held A->B, %u B->A",
	      h.tries, s.dir[0].inpipe, s.dir[1].inpipe);
	if (pipe_size)
		ASSERT_LE(s.dir[0].inpipe, pipe_size);
	/* The loop's only relay left no ring buffer behind: none queued,
	 * none still read by a send or pinned until a notification. */
	ASSERT_EQ(h.bufs, 0);
	ASSERT_EQ(hand_adopt(&l2, &h, &d2), 0);
	ASSERT_EQ(both_ways_done(x, up, down, 71), T_PASS);
	ASSERT_OK(t_done_wait(&d2, 20000));
	ASSERT_EQ(d2.st.end, ZC_END_EOF);
	ASSERT_EQ(d2.st.dir[ZC_DIR_AB].bytes, up);
	ASSERT_EQ(d2.st.dir[ZC_DIR_BA].bytes, down);
	/* Every buffer of the first loop is back: nothing was left with
	 * the kernel or a request. */
	ASSERT_OK(t_loop_call(&l1, read_loop_stats, &st));
	ASSERT_GT(st.ring_zc_sends, 0);
	ASSERT_EQ(st.ring_bufs_used, 0);
	return hand_finish(&l1, &l2, &d1, &d2, pa[0], pb[1]);
}

TEST_TIMEOUT(test_handover_ring_settles_zc_to_ring, 120)
{
	return ring_settle_body(ZC_ENGINE_URING, 0);
}

TEST_TIMEOUT(test_handover_ring_settles_zc_to_epoll, 120)
{
	return ring_settle_body(ZC_ENGINE_EPOLL, 0);
}

TEST_TIMEOUT(test_handover_ring_settles_small_pipes, 120)
{
	return ring_settle_body(ZC_ENGINE_URING, 64 * 1024);
}

/* A detach that must wait, not asked again: the relay resumes by
 * itself about a second later, and no byte is lost. */
TEST(test_handover_settle_abandoned_resumes)
{
	const uint64_t up = 32 * MIB + 9;
	struct t_loop l1;
	struct t_done d1;
	struct t_xfer us, ur;
	struct hand h;
	int pa[2], pb[2];

	T_TRY(zc_ring_loop(&l1, ZC_ENGINE_URING, 0));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_OK(t_relay_run(&l1, pa[1], pb[0], ZC_MOVER_RING, 0, &d1));
	ASSERT_OK(t_sender_start(&us, pa[0], up, 73, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start(&ur, pb[1], 0));
	ASSERT_OK(wait_bytes(&l1, &d1, ZC_DIR_AB, 1 * MIB));
	memset(&h, 0, sizeof(h));
	h.from = &d1;
	h.len = sizeof(h.rec);
	/* A recv is always armed while bytes flow: it must wait. */
	ASSERT_OK(t_loop_call(&l1, detach_fn, &h));
	ASSERT_EQ(h.rc, -EAGAIN);
	/* Settling, it receives nothing more (and sends what it had)... */
	ASSERT_OK(wait_stalled(&l1, &d1, ZC_DIR_AB));
	/* ...until it resumes on its own: the transfer completes. */
	ASSERT_EQ(upload_done(&d1, &us, &ur, pb[1], up, 73), T_PASS);
	return hand_finish(&l1, NULL, &d1, &d1, pa[0], pb[1]);
}

/* The peer of a detached relay reset its connection before the adopt:
 * the socket is no longer connected (getpeername says ENOTCONN), and is
 * adopted all the same; the relay's first read meets the reset. */
TEST(test_handover_adopt_disconnected_socket)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct t_loop l1, l2;
	struct t_done d1, d2;
	struct hand h;
	int pa[2], pb[2];

	ASSERT_EQ(idle_detached(&l1, &l2, &d1, &h, pa, pb), T_PASS);
	ASSERT_OK(t_set_linger0(pa[0]));
	close(pa[0]);
	t_sleep_ms(50);
	ASSERT_EQ(getpeername(pa[1], (struct sockaddr *)&ss, &sl), -1);
	ASSERT_EQ(errno, ENOTCONN);
	ASSERT_EQ(hand_adopt(&l2, &h, &d2), 0);
	ASSERT_OK(t_done_wait(&d2, 5000));
	ASSERT_EQ(d2.st.end, ZC_END_RESET);
	ASSERT_OK(t_loop_stop(&l1));
	ASSERT_OK(t_loop_stop(&l2));
	ASSERT_EQ(d1.calls, 0);
	close(pb[1]);
	return T_PASS;
}

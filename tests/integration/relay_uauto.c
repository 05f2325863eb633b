/*
 * relay_uauto.c - the auto mover of an io_uring loop (xfer_uauto.c):
 * small exchanges go through the buffer ring, a direction that turns
 * bulk splices on readiness, and one whose messages turn small again
 * goes back to the ring, each way and both at once, without losing or
 * reordering a byte. The rest of the suite runs on it as the uring:auto
 * variant.
 */
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "runner.h"
#include "tnet.h"

#define MIB (1024ULL * 1024ULL)

/* The switches the loop logged, per direction (0: a to b, 1: b to a). */
struct switches {
	atomic_int to_splice[2];
	atomic_int to_ring[2];
};

static void count_switch(void *arg, int level, const char *msg)
{
	struct switches *sw = arg;
	int idx = strncmp(msg, "dir 1:", 6) == 0;

	(void)level;
	if (strstr(msg, ": bulk: splicing"))
		atomic_fetch_add(&sw->to_splice[idx], 1);
	else if (strstr(msg, ": small again: ring"))
		atomic_fetch_add(&sw->to_ring[idx], 1);
}

/* An io_uring loop whose debug log counts the switches, or a skip. */
static int uauto_loop(struct t_loop *l, struct switches *sw)
{
	struct zc_loop_opts o;
	int err;

	memset(sw, 0, sizeof(*sw));
	zc_loop_opts_init(&o);
	o.engine = ZC_ENGINE_URING;
	o.log = count_switch;
	o.log_arg = sw;
	o.log_level = ZC_LOG_DEBUG;
	err = t_loop_start_opts(l, &o);
	if (err == ZC_ENOURING)
		return t_skip("io_uring unavailable");
	return err < 0 ? T_FAIL : T_PASS;
}

/* n exchanges of 64 bytes: request from c to u, answer back. */
static int exchanges(int c, int u, int n, int seed)
{
	char buf[64], got[64];
	int i;

	for (i = 0; i < n; i++) {
		memset(buf, 'a' + (seed + i) % 26, sizeof(buf));
		ASSERT_OK(t_write_all(c, buf, sizeof(buf)));
		ASSERT_EQ(t_read_full(u, got, sizeof(got), 5000), 64);
		ASSERT_MEMEQ(got, buf, sizeof(buf));
		buf[0] ^= 0x20;
		ASSERT_OK(t_write_all(u, buf, sizeof(buf)));
		ASSERT_EQ(t_read_full(c, got, sizeof(got), 5000), 64);
		ASSERT_MEMEQ(got, buf, sizeof(buf));
	}
	return T_PASS;
}

/* n messages of 64 bytes from one end to the other, one at a time. */
static int exchanges_one_way(int from, int to, int n)
{
	char buf[64], got[64];
	int i;

	for (i = 0; i < n; i++) {
		memset(buf, 'A' + i % 26, sizeof(buf));
		ASSERT_OK(t_write_all(from, buf, sizeof(buf)));
		ASSERT_EQ(t_read_full(to, got, sizeof(got), 5000), 64);
		ASSERT_MEMEQ(got, buf, sizeof(buf));
	}
	return T_PASS;
}

static void get_loop_stats(struct zc_loop *loop, void *arg)
{
	zc_loop_get_stats(loop, arg);
}

/*
 * Small, bulk, small, bulk on one relay (c = pa[0], u = pb[1]): the
 * small stretches are received into the ring (copied, the ring
 * registered), each bulk stretch switches its direction to splice, and
 * the small messages after it switch it back.
 */
static int switch_and_back(int family)
{
	struct zc_loop_stats ls;
	struct zc_relay_stats st;
	struct switches sw;
	struct t_loop l;
	struct t_done d;
	int pa[2], pb[2];

	T_TRY(uauto_loop(&l, &sw));
	ASSERT_OK(t_pair(family, pa));
	ASSERT_OK(t_pair(family, pb));
	ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ZC_MOVER_AUTO, 0, &d), 0);
	T_TRY(exchanges(pa[0], pb[1], 50, 0));
	ASSERT_EQ(t_loop_call(&l, get_loop_stats, &ls), 0);
	ASSERT_GT(ls.ring_bufs, 0);
	ASSERT_EQ(t_relay_stats(&l, &d, &st), 0);
	ASSERT_EQ(st.mover, ZC_MOVER_AUTO);
	ASSERT_EQ(st.dir[0].copied, 50 * 64);
	ASSERT_EQ(st.dir[1].copied, 50 * 64);
	ASSERT_EQ(atomic_load(&sw.to_splice[0]) + atomic_load(&sw.to_splice[1]),
	          0);

	/* Bulk down, then up: each direction splices. */
	T_TRY(t_xfer_check_open(pb[1], pa[0], 16 * MIB, 90));
	T_TRY(t_xfer_check_open(pa[0], pb[1], 16 * MIB, 91));
	ASSERT_EQ(atomic_load(&sw.to_splice[0]), 1);
	ASSERT_EQ(atomic_load(&sw.to_splice[1]), 1);
	ASSERT_EQ(t_relay_stats(&l, &d, &st), 0);
	ASSERT_GT(st.dir[0].spliced, 12 * MIB);
	ASSERT_GT(st.dir[1].spliced, 12 * MIB);

	/* Small again: back to the ring after a few small splices. */
	T_TRY(exchanges(pa[0], pb[1], 50, 7));
	ASSERT_EQ(atomic_load(&sw.to_ring[0]), 1);
	ASSERT_EQ(atomic_load(&sw.to_ring[1]), 1);

	/* Both ways bulk at once, to the end: both splice again. */
	T_TRY(t_xfer_both_ways(pa[0], pb[1], 32 * MIB, 24 * MIB, 92));
	ASSERT_EQ(t_done_wait(&d, 10000), 0);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	ASSERT_EQ(atomic_load(&sw.to_splice[0]), 2);
	ASSERT_EQ(atomic_load(&sw.to_splice[1]), 2);
	ASSERT_EQ(d.st.dir[0].bytes, 100 * 64 + 16 * MIB + 32 * MIB);
	ASSERT_EQ(d.st.dir[1].bytes, 100 * 64 + 16 * MIB + 24 * MIB);
	t_log("a to b: %llu copied, %llu spliced; b to a: %llu, %llu",
	      (unsigned long long)d.st.dir[0].copied,
	      (unsigned long long)d.st.dir[0].spliced,
	      (unsigned long long)d.st.dir[1].copied,
	      (unsigned long long)d.st.dir[1].spliced);
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

TEST(test_relay_uring_auto_ring_splice_ring_tcp)
{
	return switch_and_back(AF_INET);
}

TEST(test_relay_uring_auto_ring_splice_ring_unix)
{
	return switch_and_back(AF_UNIX);
}

/*
 * A peer that sends bulk while its answers stay small: one direction
 * splices while the other stays on the ring, and the small direction's
 * messages interleave with the bulk one's without loss.
 */
TEST(test_relay_uring_auto_one_way_bulk_other_small)
{
	struct switches sw;
	struct t_loop l;
	struct t_done d;
	struct t_xfer snd, rcv;
	int pa[2], pb[2];

	T_TRY(uauto_loop(&l, &sw));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ZC_MOVER_AUTO, 0, &d), 0);
	ASSERT_OK(t_sender_start(&snd, pa[0], 48 * MIB, 93, T_XFER_SHUT_WR));
	ASSERT_OK(t_receiver_start(&rcv, pb[1], 0));
	/* b to a: small messages while a to b is bulk. */
	T_TRY(exchanges_one_way(pb[1], pa[0], 200));
	ASSERT_EQ(t_xfer_join_ms(&snd, 60000), 0);
	ASSERT_EQ(t_xfer_join_ms(&rcv, 60000), 0);
	ASSERT_EQ(rcv.bytes, 48 * MIB);
	ASSERT_TRUE(rcv.eof);
	ASSERT_MEMEQ(rcv.digest, snd.digest, sizeof(snd.digest));
	shutdown(pb[1], SHUT_WR);
	ASSERT_EQ(t_done_wait(&d, 10000), 0);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	ASSERT_EQ(atomic_load(&sw.to_splice[0]), 1);
	ASSERT_EQ(atomic_load(&sw.to_splice[1]), 0);
	ASSERT_EQ(d.st.dir[1].bytes, 200 * 64);
	ASSERT_EQ(d.st.dir[1].spliced, 0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

/* An epoll loop's auto is the readiness one: no buffer ring. */
TEST(test_relay_epoll_auto_has_no_ring)
{
	struct zc_loop_stats ls;
	struct zc_loop_opts o;
	struct t_loop l;
	struct t_done d;
	int pa[2], pb[2];

	zc_loop_opts_init(&o);
	o.engine = ZC_ENGINE_EPOLL;
	ASSERT_EQ(t_loop_start_opts(&l, &o), 0);
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ZC_MOVER_AUTO, 0, &d), 0);
	T_TRY(exchanges(pa[0], pb[1], 10, 3));
	ASSERT_EQ(t_loop_call(&l, get_loop_stats, &ls), 0);
	ASSERT_EQ(ls.ring_bufs, 0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

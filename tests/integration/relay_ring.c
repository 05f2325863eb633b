/*
 * relay_ring.c - what only the ring mover (io_uring recv into a
 * provided-buffer ring, send/SEND_ZC) has: relays closed with recv, send
 * and SEND_ZC requests in flight, thousands of times; an empty ring;
 * buffers held only while bytes are; the copy fallback on epoll; option
 * checks. The rest of the suite runs on it as the uring:ring variant.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "loop.h"
#include "runner.h"
#include "tnet.h"

#define MIB (1024ULL * 1024ULL)

/* Starts a uring loop with these ring options, or skips. */
static int ring_loop(struct t_loop *l, unsigned nbufs, unsigned zc_min)
{
	struct zc_loop_opts o;
	int err;

	zc_loop_opts_init(&o);
	o.engine = ZC_ENGINE_URING;
	o.ring_bufs = nbufs;
	o.ring_zc_min = zc_min;
	err = t_loop_start_opts(l, &o);
	if (err == ZC_ENOURING)
		return t_skip("io_uring unavailable");
	return err < 0 ? T_FAIL : T_PASS;
}

/* Sends what fits of buf now (at least one byte), in 64 KiB pieces
 * (a Unix socket refuses a piece larger than its buffer). */
static int t_send_some(int fd, const char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = send(fd, buf + off, len - off < 65536 ? len - off : 65536,
		         MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	return off ? 0 : -errno;
}

static void read_stats(struct zc_loop *loop, void *arg)
{
	zc_loop_get_stats(loop, arg);
}

/* Waits up to 5 s for every ring buffer to be back (requests of closed
 * relays give theirs back on their last CQE, after done). */
static int ring_settled(struct t_loop *l, struct zc_loop_stats *st)
{
	int i;

	for (i = 0; i < 500; i++) {
		ASSERT_OK(t_loop_call(l, read_stats, st));
		if (st->ring_bufs_used == 0)
			return T_PASS;
		t_sleep_ms(10);
	}
	return t_fail(__FILE__, __LINE__, "%llu ring buffers still used",
	              (unsigned long long)st->ring_bufs_used);
}

/* Starts n ring relays on fresh TCP pairs; our ends go to cli/srv. */
static int ring_relays(struct t_loop *l, int n, int *cli, int *srv,
                       struct t_done *d)
{
	int i, pa[2], pb[2];

	for (i = 0; i < n; i++) {
		ASSERT_OK(t_pair(AF_INET, pa));
		ASSERT_OK(t_pair(AF_INET, pb));
		ASSERT_EQ(t_relay_run(l, pa[1], pb[0], ZC_MOVER_RING, 0, &d[i]),
		          0);
		cli[i] = pa[0];
		srv[i] = pb[1];
	}
	return T_PASS;
}

/*
 * Relays closed while their requests are in flight: bytes are being
 * received (multishot recv), sent to a reader that never reads (send
 * and SEND_ZC blocked in the kernel, notifications pending), in both
 * directions. Every way a relay ends: zc_relay_close(), a client reset,
 * a plain close. Each relay reports once, nothing leaks (fds: the
 * runner; buffers: the loop's counters); ASan sees any late write.
 */
TEST_TIMEOUT(test_ring_close_in_flight, 300)
{
	static char junk[512 * 1024];
	struct zc_loop_stats st;
	struct t_loop l;
	struct t_done d;
	int i, pa[2], pb[2];

	/* SEND_ZC from 4 KiB on: most sends are zero-copy. */
	T_TRY(ring_loop(&l, 64, 4096));
	for (i = 0; i < 3000; i++) {
		ASSERT_OK(t_pair(AF_INET, pa));
		ASSERT_OK(t_pair(i % 4 == 3 ? AF_UNIX : AF_INET, pb));
		ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ZC_MOVER_RING, 0, &d),
		          0);
		/* Bytes both ways, more than the socket buffers take. */
		ASSERT_OK(t_send_some(pa[0], junk, sizeof(junk)));
		ASSERT_OK(t_send_some(pb[1], junk, i % 2 ? sizeof(junk) : 100));
		if (i % 8 == 0)
			t_sleep_ms(1); /* let some sends block in the kernel */
		switch (i % 3) {
		case 0:
			ASSERT_EQ(t_relay_close(&l, &d), 0);
			ASSERT_EQ(d.st.end, ZC_END_ABORTED);
			break;
		case 1:
			ASSERT_OK(t_set_linger0(pa[0]));
			break;
		default:
			break;
		}
		close(pa[0]);
		close(pb[1]);
		ASSERT_EQ(t_done_wait(&d, 10000), 0);
		ASSERT_EQ(d.calls, 1);
		ASSERT_EQ(d.st.mover, ZC_MOVER_RING);
	}
	ASSERT_EQ(ring_settled(&l, &st), T_PASS);
	t_log("%llu SEND_ZC, %llu spare recvs",
	      (unsigned long long)st.ring_zc_sends,
	      (unsigned long long)st.ring_shortage);
	ASSERT_GT(st.ring_zc_sends, 0);
	ASSERT_EQ(st.relays_active, 0);
	ASSERT_EQ(st.bufs_used, 0);
	ASSERT_EQ(t_loop_stop(&l), 0);
	return T_PASS;
}

/* The loop freed with relays mid-transfer and requests in flight. */
TEST(test_ring_loop_free_in_flight)
{
	static char junk[256 * 1024];
	struct t_done d[16];
	struct t_loop l;
	int i, cli[16], srv[16];

	T_TRY(ring_loop(&l, 16, 4096));
	ASSERT_EQ(ring_relays(&l, 16, cli, srv, d), T_PASS);
	for (i = 0; i < 16; i++)
		ASSERT_OK(t_send_some(cli[i], junk, sizeof(junk)));
	t_sleep_ms(50);
	ASSERT_EQ(t_loop_stop(&l), 0); /* aborts them all, frees the ring */
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(d[i].calls, 1);
		ASSERT_EQ(d[i].st.end, ZC_END_ABORTED);
	}
	for (i = 0; i < 16; i++) {
		close(cli[i]);
		close(srv[i]);
	}
	return T_PASS;
}

/*
 * A ring of 2 buffers and two relays whose readers sleep: between them
 * they hold the whole ring. A third relay must still move 8 MiB
 * byte-exact (spare buffers, ring_shortage), then the stalled ones
 * finish too.
 */
TEST(test_ring_empty_ring_no_stall)
{
	unsigned char want[T_SHA256_LEN];
	struct t_xfer s[3], r[3];
	struct zc_loop_stats st;
	struct t_loop l;
	struct t_done d[3];
	int a[3][2], b[3][2], i;

	T_TRY(ring_loop(&l, 2, 0));
	for (i = 0; i < 3; i++) {
		ASSERT_OK(t_pair(AF_INET, a[i]));
		ASSERT_OK(t_pair(i == 2 ? AF_UNIX : AF_INET, b[i]));
		ASSERT_EQ(t_relay_run(&l, a[i][1], b[i][0], ZC_MOVER_RING, 0,
		                      &d[i]),
		          0);
	}
	for (i = 0; i < 2; i++)
		ASSERT_OK(t_sender_start(&s[i], a[i][0], 32 * MIB, 81 + i,
		                         T_XFER_SHUT_WR));
	for (i = 0; i < 100; i++) {
		ASSERT_OK(t_loop_call(&l, read_stats, &st));
		if (st.ring_bufs_used == 2)
			break;
		t_sleep_ms(20);
	}
	t_log("stalled: %llu ring buffers used, %llu spare recvs",
	      (unsigned long long)st.ring_bufs_used,
	      (unsigned long long)st.ring_shortage);
	ASSERT_EQ(st.ring_bufs, 2);
	/* Usually the stalled directions hold both. A direction that had
	 * to receive into spares while the other held the ring may have
	 * sent its ring buffer and stalled on spares alone: one is free
	 * then, and the third relay still runs short of ring buffers. */
	ASSERT_GE(st.ring_bufs_used, 1);
	ASSERT_OK(t_receiver_start(&r[2], b[2][1], 0));
	ASSERT_OK(t_sender_start(&s[2], a[2][0], 8 * MIB + 1, 83,
	                         T_XFER_SHUT_WR));
	ASSERT_EQ(t_xfer_join(&s[2]), 0);
	ASSERT_EQ(t_xfer_join(&r[2]), 0);
	ASSERT_OK(t_loop_call(&l, read_stats, &st));
	ASSERT_GT(st.ring_shortage, 0); /* spares were used */
	for (i = 0; i < 2; i++)
		ASSERT_OK(t_receiver_start(&r[i], b[i][1], 0));
	for (i = 0; i < 3; i++) {
		uint64_t n = i == 2 ? 8 * MIB + 1 : 32 * MIB;

		if (i < 2)
			ASSERT_EQ(t_xfer_join(&s[i]), 0);
		ASSERT_EQ(t_xfer_join(&r[i]), 0);
		t_expect_digest(81 + i, n, want);
		ASSERT_EQ(r[i].bytes, n);
		ASSERT_MEMEQ(r[i].digest, want, T_SHA256_LEN);
		shutdown(b[i][1], SHUT_WR);
		ASSERT_EQ(t_done_wait(&d[i], 5000), 0);
		ASSERT_EQ(d[i].st.end, ZC_END_EOF);
		close(a[i][0]);
		close(b[i][1]);
	}
	ASSERT_EQ(ring_settled(&l, &st), T_PASS);
	t_log("%llu recvs into spares", (unsigned long long)st.ring_shortage);
	ASSERT_EQ(t_loop_stop(&l), 0);
	return T_PASS;
}

/* Idle relays hold no ring buffer: the kernel takes one only when bytes
 * arrive, and it comes back once they are sent. */
TEST(test_ring_idle_holds_no_buffer)
{
	struct zc_loop_stats st;
	struct t_done d[50];
	struct t_loop l;
	int i, cli[50], srv[50];
	char x;

	T_TRY(ring_loop(&l, 0, 0));
	ASSERT_EQ(ring_relays(&l, 50, cli, srv, d), T_PASS);
	ASSERT_OK(t_loop_call(&l, read_stats, &st));
	ASSERT_EQ(st.ring_bufs, 256); /* the default */
	ASSERT_EQ(st.ring_bufs_used, 0);
	for (i = 0; i < 50; i++) {
		ASSERT_OK(t_write_all(cli[i], "u", 1));
		ASSERT_EQ(t_read_full(srv[i], &x, 1, 5000), 1);
		ASSERT_OK(t_write_all(srv[i], "d", 1));
		ASSERT_EQ(t_read_full(cli[i], &x, 1, 5000), 1);
	}
	ASSERT_EQ(ring_settled(&l, &st), T_PASS);
	ASSERT_EQ(st.bufs_used, 0);
	for (i = 0; i < 50; i++) {
		close(cli[i]);
		close(srv[i]);
		ASSERT_EQ(t_done_wait(&d[i], 5000), 0);
	}
	ASSERT_EQ(t_loop_stop(&l), 0);
	return T_PASS;
}

/* On epoll the ring mover copies, and says so. */
TEST(test_ring_on_epoll_copies)
{
	struct t_ctx ep = {ZC_MOVER_RING, ZC_ENGINE_EPOLL, NULL};
	struct t_loop l;
	struct t_done d;
	int pa[2], pb[2];

	ASSERT_OK(t_loop_start(&l, &ep));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ZC_MOVER_RING, 0, &d), 0);
	ASSERT_EQ(t_xfer_check(pa[0], pb[1], 4 * MIB, 91), T_PASS);
	shutdown(pb[1], SHUT_WR);
	ASSERT_EQ(t_done_wait(&d, 5000), 0);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	ASSERT_EQ(d.st.engine, ZC_ENGINE_EPOLL);
	ASSERT_EQ(d.st.mover, ZC_MOVER_COPY);
	ASSERT_EQ(d.st.dir[ZC_DIR_AB].fallback, -EOPNOTSUPP);
	ASSERT_EQ(d.st.dir[ZC_DIR_AB].copied, 4 * MIB);
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

/* A kernel without the multishot recv byte limit (before 6.17) refuses
 * it with -EINVAL: the recv is submitted again without one, the relay
 * never sees the error, and the cancel alone bounds a slow reader. */
TEST(test_ring_recv_limit_refused)
{
	struct t_done d;
	struct t_loop l;
	int pa[2], pb[2];

	zc__uring_inject_recv_einval = 1; /* the test's child process only */
	T_TRY(ring_loop(&l, 0, 0));
	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_INET, pb));
	ASSERT_EQ(t_relay_run(&l, pa[1], pb[0], ZC_MOVER_RING, 0, &d), 0);
	ASSERT_EQ(t_xfer_check(pa[0], pb[1], 32 * MIB + 5, 95), T_PASS);
	ASSERT_EQ(t_xfer_check(pb[1], pa[0], 3 * MIB, 96), T_PASS);
	ASSERT_EQ(t_done_wait(&d, 5000), 0);
	ASSERT_EQ(d.st.end, ZC_END_EOF);
	ASSERT_EQ(d.st.dir[ZC_DIR_AB].bytes, 32 * MIB + 5);
	ASSERT_EQ(t_loop_stop(&l), 0);
	close(pa[0]);
	close(pb[1]);
	return T_PASS;
}

TEST(test_ring_opts_checked)
{
	struct zc_loop_opts o;
	struct zc_loop *loop;

	zc_loop_opts_init(&o);
	o.ring_bufs = 3; /* not a power of two */
	ASSERT_ERR(zc_loop_new(&loop, &o), -EINVAL);
	o.ring_bufs = 65536;
	ASSERT_ERR(zc_loop_new(&loop, &o), -EINVAL);
	o.ring_bufs = 8;
	o.ring_buf_size = 2 * 1024 * 1024;
	ASSERT_ERR(zc_loop_new(&loop, &o), -EINVAL);
	ASSERT_STREQ(zc_mover_name(ZC_MOVER_RING), "ring");
	return T_PASS;
}

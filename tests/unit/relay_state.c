/*
 * unit/relay_state.c - a detached relay's wire form: round trips, fd
 * indexes shared by several relays, and every kind of record refused.
 */
#include <errno.h>
#include <string.h>

#include "runner.h"
#include "relay_state.h"

/* A relay mid-transfer: A->B has 5 bytes in a pipe, B->A forwarded EOF. */
static void sample(struct zc_relay_state *s)
{
	memset(s, 0, sizeof(*s));
	s->fd_a = 10;
	s->fd_b = 11;
	s->mover = ZC_MOVER_SPLICE;
	s->flags = ZC_RELAY_F_KEEP_FDS;
	s->idle_timeout_ms = 60000;
	s->halfclose_timeout_ms = 5000;
	s->age_ns = 50ULL * 1000000000ULL;
	s->quiet_ns = 7ULL * 1000000000ULL;
	s->dir[0].phase = ZC_PHASE_OPEN;
	s->dir[0].st.bytes = (1ULL << 40) + 3;
	s->dir[0].st.spliced = 1ULL << 40;
	s->dir[0].st.copied = 3;
	s->dir[0].st.fallback = -EINVAL;
	s->dir[0].pipe_rd = 12;
	s->dir[0].pipe_wr = 13;
	s->dir[0].inpipe = 5;
	s->dir[1].phase = ZC_PHASE_EOF_SENT;
	s->dir[1].st.fin = 1;
	s->dir[1].st.bytes = 99;
	s->dir[1].st.copied = 99;
	s->dir[1].pipe_rd = -1;
	s->dir[1].pipe_wr = -1;
}

TEST(test_relay_state_round_trip)
{
	struct zc_relay_state s, back;
	uint8_t rec[ZC_RELAY_STATE_LEN + 8];
	int fds[ZC_RELAY_STATE_FDS];
	unsigned n = 0;

	sample(&s);
	ASSERT_EQ(zc__relay_state_pack(&s, rec, sizeof(rec), fds, &n),
	          ZC_RELAY_STATE_LEN);
	ASSERT_EQ(n, 4); /* two sockets, one pipe's two ends */
	ASSERT_EQ(fds[0], 10);
	ASSERT_EQ(fds[3], 13);
	ASSERT_MEMEQ(rec, "ZCRS", 4);
	ASSERT_EQ(zc__relay_state_unpack(&back, rec, sizeof(rec), fds, n),
	          ZC_RELAY_STATE_LEN);
	ASSERT_MEMEQ(&back, &s, sizeof(s));
	return T_PASS;
}

/* Two relays share one fd array (one SCM_RIGHTS message). */
TEST(test_relay_state_shared_fd_array)
{
	struct zc_relay_state s1, s2, b1, b2;
	uint8_t rec[2 * ZC_RELAY_STATE_LEN];
	int fds[2 * ZC_RELAY_STATE_FDS];
	unsigned n = 0;

	sample(&s1);
	sample(&s2);
	s2.fd_a = 20;
	s2.fd_b = 21;
	s2.dir[0].pipe_rd = 22;
	s2.dir[0].pipe_wr = 23;
	ASSERT_EQ(zc__relay_state_pack(&s1, rec, sizeof(rec), fds, &n),
	          ZC_RELAY_STATE_LEN);
	ASSERT_EQ(zc__relay_state_pack(&s2, rec + ZC_RELAY_STATE_LEN,
	                               ZC_RELAY_STATE_LEN, fds, &n),
	          ZC_RELAY_STATE_LEN);
	ASSERT_EQ(n, 8);
	ASSERT_EQ(fds[4], 20);
	ASSERT_EQ(zc__relay_state_unpack(&b1, rec, ZC_RELAY_STATE_LEN, fds, n),
	          ZC_RELAY_STATE_LEN);
	ASSERT_EQ(zc__relay_state_unpack(&b2, rec + ZC_RELAY_STATE_LEN,
	                                 ZC_RELAY_STATE_LEN, fds, n),
	          ZC_RELAY_STATE_LEN);
	ASSERT_MEMEQ(&b1, &s1, sizeof(s1));
	ASSERT_MEMEQ(&b2, &s2, sizeof(s2));
	/* Without the second relay's fds its record does not resolve. */
	ASSERT_EQ(zc__relay_state_unpack(&b2, rec + ZC_RELAY_STATE_LEN,
	                                 ZC_RELAY_STATE_LEN, fds, 4),
	          -EBADMSG);
	return T_PASS;
}

TEST(test_relay_state_check_refuses)
{
	struct zc_relay_state s;

	sample(&s);
	ASSERT_EQ(zc__relay_state_check(&s), 0);
	s.fd_b = s.fd_a; /* the same fd twice */
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.dir[0].pipe_wr = s.fd_b;
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.mover = ZC_MOVER_URING_SPLICE + 1;
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.flags = ZC_RELAY_F_TRUSTED; /* means nothing for a resumed relay */
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.quiet_ns = s.age_ns + 1; /* quiet for longer than it lived */
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.dir[0].inpipe = 0; /* a pipe travels only with bytes */
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.dir[0].pipe_wr = -1; /* and with both ends */
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.dir[1].inpipe = 1; /* bytes without a pipe */
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.dir[1].st.fin = 0; /* EOF sent but not counted as forwarded */
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.dir[0].st.copied++; /* counters that do not add up */
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.dir[0].phase = ZC_PHASE_EOF_SENT; /* EOF forwarded, bytes held */
	s.dir[0].st.fin = 1;
	ASSERT_EQ(zc__relay_state_check(&s), -EINVAL);
	sample(&s);
	s.dir[0].phase = ZC_PHASE_EOF_READ; /* EOF read, bytes to flush */
	ASSERT_EQ(zc__relay_state_check(&s), 0);
	return T_PASS;
}

TEST(test_relay_state_pack_refuses)
{
	struct zc_relay_state s;
	uint8_t rec[ZC_RELAY_STATE_LEN];
	int fds[ZC_RELAY_STATE_FDS];
	unsigned n = 0;

	sample(&s);
	ASSERT_EQ(zc__relay_state_pack(&s, rec, sizeof(rec) - 1, fds, &n),
	          -ENOSPC);
	ASSERT_EQ(n, 0);
	s.error = 5; /* errors are negative */
	ASSERT_EQ(zc__relay_state_pack(&s, rec, sizeof(rec), fds, &n), -EINVAL);
	ASSERT_EQ(n, 0);
	return T_PASS;
}

/* A valid record with one field changed by the caller's edit. */
static int unpack_edited(size_t off, uint8_t val)
{
	struct zc_relay_state s, back;
	uint8_t rec[ZC_RELAY_STATE_LEN];
	int fds[ZC_RELAY_STATE_FDS];
	unsigned n = 0;

	sample(&s);
	if (zc__relay_state_pack(&s, rec, sizeof(rec), fds, &n) < 0)
		return -EFAULT;
	rec[off] = val;
	return zc__relay_state_unpack(&back, rec, sizeof(rec), fds, n);
}

TEST(test_relay_state_unpack_refuses)
{
	struct zc_relay_state s, back;
	uint8_t rec[ZC_RELAY_STATE_LEN];
	int fds[ZC_RELAY_STATE_FDS];
	unsigned n = 0;

	ASSERT_EQ(unpack_edited(4, 2), -EPROTONOSUPPORT);   /* version 2 */
	ASSERT_EQ(unpack_edited(0, 'X'), -EPROTONOSUPPORT); /* magic */
	ASSERT_EQ(unpack_edited(6, 129), -EBADMSG);         /* length */
	ASSERT_EQ(unpack_edited(10, 1), -EBADMSG);          /* reserved */
	ASSERT_EQ(unpack_edited(45, 1), -EBADMSG);          /* reserved */
	ASSERT_EQ(unpack_edited(8, 77), -EBADMSG);          /* mover */
	ASSERT_EQ(unpack_edited(40, 9), -EBADMSG);      /* fd index past nfds */
	ASSERT_EQ(unpack_edited(42, 0), -EBADMSG);      /* fd_b is fd_a */
	ASSERT_EQ(unpack_edited(48 + 1, 2), -EBADMSG);  /* fin is 0 or 1 */
	ASSERT_EQ(unpack_edited(48 + 0, 3), -EBADMSG);  /* phase */
	ASSERT_EQ(unpack_edited(88 + 32, 1), -EBADMSG); /* bytes, no pipe */
	ASSERT_EQ(unpack_edited(48 + 8, 0), -EBADMSG);  /* counters */
	sample(&s);
	ASSERT_EQ(zc__relay_state_pack(&s, rec, sizeof(rec), fds, &n),
	          ZC_RELAY_STATE_LEN);
	ASSERT_EQ(zc__relay_state_unpack(&back, rec, sizeof(rec) - 1, fds, n),
	          -EBADMSG); /* short */
	ASSERT_EQ(zc__relay_state_unpack(&back, rec, 7, fds, n), -EBADMSG);
	fds[1] = -1; /* the array has a hole where fd_b should be */
	ASSERT_EQ(zc__relay_state_unpack(&back, rec, sizeof(rec), fds, n),
	          -EBADMSG);
	return T_PASS;
}

/* Whatever single byte changes, unpack either refuses the record or
 * reads a relay that packs back to exactly those bytes (one wire form
 * per relay). */
TEST(test_relay_state_every_byte_canonical)
{
	struct zc_relay_state s, back;
	uint8_t rec[ZC_RELAY_STATE_LEN], again[ZC_RELAY_STATE_LEN];
	int fds[ZC_RELAY_STATE_FDS], fds2[ZC_RELAY_STATE_FDS];
	unsigned n, n2, off, bit, accepted = 0;
	uint8_t keep;

	sample(&s);
	n = 0;
	ASSERT_EQ(zc__relay_state_pack(&s, rec, sizeof(rec), fds, &n),
	          ZC_RELAY_STATE_LEN);
	for (off = 0; off < sizeof(rec); off++) {
		for (bit = 0; bit < 8; bit++) {
			keep = rec[off];
			rec[off] ^= (uint8_t)(1u << bit);
			if (zc__relay_state_unpack(&back, rec, sizeof(rec), fds,
			                           n) > 0) {
				n2 = 0;
				ASSERT_EQ(zc__relay_state_pack(&back, again,
				                               sizeof(again),
				                               fds2, &n2),
				          ZC_RELAY_STATE_LEN);
				ASSERT_MEMEQ(again, rec, sizeof(rec));
				accepted++;
			}
			rec[off] = keep;
		}
	}
	/* Flips of timeouts, ages and the error are valid relays too. */
	ASSERT_GT(accepted, 100);
	return T_PASS;
}

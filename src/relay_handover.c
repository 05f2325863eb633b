/*
 * relay_handover.c - zc_relay_detach and zc_relay_adopt: a live relay
 * leaves one loop as a record and its fds, and resumes on another loop,
 * in this process or another one (docs/internals/relay-state.md).
 */
#include "compat.h"

#include <stdlib.h>

#include "dir.h"
#include "relay.h"
#include "relay_state.h"
#include "sock.h"

/* How long a relay whose detach answered -EAGAIN waits, settled, for
 * the next attempt before it resumes by itself. */
#define SETTLE_NS (1000ULL * 1000000ULL)

/* The relay's own part of its state; the directions add theirs. */
static void state_head(const struct zc_relay *r, struct zc_relay_state *s)
{
	uint64_t now = zc__clock_ns(), last = zc__loop_now(r->r_loop);

	s->fd_a = r->r_side[0].s_fd;
	s->fd_b = r->r_side[1].s_fd;
	s->mover = r->r_dir[0].d_ops->mover;
	s->flags = r->r_flags & ZC_RELAY_F_KEEP_FDS;
	s->idle_timeout_ms = r->r_idle_ms;
	s->halfclose_timeout_ms = r->r_half_ms;
	s->error = 0;
	s->age_ns = now > r->r_start ? now - r->r_start : 0;
	s->quiet_ns = last > r->r_last ? last - r->r_last : 0;
	if (s->quiet_ns > s->age_ns)
		s->quiet_ns = s->age_ns;
}

/* The directions are still settling: the caller has SETTLE_NS to try
 * again before the relay resumes by itself. -EAGAIN, or -ENOMEM (no
 * timer: it resumes now). */
static int relay_settle_wait(struct zc_relay *r)
{
	if (zc__relay_settle_wait(r, SETTLE_NS)) {
		zc__relay_settle_end(r);
		return -ENOMEM;
	}
	return -EAGAIN;
}

/* Asks both directions' movers to settle (both at once, so that they
 * settle in parallel). 0 when both have, else the first error other
 * than -EAGAIN, else -EAGAIN. */
static int relay_settle(struct zc_relay *r)
{
	int i, e, err = 0, again = 0;

	for (i = 0; i < 2; i++) {
		e = zc__dir_settle(r->r_loop, &r->r_dir[i]);
		if (e == -EAGAIN)
			again = 1;
		else if (e && !err)
			err = e;
	}
	return err ? err : again ? -EAGAIN : 0;
}

int zc_relay_detach(struct zc_relay *relay, void *rec, size_t len, int *fds,
                    unsigned *nfds)
{
	struct zc_pipe *made[2] = {NULL, NULL};
	struct zc_relay_state s;
	int i, err;

	if (!relay || !rec || !fds || !nfds || relay->r_closing)
		return -EINVAL;
	if (len < ZC_RELAY_STATE_LEN)
		return -ENOSPC;
	err = relay_settle(relay);
	if (err)
		goto undo;
	state_head(relay, &s);
	for (i = 0; i < 2; i++) {
		err = zc__dir_detach_prepare(relay->r_loop, &relay->r_dir[i],
		                             &s.dir[i], &made[i]);
		if (err)
			goto undo;
	}
	err = zc__relay_state_pack(&s, rec, len, fds, nfds);
	if (err < 0)
		goto undo;
	zc__relay_end_detached(relay, made);
	return 0;
undo:
	for (i = 0; i < 2; i++)
		zc__dir_detach_undo(relay->r_loop, made[i]);
	if (err == -EAGAIN)
		return relay_settle_wait(relay);
	zc__relay_settle_end(relay);
	return err;
}

/* Gives the adopted relay its past: counters, phases, held bytes, and
 * the time spent against its deadlines. */
static int adopt_past(struct zc_relay *r, const struct zc_relay_state *s)
{
	uint64_t now = zc__clock_ns(), last = zc__loop_now(r->r_loop);
	int i, err;

	r->r_start = now > s->age_ns ? now - s->age_ns : 0;
	r->r_last = last > s->quiet_ns ? last - s->quiet_ns : 0;
	for (i = 0; i < 2; i++) {
		err = zc__dir_adopt(r->r_loop, &r->r_dir[i], &s->dir[i]);
		if (err) {
			while (i-- > 0)
				zc__dir_adopt_undo(r->r_loop, &r->r_dir[i]);
			return err;
		}
	}
	r->r_half = s->dir[0].phase == ZC_PHASE_EOF_SENT ||
	            s->dir[1].phase == ZC_PHASE_EOF_SENT;
	return 0;
}

int zc_relay_adopt(struct zc_relay **out, struct zc_loop *loop, const void *rec,
                   size_t len, const int *fds, unsigned nfds,
                   zc_relay_done_fn *done, void *arg)
{
	struct zc_relay_state s;
	struct zc_relay_opts o;
	struct zc_relay *r;
	int i, err;

	if (!loop || !rec)
		return -EINVAL;
	err = zc__relay_state_unpack(&s, rec, len, fds, nfds);
	if (err < 0)
		return err;
	zc_relay_opts_init(&o);
	o.mover = s.mover;
	o.flags = s.flags;
	o.idle_timeout_ms = s.idle_timeout_ms;
	o.halfclose_timeout_ms = s.halfclose_timeout_ms;
	/* Two stream sockets, but not necessarily connected any more: a
	 * peer may have closed both ways or reset since the relay was
	 * detached, which its next read or write reports as it would have
	 * on the old loop. Distinct fds are not enough: two dups of one
	 * socket would relay it to itself. */
	err = zc__sock_check_pair(s.fd_a, s.fd_b, 0);
	if (err)
		return err;
	o.flags |= ZC_RELAY_F_TRUSTED;
	err = zc__relay_alloc(&r, loop, s.fd_a, s.fd_b, &o, done, arg);
	if (err)
		return err;
	err = adopt_past(r, &s);
	if (!err) {
		err = zc__relay_go(r);
		if (err)
			for (i = 0; i < 2; i++)
				zc__dir_adopt_undo(loop, &r->r_dir[i]);
	}
	if (err) {
		free(r);
		return err;
	}
	zc__relay_run_soon(r);
	if (out)
		*out = r;
	return 0;
}

int zc_relay_state_fds(const void *rec, size_t len, const int *fds,
                       unsigned nfds, int out[ZC_RELAY_STATE_FDS])
{
	struct zc_relay_state s;
	int i, n = 0, err;

	if (!rec || !out)
		return -EINVAL;
	err = zc__relay_state_unpack(&s, rec, len, fds, nfds);
	if (err < 0)
		return err;
	out[n++] = s.fd_a;
	out[n++] = s.fd_b;
	for (i = 0; i < 2; i++) {
		if (s.dir[i].pipe_rd < 0)
			continue;
		out[n++] = s.dir[i].pipe_rd;
		out[n++] = s.dir[i].pipe_wr;
	}
	return n;
}

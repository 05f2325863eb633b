/*
 * relay_state.c - check, pack and unpack a detached relay (relay_state.h).
 *
 * Version 1 record, little-endian, 128 bytes (docs/internals/relay-state.md):
 *
 *   0 magic u32 "ZCRS"   4 version u16   6 length u16
 *   8 mover u8   9 flags u8   10 zero u16
 *  12 idle_timeout_ms u32   16 halfclose_timeout_ms u32   20 error i32
 *  24 age_ns u64   32 quiet_ns u64
 *  40 fd_a index i16   42 fd_b index i16   44 zero u32
 *  48 direction A->B (40 bytes)   88 direction B->A (40 bytes)
 *
 * A direction: 0 phase u8, 1 fin u8, 2 zero u16, 4 fallback i32,
 * 8 bytes u64, 16 spliced u64, 24 copied u64, 32 inpipe u32,
 * 36 pipe_rd index i16, 38 pipe_wr index i16 (-1: none).
 */
#include <errno.h>
#include <string.h>

#include "relay_state.h"

#define DIR_OFF 48
#define DIR_LEN 40

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | ((uint32_t)get16(p + 2) << 16);
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | ((uint64_t)get32(p + 4) << 32);
}

static int dir_check(const struct zc_dir_state *d)
{
	const int has_pipe = d->pipe_rd >= 0 || d->pipe_wr >= 0;

	if (d->phase < ZC_PHASE_OPEN || d->phase > ZC_PHASE_EOF_SENT)
		return -EINVAL;
	if (!!d->st.fin != (d->phase == ZC_PHASE_EOF_SENT))
		return -EINVAL;
	if (d->st.spliced + d->st.copied != d->st.bytes ||
	    d->st.spliced > d->st.bytes)
		return -EINVAL;
	if (d->st.fallback > 0)
		return -EINVAL;
	/* A pipe travels only with bytes in it, and with both of its ends. */
	if (has_pipe != (d->inpipe > 0))
		return -EINVAL;
	if (has_pipe && (d->pipe_rd < 0 || d->pipe_wr < 0))
		return -EINVAL;
	if (d->phase == ZC_PHASE_EOF_SENT && d->inpipe)
		return -EINVAL;
	return 0;
}

/* Whether the up to six fds of s are distinct (absent pipes are -1). */
static int fds_distinct(const struct zc_relay_state *s)
{
	const int f[ZC_RELAY_STATE_FDS] = {
	        s->fd_a,           s->fd_b,           s->dir[0].pipe_rd,
	        s->dir[0].pipe_wr, s->dir[1].pipe_rd, s->dir[1].pipe_wr};
	int i, j;

	for (i = 0; i < ZC_RELAY_STATE_FDS; i++)
		for (j = i + 1; j < ZC_RELAY_STATE_FDS; j++)
			if (f[i] >= 0 && f[i] == f[j])
				return 0;
	return 1;
}

int zc__relay_state_check(const struct zc_relay_state *s)
{
	if (!s || s->fd_a < 0 || s->fd_b < 0 || !fds_distinct(s))
		return -EINVAL;
	if (s->mover < ZC_MOVER_AUTO || s->mover > ZC_MOVER_URING_SPLICE)
		return -EINVAL;
	if (s->flags & ~(unsigned)ZC_RELAY_F_KEEP_FDS)
		return -EINVAL;
	if (s->error > 0 || s->quiet_ns > s->age_ns)
		return -EINVAL;
	if (dir_check(&s->dir[0]) || dir_check(&s->dir[1]))
		return -EINVAL;
	return 0;
}

/* Appends fd (>= 0) to fds and returns its index, or -1 for fd -1. */
static int16_t fd_put(int fd, int *fds, unsigned *nfds)
{
	if (fd < 0)
		return -1;
	fds[*nfds] = fd;
	return (int16_t)(*nfds)++;
}

static void dir_pack(uint8_t *p, const struct zc_dir_state *d, int *fds,
                     unsigned *nfds)
{
	p[0] = (uint8_t)d->phase;
	p[1] = (uint8_t) !!d->st.fin;
	put32(p + 4, (uint32_t)d->st.fallback);
	put64(p + 8, d->st.bytes);
	put64(p + 16, d->st.spliced);
	put64(p + 24, d->st.copied);
	put32(p + 32, d->inpipe);
	put16(p + 36, (uint16_t)fd_put(d->pipe_rd, fds, nfds));
	put16(p + 38, (uint16_t)fd_put(d->pipe_wr, fds, nfds));
}

int zc__relay_state_pack(const struct zc_relay_state *s, void *buf, size_t len,
                         int *fds, unsigned *nfds)
{
	uint8_t *p = buf;

	if (zc__relay_state_check(s) || !buf || !fds || !nfds ||
	    *nfds > INT16_MAX - ZC_RELAY_STATE_FDS)
		return -EINVAL;
	if (len < ZC_RELAY_STATE_LEN)
		return -ENOSPC;
	memset(p, 0, ZC_RELAY_STATE_LEN);
	put32(p, ZC_RELAY_STATE_MAGIC);
	put16(p + 4, ZC_RELAY_STATE_VERSION);
	put16(p + 6, ZC_RELAY_STATE_LEN);
	p[8] = (uint8_t)s->mover;
	p[9] = (uint8_t)s->flags;
	put32(p + 12, s->idle_timeout_ms);
	put32(p + 16, s->halfclose_timeout_ms);
	put32(p + 20, (uint32_t)s->error);
	put64(p + 24, s->age_ns);
	put64(p + 32, s->quiet_ns);
	put16(p + 40, (uint16_t)fd_put(s->fd_a, fds, nfds));
	put16(p + 42, (uint16_t)fd_put(s->fd_b, fds, nfds));
	dir_pack(p + DIR_OFF, &s->dir[0], fds, nfds);
	dir_pack(p + DIR_OFF + DIR_LEN, &s->dir[1], fds, nfds);
	return ZC_RELAY_STATE_LEN;
}

/* The fd at index i16 of fds, -1 for index -1; -EBADMSG past nfds. */
static int fd_get(uint16_t i16, const int *fds, unsigned nfds, int *fd)
{
	int16_t i = (int16_t)i16;

	if (i == -1) {
		*fd = -1;
		return 0;
	}
	if (i < 0 || (unsigned)i >= nfds || fds[i] < 0)
		return -EBADMSG;
	*fd = fds[i];
	return 0;
}

static int dir_unpack(const uint8_t *p, struct zc_dir_state *d, const int *fds,
                      unsigned nfds)
{
	if (get16(p + 2) || p[1] > 1)
		return -EBADMSG;
	d->phase = p[0];
	d->st.fin = p[1];
	d->st.fallback = (int32_t)get32(p + 4);
	d->st.bytes = get64(p + 8);
	d->st.spliced = get64(p + 16);
	d->st.copied = get64(p + 24);
	d->inpipe = get32(p + 32);
	if (fd_get(get16(p + 36), fds, nfds, &d->pipe_rd) ||
	    fd_get(get16(p + 38), fds, nfds, &d->pipe_wr))
		return -EBADMSG;
	return 0;
}

int zc__relay_state_unpack(struct zc_relay_state *s, const void *buf,
                           size_t len, const int *fds, unsigned nfds)
{
	const uint8_t *p = buf;

	if (!s || !buf || (nfds && !fds))
		return -EINVAL;
	if (len < 8)
		return -EBADMSG;
	if (get32(p) != ZC_RELAY_STATE_MAGIC ||
	    get16(p + 4) != ZC_RELAY_STATE_VERSION)
		return -EPROTONOSUPPORT;
	if (get16(p + 6) != ZC_RELAY_STATE_LEN || len < ZC_RELAY_STATE_LEN ||
	    get16(p + 10) || get32(p + 44))
		return -EBADMSG;
	memset(s, 0, sizeof(*s));
	s->mover = p[8];
	s->flags = p[9];
	s->idle_timeout_ms = get32(p + 12);
	s->halfclose_timeout_ms = get32(p + 16);
	s->error = (int32_t)get32(p + 20);
	s->age_ns = get64(p + 24);
	s->quiet_ns = get64(p + 32);
	if (fd_get(get16(p + 40), fds, nfds, &s->fd_a) ||
	    fd_get(get16(p + 42), fds, nfds, &s->fd_b) ||
	    dir_unpack(p + DIR_OFF, &s->dir[0], fds, nfds) ||
	    dir_unpack(p + DIR_OFF + DIR_LEN, &s->dir[1], fds, nfds) ||
	    zc__relay_state_check(s))
		return -EBADMSG;
	return ZC_RELAY_STATE_LEN;
}

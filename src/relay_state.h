/*
 * relay_state.h - a relay stopped at a safe point, as plain data, and its
 * versioned wire form.
 *
 * A detached relay is everything needed to resume it in another loop or
 * another process: its two sockets, at most one pipe per direction whose
 * bytes travel inside it (bytes that sat in a user-space buffer are
 * written into that pipe first, so none is lost or reordered), each
 * direction's progress and counters, and the time already spent against
 * each deadline. Nothing in it points into the old loop.
 *
 * The wire form (docs/internals/relay-state.md); zc_relay_detach and zc_relay_adopt
 * (relay_handover.c) fill and read it is a fixed little-endian
 * record; file descriptors are not in it but in a separate array (for
 * SCM_RIGHTS), which the record refers to by index.
 */
#ifndef ZC_RELAY_STATE_H
#define ZC_RELAY_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "zcrelay.h"

/* The wire form's first four bytes, "ZCRS", and its version. */
#define ZC_RELAY_STATE_MAGIC   0x5352435aU
#define ZC_RELAY_STATE_VERSION 1
/* ZC_RELAY_STATE_LEN and ZC_RELAY_STATE_FDS (zcrelay.h) are version
 * 1's record length and the most fds one relay carries. */

/* Progress of one direction when it was detached. */
enum zc_dir_phase {
	ZC_PHASE_OPEN = 0, /* no EOF seen from the source */
	ZC_PHASE_EOF_READ, /* EOF seen; held bytes still to forward */
	ZC_PHASE_EOF_SENT, /* EOF forwarded (shutdown(SHUT_WR) done) */
};

/* One direction of a detached relay. */
struct zc_dir_state {
	struct zc_dir_stats st; /* counters so far (st.fin: EOF forwarded) */
	int phase;              /* enum zc_dir_phase */
	/* The pipe holding bytes read from the source and not yet written
	 * to the destination, or -1/-1 (then inpipe is 0). */
	int pipe_rd, pipe_wr;
	uint32_t inpipe; /* bytes in that pipe, exactly */
};

/* A detached relay. */
struct zc_relay_state {
	int fd_a, fd_b;           /* the sockets, as zc_relay_start got them */
	int mover;                /* enum zc_mover it was started with */
	unsigned flags;           /* ZC_RELAY_F_KEEP_FDS, as started */
	unsigned idle_timeout_ms; /* the options it was started with */
	unsigned halfclose_timeout_ms; /* (0: none) */
	int error;                     /* 0, or the first -errno seen */
	uint64_t age_ns;               /* time since the relay started */
	uint64_t quiet_ns;             /* time since a byte last moved */
	struct zc_dir_state dir[2];    /* [ZC_DIR_AB], [ZC_DIR_BA] */
};

/*
 * zc__relay_state_check - whether s is a relay that can be resumed: fds
 * present and distinct, phases and counters consistent (a direction
 * whose EOF was forwarded holds no bytes; spliced + copied == bytes; a
 * pipe with bytes in it is there). Returns 0 or -EINVAL.
 */
int zc__relay_state_check(const struct zc_relay_state *s);

/*
 * zc__relay_state_pack - writes s (which must pass zc__relay_state_check)
 * as a ZC_RELAY_STATE_LEN-byte record into buf (len >= that) and its fds,
 * in order, to fds[*nfds..] (room for ZC_RELAY_STATE_FDS more);
 * *nfds grows by the number stored. The record names fds by their index
 * in the whole array, so several relays can share one array. Returns the
 * bytes written, -ENOSPC if len is short, or -EINVAL.
 */
int zc__relay_state_pack(const struct zc_relay_state *s, void *buf, size_t len,
                         int *fds, unsigned *nfds);

/*
 * zc__relay_state_unpack - reads one record from buf (len bytes), taking
 * its fds from fds[0..nfds). Fills *s and returns the bytes read;
 * -EPROTONOSUPPORT for another magic or version (nothing else is read),
 * -EBADMSG for a short or inconsistent record or an fd index out of
 * range. Does not close, check or change any fd.
 */
int zc__relay_state_unpack(struct zc_relay_state *s, const void *buf,
                           size_t len, const int *fds, unsigned nfds);

#endif

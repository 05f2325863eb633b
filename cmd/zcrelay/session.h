/*
 * session.h - a session's state, shared by session.c (accept to log
 * line) and session_route.c (content routing: peek, match, decide).
 * Worker thread only.
 */
#ifndef ZCRELAY_SESSION_H
#define ZCRELAY_SESSION_H

#include <stdint.h>
#include <sys/socket.h>

#include "daemon.h"
#include "saddr.h"
#include "sniff.h"

/* Bytes of a relay already added to the shared counters. */
struct counted {
	uint64_t in, out, spliced, copied;
};

/*
 * What a session needs only until its relay runs: connecting (with the
 * retry bookkeeping), reading a PROXY header, peeking for content
 * routing. Allocated at accept, freed by the one teardown path when the
 * relay starts or the session ends (zcr_session_pre_end).
 */
struct zcr_pre {
	const struct zcr_lgroup *g; /* the listener's routes */
	struct zc_connect *cn;
	int last_err; /* of the last connect */
	uint64_t tried[(ZCR_MAX_UPSTREAMS + 63) / 64];
	struct sockaddr_storage local; /* the address the client reached */
	socklen_t local_len;           /* 0: not known yet */
	struct zc_watch *pw;           /* reading a PROXY header */
	struct zc_timer *pt;           /* its deadline */
	uint8_t *pp;                   /* header bytes read so far */
	size_t pplen;
	struct zcr_peek *pk; /* content routing, while it peeks */
};

/*
 * Content routing's peek (session_route.c), allocated only for a
 * listener whose routes match on what the client sends, freed by
 * zcr_session_sniff_stop().
 */
struct zcr_peek {
	struct zc_watch *sw;      /* waiting for the first bytes */
	struct zc_timer *st, *rt; /* sniff-timeout; retry after no progress */
	size_t sblen;
	int lowat;   /* SO_RCVLOWAT raised while peeking */
	int sniffed; /* si holds what the client sent */
	struct zcr_sniff si;
	uint8_t sb[ZCR_SNIFF_MAX]; /* peeked bytes */
};

/*
 * A session, from accept to its log line. Idle relaying sessions are
 * what a daemon holds by the thousand, so this stays small (a budget in
 * tests/unit/session_size.c; docs/internals/state-machine.md): what is needed
 * only before the relay runs is in pre, addresses are compact, strings
 * are formatted when logged or listed.
 */
struct zcr_session {
	struct zcr_worker *w;
	struct zcr_session *prev, *next; /* on w->sessions */
	uint64_t id;
	struct zcr_cfg *cfg;
	const struct zcr_route *r;
	struct zcr_pre *pre;       /* until the relay runs */
	struct zc_relay *relay;    /* while relaying */
	struct counted done;       /* added to the counters so far */
	uint64_t t0;               /* ms */
	uint64_t moved_ms;         /* when a byte last moved (500 ms steps) */
	struct zcr_saddr peer;     /* the client, as told by PROXY */
	struct zcr_saddr tcp_peer; /* who connected to us */
	/* What the client said first (content routing), once decided: sni
	 * and alpn ("h2,http/1.1") on the heap, NULL when not sent. */
	char *sni, *alpn;
	int cfd;
	int16_t up;               /* upstream index; -1: none yet */
	uint8_t proto;            /* enum zcr_proto */
	unsigned killed : 1;      /* by the admin API */
	unsigned handing : 1;     /* detached, on its way to a new process */
	unsigned up_held : 1;     /* holds one of ups[up]'s active count */
	unsigned route_held : 1;  /* holds one of the route's active count */
	unsigned client_held : 1; /* holds one of the per-client count */
	unsigned sniff : 1;  /* its listener routes on content: log proto */
	unsigned silent : 1; /* nothing within sniff-timeout */
};

/* Closes s before relaying: logs what (and err) at warn, ends it. */
void zcr_session_fail(struct zcr_session *s, const char *what, int err);
/* Ends s before its relay runs (connecting, reading PROXY, sniffing),
 * without a log line. */
void zcr_session_drop(struct zcr_session *s);
/* Ends s->pre (watches, timers, a connect under way, buffers). */
void zcr_session_pre_end(struct zcr_session *s);
/* Connects to the next upstream of s->r (or fails s: none left). */
void zcr_session_connect(struct zcr_session *s);
/* The route limit of s->r (max-conns): 0 (s holds one of the route's
 * active sessions until it ends), or -EBUSY after failing s (gone). */
int zcr_session_route_ok(struct zcr_session *s);
/* The per-client limit of s->r (max-conns-per-client), keyed by s->peer:
 * 0 (s holds one until it ends), or -EBUSY / -ENOMEM after failing s
 * (gone). */
int zcr_session_client_ok(struct zcr_session *s);

/* session_route.c */
/* Chooses s's route among s->g's: allow/deny, then a peek at the
 * client's first bytes if a match needs it, then the first route that
 * matches; then limits and connect. s may be gone on return. */
void zcr_session_route(struct zcr_session *s);
/* Stops peeking (watch, timers, buffer, SO_RCVLOWAT); frees s->pre->pk. */
void zcr_session_sniff_stop(struct zcr_session *s);
/* What s sent first, as the log says it: "tls", ..., "timeout". */
const char *zcr_session_proto(const struct zcr_session *s);

#endif

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
#include "sniff.h"

/* Bytes of a relay already added to the shared counters. */
struct counted {
	uint64_t in, out, spliced, copied;
};

struct zcr_session {
	struct zcr_worker *w;
	struct zcr_session *prev, *next; /* on w->sessions */
	uint64_t id;
	struct zcr_cfg *cfg;
	const struct zcr_route *r;
	struct zc_connect *cn;
	struct zc_relay *relay; /* while relaying */
	struct counted done;    /* added to the counters so far */
	uint64_t moved_ms;      /* when a byte last moved (500 ms steps) */
	int killed;             /* by the admin API */
	int handing;            /* detached, on its way to a new process */
	struct zc_watch *pw;    /* reading a PROXY header */
	struct zc_timer *pt;    /* its deadline */
	uint8_t *pp;            /* header bytes read so far */
	size_t pplen;
	int cfd;
	int up;          /* upstream index; -1: none yet */
	int up_held;     /* holds one of ups[up]'s active count */
	int route_held;  /* holds one of the route's active count */
	int client_held; /* holds one of the per-client count of peer */
	int last_err;
	uint64_t tried[(ZCR_MAX_UPSTREAMS + 63) / 64];
	uint64_t t0;                         /* ms */
	struct sockaddr_storage peer, local; /* the client, as told by PROXY */
	socklen_t peer_len, local_len;
	struct sockaddr_storage tcp_peer; /* who connected to us */
	char peerstr[ZCR_ADDR_STR];
	/* Content routing (session_route.c): the listener's routes, the
	 * peek buffer, what the client said. */
	const struct zcr_lgroup *g;
	struct zc_watch *sw;      /* waiting for the first bytes */
	struct zc_timer *st, *rt; /* sniff-timeout; retry after no progress */
	uint8_t *sb;              /* peeked bytes (ZCR_SNIFF_MAX) */
	size_t sblen;
	int lowat;   /* SO_RCVLOWAT raised while peeking */
	int sniffed; /* si holds what the client sent */
	int silent;  /* nothing within sniff-timeout */
	struct zcr_sniff si;
};

/* Closes s before relaying: logs what (and err) at warn, ends it. */
void zcr_session_fail(struct zcr_session *s, const char *what, int err);
/* Ends s before its relay runs (connecting, reading PROXY, sniffing),
 * without a log line. */
void zcr_session_drop(struct zcr_session *s);
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
/* Stops peeking (watch, timers, buffer, SO_RCVLOWAT). */
void zcr_session_sniff_stop(struct zcr_session *s);
/* What s sent first, as the log says it: "tls", ..., "timeout". */
const char *zcr_session_proto(const struct zcr_session *s);

#endif

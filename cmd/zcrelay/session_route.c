/*
 * session_route.c - content routing of one session: which of the routes
 * sharing a listener takes the client.
 *
 *   allow/deny (some route must admit the client) -> [peek: recv with
 *   MSG_PEEK until zcr_sniff() decides, or sniff-timeout since accept]
 *   -> zcr_route_pick -> limits of the chosen route -> connect.
 *
 * The peeked bytes stay in the socket: the relay starts with them and
 * the upstream gets them unchanged. While waiting for more, TCP sockets
 * get SO_RCVLOWAT (readiness only once more bytes arrived than were
 * peeked); where that does not work (Unix sockets) a peek that brought
 * nothing new pauses the watch for RETRY_MS. No match: a TLS client gets
 * a fatal unrecognized_name alert (112), and every client a FIN, not a
 * reset (its unread bytes are read away first).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "routing.h"
#include "session.h"

#define RETRY_MS 10

static void sniff_decide(struct zcr_session *s);

void zcr_session_sniff_stop(struct zcr_session *s)
{
	int one = 1;

	zc_watch_stop(s->sw);
	s->sw = NULL;
	zc_timer_free(s->st);
	zc_timer_free(s->rt);
	s->st = s->rt = NULL;
	free(s->sb);
	s->sb = NULL;
	if (s->lowat)
		setsockopt(s->cfd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	s->lowat = 0;
}

/* Wake up only once more than have bytes are there (TCP). */
static void sniff_lowat(struct zcr_session *s, size_t have, int need)
{
	int v = need > (int)have ? need : (int)have + 1;

	if (setsockopt(s->cfd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == 0)
		s->lowat = 1;
}

/* Peeks at what the client sent; final: at the deadline. 1: decided
 * (s->si, or s->silent); 0: wait for more; -errno: gone or broken. */
static int sniff_peek(struct zcr_session *s, int final)
{
	ssize_t n = recv(s->cfd, s->sb, ZCR_SNIFF_MAX, MSG_PEEK | MSG_DONTWAIT);
	int rc;

	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	if (n < 0 && !final)
		return 0;
	if (n < 0) {
		s->silent = 1; /* not a byte before the deadline */
		return 1;
	}
	if (n == 0)
		return -ECONNRESET; /* gone before a byte */
	rc = zcr_sniff(s->sb, (size_t)n, final, &s->si);
	if (rc == 0) {
		s->sniffed = 1;
		return 1;
	}
	if ((size_t)n == s->sblen && zc_watch_set(s->sw, 0) == 0)
		zc_timer_arm(s->rt, RETRY_MS); /* no progress: pause */
	else
		sniff_lowat(s, (size_t)n, rc);
	s->sblen = (size_t)n;
	return 0;
}

/* Gone, or broken, before the decision: not worth a warning. */
static void sniff_gone(struct zcr_session *s, int err)
{
	zcr_add(&s->g->st->sniff_closed, 1);
	zcr_log(ZC_LOG_DEBUG,
	        "session worker=%d client=%s closed before "
	        "routing: %s",
	        s->w->id, s->peerstr, zc_strerror(err));
	zcr_session_drop(s);
}

static void sniff_on_ready(void *arg, unsigned ev)
{
	struct zcr_session *s = arg;
	int rc = sniff_peek(s, (ev & ZC_WATCH_ERR) != 0);

	if (rc < 0)
		sniff_gone(s, rc);
	else if (rc > 0)
		sniff_decide(s);
}

static void sniff_on_retry(void *arg)
{
	struct zcr_session *s = arg;

	if (zc_watch_set(s->sw, ZC_WATCH_IN))
		sniff_gone(s, -EIO);
}

static void sniff_on_timeout(void *arg)
{
	struct zcr_session *s = arg;
	int rc;

	zcr_add(&s->g->st->sniff_timeout, 1);
	rc = sniff_peek(s, 1);
	if (rc < 0)
		sniff_gone(s, rc);
	else
		sniff_decide(s);
}

static int sniff_start(struct zcr_session *s)
{
	uint64_t spent = zcr_now_ms() - s->t0;
	unsigned left =
	        spent < s->g->sniff_ms ? s->g->sniff_ms - (unsigned)spent : 1;
	int err;

	s->sb = malloc(ZCR_SNIFF_MAX);
	if (!s->sb)
		return -ENOMEM;
	err = zc_timer_new(&s->st, s->w->loop, sniff_on_timeout, s);
	if (err == 0)
		err = zc_timer_new(&s->rt, s->w->loop, sniff_on_retry, s);
	if (err == 0)
		err = zc_timer_arm(s->st, left);
	if (err == 0)
		err = zc_watch_start(&s->sw, s->w->loop, s->cfd, ZC_WATCH_IN,
		                     sniff_on_ready, s);
	return err;
}

/* Reads away what the client sent (at most 64 KiB), so that close()
 * sends a FIN and not a reset that could overtake the alert. */
static void drain_client(int fd)
{
	char buf[4096];
	int i;

	for (i = 0; i < 16; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

/* No route: an unrecognized_name alert for a TLS client, then a FIN. */
static void route_none(struct zcr_session *s)
{
	uint8_t alert[7] = {21, 3, 3, 0, 2, 2, 112};
	char what[ZCR_SNIFF_NAME + 64];

	zcr_add(&s->g->st->no_match, 1);
	if (s->sniffed && s->si.proto == ZCR_PROTO_TLS) {
		alert[2] = s->sb[2]; /* the client's record version */
		if (send(s->cfd, alert, sizeof(alert),
		         MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(alert))
			zcr_add(&s->g->st->tls_alert, 1);
	}
	drain_client(s->cfd);
	shutdown(s->cfd, SHUT_WR);
	snprintf(what, sizeof(what), "no route matched: protocol=%s sni=%s",
	         s->silent    ? "timeout"
	         : s->sniffed ? zcr_proto_name(s->si.proto)
	                      : "-",
	         s->si.sni[0] ? s->si.sni : "-");
	zcr_session_fail(s, what, 0);
}

static void sniff_decide(struct zcr_session *s)
{
	const struct zcr_route *r;
	int i = zcr_route_pick(s->cfg, s->g, s->sniffed ? &s->si : NULL,
	                       s->silent, (const struct sockaddr *)&s->peer);

	if (i < 0) {
		route_none(s); /* s is gone */
		return;
	}
	zcr_session_sniff_stop(s);
	r = &s->cfg->routes[i];
	s->r = r;
	zcr_add(&r->st->matched, 1);
	if (zcr_session_route_ok(s))
		return;
	zcr_add(&r->st->total, 1);
	if (zcr_session_client_ok(s) == 0)
		zcr_session_connect(s);
}

const char *zcr_session_proto(const struct zcr_session *s)
{
	return s->silent ? "timeout" : zcr_proto_name(s->si.proto);
}

void zcr_session_route(struct zcr_session *s)
{
	int err;

	if (!zcr_lgroup_admits(s->cfg, s->g,
	                       (const struct sockaddr *)&s->peer)) {
		zcr_add(&s->g->st->rej_denied, 1);
		zcr_session_fail(s, "rejected: denied by allow/deny", 0);
		return;
	}
	if (!s->g->sniff) {
		sniff_decide(s);
		return;
	}
	err = sniff_start(s);
	if (err)
		zcr_session_fail(s, "sniff", err);
}

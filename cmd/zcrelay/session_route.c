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
#include <stddef.h>
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
	struct zcr_peek *pk = s->pre->pk;
	int one = 1;

	if (!pk)
		return;
	zc_watch_stop(pk->sw);
	zc_timer_free(pk->st);
	zc_timer_free(pk->rt);
	if (pk->lowat)
		setsockopt(s->cfd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	free(pk);
	s->pre->pk = NULL;
}

/* Wake up only once more than have bytes are there (TCP). */
static void sniff_lowat(struct zcr_session *s, size_t have, int need)
{
	int v = need > (int)have ? need : (int)have + 1;

	if (setsockopt(s->cfd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == 0)
		s->pre->pk->lowat = 1;
}

/* Peeks at what the client sent; final: at the deadline. 1: decided
 * (p->si, or s->silent); 0: wait for more; -errno: gone or broken. */
static int sniff_peek(struct zcr_session *s, int final)
{
	struct zcr_peek *p = s->pre->pk;
	ssize_t n = recv(s->cfd, p->sb, ZCR_SNIFF_MAX, MSG_PEEK | MSG_DONTWAIT);
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
	rc = zcr_sniff(p->sb, (size_t)n, final, &p->si);
	if (rc == 0) {
		p->sniffed = 1;
		return 1;
	}
	if ((size_t)n == p->sblen && zc_watch_set(p->sw, 0) == 0)
		zc_timer_arm(p->rt, RETRY_MS); /* no progress: pause */
	else
		sniff_lowat(s, (size_t)n, rc);
	p->sblen = (size_t)n;
	return 0;
}

/* Gone, or broken, before the decision: not worth a warning. */
static void sniff_gone(struct zcr_session *s, int err)
{
	char client[ZCR_ADDR_STR];

	zcr_add(&s->pre->g->st->sniff_closed, 1);
	zcr_log(ZC_LOG_DEBUG,
	        "session worker=%d client=%s closed before "
	        "routing: %s",
	        s->w->id, zcr_saddr_str(&s->peer, client, sizeof(client)),
	        zc_strerror(err));
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

	if (zc_watch_set(s->pre->pk->sw, ZC_WATCH_IN))
		sniff_gone(s, -EIO);
}

static void sniff_on_timeout(void *arg)
{
	struct zcr_session *s = arg;
	int rc;

	zcr_add(&s->pre->g->st->sniff_timeout, 1);
	rc = sniff_peek(s, 1);
	if (rc < 0)
		sniff_gone(s, rc);
	else
		sniff_decide(s);
}

static int sniff_start(struct zcr_session *s)
{
	const struct zcr_lgroup *g = s->pre->g;
	uint64_t spent = zcr_now_ms() - s->t0;
	unsigned left = spent < g->sniff_ms ? g->sniff_ms - (unsigned)spent : 1;
	struct zcr_peek *p = malloc(sizeof(*p));
	int err;

	if (!p)
		return -ENOMEM;
	memset(p, 0, offsetof(struct zcr_peek, sb)); /* not the 20 KiB */
	s->pre->pk = p;
	err = zc_timer_new(&p->st, s->w->loop, sniff_on_timeout, s);
	if (err == 0)
		err = zc_timer_new(&p->rt, s->w->loop, sniff_on_retry, s);
	if (err == 0)
		err = zc_timer_arm(p->st, left);
	if (err == 0)
		err = zc_watch_start(&p->sw, s->w->loop, s->cfd, ZC_WATCH_IN,
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
	const struct zcr_lgroup *g = s->pre->g;
	const struct zcr_peek *p = s->pre->pk;
	uint8_t alert[7] = {21, 3, 3, 0, 2, 2, 112};
	char what[ZCR_SNIFF_NAME + 64];

	zcr_add(&g->st->no_match, 1);
	if (p && p->sniffed && p->si.proto == ZCR_PROTO_TLS) {
		alert[2] = p->sb[2]; /* the client's record version */
		if (send(s->cfd, alert, sizeof(alert),
		         MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(alert))
			zcr_add(&g->st->tls_alert, 1);
	}
	drain_client(s->cfd);
	shutdown(s->cfd, SHUT_WR);
	snprintf(what, sizeof(what), "no route matched: protocol=%s sni=%s",
	         s->silent         ? "timeout"
	         : p && p->sniffed ? zcr_proto_name(p->si.proto)
	                           : "-",
	         p && p->si.sni[0] ? p->si.sni : "-");
	zcr_session_fail(s, what, 0);
}

/* Keeps what the client said for the log line and the listing, in
 * heap strings only where it said something. 0 or -ENOMEM. */
static int sniff_keep(struct zcr_session *s)
{
	const struct zcr_sniff *si = &s->pre->pk->si;
	char alpn[ZCR_SNIFF_ALPN];

	s->proto = (uint8_t)si->proto;
	if (si->sni[0] && !(s->sni = strdup(si->sni)))
		return -ENOMEM;
	if (si->alpn_len &&
	    !(s->alpn = strdup(zcr_sniff_alpn_str(si, alpn, sizeof(alpn)))))
		return -ENOMEM;
	return 0;
}

static void sniff_decide(struct zcr_session *s)
{
	const struct zcr_peek *p = s->pre->pk;
	const struct zcr_route *r;
	socklen_t len;
	int i = zcr_route_pick(s->cfg, s->pre->g,
	                       p && p->sniffed ? &p->si : NULL, s->silent,
	                       zcr_saddr_get(&s->peer, &len));

	if (i < 0) {
		route_none(s); /* s is gone */
		return;
	}
	if (p && sniff_keep(s)) {
		zcr_session_fail(s, "sniff", -ENOMEM);
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
	return s->silent ? "timeout" : zcr_proto_name(s->proto);
}

void zcr_session_route(struct zcr_session *s)
{
	const struct zcr_lgroup *g = s->pre->g;
	socklen_t len;
	int err;

	if (!zcr_lgroup_admits(s->cfg, g, zcr_saddr_get(&s->peer, &len))) {
		zcr_add(&g->st->rej_denied, 1);
		zcr_session_fail(s, "rejected: denied by allow/deny", 0);
		return;
	}
	if (!g->sniff) {
		sniff_decide(s);
		return;
	}
	err = sniff_start(s);
	if (err)
		zcr_session_fail(s, "sniff", err);
}

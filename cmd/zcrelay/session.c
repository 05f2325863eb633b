/*
 * session.c - one client, from accept to its log line.
 *
 *   accept -> allow/deny -> limits (route, client) -> [PROXY header from
 *   a trusted sender, then allow/deny on its source] -> connect to the upstream the balancer picks; on failure the
 *   next healthy one, within the route's connect timeout -> [PROXY header
 *   to the upstream] -> relay -> counters and one log line.
 *
 * A session holds a reference on the configuration generation it was
 * accepted in, so a reload never changes a session under way. Until the
 * relay starts it is on w->sessions (so a worker abort can end it); the
 * one teardown path is session_end().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "daemon.h"
#include "dlog.h"
#include "proxyproto.h"

struct zcr_session {
	struct zcr_worker *w;
	struct zcr_session *prev, *next; /* on w->sessions until relaying */
	struct zcr_cfg *cfg;
	const struct zcr_route *r;
	struct zc_connect *cn;
	struct zc_watch *pw; /* reading a PROXY header */
	struct zc_timer *pt; /* its deadline */
	uint8_t *pp;         /* header bytes read so far */
	size_t pplen;
	int cfd;
	int up;      /* upstream index; -1: none yet */
	int counted; /* route active and client limit taken */
	int last_err;
	uint64_t tried[(ZCR_MAX_UPSTREAMS + 63) / 64];
	uint64_t t0;                         /* ms */
	struct sockaddr_storage peer, local; /* the client, as told by PROXY */
	socklen_t peer_len, local_len;
	struct sockaddr_storage tcp_peer; /* who connected to us */
	char peerstr[ZCR_ADDR_STR];
};

static void session_connect_next(struct zcr_session *s);

static void list_add(struct zcr_session *s)
{
	struct zcr_worker *w = s->w;

	s->prev = NULL;
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
}

static void list_del(struct zcr_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		s->w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static void pp_stop(struct zcr_session *s)
{
	zc_watch_stop(s->pw);
	s->pw = NULL;
	zc_timer_free(s->pt);
	s->pt = NULL;
	free(s->pp);
	s->pp = NULL;
}

/* The one teardown path: gives back the limits, the generation, the
 * memory. The client fd is closed here only if the relay never took it. */
static void session_end(struct zcr_session *s, int close_client)
{
	struct zcr_worker *w = s->w;

	pp_stop(s);
	if (close_client)
		close(s->cfd);
	if (s->counted) {
		__atomic_fetch_sub(&s->r->st->active, 1, __ATOMIC_RELAXED);
		zcr_client_release(s->r->st,
		                   (const struct sockaddr *)&s->tcp_peer,
		                   s->r->max_per_client);
	}
	zcr_cfg_unref(s->cfg);
	free(s);
	zcr_worker_session_gone(w);
}

/* "ECONNRESET" for -ECONNRESET: no spaces, so log lines stay key=value. */
static const char *err_name(int err)
{
	const char *n;

	if (err == 0)
		return "";
	n = err < 0 ? strerrorname_np(-err) : NULL;
	return n ? n : "EUNKNOWN";
}

/* Closed before relaying: a limit, a bad header, no upstream. */
static void session_fail(struct zcr_session *s, const char *what, int err)
{
	char client[4 * ZCR_ADDR_STR];

	zcr_log(ZC_LOG_WARN, "session worker=%d route=%s client=%s %s%s%s",
	        s->w->id, s->r->name,
	        zcr_log_field(s->peerstr, client, sizeof(client)), what,
	        err ? ": " : "", err ? zc_strerror(err) : "");
	if (s->prev || s->next || s->w->sessions == s)
		list_del(s);
	session_end(s, 1);
}

static void count_end(const struct zcr_session *s,
                      const struct zc_splice_stats *st)
{
	const struct zc_dir_stats *in = &st->dir[ZC_DIR_AB];
	const struct zc_dir_stats *out = &st->dir[ZC_DIR_BA];
	struct zcr_stats *rs = s->r->st, *us = s->r->ups[s->up].st;
	int i;

	zcr_add(&rs->bytes_in, in->bytes);
	zcr_add(&rs->bytes_out, out->bytes);
	zcr_add(&rs->spliced, in->spliced + out->spliced);
	zcr_add(&rs->copied, in->copied + out->copied);
	zcr_add(&us->bytes_in, in->bytes);
	zcr_add(&us->bytes_out, out->bytes);
	zcr_add(&us->spliced, in->spliced + out->spliced);
	zcr_add(&us->copied, in->copied + out->copied);
	__atomic_fetch_sub(&us->active, 1, __ATOMIC_RELAXED);
	for (i = 0; i < 2; i++)
		if (st->dir[i].fallback)
			zcr_stats_fallback(rs, st->dir[i].fallback);
	if (st->end == ZC_END_TIMEOUT)
		zcr_add(&rs->timeout_idle, 1);
	else if (st->end == ZC_END_HALF_TIMEOUT)
		zcr_add(&rs->timeout_halfclose, 1);
}

static void session_done(void *arg, const struct zc_splice_stats *st)
{
	struct zcr_session *s = arg;
	const struct zc_dir_stats *up = &st->dir[ZC_DIR_AB];
	const struct zc_dir_stats *down = &st->dir[ZC_DIR_BA];
	int fb = up->fallback ? up->fallback : down->fallback;

	count_end(s, st);
	if (s->cfg->log_sessions) {
		struct zcr_sess_log l = {
		        .worker = s->w->id,
		        .route = s->r->name,
		        .client = s->peerstr,
		        .upstream = s->r->ups[s->up].str,
		        .up = up->bytes,
		        .down = down->bytes,
		        .spliced = up->spliced + down->spliced,
		        .copied = up->copied + down->copied,
		        .secs = (double)st->duration_ns / 1e9,
		        .end = zc_end_name(st->end),
		        .error = err_name(st->error),
		        .engine = zc_engine_name(st->engine),
		        .mover = zc_mover_name(st->mover),
		        .fallback = err_name(fb),
		};

		zcr_log_session(&l);
	}
	session_end(s, 0);
}

/* The local address the client reached: from PROXY, or the socket's. */
static void session_local(struct zcr_session *s)
{
	if (s->local_len)
		return;
	s->local_len = sizeof(s->local);
	if (getsockname(s->cfd, (struct sockaddr *)&s->local, &s->local_len))
		s->local_len = 0;
}

/* Writes the PROXY header to a fresh upstream connection: a few hundred
 * bytes into an empty send buffer, so all or nothing. */
static int session_send_proxy(struct zcr_session *s, int fd)
{
	uint8_t hdr[ZCR_PP_MAX];
	int n;
	ssize_t w;

	session_local(s);
	n = zcr_pp_build(s->r->proxy_send,
	                 s->r->proxy_send_unix ? ZCR_PP_UNIX : 0,
	                 (const struct sockaddr *)&s->peer, s->peer_len,
	                 (const struct sockaddr *)&s->local, s->local_len, hdr,
	                 sizeof(hdr));
	if (n < 0)
		return n;
	w = send(fd, hdr, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0)
		return -errno;
	return w == n ? 0 : -EAGAIN;
}

static void session_relay(struct zcr_session *s, int fd)
{
	const struct zcr_route *r = s->r;
	struct zcr_stats *us = r->ups[s->up].st;
	struct zc_splice_opts o;
	int err = 0;

	if (r->proxy_send)
		err = session_send_proxy(s, fd);
	zc_splice_opts_init(&o);
	o.mover = r->mover;
	o.idle_timeout_ms = r->idle_ms;
	o.halfclose_timeout_ms = r->halfclose_ms;
	o.flags = ZC_SPLICE_F_TRUSTED; /* from our accept and connect */
	zcr_add(&us->total, 1);
	if (err == 0)
		err = zc_relay_start(NULL, s->w->loop, s->cfd, fd, &o,
		                     session_done, s);
	if (err) {
		__atomic_fetch_sub(&us->active, 1, __ATOMIC_RELAXED);
		close(fd);
		session_fail(s, "relay", err);
	}
}

/* A connect that failed for want of our own resources (zcr_err_local):
 * the client is shed, the upstream is not blamed. */
static void session_local_fail(struct zcr_session *s, int err)
{
	const struct zcr_route *r = s->r;

	__atomic_fetch_sub(&r->ups[s->up].st->active, 1, __ATOMIC_RELAXED);
	zcr_add(&r->st->rej_local, 1);
	session_fail(s, "rejected: out of local resources", err);
}

static void session_on_connect(void *arg, int fd)
{
	struct zcr_session *s = arg;
	const struct zcr_route *r = s->r;

	s->cn = NULL;
	if (zcr_err_local(fd)) {
		session_local_fail(s, fd);
		return;
	}
	zcr_balance_report(r, (unsigned)s->up, fd < 0 ? fd : 0, zcr_now_ms());
	if (fd >= 0) {
		list_del(s);
		session_relay(s, fd);
		return;
	}
	__atomic_fetch_sub(&r->ups[s->up].st->active, 1, __ATOMIC_RELAXED);
	zcr_log(ZC_LOG_WARN, "route=%s upstream=%s connect: %s", r->name,
	        r->ups[s->up].str, zc_strerror(fd));
	zcr_add(&r->ups[s->up].st->connect_fail, 1);
	if (fd == -ETIMEDOUT) {
		zcr_add(&r->ups[s->up].st->connect_timeout, 1);
		zcr_add(&r->st->connect_timeout, 1);
	}
	zcr_add(&r->st->connect_fail, 1);
	s->last_err = fd;
	session_connect_next(s);
}

static void session_connect_next(struct zcr_session *s)
{
	const struct zcr_route *r = s->r;
	int i, err;

	i = zcr_balance_pick(r, (const struct sockaddr *)&s->peer, s->up,
	                     s->tried, zcr_now_ms());
	if (i >= 0) {
		s->up = i;
		s->tried[i / 64] |= 1ULL << (i % 64);
		/* Counted from now on, not from the relay's start: leastconn
		 * must see the sessions still connecting, or a burst of
		 * clients all goes to the upstream that looked least loaded. */
		zcr_add(&r->ups[i].st->active, 1);
		err = zc_connect_start(
		        &s->cn, s->w->loop,
		        (const struct sockaddr *)&r->ups[i].addr.ss,
		        r->ups[i].addr.len, r->connect_ms, session_on_connect,
		        s);
		if (err)
			session_on_connect(s, err); /* as a failed connect */
		return;
	}
	zcr_add(&r->st->no_upstream, 1);
	session_fail(s,
	             s->last_err ? "no upstream reachable"
	                         : "no healthy upstream",
	             s->last_err);
}

/* The route's allow/deny lists on the client (the PROXY source where a
 * header was accepted). 1: go on; 0: s was closed and freed. */
static int session_admits(struct zcr_session *s)
{
	if (zcr_acl_admits(&s->r->allow, &s->r->deny,
	                   (const struct sockaddr *)&s->peer))
		return 1;
	zcr_add(&s->r->st->rej_denied, 1);
	session_fail(s, "rejected: denied by allow/deny", 0);
	return 0;
}

/* How many bytes at the start of buf[0..n) belong to a PROXY header
 * (the rest, if any, is the client's data and stays in the socket). */
static size_t pp_header_part(const uint8_t *buf, size_t n)
{
	const uint8_t *lf;
	size_t total;

	if (n >= ZCR_PP_V2_HDR && buf[0] == '\r') { /* v2 signature */
		total = ZCR_PP_V2_HDR + ((size_t)buf[14] << 8 | buf[15]);
		return total < n ? total : n;
	}
	if (buf[0] == '\r')
		return n;
	lf = memchr(buf, '\n', n);
	return lf ? (size_t)(lf - buf) + 1 : n;
}

static void pp_take(struct zcr_session *s, const struct zcr_pp_info *pi)
{
	if (pi->local)
		return;
	memcpy(&s->peer, &pi->src, sizeof(s->peer));
	s->peer_len = pi->src_len;
	memcpy(&s->local, &pi->dst, sizeof(s->local));
	s->local_len = pi->dst_len;
	if (zc_addr_format((const struct sockaddr *)&s->peer, s->peer_len,
	                   s->peerstr, sizeof(s->peerstr)) < 0)
		snprintf(s->peerstr, sizeof(s->peerstr), "?");
}

/* Reads what is there of the header without reading past its end:
 * peek, then consume only the header's bytes. */
static int pp_read(struct zcr_session *s)
{
	uint8_t *p = s->pp + s->pplen;
	size_t room = ZCR_PP_MAX - s->pplen, part;
	ssize_t n = recv(s->cfd, p, room, MSG_PEEK);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET; /* EOF before a complete header */
	part = pp_header_part(s->pp, s->pplen + (size_t)n) - s->pplen;
	n = recv(s->cfd, p, part, 0);
	if (n != (ssize_t)part)
		return n < 0 ? -errno : -EIO;
	s->pplen += part;
	return 0;
}

static void pp_on_ready(void *arg, unsigned ev)
{
	struct zcr_session *s = arg;
	struct zcr_pp_info pi;
	int rc = pp_read(s);

	if (rc == 0)
		rc = zcr_pp_parse(s->pp, s->pplen, &pi);
	if (rc == 0 && s->pplen < ZCR_PP_MAX)
		return; /* a proper prefix: wait for more */
	if (rc <= 0) {
		zcr_add(&s->r->st->rej_proxy, 1);
		session_fail(s, "bad PROXY header", rc ? rc : -EPROTO);
		return;
	}
	pp_take(s, &pi);
	pp_stop(s);
	if (session_admits(s))
		session_connect_next(s);
}

static void pp_on_timeout(void *arg)
{
	struct zcr_session *s = arg;

	zcr_add(&s->r->st->timeout_proxy, 1);
	session_fail(s, "PROXY header timeout", -ETIMEDOUT);
}

static int pp_start(struct zcr_session *s)
{
	int err;

	s->pp = malloc(ZCR_PP_MAX);
	if (!s->pp)
		return -ENOMEM;
	err = zc_timer_new(&s->pt, s->w->loop, pp_on_timeout, s);
	if (err == 0)
		err = zc_timer_arm(s->pt, s->r->proxy_timeout_ms);
	if (err == 0)
		err = zc_watch_start(&s->pw, s->w->loop, s->cfd, ZC_WATCH_IN,
		                     pp_on_ready, s);
	return err;
}

/* Route and client limits; 0, or the reason the client is turned away. */
static const char *session_limits(struct zcr_session *s)
{
	const struct zcr_route *r = s->r;
	uint64_t cur = zcr_get(&r->st->active);

	do {
		if (r->max_conns && cur >= r->max_conns) {
			zcr_add(&r->st->rej_maxconn, 1);
			return "rejected: route at max-conns";
		}
	} while (!__atomic_compare_exchange_n(&r->st->active, &cur, cur + 1, 1,
	                                      __ATOMIC_RELAXED,
	                                      __ATOMIC_RELAXED));
	if (zcr_client_acquire(r->st, (const struct sockaddr *)&s->tcp_peer,
	                       r->max_per_client)) {
		__atomic_fetch_sub(&r->st->active, 1, __ATOMIC_RELAXED);
		zcr_add(&r->st->rej_client, 1);
		return "rejected: client at max-conns-per-client";
	}
	s->counted = 1;
	return NULL;
}

static struct zcr_session *session_new(struct zcr_worker *w, unsigned route,
                                       int fd, const struct sockaddr *sa,
                                       socklen_t salen)
{
	struct zcr_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->w = w;
	s->cfg = w->cfg;
	zcr_cfg_ref(s->cfg);
	s->r = &w->cfg->routes[route];
	s->cfd = fd;
	s->up = -1;
	if (salen > sizeof(s->peer))
		salen = sizeof(s->peer);
	memcpy(&s->peer, sa, salen);
	memcpy(&s->tcp_peer, sa, salen);
	s->peer_len = salen;
	if (zc_addr_format(sa, salen, s->peerstr, sizeof(s->peerstr)) < 0)
		snprintf(s->peerstr, sizeof(s->peerstr), "?");
	w->active++;
	return s;
}

void zcr_session_accept(struct zcr_worker *w, unsigned route, int fd,
                        const struct sockaddr *sa, socklen_t salen)
{
	struct zcr_session *s = session_new(w, route, fd, sa, salen);
	const char *why;
	int err;

	if (!s) {
		zcr_log(ZC_LOG_ERR, "worker=%d accept: out of memory", w->id);
		close(fd);
		return;
	}
	list_add(s);
	if (!s->r->proxy_accept && !session_admits(s))
		return;
	why = session_limits(s);
	if (why) {
		session_fail(s, why, 0);
		return;
	}
	zcr_add(&s->r->st->total, 1);
	if (!s->r->proxy_accept) {
		session_connect_next(s);
		return;
	}
	if (!zcr_route_trusts(s->r, sa)) {
		zcr_add(&s->r->st->rej_proxy, 1);
		session_fail(s, "rejected: not a trusted PROXY sender", 0);
		return;
	}
	err = pp_start(s);
	if (err)
		session_fail(s, "PROXY header", err);
}

void zcr_session_abort_all(struct zcr_worker *w)
{
	while (w->sessions) {
		struct zcr_session *s = w->sessions;

		list_del(s);
		if (s->cn) {
			zc_connect_cancel(s->cn);
			s->cn = NULL;
			__atomic_fetch_sub(&s->r->ups[s->up].st->active, 1,
			                   __ATOMIC_RELAXED);
		}
		session_end(s, 1);
	}
}

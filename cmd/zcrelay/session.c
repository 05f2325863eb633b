/*
 * session.c - one client, from accept to its log line.
 *
 *   accept -> allow/deny -> limits (route, client) -> [PROXY header from
 *   a trusted sender, then allow/deny on its source] -> [content routing
 *   (session_route.c): the route of a shared listener] -> connect to
 *   the upstream the balancer picks; on failure the
 *   next healthy one, within the route's connect timeout -> [PROXY header
 *   to the upstream] -> relay -> counters and one log line.
 *
 * A session holds a reference on the configuration generation it was
 * accepted in, so a reload never changes a session under way. It is on
 * w->sessions from accept to its end (so a worker abort can end it, and
 * the admin API can list and kill it); the one teardown path is
 * session_end().
 *
 * Live counters: every 500 ms the worker reads each relay's statistics
 * (zc_relay_get_stats) and adds what moved since the last look to the
 * route's and upstream's counters; the relay's end adds the rest. The
 * data path itself never touches a shared counter.
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
#include "session.h"
#include "handoff.h"

static uint64_t next_id; /* session ids, from 1, for the admin API */

/*
 * The session's holds on shared counters, each taken in one place and
 * given back in one place, session_end() (a retry moves the upstream
 * hold from the failed upstream to the next one):
 *
 *   w->nsessions        list_add()         list_del()
 *   route active        route_take()       route_put()
 *   per-client count    client_take()      client_put()
 *   upstream active     upstream_take()    upstream_put()
 *
 * A flag in the session says whether a hold is taken, so the teardown
 * gives back exactly what was taken, whatever stage the session ended in.
 */
static void list_add(struct zcr_session *s)
{
	struct zcr_worker *w = s->w;

	w->nsessions++;
	s->prev = NULL;
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	else
		w->oldest = s;
	w->sessions = s;
}

static void list_del(struct zcr_session *s)
{
	if (s->w->cursor == s) /* a listing stops here: it goes on after */
		s->w->cursor = s->prev;
	if (s->w->oldest == s)
		s->w->oldest = s->prev;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->w->nsessions--;
}

static void route_put(struct zcr_session *s)
{
	if (!s->route_held)
		return;
	s->route_held = 0;
	__atomic_fetch_sub(&s->r->st->active, 1, __ATOMIC_RELAXED);
}

static void client_put(struct zcr_session *s)
{
	socklen_t len;

	if (!s->client_held)
		return;
	s->client_held = 0;
	zcr_client_release(s->r->st, zcr_saddr_get(&s->peer, &len),
	                   s->r->max_per_client);
}

static void upstream_put(struct zcr_session *s)
{
	if (!s->up_held)
		return;
	s->up_held = 0;
	__atomic_fetch_sub(&s->r->ups[s->up].st->active, 1, __ATOMIC_RELAXED);
}

/* Counted from the connect on, not from the relay's start: leastconn
 * must see the sessions still connecting, or a burst of clients all goes
 * to the upstream that looked least loaded. A retry gives back the hold
 * on the upstream that failed. */
static void upstream_take(struct zcr_session *s, int i)
{
	upstream_put(s);
	s->up = i;
	s->up_held = 1;
	zcr_add(&s->r->ups[i].st->active, 1);
}

static void pp_stop(struct zcr_pre *p)
{
	zc_watch_stop(p->pw);
	p->pw = NULL;
	zc_timer_free(p->pt);
	p->pt = NULL;
	free(p->pp);
	p->pp = NULL;
}

void zcr_session_pre_end(struct zcr_session *s)
{
	struct zcr_pre *p = s->pre;

	if (!p)
		return;
	if (p->cn)
		zc_connect_cancel(p->cn);
	pp_stop(p);
	zcr_session_sniff_stop(s);
	free(p);
	s->pre = NULL;
}

/* The one teardown path: gives back the holds on shared counters, the
 * generation, the memory. The client fd is closed here only if the relay
 * never took it. */
static void session_end(struct zcr_session *s, int close_client)
{
	struct zcr_worker *w = s->w;

	list_del(s);
	zcr_session_pre_end(s);
	if (close_client)
		close(s->cfd);
	upstream_put(s);
	route_put(s);
	client_put(s);
	zcr_saddr_free(&s->peer);
	zcr_saddr_free(&s->tcp_peer);
	free(s->sni);
	free(s->alpn);
	zcr_cfg_unref(s->cfg);
	free(s);
	zcr_worker_maybe_stop(w);
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
void zcr_session_fail(struct zcr_session *s, const char *what, int err)
{
	char peer[ZCR_ADDR_STR], client[4 * ZCR_ADDR_STR];

	zcr_saddr_str(&s->peer, peer, sizeof(peer));
	zcr_log(ZC_LOG_WARN, "session worker=%d route=%s client=%s %s%s%s",
	        s->w->id, s->r->name,
	        zcr_log_field(peer, client, sizeof(client)), what,
	        err ? ": " : "", err ? zc_strerror(err) : "");
	session_end(s, 1);
}

/* Adds what st says moved, less what was added before, to the route's
 * and the upstream's counters. Returns 1 if anything had moved. */
/* What st says moved, in the shape of struct counted. */
static struct counted counted_of(const struct zc_relay_stats *st)
{
	const struct zc_dir_stats *in = &st->dir[ZC_DIR_AB];
	const struct zc_dir_stats *out = &st->dir[ZC_DIR_BA];

	return (struct counted){in->bytes, out->bytes,
	                        in->spliced + out->spliced,
	                        in->copied + out->copied};
}

static int count_bytes(struct zcr_session *s, const struct zc_relay_stats *st)
{
	struct zcr_stats *rs = s->r->st, *us = s->r->ups[s->up].st;
	struct counted now = counted_of(st);
	struct counted d = {now.in - s->done.in, now.out - s->done.out,
	                    now.spliced - s->done.spliced,
	                    now.copied - s->done.copied};

	if (!d.in && !d.out)
		return 0;
	zcr_add(&rs->bytes_in, d.in);
	zcr_add(&rs->bytes_out, d.out);
	zcr_add(&rs->spliced, d.spliced);
	zcr_add(&rs->copied, d.copied);
	zcr_add(&us->bytes_in, d.in);
	zcr_add(&us->bytes_out, d.out);
	zcr_add(&us->spliced, d.spliced);
	zcr_add(&us->copied, d.copied);
	s->done = now;
	return 1;
}

static void count_end(struct zcr_session *s, const struct zc_relay_stats *st)
{
	struct zcr_stats *rs = s->r->st;
	int i;

	count_bytes(s, st);
	for (i = 0; i < 2; i++)
		if (st->dir[i].fallback)
			zcr_stats_fallback(rs, st->dir[i].fallback);
	if (st->end == ZC_END_TIMEOUT)
		zcr_add(&rs->timeout_idle, 1);
	else if (st->end == ZC_END_HALF_TIMEOUT)
		zcr_add(&rs->timeout_halfclose, 1);
}

static void session_done(void *arg, const struct zc_relay_stats *st)
{
	struct zcr_session *s = arg;
	const struct zc_dir_stats *up = &st->dir[ZC_DIR_AB];
	const struct zc_dir_stats *down = &st->dir[ZC_DIR_BA];
	int fb = up->fallback ? up->fallback : down->fallback;
	char client[ZCR_ADDR_STR];

	s->relay = NULL;
	count_end(s, st);
	if (s->cfg->log_sessions) {
		struct zcr_sess_log l = {
		        .worker = s->w->id,
		        .route = s->r->name,
		        .client =
		                zcr_saddr_str(&s->peer, client, sizeof(client)),
		        .upstream = s->r->ups[s->up].str,
		        .up = up->bytes,
		        .down = down->bytes,
		        .spliced = up->spliced + down->spliced,
		        .copied = up->copied + down->copied,
		        .secs = (double)st->duration_ns / 1e9,
		        .end = s->killed ? "killed" : zc_end_name(st->end),
		        .error = err_name(st->error),
		        .engine = zc_engine_name(st->engine),
		        .mover = zc_mover_name(st->mover),
		        .fallback = err_name(fb),
		};
		if (s->sniff) {
			l.protocol = zcr_session_proto(s);
			l.sni = s->sni ? s->sni : "";
			l.alpn = s->alpn ? s->alpn : "";
		}
		zcr_log_session(&l);
	}
	session_end(s, 0);
}

/* The local address the client reached: from PROXY, or the socket's. */
static void session_local(struct zcr_session *s)
{
	struct zcr_pre *p = s->pre;

	if (p->local_len)
		return;
	p->local_len = sizeof(p->local);
	if (getsockname(s->cfd, (struct sockaddr *)&p->local, &p->local_len))
		p->local_len = 0;
}

/* Writes the PROXY header to a fresh upstream connection: a few hundred
 * bytes into an empty send buffer, so all or nothing. */
static int session_send_proxy(struct zcr_session *s, int fd)
{
	uint8_t hdr[ZCR_PP_MAX];
	socklen_t peer_len;
	const struct sockaddr *peer = zcr_saddr_get(&s->peer, &peer_len);
	int n;
	ssize_t w;

	session_local(s);
	n = zcr_pp_build(s->r->proxy_send,
	                 s->r->proxy_send_unix ? ZCR_PP_UNIX : 0, peer,
	                 peer_len, (const struct sockaddr *)&s->pre->local,
	                 s->pre->local_len, hdr, sizeof(hdr));
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
	struct zc_relay_opts o;
	int err = 0;

	if (r->proxy_send)
		err = session_send_proxy(s, fd);
	zc_relay_opts_init(&o);
	o.mover = r->mover;
	o.idle_timeout_ms = r->idle_ms;
	o.halfclose_timeout_ms = r->halfclose_ms;
	/* From our accept and connect: non-blocking, and ours alone. */
	o.flags = ZC_RELAY_F_TRUSTED | ZC_RELAY_F_FRESH;
	zcr_add(&us->total, 1);
	if (err == 0)
		err = zc_relay_start(&s->relay, s->w->loop, s->cfd, fd, &o,
		                     session_done, s);
	s->moved_ms = zcr_now_ms();
	if (err) {
		close(fd);
		zcr_session_fail(s, "relay", err);
		return;
	}
	zcr_session_pre_end(s); /* relaying: the rest is the relay's */
}

static void session_on_connect(void *arg, int fd)
{
	struct zcr_session *s = arg;
	const struct zcr_route *r = s->r;

	s->pre->cn = NULL;
	if (zcr_err_local(fd)) {
		/* Our own shortage (fds, memory, ports): the upstream is not
		 * blamed; another one may still do (ports are per address). */
		s->pre->last_err = fd;
		zcr_session_connect(s);
		return;
	}
	zcr_balance_report(r, (unsigned)s->up, fd < 0 ? fd : 0, zcr_now_ms());
	if (fd >= 0) {
		session_relay(s, fd);
		return;
	}
	zcr_log(ZC_LOG_WARN, "route=%s upstream=%s connect: %s", r->name,
	        r->ups[s->up].str, zc_strerror(fd));
	zcr_add(&r->ups[s->up].st->connect_fail, 1);
	if (fd == -ETIMEDOUT) {
		zcr_add(&r->ups[s->up].st->connect_timeout, 1);
		zcr_add(&r->st->connect_timeout, 1);
	}
	zcr_add(&r->st->connect_fail, 1);
	s->pre->last_err = fd;
	zcr_session_connect(s);
}

void zcr_session_connect(struct zcr_session *s)
{
	const struct zcr_route *r = s->r;
	struct zcr_pre *p = s->pre;
	socklen_t len;
	int i, err;

	i = zcr_balance_pick(r, zcr_saddr_get(&s->peer, &len), s->up, p->tried,
	                     zcr_now_ms());
	if (i >= 0) {
		upstream_take(s, i);
		p->tried[i / 64] |= 1ULL << (i % 64);
		err = zc_connect_start(
		        &p->cn, s->w->loop,
		        (const struct sockaddr *)&r->ups[i].addr.ss,
		        r->ups[i].addr.len, r->connect_ms, session_on_connect,
		        s);
		if (err)
			session_on_connect(s, err); /* as a failed connect */
		return;
	}
	if (zcr_err_local(p->last_err)) { /* the client is shed */
		zcr_add(&r->st->rej_local, 1);
		zcr_session_fail(s, "rejected: out of local resources",
		                 p->last_err);
		return;
	}
	zcr_add(&r->st->no_upstream, 1);
	zcr_session_fail(s,
	                 p->last_err ? "no upstream reachable"
	                             : "no healthy upstream",
	                 p->last_err);
}

/* The route's allow/deny lists on the client (the PROXY source where a
 * header was accepted). 0: go on; -EACCES: s was closed and freed. */
static int session_admits(struct zcr_session *s)
{
	socklen_t len;

	if (zcr_acl_admits(&s->r->allow, &s->r->deny,
	                   zcr_saddr_get(&s->peer, &len)))
		return 0;
	zcr_add(&s->r->st->rej_denied, 1);
	zcr_session_fail(s, "rejected: denied by allow/deny", 0);
	return -EACCES;
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

/* The addresses a header gave replace the socket's; 0 or -ENOMEM. */
static int pp_take(struct zcr_session *s, const struct zcr_pp_info *pi)
{
	struct zcr_pre *p = s->pre;

	if (pi->local)
		return 0;
	memcpy(&p->local, &pi->dst, sizeof(p->local));
	p->local_len = pi->dst_len;
	return zcr_saddr_set(&s->peer, (const struct sockaddr *)&pi->src,
	                     pi->src_len);
}

/* Reads what is there of the header without reading past its end:
 * peek, then consume only the header's bytes. */
static int pp_read(struct zcr_session *s)
{
	struct zcr_pre *p = s->pre;
	uint8_t *at = p->pp + p->pplen;
	size_t room = ZCR_PP_MAX - p->pplen, part;
	ssize_t n = recv(s->cfd, at, room, MSG_PEEK);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET; /* EOF before a complete header */
	part = pp_header_part(p->pp, p->pplen + (size_t)n) - p->pplen;
	n = recv(s->cfd, at, part, 0);
	if (n != (ssize_t)part)
		return n < 0 ? -errno : -EIO;
	p->pplen += part;
	return 0;
}

static void pp_on_ready(void *arg, unsigned ev)
{
	struct zcr_session *s = arg;
	struct zcr_pre *p = s->pre;
	struct zcr_pp_info pi;
	int rc = pp_read(s);

	if (rc == 0)
		rc = zcr_pp_parse(p->pp, p->pplen, &pi);
	if (rc == 0 && p->pplen < ZCR_PP_MAX)
		return; /* a proper prefix: wait for more */
	if (rc <= 0) {
		zcr_add(&s->r->st->rej_proxy, 1);
		zcr_session_fail(s, "bad PROXY header", rc ? rc : -EPROTO);
		return;
	}
	pp_stop(p);
	rc = pp_take(s, &pi);
	if (rc) {
		zcr_session_fail(s, "PROXY header", rc);
		return;
	}
	if (p->g->routing)
		zcr_session_route(s);
	else if (session_admits(s) == 0 && zcr_session_client_ok(s) == 0)
		zcr_session_connect(s);
}

static void pp_on_timeout(void *arg)
{
	struct zcr_session *s = arg;

	zcr_add(&s->r->st->timeout_proxy, 1);
	zcr_session_fail(s, "PROXY header timeout", -ETIMEDOUT);
}

static int pp_start(struct zcr_session *s)
{
	struct zcr_pre *p = s->pre;
	int err;

	p->pp = malloc(ZCR_PP_MAX);
	if (!p->pp)
		return -ENOMEM;
	err = zc_timer_new(&p->pt, s->w->loop, pp_on_timeout, s);
	if (err == 0)
		err = zc_timer_arm(p->pt, s->r->proxy_timeout_ms);
	if (err == 0)
		err = zc_watch_start(&p->pw, s->w->loop, s->cfd, ZC_WATCH_IN,
		                     pp_on_ready, s);
	return err;
}

/* A hold on the route's active count, unless the route is at max-conns.
 * Returns 0 (taken) or -EBUSY. */
static int route_take(struct zcr_session *s)
{
	const struct zcr_route *r = s->r;
	uint64_t cur = zcr_get(&r->st->active);

	do {
		if (r->max_conns && cur >= r->max_conns)
			return -EBUSY;
	} while (!__atomic_compare_exchange_n(&r->st->active, &cur, cur + 1, 1,
	                                      __ATOMIC_RELAXED,
	                                      __ATOMIC_RELAXED));
	s->route_held = 1;
	return 0;
}

/* A hold on the per-client count, keyed by s->peer: the TCP peer, or the
 * source a PROXY header gave (the previous proxy would stand for all its
 * clients). Returns 0 (taken), -EBUSY (at the limit) or -ENOMEM. */
static int client_take(struct zcr_session *s)
{
	socklen_t len;
	int err = zcr_client_acquire(s->r->st, zcr_saddr_get(&s->peer, &len),
	                             s->r->max_per_client);

	if (err == 0)
		s->client_held = 1;
	return err;
}

int zcr_session_route_ok(struct zcr_session *s)
{
	int err = route_take(s);

	if (err) {
		zcr_add(&s->r->st->rej_maxconn, 1);
		zcr_session_fail(s, "rejected: route at max-conns", 0);
	}
	return err;
}

int zcr_session_client_ok(struct zcr_session *s)
{
	int err = client_take(s);

	if (err) {
		zcr_add(&s->r->st->rej_client, 1);
		zcr_session_fail(s, "rejected: client at max-conns-per-client",
		                 0);
	}
	return err;
}

static struct zcr_session *session_new(struct zcr_worker *w, unsigned group,
                                       int fd, const struct sockaddr *sa,
                                       socklen_t salen)
{
	struct zcr_session *s = calloc(1, sizeof(*s));
	const struct zcr_lgroup *g = &w->cfg->groups[group];

	if (!s)
		return NULL;
	s->pre = calloc(1, sizeof(*s->pre));
	if (!s->pre || zcr_saddr_set(&s->peer, sa, salen) ||
	    zcr_saddr_set(&s->tcp_peer, sa, salen)) {
		zcr_saddr_free(&s->peer);
		free(s->pre);
		free(s);
		return NULL;
	}
	s->w = w;
	s->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	s->t0 = zcr_now_ms();
	s->cfg = w->cfg;
	zcr_cfg_ref(s->cfg);
	s->pre->g = g;
	s->sniff = g->sniff != 0;
	/* The first route stands for the listener until one is chosen. */
	s->r = &w->cfg->routes[g->routes[0]];
	s->cfd = fd;
	s->up = -1;
	return s;
}

/* A trusted sender's PROXY header first (the routes of a shared
 * listener agree on accept, trusted and timeout). */
static void session_proxy(struct zcr_session *s)
{
	socklen_t len;
	int err;

	if (!zcr_route_trusts(s->r, zcr_saddr_get(&s->tcp_peer, &len))) {
		zcr_add(&s->r->st->rej_proxy, 1);
		zcr_session_fail(s, "rejected: not a trusted PROXY sender", 0);
		return;
	}
	err = pp_start(s);
	if (err)
		zcr_session_fail(s, "PROXY header", err);
}

void zcr_session_accept(struct zcr_worker *w, unsigned group, int fd,
                        const struct sockaddr *sa, socklen_t salen)
{
	struct zcr_session *s = session_new(w, group, fd, sa, salen);

	if (!s) {
		zcr_log(ZC_LOG_ERR, "worker=%d accept: out of memory", w->id);
		close(fd);
		return;
	}
	list_add(s);
	if (s->pre->g->routing) { /* limits once the route is chosen */
		if (s->r->proxy_accept)
			session_proxy(s);
		else
			zcr_session_route(s);
		return;
	}
	if (!s->r->proxy_accept && session_admits(s))
		return;
	if (zcr_session_route_ok(s))
		return;
	zcr_add(&s->r->st->total, 1);
	if (s->r->proxy_accept)
		session_proxy(s);
	else if (zcr_session_client_ok(s) == 0)
		zcr_session_connect(s);
}

/* Ends s before its relay runs (connecting, reading PROXY). */
void zcr_session_drop(struct zcr_session *s)
{
	session_end(s, 1);
}

void zcr_session_abort_all(struct zcr_worker *w)
{
	struct zcr_session *s, *next;

	/* Relaying ones end with their relays (zc_loop_close_relays or
	 * zc_loop_free). */
	for (s = w->sessions; s; s = next) {
		next = s->next;
		if (!s->relay && !s->handing) /* a hand-over settles those */
			zcr_session_drop(s);
	}
}

void zcr_session_tick(struct zcr_worker *w, uint64_t now_ms)
{
	struct zc_relay_stats st;
	struct zcr_session *s;

	for (s = w->sessions; s; s = s->next) {
		if (!s->relay)
			continue;
		zc_relay_get_stats(s->relay, &st);
		if (count_bytes(s, &st))
			s->moved_ms = now_ms;
	}
}

/* Does the host part of "HOST:PORT" / "[V6]:PORT", or all of it, equal
 * want? */
static int client_is(const char *addr, const char *want)
{
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);

	if (strcmp(addr, want) == 0)
		return 1;
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']')
		return strlen(want) == n - 2 && !strncmp(addr + 1, want, n - 2);
	return strlen(want) == n && strncmp(addr, want, n) == 0;
}

static int session_match(const struct zcr_session *s,
                         const struct zcr_sess_filter *f, uint64_t now)
{
	char client[ZCR_ADDR_STR];

	if (f->id && s->id != f->id)
		return 0;
	if (f->route[0] && strcmp(s->r->name, f->route) != 0)
		return 0;
	if (f->upstream[0] &&
	    (s->up < 0 || !zcr_upstream_is(&s->r->ups[s->up], f->upstream)))
		return 0;
	if (f->client[0] &&
	    !client_is(zcr_saddr_str(&s->peer, client, sizeof(client)),
	               f->client))
		return 0;
	return now - s->t0 >= f->min_age_ms;
}

static const char *session_state(const struct zcr_session *s,
                                 const struct zc_relay_stats *st)
{
	if (s->pre && s->pre->pw)
		return "proxy-header";
	if (s->pre && s->pre->pk)
		return "sniffing";
	if (!s->relay)
		return "connecting";
	if (st->dir[0].fin && st->dir[1].fin)
		return "closing";
	if (st->dir[0].fin)
		return "half-closed-client";
	if (st->dir[1].fin)
		return "half-closed-upstream";
	return "relaying";
}

static void session_info(const struct zcr_session *s, uint64_t now,
                         struct zcr_sess_info *in)
{
	struct zc_relay_stats st;

	memset(&st, 0, sizeof(st));
	if (s->relay)
		zc_relay_get_stats(s->relay, &st);
	memset(in, 0, sizeof(*in));
	in->id = s->id;
	in->worker = s->w->id;
	snprintf(in->route, sizeof(in->route), "%s", s->r->name);
	zcr_saddr_str(&s->peer, in->client, sizeof(in->client));
	zcr_saddr_str(&s->tcp_peer, in->peer, sizeof(in->peer));
	if (s->up >= 0)
		snprintf(in->upstream, sizeof(in->upstream), "%s",
		         s->r->ups[s->up].str);
	in->age_ms = now - s->t0;
	in->idle_ms = s->relay ? now - s->moved_ms : in->age_ms;
	in->bytes_in = st.dir[ZC_DIR_AB].bytes;
	in->bytes_out = st.dir[ZC_DIR_BA].bytes;
	in->spliced = st.dir[0].spliced + st.dir[1].spliced;
	in->copied = st.dir[0].copied + st.dir[1].copied;
	in->mover = s->relay ? zc_mover_name(st.mover) : "";
	in->state = session_state(s, &st);
	if (s->sniff && !(s->pre && s->pre->pk)) {
		in->protocol = zcr_session_proto(s);
		snprintf(in->sni, sizeof(in->sni), "%s", s->sni ? s->sni : "");
		snprintf(in->alpn, sizeof(in->alpn), "%s",
		         s->alpn ? s->alpn : "");
	}
}

/* Room in k->v for one more; 0 or -ENOMEM. */
static int list_grow(struct zcr_sess_walk *k)
{
	size_t cap = k->cap ? 2 * k->cap : 64;
	struct zcr_sess_info *v;

	if (k->n < k->cap)
		return 0;
	if (cap > k->limit)
		cap = k->limit;
	v = realloc(k->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	k->v = v;
	k->cap = cap;
	return 0;
}

int zcr_session_list_step(struct zcr_worker *w, struct zcr_sess_walk *k,
                          unsigned budget)
{
	uint64_t now = zcr_now_ms();
	struct zcr_session *s;

	if (!k->begun) {
		k->begun = 1;
		k->now = now;
		k->newest = w->sessions ? w->sessions->id : 0;
		w->cursor = w->oldest;
	}
	/* Oldest first: the first limit matches are the ones shown. */
	for (s = w->cursor; s && budget; s = s->prev, budget--) {
		if (s->id > k->newest || !session_match(s, &k->f, k->now))
			continue;
		k->total++;
		if (k->n >= k->limit)
			continue;
		if (list_grow(k))
			return -ENOMEM;
		session_info(s, now, &k->v[k->n++]);
	}
	w->cursor = s;
	return s != NULL;
}

void zcr_session_list_end(struct zcr_worker *w)
{
	w->cursor = NULL;
}

unsigned zcr_session_kill(struct zcr_worker *w, const struct zcr_sess_filter *f)
{
	uint64_t now = zcr_now_ms();
	struct zcr_session *s, *next;
	char peer[ZCR_ADDR_STR], client[4 * ZCR_ADDR_STR];
	unsigned n = 0;

	for (s = w->sessions; s; s = next) {
		next = s->next;
		/* One on its way to a new process has no relay to close, and
		 * the hand-over batch still points at it: the new process, or
		 * (if it refuses it) this one once it resumes, can kill it. */
		if (s->handing || !session_match(s, f, now))
			continue;
		n++;
		s->killed = 1;
		if (s->relay) {
			zc_relay_close(s->relay); /* session_done: end=killed */
			continue;
		}
		zcr_log(ZC_LOG_WARN,
		        "session worker=%d route=%s client=%s killed", w->id,
		        s->r->name,
		        zcr_log_field(
		                zcr_saddr_str(&s->peer, peer, sizeof(peer)),
		                client, sizeof(client)));
		zcr_session_drop(s);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Hand-over to a new process (upgrade.c, phase 2)                      */

/* What the new process needs of s besides its relay's record. */
static void pack_meta(const struct zcr_session *s, struct zcr_ho_sess *e,
                      uint64_t now)
{
	snprintf(e->route, sizeof(e->route), "%s", s->r->name);
	const struct sockaddr *sa;
	socklen_t len;

	snprintf(e->upstream, sizeof(e->upstream), "%s", s->r->ups[s->up].str);
	memset(&e->peer, 0, sizeof(e->peer));
	sa = zcr_saddr_get(&s->peer, &len);
	memcpy(&e->peer, sa, len);
	e->peer_len = len;
	memset(&e->tcp_peer, 0, sizeof(e->tcp_peer));
	sa = zcr_saddr_get(&s->tcp_peer, &len);
	memcpy(&e->tcp_peer, sa, len);
	e->tcp_peer_len = len;
	e->age_ms = now - s->t0;
}

void zcr_session_pack(struct zcr_worker *w, struct zcr_ho_batch *b)
{
	struct zc_relay_stats st;
	struct zcr_session *s;
	uint64_t now = zcr_now_ms();
	int err;

	for (s = w->sessions; s && b->n < ZCR_HO_BATCH; s = s->next) {
		struct zcr_ho_sess *e = &b->e[b->n];

		if (!s->relay && !s->handing)
			b->waiting++; /* connecting, reading PROXY, peeking */
		if (!s->relay || s->handing)
			continue;
		/* This process counts every byte moved here, up to now. */
		zc_relay_get_stats(s->relay, &st);
		count_bytes(s, &st);
		err = zc_relay_detach(s->relay, e->relay, sizeof(e->relay),
		                      b->fds, &b->nfds);
		if (err == -EAGAIN)
			b->waiting++; /* its io_uring requests are settling */
		if (err)
			continue; /* if it never can, it ends here */
		s->relay = NULL;
		s->handing = 1;
		pack_meta(s, e, now);
		b->s[b->n++] = s;
	}
}

void zcr_session_settle(struct zcr_worker *w, struct zcr_ho_batch *b)
{
	unsigned i;
	int err;

	for (i = 0; i < b->n; i++) {
		struct zcr_session *s = b->s[i];
		const struct zcr_ho_sess *e = &b->e[i];

		s->handing = 0;
		if (b->ok[i]) { /* the new process owns it: no log line here */
			zcr_ho_close_session(b, i);
			session_end(s, 0);
			continue;
		}
		err = zc_relay_adopt(&s->relay, w->loop, e->relay,
		                     sizeof(e->relay), b->fds, b->nfds,
		                     session_done, s);
		if (err) {
			zcr_log(ZC_LOG_ERR,
			        "session worker=%d route=%s: cannot resume it "
			        "after the hand-over: %s",
			        w->id, s->r->name, zc_strerror(err));
			zcr_ho_close_session(b, i);
			session_end(s, 0);
		}
	}
}

/* The route and upstream of e in this process's configuration. */
static int adopt_route(struct zcr_session *s, const struct zcr_ho_sess *e)
{
	const struct zcr_cfg *c = s->cfg;
	unsigned i, j;

	for (i = 0; i < c->nroutes; i++) {
		const struct zcr_route *r = &c->routes[i];

		if (strncmp(r->name, e->route, sizeof(e->route)))
			continue;
		for (j = 0; j < r->nups; j++)
			if (!strncmp(r->ups[j].str, e->upstream,
			             sizeof(e->upstream))) {
				s->r = r;
				s->up = (int)j;
				return 0;
			}
	}
	return -ENOENT;
}

/* An address of a hand-over record (len bytes of ss). */
static int adopt_addr(struct zcr_saddr *a, const struct sockaddr_storage *ss,
                      uint32_t len)
{
	if (len > sizeof(*ss))
		return -EINVAL;
	return zcr_saddr_set(a, (const struct sockaddr *)ss, (socklen_t)len);
}

/* A session of e, counted like an accepted one, not yet relaying. */
static struct zcr_session *adopt_new(struct zcr_worker *w,
                                     const struct zcr_ho_sess *e, int cfd)
{
	struct zcr_session *s = calloc(1, sizeof(*s));
	uint64_t now = zcr_now_ms();

	if (!s)
		return NULL;
	s->w = w;
	s->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	s->t0 = now > e->age_ms ? now - e->age_ms : 0;
	s->moved_ms = now;
	s->cfg = w->cfg;
	zcr_cfg_ref(s->cfg);
	s->cfd = cfd;
	if (adopt_route(s, e) || adopt_addr(&s->peer, &e->peer, e->peer_len) ||
	    adopt_addr(&s->tcp_peer, &e->tcp_peer, e->tcp_peer_len)) {
		zcr_saddr_free(&s->peer);
		zcr_cfg_unref(s->cfg);
		free(s);
		return NULL;
	}
	list_add(s);
	/* An existing session is never refused: the limits count it. */
	zcr_add(&s->r->st->active, 1);
	s->route_held = 1;
	client_take(s);
	upstream_take(s, s->up);
	return s;
}

/* Adopts one session; 0, or -errno with the fds still the caller's. */
static int adopt_one(struct zcr_worker *w, const struct zcr_ho_batch *b,
                     const struct zcr_ho_sess *e)
{
	int fds[ZC_RELAY_STATE_FDS], err;
	struct zc_relay_stats st;
	struct zcr_session *s;

	err = zc_relay_state_fds(e->relay, sizeof(e->relay), b->fds, b->nfds,
	                         fds);
	if (err < 0)
		return err;
	s = adopt_new(w, e, fds[0]);
	if (!s)
		return -ENOENT;
	err = zc_relay_adopt(&s->relay, w->loop, e->relay, sizeof(e->relay),
	                     b->fds, b->nfds, session_done, s);
	if (err) {
		session_end(s, 0);
		return err;
	}
	/* The bytes before the hand-over were counted by the old process. */
	zc_relay_get_stats(s->relay, &st);
	s->done = counted_of(&st);
	return 0;
}

void zcr_session_adopt_batch(struct zcr_worker *w, struct zcr_ho_batch *b)
{
	unsigned i;
	int err;

	for (i = 0; i < b->n; i++) {
		err = adopt_one(w, b, &b->e[i]);
		b->ok[i] = err == 0;
		if (err)
			zcr_log(ZC_LOG_WARN,
			        "upgrade: session of route %.64s upstream "
			        "%.128s "
			        "not taken over (it stays in the old process): "
			        "%s",
			        b->e[i].route, b->e[i].upstream,
			        zc_strerror(err));
	}
}

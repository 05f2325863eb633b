/*
 * metrics.c - the daemon's counters as Prometheus text (exposition
 * format 0.0.4).
 *
 * The text is laid out family by family: "# HELP", "# TYPE", then every
 * sample of the family, so that a family's samples stay together as the
 * format requires. The per-route and per-upstream families are described
 * by tables of offsets into struct zcr_stats; the few that need more
 * (splice fallback reasons, upstream health) have their own function.
 * Only counters are named *_total.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "metrics.h"

/* A growing text; after a failed allocation it only records the failure. */
struct mbuf {
	char *p;
	size_t len, cap;
	int oom;
};

/* A label pair; the value is escaped on output. */
struct label {
	const char *k, *v;
};

/* One sample of a stats family: an optional label value, a counter. */
struct ssample {
	const char *lval; /* value of the family's label, or NULL */
	size_t off;       /* uint64_t field of struct zcr_stats; 0: end */
};

/* Offset 0 is the registry link, never a counter: it ends the samples. */
_Static_assert(offsetof(struct zcr_stats, next) == 0, "zcr_stats.next");

/* A family read from the struct zcr_stats of each route or upstream. */
struct sfamily {
	const char *name, *type, *help;
	const char *lkey; /* the extra label, or NULL */
	struct ssample s[8];
};

/* A family read from struct zcr_wstats, one sample per worker. */
struct wfamily {
	const char *name, *type, *help;
	size_t off; /* uint64_t field of struct zcr_wstats */
	int ns;     /* the field counts ns: written as seconds */
};

#define countof_(a) (sizeof(a) / sizeof((a)[0]))
#define ST(f)       offsetof(struct zcr_stats, f)
#define WS(f)       offsetof(struct zcr_wstats, f), 0
#define WS_NS(f)    offsetof(struct zcr_wstats, f), 1

static const struct sfamily route_fams[] = {
        {"zcrelay_route_sessions_active",
         "gauge",
         "Sessions of the route connecting or relaying.",
         NULL,
         {{NULL, ST(active)}}},
        {"zcrelay_route_sessions_total",
         "counter",
         "Sessions the route accepted.",
         NULL,
         {{NULL, ST(total)}}},
        {"zcrelay_route_bytes_total",
         "counter",
         "Bytes relayed; in: client to upstream, out: upstream to client.",
         "direction",
         {{"in", ST(bytes_in)}, {"out", ST(bytes_out)}}},
        {"zcrelay_route_spliced_bytes_total",
         "counter",
         "Bytes moved by splice(2), both directions.",
         NULL,
         {{NULL, ST(spliced)}}},
        {"zcrelay_route_copied_bytes_total",
         "counter",
         "Bytes moved through a user-space buffer, both directions.",
         NULL,
         {{NULL, ST(copied)}}},
        {"zcrelay_route_matched_total",
         "counter",
         "Clients a shared or matching listener gave to the route.",
         NULL,
         {{NULL, ST(matched)}}},
        {"zcrelay_route_rejected_total",
         "counter",
         "Clients turned away, by reason.",
         "reason",
         {{"maxconn", ST(rej_maxconn)},
          {"per_client", ST(rej_client)},
          {"proxy", ST(rej_proxy)},
          {"denied", ST(rej_denied)},
          {"no_upstream", ST(no_upstream)},
          {"local_resources", ST(rej_local)}}},
        {"zcrelay_route_timeouts_total",
         "counter",
         "Sessions ended by a timeout, by kind.",
         "kind",
         {{"idle", ST(timeout_idle)},
          {"halfclose", ST(timeout_halfclose)},
          {"proxy", ST(timeout_proxy)},
          {"connect", ST(connect_timeout)}}},
};

/* Listeners that route by content or share routes (cfg groups). */
static const struct sfamily listener_fams[] = {
        {"zcrelay_listener_rejected_total",
         "counter",
         "Clients no route took: none admitted them (denied), none "
         "matched.",
         "reason",
         {{"denied", ST(rej_denied)}, {"no_match", ST(no_match)}}},
        {"zcrelay_listener_tls_alerts_total",
         "counter",
         "TLS clients no route matched, sent alert 112 "
         "(unrecognized_name).",
         NULL,
         {{NULL, ST(tls_alert)}}},
        {"zcrelay_listener_sniff_timeouts_total",
         "counter",
         "Clients whose first bytes did not decide within sniff-timeout.",
         NULL,
         {{NULL, ST(sniff_timeout)}}},
        {"zcrelay_listener_closed_before_routing_total",
         "counter",
         "Clients that closed or failed before a route was chosen.",
         NULL,
         {{NULL, ST(sniff_closed)}}},
};

static const struct sfamily ups_fams[] = {
        {"zcrelay_upstream_sessions_active",
         "gauge",
         "Sessions to the upstream connecting or relaying.",
         NULL,
         {{NULL, ST(active)}}},
        {"zcrelay_upstream_sessions_total",
         "counter",
         "Sessions sent to the upstream.",
         NULL,
         {{NULL, ST(total)}}},
        {"zcrelay_upstream_bytes_total",
         "counter",
         "Bytes relayed; in: client to upstream, out: upstream to client.",
         "direction",
         {{"in", ST(bytes_in)}, {"out", ST(bytes_out)}}},
        {"zcrelay_upstream_connect_failures_total",
         "counter",
         "Failed connects to the upstream.",
         NULL,
         {{NULL, ST(connect_fail)}}},
};

static const struct wfamily worker_fams[] = {
        {"zcrelay_worker_sessions", "gauge",
         "Sessions of the worker connecting or relaying.", WS(sessions)},
        {"zcrelay_worker_pipes_in_use", "gauge", "Splice pipes holding bytes.",
         WS(loop.pipes_used)},
        {"zcrelay_worker_pipes_free", "gauge",
         "Empty splice pipes cached for reuse.", WS(loop.pipes_free)},
        {"zcrelay_worker_pipe_size_bytes", "gauge",
         "Size the pipe pool asks for each pipe.", WS(loop.pipe_size)},
        {"zcrelay_worker_buffers_in_use", "gauge", "Copy buffers held.",
         WS(loop.bufs_used)},
        {"zcrelay_worker_accept_pauses_total", "counter",
         "Times a listener paused on EMFILE or ENFILE.",
         WS(loop.accept_paused)},
        {"zcrelay_worker_pipe_shortages_total", "counter",
         "Drains copied because no pipe could be had.", WS(loop.pipe_shortage)},
        {"zcrelay_worker_pipes_small_total", "counter",
         "Pipes created smaller than asked (pipe budget).",
         WS(loop.pipes_small)},
        {"zcrelay_worker_busy_poll_seconds_total", "counter",
         "Time spent busy polling (see busy-poll).", WS_NS(loop.spin_ns)},
        {"zcrelay_worker_busy_poll_hits_total", "counter",
         "Busy polls that caught an event before the window ended.",
         WS(loop.spin_hits)},
        {"zcrelay_worker_busy_poll_misses_total", "counter",
         "Busy polls that caught no event: the worker then slept.",
         WS(loop.spin_misses)},
        {"zcrelay_worker_busy_poll_capped_total", "counter",
         "Turns that slept at once: the busy-poll CPU cap was used up.",
         WS(loop.spin_capped)},
};

/* Makes room for need more bytes and the NUL; 0 or -ENOMEM. */
static int mb_reserve(struct mbuf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->oom)
		return -ENOMEM;
	if (b->len + need + 1 <= b->cap)
		return 0;
	while (cap < b->len + need + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return -ENOMEM;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static void mb_putn(struct mbuf *b, const char *s, size_t n)
{
	if (mb_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void mb_puts(struct mbuf *b, const char *s)
{
	mb_putn(b, s, strlen(s));
}

static void mb_printf(struct mbuf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || mb_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* A label value with backslash, double quote and newline escaped. */
static void mb_label_value(struct mbuf *b, const char *s)
{
	size_t n;

	for (;;) {
		n = strcspn(s, "\\\"\n");
		mb_putn(b, s, n);
		s += n;
		if (!*s)
			return;
		mb_puts(b, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\");
		s++;
	}
}

static void emit_header(struct mbuf *b, const char *name, const char *type,
                        const char *help)
{
	mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k="v",...} value; labels with a NULL value are left out. */
/* The sample's name and labels, up to the value. */
static void emit_name(struct mbuf *b, const char *name, const struct label *l,
                      unsigned nl)
{
	const char *sep = "{";
	unsigned i;

	mb_puts(b, name);
	for (i = 0; i < nl; i++) {
		if (!l[i].v)
			continue;
		mb_printf(b, "%s%s=\"", sep, l[i].k);
		mb_label_value(b, l[i].v);
		mb_puts(b, "\"");
		sep = ",";
	}
	mb_puts(b, *sep == ',' ? "}" : "");
}

static void emit_sample(struct mbuf *b, const char *name, const struct label *l,
                        unsigned nl, uint64_t v)
{
	emit_name(b, name, l, nl);
	mb_printf(b, " %" PRIu64 "\n", v);
}

/* A sample of nanoseconds, written as seconds. */
static void emit_sample_ns(struct mbuf *b, const char *name,
                           const struct label *l, unsigned nl, uint64_t ns)
{
	emit_name(b, name, l, nl);
	mb_printf(b, " %" PRIu64 ".%09" PRIu64 "\n", ns / 1000000000u,
	          ns % 1000000000u);
}

static uint64_t stat_at(const struct zcr_stats *st, size_t off)
{
	return zcr_get((const uint64_t *)((const char *)st + off));
}

/* The samples of f for one stats object; l[0..nl-1] are its labels,
 * l[nl] is free for the family's own. */
static void emit_stats(struct mbuf *b, const struct sfamily *f,
                       const struct zcr_stats *st, struct label *l, unsigned nl)
{
	unsigned i;

	for (i = 0; i < countof_(f->s) && f->s[i].off; i++) {
		l[nl].k = f->lkey;
		l[nl].v = f->s[i].lval;
		emit_sample(b, f->name, l, nl + 1, stat_at(st, f->s[i].off));
	}
}

static void emit_route_family(struct mbuf *b, const struct zcr_cfg *c,
                              const struct sfamily *f)
{
	struct label l[2] = {{"route", NULL}, {NULL, NULL}};
	unsigned i;

	emit_header(b, f->name, f->type, f->help);
	for (i = 0; i < c->nroutes; i++) {
		l[0].v = c->routes[i].name;
		emit_stats(b, f, c->routes[i].st, l, 1);
	}
}

static void emit_listener_family(struct mbuf *b, const struct zcr_cfg *c,
                                 const struct sfamily *f)
{
	struct label l[2] = {{"listen", NULL}, {NULL, NULL}};
	unsigned i;

	emit_header(b, f->name, f->type, f->help);
	for (i = 0; i < c->ngroups; i++) {
		if (!c->groups[i].routing || !c->groups[i].st)
			continue;
		l[0].v = c->groups[i].l->str;
		emit_stats(b, f, c->groups[i].st, l, 1);
	}
}

static void emit_ups_family(struct mbuf *b, const struct zcr_cfg *c,
                            const struct sfamily *f)
{
	struct label l[3] = {{"route", NULL}, {"upstream", NULL}, {NULL, NULL}};
	const struct zcr_route *r;
	unsigned i, j;

	emit_header(b, f->name, f->type, f->help);
	for (i = 0; i < c->nroutes; i++) {
		r = &c->routes[i];
		l[0].v = r->name;
		for (j = 0; j < r->nups; j++) {
			l[1].v = r->ups[j].str;
			emit_stats(b, f, r->ups[j].st, l, 2);
		}
	}
}

/* "EINVAL" for -EINVAL; numeric for codes without a name. */
static const char *err_name(int err, char *tmp, size_t size)
{
	const char *s = err < 0 ? strerrorname_np(-err) : NULL;

	if (s)
		return s;
	snprintf(tmp, size, "%d", err);
	return tmp;
}

static void emit_fallbacks(struct mbuf *b, const struct zcr_cfg *c)
{
	static const char name[] = "zcrelay_route_splice_fallbacks_total";
	struct label l[2] = {{"route", NULL}, {"reason", NULL}};
	const struct zcr_stats *st;
	char tmp[16];
	unsigned i, k;
	int err;

	emit_header(b, name, "counter",
	            "Directions that fell back from splice to copy, by errno.");
	for (i = 0; i < c->nroutes; i++) {
		st = c->routes[i].st;
		l[0].v = c->routes[i].name;
		for (k = 0; k < ZCR_NFALLBACK; k++) {
			err = __atomic_load_n(&st->fallback[k].err,
			                      __ATOMIC_ACQUIRE);
			if (err == 0)
				continue;
			l[1].v = err_name(err, tmp, sizeof(tmp));
			emit_sample(b, name, l, 2, zcr_get(&st->fallback[k].n));
		}
	}
}

static void emit_healthy(struct mbuf *b, const struct zcr_cfg *c,
                         uint64_t now_ms)
{
	static const char name[] = "zcrelay_upstream_healthy";
	struct label l[2] = {{"route", NULL}, {"upstream", NULL}};
	const struct zcr_route *r;
	unsigned i, j;

	emit_header(b, name, "gauge",
	            "1 if the upstream takes new sessions, 0 while it is "
	            "ejected or checked down.");
	for (i = 0; i < c->nroutes; i++) {
		r = &c->routes[i];
		l[0].v = r->name;
		for (j = 0; j < r->nups; j++) {
			l[1].v = r->ups[j].str;
			emit_sample(b, name, l, 2,
			            (uint64_t)zcr_upstream_healthy(&r->ups[j],
			                                           now_ms));
		}
	}
}

static void emit_workers(struct mbuf *b, const struct zcr_wstats *w,
                         unsigned nw)
{
	struct label l[1] = {{"worker", NULL}};
	const struct wfamily *f;
	char id[16];
	unsigned i, k;
	uint64_t v;

	for (k = 0; k < countof_(worker_fams); k++) {
		f = &worker_fams[k];
		emit_header(b, f->name, f->type, f->help);
		for (i = 0; i < nw; i++) {
			snprintf(id, sizeof(id), "%d", w[i].id);
			l[0].v = id;
			v = *(const uint64_t *)((const char *)&w[i] + f->off);
			if (f->ns)
				emit_sample_ns(b, f->name, l, 1, v);
			else
				emit_sample(b, f->name, l, 1, v);
		}
	}
}

static void emit_build_info(struct mbuf *b)
{
	struct label l[1] = {{"version", NULL}};
	char v[32];

	snprintf(v, sizeof(v), "%d.%d.%d", ZC_VERSION_MAJOR, ZC_VERSION_MINOR,
	         ZC_VERSION_PATCH);
	l[0].v = v;
	emit_header(b, "zcrelay_build_info", "gauge",
	            "Always 1; the version is in the label.");
	emit_sample(b, "zcrelay_build_info", l, 1, 1);
}

char *zcr_metrics_render(const struct zcr_cfg *c, const struct zcr_wstats *w,
                         unsigned nw, uint64_t now_ms, size_t *len)
{
	struct mbuf b = {NULL, 0, 0, 0};
	unsigned k;

	for (k = 0; k < countof_(route_fams); k++)
		emit_route_family(&b, c, &route_fams[k]);
	emit_fallbacks(&b, c);
	for (k = 0; k < countof_(ups_fams); k++)
		emit_ups_family(&b, c, &ups_fams[k]);
	for (k = 0; k < countof_(listener_fams); k++)
		emit_listener_family(&b, c, &listener_fams[k]);
	emit_healthy(&b, c, now_ms);
	emit_workers(&b, w, nw);
	emit_build_info(&b);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/*
 * routing.c - routes that share a listener: the match settings, the
 * listener groups, the checks `zcrelay -n` makes on them (agreement,
 * unreachable and ambiguous routes), and the choice of a route per
 * client (routing.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routing.h"

#define NAME_MAX_ 253

static int rt_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int rt_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* "out of memory" into err; returns -ENOMEM. */
static int rt_oom(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* ------------------------------------------------------------------ */
/* Building a match                                                     */

static int list_add(char ***v, unsigned *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* A host name or "*.domain" into out (lower case, trailing dot gone).
 * 0, or -EINVAL if spec is neither. */
static int name_norm(const char *spec, char *out)
{
	size_t n = strlen(spec), i, start = 0;

	if (n && spec[n - 1] == '.')
		n--;
	if (n >= 2 && spec[0] == '*' && spec[1] == '.')
		start = 2;
	if (n == start || n > NAME_MAX_)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		char c = spec[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (i >= start &&
		    !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' ||
		      (c == '.' && i > start && spec[i - 1] != '.')))
			return -EINVAL;
		out[i] = c;
	}
	out[n] = '\0';
	return out[n - 1] == '.' ? -EINVAL : 0;
}

int zcr_match_name(struct zcr_route *r, const char *key, const char *spec,
                   char *err, size_t errlen)
{
	struct zcr_match *m = &r->match;
	char name[NAME_MAX_ + 1];
	int sni = strcmp(key, "sni") == 0;

	if (name_norm(spec, name))
		return rt_err(err, errlen,
		              "%s '%s': not a host name or *.domain", key,
		              spec);
	if (sni ? list_add(&m->sni, &m->nsni, name)
	        : list_add(&m->host, &m->nhost, name))
		return rt_oom(err, errlen);
	return 0;
}

int zcr_match_alpn(struct zcr_route *r, const char *spec, char *err,
                   size_t errlen)
{
	size_t n = strlen(spec), i;

	for (i = 0; i < n; i++)
		if ((unsigned char)spec[i] <= ' ' || spec[i] == 0x7f)
			break;
	if (n == 0 || n > 255 || i < n)
		return rt_err(err, errlen,
		              "alpn '%s': not a protocol name (1-255 visible "
		              "characters)",
		              spec);
	if (list_add(&r->match.alpn, &r->match.nalpn, spec))
		return rt_oom(err, errlen);
	return 0;
}

int zcr_match_source(struct zcr_route *r, const char *spec, char *err,
                     size_t errlen)
{
	return zcr_acl_add(&r->match.source, spec, "source", err, errlen);
}

int zcr_match_proto(struct zcr_route *r, const char *spec, char *err,
                    size_t errlen)
{
	static const char *const w[] = {"tls", "ssh", "http", "timeout", "any"};
	int i;

	for (i = 0; i < 5; i++)
		if (strcmp(spec, w[i]) == 0) {
			r->match.proto = ZCR_MP_TLS + i;
			return 0;
		}
	return rt_err(err, errlen,
	              "protocol '%s' is not tls, ssh, http, timeout or any",
	              spec);
}

static void strv_free(char **v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void zcr_match_free(struct zcr_match *m)
{
	strv_free(m->sni, m->nsni);
	strv_free(m->alpn, m->nalpn);
	strv_free(m->host, m->nhost);
	zcr_acl_free(&m->source);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ */
/* Matching a client                                                    */

int zcr_name_match(const char *pattern, const char *name)
{
	size_t pn = strlen(pattern), nn = strlen(name);
	const char *dot;

	if (pattern[0] != '*')
		return strcmp(pattern, name) == 0;
	/* "*.d": name is "x.d" with x one non-empty label */
	if (nn < pn || strcmp(name + nn - (pn - 1), pattern + 1) != 0)
		return 0;
	dot = strchr(name, '.');
	return dot && dot > name && (size_t)(dot - name) == nn - (pn - 1);
}

static int names_match(char *const *v, unsigned n, const char *name)
{
	unsigned i;

	if (!name[0])
		return 0;
	for (i = 0; i < n; i++)
		if (zcr_name_match(v[i], name))
			return 1;
	return 0;
}

static int proto_match(int want, const struct zcr_sniff *si, int silent)
{
	if (want == ZCR_MP_NONE)
		return 1;
	if (want == ZCR_MP_TIMEOUT)
		return silent;
	if (silent || !si)
		return 0;
	return want == ZCR_MP_ANY || si->proto == want;
}

static int alpn_match(const struct zcr_match *m, const struct zcr_sniff *si)
{
	unsigned i;

	for (i = 0; i < m->nalpn; i++)
		if (zcr_sniff_has_alpn(si, m->alpn[i]))
			return 1;
	return 0;
}

/* Does r's match hold for the client? */
static int match_holds(const struct zcr_match *m, const struct zcr_sniff *si,
                       int silent, const struct sockaddr *peer)
{
	if (!proto_match(m->proto, si, silent))
		return 0;
	if (m->nsni && !(si && names_match(m->sni, m->nsni, si->sni)))
		return 0;
	if (m->nhost && !(si && names_match(m->host, m->nhost, si->host)))
		return 0;
	if (m->nalpn && !(si && alpn_match(m, si)))
		return 0;
	if ((m->source.n || m->source.unix_clients) &&
	    zcr_acl_match(&m->source, peer) < 0)
		return 0;
	return 1;
}

int zcr_route_pick(const struct zcr_cfg *c, const struct zcr_lgroup *g,
                   const struct zcr_sniff *si, int silent,
                   const struct sockaddr *peer)
{
	const struct zcr_route *r;
	unsigned i;

	for (i = 0; i < g->n; i++) {
		r = &c->routes[g->routes[i]];
		if (zcr_acl_admits(&r->allow, &r->deny, peer) &&
		    match_holds(&r->match, si, silent, peer))
			return (int)g->routes[i];
	}
	return -ENOENT;
}

int zcr_lgroup_admits(const struct zcr_cfg *c, const struct zcr_lgroup *g,
                      const struct sockaddr *peer)
{
	const struct zcr_route *r;
	unsigned i;

	for (i = 0; i < g->n; i++) {
		r = &c->routes[g->routes[i]];
		if (zcr_acl_admits(&r->allow, &r->deny, peer))
			return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Checks: what one route's match says                                  */

/* The protocol sni/alpn/http-host imply; -EINVAL when they contradict
 * the protocol given or each other. */
static int implied_proto(const struct zcr_match *m)
{
	int p = m->proto;

	if (m->nsni || m->nalpn) {
		if (p != ZCR_MP_NONE && p != ZCR_MP_TLS && p != ZCR_MP_ANY)
			return -EINVAL;
		p = ZCR_MP_TLS;
	}
	if (m->nhost) {
		if (p != ZCR_MP_NONE && p != ZCR_MP_HTTP && p != ZCR_MP_ANY)
			return -EINVAL;
		p = ZCR_MP_HTTP;
	}
	return p;
}

static int match_sniffs(const struct zcr_match *m)
{
	return m->proto != ZCR_MP_NONE;
}

/* ------------------------------------------------------------------ */
/* Checks: does route a catch every client route b would?               */

static int name_covers(const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return 1;
	return a[0] == '*' && b[0] != '*' && zcr_name_match(a, b);
}

static int names_cover(char *const *a, unsigned na, char *const *b, unsigned nb)
{
	unsigned i, j;

	if (na == 0)
		return 1;
	if (nb == 0)
		return 0;
	for (j = 0; j < nb; j++) {
		for (i = 0; i < na && !name_covers(a[i], b[j]); i++)
			;
		if (i == na)
			return 0;
	}
	return 1;
}

static int alpn_covers(const struct zcr_match *a, const struct zcr_match *b)
{
	unsigned i, j;

	if (a->nalpn == 0)
		return 1;
	if (b->nalpn == 0)
		return 0;
	for (j = 0; j < b->nalpn; j++) {
		for (i = 0; i < a->nalpn && strcmp(a->alpn[i], b->alpn[j]); i++)
			;
		if (i == a->nalpn)
			return 0;
	}
	return 1;
}

/* Is every address of b in a? */
static int source_covers(const struct zcr_acl *a, const struct zcr_acl *b)
{
	unsigned i, j;

	if (a->n == 0 && !a->unix_clients)
		return 1;
	if ((b->n == 0 && !b->unix_clients) ||
	    (b->unix_clients && !a->unix_clients))
		return 0;
	for (j = 0; j < b->n; j++) {
		for (i = 0; i < a->n && !zcr_cidr_contains(&a->v[i], &b->v[j]);
		     i++)
			;
		if (i == a->n)
			return 0;
	}
	return 1;
}

static int proto_covers(int a, int b)
{
	if (a == ZCR_MP_NONE)
		return 1;
	if (a == ZCR_MP_ANY)
		return b != ZCR_MP_NONE && b != ZCR_MP_TIMEOUT;
	return a == b;
}

static int has_acl(const struct zcr_route *r)
{
	return r->allow.n || r->allow.unix_clients || r->deny.n ||
	       r->deny.unix_clients;
}

/* Does a (tried first) take every client b would? Conservative: a
 * route with allow/deny lists covers nothing. */
static int covers(const struct zcr_route *a, const struct zcr_route *b)
{
	const struct zcr_match *x = &a->match, *y = &b->match;

	if (has_acl(a))
		return 0;
	return proto_covers(implied_proto(x), implied_proto(y)) &&
	       names_cover(x->sni, x->nsni, y->sni, y->nsni) &&
	       names_cover(x->host, x->nhost, y->host, y->nhost) &&
	       alpn_covers(x, y) && source_covers(&x->source, &y->source);
}

/* ------------------------------------------------------------------ */
/* Listener groups                                                      */

/* A listener of c: route r, listener l. */
struct lref {
	const struct zc_addr *a;
	unsigned r, l;
};

static int lref_before(const struct lref *x, const struct lref *y)
{
	return x->r < y->r || (x->r == y->r && x->l < y->l);
}

/* By address, then by position in the configuration. */
static int lref_cmp(const void *pa, const void *pb)
{
	const struct lref *x = pa, *y = pb;
	int d;

	if (x->a->len != y->a->len)
		return x->a->len < y->a->len ? -1 : 1;
	d = memcmp(&x->a->ss, &y->a->ss, x->a->len);
	if (d)
		return d;
	return lref_before(x, y) ? -1 : lref_before(y, x);
}

static int same_addr(const struct zc_addr *a, const struct zc_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Every listener of c, sorted; *n gets their count. NULL: no memory. */
static struct lref *lrefs(const struct zcr_cfg *c, size_t *n)
{
	struct lref *v;
	unsigned r, l;

	*n = 0;
	for (r = 0; r < c->nroutes; r++)
		*n += c->routes[r].nlisten;
	v = malloc((*n ? *n : 1) * sizeof(*v));
	if (!v)
		return NULL;
	*n = 0;
	for (r = 0; r < c->nroutes; r++)
		for (l = 0; l < c->routes[r].nlisten; l++)
			v[(*n)++] = (struct lref){&c->routes[r].listen[l].addr,
			                          r, l};
	qsort(v, *n, sizeof(*v), lref_cmp);
	return v;
}

/* One check's failure: the message, and the position it is reported
 * at, so that of several the first in the file wins. */
struct rt_fail {
	struct lref at;
	int set;
	unsigned line;
	char msg[ZCR_ERR_MAX];
};

static void rt_fail(struct rt_fail *f, const struct lref *at, unsigned line,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void rt_fail(struct rt_fail *f, const struct lref *at, unsigned line,
                    const char *fmt, ...)
{
	va_list ap;

	if (f->set && !lref_before(at, &f->at))
		return;
	f->set = 1;
	f->at = *at;
	f->line = line;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
}

static int acl_same(const struct zcr_acl *a, const struct zcr_acl *b)
{
	return a->n == b->n && a->unix_clients == b->unix_clients &&
	       (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(*a->v)) == 0);
}

/* What the routes of a listener must agree on: b against the first. */
static void check_agree(const struct zcr_cfg *c, const struct lref *first,
                        const struct lref *at, struct rt_fail *f)
{
	const struct zcr_route *a = &c->routes[first->r];
	const struct zcr_route *b = &c->routes[at->r];
	const char *what = NULL;

	if (a->sniff_ms != b->sniff_ms)
		what = "sniff-timeout";
	else if (a->proxy_accept != b->proxy_accept ||
	         a->proxy_timeout_ms != b->proxy_timeout_ms ||
	         !acl_same(&a->trusted, &b->trusted))
		what = "proxy-protocol accept, trusted and timeout";
	else if (a->listen[first->l].mode != b->listen[at->l].mode)
		what = "unix-mode";
	if (what)
		rt_fail(f, at, b->line,
		        "route '%s' shares listen '%s' with route '%s' but "
		        "not its %s",
		        b->name, b->listen[at->l].str, a->name, what);
}

/* Matched routes in order, then the default; errors into f. */
static void group_order(const struct zcr_cfg *c, struct zcr_lgroup *g,
                        const struct lref *v, size_t n, struct rt_fail *f)
{
	const struct lref *def = NULL;
	size_t i;

	for (i = 0; i < n; i++)
		if (c->routes[v[i].r].match.set)
			g->routes[g->n++] = v[i].r;
	for (i = 0; i < n; i++) {
		if (c->routes[v[i].r].match.set)
			continue;
		if (def)
			rt_fail(f, def, 0,
			        "listen '%s' appears twice (routes '%s' and "
			        "'%s'), neither with a match: a shared "
			        "listener has one default route",
			        g->l->str, c->routes[def->r].name,
			        c->routes[v[i].r].name);
		def = &v[i];
		g->routes[g->n++] = v[i].r;
	}
}

/* Unreachable routes: one an earlier route of g covers. */
static void check_reach(const struct zcr_cfg *c, const struct zcr_lgroup *g,
                        const struct lref *v, size_t n, struct rt_fail *f)
{
	const struct zcr_route *a, *b;
	unsigned i, j;
	size_t k;

	for (j = 1; j < g->n; j++)
		for (i = 0; i < j; i++) {
			a = &c->routes[g->routes[i]];
			b = &c->routes[g->routes[j]];
			if (!a->match.set || !covers(a, b))
				continue;
			for (k = 0; k < n && v[k].r != g->routes[j]; k++)
				;
			rt_fail(f, &v[k],
			        b->match.set ? b->match.line : b->line,
			        "route '%s' is unreachable on listen '%s': "
			        "route '%s' (line %u), tried before it, "
			        "matches every client it would%s",
			        b->name, g->l->str, a->name, a->match.line,
			        b->match.set && covers(b, a)
			                ? " (the same match: ambiguous)"
			                : "");
			break;
		}
}

/* The group of the listeners v[0..n) (one address). */
static int group_build(const struct zcr_cfg *c, struct zcr_lgroup *g,
                       const struct lref *v, size_t n, struct rt_fail *f)
{
	const struct zcr_route *r;
	size_t i;

	g->l = &c->routes[v[0].r].listen[v[0].l];
	g->routes = calloc(n, sizeof(*g->routes));
	if (!g->routes)
		return -ENOMEM;
	g->sniff_ms = c->routes[v[0].r].sniff_ms;
	for (i = 0; i < n; i++) {
		r = &c->routes[v[i].r];
		if (i && v[i].r == v[i - 1].r)
			rt_fail(f, &v[i - 1], 0,
			        "listen '%s' appears twice (routes '%s' and "
			        "'%s')",
			        g->l->str, r->name, r->name);
		if (implied_proto(&r->match) < 0)
			rt_fail(f, &v[i], r->match.line,
			        "route '%s': its match can never hold (sni and "
			        "alpn are for TLS clients, http-host for HTTP "
			        "ones)",
			        r->name);
		check_agree(c, &v[0], &v[i], f);
		g->sniff |= match_sniffs(&r->match) || r->match.nsni ||
		            r->match.nalpn || r->match.nhost;
		g->routing |= r->match.set || i > 0;
	}
	group_order(c, g, v, n, f);
	check_reach(c, g, v, n, f);
	return 0;
}

void zcr_routing_free(struct zcr_cfg *c)
{
	unsigned i;

	for (i = 0; i < c->ngroups; i++)
		free(c->groups[i].routes);
	free(c->groups);
	c->groups = NULL;
	c->ngroups = 0;
}

/* Groups of c from the sorted listeners v[0..n). */
static int groups_build(struct zcr_cfg *c, const struct lref *v, size_t n,
                        struct rt_fail *f)
{
	size_t i, j;
	int rc;

	c->groups = calloc(n ? n : 1, sizeof(*c->groups));
	if (!c->groups)
		return -ENOMEM;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && same_addr(v[i].a, v[j].a); j++)
			;
		rc = group_build(c, &c->groups[c->ngroups], v + i, j - i, f);
		if (rc)
			return rc;
		for (; i < j; i++)
			c->routes[v[i].r].listen[v[i].l].group = c->ngroups;
		c->ngroups++;
	}
	return 0;
}

int zcr_routing_build(struct zcr_cfg *c, char *err, size_t errlen)
{
	struct rt_fail f = {.set = 0};
	size_t n;
	struct lref *v = lrefs(c, &n);
	int rc = v ? groups_build(c, v, n, &f) : -ENOMEM;

	free(v);
	if (rc)
		return rt_oom(err, errlen);
	if (!f.set)
		return 0;
	c->err_line = f.line;
	snprintf(err, errlen, "%s", f.msg);
	return -EINVAL;
}

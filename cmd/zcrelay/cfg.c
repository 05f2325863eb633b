/*
 * cfg.c - building and checking a configuration (struct zcr_cfg), and
 * the registry of counters that survive reloads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "cfg.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zcr_cfg *running; /* the running generation */
static struct zcr_stats *reg_head;

static int cfg_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Formats a message into err; returns -EINVAL. */
static int cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* "out of memory" into err; returns -ENOMEM. */
static int cfg_oom(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* Finds or creates the stats object for key; NULL when out of memory. */
static struct zcr_stats *stats_get(const char *key)
{
	struct zcr_stats *st;

	pthread_mutex_lock(&reg_lock);
	for (st = reg_head; st; st = st->next)
		if (strcmp(st->key, key) == 0)
			break;
	if (!st) {
		st = calloc(1, sizeof(*st));
		if (st) {
			snprintf(st->key, sizeof(st->key), "%s", key);
			st->next = reg_head;
			reg_head = st;
		}
	}
	if (st)
		st->refs++;
	pthread_mutex_unlock(&reg_lock);
	return st;
}

static void stats_put(struct zcr_stats *st)
{
	struct zcr_stats **pp;

	if (!st)
		return;
	pthread_mutex_lock(&reg_lock);
	if (--st->refs == 0) {
		for (pp = &reg_head; *pp != st; pp = &(*pp)->next)
			;
		*pp = st->next;
		free(st);
	}
	pthread_mutex_unlock(&reg_lock);
}

void zcr_stats_fallback(struct zcr_stats *st, int err)
{
	int i, cur;

	for (i = 0; i < ZCR_NFALLBACK; i++) {
		cur = __atomic_load_n(&st->fallback[i].err, __ATOMIC_ACQUIRE);
		if (cur == 0) {
			int zero = 0;

			if (!__atomic_compare_exchange_n(
			            &st->fallback[i].err, &zero, err, 0,
			            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				cur = zero;
			else
				cur = err;
		}
		if (cur == err) {
			zcr_add(&st->fallback[i].n, 1);
			return;
		}
	}
	/* More distinct reasons than slots: count them under the last. */
	zcr_add(&st->fallback[ZCR_NFALLBACK - 1].n, 1);
}

int zcr_upstream_healthy(const struct zcr_upstream *u, uint64_t now_ms)
{
	return !__atomic_load_n(&u->st->check_down, __ATOMIC_RELAXED) &&
	       now_ms >= zcr_get(&u->st->down_until);
}

uint64_t zcr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct zcr_cfg *zcr_cfg_new(void)
{
	struct zcr_cfg *c = calloc(1, sizeof(*c));
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (!c)
		return NULL;
	c->refs = 1;
	c->workers = n > 0 ? (unsigned)n : 1;
	c->engine = ZC_ENGINE_AUTO;
	c->drain_ms = 30000;
	c->upgrade_sessions = 1;
	c->log_level = ZC_LOG_INFO;
	c->log_format = ZCR_LOGF_TEXT;
	c->log_sessions = 1;
	return c;
}

void zcr_cfg_ref(struct zcr_cfg *c)
{
	__atomic_fetch_add(&c->refs, 1, __ATOMIC_RELAXED);
}

static void route_free(struct zcr_route *r)
{
	unsigned i;

	for (i = 0; i < r->nups; i++)
		stats_put(r->ups[i].st);
	stats_put(r->st);
	free(r->listen);
	free(r->ups);
	zcr_acl_free(&r->trusted);
	zcr_acl_free(&r->allow);
	zcr_acl_free(&r->deny);
	zcr_match_free(&r->match);
}

void zcr_cfg_unref(struct zcr_cfg *c)
{
	unsigned i;

	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (i = 0; i < c->ngroups; i++)
		stats_put(c->groups[i].st);
	zcr_routing_free(c);
	for (i = 0; i < c->nroutes; i++)
		route_free(&c->routes[i]);
	free(c->routes);
	free(c->path);
	free(c->log_file);
	free(c->user);
	free(c->group);
	free(c->pid_file);
	free(c->admin_token);
	free(c);
}

static unsigned addr_port(const struct zc_addr *a);

int zcr_cfg_admin_add(struct zcr_cfg *c, const char *spec, char *err,
                      size_t errlen)
{
	struct zcr_listen *l = &c->admin[c->nadmin];
	unsigned i;
	int rc;

	if (c->nadmin == ZCR_MAX_ADMIN)
		return cfg_err(err, errlen, "more than %d admin addresses",
		               ZCR_MAX_ADMIN);
	if (strlen(spec) >= sizeof(l->str))
		return cfg_err(err, errlen, "admin '%s' is too long", spec);
	rc = zc_addr_parse(&l->addr, spec, ZC_ADDR_PASSIVE);
	if (rc)
		return cfg_err(err, errlen, "admin '%s': %s", spec,
		               zc_strerror(rc));
	if (l->addr.ss.ss_family != AF_UNIX && addr_port(&l->addr) == 0)
		return cfg_err(err, errlen,
		               "admin '%s': port 0 is not allowed (a random "
		               "port nobody would know)",
		               spec);
	for (i = 0; i < c->nadmin; i++)
		if (strcmp(c->admin[i].str, spec) == 0)
			return cfg_err(err, errlen, "admin '%s' given twice",
			               spec);
	snprintf(l->str, sizeof(l->str), "%s", spec);
	l->mode = 0600;
	c->nadmin++;
	return 0;
}

static void route_defaults(struct zcr_route *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->balance = ZCR_BAL_ROUNDROBIN;
	r->mover = ZC_MOVER_AUTO;
	r->connect_ms = 5000;
	r->proxy_timeout_ms = 3000;
	r->fail_max = 3;
	r->cooldown_ms = 10000;
	r->check_timeout_ms = 2000;
	r->rise = 2;
	r->fall = 3;
	r->sniff_ms = 3000;
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= ZCR_NAME_MAX)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789_-.") == n;
}

int zcr_route_add(struct zcr_route **out, struct zcr_cfg *c, const char *name,
                  char *err, size_t errlen)
{
	struct zcr_route *r;
	unsigned i;

	*out = NULL;
	if (!name_ok(name))
		return cfg_err(err, errlen,
		               "route name '%s': use 1-%d letters, digits, "
		               "'_', '-' or '.'",
		               name, ZCR_NAME_MAX - 1);
	for (i = 0; i < c->nroutes; i++)
		if (strcmp(c->routes[i].name, name) == 0)
			return cfg_err(err, errlen, "route '%s' defined twice",
			               name);
	if (c->nroutes == ZCR_MAX_ROUTES)
		return cfg_err(err, errlen, "more than %d routes",
		               ZCR_MAX_ROUTES);
	r = realloc(c->routes, (c->nroutes + 1) * sizeof(*r));
	if (!r)
		return cfg_oom(err, errlen);
	c->routes = r;
	r = &c->routes[c->nroutes++];
	route_defaults(r, name);
	*out = r;
	return 0;
}

/* Splits "HOST:LO-HI" into "HOST:LO" and hi; *hi = 0 without a range. */
static int split_range(const char *spec, char *first, size_t cap, unsigned *hi,
                       char *err, size_t errlen)
{
	const char *colon = strrchr(spec, ':');
	const char *dash = colon ? strchr(colon, '-') : NULL;
	char *end;
	unsigned long v;

	*hi = 0;
	if (strlen(spec) >= cap)
		return cfg_err(err, errlen, "address '%s' is too long", spec);
	snprintf(first, cap, "%s", spec);
	if (strncmp(spec, "unix:", 5) == 0 || !dash)
		return 0;
	errno = 0;
	v = strtoul(dash + 1, &end, 10);
	if (dash[1] < '0' || dash[1] > '9' || *end || errno || v > 65535 ||
	    v == 0)
		return cfg_err(err, errlen, "bad port range in '%s'", spec);
	first[dash - spec] = '\0';
	*hi = (unsigned)v;
	return 0;
}

/* The room r->listen has for n entries: n rounded up to a power of two
 * (8 at least), so a port range of 4096 grows it 10 times, not 4096
 * (each realloc may copy the whole array). */
static unsigned listen_room(unsigned n)
{
	unsigned room = 8;

	while (room < n)
		room *= 2;
	return room;
}

static int listen_push(struct zcr_route *r, const struct zc_addr *a,
                       const char *str, char *err, size_t errlen)
{
	struct zcr_listen *l;

	if (r->nlisten == ZCR_MAX_LISTENERS)
		return cfg_err(err, errlen, "more than %d listeners in a route",
		               ZCR_MAX_LISTENERS);
	if (!r->listen || r->nlisten == listen_room(r->nlisten)) {
		l = realloc(r->listen,
		            listen_room(r->nlisten + 1) * sizeof(*l));
		if (!l)
			return cfg_oom(err, errlen);
		r->listen = l;
	}
	l = &r->listen[r->nlisten++];
	memset(l, 0, sizeof(*l));
	l->addr = *a;
	l->mode = 0660;
	snprintf(l->str, sizeof(l->str), "%s", str);
	return 0;
}

static void addr_set_port(struct zc_addr *a, unsigned port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port =
		        htons((uint16_t)port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port =
		        htons((uint16_t)port);
}

static unsigned addr_port(const struct zc_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

int zcr_route_listen(struct zcr_route *r, const char *spec, char *err,
                     size_t errlen)
{
	char first[ZCR_ADDR_STR], str[ZCR_ADDR_STR];
	struct zc_addr a;
	unsigned hi, lo, p;
	int rc;

	rc = split_range(spec, first, sizeof(first), &hi, err, errlen);
	if (rc)
		return rc;
	rc = zc_addr_parse(&a, first, ZC_ADDR_PASSIVE);
	if (rc)
		return cfg_err(err, errlen, "bad listen address '%s': %s", spec,
		               zc_strerror(rc));
	if (!hi && a.ss.ss_family != AF_UNIX && addr_port(&a) == 0)
		return cfg_err(
		        err, errlen,
		        "listen '%s': port 0 is not allowed (each worker "
		        "would get a random port of its own)",
		        spec);
	if (!hi)
		return listen_push(r, &a, spec, err, errlen);
	lo = addr_port(&a);
	if (lo == 0 || lo > hi)
		return cfg_err(err, errlen, "listen '%s': empty port range",
		               spec);
	for (p = lo; p <= hi; p++) {
		addr_set_port(&a, p);
		if (zc_addr_format((const struct sockaddr *)&a.ss, a.len, str,
		                   sizeof(str)) < 0)
			return cfg_err(err, errlen, "listen '%s': bad address",
			               spec);
		rc = listen_push(r, &a, str, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

int zcr_route_upstream(struct zcr_route *r, const char *spec, unsigned weight,
                       char *err, size_t errlen)
{
	struct zcr_upstream *u;
	struct zc_addr a;
	int rc;

	if (r->nups == ZCR_MAX_UPSTREAMS)
		return cfg_err(err, errlen, "more than %d upstreams in a route",
		               ZCR_MAX_UPSTREAMS);
	if (weight < 1 || weight > 1000)
		return cfg_err(err, errlen,
		               "upstream '%s': weight %u is not in 1..1000",
		               spec, weight);
	if (strlen(spec) >= ZCR_ADDR_STR)
		return cfg_err(err, errlen, "upstream '%s' is too long", spec);
	for (rc = 0; rc < (int)r->nups; rc++)
		if (strcmp(r->ups[rc].str, spec) == 0)
			return cfg_err(err, errlen,
			               "upstream '%s' appears twice", spec);
	rc = zc_addr_parse(&a, spec, 0);
	if (rc)
		return cfg_err(err, errlen, "bad upstream address '%s': %s",
		               spec, zc_strerror(rc));
	if (a.ss.ss_family != AF_UNIX && addr_port(&a) == 0)
		return cfg_err(err, errlen,
		               "upstream '%s': port 0 is not allowed", spec);
	u = realloc(r->ups, (r->nups + 1) * sizeof(*u));
	if (!u)
		return cfg_oom(err, errlen);
	r->ups = u;
	u = &r->ups[r->nups++];
	memset(u, 0, sizeof(*u));
	u->addr = a;
	u->weight = weight;
	snprintf(u->str, sizeof(u->str), "%s", spec);
	return 0;
}

int zcr_upstream_name(struct zcr_route *r, const char *name, char *err,
                      size_t errlen)
{
	unsigned i;

	if (!name_ok(name))
		return cfg_err(err, errlen,
		               "upstream name '%s': use 1-%d letters, digits, "
		               "'_', '-' or '.'",
		               name, ZCR_NAME_MAX - 1);
	for (i = 0; i + 1 < r->nups; i++)
		if (strcmp(r->ups[i].name, name) == 0)
			return cfg_err(err, errlen,
			               "upstream name '%s' given twice", name);
	snprintf(r->ups[r->nups - 1].name, sizeof(r->ups[0].name), "%s", name);
	return 0;
}

int zcr_route_trust(struct zcr_route *r, const char *spec, char *err,
                    size_t errlen)
{
	return zcr_acl_add(&r->trusted, spec, "trusted", err, errlen);
}

int zcr_route_allow(struct zcr_route *r, const char *spec, char *err,
                    size_t errlen)
{
	return zcr_acl_add(&r->allow, spec, "allow", err, errlen);
}

int zcr_route_deny(struct zcr_route *r, const char *spec, char *err,
                   size_t errlen)
{
	return zcr_acl_add(&r->deny, spec, "deny", err, errlen);
}

int zcr_route_trusts(const struct zcr_route *r, const struct sockaddr *sa)
{
	return zcr_acl_match(&r->trusted, sa) >= 0;
}

static int parse_word(const char *s, const char *const *words, int n, int *out)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(s, words[i]) == 0) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

int zcr_parse_mover(const char *s, int *out, char *err, size_t errlen)
{
	static const char *const w[] = {"auto", "splice", "copy", "ring",
	                                "uring-splice"};
	static const int v[] = {ZC_MOVER_AUTO, ZC_MOVER_SPLICE, ZC_MOVER_COPY,
	                        ZC_MOVER_RING, ZC_MOVER_URING_SPLICE};
	int i;

	if (parse_word(s, w, (int)(sizeof(w) / sizeof(w[0])), &i))
		return cfg_err(err, errlen,
		               "mover '%s' is not auto, splice, copy, ring or "
		               "uring-splice",
		               s);
	*out = v[i];
	return 0;
}

int zcr_parse_engine(const char *s, int *out, char *err, size_t errlen)
{
	static const char *const w[] = {"auto", "epoll", "uring"};
	static const int v[] = {ZC_ENGINE_AUTO, ZC_ENGINE_EPOLL,
	                        ZC_ENGINE_URING};
	int i;

	if (parse_word(s, w, 3, &i))
		return cfg_err(err, errlen,
		               "engine '%s' is not auto, epoll or uring", s);
	*out = v[i];
	return 0;
}

int zcr_parse_busy_poll(const char *s, int *out, char *err, size_t errlen)
{
	static const char *const w[] = {"off", "auto"};
	static const int v[] = {0, ZC_BUSY_POLL_AUTO};
	unsigned long us;
	char *end;
	int i;

	if (parse_word(s, w, 2, &i) == 0) {
		*out = v[i];
		return 0;
	}
	errno = 0;
	us = *s >= '0' && *s <= '9' ? strtoul(s, &end, 10) : 0;
	if (*s < '0' || *s > '9' || *end)
		return cfg_err(err, errlen,
		               "busy-poll '%s' is not off, auto or a number of "
		               "microseconds",
		               s);
	if (errno || us > ZC_BUSY_POLL_MAX_US)
		return cfg_err(err, errlen,
		               "busy-poll '%s' is out of range (0..%d "
		               "microseconds)",
		               s, ZC_BUSY_POLL_MAX_US);
	*out = (int)us;
	return 0;
}

int zcr_parse_balance(const char *s, int *out, char *err, size_t errlen)
{
	static const char *const w[] = {"roundrobin", "leastconn", "source"};

	if (parse_word(s, w, 3, out))
		return cfg_err(err, errlen,
		               "balance '%s' is not roundrobin, leastconn or "
		               "source",
		               s);
	return 0;
}

static int attach_stats(struct zcr_route *r, char *err, size_t errlen)
{
	char key[sizeof(((struct zcr_stats *)0)->key)];
	unsigned i;

	snprintf(key, sizeof(key), "%s", r->name);
	r->st = stats_get(key);
	for (i = 0; r->st && i < r->nups; i++) {
		snprintf(key, sizeof(key), "%s/%s", r->name, r->ups[i].str);
		r->ups[i].st = stats_get(key);
		if (!r->ups[i].st)
			break;
	}
	if (!r->st || i < r->nups)
		return cfg_oom(err, errlen);
	return 0;
}

/* The counters of a listener that routes per client: keyed "listen
 * ADDR" (no route name has a space), so they too survive a reload. */
static int attach_group_stats(struct zcr_cfg *c, char *err, size_t errlen)
{
	char key[sizeof(((struct zcr_stats *)0)->key)];
	unsigned i;

	for (i = 0; i < c->ngroups; i++) {
		if (!c->groups[i].routing)
			continue; /* no counters of its own: its route's */
		snprintf(key, sizeof(key), "listen %s", c->groups[i].l->str);
		c->groups[i].st = stats_get(key);
		if (!c->groups[i].st)
			return cfg_oom(err, errlen);
	}
	return 0;
}

int zcr_cfg_finish(struct zcr_cfg *c, char *err, size_t errlen)
{
	unsigned i;
	int rc;

	if (c->nroutes == 0)
		return cfg_err(err, errlen, "no route defined");
	for (i = 0; i < c->nroutes; i++) {
		struct zcr_route *r = &c->routes[i];

		if (r->nlisten == 0)
			return cfg_err(err, errlen,
			               "route '%s' has no listener", r->name);
		if (r->nups == 0)
			return cfg_err(err, errlen,
			               "route '%s' has no upstream", r->name);
		if (r->proxy_accept && r->trusted.n == 0 &&
		    !r->trusted.unix_clients)
			return cfg_err(err, errlen,
			               "route '%s' accepts PROXY headers but "
			               "trusts no sender",
			               r->name);
	}
	rc = zcr_routing_build(c, err, errlen);
	for (i = 0; rc == 0 && i < c->nroutes; i++)
		rc = attach_stats(&c->routes[i], err, errlen);
	return rc ? rc : attach_group_stats(c, err, errlen);
}

struct zcr_cfg *zcr_cfg_current(void)
{
	struct zcr_cfg *c;

	pthread_mutex_lock(&cur_lock);
	c = running;
	if (c)
		zcr_cfg_ref(c);
	pthread_mutex_unlock(&cur_lock);
	return c;
}

void zcr_cfg_set_current(struct zcr_cfg *c)
{
	static unsigned gen;
	struct zcr_cfg *old;

	pthread_mutex_lock(&cur_lock);
	if (c)
		c->gen = ++gen;
	old = running;
	running = c;
	pthread_mutex_unlock(&cur_lock);
	zcr_cfg_unref(old);
}

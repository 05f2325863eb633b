/*
 * balance.c - which upstream a new connection goes to, and passive
 * health: consecutive connect failures eject an upstream for a cool-down.
 *
 * Weights work the same way for every method: a position in [0, sum of
 * weights) maps to the upstream whose weight span holds it. When that
 * one is down or was tried already, the next eligible one in order is
 * taken, so a retry never repeats an upstream.
 */
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "daemon.h"

static int tried_has(const uint64_t *tried, unsigned i)
{
	return (tried[i / 64] >> (i % 64)) & 1;
}

static int eligible(const struct zcr_route *r, unsigned i,
                    const uint64_t *tried, uint64_t now)
{
	return !tried_has(tried, i) && zcr_upstream_enabled(&r->ups[i]) &&
	       zcr_upstream_healthy(&r->ups[i], now);
}

int zcr_upstream_is(const struct zcr_upstream *u, const char *id)
{
	return strcmp(u->str, id) == 0 || (u->name[0] && !strcmp(u->name, id));
}

unsigned zcr_upstream_weight(const struct zcr_upstream *u)
{
	unsigned w = __atomic_load_n(&u->st->weight_set, __ATOMIC_RELAXED);

	return w ? w : u->weight;
}

int zcr_upstream_enabled(const struct zcr_upstream *u)
{
	return __atomic_load_n(&u->st->admin, __ATOMIC_RELAXED) ==
	       ZCR_UP_ENABLED;
}

/* The weights of r now, in w; returns their sum (never 0: weights are
 * 1..1000). */
static uint64_t weights(const struct zcr_route *r, unsigned *w)
{
	uint64_t sum = 0;
	unsigned i;

	for (i = 0; i < r->nups; i++) {
		w[i] = zcr_upstream_weight(&r->ups[i]);
		sum += w[i];
	}
	return sum;
}

/* The upstream whose weight span holds pos, or the next eligible. */
static int pick_at(const struct zcr_route *r, uint64_t pos,
                   const uint64_t *tried, uint64_t now)
{
	unsigned w[ZCR_MAX_UPSTREAMS], i = 0, k;

	pos %= weights(r, w);
	while (pos >= w[i]) {
		pos -= w[i];
		i++;
	}
	for (k = 0; k < r->nups; k++, i = (i + 1) % r->nups)
		if (eligible(r, i, tried, now))
			return (int)i;
	return -ENOENT;
}

/* FNV-1a over the client's address (not its port). */
static uint64_t client_hash(const struct sockaddr *sa)
{
	const uint8_t *p = NULL;
	size_t n = 0;
	uint64_t h = 1469598103934665603ULL;

	if (sa->sa_family == AF_INET) {
		p = (const uint8_t *)&((const struct sockaddr_in *)sa)
		            ->sin_addr;
		n = 4;
	} else if (sa->sa_family == AF_INET6) {
		p = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		n = 16;
	}
	while (n--) {
		h ^= *p++;
		h *= 1099511628211ULL;
	}
	return h;
}

/* Fewest active sessions per unit of weight; ties go round-robin. */
static int pick_leastconn(const struct zcr_route *r, const uint64_t *tried,
                          uint64_t now)
{
	unsigned start = (unsigned)(zcr_get(&r->st->rr) % r->nups), k, i;
	int best = -ENOENT;
	uint64_t ba = 0, a;

	__atomic_fetch_add(&r->st->rr, 1, __ATOMIC_RELAXED);
	for (k = 0; k < r->nups; k++) {
		i = (start + k) % r->nups;
		if (!eligible(r, i, tried, now))
			continue;
		a = zcr_get(&r->ups[i].st->active);
		/* a / w < ba / bw, without division */
		if (best < 0 || a * zcr_upstream_weight(&r->ups[best]) <
		                        ba * zcr_upstream_weight(&r->ups[i])) {
			best = (int)i;
			ba = a;
		}
	}
	return best;
}

/* A retry: the next eligible upstream after the one that failed, so a
 * retry neither moves the round-robin nor piles onto one upstream. */
static int pick_after(const struct zcr_route *r, int prev,
                      const uint64_t *tried, uint64_t now)
{
	unsigned k, i;

	for (k = 1; k <= r->nups; k++) {
		i = ((unsigned)prev + k) % r->nups;
		if (eligible(r, i, tried, now))
			return (int)i;
	}
	return -ENOENT;
}

int zcr_balance_pick(const struct zcr_route *r, const struct sockaddr *client,
                     int prev, const uint64_t *tried, uint64_t now_ms)
{
	if (prev >= 0)
		return pick_after(r, prev, tried, now_ms);
	switch (r->balance) {
	case ZCR_BAL_LEASTCONN:
		return pick_leastconn(r, tried, now_ms);
	case ZCR_BAL_SOURCE:
		return pick_at(r, client_hash(client), tried, now_ms);
	default:
		return pick_at(
		        r, __atomic_fetch_add(&r->st->rr, 1, __ATOMIC_RELAXED),
		        tried, now_ms);
	}
}

void zcr_balance_report(const struct zcr_route *r, unsigned up, int err,
                        uint64_t now_ms)
{
	const struct zcr_upstream *u = &r->ups[up];
	struct zcr_stats *st = u->st;
	uint64_t down;
	unsigned fails;

	if (err == 0) {
		/* A connect that succeeds (even one that was in flight when
		 * the upstream was ejected) proves it is back: the ejection
		 * ends with the message. */
		fails = __atomic_exchange_n(&st->fails, 0, __ATOMIC_RELAXED);
		if (r->fail_max && fails >= r->fail_max) {
			__atomic_store_n(&st->down_until, 0, __ATOMIC_RELAXED);
			zcr_log(ZC_LOG_INFO,
			        "route=%s upstream=%s is back after %u failed "
			        "connects",
			        r->name, u->str, fails);
		}
		return;
	}
	fails = __atomic_add_fetch(&st->fails, 1, __ATOMIC_RELAXED);
	if (!r->fail_max || fails < r->fail_max)
		return;
	/* Each ejection is logged, also the one at the first failure after
	 * a cool-down; a failure during one (a connect that was in flight)
	 * neither extends it nor logs. One worker wins the CAS. */
	down = __atomic_load_n(&st->down_until, __ATOMIC_RELAXED);
	if (down > now_ms ||
	    !__atomic_compare_exchange_n(&st->down_until, &down,
	                                 now_ms + r->cooldown_ms, 0,
	                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	zcr_log(ZC_LOG_WARN,
	        "route=%s upstream=%s ejected for %u ms after %u failed "
	        "connects",
	        r->name, u->str, r->cooldown_ms, fails);
}

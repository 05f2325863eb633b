/*
 * limits.c - connections per client address and route, shared by all
 * workers: a hash table under one lock, touched once when a client is
 * accepted and once when its session ends (never on the data path).
 * Entries exist only while a client has connections open.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "daemon.h"

#define NBUCKETS 4096

struct centry {
	struct centry *next;
	const struct zcr_stats *route;
	uint8_t addr[16];
	unsigned n;
};

static pthread_mutex_t lim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct centry *buckets[NBUCKETS];

/* The client's address as 16 bytes (IPv4 mapped); 0 if not IP. */
static int client_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr,
		       4);
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key,
		       ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr,
		       16);
		return 1;
	}
	return 0;
}

static struct centry **slot(const struct zcr_stats *route,
                            const uint8_t key[16])
{
	uint64_t h = (uint64_t)(uintptr_t)route * 0x9e3779b97f4a7c15ULL;
	struct centry **pp;
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	pp = &buckets[h % NBUCKETS];
	while (*pp && ((*pp)->route != route || memcmp((*pp)->addr, key, 16)))
		pp = &(*pp)->next;
	return pp;
}

int zcr_client_acquire(struct zcr_stats *st, const struct sockaddr *sa,
                       unsigned max)
{
	uint8_t key[16];
	struct centry **pp, *e;
	int err = 0;

	if (!max || !client_key(sa, key))
		return 0; /* Unix clients have no address to count */
	pthread_mutex_lock(&lim_lock);
	pp = slot(st, key);
	e = *pp;
	if (!e && (e = calloc(1, sizeof(*e))) != NULL) {
		e->route = st;
		memcpy(e->addr, key, 16);
		*pp = e;
	}
	if (!e)
		err = -ENOMEM;
	else if (e->n >= max)
		err = -EBUSY;
	else
		e->n++;
	pthread_mutex_unlock(&lim_lock);
	return err;
}

void zcr_client_release(struct zcr_stats *st, const struct sockaddr *sa,
                        unsigned max)
{
	uint8_t key[16];
	struct centry **pp, *e;

	if (!max || !client_key(sa, key))
		return;
	pthread_mutex_lock(&lim_lock);
	pp = slot(st, key);
	e = *pp;
	if (e && --e->n == 0) {
		*pp = e->next;
		free(e);
	}
	pthread_mutex_unlock(&lim_lock);
}

/*
 * listeners.c - the listening sockets of a configuration generation, on
 * the main thread. A reload keeps the sockets of every address that
 * stays (never closed, so no client is refused during a reload) and
 * opens the new ones before any worker is told.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "daemon.h"
#include "service.h"
#include "upgrade.h"

void zcr_lsock_ref(struct zcr_lsock *ls)
{
	__atomic_fetch_add(&ls->refs, 1, __ATOMIC_RELAXED);
}

void zcr_lsock_put(struct zcr_lsock *ls)
{
	unsigned i;

	if (__atomic_sub_fetch(&ls->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (i = 0; i < ls->nfds; i++)
		if (ls->fds[i] >= 0 && (i == 0 || !ls->shared))
			close(ls->fds[i]);
	free(ls->fds);
	free(ls);
}

/*
 * SO_REUSEPORT would let a second zcrelay (same user) silently share our
 * port. A plain bind first fails with EADDRINUSE if anybody holds it.
 */
static int check_port_free(const struct zc_addr *a)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	int fd, err = 0, one = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	/* SO_REUSEADDR: TIME_WAIT left by a previous run is no conflict. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, sa, a->len) == -1)
		err = -errno;
	close(fd);
	return err;
}

static int unix_path(const struct zc_addr *a)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;

	return sun->sun_family == AF_UNIX && sun->sun_path[0] != '\0';
}

static int lsock_bind(struct zcr_lsock *ls, const struct zcr_listen *l)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&l->addr.ss;
	unsigned i;
	int fd;

	if (!ls->shared && (fd = check_port_free(&l->addr)) < 0)
		return fd;
	for (i = 0; i < ls->nfds; i++) {
		if (ls->shared && i > 0) {
			ls->fds[i] = ls->fds[0];
			continue;
		}
		fd = zc_listen(&l->addr, ls->shared ? 0 : ZC_LISTEN_REUSEPORT,
		               0);
		if (fd < 0)
			return fd;
		ls->fds[i] = fd;
	}
	if (unix_path(&l->addr) && chmod(sun->sun_path, l->mode) == -1)
		return -errno;
	ls->mode = l->mode;
	return 0;
}

/*
 * The pooled sockets for ls's address (systemd's, or those an upgrade's
 * old process handed over): one is shared by all workers; several (the
 * old process's per-worker SO_REUSEPORT sockets) go one to a worker, a
 * worker beyond them watching worker i % k's socket through a dup.
 * Returns how many were taken (0: bind), or -errno.
 */
static int lsock_inherit(struct zcr_lsock *ls)
{
	unsigned i, k = 0;
	int fd;

	while (k < ls->nfds && (fd = zcr_sd_listen_take(&ls->addr)) >= 0)
		ls->fds[k++] = fd;
	if (k == 0)
		return 0;
	ls->shared = k == 1;
	ls->inherited = 1;
	for (i = k; i < ls->nfds; i++) {
		fd = k == 1 ? ls->fds[0]
		            : fcntl(ls->fds[i % k], F_DUPFD_CLOEXEC, 3);
		if (fd == -1)
			return -errno;
		ls->fds[i] = fd;
	}
	if (zcr_upgrade_child())
		zcr_log(ZC_LOG_INFO,
		        "listen %s: %u socket(s) from the old "
		        "process",
		        ls->str, k);
	else
		zcr_log(ZC_LOG_INFO, "listen %s: socket from systemd", ls->str);
	return (int)k;
}

static struct zcr_lsock *lsock_new(const struct zcr_listen *l,
                                   unsigned nworkers)
{
	struct zcr_lsock *ls = calloc(1, sizeof(*ls));
	unsigned i;

	if (!ls)
		return NULL;
	ls->fds = malloc(nworkers * sizeof(int));
	if (!ls->fds) {
		free(ls);
		return NULL;
	}
	ls->addr = l->addr;
	snprintf(ls->str, sizeof(ls->str), "%s", l->str);
	ls->shared = l->addr.ss.ss_family == AF_UNIX;
	ls->refs = 1;
	ls->nfds = nworkers;
	for (i = 0; i < nworkers; i++)
		ls->fds[i] = -1;
	return ls;
}

/* The sockets of l (bound, or systemd's) into *out, refs 1. 0 or -errno
 * (logged). */
static int lsock_open(struct zcr_lsock **out, const struct zcr_listen *l,
                      unsigned nworkers)
{
	struct zcr_lsock *ls = lsock_new(l, nworkers);
	int err = -ENOMEM;

	if (ls) {
		err = lsock_inherit(ls);
		err = err == 0 ? lsock_bind(ls, l) : err < 0 ? err : 0;
	}
	if (err) {
		zcr_log(ZC_LOG_ERR, "listen %s: %s", l->str, zc_strerror(err));
		if (ls)
			zcr_lsock_put(ls);
		return err;
	}
	*out = ls;
	return 0;
}

/*
 * The pool's sockets for l's address beyond the first nworkers (an old
 * process with more workers than this one): one more set entry, so that
 * no socket with clients in its queue is left unwatched (its close
 * would reset them). NULL when none is left (or, logged, on failure).
 */
static struct zcr_lsock *lsock_surplus(const struct zcr_listen *l,
                                       unsigned nworkers)
{
	struct zcr_lsock *ls = lsock_new(l, nworkers);
	int n = ls ? lsock_inherit(ls) : -ENOMEM;

	if (n > 0)
		return ls;
	if (n < 0)
		zcr_log(ZC_LOG_ERR, "listen %s: %s", l->str, zc_strerror(n));
	if (ls)
		zcr_lsock_put(ls);
	return NULL;
}

static struct zcr_lsock *lset_find(const struct zcr_lset *set,
                                   const struct zc_addr *a)
{
	unsigned i;

	for (i = 0; set && i < set->n; i++)
		if (set->ls[i]->addr.len == a->len &&
		    memcmp(&set->ls[i]->addr.ss, &a->ss, a->len) == 0)
			return set->ls[i];
	return NULL;
}

static unsigned cfg_nlisten(const struct zcr_cfg *c)
{
	unsigned i, n = 0;

	for (i = 0; i < c->nroutes; i++)
		n += c->routes[i].nlisten;
	return n;
}

/* Sets the file mode of ls's socket file to mode (~0u: back to
 * ls->mode), if it has one of ours (a systemd socket keeps the mode
 * systemd gave it). 0 or -errno. */
static int lsock_chmod(const struct zcr_lsock *ls, unsigned mode)
{
	const char *path = ((const struct sockaddr_un *)&ls->addr.ss)->sun_path;

	if (!unix_path(&ls->addr) || ls->inherited)
		return 0;
	if (mode == ~0u)
		mode = ls->mode;
	else if (mode == ls->mode)
		return 0;
	return chmod(path, mode) == -1 ? -errno : 0;
}

/*
 * A reload's unix-mode for the listeners of set kept from prev: all or
 * none, so that a refused reload leaves every mode as it was. Returns 0
 * or -errno (logged). Routes sharing a listener have the same unix-mode
 * (zcr_cfg_finish), so its group's first listener says it.
 */
static int lset_remode(struct zcr_lset *set, const struct zcr_cfg *c,
                       const struct zcr_lset *prev)
{
	unsigned i, k;
	int err = 0;

	for (i = 0; i < set->n && !err; i++) {
		const struct zcr_listen *l = c->groups[set->group[i]].l;

		if (lset_find(prev, &l->addr))
			err = lsock_chmod(set->ls[i], l->mode);
		if (err == -ENOENT) /* nobody can connect there */
			zcr_log(ZC_LOG_WARN,
			        "listen %s: the socket file is gone (a "
			        "restart makes it again)",
			        l->str);
		else if (err)
			zcr_log(ZC_LOG_ERR, "listen %s: unix-mode %04o: %s",
			        l->str, l->mode, zc_strerror(err));
		err = err == -ENOENT ? 0 : err;
	}
	for (k = 0; err && k + 1 < i; k++) /* undo, but the failed one */
		lsock_chmod(set->ls[k], ~0u);
	if (err)
		return err;
	for (i = 0; i < set->n; i++)
		set->ls[i]->mode = c->groups[set->group[i]].l->mode;
	return 0;
}

static void lset_add(struct zcr_lset *set, struct zcr_lsock *ls, unsigned g)
{
	set->group[set->n] = g;
	set->ls[set->n++] = ls;
}

/* The sockets for l: prev's (each entry of its address: an upgrade may
 * have left several) or new ones, with the pool's surplus. 0 or -errno
 * (logged). */
static int lset_take(struct zcr_lset *set, const struct zcr_listen *l,
                     const struct zcr_lset *prev, unsigned nworkers)
{
	struct zcr_lsock *ls;
	unsigned i;
	int found = 0, err;

	for (i = 0; prev && i < prev->n; i++) {
		ls = prev->ls[i];
		if (ls->addr.len != l->addr.len ||
		    memcmp(&ls->addr.ss, &l->addr.ss, l->addr.len))
			continue;
		zcr_lsock_ref(ls);
		lset_add(set, ls, l->group);
		found = 1;
	}
	if (found)
		return 0;
	err = lsock_open(&ls, l, nworkers);
	if (err)
		return err;
	lset_add(set, ls, l->group);
	while ((ls = lsock_surplus(l, nworkers)) != NULL)
		lset_add(set, ls, l->group);
	return 0;
}

int zcr_lset_open(struct zcr_lset *set, const struct zcr_cfg *c,
                  const struct zcr_lset *prev, unsigned nworkers)
{
	unsigned r, j, n = cfg_nlisten(c) + zcr_sd_listen_count();
	int err = 0;

	memset(set, 0, sizeof(*set));
	n += prev ? prev->n : 0;
	set->ls = calloc(n, sizeof(*set->ls));
	set->group = calloc(n, sizeof(*set->group));
	if (!set->ls || !set->group) {
		zcr_log(ZC_LOG_ERR, "listeners: out of memory");
		zcr_lset_release(set, prev);
		return -ENOMEM;
	}
	for (r = 0; r < c->nroutes; r++)
		for (j = 0; j < c->routes[r].nlisten; j++) {
			const struct zcr_listen *l = &c->routes[r].listen[j];

			if (c->groups[l->group].l != l)
				continue; /* shared by routes: one socket */
			if ((err = lset_take(set, l, prev, nworkers))) {
				zcr_lset_release(set, prev);
				return err;
			}
		}
	if (prev)
		err = lset_remode(set, c, prev);
	if (err)
		zcr_lset_release(set, prev);
	return err;
}

unsigned zcr_lset_fds(const struct zcr_lset *set, int *fds, unsigned max)
{
	unsigned i, k, n = 0;
	const struct zcr_lsock *ls;

	for (i = 0; i < set->n; i++) {
		ls = set->ls[i];
		for (k = 0; k < (ls->shared ? 1 : ls->nfds); k++)
			if (ls->fds[k] >= 0 && n < max)
				fds[n++] = ls->fds[k];
	}
	return n;
}

unsigned zcr_lset_nfds(const struct zcr_lset *set)
{
	unsigned i, n = 0;

	for (i = 0; i < set->n; i++)
		n += set->ls[i]->shared ? 1 : set->ls[i]->nfds;
	return n;
}

void zcr_lset_forget(struct zcr_lset *set)
{
	unsigned i;

	for (i = 0; i < set->n; i++)
		zcr_lsock_put(set->ls[i]);
	free(set->ls);
	free(set->group);
	memset(set, 0, sizeof(*set));
}

void zcr_lset_release(struct zcr_lset *set, const struct zcr_lset *keep)
{
	unsigned i;

	for (i = 0; i < set->n; i++) {
		struct zcr_lsock *ls = set->ls[i];

		if (unix_path(&ls->addr) && !lset_find(keep, &ls->addr))
			unlink(((struct sockaddr_un *)&ls->addr.ss)->sun_path);
		zcr_lsock_put(ls);
	}
	free(set->ls);
	free(set->group);
	memset(set, 0, sizeof(*set));
}

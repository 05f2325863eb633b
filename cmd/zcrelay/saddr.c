/*
 * saddr.c - compact client addresses (saddr.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "saddr.h"
#include "zcrelay.h"

struct zcr_sun {
	socklen_t len;
	struct sockaddr_un sun;
};

void zcr_saddr_free(struct zcr_saddr *a)
{
	if (a->family == AF_UNIX)
		free(a->un.named);
	memset(a, 0, sizeof(*a));
}

/* A Unix address with a name goes to the heap; an unnamed one (no path
 * bytes) is its family alone. */
static int set_unix(struct zcr_saddr *a, const struct sockaddr *sa,
                    socklen_t len)
{
	struct zcr_sun *n;

	a->family = AF_UNIX;
	if (len > sizeof(n->sun))
		len = sizeof(n->sun);
	if (len <= offsetof(struct sockaddr_un, sun_path))
		return 0;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	memcpy(&n->sun, sa, len);
	n->len = len;
	a->un.named = n;
	return 0;
}

int zcr_saddr_set(struct zcr_saddr *a, const struct sockaddr *sa, socklen_t len)
{
	sa_family_t family;

	if (len < sizeof(sa_family_t))
		return -EINVAL;
	family = sa->sa_family;
	if ((family == AF_INET && len < sizeof(a->in)) ||
	    (family == AF_INET6 && len < sizeof(a->in6)))
		return -EINVAL;
	zcr_saddr_free(a);
	if (family == AF_INET)
		memcpy(&a->in, sa, sizeof(a->in));
	else if (family == AF_INET6)
		memcpy(&a->in6, sa, sizeof(a->in6));
	else if (family == AF_UNIX)
		return set_unix(a, sa, len);
	a->family = family;
	return 0;
}

const struct sockaddr *zcr_saddr_get(const struct zcr_saddr *a, socklen_t *len)
{
	switch (a->family) {
	case AF_INET:
		*len = sizeof(a->in);
		return (const struct sockaddr *)&a->in;
	case AF_INET6:
		*len = sizeof(a->in6);
		return (const struct sockaddr *)&a->in6;
	case AF_UNIX:
		if (a->un.named) {
			*len = a->un.named->len;
			return (const struct sockaddr *)&a->un.named->sun;
		}
		break;
	}
	*len = sizeof(sa_family_t);
	return (const struct sockaddr *)&a->family;
}

char *zcr_saddr_str(const struct zcr_saddr *a, char *buf, size_t size)
{
	socklen_t len;
	const struct sockaddr *sa = zcr_saddr_get(a, &len);

	if (zc_addr_format(sa, len, buf, size) < 0)
		snprintf(buf, size, "?");
	return buf;
}

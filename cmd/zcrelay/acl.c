/* acl.c - see acl.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

/* "what 'spec': why" into err; returns rc. */
static int acl_err(char *err, size_t errlen, const char *what, const char *spec,
                   const char *why, int rc)
{
	snprintf(err, errlen, "%s '%s': %s", what, spec, why);
	return rc;
}

/* "/BITS" after an address of family fam into *bits; 0 or -EINVAL. */
static int parse_bits(const char *s, int fam, unsigned *bits)
{
	unsigned long max = fam == AF_INET ? 32 : 128, v;
	char *end;

	if (!s) {
		*bits = (unsigned)max;
		return 0;
	}
	errno = 0;
	v = strtoul(s + 1, &end, 10);
	if (s[1] < '0' || s[1] > '9' || *end || errno || v > max)
		return -EINVAL;
	*bits = (unsigned)v;
	return 0;
}

int zcr_acl_add(struct zcr_acl *a, const char *spec, const char *what,
                char *err, size_t errlen)
{
	struct zcr_cidr c = {0};
	const char *slash = strchr(spec, '/');
	size_t n = slash ? (size_t)(slash - spec) : strlen(spec);
	char host[64];
	struct zcr_cidr *v;

	if (strcmp(spec, "unix") == 0) {
		a->unix_clients = 1;
		return 0;
	}
	if (n == 0 || n >= sizeof(host))
		return acl_err(err, errlen, what, spec, "bad address", -EINVAL);
	memcpy(host, spec, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, c.addr) == 1)
		c.family = AF_INET;
	else if (inet_pton(AF_INET6, host, c.addr) == 1)
		c.family = AF_INET6;
	else
		return acl_err(err, errlen, what, spec,
		               "not an IPv4 or IPv6 address (nor \"unix\")",
		               -EINVAL);
	if (parse_bits(slash, c.family, &c.bits)) {
		snprintf(err, errlen, "%s '%s': prefix length is not in 0..%d",
		         what, spec, c.family == AF_INET ? 32 : 128);
		return -EINVAL;
	}
	v = realloc(a->v, (a->n + 1) * sizeof(*v));
	if (!v)
		return acl_err(err, errlen, what, spec, "out of memory",
		               -ENOMEM);
	a->v = v;
	a->v[a->n++] = c;
	return 0;
}

void zcr_acl_free(struct zcr_acl *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}

static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* The address of sa as 16 bytes (IPv4 mapped into IPv6 kept as v4);
 * returns its family, 0 for a family without one. */
static int sa_bytes(const struct sockaddr *sa, uint8_t out[16])
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
	                                     0, 0, 0, 0, 0xff, 0xff};
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	if (memcmp(s6->sin6_addr.s6_addr, v4mapped, 12) == 0) {
		memcpy(out, s6->sin6_addr.s6_addr + 12, 4);
		return AF_INET;
	}
	memcpy(out, s6->sin6_addr.s6_addr, 16);
	return AF_INET6;
}

int zcr_acl_match(const struct zcr_acl *a, const struct sockaddr *sa)
{
	uint8_t b[16];
	int fam, best = -ENOENT;
	unsigned i;

	if (sa->sa_family == AF_UNIX)
		return a->unix_clients ? ZCR_ACL_UNIX : -ENOENT;
	fam = sa_bytes(sa, b);
	for (i = 0; fam && i < a->n; i++)
		if (a->v[i].family == fam && (int)a->v[i].bits > best &&
		    prefix_match(a->v[i].addr, b, a->v[i].bits))
			best = (int)a->v[i].bits;
	return best;
}

int zcr_cidr_contains(const struct zcr_cidr *big, const struct zcr_cidr *small)
{
	return big->family == small->family && big->bits <= small->bits &&
	       prefix_match(big->addr, small->addr, big->bits);
}

int zcr_acl_admits(const struct zcr_acl *allow, const struct zcr_acl *deny,
                   const struct sockaddr *sa)
{
	int yes = zcr_acl_match(allow, sa), no = zcr_acl_match(deny, sa);

	if (yes < 0 && no < 0)
		return allow->n == 0 && !allow->unix_clients;
	return yes > no;
}

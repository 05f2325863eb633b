/*
 * saddr.h - a client's socket address, kept compactly for as long as its
 * session lives: IPv4 and IPv6 in place (32 bytes in all, where a struct
 * sockaddr_storage takes 128), a Unix address as its family alone when
 * it has no name (as a connecting client's has not) and on the heap when
 * it has one (a PROXY header's source, a bound client). Worker thread
 * of the session that owns it.
 */
#ifndef ZCRELAY_SADDR_H
#define ZCRELAY_SADDR_H

#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

struct zcr_sun; /* a named Unix address and its length (saddr.c) */

struct zcr_saddr {
	union {
		sa_family_t family;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct {
			sa_family_t family;
			struct zcr_sun *named; /* NULL: unnamed */
		} un;
	};
};

/*
 * zcr_saddr_set - a becomes a copy of sa (len bytes); whatever a held
 * before is freed (a must be zeroed or set before). A family other than
 * IPv4, IPv6 and Unix keeps its family only. Returns 0, -EINVAL (sa
 * shorter than its family's address) or -ENOMEM (a named Unix address;
 * a is then unnamed).
 */
int zcr_saddr_set(struct zcr_saddr *a, const struct sockaddr *sa,
                  socklen_t len);

/* The address a holds as a struct sockaddr, its length in *len. Valid
 * until a changes. */
const struct sockaddr *zcr_saddr_get(const struct zcr_saddr *a, socklen_t *len);

/* Frees what a holds on the heap; a is then zeroed (AF_UNSPEC). */
void zcr_saddr_free(struct zcr_saddr *a);

/* zc_addr_format() of a into buf (size bytes); "?" when it does not fit.
 * Returns buf. */
char *zcr_saddr_str(const struct zcr_saddr *a, char *buf, size_t size);

#endif

/*
 * acl.h - lists of client addresses: IPv4 and IPv6 CIDR blocks and the
 * word "unix" (clients of Unix socket listeners). The PROXY trusted
 * senders, a route's allow and deny lists and match.source are such
 * lists. Pure: no I/O; a built list is read-only and any thread may
 * match against it.
 */
#ifndef ZCRELAY_ACL_H
#define ZCRELAY_ACL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A CIDR block. */
struct zcr_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned bits;
};

struct zcr_acl {
	struct zcr_cidr *v;
	unsigned n;
	int unix_clients; /* "unix" is in the list */
};

/* A Unix client's "prefix length" in zcr_acl_match(): more specific than
 * any CIDR, so "unix" in one list wins over a /0 in the other. */
#define ZCR_ACL_UNIX 129

/*
 * zcr_acl_add - adds spec to a: "ADDR", "ADDR/BITS" (IPv4 or IPv6, bits
 * within the family's length, the address bits past the prefix ignored)
 * or "unix". what names the list in the message. Returns 0, or -EINVAL
 * (-ENOMEM) with "what 'spec': reason" in err (a is unchanged).
 */
int zcr_acl_add(struct zcr_acl *a, const char *spec, const char *what,
                char *err, size_t errlen);

/* Frees a's entries; a is then empty. */
void zcr_acl_free(struct zcr_acl *a);

/*
 * zcr_acl_match - the prefix length of the most specific entry of a that
 * contains sa (0..128; ZCR_ACL_UNIX for a Unix client and "unix"), or
 * -ENOENT when none does. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, a client
 * of a dual-stack listener) is matched as the IPv4 address.
 */
int zcr_acl_match(const struct zcr_acl *a, const struct sockaddr *sa);

/* Is every address of small in big? 1 or 0. */
int zcr_cidr_contains(const struct zcr_cidr *big, const struct zcr_cidr *small);

/*
 * zcr_acl_admits - the allow/deny decision for sa: the most specific
 * entry of either list that contains sa decides, deny winning a tie.
 * When no entry contains sa, sa is admitted unless allow has entries.
 * Returns 1 (admit) or 0 (refuse).
 */
int zcr_acl_admits(const struct zcr_acl *allow, const struct zcr_acl *deny,
                   const struct sockaddr *sa);

#endif

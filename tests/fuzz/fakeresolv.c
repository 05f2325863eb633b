/*
 * fakeresolv.c - getaddrinfo() and freeaddrinfo() for the fuzz harnesses,
 * linked into every one of them.
 *
 * Host names in fuzz inputs would go to the system resolver: slow, and
 * on a machine without DNS a timeout per input. The executable's
 * definitions win over libc's and over the sanitizers' weak
 * interceptors: a name resolves, by its hash, to nothing, an IPv4 or an
 * IPv6 address - deterministic, so a crash replays.
 */
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* One allocation: the addrinfo and the address it points to. */
struct fz_ai {
	struct addrinfo ai;
	union {
		struct sockaddr_in s4;
		struct sockaddr_in6 s6;
	} u;
};

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res)
{
	struct fz_ai *r;
	uint32_t h = 2166136261u; /* FNV-1a */
	const char *p;

	if (!node || !res)
		return EAI_NONAME;
	for (p = node; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	if (h % 3 == 0)
		return EAI_NONAME;
	r = calloc(1, sizeof(*r));
	if (!r)
		return EAI_MEMORY;
	r->ai.ai_socktype = SOCK_STREAM;
	r->ai.ai_addr = (struct sockaddr *)&r->u;
	if (h % 3 == 1) {
		r->ai.ai_family = AF_INET;
		r->ai.ai_addrlen = sizeof(r->u.s4);
		r->u.s4.sin_family = AF_INET;
		r->u.s4.sin_addr.s_addr = htonl(0xc6120000u | (h & 0xffff));
	} else {
		r->ai.ai_family = AF_INET6;
		r->ai.ai_addrlen = sizeof(r->u.s6);
		r->u.s6.sin6_family = AF_INET6;
		r->u.s6.sin6_addr.s6_addr[0] = 0x20;
		r->u.s6.sin6_addr.s6_addr[1] = 0x01;
		memcpy(&r->u.s6.sin6_addr.s6_addr[12], &h, 4);
	}
	*res = &r->ai;
	return 0;
}

void freeaddrinfo(struct addrinfo *res)
{
	free(res);
}

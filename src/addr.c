/*
 * addr.c - parse and print socket addresses.
 *
 * Accepted forms: "HOST:PORT", "[V6]:PORT", "unix:/path", "unix:@name"
 * (Linux abstract namespace). The parser never reads past the NUL and
 * rejects anything it does not fully consume.
 */
#include "compat.h"

#include <stdio.h>
#include <string.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

/* Parses a decimal port 0..65535 that must fill all of s. */
static int addr_parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	const char *p;

	if (*s == '\0')
		return -EINVAL;
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9' || p - s >= 5)
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int addr_parse_unix(struct zc_addr *out, const char *path)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
	size_t n = strlen(path);

	if (n == 0 || (path[0] == '@' && n == 1))
		return -EINVAL;
	if (n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memset(out, 0, sizeof(*out));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@') {
		/* Abstract: a leading NUL, and the length says where it ends. */
		sun->sun_path[0] = '\0';
		out->len =
		        (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		out->len = (socklen_t)sizeof(*sun);
	}
	return 0;
}

static int addr_set_ip(struct zc_addr *out, const char *host, uint16_t port,
                       int v6)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (v6) {
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		out->len = sizeof(*s6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
		return -EINVAL;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	out->len = sizeof(*s4);
	return 0;
}

/* A host name: letters, digits, '-', '.', '_', at most 253 bytes. */
static int addr_is_hostname(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 253)
		return 0;
	for (; *h; h++) {
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		      (*h >= '0' && *h <= '9') || *h == '-' || *h == '.' ||
		      *h == '_'))
			return 0;
	}
	return 1;
}

static int addr_resolve(struct zc_addr *out, const char *host, uint16_t port)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc == EAI_SYSTEM)
		return errno > 0 ? -errno : -EIO;
	if (rc != 0 || !res)
		return ZC_ERESOLVE + (rc < 0 && rc > -256 ? rc : EAI_NONAME);
	if (res->ai_addrlen > sizeof(out->ss)) {
		freeaddrinfo(res);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	if (res->ai_family == AF_INET)
		((struct sockaddr_in *)&out->ss)->sin_port = htons(port);
	else if (res->ai_family == AF_INET6)
		((struct sockaddr_in6 *)&out->ss)->sin6_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

int zc_addr_parse(struct zc_addr *out, const char *s, unsigned flags)
{
	char host[256];
	const char *colon, *hs;
	size_t hlen;
	uint16_t port;
	int v6 = 0;

	if (!out || !s)
		return -EINVAL;
	if (strncmp(s, "unix:", 5) == 0)
		return addr_parse_unix(out, s + 5);
	if (s[0] == '[') {
		colon = strchr(s, ']');
		if (!colon || colon[1] != ':')
			return -EINVAL;
		hs = s + 1;
		hlen = (size_t)(colon - hs);
		colon++;
		v6 = 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* bare IPv6 needs brackets */
		hs = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen >= sizeof(host) || addr_parse_port(colon + 1, &port))
		return -EINVAL;
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (hlen == 0 || strcmp(host, "*") == 0) {
		if (!(flags & ZC_ADDR_PASSIVE) || v6)
			return -EINVAL;
		strcpy(host, "0.0.0.0");
	}
	if (addr_set_ip(out, host, port, v6) == 0)
		return 0;
	if (v6 || !addr_is_hostname(host) || (flags & ZC_ADDR_NUMERIC))
		return -EINVAL;
	return addr_resolve(out, host, port);
}

int zc_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                   size_t size)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
	char ip[INET6_ADDRSTRLEN];
	size_t plen;
	int n;

	if (!sa || !buf || size == 0)
		return -EINVAL;
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		n = snprintf(buf, size, "%s:%u", ip, ntohs(s4->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		n = snprintf(buf, size, "[%s]:%u", ip, ntohs(s6->sin6_port));
		break;
	}
	case AF_UNIX:
		plen = len > offsetof(struct sockaddr_un, sun_path)
		               ? len - offsetof(struct sockaddr_un, sun_path)
		               : 0;
		if (plen == 0) /* unnamed (a connecting client) */
			n = snprintf(buf, size, "unix:");
		else if (sun->sun_path[0] == '\0')
			n = snprintf(buf, size, "unix:@%.*s", (int)(plen - 1),
			             sun->sun_path + 1);
		else
			n = snprintf(buf, size, "unix:%.*s",
			             (int)strnlen(sun->sun_path, plen),
			             sun->sun_path);
		break;
	default:
		n = snprintf(buf, size, "family-%d", sa->sa_family);
	}
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return n;
}

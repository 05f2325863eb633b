/*
 * unit/saddr.c - compact client addresses (cmd/zcrelay/saddr.c): every
 * family comes back byte for byte with its length, prints as
 * zc_addr_format() prints the original, and only a named Unix address
 * takes heap (the ASan run checks nothing leaks when one is replaced).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/un.h>

#include "runner.h"
#include "saddr.h"

/* a holds exactly sa (len bytes) and prints as want. */
static int holds(const struct zcr_saddr *a, const void *sa, socklen_t len,
                 const char *want)
{
	char buf[160];
	socklen_t got;
	const struct sockaddr *p = zcr_saddr_get(a, &got);

	ASSERT_EQ(got, len);
	ASSERT_MEMEQ(p, sa, len);
	ASSERT_STREQ(zcr_saddr_str(a, buf, sizeof(buf)), want);
	return T_PASS;
}

TEST(test_saddr_inet)
{
	struct zcr_saddr a = {0};
	struct sockaddr_in s4 = {.sin_family = AF_INET,
	                         .sin_port = htons(4433)};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6,
	                          .sin6_port = htons(443),
	                          .sin6_scope_id = 3};
	struct sockaddr_storage ss;

	ASSERT_EQ(inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr), 1);
	ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::9", &s6.sin6_addr), 1);
	/* From a sockaddr_storage (as accept fills it): the length given
	 * may be the storage's. */
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, &s4, sizeof(s4));
	ASSERT_OK(zcr_saddr_set(&a, (struct sockaddr *)&ss, sizeof(ss)));
	ASSERT_EQ(holds(&a, &s4, sizeof(s4), "192.0.2.7:4433"), T_PASS);
	ASSERT_OK(zcr_saddr_set(&a, (struct sockaddr *)&s6, sizeof(s6)));
	ASSERT_EQ(holds(&a, &s6, sizeof(s6), "[2001:db8::9]:443"), T_PASS);
	zcr_saddr_free(&a);
	return T_PASS;
}

/* Shorter than the family's address: refused, a unchanged. */
TEST(test_saddr_short)
{
	struct zcr_saddr a = {0};
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(1)};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};

	ASSERT_OK(zcr_saddr_set(&a, (struct sockaddr *)&s4, sizeof(s4)));
	ASSERT_ERR(zcr_saddr_set(&a, (struct sockaddr *)&s6, sizeof(s6) - 1),
	           -EINVAL);
	ASSERT_ERR(zcr_saddr_set(&a, (struct sockaddr *)&s4, 1), -EINVAL);
	ASSERT_EQ(holds(&a, &s4, sizeof(s4), "0.0.0.0:1"), T_PASS);
	return T_PASS;
}

TEST(test_saddr_unix)
{
	struct zcr_saddr a = {0};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	socklen_t plen = offsetof(struct sockaddr_un, sun_path);

	/* Unnamed, as a connecting client: the family alone, no heap. */
	ASSERT_OK(zcr_saddr_set(&a, (struct sockaddr *)&un, plen));
	ASSERT_EQ(holds(&a, &un, plen, "unix:"), T_PASS);
	ASSERT_TRUE(a.un.named == NULL);
	/* A path (a PROXY v2 source, a bound client). */
	strcpy(un.sun_path, "/run/zc.sock");
	ASSERT_OK(zcr_saddr_set(&a, (struct sockaddr *)&un, sizeof(un)));
	ASSERT_EQ(holds(&a, &un, sizeof(un), "unix:/run/zc.sock"), T_PASS);
	ASSERT_TRUE(a.un.named != NULL);
	/* Abstract, replacing the path (whose copy is freed). */
	memset(un.sun_path, 0, sizeof(un.sun_path));
	memcpy(un.sun_path, "\0zc-abs", 7);
	ASSERT_OK(zcr_saddr_set(&a, (struct sockaddr *)&un, plen + 7));
	ASSERT_EQ(holds(&a, &un, plen + 7, "unix:@zc-abs"), T_PASS);
	zcr_saddr_free(&a);
	ASSERT_EQ(a.family, AF_UNSPEC);
	return T_PASS;
}

/* Another family keeps its family only, and prints as such. */
TEST(test_saddr_other_family)
{
	struct zcr_saddr a = {0};
	struct sockaddr_storage ss = {.ss_family = AF_PACKET};

	ASSERT_OK(zcr_saddr_set(&a, (struct sockaddr *)&ss, sizeof(ss)));
	ASSERT_EQ(holds(&a, &ss, sizeof(sa_family_t), "family-17"), T_PASS);
	return T_PASS;
}

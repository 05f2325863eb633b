/*
 * cfg.c (unit) - trusted PROXY senders: CIDR matching for IPv4, IPv6 and
 * IPv4-mapped IPv6 peers, "unix" for Unix socket clients, bad entries.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "runner.h"
#include "cfg.h"

static int trusts(const struct zcr_route *r, const char *ip)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	struct sockaddr_in s4 = {.sin_family = AF_INET};

	if (inet_pton(AF_INET, ip, &s4.sin_addr) == 1)
		return zcr_route_trusts(r, (struct sockaddr *)&s4);
	if (inet_pton(AF_INET6, ip, &s6.sin6_addr) == 1)
		return zcr_route_trusts(r, (struct sockaddr *)&s6);
	return -1;
}

TEST(test_cfg_trusted_cidrs)
{
	struct zcr_cfg *c = zcr_cfg_new();
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct zcr_route *r;
	char err[ZCR_ERR_MAX];

	ASSERT_TRUE(c != NULL);
	ASSERT_EQ(zcr_route_add(&r, c, "r", err, sizeof(err)), 0);
	ASSERT_EQ(zcr_route_trust(r, "10.0.0.0/8", err, sizeof(err)), 0);
	ASSERT_EQ(zcr_route_trust(r, "192.168.1.7", err, sizeof(err)), 0);
	ASSERT_EQ(zcr_route_trust(r, "fd00::/8", err, sizeof(err)), 0);
	ASSERT_EQ(trusts(r, "10.255.1.2"), 1);
	ASSERT_EQ(trusts(r, "11.0.0.1"), 0);
	ASSERT_EQ(trusts(r, "192.168.1.7"), 1);
	ASSERT_EQ(trusts(r, "192.168.1.8"), 0);
	ASSERT_EQ(trusts(r, "::ffff:10.1.2.3"), 1); /* v4-mapped peer */
	ASSERT_EQ(trusts(r, "fd12::1"), 1);
	ASSERT_EQ(trusts(r, "fe80::1"), 0);
	/* Unix clients only with "unix" */
	ASSERT_EQ(zcr_route_trusts(r, (struct sockaddr *)&sun), 0);
	ASSERT_EQ(zcr_route_trust(r, "unix", err, sizeof(err)), 0);
	ASSERT_EQ(zcr_route_trusts(r, (struct sockaddr *)&sun), 1);
	/* bad entries */
	ASSERT_EQ(zcr_route_trust(r, "10.0.0.0/33", err, sizeof(err)), -EINVAL);
	ASSERT_STREQ(err,
	             "trusted '10.0.0.0/33': prefix length is not in 0..32");
	ASSERT_EQ(zcr_route_trust(r, "example.com", err, sizeof(err)), -EINVAL);
	ASSERT_EQ(zcr_route_trust(r, "::1/", err, sizeof(err)), -EINVAL);
	ASSERT_EQ(zcr_route_trust(r, "", err, sizeof(err)), -EINVAL);
	zcr_cfg_unref(c);
	return T_PASS;
}

TEST(test_cfg_trusted_zero_prefix_trusts_all_of_family)
{
	struct zcr_cfg *c = zcr_cfg_new();
	struct zcr_route *r;
	char err[ZCR_ERR_MAX];

	ASSERT_TRUE(c != NULL);
	ASSERT_EQ(zcr_route_add(&r, c, "r", err, sizeof(err)), 0);
	ASSERT_EQ(zcr_route_trust(r, "0.0.0.0/0", err, sizeof(err)), 0);
	ASSERT_EQ(trusts(r, "203.0.113.9"), 1);
	ASSERT_EQ(trusts(r, "2001:db8::1"), 0);
	zcr_cfg_unref(c);
	return T_PASS;
}

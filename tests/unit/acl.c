/*
 * acl.c (unit) - address lists: the most specific entry of allow and
 * deny decides, deny wins a tie, "unix" for Unix clients, IPv4-mapped
 * IPv6 peers as IPv4, an allow list refuses what it does not contain.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "acl.h"
#include "runner.h"

/* sa for "unix" or an IPv4/IPv6 literal, into ss. */
static const struct sockaddr *t_sa(const char *ip, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strcmp(ip, "unix") == 0)
		ss->ss_family = AF_UNIX;
	else if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	return (const struct sockaddr *)ss;
}

static int t_list(struct zcr_acl *a, const char *const *specs)
{
	char err[256];

	memset(a, 0, sizeof(*a));
	for (; *specs; specs++)
		if (zcr_acl_add(a, *specs, "allow", err, sizeof(err)))
			return t_fail(__FILE__, __LINE__, "%s", err);
	return T_PASS;
}

static int admits(const struct zcr_acl *allow, const struct zcr_acl *deny,
                  const char *ip)
{
	struct sockaddr_storage ss;

	return zcr_acl_admits(allow, deny, t_sa(ip, &ss));
}

TEST(test_acl_most_specific)
{
	static const char *const al[] = {"10.0.0.0/8", "10.1.2.0/24",
	                                 "2001:db8::/32", NULL};
	static const char *const dl[] = {"10.1.0.0/16", "0.0.0.0/0",
	                                 "2001:db8:1::/48", "unix", NULL};
	struct zcr_acl allow, deny;
	struct sockaddr_storage ss;

	ASSERT_EQ(t_list(&allow, al), T_PASS);
	ASSERT_EQ(t_list(&deny, dl), T_PASS);
	ASSERT_EQ(admits(&allow, &deny, "10.9.9.9"), 1);  /* /8 over /0 */
	ASSERT_EQ(admits(&allow, &deny, "10.1.9.9"), 0);  /* /16 over /8 */
	ASSERT_EQ(admits(&allow, &deny, "10.1.2.3"), 1);  /* /24 over /16 */
	ASSERT_EQ(admits(&allow, &deny, "192.0.2.1"), 0); /* only /0 */
	ASSERT_EQ(admits(&allow, &deny, "::ffff:10.1.2.3"), 1);
	ASSERT_EQ(admits(&allow, &deny, "::ffff:10.1.9.9"), 0);
	ASSERT_EQ(admits(&allow, &deny, "2001:db8::1"), 1);
	ASSERT_EQ(admits(&allow, &deny, "2001:db8:1::1"), 0);
	ASSERT_EQ(admits(&allow, &deny, "2001:db9::1"), 0); /* allow list */
	ASSERT_EQ(admits(&allow, &deny, "unix"), 0);
	ASSERT_EQ(zcr_acl_match(&allow, t_sa("10.1.2.255", &ss)), 24);
	ASSERT_EQ(zcr_acl_match(&deny, t_sa("unix", &ss)), ZCR_ACL_UNIX);
	ASSERT_EQ(zcr_acl_match(&allow, t_sa("unix", &ss)), -ENOENT);
	zcr_acl_free(&allow);
	zcr_acl_free(&deny);
	return T_PASS;
}

/* Equal prefixes: deny wins. No lists: everyone. Deny only: the rest. */
TEST(test_acl_ties_and_defaults)
{
	static const char *const same[] = {"192.0.2.0/24", "unix", NULL};
	static const char *const d[] = {"192.0.2.7", NULL};
	static const char *const u[] = {"unix", NULL};
	static const char *const none[] = {NULL};
	struct zcr_acl a, b, empty;

	ASSERT_EQ(t_list(&a, same), T_PASS);
	ASSERT_EQ(t_list(&b, d), T_PASS);
	ASSERT_EQ(t_list(&empty, none), T_PASS);
	ASSERT_EQ(admits(&a, &a, "192.0.2.1"), 0);
	ASSERT_EQ(admits(&a, &a, "unix"), 0);
	ASSERT_EQ(admits(&empty, &empty, "192.0.2.1"), 1);
	ASSERT_EQ(admits(&empty, &empty, "unix"), 1);
	ASSERT_EQ(admits(&empty, &b, "192.0.2.7"), 0);
	ASSERT_EQ(admits(&empty, &b, "192.0.2.8"), 1);
	ASSERT_EQ(admits(&a, &b, "192.0.2.7"), 0); /* /32 over /24 */
	ASSERT_EQ(admits(&a, &b, "192.0.2.9"), 1);
	zcr_acl_free(&b);
	ASSERT_EQ(t_list(&b, u), T_PASS);
	ASSERT_EQ(admits(&b, &empty, "unix"), 1);
	ASSERT_EQ(admits(&b, &empty, "127.0.0.1"), 0); /* allow: unix only */
	zcr_acl_free(&a);
	zcr_acl_free(&b);
	return T_PASS;
}

TEST(test_acl_bad_entries)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
	        {"", "x '': bad address"},
	        {"/8", "x '/8': bad address"},
	        {"10.0.0.0/33",
	         "x '10.0.0.0/33': prefix length is not in 0..32"},
	        {"10.0.0.0/", "x '10.0.0.0/': prefix length is not in 0..32"},
	        {"10.0.0.0/+8",
	         "x '10.0.0.0/+8': prefix length is not in 0..32"},
	        {"::/129", "x '::/129': prefix length is not in 0..128"},
	        {"10.0.0", "x '10.0.0': not an IPv4 or IPv6 address (nor "
	                   "\"unix\")"},
	        {"UNIX", "x 'UNIX': not an IPv4 or IPv6 address (nor "
	                 "\"unix\")"},
	};
	struct zcr_acl a = {0};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EQ(zcr_acl_add(&a, bad[i].spec, "x", err, sizeof(err)),
		          -EINVAL);
		ASSERT_STREQ(err, bad[i].msg);
	}
	ASSERT_EQ(a.n, 0);
	ASSERT_EQ(a.unix_clients, 0);
	ASSERT_EQ(zcr_acl_add(&a, "10.1.2.3/8", "x", err, sizeof(err)), 0);
	ASSERT_EQ(admits(&a, &(struct zcr_acl){0}, "10.200.0.1"), 1);
	zcr_acl_free(&a);
	return T_PASS;
}

/* unit/addr.c - zc_addr_parse() and zc_addr_format(). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "runner.h"

/* Parses s numerically and formats it back. */
static int roundtrip(const char *s, const char *want, unsigned flags)
{
	struct zc_addr a;
	char buf[160];

	ASSERT_EQ(zc_addr_parse(&a, s, flags | ZC_ADDR_NUMERIC), 0);
	ASSERT_OK(zc_addr_format((struct sockaddr *)&a.ss, a.len, buf,
	                         sizeof(buf)));
	ASSERT_STREQ(buf, want);
	return T_PASS;
}

TEST(test_addr_parse_good)
{
	ASSERT_EQ(roundtrip("127.0.0.1:80", "127.0.0.1:80", 0), 0);
	ASSERT_EQ(roundtrip("[::1]:65535", "[::1]:65535", 0), 0);
	ASSERT_EQ(roundtrip("[2001:db8::7]:0", "[2001:db8::7]:0", 0), 0);
	ASSERT_EQ(roundtrip("unix:/run/zc.sock", "unix:/run/zc.sock", 0), 0);
	ASSERT_EQ(roundtrip("unix:@zc-abstract", "unix:@zc-abstract", 0), 0);
	ASSERT_EQ(roundtrip(":8080", "0.0.0.0:8080", ZC_ADDR_PASSIVE), 0);
	ASSERT_EQ(roundtrip("*:8080", "0.0.0.0:8080", ZC_ADDR_PASSIVE), 0);
	return T_PASS;
}

TEST(test_addr_parse_bad)
{
	static const char *const bad[] = {
	        "",
	        "127.0.0.1",
	        "127.0.0.1:",
	        "127.0.0.1:65536",
	        ":80",
	        "[::1]",
	        "[::1]80",
	        "::1:80",
	        "[::1:80",
	        "1.2.3.4:8x",
	        "1.2.3.4:-1",
	        "1.2.3.4:123456",
	        "unix:",
	        "unix:@",
	        "a b:80",
	        "[*]:80",
	        "[1.2.3.4]:80",
	        "host:80:80",
	};
	struct zc_addr a;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = zc_addr_parse(&a, bad[i], ZC_ADDR_NUMERIC);

		if (rc != -EINVAL)
			t_log("input '%s' gave %d", bad[i], rc);
		ASSERT_EQ(rc, -EINVAL);
	}
	ASSERT_EQ(zc_addr_parse(NULL, "1.2.3.4:5", 0), -EINVAL);
	ASSERT_EQ(zc_addr_parse(&a, NULL, 0), -EINVAL);
	return T_PASS;
}

TEST(test_addr_unix_path_limits)
{
	char s[200];
	struct zc_addr a;
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

	memcpy(s, "unix:/", 6);
	memset(s + 6, 'p', max - 1); /* "/" + max-1 chars = max */
	s[6 + max - 1] = '\0';
	ASSERT_EQ(zc_addr_parse(&a, s, 0), 0);
	s[6 + max - 1] = 'p';
	s[6 + max] = '\0';
	ASSERT_EQ(zc_addr_parse(&a, s, 0), -ENAMETOOLONG);
	return T_PASS;
}

TEST(test_addr_resolves_localhost)
{
	struct zc_addr a;
	int rc = zc_addr_parse(&a, "localhost:8080", 0);

	T_SKIP_IF(ZC_IS_ERESOLVE(rc), "localhost does not resolve here: %s",
	          zc_strerror(rc));
	ASSERT_EQ(rc, 0);
	ASSERT_TRUE(a.ss.ss_family == AF_INET || a.ss.ss_family == AF_INET6);
	ASSERT_EQ(zc_addr_parse(&a, "localhost:8080", ZC_ADDR_NUMERIC),
	          -EINVAL);
	return T_PASS;
}

TEST(test_addr_format_small_buffer)
{
	struct zc_addr a;
	char buf[8];

	ASSERT_EQ(zc_addr_parse(&a, "127.0.0.1:80", ZC_ADDR_NUMERIC), 0);
	ASSERT_EQ(zc_addr_format((struct sockaddr *)&a.ss, a.len, buf,
	                         sizeof(buf)),
	          -ENOSPC);
	return T_PASS;
}

/* A name that cannot resolve (a 64-byte label: no DNS query can carry
 * it, so nothing is sent) is reported as such with the resolver's
 * reason, not as an unreachable host. */
TEST(test_addr_unresolved_name_says_so)
{
	char name[128];
	struct zc_addr a;
	int rc;

	memset(name, 'a', 64);
	snprintf(name + 64, sizeof(name) - 64, ".invalid:80");
	rc = zc_addr_parse(&a, name, 0);
	ASSERT_TRUE(ZC_IS_ERESOLVE(rc));
	ASSERT_TRUE(strncmp(zc_strerror(rc), "name did not resolve: ", 22) ==
	            0);
	ASSERT_TRUE(strlen(zc_strerror(rc)) > 22);
	ASSERT_TRUE(!ZC_IS_ERESOLVE(-EHOSTUNREACH));
	ASSERT_TRUE(!ZC_IS_ERESOLVE(ZC_ENOURING));
	return T_PASS;
}

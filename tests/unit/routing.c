/*
 * routing.c (unit) - zcr_name_match's wildcard rule (one label, as in
 * certificates) and zcr_route_pick's order: routes with a match in
 * configuration order, the default last, allow/deny skipping routes.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "routing.h"
#include "runner.h"
#include "tnet.h"

TEST(test_routing_name_match)
{
	ASSERT_EQ(zcr_name_match("a.example.com", "a.example.com"), 1);
	ASSERT_EQ(zcr_name_match("a.example.com", "b.example.com"), 0);
	ASSERT_EQ(zcr_name_match("*.example.com", "a.example.com"), 1);
	ASSERT_EQ(zcr_name_match("*.example.com", "example.com"), 0);
	ASSERT_EQ(zcr_name_match("*.example.com", "a.b.example.com"), 0);
	ASSERT_EQ(zcr_name_match("*.example.com", ".example.com"), 0);
	ASSERT_EQ(zcr_name_match("*.example.com", "aexample.com"), 0);
	ASSERT_EQ(zcr_name_match("*.example.com", "xexample.com.a"), 0);
	ASSERT_EQ(zcr_name_match("*.example.com", "a.example.comx"), 0);
	return T_PASS;
}

static int t_pick(const struct zcr_cfg *c, const struct zcr_sniff *si,
                  int silent, const char *ip)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return zcr_route_pick(c, &c->groups[0], si, silent,
	                      (struct sockaddr *)&sin);
}

/* def (no match) is first in the file but tried last; "in" takes the
 * internal clients, "tls" TLS ones, "quiet" silent ones but for
 * 10.9/16, which its deny list refuses. */
TEST(test_routing_pick_order)
{
	static const char text[] =
	        "routes = (\n"
	        " { name = \"def\"; listen = \"127.0.0.1:7000\";\n"
	        "   upstreams = \"127.0.0.1:1\"; },\n"
	        " { name = \"in\"; listen = \"127.0.0.1:7000\";\n"
	        "   upstreams = \"127.0.0.1:2\";\n"
	        "   match = { source = \"10.0.0.0/8\"; protocol = \"any\"; }; "
	        "},\n"
	        " { name = \"tls\"; listen = \"127.0.0.1:7000\";\n"
	        "   upstreams = \"127.0.0.1:3\";\n"
	        "   match = { protocol = \"tls\"; }; },\n"
	        " { name = \"quiet\"; listen = \"127.0.0.1:7000\";\n"
	        "   upstreams = \"127.0.0.1:4\"; deny = \"10.9.0.0/16\";\n"
	        "   match = { protocol = \"timeout\"; }; } );\n";
	struct zcr_sniff tls = {.proto = ZCR_PROTO_TLS},
	                 ssh = {.proto = ZCR_PROTO_SSH};
	struct zcr_cfg *c;
	char path[256];

	ASSERT_OK(t_write_tmp("r.conf", text, path, sizeof(path)));
	ASSERT_EQ(zcr_cfg_load(path, &c), 0);
	ASSERT_EQ(c->ngroups, 1);
	ASSERT_EQ(c->groups[0].n, 4);
	ASSERT_EQ(c->groups[0].sniff, 1);
	ASSERT_EQ(c->groups[0].routes[3], 0); /* the default last */
	ASSERT_EQ(t_pick(c, &tls, 0, "10.1.2.3"), 1);
	ASSERT_EQ(t_pick(c, &tls, 0, "192.0.2.1"), 2);
	ASSERT_EQ(t_pick(c, &ssh, 0, "192.0.2.1"), 0);
	ASSERT_EQ(t_pick(c, NULL, 1, "10.1.2.3"), 3); /* any: not silent */
	ASSERT_EQ(t_pick(c, NULL, 1, "10.9.2.3"), 0); /* quiet denies */
	zcr_cfg_unref(c);
	return T_PASS;
}

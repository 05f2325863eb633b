/*
 * daemon_admission.c - allow/deny by source address, black-box: a
 * refused client is closed at once and never reaches the upstream (the
 * one allowed session that follows is the upstream's first accept),
 * allowed ones relay; IPv4, IPv6, Unix and the PROXY source. The
 * refusals are counted in /metrics and logged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "proxyproto.h"
#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

/* The listeners of the test's daemon. */
struct adm {
	struct zc_addr v4, v6, ux, pp, admin, ua;
	int ulfd;
	struct t_daemon d;
};

static int adm_up(struct adm *a, const struct t_ctx *ctx)
{
	char s[6][128];

	a->ulfd = t_listen(AF_INET, &a->ua);
	ASSERT_OK(a->ulfd);
	ASSERT_OK(t_free_addr(AF_INET, &a->v4));
	ASSERT_OK(t_free_addr(AF_INET6, &a->v6));
	ASSERT_OK(t_free_addr(AF_UNIX, &a->ux));
	ASSERT_OK(t_free_addr(AF_INET, &a->pp));
	ASSERT_OK(t_free_addr(AF_INET, &a->admin));
	ASSERT_OK(t_addr_str(&a->v4, s[0], sizeof(s[0])));
	ASSERT_OK(t_addr_str(&a->v6, s[1], sizeof(s[1])));
	ASSERT_OK(t_addr_str(&a->ux, s[2], sizeof(s[2])));
	ASSERT_OK(t_addr_str(&a->pp, s[3], sizeof(s[3])));
	ASSERT_OK(t_addr_str(&a->admin, s[4], sizeof(s[4])));
	ASSERT_OK(t_addr_str(&a->ua, s[5], sizeof(s[5])));
	return t_daemon_conf(
	        &a->d, &a->v4,
	        "workers = 1; admin = \"%s\";\n%s\n"
	        "routes = (\n"
	        " { name = \"v4\"; listen = \"%s\"; upstreams = \"%s\";\n"
	        "   mover = \"%s\";\n"
	        "   allow = [\"127.0.0.0/8\"]; deny = \"127.0.0.2/32\"; },\n"
	        " { name = \"v6\"; listen = \"%s\"; upstreams = \"%s\";\n"
	        "   deny = [\"::1\"]; },\n"
	        " { name = \"ux\"; listen = \"%s\"; upstreams = \"%s\";\n"
	        "   deny = [\"unix\"]; },\n"
	        " { name = \"pp\"; listen = \"%s\"; upstreams = \"%s\";\n"
	        "   proxy-protocol = { accept = true;\n"
	        "     trusted = \"127.0.0.1\"; };\n"
	        "   deny = [\"192.0.2.0/24\"]; allow = \"0.0.0.0/0\"; } );\n",
	        s[4], t_cfg_engine(ctx), s[0], s[5], t_cfg_mover(ctx), s[1],
	        s[5], s[2], s[5], s[3], s[5]);
}

/* What a client sends: hlen bytes of hdr (a PROXY header, or nothing),
 * then "ping"; out holds hlen + 4 bytes. */
static void hello(uint8_t *out, const uint8_t *hdr, size_t hlen)
{
	if (hlen)
		memcpy(out, hdr, hlen);
	memcpy(out + hlen, "ping", 4);
}

/* A client that must be closed within 2 s, having sent hlen bytes of
 * hdr (a PROXY header, or nothing) and "ping". */
static int refused(const struct zc_addr *la, const char *src,
                   const uint8_t *hdr, size_t hlen)
{
	uint8_t out[ZCR_PP_MAX + 4];
	int c = t_connect_from(la, src), r;

	ASSERT_OK(c);
	hello(out, hdr, hlen);
	(void)!send(c, out, hlen + 4, MSG_NOSIGNAL); /* may be closed */
	r = t_wait_eof(c, 2000);
	close(c);
	ASSERT_TRUE(t_is_closed(r));
	return T_PASS;
}

/* A client that relays: the upstream's next accept is this client. */
static int allowed(const struct adm *a, const struct zc_addr *la,
                   const char *src, const uint8_t *hdr, size_t hlen)
{
	uint8_t out[ZCR_PP_MAX + 4];
	int c = t_connect_from(la, src), u;

	ASSERT_OK(c);
	hello(out, hdr, hlen);
	ASSERT_OK(t_write_all(c, out, hlen + 4));
	u = t_accept_ms(a->ulfd, 5000);
	ASSERT_OK(u);
	return t_ping_pong(c, u, "ping", 4);
}

/* A v1 header from src (IPv4) to 127.0.0.1:80. */
static size_t pp_hdr(const char *src, uint8_t *buf)
{
	return (size_t)snprintf((char *)buf, ZCR_PP_MAX,
	                        "PROXY TCP4 %s 127.0.0.1 4000 80\r\n", src);
}

static int adm_metrics(const struct adm *a)
{
	char *body = NULL;
	static const char *const routes[] = {"v4", "v6", "ux", "pp"};
	size_t i;

	ASSERT_EQ(t_http_get(&a->admin, "/metrics", &body), 200);
	ASSERT_TRUE(body);
	for (i = 0; i < 4; i++)
		ASSERT_METRIC(body, 1,
		              "zcrelay_route_rejected_total{route=\"%s\","
		              "reason=\"denied\"}",
		              routes[i]);
	ASSERT_METRIC(body, 1, "zcrelay_route_sessions_total{route=\"v4\"}");
	/* A PROXY route counts its clients before their header is read. */
	ASSERT_METRIC(body, 2, "zcrelay_route_sessions_total{route=\"pp\"}");
	free(body);
	return T_PASS;
}

/*
 * Each listener gets refused clients first, then one allowed client
 * whose session must be the upstream's first accept: a refused client
 * never caused an upstream connect.
 */
TEST(test_daemon_admission)
{
	struct adm a;
	uint8_t h[ZCR_PP_MAX];
	int rc;

	T_SKIP_IF(!t_daemon_path(), "ZC_DAEMON not set");
	T_TRY(adm_up(&a, ctx));
	ASSERT_OK(t_wait_listen(&a.ux, 5000));
	ASSERT_EQ(refused(&a.v4, "127.0.0.2", NULL, 0), T_PASS);
	ASSERT_EQ(refused(&a.v6, NULL, NULL, 0), T_PASS);
	ASSERT_EQ(refused(&a.ux, NULL, NULL, 0), T_PASS);
	ASSERT_EQ(refused(&a.pp, "127.0.0.1", h, pp_hdr("192.0.2.7", h)),
	          T_PASS);
	ASSERT_EQ(allowed(&a, &a.v4, "127.0.0.3", NULL, 0), T_PASS);
	ASSERT_EQ(allowed(&a, &a.pp, "127.0.0.1", h, pp_hdr("198.51.100.1", h)),
	          T_PASS);
	ASSERT_ERR(t_accept_ms(a.ulfd, 0), -ETIMEDOUT);
	ASSERT_EQ(t_wait_log_count(&a.d, "denied by allow/deny", NULL, 4, 5000),
	          4);
	ASSERT_EQ(t_log_count(&a.d, "client=192.0.2.7", "denied"), 1);
	ASSERT_EQ(adm_metrics(&a), T_PASS);
	close(a.ulfd);
	rc = t_daemon_down(&a.d);
	t_cleanup_unix(&a.ux);
	return rc;
}

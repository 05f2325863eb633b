/*
 * daemon_metrics.c - the admin endpoint, black-box: after sessions of
 * known sizes both ways, rejections (max-conns, an untrusted PROXY
 * sender) and refused upstreams, GET /metrics answers 200 with text that
 * promtool accepts and counters that match to the byte; other paths are
 * 404.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/* promtool check metrics on text: T_PASS, T_SKIP without promtool. */
static int promtool_check(const char *text)
{
	char in[256], cmd[300];

	T_SKIP_IF(!t_in_path("promtool"),
	          "promtool not in PATH (Debian: prometheus package)");
	ASSERT_OK(t_write_tmp("metrics.txt", text, in, sizeof(in)));
	snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s'", in);
	ASSERT_EQ(t_run(cmd), 0);
	return T_PASS;
}

/*
 * One session through la to the upstream listening on ulfd: in bytes of
 * stream seed one way and out bytes of seed + 1 the other, both checked,
 * then both sides close.
 */
static int session_sized(const struct zc_addr *la, int ulfd, uint64_t in,
                         uint64_t out, uint64_t seed)
{
	unsigned char want[T_SHA256_LEN];
	struct t_xfer tx[2], rx[2];
	int c, u;

	c = t_connect(la);
	ASSERT_OK(c);
	u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(u);
	ASSERT_OK(t_receiver_start(&rx[0], u, 0));
	ASSERT_OK(t_receiver_start(&rx[1], c, 0));
	ASSERT_OK(t_sender_start(&tx[0], c, in, seed, T_XFER_SHUT_WR));
	ASSERT_OK(t_sender_start(&tx[1], u, out, seed + 1, T_XFER_SHUT_WR));
	ASSERT_OK(t_xfer_join_ms(&tx[0], 30000));
	ASSERT_OK(t_xfer_join_ms(&tx[1], 30000));
	ASSERT_OK(t_xfer_join_ms(&rx[0], 30000));
	ASSERT_OK(t_xfer_join_ms(&rx[1], 30000));
	ASSERT_EQ(rx[0].bytes, in);
	ASSERT_EQ(rx[1].bytes, out);
	t_expect_digest(seed, in, want);
	ASSERT_MEMEQ(rx[0].digest, want, T_SHA256_LEN);
	t_expect_digest(seed + 1, out, want);
	ASSERT_MEMEQ(rx[1].digest, want, T_SHA256_LEN);
	close(c);
	close(u);
	return T_PASS;
}

/* A client of la that the daemon must close within 2 s. */
static int closed_client(const struct zc_addr *la)
{
	int c, r;

	c = t_connect(la);
	ASSERT_OK(c);
	r = t_wait_eof(c, 2000);
	close(c);
	ASSERT_TRUE(t_is_closed(r));
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* The test                                                             */

/* Sizes (client -> upstream, upstream -> client) of route m's sessions. */
static const uint64_t sizes[3][2] = {
        {(1u << 20) + 1, (3u << 20) + 7},
        {100, 0},
        {0, 5000},
};

/*
 * Routes: m (max-conns 1) in front of a live upstream, dead in front of
 * a refused one, pp accepting PROXY headers from 10.0.0.0/8 only.
 */
TEST_MATRIX(test_daemon_metrics_counts)
{
	char cfg[4096], path[256], s[6][128], *body = NULL;
	struct zc_addr la, ld, lp, aa, ua, dead;
	uint64_t in = 0, out = 0;
	struct t_daemon d;
	int ulfd, rc, held, hu, i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &ld));
	ASSERT_OK(t_free_addr(AF_INET, &lp));
	ASSERT_OK(t_free_addr(AF_INET, &aa));
	ASSERT_OK(t_free_addr(AF_INET, &dead));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	ASSERT_OK(t_addr_str(&la, s[0], sizeof(s[0])));
	ASSERT_OK(t_addr_str(&ld, s[1], sizeof(s[1])));
	ASSERT_OK(t_addr_str(&lp, s[2], sizeof(s[2])));
	ASSERT_OK(t_addr_str(&ua, s[3], sizeof(s[3])));
	ASSERT_OK(t_addr_str(&dead, s[4], sizeof(s[4])));
	ASSERT_OK(t_addr_str(&aa, s[5], sizeof(s[5])));
	snprintf(
	        cfg, sizeof(cfg),
	        "workers = 2;\n%s\nadmin = \"%s\";\nroutes = (\n"
	        "  { name = \"m\"; listen = \"%s\"; upstreams = \"%s\";\n"
	        "    mover = \"%s\"; max-conns = 1; },\n"
	        "  { name = \"dead\"; listen = \"%s\"; upstreams = \"%s\"; },\n"
	        "  { name = \"pp\"; listen = \"%s\"; upstreams = \"%s\";\n"
	        "    proxy-protocol = { accept = true;\n"
	        "                       trusted = [ \"10.0.0.0/8\" ]; }; }\n"
	        ");\n",
	        t_cfg_engine(ctx), s[5], s[0], s[3], t_cfg_mover(ctx), s[1],
	        s[4], s[2], s[3]);
	T_TRY(t_daemon_up_cfg(&d, "zcrelay.conf", cfg, path, sizeof(path),
	                      &la));
	ASSERT_OK(t_wait_listen(&aa, 5000));

	/* m: a session held open (it has reached the upstream, so it is
	 * counted) while a second client is turned away. */
	held = t_connect(&la);
	ASSERT_OK(held);
	hu = t_accept_ms(ulfd, 5000);
	ASSERT_OK(hu);
	T_TRY(closed_client(&la));
	ASSERT_EQ(t_wait_log_count(&d, "route at max-conns", NULL, 1, 2000), 1);
	close(held);
	close(hu);
	ASSERT_EQ(t_wait_log_count(&d, "info session ", " route=m ", 1, 5000),
	          1);
	for (i = 0; i < 3; i++) {
		T_TRY(session_sized(&la, ulfd, sizes[i][0], sizes[i][1],
		                    700 + (uint64_t)i));
		in += sizes[i][0];
		out += sizes[i][1];
		ASSERT_EQ(t_wait_log_count(&d, "info session ", " route=m ",
		                           i + 2, 5000),
		          i + 2);
	}
	/* dead: refused twice; pp: an untrusted sender. */
	for (i = 0; i < 2; i++) {
		T_TRY(closed_client(&ld));
	}
	T_TRY(closed_client(&lp));
	ASSERT_EQ(t_wait_log_count(&d, "no upstream reachable", NULL, 2, 2000),
	          2);
	ASSERT_EQ(t_wait_log_count(&d, "not a trusted", NULL, 1, 2000), 1);

	ASSERT_EQ(t_http_get(&aa, "/metrics", &body), 200);
	ASSERT_TRUE(body);
	rc = promtool_check(body);
	if (rc == T_FAIL)
		return rc;

	ASSERT_METRIC(body, 4, "zcrelay_route_sessions_total{route=\"m\"}");
	ASSERT_METRIC(body, 0, "zcrelay_route_sessions_active{route=\"m\"}");
	ASSERT_METRIC(
	        body, in,
	        "zcrelay_route_bytes_total{route=\"m\",direction=\"in\"}");
	ASSERT_METRIC(body, out,
	              "zcrelay_route_bytes_total{route=\"m\","
	              "direction=\"out\"}");
	ASSERT_METRIC(body, 4,
	              "zcrelay_upstream_sessions_total{route=\"m\","
	              "upstream=\"%s\"}",
	              s[3]);
	ASSERT_METRIC(
	        body, in,
	        "zcrelay_upstream_bytes_total{route=\"m\",upstream=\"%s\","
	        "direction=\"in\"}",
	        s[3]);
	ASSERT_METRIC(
	        body, out,
	        "zcrelay_upstream_bytes_total{route=\"m\",upstream=\"%s\","
	        "direction=\"out\"}",
	        s[3]);
	ASSERT_EQ(t_metric(body,
	                   "zcrelay_route_spliced_bytes_total{route=\"m\"}") +
	                  t_metric(body, "zcrelay_route_copied_bytes_total{"
	                                 "route=\"m\"}"),
	          in + out);
	if (ctx->mover == ZC_MOVER_COPY)
		ASSERT_METRIC(body, 0,
		              "zcrelay_route_spliced_bytes_total{route=\"m\"}");
	ASSERT_METRIC(body, 1,
	              "zcrelay_route_rejected_total{route=\"m\","
	              "reason=\"maxconn\"}");
	ASSERT_METRIC(body, 0,
	              "zcrelay_route_rejected_total{route=\"m\","
	              "reason=\"no_upstream\"}");

	ASSERT_METRIC(body, 2, "zcrelay_route_sessions_total{route=\"dead\"}");
	ASSERT_METRIC(body, 2,
	              "zcrelay_route_rejected_total{route=\"dead\","
	              "reason=\"no_upstream\"}");
	ASSERT_METRIC(body, 2,
	              "zcrelay_upstream_connect_failures_total{route=\"dead\","
	              "upstream=\"%s\"}",
	              s[4]);
	ASSERT_METRIC(body, 0,
	              "zcrelay_route_bytes_total{route=\"dead\","
	              "direction=\"in\"}");
	ASSERT_METRIC(body, 1,
	              "zcrelay_route_rejected_total{route=\"pp\","
	              "reason=\"proxy\"}");
	ASSERT_METRIC(body, 0,
	              "zcrelay_upstream_sessions_total{route=\"pp\","
	              "upstream=\"%s\"}",
	              s[3]);
	free(body);
	close(ulfd);
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	return rc;
}

/* Paths other than /metrics and / are 404; / is a page; a malformed
 * request gets 400 and the endpoint goes on serving. */
TEST(test_daemon_metrics_paths)
{
	char cfg[1024], path[256], as[128], ls[128], us[128], *body = NULL;
	struct zc_addr la, aa, ua;
	struct t_daemon d;
	char buf[64];
	ssize_t n;
	int c;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &aa));
	ASSERT_OK(t_free_addr(AF_INET, &ua));
	ASSERT_OK(t_addr_str(&la, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(&aa, as, sizeof(as)));
	ASSERT_OK(t_addr_str(&ua, us, sizeof(us)));
	snprintf(cfg, sizeof(cfg),
	         "admin = \"%s\";\nroutes = ( { name = \"r\"; listen = \"%s\";"
	         " upstreams = \"%s\"; } );\n",
	         as, ls, us);
	T_TRY(t_daemon_up_cfg(&d, "zcrelay.conf", cfg, path, sizeof(path),
	                      &la));
	ASSERT_OK(t_wait_listen(&aa, 5000));
	ASSERT_EQ(t_http_get(&aa, "/nope", NULL), 404);
	ASSERT_EQ(t_http_get(&aa, "/metricsx", NULL), 404);
	ASSERT_EQ(t_http_get(&aa, "/", &body), 200);
	ASSERT_HAS(body, "/metrics");
	free(body);

	/* Garbage: 400, and /metrics still answers. */
	c = t_connect(&aa);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, "\x01\x02 nonsense\r\n\r\n", 15));
	n = t_read_full(c, buf, sizeof(buf) - 1, 5000);
	ASSERT_GT(n, 12);
	buf[n] = '\0';
	ASSERT_HAS(buf, " 400 ");
	close(c);
	ASSERT_EQ(t_http_get(&aa, "/metrics", &body), 200);
	ASSERT_HAS(body, "zcrelay_route_sessions_total{route=\"r\"} 0\n");
	free(body);
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	return T_PASS;
}

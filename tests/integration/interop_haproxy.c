/*
 * interop_haproxy.c - the PROXY headers zcrelay sends, read by the
 * reference implementation: HAProxy (2.6 on Debian 12) with
 * accept-proxy between the daemon and the upstream. HAProxy resets a
 * connection whose header it refuses, so a ping-pong through it proves
 * it took the header. Clients of a Unix listener are the case that
 * broke: the v2 AF_UNIX family made HAProxy 2.6 reset every session.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"
#include "tprog.h"

#define NO_HAPROXY "haproxy not in PATH (Debian: haproxy package)"

/* HAProxy on ha (accept-proxy) in front of the upstream ua. */
static int haproxy_up(struct t_prog *p, const struct zc_addr *ha,
                      const struct zc_addr *ua)
{
	char cfg[1024], path[256], hs[128], us[128], cmd[512];

	ASSERT_OK(t_addr_str(ha, hs, sizeof(hs)));
	ASSERT_OK(t_addr_str(ua, us, sizeof(us)));
	snprintf(cfg, sizeof(cfg),
	         "global\n  maxconn 64\n"
	         "defaults\n  mode tcp\n  timeout connect 5s\n"
	         "  timeout client 30s\n  timeout server 30s\n"
	         "listen l\n  bind %s accept-proxy\n  server s %s\n",
	         hs, us);
	ASSERT_OK(t_write_tmp("haproxy.cfg", cfg, path, sizeof(path)));
	snprintf(cmd, sizeof(cmd), "haproxy -db -f '%s'", path);
	ASSERT_OK(t_prog_start(p, "haproxy", cmd));
	ASSERT_OK(t_wait_listen(ha, 10000));
	return T_PASS;
}

/* A Unix client of la reaches the upstream (through HAProxy) and
 * relays both ways. */
static int unix_ping(const struct zc_addr *la, int ulfd)
{
	int c = t_connect(la), u;

	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, "ping", 4));
	u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(u);
	return t_ping_pong(c, u, "ping", 4);
}

/*
 * Two Unix listeners, send = 2 and send = 1, both through HAProxy: v2
 * LOCAL and v1 UNKNOWN are accepted, and the session relays.
 */
TEST(test_interop_haproxy_unix_clients)
{
	struct zc_addr la, la2, ha, ua;
	struct t_daemon d;
	struct t_prog hp = {0};
	char ls[128], ls2[128], hs[128];
	int ulfd, rc;

	T_SKIP_IF(!t_daemon_path(), "ZC_DAEMON not set");
	T_SKIP_IF(!t_in_path("haproxy"), NO_HAPROXY);
	ASSERT_OK(t_free_addr(AF_UNIX, &la));
	ASSERT_OK(t_free_addr(AF_UNIX, &la2));
	ASSERT_OK(t_free_addr(AF_INET, &ha));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	if (haproxy_up(&hp, &ha, &ua) != T_PASS) {
		t_prog_stop(&hp, 1);
		return T_FAIL;
	}
	ASSERT_OK(t_addr_str(&la, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(&la2, ls2, sizeof(ls2)));
	ASSERT_OK(t_addr_str(&ha, hs, sizeof(hs)));
	rc = t_daemon_conf(&d, &la,
	                   "routes = ( { name = \"v2\"; listen = \"%s\";\n"
	                   "  upstreams = [\"%s\"];\n"
	                   "  proxy-protocol = { send = 2; }; },\n"
	                   " { name = \"v1\"; listen = \"%s\";\n"
	                   "  upstreams = [\"%s\"];\n"
	                   "  proxy-protocol = { send = 1; }; } );\n",
	                   ls, hs, ls2, hs);
	if (rc == T_PASS)
		rc = t_wait_listen(&la2, 5000) ? T_FAIL : T_PASS;
	if (rc == T_PASS)
		rc = unix_ping(&la, ulfd);
	if (rc == T_PASS)
		rc = unix_ping(&la2, ulfd);
	t_prog_stop(&hp, rc != T_PASS);
	ASSERT_EQ(rc, T_PASS);
	close(ulfd);
	rc = t_daemon_down(&d);
	t_cleanup_unix(&la);
	t_cleanup_unix(&la2);
	return rc;
}

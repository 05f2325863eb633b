/*
 * daemon_routing.c - content routing, black-box, with raw clients the
 * test drives byte by byte: a 10 KiB ClientHello in 1-byte writes (also
 * behind a PROXY header), plaintext HTTP by Host, a server-first
 * protocol by the sniff-timeout, a no-match close, the log fields and
 * the counters, and that the bulk of a routed session is spliced.
 * daemon_routing_real.c does the same with real programs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

#include "runner.h"
#include "tdaemon.h"
#include "thello.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* Upstreams the test accepts on itself. */
struct ups {
	int fd[3];
	char s[3][64];
};

/* Free TCP addresses for a daemon's listener (la) and admin endpoint
 * (ad), and both as text (ls, as: 64 bytes each). */
static int listen_admin(struct zc_addr *la, char *ls, struct zc_addr *ad,
                        char *as)
{
	ASSERT_OK(t_free_addr(AF_INET, la));
	ASSERT_OK(t_free_addr(AF_INET, ad));
	ASSERT_OK(t_addr_str(la, ls, 64));
	ASSERT_OK(t_addr_str(ad, as, 64));
	return T_PASS;
}

static int ups_open(struct ups *u, int n)
{
	struct zc_addr a;
	int i;

	for (i = 0; i < n; i++) {
		u->fd[i] = t_listen(AF_INET, &a);
		ASSERT_OK(u->fd[i]);
		ASSERT_OK(t_addr_str(&a, u->s[i], sizeof(u->s[i])));
	}
	return T_PASS;
}

static void ups_close(struct ups *u, int n)
{
	int i;

	for (i = 0; i < n; i++)
		close(u->fd[i]);
}

/* A client of la that writes buf one byte per send (TCP_NODELAY, so
 * each is a segment of its own). Returns the fd. */
static int send_bytewise(const struct zc_addr *la, const uint8_t *buf, size_t n)
{
	int c = t_connect(la), one = 1;
	size_t i;

	ASSERT_OK(c);
	ASSERT_OK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
	for (i = 0; i < n; i++)
		ASSERT_OK(t_write_all(c, buf + i, 1));
	return c;
}

/* The upstream of index want among u's n accepts the session, reads
 * exactly buf[0..n), and relays a ping-pong. */
static int upstream_gets(struct ups *u, int nu, int want, int c,
                         const uint8_t *buf, size_t n)
{
	static uint8_t got[65536];
	int which = -1, s = t_accept_any(u->fd, nu, 5000, &which);

	ASSERT_OK(s);
	ASSERT_EQ(which, want);
	ASSERT_EQ(t_read_full(s, got, n, 5000), (ssize_t)n);
	ASSERT_MEMEQ(got, buf, n);
	ASSERT_OK(t_write_all(c, "ping", 4));
	return t_ping_pong(c, s, "ping", 4);
}

/* Routes "big" (sni big.example.com, to u0) and "def" (to u1) on la,
 * and the same two behind PROXY headers on lp. */
static int hello_daemon(struct t_daemon *d, const struct t_ctx *ctx,
                        const struct zc_addr *la, const struct zc_addr *lp,
                        const struct ups *u)
{
	static const char route[] =
	        " { name = \"%s\"; listen = \"%s\"; upstreams = \"%s\";\n"
	        "   mover = \"%s\"; %s %s },\n";
	static const char pp[] = "proxy-protocol = { accept = true; "
	                         "trusted = \"127.0.0.1\"; };";
	static const char sni[] = "match = { sni = \"big.example.com\"; };";
	char ls[64], lps[64], r[4][512];
	const char *mv = t_cfg_mover(ctx);

	ASSERT_OK(t_addr_str(la, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(lp, lps, sizeof(lps)));
	snprintf(r[0], sizeof(r[0]), route, "big", ls, u->s[0], mv, "", sni);
	snprintf(r[1], sizeof(r[1]), route, "def", ls, u->s[1], mv, "", "");
	snprintf(r[2], sizeof(r[2]), route, "ppbig", lps, u->s[0], mv, pp, sni);
	snprintf(r[3], sizeof(r[3]), route, "ppdef", lps, u->s[1], mv, pp, "");
	r[3][strlen(r[3]) - 2] = ' '; /* the last one: no comma */
	return t_daemon_conf(d, la,
	                     "workers = 1;\n%s\nroutes = (\n%s%s%s%s);\n",
	                     t_cfg_engine(ctx), r[0], r[1], r[2], r[3]);
}

/*
 * A 10 KiB hello (padding extension) in 1-byte writes is routed by its
 * server name and reaches the upstream unchanged; behind a v1 PROXY
 * header on a second listener too (the header is consumed, the hello
 * is not). Another name goes to the default route.
 */
TEST_MATRIX(test_routing_hello_bytewise)
{
	static uint8_t hello[16384], pp[16384 + 64];
	struct zc_addr la, lp;
	struct t_daemon d;
	struct ups u;
	size_t n, hl;
	int c;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(ups_open(&u, 2), T_PASS);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &lp));
	ASSERT_EQ(hello_daemon(&d, ctx, &la, &lp, &u), T_PASS);
	ASSERT_OK(t_wait_listen(&lp, 5000));
	n = t_hello("big.example.com", "h2", 10240, 16384, hello,
	            sizeof(hello));
	ASSERT_GT(n, 10240);
	c = send_bytewise(&la, hello, n);
	ASSERT_EQ(upstream_gets(&u, 2, 0, c, hello, n), T_PASS);

	hl = (size_t)sprintf((char *)pp,
	                     "PROXY TCP4 192.0.2.1 127.0.0.1 5000 443\r\n");
	memcpy(pp + hl, hello, n);
	c = send_bytewise(&lp, pp, hl + n);
	ASSERT_EQ(upstream_gets(&u, 2, 0, c, hello, n), T_PASS);

	n = t_hello("other.example.com", NULL, 0, 100, hello, sizeof(hello));
	c = send_bytewise(&la, hello, n);
	ASSERT_EQ(upstream_gets(&u, 2, 1, c, hello, n), T_PASS);
	ASSERT_EQ(t_wait_log_count(&d, " session ", "sni=big.example.com", 2,
	                           5000),
	          2);
	ASSERT_EQ(t_log_count(&d, "client=192.0.2.1:5000", "route=ppbig"), 1);
	ASSERT_EQ(t_wait_log_count(&d, "route=def ",
	                           "protocol=tls sni=other.example.com alpn=-",
	                           1, 5000),
	          1);
	ups_close(&u, 2);
	return t_daemon_down(&d);
}

/*
 * Plaintext HTTP/1.x by Host (port and case ignored, a wildcard), the
 * request unchanged upstream; a host no route takes is closed (a FIN,
 * not a reset: HTTP gets no alert) and counted.
 */
TEST(test_routing_http_host)
{
	static const char ra[] = "GET /a HTTP/1.1\r\nUser-Agent: t\r\n"
	                         "Host: WWW.A.test:8080\r\n\r\n";
	static const char rb[] = "POST /b HTTP/1.0\nhost: x.b.test\n\n";
	static const char rn[] = "GET / HTTP/1.1\r\nHost: y.x.b.test\r\n\r\n";
	struct zc_addr la, ad;
	struct t_daemon d;
	struct ups u;
	char ls[64], as[64], *body = NULL;
	int c;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(ups_open(&u, 2), T_PASS);
	T_TRY(listen_admin(&la, ls, &ad, as));
	ASSERT_EQ(
	        t_daemon_conf(&d, &la,
	                      "workers = 1; admin = \"%s\";\nroutes = (\n"
	                      " { name = \"a\"; listen = \"%s\"; upstreams = "
	                      "\"%s\";\n"
	                      "   match = { http-host = \"www.a.test\"; }; },\n"
	                      " { name = \"b\"; listen = \"%s\"; upstreams = "
	                      "\"%s\";\n"
	                      "   match = { http-host = [\"*.b.test\"];\n"
	                      "             protocol = \"http\"; }; } );\n",
	                      as, ls, u.s[0], ls, u.s[1]),
	        T_PASS);
	c = send_bytewise(&la, (const uint8_t *)ra, strlen(ra));
	ASSERT_EQ(upstream_gets(&u, 2, 0, c, (const uint8_t *)ra, strlen(ra)),
	          T_PASS);
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, rb, strlen(rb)));
	ASSERT_EQ(upstream_gets(&u, 2, 1, c, (const uint8_t *)rb, strlen(rb)),
	          T_PASS);
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, rn, strlen(rn)));
	ASSERT_EQ(t_wait_eof(c, 5000), 0); /* EOF, not ECONNRESET */
	close(c);
	ASSERT_ERR(t_accept_any(u.fd, 2, 0, NULL), -ETIMEDOUT);
	ASSERT_EQ(t_wait_log_count(&d, "no route matched: protocol=http", NULL,
	                           1, 5000),
	          1);
	ASSERT_EQ(t_http_get(&ad, "/metrics", &body), 200);
	ASSERT_METRIC(body, 1,
	              "zcrelay_listener_rejected_total{listen=\"%s\","
	              "reason=\"no_match\"}",
	              ls);
	ASSERT_METRIC(body, 0,
	              "zcrelay_listener_tls_alerts_total{listen=\"%s\"}", ls);
	ASSERT_METRIC(body, 1, "zcrelay_route_matched_total{route=\"a\"}");
	ASSERT_METRIC(body, 1, "zcrelay_route_matched_total{route=\"b\"}");
	free(body);
	ups_close(&u, 2);
	return t_daemon_down(&d);
}

/*
 * A server-first protocol: the client sends nothing, so after the
 * listener's sniff-timeout (300 ms, from accept) the "timeout" route
 * takes it and the upstream speaks first. A TLS client on the same
 * listener goes to the TLS route at once.
 */
TEST_MATRIX(test_routing_timeout)
{
	static uint8_t hello[1024];
	struct zc_addr la;
	struct t_daemon d;
	struct ups u;
	char ls[64], buf[16];
	uint64_t t0;
	size_t n;
	int c, s;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(ups_open(&u, 2), T_PASS);
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_addr_str(&la, ls, sizeof(ls)));
	ASSERT_EQ(t_daemon_conf(&d, &la,
	                        "workers = 1;\n%s\nroutes = (\n"
	                        " { name = \"smtp\"; listen = \"%s\";\n"
	                        "   upstreams = \"%s\"; mover = \"%s\";\n"
	                        "   sniff-timeout = \"300ms\";\n"
	                        "   match = { protocol = \"timeout\"; }; },\n"
	                        " { name = \"tls\"; listen = \"%s\";\n"
	                        "   upstreams = \"%s\"; mover = \"%s\";\n"
	                        "   sniff-timeout = 300;\n"
	                        "   match = { protocol = \"tls\"; }; } );\n",
	                        t_cfg_engine(ctx), ls, u.s[0], t_cfg_mover(ctx),
	                        ls, u.s[1], t_cfg_mover(ctx)),
	          T_PASS);
	t0 = t_now_ms();
	c = t_connect(&la);
	ASSERT_OK(c);
	s = t_accept_ms(u.fd[0], 5000);
	ASSERT_OK(s);
	ASSERT_GE(t_now_ms() - t0, 300);
	ASSERT_OK(t_write_all(s, "220 hi\r\n", 8));
	ASSERT_EQ(t_read_full(c, buf, 8, 5000), 8);
	ASSERT_MEMEQ(buf, "220 hi\r\n", 8);
	ASSERT_OK(t_write_all(c, "QUIT", 4));
	ASSERT_EQ(t_read_full(s, buf, 4, 5000), 4);
	close(c);
	close(s);

	n = t_hello("t.example.com", NULL, 0, 16384, hello, sizeof(hello));
	t0 = t_now_ms();
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, hello, n));
	ASSERT_EQ(upstream_gets(&u, 2, 1, c, hello, n), T_PASS);
	ASSERT_LT(t_now_ms() - t0, 300);
	ASSERT_EQ(t_wait_log_count(&d, "route=smtp ", "protocol=timeout", 1,
	                           5000),
	          1);
	ups_close(&u, 2);
	return t_daemon_down(&d);
}

/*
 * After the routing decision the session is an ordinary relay: 1 GiB
 * from the upstream of a TLS-routed session (a hello, then bulk bytes)
 * is checked by its SHA-256 and, on the splice mover, /metrics counts
 * all of it but the hello as spliced.
 */
TEST_TIMEOUT(test_routing_bulk_spliced, 300)
{
	static uint8_t hello[1024];
	const uint64_t total = 1ull << 30;
	struct zc_addr la, ad;
	struct t_daemon d;
	struct ups u;
	struct t_xfer tx, rx;
	unsigned char want[T_SHA256_LEN];
	char ls[64], as[64], *body = NULL;
	long long spliced;
	size_t n;
	int c;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(ups_open(&u, 1), T_PASS);
	T_TRY(listen_admin(&la, ls, &ad, as));
	ASSERT_EQ(t_daemon_conf(&d, &la,
	                        "workers = 1; admin = \"%s\";\nroutes = (\n"
	                        " { name = \"r\"; listen = \"%s\";\n"
	                        "   upstreams = \"%s\"; mover = \"splice\";\n"
	                        "   match = { sni = \"bulk.example.com\"; };"
	                        " } );\n",
	                        as, ls, u.s[0]),
	          T_PASS);
	n = t_hello("bulk.example.com", "h2", 0, 16384, hello, sizeof(hello));
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, hello, n));
	{
		int s = t_accept_ms(u.fd[0], 5000);
		static uint8_t got[1024];

		ASSERT_OK(s);
		ASSERT_EQ(t_read_full(s, got, n, 5000), (ssize_t)n);
		ASSERT_MEMEQ(got, hello, n);
		ASSERT_OK(t_receiver_start(&rx, c, 0));
		ASSERT_OK(t_sender_start(&tx, s, total, 7, T_XFER_CLOSE));
		ASSERT_OK(t_xfer_join_ms(&tx, 240000));
		ASSERT_OK(t_xfer_join_ms(&rx, 240000));
	}
	ASSERT_EQ(rx.bytes, total);
	t_expect_digest(7, total, want);
	ASSERT_MEMEQ(rx.digest, want, T_SHA256_LEN);
	close(c);
	ASSERT_EQ(t_wait_log_count(&d, "route=r ", "sni=bulk.example.com", 1,
	                           10000),
	          1);
	ASSERT_EQ(t_http_get(&ad, "/metrics", &body), 200);
	spliced = t_metric(body, "zcrelay_route_spliced_bytes_total{"
	                         "route=\"r\"}");
	t_log("spliced %lld of %llu bytes", spliced,
	      (unsigned long long)(total + n));
	ASSERT_GE(spliced, (long long)(total - total / 100));
	free(body);
	ups_close(&u, 1);
	return t_daemon_down(&d);
}

/* The config text of test_routing_unknown_and_reload: route "x" (sni
 * x.example.com, to u0) and, with def, a default route (to u1). */
static void unknown_cfg(char *buf, size_t size, const char *as, const char *ls,
                        const struct ups *u, int def)
{
	char d[512] = "";

	if (def)
		snprintf(d, sizeof(d),
		         ",\n { name = \"def\"; listen = \"%s\"; upstreams = "
		         "\"%s\";\n   sniff-timeout = \"300ms\"; }",
		         ls, u->s[1]);
	snprintf(buf, size,
	         "workers = 1; admin = \"%s\";\nroutes = (\n"
	         " { name = \"x\"; listen = \"%s\"; upstreams = \"%s\";\n"
	         "   sniff-timeout = \"300ms\";\n"
	         "   match = { sni = \"x.example.com\"; }; }%s );\n",
	         as, ls, u->s[0], d);
}

/*
 * Garbage goes to the default route at once, a hello cut short after
 * the sniff-timeout (unknown), both with their bytes intact; /sessions
 * shows what the client sent. Then a reload takes the default route
 * away, on the same listening socket: garbage is closed.
 */
TEST(test_routing_unknown_and_reload)
{
	static uint8_t hello[1024];
	static const uint8_t junk[] = "\x01\x02 not a protocol\r\n";
	struct zc_addr la, ad;
	struct t_daemon d;
	struct ups u;
	char ls[64], as[64], path[256], text[2048], *body = NULL;
	size_t n;
	int c, s;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(ups_open(&u, 2), T_PASS);
	T_TRY(listen_admin(&la, ls, &ad, as));
	unknown_cfg(text, sizeof(text), as, ls, &u, 1);
	ASSERT_EQ(t_daemon_up_cfg(&d, "zcrelay.conf", text, path, sizeof(path),
	                          &la),
	          T_PASS);
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, junk, sizeof(junk) - 1));
	ASSERT_EQ(upstream_gets(&u, 2, 1, c, junk, sizeof(junk) - 1), T_PASS);

	n = t_hello("x.example.com", "h2", 0, 16384, hello, sizeof(hello));
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, hello, n - 10)); /* cut short */
	s = t_accept_ms(u.fd[1], 5000);
	ASSERT_OK(s);
	ASSERT_EQ(t_read_full(s, hello + 512, n - 10, 5000), (ssize_t)(n - 10));
	ASSERT_MEMEQ(hello + 512, hello, n - 10);
	ASSERT_EQ(t_http_get(&ad, "/sessions?route=def", &body), 200);
	ASSERT_HAS(body, "\"protocol\":\"unknown\"");
	free(body);
	close(c);
	close(s);

	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, hello, n));
	s = t_accept_ms(u.fd[0], 5000);
	ASSERT_OK(s);
	ASSERT_EQ(t_http_get(&ad, "/sessions?route=x", &body), 200);
	ASSERT_HAS(body, "\"protocol\":\"tls\",\"sni\":\"x.example.com\","
	                 "\"alpn\":\"h2\"");
	free(body);
	close(c);
	close(s);

	unknown_cfg(text, sizeof(text), as, ls, &u, 0);
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
	ASSERT_EQ(kill(d.pid, SIGHUP), 0);
	ASSERT_EQ(t_wait_log_count(&d, "reloaded", NULL, 1, 5000), 1);
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, junk, sizeof(junk) - 1));
	ASSERT_EQ(t_wait_eof(c, 5000), 0);
	close(c);
	ASSERT_EQ(t_wait_log_count(&d, "no route matched: protocol=unknown",
	                           NULL, 1, 5000),
	          1);
	ASSERT_ERR(t_accept_any(u.fd, 2, 0, NULL), -ETIMEDOUT);
	ups_close(&u, 2);
	return t_daemon_down(&d);
}

/* GET path on ad until its body has want (5 s at most); the last body
 * in *body (the caller frees it). Returns the HTTP status. */
static int get_until(const struct zc_addr *ad, const char *path,
                     const char *want, char **body)
{
	int i, st = -1;

	for (i = 0; i < 100; i++) {
		st = t_http_get(ad, path, body);
		if (st != 200 || strstr(*body, want))
			return st;
		free(*body);
		*body = NULL;
		usleep(50000);
	}
	return st;
}

/*
 * Sessions before their relay runs are listed with their stage: one
 * waiting for its first bytes ("sniffing", no protocol yet), one
 * waiting for its PROXY header ("proxy-header"); once the hello came,
 * the session relays and shows what the client sent. (The pre-relay
 * state is kept apart from the session and freed when the relay
 * starts: the listing reads both.)
 */
TEST(test_routing_sessions_before_relay)
{
	static uint8_t hello[1024];
	struct zc_addr la, lp, ad;
	struct t_daemon d;
	struct ups u;
	char ls[64], lps[64], as[64], text[2048], path[256], *body = NULL;
	size_t n;
	int c, p, s;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_EQ(ups_open(&u, 1), T_PASS);
	T_TRY(listen_admin(&la, ls, &ad, as));
	ASSERT_OK(t_free_addr(AF_INET, &lp));
	ASSERT_OK(t_addr_str(&lp, lps, sizeof(lps)));
	snprintf(text, sizeof(text),
	         "workers = 1; admin = \"%s\";\nroutes = (\n"
	         " { name = \"x\"; listen = \"%s\"; upstreams = \"%s\";\n"
	         "   sniff-timeout = \"30s\";\n"
	         "   match = { sni = \"x.example.com\"; }; },\n"
	         " { name = \"pp\"; listen = \"%s\"; upstreams = \"%s\";\n"
	         "   proxy-protocol = { accept = true; trusted = "
	         "\"127.0.0.1\"; timeout = \"30s\"; }; } );\n",
	         as, ls, u.s[0], lps, u.s[0]);
	ASSERT_EQ(t_daemon_up_cfg(&d, "zcrelay.conf", text, path, sizeof(path),
	                          &la),
	          T_PASS);
	ASSERT_OK(t_wait_listen(&lp, 5000));
	c = t_connect(&la);
	ASSERT_OK(c);
	p = t_connect(&lp);
	ASSERT_OK(p);
	ASSERT_EQ(get_until(&ad, "/sessions?route=x", "\"state\":\"sniffing\"",
	                    &body),
	          200);
	ASSERT_HAS(body, "\"state\":\"sniffing\"");
	ASSERT_TRUE(strstr(body, "\"protocol\"") == NULL);
	free(body);
	ASSERT_EQ(get_until(&ad, "/sessions?route=pp",
	                    "\"state\":\"proxy-header\"", &body),
	          200);
	ASSERT_HAS(body, "\"state\":\"proxy-header\"");
	free(body);

	n = t_hello("x.example.com", "h2", 0, 100, hello, sizeof(hello));
	ASSERT_OK(t_write_all(c, hello, n));
	s = t_accept_ms(u.fd[0], 5000);
	ASSERT_OK(s);
	ASSERT_EQ(t_read_full(s, hello + 512, n, 5000), (ssize_t)n);
	ASSERT_EQ(t_ping(c, s), T_PASS);
	ASSERT_EQ(t_http_get(&ad, "/sessions?route=x", &body), 200);
	ASSERT_HAS(body, "\"state\":\"relaying\"");
	ASSERT_HAS(body, "\"protocol\":\"tls\",\"sni\":\"x.example.com\","
	                 "\"alpn\":\"h2\"");
	free(body);
	close(s);
	close(c);
	close(p);
	ups_close(&u, 1);
	return t_daemon_down(&d);
}

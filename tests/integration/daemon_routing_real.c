/*
 * daemon_routing_real.c - content routing against real programs:
 * openssl s_server upstreams with certificates made at test time and
 * openssl s_client, curl and ssh-keyscan clients. Each client must reach
 * the upstream its server name, ALPN or protocol selects: the
 * certificate (or host key) it is shown says which one it reached.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"
#include "tprog.h"

#define NO_DAEMON  "ZC_DAEMON not set"
#define NO_OPENSSL "openssl not in PATH (Debian: openssl package)"

/* An upstream that is a real program: openssl s_server, python3
 * http.server. */
struct real_up {
	struct t_prog p;
	struct zc_addr a;
	char s[64];
};

/* A self-signed certificate for CN=cn in t_tmpdir(): cn.crt, cn.key. */
static int make_cert(const char *cn)
{
	char cmd[1024], *out = NULL;
	int rc;

	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
	         "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
	         "'/CN=%s' -keyout '%s.key' -out '%s.crt'",
	         t_tmpdir(), cn, cn, cn);
	rc = t_sh(cmd, &out);
	if (rc)
		t_log("%s: %s", cmd, out ? out : "");
	free(out);
	ASSERT_EQ(rc, 0);
	return T_PASS;
}

static int tls_up_start(struct real_up *u, const char *cn, const char *extra)
{
	char cmd[1024];

	ASSERT_EQ(make_cert(cn), T_PASS);
	ASSERT_OK(t_free_addr(AF_INET, &u->a));
	ASSERT_OK(t_addr_str(&u->a, u->s, sizeof(u->s)));
	snprintf(cmd, sizeof(cmd),
	         "openssl s_server -accept %s -cert '%s/%s.crt' -key "
	         "'%s/%s.key' -www -quiet %s",
	         u->s, t_tmpdir(), cn, t_tmpdir(), cn, extra);
	ASSERT_OK(t_prog_start(&u->p, cn, cmd));
	ASSERT_OK(t_wait_listen(&u->a, 10000));
	return T_PASS;
}

static void real_ups_stop(struct real_up *u, int n, int dump)
{
	int i;

	for (i = 0; i < n; i++)
		t_prog_stop(&u[i].p, dump);
}

/* cmd's output must contain want. */
static int output_has(const char *cmd, const char *want)
{
	char *out = NULL;

	t_sh(cmd, &out);
	ASSERT_TRUE(out);
	if (!strstr(out, want)) {
		t_log("%s: wanted %s, got:\n%s", cmd, want, out);
		free(out);
		return T_FAIL;
	}
	free(out);
	return T_PASS;
}

/* The openssl s_client command line for la and server name sni (NULL:
 * none) into cmd. */
static int s_client_cmd(const struct zc_addr *la, const char *sni, char *cmd,
                        size_t size)
{
	char ls[64];

	ASSERT_OK(t_addr_str(la, ls, sizeof(ls)));
	snprintf(cmd, size,
	         "echo | timeout 10 openssl s_client -connect %s %s%s", ls,
	         sni ? "-servername " : "-noservername", sni ? sni : "");
	return T_PASS;
}

/* The client with sni must be shown the certificate of cn. */
static int reaches(const struct zc_addr *la, const char *sni, const char *cn)
{
	char cmd[512], want[128];

	ASSERT_EQ(s_client_cmd(la, sni, cmd, sizeof(cmd)), T_PASS);
	snprintf(want, sizeof(want), "subject=CN = %s\n", cn);
	return output_has(cmd, want);
}

static int sni_daemon(struct t_daemon *d, const struct t_ctx *ctx,
                      const struct zc_addr *la, const struct zc_addr *ln,
                      const struct zc_addr *ad, const struct real_up *u)
{
	char ls[64], ns[64], as[64];

	ASSERT_OK(t_addr_str(la, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(ln, ns, sizeof(ns)));
	ASSERT_OK(t_addr_str(ad, as, sizeof(as)));
	return t_daemon_conf(
	        d, la,
	        "workers = 2; admin = \"%s\";\n%s\nroutes = (\n"
	        " { name = \"a\"; listen = [\"%s\", \"%s\"];\n"
	        "   upstreams = \"%s\"; mover = \"%s\";\n"
	        "   match = { sni = [\"a.example.com\"]; }; },\n"
	        " { name = \"b\"; listen = \"%s\"; upstreams = \"%s\";\n"
	        "   mover = \"%s\";\n"
	        "   match = { sni = [\"b.example.com\", \"*.w.example.com\"]; "
	        "}; },\n"
	        " { name = \"d\"; listen = \"%s\"; upstreams = \"%s\";\n"
	        "   mover = \"%s\"; } );\n",
	        as, t_cfg_engine(ctx), ls, ns, u[0].s, t_cfg_mover(ctx), ls,
	        u[1].s, t_cfg_mover(ctx), ls, u[2].s, t_cfg_mover(ctx));
}

/* The routing checks of test_routing_tls_sni; T_PASS or T_FAIL. */
static int sni_checks(struct t_daemon *d, const struct zc_addr *la,
                      const struct zc_addr *ln, const struct zc_addr *ad)
{
	char *body = NULL, ns[64], cmd[512];

	if (reaches(la, "a.example.com", "a.example.com") ||
	    reaches(la, "A.EXAMPLE.COM", "a.example.com") ||
	    reaches(la, "b.example.com", "b.example.com") ||
	    reaches(la, "x.w.example.com", "b.example.com") ||
	    reaches(la, "y.x.w.example.com", "d.example.com") ||
	    reaches(la, "w.example.com", "d.example.com") ||
	    reaches(la, NULL, "d.example.com") ||
	    reaches(ln, "a.example.com", "a.example.com"))
		return T_FAIL;
	/* ln has no default: another name gets alert 112. */
	ASSERT_EQ(s_client_cmd(ln, "nobody.example.com", cmd, sizeof(cmd)),
	          T_PASS);
	ASSERT_EQ(output_has(cmd, "unrecognized name"), T_PASS);
	ASSERT_OK(t_addr_str(ln, ns, sizeof(ns)));
	ASSERT_EQ(t_wait_log_count(d, "no route matched: protocol=tls",
	                           "sni=nobody.example.com", 1, 5000),
	          1);
	ASSERT_EQ(t_http_get(ad, "/metrics", &body), 200);
	ASSERT_METRIC(body, 1,
	              "zcrelay_listener_tls_alerts_total{listen=\"%s\"}", ns);
	ASSERT_METRIC(body, 3, "zcrelay_route_matched_total{route=\"a\"}");
	ASSERT_METRIC(body, 2, "zcrelay_route_matched_total{route=\"b\"}");
	ASSERT_METRIC(body, 3, "zcrelay_route_matched_total{route=\"d\"}");
	free(body);
	return T_PASS;
}

/*
 * Three openssl s_server upstreams, a.example.com, b.example.com (also
 * for *.w.example.com) and d.example.com (the default), behind one
 * listener: s_client is shown the certificate its server name selects,
 * case and wildcard rules included. A second listener with no default
 * answers an unknown name with alert 112, which s_client reports.
 */
TEST_MATRIX(test_routing_tls_sni)
{
	static const char *const cn[3] = {"a.example.com", "b.example.com",
	                                  "d.example.com"};
	struct real_up u[3];
	struct zc_addr la, ln, ad;
	struct t_daemon d;
	int i, rc = T_PASS;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_SKIP_IF(!t_in_path("openssl"), NO_OPENSSL);
	memset(u, 0, sizeof(u));
	for (i = 0; i < 3 && rc == T_PASS; i++)
		rc = tls_up_start(&u[i], cn[i], "");
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &ln));
	ASSERT_OK(t_free_addr(AF_INET, &ad));
	if (rc == T_PASS)
		rc = sni_daemon(&d, ctx, &la, &ln, &ad, u);
	if (rc == T_PASS)
		rc = sni_checks(&d, &la, &ln, &ad);
	real_ups_stop(u, 3, rc != T_PASS);
	ASSERT_EQ(rc, T_PASS);
	return t_daemon_down(&d);
}

/* curl with opts to scheme://host:PORT/ through la (PORT: la's port,
 * host resolved to 127.0.0.1): its output must contain want. */
static int curl_shows(const struct zc_addr *la, const char *opts,
                      const char *scheme, const char *host, const char *want)
{
	char cmd[512];
	unsigned port = ntohs(((const struct sockaddr_in *)&la->ss)->sin_port);

	snprintf(cmd, sizeof(cmd),
	         "timeout 10 curl %s --resolve %s:%u:127.0.0.1 %s://%s:%u/",
	         opts, host, port, scheme, host, port);
	return output_has(cmd, want);
}

/* curl over HTTPS through la with ALPN proto ("--http2", "--http1.1"):
 * the subject of the certificate it was shown must name cn. */
static int curl_reaches(const struct zc_addr *la, const char *proto,
                        const char *cn)
{
	char opts[128], want[128];

	snprintf(opts, sizeof(opts), "-skv -o /dev/null %s", proto);
	snprintf(want, sizeof(want), "subject: CN=%s", cn);
	return curl_shows(la, opts, "https", "www.example.com", want);
}

/* curl --http2 and --http1.1 to one listener reach the upstreams the
 * ALPN offers select (curl offers "h2,http/1.1" or "http/1.1"). */
TEST(test_routing_alpn_curl)
{
	struct real_up u[2];
	struct zc_addr la;
	struct t_daemon d;
	char ls[64];
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_SKIP_IF(!t_in_path("openssl"), NO_OPENSSL);
	T_SKIP_IF(!t_in_path("curl"), "curl not in PATH (Debian: curl)");
	memset(u, 0, sizeof(u));
	rc = tls_up_start(&u[0], "h2.example.com", "");
	if (rc == T_PASS)
		rc = tls_up_start(&u[1], "h11.example.com", "");
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_addr_str(&la, ls, sizeof(ls)));
	if (rc == T_PASS)
		rc = t_daemon_conf(
		        &d, &la,
		        "workers = 1;\nroutes = (\n"
		        " { name = \"h2\"; listen = \"%s\"; upstreams = "
		        "\"%s\";\n"
		        "   match = { alpn = [\"h2\"]; }; },\n"
		        " { name = \"h11\"; listen = \"%s\";\n"
		        "   upstreams = \"%s\";\n"
		        "   match = { alpn = [\"http/1.1\", \"http/1.0\"];\n"
		        "             sni = \"www.example.com\"; }; } );\n",
		        ls, u[0].s, ls, u[1].s);
	if (rc == T_PASS)
		rc = curl_reaches(&la, "--http2", "h2.example.com");
	if (rc == T_PASS)
		rc = curl_reaches(&la, "--http1.1", "h11.example.com");
	real_ups_stop(u, 2, rc != T_PASS);
	ASSERT_EQ(rc, T_PASS);
	ASSERT_EQ(
	        t_wait_log_count(&d, "route=h2 ", "alpn=h2,http/1.1", 1, 5000),
	        1);
	return t_daemon_down(&d);
}

/* An OpenSSH server on a fresh port with a host key made now; its
 * public key in pub. */
static int sshd_start(struct t_prog *p, struct zc_addr *a, char *pub,
                      size_t size, char *fp, size_t fpsize)
{
	char cmd[1024], ks[64], *out = NULL;
	int rc;

	ASSERT_OK(t_free_addr(AF_INET, a));
	ASSERT_OK(t_addr_str(a, ks, sizeof(ks)));
	snprintf(cmd, sizeof(cmd),
	         "ssh-keygen -q -t ed25519 -N '' -f '%s/hostkey' && "
	         "cut -d' ' -f2 '%s/hostkey.pub'",
	         t_tmpdir(), t_tmpdir());
	rc = t_sh(cmd, &out);
	ASSERT_EQ(rc, 0);
	ASSERT_TRUE(out && strlen(out) > 20);
	snprintf(pub, size, "%.*s", (int)strcspn(out, "\n"), out);
	free(out);
	snprintf(cmd, sizeof(cmd),
	         "ssh-keygen -lf '%s/hostkey.pub' | cut "
	         "-d' ' -f2",
	         t_tmpdir());
	ASSERT_EQ(t_sh(cmd, &out), 0);
	ASSERT_TRUE(out && strncmp(out, "SHA256:", 7) == 0);
	snprintf(fp, fpsize, "%.*s", (int)strcspn(out, "\n"), out);
	free(out);
	mkdir("/run/sshd", 0755); /* privilege separation directory */
	snprintf(cmd, sizeof(cmd),
	         "/usr/sbin/sshd -D -e -f /dev/null -o ListenAddress=%s "
	         "-o HostKey='%s/hostkey' -o PidFile=none -o UsePAM=no",
	         ks, t_tmpdir());
	ASSERT_OK(t_prog_start(p, "sshd", cmd));
	ASSERT_OK(t_wait_listen(a, 10000));
	return T_PASS;
}

/* ssh (which sends its banner first) and ssh-keyscan (which waits for
 * the server's) through la reach the sshd whose key is pub / fp. */
static int ssh_reaches(const struct zc_addr *la, const char *pub,
                       const char *fp)
{
	char cmd[512];
	unsigned port = ntohs(((const struct sockaddr_in *)&la->ss)->sin_port);

	snprintf(cmd, sizeof(cmd),
	         "timeout 10 ssh -v -o BatchMode=yes -o "
	         "StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
	         "-p %u nobody@127.0.0.1 true",
	         port);
	if (output_has(cmd, fp))
		return T_FAIL;
	snprintf(cmd, sizeof(cmd),
	         "timeout 10 ssh-keyscan -T 5 -t ed25519 -p %u 127.0.0.1",
	         port);
	return output_has(cmd, pub);
}

/*
 * sslh's use: SSH and HTTPS on one port. ssh (protocol ssh) and
 * ssh-keyscan (which waits for the server to speak first: the timeout
 * route) through the listener are shown the sshd's host key, s_client
 * the TLS upstream's certificate.
 */
TEST(test_routing_ssh_and_tls)
{
	struct real_up u[1];
	struct t_prog sp = {0};
	struct zc_addr la, sa;
	struct t_daemon d;
	char ls[64], ss[64], pub[256], fp[128];
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_SKIP_IF(!t_in_path("openssl"), NO_OPENSSL);
	T_SKIP_IF(access("/usr/sbin/sshd", X_OK) || !t_in_path("ssh-keyscan") ||
	                  !t_in_path("ssh"),
	          "no /usr/sbin/sshd or ssh-keyscan (Debian: openssh-server, "
	          "openssh-client)");
	memset(u, 0, sizeof(u));
	rc = tls_up_start(&u[0], "web.example.com", "");
	if (rc == T_PASS)
		rc = sshd_start(&sp, &sa, pub, sizeof(pub), fp, sizeof(fp));
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_addr_str(&la, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(&sa, ss, sizeof(ss)));
	if (rc == T_PASS)
		rc = t_daemon_conf(
		        &d, &la,
		        "workers = 1;\nroutes = (\n"
		        " { name = \"ssh\"; listen = \"%s\"; upstreams = "
		        "\"%s\";\n"
		        "   sniff-timeout = \"500ms\";\n"
		        "   match = { protocol = \"ssh\"; }; },\n"
		        " { name = \"ssh-wait\"; listen = \"%s\";\n"
		        "   upstreams = \"%s\"; sniff-timeout = \"500ms\";\n"
		        "   match = { protocol = \"timeout\"; }; },\n"
		        " { name = \"web\"; listen = \"%s\";\n"
		        "   upstreams = \"%s\"; sniff-timeout = \"500ms\";\n"
		        "   match = { protocol = \"tls\"; }; } );\n",
		        ls, ss, ls, ss, ls, u[0].s);
	if (rc == T_PASS)
		rc = ssh_reaches(&la, pub, fp);
	if (rc == T_PASS)
		rc = reaches(&la, "web.example.com", "web.example.com");
	t_prog_stop(&sp, rc != T_PASS);
	real_ups_stop(u, 1, rc != T_PASS);
	ASSERT_EQ(rc, T_PASS);
	ASSERT_EQ(t_wait_log_count(&d, "route=ssh ", "protocol=ssh", 1, 5000),
	          1);
	ASSERT_EQ(t_wait_log_count(&d, "route=ssh-wait ", "protocol=timeout", 1,
	                           5000),
	          1);
	return t_daemon_down(&d);
}

/* A plain HTTP upstream: python3 -m http.server serving a directory
 * whose index.html says name. */
static int http_up_start(struct real_up *u, const char *name)
{
	char cmd[1024], *out = NULL;

	ASSERT_OK(t_free_addr(AF_INET, &u->a));
	ASSERT_OK(t_addr_str(&u->a, u->s, sizeof(u->s)));
	snprintf(cmd, sizeof(cmd),
	         "mkdir -p '%s/%s' && echo 'upstream %s' > '%s/%s/index.html'",
	         t_tmpdir(), name, name, t_tmpdir(), name);
	ASSERT_EQ(t_sh(cmd, &out), 0);
	free(out);
	snprintf(cmd, sizeof(cmd),
	         "python3 -m http.server --bind 127.0.0.1 --directory '%s/%s' "
	         "%u",
	         t_tmpdir(), name,
	         ntohs(((const struct sockaddr_in *)&u->a.ss)->sin_port));
	ASSERT_OK(t_prog_start(&u->p, name, cmd));
	ASSERT_OK(t_wait_listen(&u->a, 10000));
	return T_PASS;
}

/* curl http://host:PORT/ through la must get "upstream want". */
static int curl_host_gets(const struct zc_addr *la, const char *host,
                          const char *want)
{
	char body[64];

	snprintf(body, sizeof(body), "upstream %s", want);
	return curl_shows(la, "-s", "http", host, body);
}

/* Plaintext HTTP by Host with curl and two real HTTP servers. */
TEST(test_routing_http_host_curl)
{
	struct real_up u[2];
	struct zc_addr la;
	struct t_daemon d;
	char ls[64];
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_SKIP_IF(!t_in_path("curl") || !t_in_path("python3"),
	          "curl or python3 not in PATH (Debian: curl, python3)");
	memset(u, 0, sizeof(u));
	rc = http_up_start(&u[0], "www");
	if (rc == T_PASS)
		rc = http_up_start(&u[1], "api");
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_addr_str(&la, ls, sizeof(ls)));
	if (rc == T_PASS)
		rc = t_daemon_conf(
		        &d, &la,
		        "workers = 1;\nroutes = (\n"
		        " { name = \"api\"; listen = \"%s\"; upstreams = "
		        "\"%s\";\n"
		        "   match = { http-host = \"api.example.com\"; }; },\n"
		        " { name = \"www\"; listen = \"%s\";\n"
		        "   upstreams = \"%s\"; } );\n",
		        ls, u[1].s, ls, u[0].s);
	if (rc == T_PASS)
		rc = curl_host_gets(&la, "api.example.com", "api");
	if (rc == T_PASS)
		rc = curl_host_gets(&la, "www.example.com", "www");
	real_ups_stop(u, 2, rc != T_PASS);
	ASSERT_EQ(rc, T_PASS);
	ASSERT_EQ(t_wait_log_count(&d, "route=api ", "protocol=http", 1, 5000),
	          1);
	return t_daemon_down(&d);
}

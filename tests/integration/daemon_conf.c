/*
 * daemon_conf.c - the configuration file (-c), black-box: `zcrelay -n`
 * on good and bad files (every error as FILE:LINE: message, exit 1), a
 * -c file mixed with route options (exit 2), and a running two-route
 * file: port ranges, abstract and path Unix listeners, each relaying
 * byte-exact to its own route's upstream, and the file mode of Unix
 * path listeners.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "runner.h"
#include "tdaemon.h"
#include "tproc.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* ------------------------------------------------------------------ */
/* Helpers (the shared ones are in tests/lib/tdaemon.c)                */

/* Runs the daemon with argv: status want, whole output out exactly. */
static int expect_run(const char *const argv[], int want, const char *out)
{
	return t_expect_exit(argv, want, out, 1);
}

/*
 * Writes text to the file name in t_tmpdir() and checks `zcrelay -n -c
 * FILE` (and, with run set, `zcrelay -c FILE` too: the same checks
 * before starting) against want and the expected lines: each is
 * printed after the file's path, so ":3: unknown ..." stands for
 * "PATH:3: unknown ...". lines is NULL-terminated.
 */
static int check_conf(const char *name, const char *text, int want, int run,
                      const char *const lines[])
{
	char path[512], out[4096];
	size_t len = 0;
	int i, rc;

	ASSERT_OK(t_write_tmp(name, text, path, sizeof(path)));
	out[0] = '\0';
	for (i = 0; lines[i]; i++) {
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s\n",
		                        path, lines[i]);
		ASSERT_LT(len, sizeof(out));
	}
	{
		const char *const check[] = {"-n", "-c", path, NULL};
		const char *const start[] = {"-c", path, NULL};

		rc = expect_run(check, want, out);
		if (rc == T_PASS && run)
			rc = expect_run(start, want, out);
	}
	return rc;
}

/* The path of a Unix address from t_free_addr. */
static const char *unix_path(const struct zc_addr *a)
{
	return ((const struct sockaddr_un *)&a->ss)->sun_path;
}

/* ------------------------------------------------------------------ */
/* zcrelay -n                                                          */

/* A file using every kind of setting: exit 0, no output at all, and
 * nothing bound (the Unix listener's file is not created). */
TEST(test_daemon_conf_check_ok)
{
	static const char *const none[] = {NULL};
	struct zc_addr ul, ad;
	char text[4096];

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_free_addr(AF_UNIX, &ul));
	ASSERT_OK(t_free_addr(AF_INET, &ad));
	snprintf(text, sizeof(text),
	         "# every kind of setting\n"
	         "workers = 2;\n"
	         "engine = \"auto\";\n"
	         "drain-timeout = \"2s\";\n"
	         "pipe-size = 65536;\n"
	         "max-pipes = 64;\n"
	         "admin = \"127.0.0.1:%u\";\n"
	         "log = { level = \"warn\"; format = \"json\"; "
	         "sessions = false; };\n"
	         "routes = (\n"
	         "  {\n"
	         "    name = \"web\";\n"
	         "    listen = [ \"127.0.0.1:25001-25003\", "
	         "\"unix:@zctest-conf-ok\" ];\n"
	         "    upstreams = ( \"127.0.0.1:1\",\n"
	         "                  { address = \"127.0.0.1:2\"; weight = 3; "
	         "} );\n"
	         "    balance = \"leastconn\";\n"
	         "    mover = \"copy\";\n"
	         "    connect-timeout = \"1500ms\";\n"
	         "    idle-timeout = \"2m\";\n"
	         "    halfclose-timeout = 500;\n"
	         "    max-conns = 100;\n"
	         "    max-conns-per-client = 4;\n"
	         "    health = { fail-max = 2; cooldown = 1000; };\n"
	         "  },\n"
	         "  {\n"
	         "    name = \"local\";\n"
	         "    listen = \"unix:%s\";\n"
	         "    unix-mode = \"0600\";\n"
	         "    upstreams = \"unix:/nonexistent/up.sock\";\n"
	         "    balance = \"source\";\n"
	         "    proxy-protocol = { send = 2; accept = true; "
	         "trusted = [ \"127.0.0.0/8\", \"::1\" ]; timeout = \"3s\"; "
	         "};\n"
	         "  }\n"
	         ");\n",
	         ntohs(((struct sockaddr_in *)&ad.ss)->sin_port),
	         unix_path(&ul));
	if (check_conf("ok.conf", text, 0, 0, none))
		return T_FAIL;
	ASSERT_ERR(access(unix_path(&ul), F_OK) == -1 ? -errno : 0, -ENOENT);
	t_cleanup_unix(&ul);
	return T_PASS;
}

/* Many errors of every kind in one file: all of them, in line order,
 * and nothing else; the same when starting without -n. */
TEST(test_daemon_conf_errors_all_listed)
{
	static const char text[] =
	        "workers = 0;\n"                                      /* 1 */
	        "colour = \"blue\";\n"                                /* 2 */
	        "engine = \"kqueue\";\n"                              /* 3 */
	        "routes = (\n"                                        /* 4 */
	        "  {\n"                                               /* 5 */
	        "    name = \"a\";\n"                                 /* 6 */
	        "    listen = \"127.0.0.1:99999\";\n"                 /* 7 */
	        "    upstreams = ( \"127.0.0.1:1\",\n"                /* 8 */
	        "      { address = \"127.0.0.1:2\"; weight = 0; },\n" /* 9 */
	        "      { adress = \"127.0.0.1:3\"; } );\n"            /* 10 */
	        "    max-conns = \"many\";\n"                         /* 11 */
	        "    mover = 3;\n"                                    /* 12 */
	        "    balance = \"random\";\n"                         /* 13 */
	        "    unix-mode = \"0999\";\n"                         /* 14 */
	        "    health = { fail-max = 2; cooldown = \"5h\"; "    /* 15 */
	        "sneeze = 1; };\n"                                    /* 15 */
	        "    idle-timeout = -5;\n"                            /* 16 */
	        "    max-conns-per-client = 3000000000;\n"            /* 17 */
	        "  },\n"                                              /* 18 */
	        "  {\n"                                               /* 19 */
	        "    name = \"b\";\n"                                 /* 20 */
	        "    listen = [ \"unix:\", \"127.0.0.1:9-1\" ];\n"    /* 21 */
	        "    upstreams = \"[::1\";\n"                         /* 22 */
	        "    halfclose-timeout = true;\n"                     /* 23 */
	        "    proxy-protocol = 1;\n"                           /* 24 */
	        "    connect-timeout = 0;\n"                          /* 25 */
	        "  }\n"                                               /* 26 */
	        ");\n";                                               /* 27 */
	static const char *const lines[] = {
	        ":1: 'workers' must be in 1..256",
	        ":2: unknown setting 'colour'",
	        ":3: engine 'kqueue' is not auto, epoll or uring",
	        ":7: bad listen address '127.0.0.1:99999': Invalid argument",
	        ":9: 'weight' must be in 1..1000",
	        ":10: unknown setting 'adress'",
	        ":10: upstream without 'address'",
	        ":11: 'max-conns' must be an integer",
	        ":12: 'mover' must be a string",
	        ":13: balance 'random' is not roundrobin, leastconn or source",
	        ":14: 'unix-mode' '0999' is not an octal mode in 0000..0777",
	        ":15: 'cooldown': bad time '5h' (an integer in ms, or a whole "
	        "number followed by ms, s or m)",
	        ":15: unknown setting 'sneeze'",
	        ":16: 'idle-timeout' must be in 0..2147483647 ms",
	        ":17: 'max-conns-per-client' must be in 0..2147483647",
	        ":21: bad listen address 'unix:': Invalid argument",
	        ":21: listen '127.0.0.1:9-1': empty port range",
	        ":22: bad upstream address '[::1': Invalid argument",
	        ":23: 'halfclose-timeout' must be an integer",
	        ":24: 'proxy-protocol' must be a group { ... }",
	        ":25: 'connect-timeout' must be in 1..3600000 ms",
	        NULL,
	};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return check_conf("bad.conf", text, 1, 1, lines);
}

/* Route-level mistakes: a name used twice, a route without a name, one
 * without upstreams, one without listeners. */
TEST(test_daemon_conf_route_errors)
{
	static const char text[] =
	        "routes = (\n"
	        "  { name = \"a\"; listen = \"127.0.0.1:1\"; "
	        "upstreams = \"127.0.0.1:9\"; },\n"
	        "  { name = \"a\"; listen = \"127.0.0.1:2\"; "
	        "upstreams = \"127.0.0.1:9\"; },\n"
	        "  { listen = \"127.0.0.1:3\"; upstreams = \"127.0.0.1:9\"; "
	        "},\n"
	        "  { name = \"c\"; listen = \"127.0.0.1:4\"; },\n"
	        "  { name = \"d e\"; upstreams = \"127.0.0.1:9\"; },\n"
	        "  { name = \"f\"; listen = \"127.0.0.1:5\"; "
	        "upstreams = ( \"127.0.0.1:9\", \"127.0.0.1:9\" ); },\n"
	        "  \"g\", 5 );\n";
	static const char *const lines[] = {
	        ":3: route 'a' defined twice",
	        ":4: route without 'name'",
	        ":5: route 'c' has no upstream",
	        ":6: route name 'd e': use 1-63 letters, digits, '_', '-' or "
	        "'.'",
	        ":6: route 'd e' has no listener",
	        ":7: upstream '127.0.0.1:9' appears twice",
	        ":8: a route must be a group { ... }",
	        ":8: a route must be a group { ... }",
	        NULL,
	};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return check_conf("routes.conf", text, 1, 0, lines);
}

/* The same address twice: across routes, and inside one route through
 * a port range. Reported once everything else is right, at 'routes'. */
TEST(test_daemon_conf_duplicate_listener)
{
	static const char across[] =
	        "workers = 1;\n"
	        "routes = (\n"
	        "  { name = \"a\"; listen = \"127.0.0.1:25100\"; "
	        "upstreams = \"127.0.0.1:9\"; },\n"
	        "  { name = \"b\"; listen = [ \"127.0.0.1:25101\", "
	        "\"127.0.0.1:25100\" ]; upstreams = \"127.0.0.1:9\"; }\n"
	        ");\n";
	static const char *const across_lines[] = {
	        ":2: listen '127.0.0.1:25100' appears twice (routes 'a' and "
	        "'b'), neither with a match: a shared listener has one "
	        "default route",
	        NULL,
	};
	static const char inside[] =
	        "routes = ( { name = \"r\";\n"
	        "  listen = [ \"127.0.0.1:25100-25102\", \"127.0.0.1:25102\" "
	        "];\n"
	        "  upstreams = \"127.0.0.1:9\"; } );\n";
	static const char *const inside_lines[] = {
	        ":1: listen '127.0.0.1:25102' appears twice (routes 'r' and "
	        "'r')",
	        NULL,
	};
	static const char unix_twice[] =
	        "routes = (\n"
	        "  { name = \"a\"; listen = \"unix:@zctest-dup\"; "
	        "upstreams = \"127.0.0.1:9\"; },\n"
	        "  { name = \"b\"; listen = \"unix:@zctest-dup\"; "
	        "upstreams = \"127.0.0.1:9\"; }\n"
	        ");\n";
	static const char *const unix_lines[] = {
	        ":1: listen 'unix:@zctest-dup' appears twice (routes 'a' and "
	        "'b'), neither with a match: a shared listener has one "
	        "default route",
	        NULL,
	};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	if (check_conf("across.conf", across, 1, 1, across_lines) ||
	    check_conf("inside.conf", inside, 1, 0, inside_lines))
		return T_FAIL;
	return check_conf("unix.conf", unix_twice, 1, 0, unix_lines);
}

/* Files that cannot be read as a configuration at all. */
TEST(test_daemon_conf_unreadable)
{
	static const char *const syntax[] = {":3: syntax error", NULL};
	static const char *const empty[] = {": no route defined", NULL};
	static const char *const include[] = {":2: @include is not supported",
	                                      NULL};
	char dir[512], out[1024];

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	if (check_conf("syntax.conf",
	               "workers = 2;\nroutes = (\n  { name = \"a\"; listen = ; "
	               "}\n);\n",
	               1, 0, syntax) ||
	    check_conf("empty.conf", "", 1, 0, empty) ||
	    check_conf("include.conf", "workers = 1;\n@include \"x.conf\"\n", 1,
	               0, include))
		return T_FAIL;
	snprintf(dir, sizeof(dir), "%s/missing.conf", t_tmpdir());
	snprintf(out, sizeof(out), "%s: %s\n", dir, strerror(ENOENT));
	{
		const char *const argv[] = {"-n", "-c", dir, NULL};

		if (expect_run(argv, 1, out))
			return T_FAIL;
	}
	snprintf(out, sizeof(out), "%s: not a regular file\n", t_tmpdir());
	{
		const char *const argv[] = {"-n", "-c", t_tmpdir(), NULL};

		return expect_run(argv, 1, out);
	}
}

/* -c takes no route or global option from the command line (exit 2);
 * -n, -q and -v go with it; -n needs -c. */
TEST(test_daemon_conf_command_line_mix)
{
	static const char ok[] = "routes = ( { name = \"a\"; listen = "
	                         "\"127.0.0.1:1\"; upstreams = "
	                         "\"127.0.0.1:9\"; } );\n";
	static const char mix[] =
	        "zcrelay: -c: only -n, -q and -v go with a config file; the "
	        "rest goes in the file\nTry 'zcrelay --help'.\n";
	char path[512];
	int rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_write_tmp("ok.conf", ok, path, sizeof(path)));
	{
		const char *const listen[] = {"-c", path, "--listen",
		                              "127.0.0.1:2", NULL};
		const char *const maxc[] = {"-n",          "-c", path,
		                            "--max-conns", "3",  NULL};
		const char *const mover[] = {"-m", "copy", "-n",
		                             "-c", path,   NULL};
		const char *const workers[] = {"-c", path, "-w", "1", NULL};
		const char *const quiet[] = {"-q", "-v", "-n",
		                             "-c", path, NULL};
		const char *const alone[] = {"-n", NULL};

		rc = expect_run(listen, 2, mix);
		rc = rc ? rc : expect_run(maxc, 2, mix);
		rc = rc ? rc : expect_run(mover, 2, mix);
		rc = rc ? rc : expect_run(workers, 2, mix);
		rc = rc ? rc : expect_run(quiet, 0, "");
		rc = rc ? rc
		        : expect_run(alone, 2,
		                     "zcrelay: -n needs -c FILE\n"
		                     "Try 'zcrelay --help'.\n");
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* A running two-route file                                             */

#define XFER (4ull << 20)

/* A checked transfer through listener la, which must reach upstream
 * want of the two listeners ulfd. */
static int route_xfer(const struct zc_addr *la, const int ulfd[2], int want,
                      uint64_t seed)
{
	int c, u, k = -1, rc;

	c = t_connect(la);
	ASSERT_OK(c);
	u = t_accept_any(ulfd, 2, 2000, &k);
	ASSERT_OK(u);
	ASSERT_EQ(k, want);
	rc = t_xfer_both(c, u, XFER, seed);
	close(c);
	close(u);
	return rc;
}

/*
 * Route "one" listens on a range of three ports and an abstract socket,
 * route "two" on a Unix path; each has its own upstream (TCP and Unix).
 * Every listener relays byte-exact to its route's upstream only, on
 * ctx's engine and mover (set in the file).
 */
TEST_MATRIX(test_daemon_conf_routes_xfer)
{
	struct zc_addr la[5], ua[2];
	char range[64], abs_name[64], path[128], u1[128], u2[128];
	struct t_daemon d;
	int ulfd[2], rc, i, port;
	char line[64];

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ulfd[0] = t_listen(AF_INET, &ua[0]);
	ASSERT_OK(ulfd[0]);
	ulfd[1] = t_listen(AF_UNIX, &ua[1]);
	ASSERT_OK(ulfd[1]);
	ASSERT_OK(t_addr_str(&ua[0], u1, sizeof(u1)));
	ASSERT_OK(t_addr_str(&ua[1], u2, sizeof(u2)));
	ASSERT_OK(t_free_range(&la[0], 3));
	port = ntohs(((struct sockaddr_in *)&la[0].ss)->sin_port);
	for (i = 1; i < 3; i++) {
		la[i] = la[0];
		((struct sockaddr_in *)&la[i].ss)->sin_port =
		        htons((uint16_t)(port + i));
	}
	snprintf(range, sizeof(range), "127.0.0.1:%d-%d", port, port + 2);
	snprintf(abs_name, sizeof(abs_name), "unix:@zctest-%d-routes",
	         (int)getpid());
	ASSERT_OK(zc_addr_parse(&la[3], abs_name, ZC_ADDR_PASSIVE));
	ASSERT_OK(t_free_addr(AF_UNIX, &la[4]));
	ASSERT_OK(t_addr_str(&la[4], path, sizeof(path)));
	T_TRY(t_daemon_conf(&d, &la[4],
	                    "%s\n"
	                    "routes = (\n"
	                    "  { name = \"one\"; listen = [ \"%s\", \"%s\" ];\n"
	                    "    upstreams = \"%s\"; mover = \"%s\"; },\n"
	                    "  { name = \"two\"; listen = \"%s\";\n"
	                    "    upstreams = \"%s\"; mover = \"%s\"; }\n"
	                    ");\n",
	                    t_cfg_engine(ctx), range, abs_name, u1,
	                    t_cfg_mover(ctx), path, u2, t_cfg_mover(ctx)));
	for (i = 0; i < 5; i++) {
		T_TRY(route_xfer(&la[i], ulfd, i < 4 ? 0 : 1, 100 + 10 * i));
	}
	/* nothing else reached either upstream */
	ASSERT_ERR(t_accept_any(ulfd, 2, 100, NULL), -ETIMEDOUT);
	ASSERT_EQ(t_wait_log_count(&d, " session ", " route=one ", 4, 5000), 4);
	ASSERT_EQ(t_wait_log_count(&d, " session ", " route=two ", 1, 5000), 1);
	snprintf(line, sizeof(line), " mover=%s", t_cfg_mover(ctx));
	ASSERT_EQ(t_log_count(&d, " session ", line), 5);
	if (ctx->engine != ZC_ENGINE_AUTO) {
		snprintf(line, sizeof(line), " engine=%s ",
		         zc_engine_name(ctx->engine));
		ASSERT_EQ(t_log_count(&d, " session ", line), 5);
	}
	ASSERT_EQ(t_log_count(&d, " session ", " end=eof "), 5);
	rc = t_daemon_down(&d);
	close(ulfd[0]);
	close(ulfd[1]);
	t_cleanup_unix(&ua[1]);
	t_cleanup_unix(&la[4]);
	return rc;
}

/* The file mode of the socket file at a's path, or -errno. */
static int sock_mode(const struct zc_addr *a)
{
	struct stat st;

	if (stat(unix_path(a), &st) == -1)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	return (int)(st.st_mode & 07777);
}

/* Unix path listeners get mode 0660 unless the route sets unix-mode;
 * the daemon removes the files when it stops. */
TEST(test_daemon_conf_unix_mode)
{
	struct zc_addr la[3], ua;
	char p[3][128], us[64], abs_name[64];
	struct t_daemon d;
	int ulfd, rc, i, c, u;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	ASSERT_OK(t_addr_str(&ua, us, sizeof(us)));
	for (i = 0; i < 3; i++) {
		ASSERT_OK(t_free_addr(AF_UNIX, &la[i]));
		ASSERT_OK(t_addr_str(&la[i], p[i], sizeof(p[i])));
	}
	snprintf(abs_name, sizeof(abs_name), "unix:@zctest-%d-mode",
	         (int)getpid());
	T_TRY(t_daemon_conf(&d, &la[2],
	                    "routes = (\n"
	                    "  { name = \"dflt\"; listen = \"%s\"; "
	                    "upstreams = \"%s\"; },\n"
	                    "  { name = \"strict\"; unix-mode = \"0600\";\n"
	                    "    listen = [ \"%s\", \"%s\" ]; "
	                    "upstreams = \"%s\"; },\n"
	                    "  { name = \"open\"; listen = \"%s\"; "
	                    "unix-mode = \"666\"; upstreams = \"%s\"; }\n"
	                    ");\n",
	                    p[0], us, abs_name, p[1], us, p[2], us));
	ASSERT_EQ(sock_mode(&la[0]), 0660);
	ASSERT_EQ(sock_mode(&la[1]), 0600);
	ASSERT_EQ(sock_mode(&la[2]), 0666);
	/* the owner may still connect through the 0600 one */
	T_TRY(t_session(&la[1], NULL, &ulfd, 1, &c, &u, NULL));
	close(c);
	close(u);
	ASSERT_EQ(t_wait_log_count(&d, " session ", " route=strict ", 1, 5000),
	          1);
	rc = t_daemon_down(&d);
	for (i = 0; i < 3; i++) {
		ASSERT_ERR(sock_mode(&la[i]), -ENOENT);
		t_cleanup_unix(&la[i]);
	}
	close(ulfd);
	return rc;
}

/* Starts the daemon with one route listening on n ports from la (a
 * range when n > 1), 2 workers, and reads its fds and RSS once idle. */
static int idle_listeners(const struct zc_addr *la, unsigned n, const char *ups,
                          struct t_proc_mem *m)
{
	struct t_daemon d;
	char las[64], spec[96];
	unsigned port;

	ASSERT_OK(t_addr_str(la, las, sizeof(las)));
	port = (unsigned)strtoul(strrchr(las, ':') + 1, NULL, 10);
	if (n > 1)
		snprintf(spec, sizeof(spec), "%s-%u", las, port + n - 1);
	else
		snprintf(spec, sizeof(spec), "%s", las);
	T_TRY(t_daemon_conf(&d, la,
	                    "workers = 2;\nroutes = ({ name = \"r\"; "
	                    "listen = \"%s\"; upstreams = \"%s\"; });\n",
	                    spec, ups));
	t_sleep_ms(600); /* a snapshot turn of every worker */
	ASSERT_OK(t_proc_mem(d.pid, m));
	return t_daemon_down(&d);
}

/* 300 listeners cost their sockets (one per worker, SO_REUSEPORT) and
 * nothing else: no extra fd per listener, a few KiB of memory. */
TEST(test_daemon_conf_many_idle_listeners)
{
	struct t_proc_mem one, many;
	struct zc_addr la, ua;
	char ups[64];
	int rc, i;

	T_SKIP_IF(!t_daemon_path(), "ZC_DAEMON not set");
	ASSERT_OK(t_free_addr(AF_INET, &ua));
	ASSERT_OK(t_addr_str(&ua, ups, sizeof(ups)));
	/* Another process may take one of 300 ports between the check and
	 * the daemon's bind: then try another range. */
	for (i = 0, rc = T_FAIL; i < 3 && rc != T_PASS; i++) {
		ASSERT_OK(t_free_range(&la, 300));
		rc = idle_listeners(&la, 300, ups, &many);
	}
	if (rc != T_PASS || (rc = idle_listeners(&la, 1, ups, &one)) != T_PASS)
		return rc;
	t_log("1 listener: %d fds, %ld KiB; 300 listeners: %d fds, %ld KiB",
	      one.fds, one.rss_kb, many.fds, many.rss_kb);
	ASSERT_EQ(many.fds - one.fds, 299 * 2);
#ifndef __SANITIZE_ADDRESS__ /* ASan's shadow and redzones dwarf it */
	ASSERT_LT(many.rss_kb - one.rss_kb, 2048);
#endif
	return T_PASS;
}

/*
 * daemon_robust.c - regression tests of issue 15, black-box: what odd
 * files, a local fd shortage, races of passive health, reloads and
 * port 0 did to the daemon. A FIFO where a file is expected never
 * blocks the main thread (which answers the signals).
 */
#include <errno.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxyproto.h"
#include "runner.h"
#include "tdaemon.h"
#include "tfault.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* Runs the daemon with argv: status want, out in its output. */
static int expect_exit(const char *const argv[], int want, const char *out)
{
	return t_expect_exit(argv, want, out, 0);
}

/* A listening upstream (returned: its fd, or -errno) at *ua, printed
 * into us (64 bytes), and a free listener address *la of family, printed
 * into ls (128 bytes). */
static int addrs(int family, struct zc_addr *la, char *ls, struct zc_addr *ua,
                 char *us)
{
	int fd = t_listen(AF_INET, ua), err;

	if (fd < 0)
		return fd;
	err = t_addr_str(ua, us, 64);
	if (err >= 0)
		err = t_free_addr(family, la);
	if (err >= 0)
		err = t_addr_str(la, ls, 128);
	if (err < 0)
		close(fd);
	return err < 0 ? err : fd;
}

/* A FIFO at t_tmpdir()/name; its path goes to path. */
static int make_fifo(const char *name, char *path, size_t size)
{
	snprintf(path, size, "%s/%s", t_tmpdir(), name);
	unlink(path);
	ASSERT_EQ(mkfifo(path, 0600), 0);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Bug 1: a FIFO as the config file (or the pid file, or the log)       */

/* `zcrelay -n -c FIFO` and `zcrelay -c FIFO` are refused at once, as a
 * directory is; so is a FIFO as the pid file or the log file. */
TEST(test_daemon_robust_fifo_files)
{
	char fifo[512], out[600], conf[512], text[1024];
	const char *const check[] = {"-n", "-c", fifo, NULL};
	const char *const start[] = {"-c", fifo, NULL};
	const char *const run[] = {"-c", conf, NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	if (make_fifo("fifo", fifo, sizeof(fifo)))
		return T_FAIL;
	snprintf(out, sizeof(out), "%s: not a regular file\n", fifo);
	if (expect_exit(check, 1, out) || expect_exit(start, 1, out))
		return T_FAIL;
	snprintf(text, sizeof(text),
	         "pid-file = \"%s\";\nroutes = ( { name = \"a\"; listen = "
	         "\"127.0.0.1:1\"; upstreams = \"127.0.0.1:9\"; } );\n",
	         fifo);
	ASSERT_OK(t_write_tmp("pid.conf", text, conf, sizeof(conf)));
	snprintf(out, sizeof(out), "pid file %s: not a regular file", fifo);
	if (expect_exit(run, 1, out))
		return T_FAIL;
	snprintf(text, sizeof(text),
	         "log = { file = \"%s\"; };\nroutes = ( { name = \"a\"; "
	         "listen = \"127.0.0.1:1\"; upstreams = \"127.0.0.1:9\"; } "
	         ");\n",
	         fifo);
	ASSERT_OK(t_write_tmp("log.conf", text, conf, sizeof(conf)));
	snprintf(out, sizeof(out), "log file %s: %s", fifo, strerror(ENXIO));
	return expect_exit(run, 1, out);
}

/* A running daemon whose file became a FIFO: SIGHUP refuses it (the
 * running configuration keeps serving), and SIGTERM still stops it. */
TEST(test_daemon_robust_fifo_reload)
{
	struct zc_addr la, ua;
	struct t_daemon d;
	char path[512], why[600];
	int ulfd, rc, c, u;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(t_daemon_route1(&d, ctx, &la, &ua, &ulfd, ""));
	if (make_fifo("zcrelay.conf", path, sizeof(path)))
		return T_FAIL;
	ASSERT_EQ(kill(d.pid, SIGHUP), 0);
	snprintf(why, sizeof(why), "%s: not a regular file", path);
	ASSERT_EQ(t_wait_log_count(&d, why, NULL, 1, 5000), 1);
	ASSERT_EQ(t_wait_log_count(&d, "keeping the running configuration",
	                           NULL, 1, 5000),
	          1);
	T_TRY(t_session(&la, NULL, &ulfd, 1, &c, &u, NULL));
	close(c);
	close(u);
	rc = t_daemon_down(&d);
	close(ulfd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Bug 4: unix-mode of a Unix listener that a reload keeps              */

/* The file mode of the socket at the Unix address a, or -errno. */
static int sock_mode(const struct zc_addr *a)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
	struct stat st;

	if (stat(sun->sun_path, &st) == -1)
		return -errno;
	return S_ISSOCK(st.st_mode) ? (int)(st.st_mode & 07777) : -ENOTSOCK;
}

/* The config text: top-level settings top, then route "r" from the
 * listener ls to the upstream us with the route settings extra. */
static void one_route(char *buf, size_t size, const char *top, const char *ls,
                      const char *extra, const char *us)
{
	snprintf(buf, size,
	         "%s\nroutes = ( { name = \"r\"; listen = \"%s\";\n"
	         "  %s upstreams = \"%s\"; } );\n",
	         top, ls, extra, us);
}

/* The same for unix-mode mode, on 2 workers. */
static void mode_cfg(char *buf, size_t size, const char *ls, const char *us,
                     const char *mode)
{
	char extra[64];

	snprintf(extra, sizeof(extra), "unix-mode = \"%s\";", mode);
	one_route(buf, size, "workers = 2;", ls, extra, us);
}

/* A reload that changes unix-mode applies it to the kept socket file
 * (0666 -> 0600 -> 0640), and the listener keeps serving; if the file
 * was removed, the reload warns that it is gone. */
TEST(test_daemon_robust_reload_unix_mode)
{
	static const char *const modes[] = {"0600", "0640"};
	static const int want[] = {0600, 0640};
	struct zc_addr la, ua;
	struct t_daemon d;
	char ls[128], us[64], text[512], path[256];
	int ulfd, rc, i, c, u;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ulfd = addrs(AF_UNIX, &la, ls, &ua, us);
	ASSERT_OK(ulfd);
	mode_cfg(text, sizeof(text), ls, us, "0666");
	T_TRY(t_daemon_conf(&d, &la, "%s", text));
	ASSERT_EQ(sock_mode(&la), 0666);
	for (i = 0; i < 2; i++) {
		mode_cfg(text, sizeof(text), ls, us, modes[i]);
		ASSERT_OK(
		        t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
		ASSERT_EQ(kill(d.pid, SIGHUP), 0);
		ASSERT_EQ(t_wait_log_count(&d, "info reloaded ", NULL, i + 1,
		                           5000),
		          i + 1);
		ASSERT_EQ(sock_mode(&la), want[i]);
		T_TRY(t_session(&la, NULL, &ulfd, 1, &c, &u, NULL));
		close(c);
		close(u);
	}
	/* Its file removed by someone: the reload says so and goes on. */
	ASSERT_EQ(unlink(((struct sockaddr_un *)&la.ss)->sun_path), 0);
	mode_cfg(text, sizeof(text), ls, us, "0600");
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
	ASSERT_EQ(kill(d.pid, SIGHUP), 0);
	ASSERT_EQ(t_wait_log_count(&d, "info reloaded ", NULL, 3, 5000), 3);
	ASSERT_EQ(t_log_count(&d, ls, ": the socket file is gone"), 1);
	rc = t_daemon_down(&d);
	t_cleanup_unix(&la);
	close(ulfd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Bug 5: port 0                                                        */

/* Port 0 would give every worker a random port of its own (and log
 * ":0"): refused for listeners and upstreams (and the admin address,
 * whose port nobody would know), on the command line (exit 2) and in a
 * file (every one listed, exit 1). */
TEST(test_daemon_robust_port_zero)
{
	static const char text[] =
	        "routes = ( { name = \"a\";\n"
	        "  listen = [ \"127.0.0.1:0\", \"[::1]:0\", \"unix:@zc0\" ];\n"
	        "  upstreams = [ \"127.0.0.1:0\", \"127.0.0.1:9\" ]; } );\n";
	const char *const cli_l[] = {"-l", "127.0.0.1:0", "-u", "127.0.0.1:9",
	                             NULL};
	const char *const cli_u[] = {"-l", "127.0.0.1:9", "-u", "127.0.0.1:0",
	                             NULL};
	const char *const cli_a[] = {
	        "-l",      "127.0.0.1:9", "-u", "127.0.0.1:9",
	        "--admin", "127.0.0.1:0", NULL};
	char path[256], out[1024];
	const char *const check[] = {"-n", "-c", path, NULL};
	const char *const start[] = {"-c", path, NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	if (expect_exit(cli_l, 2,
	                "zcrelay: -l: listen '127.0.0.1:0': port 0 is not "
	                "allowed (each worker would get a random port of its "
	                "own)\n") ||
	    expect_exit(cli_u, 2,
	                "zcrelay: -u: upstream '127.0.0.1:0': port 0 is not "
	                "allowed\n") ||
	    expect_exit(cli_a, 2,
	                "zcrelay: --admin: admin '127.0.0.1:0': port 0 is not "
	                "allowed"))
		return T_FAIL;
	ASSERT_OK(t_write_tmp("p0.conf", text, path, sizeof(path)));
	snprintf(out, sizeof(out),
	         "%s:2: listen '127.0.0.1:0': port 0 is not allowed (each "
	         "worker would get a random port of its own)\n"
	         "%s:2: listen '[::1]:0': port 0 is not allowed (each "
	         "worker would get a random port of its own)\n"
	         "%s:3: upstream '127.0.0.1:0': port 0 is not allowed\n",
	         path, path, path);
	if (t_expect_exit(check, 1, out, 1))
		return T_FAIL;
	return t_expect_exit(start, 1, out, 1);
}

/* ------------------------------------------------------------------ */
/* Messages                                                             */

/* A host name that does not resolve is said to be one, with the
 * resolver's reason, not "No route to host". The name has a 64-byte
 * label, which no DNS query can carry: nothing is sent. */
TEST(test_daemon_robust_unresolved_name)
{
	char name[128], text[512], path[256], out[512];
	const char *const check[] = {"-n", "-c", path, NULL};
	const char *const cli[] = {"-l", "127.0.0.1:9", "-u", name, NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	memset(name, 'a', 64);
	snprintf(name + 64, sizeof(name) - 64, ".invalid:80");
	snprintf(out, sizeof(out),
	         "zcrelay: -u: bad upstream address '%s': name did not "
	         "resolve: ",
	         name);
	if (expect_exit(cli, 2, out))
		return T_FAIL;
	snprintf(text, sizeof(text),
	         "routes = ( { name = \"a\"; listen = \"127.0.0.1:9\";\n"
	         "  upstreams = \"%s\"; } );\n",
	         name);
	ASSERT_OK(t_write_tmp("name.conf", text, path, sizeof(path)));
	snprintf(out, sizeof(out),
	         "%s:2: bad upstream address '%s': name did not resolve: ",
	         path, name);
	if (expect_exit(check, 1, out))
		return T_FAIL;
	return expect_exit(check, 1, gai_strerror(EAI_NONAME));
}

/*
 * A trusted PROXY sender names a Unix source whose path holds spaces and
 * '=': the text session line shows them escaped, so the path cannot add
 * fields such as a fake end= to the line.
 */
TEST_MATRIX(test_daemon_robust_proxy_unix_path_escaped)
{
	struct sockaddr_un src = {AF_UNIX, "/a b=c end=fake"},
	                   dst = {AF_UNIX, "/d"};
	uint8_t hdr[ZCR_PP_MAX + 4];
	struct zc_addr la, ua;
	struct t_daemon d;
	char line[1024];
	int ulfd, rc, c, u, n;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(t_daemon_route1(&d, ctx, &la, &ua, &ulfd,
	                      "proxy-protocol = { accept = true; "
	                      "trusted = \"127.0.0.1\"; };"));
	n = zcr_pp_build(2, ZCR_PP_UNIX, (struct sockaddr *)&src, sizeof(src),
	                 (struct sockaddr *)&dst, sizeof(dst), hdr, ZCR_PP_MAX);
	ASSERT_GT(n, 0);
	memcpy(hdr + n, "ping", 4);
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, hdr, (size_t)n + 4));
	u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(u);
	T_TRY(t_ping_pong(c, u, "ping", 4));
	ASSERT_OK(t_wait_log_line(&d, "info session ", " route=r ", line,
	                          sizeof(line), 5000));
	ASSERT_HAS(line, " client=unix:/a\\x20b\\x3dc\\x20end\\x3dfake ");
	ASSERT_TRUE(strstr(line, " end=fake") == NULL);
	ASSERT_TRUE(strstr(line, " end=eof ") != NULL);
	rc = t_daemon_down(&d);
	close(ulfd);
	return rc;
}

/* zcrelay -n checks that the user and group to switch to exist, as the
 * start would (root's exist everywhere). */
TEST(test_daemon_robust_check_user)
{
	static const char route[] = "routes = ( { name = \"a\"; listen = "
	                            "\"127.0.0.1:9\"; upstreams = "
	                            "\"127.0.0.1:9\"; } );\n";
	char text[512], path[256], out[512];
	const char *const check[] = {"-n", "-c", path, NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	snprintf(text, sizeof(text), "user = \"zc-no-such-user\";\n%s", route);
	ASSERT_OK(t_write_tmp("u.conf", text, path, sizeof(path)));
	snprintf(out, sizeof(out), "%s: unknown user 'zc-no-such-user'\n",
	         path);
	if (t_expect_exit(check, 1, out, 1))
		return T_FAIL;
	snprintf(text, sizeof(text),
	         "user = \"root\";\ngroup = \"zc-no-such-group\";\n%s", route);
	ASSERT_OK(t_write_tmp("u.conf", text, path, sizeof(path)));
	snprintf(out, sizeof(out), "%s: unknown group 'zc-no-such-group'\n",
	         path);
	if (t_expect_exit(check, 1, out, 1))
		return T_FAIL;
	snprintf(text, sizeof(text), "user = \"root\";\ngroup = \"root\";\n%s",
	         route);
	ASSERT_OK(t_write_tmp("u.conf", text, path, sizeof(path)));
	return t_expect_exit(check, 0, "", 1);
}

/* A file of n routes (distinct listeners) into t_tmpdir()/name. */
static int routes_file(int n, const char *name, char *path, size_t size)
{
	size_t cap = 128 + (size_t)n * 128, len;
	char *text = malloc(cap);
	int i, rc;

	ASSERT_TRUE(text != NULL);
	len = (size_t)snprintf(text, cap, "routes = (\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len,
		                        "%s{ name = \"r%d\"; listen = "
		                        "\"127.0.0.1:%d\"; upstreams = "
		                        "\"127.0.0.1:9\"; }\n",
		                        i ? "," : "", i, 20000 + i);
	snprintf(text + len, cap - len, ");\n");
	rc = t_write_tmp(name, text, path, size);
	free(text);
	ASSERT_OK(rc);
	return T_PASS;
}

/* The limit of 256 routes: a file at it is valid, one above gets one
 * error line that says the limit (not one per extra route). */
TEST(test_daemon_robust_route_limit)
{
	char path[256], out[512];
	const char *const check[] = {"-n", "-c", path, NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	if (routes_file(256, "256.conf", path, sizeof(path)) ||
	    t_expect_exit(check, 0, "", 1))
		return T_FAIL;
	if (routes_file(1000, "1000.conf", path, sizeof(path)))
		return T_FAIL;
	snprintf(out, sizeof(out),
	         "%s:1: 1000 routes: at most 256 are "
	         "allowed\n",
	         path);
	return t_expect_exit(check, 1, out, 1);
}

/* ------------------------------------------------------------------ */
/* Settings a reload keeps: every one is warned about                   */

/* The top-level settings of a file: workers, the pid file's name in
 * t_tmpdir() and one more line. */
static void top_text(char *buf, size_t size, const char *workers,
                     const char *pid, const char *extra)
{
	snprintf(buf, size, "workers = %s;\npid-file = \"%s/%s\";\n%s\n",
	         workers, t_tmpdir(), pid, extra);
}

/*
 * Each restart-only global setting changed by a reload on its own: the
 * reload goes through and logs the warning, once per reload. drain-
 * timeout does apply: the drain says the new value. The pid file of the
 * start stays (no other is written), and is removed at exit.
 */
TEST(test_daemon_robust_reload_restart_only)
{
	static const struct {
		const char *workers, *pid, *extra, *named;
	} changed[] = {
	        {"1", "start.pid", "", "workers"},
	        {"2", "other.pid", "", "pid-file"},
	        {"2", "start.pid", "engine = \"epoll\";", "engine"},
	        {"2", "start.pid", "busy-poll = \"auto\";", "busy-poll"},
	        {"2", "start.pid", "busy-poll-cap = 50;", "busy-poll-cap"},
	        {"2", "start.pid", "pipe-size = 65536;", "pipe-size"},
	        {"2", "start.pid", "max-pipes = 100;", "max-pipes"},
	        {"2", "start.pid", "admin = \"127.0.0.1:9\";",
	         "admin/admin-token"},
	        {"2", "start.pid", "user = \"root\";", "user"},
	        {"2", "start.pid", "group = \"root\";", "group"},
	        {"2", "start.pid", "admin-token = \"secret\";",
	         "admin/admin-token"},
	        {"2", "start.pid", "drain-timeout = 1234;", NULL}, /* applies */
	};
	char warn[128];
	const unsigned n = sizeof(changed) / sizeof(changed[0]);
	struct zc_addr la, ua;
	struct t_daemon d;
	char ls[128], us[64], top[512], text[1024], path[256], pid[256];
	int ulfd, rc;
	unsigned i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ulfd = addrs(AF_INET, &la, ls, &ua, us);
	ASSERT_OK(ulfd);
	top_text(top, sizeof(top), "2", "start.pid", "");
	one_route(text, sizeof(text), top, ls, "", us);
	T_TRY(t_daemon_conf(&d, &la, "%s", text));
	for (i = 0; i < n; i++) {
		top_text(top, sizeof(top), changed[i].workers, changed[i].pid,
		         changed[i].extra);
		one_route(text, sizeof(text), top, ls, "", us);
		ASSERT_OK(
		        t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
		ASSERT_EQ(kill(d.pid, SIGHUP), 0);
		if (t_wait_log_count(&d, "info reloaded ", NULL, (int)i + 1,
		                     5000) != (int)i + 1)
			return t_fail(__FILE__, __LINE__, "no reload %u", i);
		/* the last one applies: no warning */
		if (t_log_count(&d, "change only on restart", NULL) !=
		    (int)(i + 1 < n ? i + 1 : n - 1))
			return t_fail(__FILE__, __LINE__, "warnings after %u",
			              i);
		snprintf(warn, sizeof(warn), "reload: %s: change only",
		         changed[i].named ? changed[i].named : "-");
		if (changed[i].named && t_log_count(&d, warn, NULL) < 1)
			return t_fail(__FILE__, __LINE__, "no \"%s\"", warn);
	}
	snprintf(pid, sizeof(pid), "%s/other.pid", t_tmpdir());
	ASSERT_ERR(access(pid, F_OK) == 0 ? 0 : -errno, -ENOENT);
	snprintf(pid, sizeof(pid), "%s/start.pid", t_tmpdir());
	ASSERT_EQ(access(pid, F_OK), 0);
	rc = t_daemon_down(&d);
	ASSERT_EQ(t_log_count(&d, "draining (up to 1234 ms)", NULL), 1);
	ASSERT_ERR(access(pid, F_OK) == 0 ? 0 : -errno, -ENOENT);
	close(ulfd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* A slow resolver during a reload                                      */

/*
 * A reload whose upstream is a host name while the resolver hangs (the
 * zcfault shim stalls getaddrinfo() for 30 s): the relay keeps serving,
 * and SIGTERM stops the daemon at once, the reload abandoned.
 */
TEST_TIMEOUT(test_daemon_robust_slow_resolver_reload, 60)
{
	struct zc_addr la, ua;
	struct t_daemon d;
	struct t_fault f;
	struct t_dargs a;
	const char *env[8];
	char ls[128], us[64], text[512], path[256];
	uint64_t t0;
	int ulfd, c, u;

	T_SKIP_IF(t_fault_skip(), "%s", t_fault_skip());
	ulfd = addrs(AF_INET, &la, ls, &ua, us);
	ASSERT_OK(ulfd);
	one_route(text, sizeof(text), "workers = 1;", ls, "", us);
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
	t_fault_env(&f, "getaddrinfo:stall:ms=30000", env);
	t_dargs_cfg(&a, path);
	T_TRY(t_daemon_up_env(&d, &a, &la, env));
	snprintf(us, sizeof(us), "localhost:%u",
	         ntohs(((struct sockaddr_in *)&ua.ss)->sin_port));
	one_route(text, sizeof(text), "workers = 1;", ls, "", us);
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
	ASSERT_EQ(kill(d.pid, SIGHUP), 0);
	ASSERT_EQ(t_fault_wait(&f, "getaddrinfo:stall", 1, 5000), 1);
	T_TRY(t_session(&la, NULL, &ulfd, 1, &c, &u, NULL));
	close(c);
	close(u);
	t0 = t_now_ms();
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	ASSERT_LT(t_now_ms() - t0, 5000);
	ASSERT_EQ(t_log_count(&d, "reload abandoned", NULL), 1);
	close(ulfd);
	return T_PASS;
}

/*
 * Active checks that cannot even start for want of our own fds (the
 * shim fails socket() with EMFILE, 4 times, twice fall) say nothing of
 * the upstream: each is logged as skipped, none counts, the upstream is
 * never marked down.
 */
TEST(test_daemon_robust_check_local_error)
{
	struct zc_addr la, ua;
	struct t_daemon d;
	struct t_fault f;
	struct t_dargs a;
	const char *env[8];
	char ls[128], us[64], text[512], path[256];
	int ulfd, rc;

	T_SKIP_IF(t_fault_skip(), "%s", t_fault_skip());
	ulfd = addrs(AF_INET, &la, ls, &ua, us);
	ASSERT_OK(ulfd);
	one_route(text, sizeof(text), "workers = 1;", ls,
	          "health = { check-interval = 50; fall = 2; rise = 1; };", us);
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
	t_fault_env(&f, "", env);
	t_dargs_cfg(&a, path);
	T_TRY(t_daemon_up_env(&d, &a, &la, env));
	T_TRY(t_fault_set(&f, "socket:EMFILE:count=4"));
	ASSERT_EQ(t_fault_wait(&f, "socket:EMFILE", 4, 5000), 4);
	ASSERT_EQ(t_wait_log_count(&d, " check skipped: ", strerror(EMFILE), 4,
	                           5000),
	          4);
	t_sleep_ms(200); /* a few good checks after them */
	ASSERT_EQ(t_log_count(&d, " check: down ", NULL), 0);
	rc = t_daemon_down(&d);
	close(ulfd);
	return rc;
}

/* The other documented limits of a route: 256 upstreams (said once for
 * a longer list) and 4096 listening addresses (a range of 4097 ports). */
TEST(test_daemon_robust_route_limits)
{
	char text[16384], path[256], out[512];
	const char *const check[] = {"-n", "-c", path, NULL};
	size_t len;
	int i, n;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	for (n = 256; n <= 300; n += 44) {
		len = (size_t)snprintf(text, sizeof(text),
		                       "routes = ( { name = \"a\"; listen = "
		                       "\"127.0.0.1:9\";\n  upstreams = [");
		for (i = 0; i < n; i++)
			len += (size_t)snprintf(text + len, sizeof(text) - len,
			                        "%s\"127.0.0.1:%d\"",
			                        i ? "," : "", 1000 + i);
		snprintf(text + len, sizeof(text) - len, "]; } );\n");
		ASSERT_OK(t_write_tmp("ups.conf", text, path, sizeof(path)));
		snprintf(out, sizeof(out),
		         "%s:2: 300 upstreams: at most 256 are allowed\n",
		         path);
		if (t_expect_exit(check, n == 256 ? 0 : 1, n == 256 ? "" : out,
		                  1))
			return T_FAIL;
	}
	for (i = 0; i < 2; i++) { /* 4097 ports, then 4096 */
		snprintf(text, sizeof(text),
		         "routes = ( { name = \"a\"; listen = "
		         "\"127.0.0.1:20000-%d\";\n"
		         "  upstreams = \"127.0.0.1:9\"; } );\n",
		         24096 - i);
		ASSERT_OK(t_write_tmp("ls.conf", text, path, sizeof(path)));
		snprintf(out, sizeof(out), "%s:1: more than 4096 listeners",
		         path);
		if (t_expect_exit(check, i ? 0 : 1, i ? "" : out, i))
			return T_FAIL;
	}
	return T_PASS;
}

/* The log file replaced by a FIFO nobody reads, then SIGUSR1 (log
 * rotation): the reopen fails at once (logged on the old file) instead
 * of blocking the main thread, and SIGTERM still stops the daemon. */
TEST(test_daemon_robust_fifo_log_reopen)
{
	struct zc_addr la, ua;
	struct t_daemon d;
	char top[512], text[1024], ls[128], us[64], logp[256], old[300];
	char path[256];
	int ulfd, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ulfd = addrs(AF_INET, &la, ls, &ua, us);
	ASSERT_OK(ulfd);
	one_route(text, sizeof(text), "", ls, "", us);
	T_TRY(t_daemon_conf(&d, &la, "%s", text));
	snprintf(logp, sizeof(logp), "%s/relay.log", t_tmpdir());
	snprintf(top, sizeof(top), "log = { file = \"%s\"; };", logp);
	one_route(text, sizeof(text), top, ls, "", us);
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
	ASSERT_EQ(kill(d.pid, SIGHUP), 0);
	ASSERT_OK(
	        t_wait_file_line(logp, "info reloaded ", NULL, NULL, 0, 5000));
	snprintf(old, sizeof(old), "%s.1", logp);
	ASSERT_EQ(rename(logp, old), 0);
	ASSERT_EQ(mkfifo(logp, 0600), 0);
	ASSERT_EQ(kill(d.pid, SIGUSR1), 0);
	ASSERT_OK(t_wait_file_line(old, "SIGUSR1: reopening the log: ",
	                           strerror(ENXIO), NULL, 0, 5000));
	rc = t_daemon_down(&d);
	close(ulfd);
	return rc;
}

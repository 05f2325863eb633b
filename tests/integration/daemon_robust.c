/*
 * daemon_robust.c - regression tests of issue 15, black-box: what odd
 * files, a local fd shortage, races of passive health, reloads and
 * port 0 did to the daemon. A FIFO where a file is expected never
 * blocks the main thread (which answers the signals).
 */
#include <errno.h>
#include <netdb.h>
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
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* Runs the daemon with argv: status want, out in its output. */
static int expect_exit(const char *const argv[], int want, const char *out)
{
	return t_expect_exit(argv, want, out, 0);
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
	rc = t_daemon_route1(&d, ctx, &la, &ua, &ulfd, "");
	if (rc)
		return rc;
	if (make_fifo("zcrelay.conf", path, sizeof(path)))
		return T_FAIL;
	ASSERT_EQ(kill(d.pid, SIGHUP), 0);
	snprintf(why, sizeof(why), "%s: not a regular file", path);
	ASSERT_EQ(t_wait_log_count(&d, why, NULL, 1, 5000), 1);
	ASSERT_EQ(t_wait_log_count(&d, "keeping the running configuration",
	                           NULL, 1, 5000),
	          1);
	rc = t_session(&la, NULL, &ulfd, 1, &c, &u, NULL);
	if (rc)
		return rc;
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

/* The config text of one route from the Unix listener ls to us with
 * unix-mode mode. */
static void mode_cfg(char *buf, size_t size, const char *ls, const char *us,
                     const char *mode)
{
	snprintf(buf, size,
	         "workers = 2;\nroutes = ( { name = \"m\"; listen = \"%s\";\n"
	         "  unix-mode = \"%s\"; upstreams = \"%s\"; } );\n",
	         ls, mode, us);
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
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	ASSERT_OK(t_addr_str(&ua, us, sizeof(us)));
	ASSERT_OK(t_free_addr(AF_UNIX, &la));
	ASSERT_OK(t_addr_str(&la, ls, sizeof(ls)));
	mode_cfg(text, sizeof(text), ls, us, "0666");
	rc = t_daemon_conf(&d, &la, "%s", text);
	if (rc)
		return rc;
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
		rc = t_session(&la, NULL, &ulfd, 1, &c, &u, NULL);
		if (rc)
			return rc;
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
 * ":0"): refused for listeners and upstreams, on the command line (exit
 * 2) and in a file (every one listed, exit 1). */
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
	                "allowed\n"))
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
	rc = t_daemon_route1(&d, ctx, &la, &ua, &ulfd,
	                     "proxy-protocol = { accept = true; "
	                     "trusted = \"127.0.0.1\"; };");
	if (rc)
		return rc;
	n = zcr_pp_build(2, ZCR_PP_UNIX, (struct sockaddr *)&src, sizeof(src),
	                 (struct sockaddr *)&dst, sizeof(dst), hdr, ZCR_PP_MAX);
	ASSERT_GT(n, 0);
	memcpy(hdr + n, "ping", 4);
	c = t_connect(&la);
	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, hdr, (size_t)n + 4));
	u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(u);
	rc = t_ping_pong(c, u, "ping", 4);
	if (rc)
		return rc;
	ASSERT_OK(t_wait_log_line(&d, "info session ", " route=r ", line,
	                          sizeof(line), 5000));
	ASSERT_HAS(line, " client=unix:/a\\x20b\\x3dc\\x20end\\x3dfake ");
	ASSERT_TRUE(strstr(line, " end=fake") == NULL);
	ASSERT_TRUE(strstr(line, " end=eof ") != NULL);
	rc = t_daemon_down(&d);
	close(ulfd);
	return rc;
}

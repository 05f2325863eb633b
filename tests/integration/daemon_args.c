/*
 * daemon_args.c - the daemon's command line and startup failures, as a
 * user sees them: exit status 2 and one clear line on stderr for bad
 * arguments, 1 when the listener cannot be opened, 0 for --help and
 * --version.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* A listen address that parses; the tests below fail before binding. */
#define L_OK "127.0.0.1:1"
#define U_OK "127.0.0.1:2"

/* Logs the command line of a failed case. */
static void print_args(const char *const argv[])
{
	char line[512];
	size_t len = 0;
	int i;

	line[0] = '\0';
	for (i = 0; argv[i] && len < sizeof(line); i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " '%s'",
		                        argv[i]);
	t_log("zcrelay%s", line);
}

/*
 * Runs the daemon with argv, waits at most 5 s for it to exit and checks
 * that its status is want and its output (stdout and stderr) contains
 * each of the NULL-terminated strings in subs.
 */
static int expect_exit(const char *const argv[], int want,
                       const char *const subs[])
{
	struct t_daemon d;
	char *log;
	int rc, i;

	ASSERT_OK(t_daemon_start(&d, argv));
	rc = t_daemon_wait(&d, 5000);
	if (rc == -ETIMEDOUT)
		t_daemon_stop(&d, SIGKILL);
	log = t_daemon_log(&d);
	if (rc != want) {
		print_args(argv);
		t_log("output:\n%s", log ? log : "(none)");
		free(log);
	}
	ASSERT_EQ(rc, want);
	for (i = 0; subs && subs[i]; i++) {
		if (!log || !strstr(log, subs[i])) {
			print_args(argv);
			rc = t_fail(__FILE__, __LINE__,
			            "\"%s\" not found in output:\n%s", subs[i],
			            log ? log : "(none)");
			free(log);
			return rc;
		}
	}
	free(log);
	return T_PASS;
}

/* expect_exit for a usage error: status 2, msg, and the --help hint. */
static int expect_usage(const char *const argv[], const char *msg)
{
	const char *const subs[] = {msg, "Try 'zcrelay --help'", NULL};

	return expect_exit(argv, 2, subs);
}

TEST(test_daemon_args_no_listen)
{
	const char *const argv[] = {"--upstream", U_OK, NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return expect_usage(argv, "zcrelay: --listen is required");
}

TEST(test_daemon_args_no_upstream)
{
	const char *const argv[] = {"--listen", L_OK, NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return expect_usage(argv,
	                    "zcrelay: at least one --upstream is required");
}

TEST(test_daemon_args_no_arguments)
{
	const char *const argv[] = {NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return expect_usage(argv, "is required");
}

/* Each malformed address, as --listen and as --upstream. */
TEST(test_daemon_args_bad_address)
{
	static const char *const bad[] = {
	        "127.0.0.1",       "[::1", "unix:", "host:99999",
	        "127.0.0.1:99999", ":",    "",
	};
	char msg[128];
	size_t i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *const as_listen[] = {"--listen", bad[i],
		                                 "--upstream", U_OK, NULL};
		const char *const as_upstream[] = {"--listen", L_OK,
		                                   "--upstream", bad[i], NULL};

		snprintf(msg, sizeof(msg),
		         "zcrelay: --listen: bad listen address '%s'", bad[i]);
		T_TRY(expect_usage(as_listen, msg));
		snprintf(msg, sizeof(msg),
		         "zcrelay: --upstream: bad upstream address '%s'",
		         bad[i]);
		T_TRY(expect_usage(as_upstream, msg));
	}
	return T_PASS;
}

/* A bad address after good ones is still caught. */
TEST(test_daemon_args_bad_second_upstream)
{
	const char *const argv[] = {"--listen",   L_OK,    "--upstream", U_OK,
	                            "--upstream", "[::1]", NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return expect_usage(argv, "--upstream: bad upstream address '[::1]'");
}

TEST(test_daemon_args_bad_mover)
{
	const char *const argv[] = {"--listen", L_OK,       "--upstream", U_OK,
	                            "--mover",  "zerocopy", NULL};
	const char *const argv_e[] = {"--listen", L_OK,     "--upstream", U_OK,
	                              "--engine", "kqueue", NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(expect_usage(argv, "--mover: mover 'zerocopy' is not"));
	return expect_usage(argv_e, "--engine: engine 'kqueue' is not");
}

/* Every value must be rejected by opt with the given kind of message. */
static int bad_numbers(const char *opt, const char *const vals[],
                       const char *const kinds[])
{
	char msg[128];
	int i;

	for (i = 0; vals[i]; i++) {
		const char *const argv[] = {"--listen", L_OK, "--upstream",
		                            U_OK,       opt,  vals[i],
		                            NULL};

		snprintf(msg, sizeof(msg), "zcrelay: %s: '%s' is %s", opt,
		         vals[i], kinds[i]);
		T_TRY(expect_usage(argv, msg));
	}
	return T_PASS;
}

#define NAN_ "not a number"
#define OOR_ "out of range"

TEST(test_daemon_args_bad_workers)
{
	static const char *const vals[] = {
	        "x",  "-1",  "",     "0",  "257",
	        "2x", "1e3", "0x10", "4 ", "99999999999999999999",
	        NULL};
	static const char *const kinds[] = {NAN_, NAN_, NAN_, OOR_, OOR_,
	                                    NAN_, NAN_, NAN_, NAN_, OOR_};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return bad_numbers("--workers", vals, kinds);
}

TEST(test_daemon_args_bad_connect_timeout)
{
	static const char *const vals[] = {
	        "abc", " 5", "0", "3600001", "99999999999999", "10ms", NULL};
	static const char *const kinds[] = {NAN_, NAN_, OOR_, OOR_, OOR_, NAN_};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return bad_numbers("--connect-timeout", vals, kinds);
}

TEST(test_daemon_args_bad_timeouts)
{
	static const char *const vals[] = {"-5", "4294967296", "1e3", "5s",
	                                   NULL};
	static const char *const kinds[] = {NAN_, OOR_, NAN_, NAN_};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(bad_numbers("--idle-timeout", vals, kinds));
	return bad_numbers("--drain-timeout", vals, kinds);
}

/* Sizes take no K/M/G suffix: said so, not "out of range". */
TEST(test_daemon_args_bad_pipe_size)
{
	static const char *const vals[] = {"1G",   "1M",         "64k",
	                                   "4095", "1073741825", NULL};
	static const char *const kinds[] = {NAN_, NAN_, NAN_, OOR_, OOR_};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return bad_numbers("--pipe-size", vals, kinds);
}

TEST(test_daemon_args_positional)
{
	const char *const argv[] = {"--listen", L_OK,    "--upstream",
	                            U_OK,       "extra", NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	return expect_usage(argv, "zcrelay: unexpected argument 'extra'");
}

TEST(test_daemon_args_unknown_option)
{
	const char *const argv[] = {"--listen", L_OK,           "--upstream",
	                            U_OK,       "--frobnicate", NULL};
	const char *const argv_s[] = {"-l", L_OK, "-u", U_OK, "-Z", NULL};
	const char *const argv_m[] = {"--listen", L_OK, "--upstream", NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(expect_usage(argv, "'--frobnicate'"));
	T_TRY(expect_usage(argv_s, "-- 'Z'"));
	/* an option missing its argument */
	return expect_usage(argv_m, "'--upstream' requires an argument");
}

TEST(test_daemon_args_help)
{
	const char *const argv[] = {"--help", NULL};
	const char *const argv_s[] = {"-h", NULL};
	const char *const subs[] = {"usage: zcrelay --listen ADDR",
	                            "--upstream ADDR",
	                            "--connect-timeout",
	                            "--drain-timeout",
	                            "Exit status",
	                            NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_TRY(expect_exit(argv, 0, subs));
	return expect_exit(argv_s, 0, subs);
}

TEST(test_daemon_args_version)
{
	const char *const argv[] = {"--version", NULL};
	const char *const argv_s[] = {"-V", NULL};
	char want[64];
	const char *const subs[] = {want, NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	snprintf(want, sizeof(want), "zcrelay %d.%d.%d\n", ZC_VERSION_MAJOR,
	         ZC_VERSION_MINOR, ZC_VERSION_PATCH);
	T_TRY(expect_exit(argv, 0, subs));
	return expect_exit(argv_s, 0, subs);
}

/* ------------------------------------------------------------------ */
/* Startup failures: exit 1                                             */

/*
 * A live listener of the row's family is neither shared nor taken over:
 * a TCP port held by a socket without SO_REUSEPORT, a Unix socket (whose
 * file is not removed either). The daemon exits 1 naming the address and
 * EADDRINUSE; the owner's listener still works.
 */
static const struct in_use_row {
	const char *name;
	int family;
} in_use_rows[] = {
        {"addr_in_use", AF_INET},
        {"unix_in_use", AF_UNIX},
};

TEST_TABLE(test_daemon_start, in_use_rows)
{
	const struct in_use_row *k = t_row();
	char la[160], msg[224];
	const char *const argv[] = {"--listen", la, "--upstream", U_OK, NULL};
	const char *subs[] = {msg, NULL, NULL};
	struct zc_addr a;
	int lfd, fd;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	lfd = t_listen(k->family, &a);
	ASSERT_OK(lfd);
	ASSERT_OK(t_addr_str(&a, la, sizeof(la)));
	if (k->family == AF_UNIX) { /* the path as the daemon prints it */
		subs[0] = "listen unix:";
		subs[1] = strerror(EADDRINUSE);
	} else {
		snprintf(msg, sizeof(msg), "listen %s: %s", la,
		         strerror(EADDRINUSE));
	}
	T_TRY(expect_exit(argv, 1, subs));
	fd = t_connect(&a);
	ASSERT_OK(fd);
	close(fd);
	fd = t_accept_ms(lfd, 1000);
	ASSERT_OK(fd);
	close(fd);
	close(lfd);
	t_cleanup_unix(&a);
	return T_PASS;
}

/* A regular file at the Unix path: exit 1, and the file is left alone. */
TEST(test_daemon_start_unix_regular_file)
{
	char path[200], la[220];
	const char *const argv[] = {"--listen", la, "--upstream", U_OK, NULL};
	const char *const subs[] = {"listen unix:", NULL};
	struct stat st;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ASSERT_OK(t_write_tmp("notasocket", "precious\n", path, sizeof(path)));
	snprintf(la, sizeof(la), "unix:%s", path);
	T_TRY(expect_exit(argv, 1, subs));
	ASSERT_EQ(lstat(path, &st), 0);
	ASSERT_TRUE(S_ISREG(st.st_mode));
	ASSERT_EQ(st.st_size, 9);
	return T_PASS;
}

/* A Unix path in a directory that does not exist. */
TEST(test_daemon_start_unix_no_dir)
{
	char la[220];
	const char *const argv[] = {"--listen", la, "--upstream", U_OK, NULL};
	const char *const subs[] = {"listen unix:", strerror(ENOENT), NULL};

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	snprintf(la, sizeof(la), "unix:%s/no/such/dir/s", t_tmpdir());
	return expect_exit(argv, 1, subs);
}

/* Writes v to /proc/sys/kernel/io_uring_disabled; returns the old value
 * (>= 0) or -errno. */
static int uring_sysctl(int v)
{
	const char *path = "/proc/sys/kernel/io_uring_disabled";
	char buf[8] = "";
	int fd, old;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (read(fd, buf, sizeof(buf) - 1) <= 0) {
		close(fd);
		return -EIO;
	}
	old = atoi(buf);
	snprintf(buf, sizeof(buf), "%d\n", v);
	if (pwrite(fd, buf, strlen(buf), 0) < 0) {
		old = -errno;
	}
	close(fd);
	return old;
}

/*
 * io_uring disabled by the administrator: --engine uring fails at start
 * with a clear message (exit 1); ZC_ENGINE=uring with auto falls back.
 */
TEST(test_daemon_engine_uring_disabled)
{
	const char *const subs[] = {"io_uring engine unavailable", NULL};
	struct zc_addr la;
	struct t_dargs a;
	int old, rc;

	T_SKIP_IF(!t_daemon_path(), "ZC_DAEMON not set");
	ASSERT_OK(t_free_addr(AF_INET, &la));
	t_dargs_listen(&a, &la);
	t_dargs_add(&a, "--upstream");
	t_dargs_add(&a, "127.0.0.1:9");
	t_dargs_add(&a, "--engine");
	t_dargs_add(&a, "uring");
	old = uring_sysctl(2);
	T_SKIP_IF(old < 0, "cannot set kernel.io_uring_disabled: %s",
	          strerror(-old));
	rc = expect_exit(a.v, 1, subs);
	ASSERT_EQ(uring_sysctl(old), 2);
	return rc;
}

TEST(test_daemon_args_bad_busy_poll)
{
	static const char *const vals[] = {"fast",    "20us", "-1",
	                                   "1000001", "",     NULL};
	const char *argv[] = {"--listen",    L_OK, "--upstream", U_OK,
	                      "--busy-poll", NULL, NULL};
	const char *const cap[] = {"--listen",        L_OK, "--upstream", U_OK,
	                           "--busy-poll-cap", "0",  NULL};
	char msg[160];
	int i;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	for (i = 0; vals[i]; i++) {
		argv[5] = vals[i];
		snprintf(msg, sizeof(msg),
		         "zcrelay: --busy-poll: busy-poll '%s' "
		         "is %s",
		         vals[i],
		         i == 3 ? "out of range (0..1000000 microseconds)"
		                : "not off, auto or a number of microseconds");
		T_TRY(expect_usage(argv, msg));
	}
	return expect_usage(cap, "zcrelay: --busy-poll-cap: '0' is out of "
	                         "range (1..100)");
}

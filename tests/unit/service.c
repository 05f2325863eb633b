/* unit/service.c - sd_notify, socket activation, privilege drop, pid
 * file. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "runner.h"
#include "tnet.h"
#include "cfg.h"
#include "dlog.h"
#include "service.h"

/* Runs fn in a forked child (which may change ids and fds at will) and
 * returns its exit status: T_PASS, T_FAIL, T_SKIP, or T_FAIL if it died. */
static int in_child(int (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == -1)
		return t_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0)
		_exit(fn());
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status))
		return T_FAIL;
	return WEXITSTATUS(status);
}

/* ------------------------------------------------------------------ */
/* sd_notify                                                            */

/* A datagram socket bound to name ("@..." abstract, else a path). */
static int notify_listener(const char *name)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	socklen_t len;
	int fd;

	memcpy(sun.sun_path, name, n);
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, len) == -1) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Notifies through name and checks the one datagram that arrives. */
static int notify_roundtrip(const char *name)
{
	char buf[256];
	ssize_t n;
	int fd;

	fd = notify_listener(name);
	ASSERT_OK(fd);
	ASSERT_OK(setenv("NOTIFY_SOCKET", name, 1));
	ASSERT_EQ(zcr_sd_notify("READY=1"), 0);
	ASSERT_EQ(zcr_sd_notify("STATUS=2 routes, 4 workers\nSTOPPING=1"), 0);
	ASSERT_EQ(zcr_sd_notify_reloading(), 0);
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	ASSERT_EQ(n, 7);
	ASSERT_MEMEQ(buf, "READY=1", 7);
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = '\0';
	ASSERT_STREQ(buf, "STATUS=2 routes, 4 workers\nSTOPPING=1");
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = '\0';
	ASSERT_TRUE(!strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27));
	ASSERT_TRUE(strtoull(buf + 27, NULL, 10) > 0);
	ASSERT_EQ(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1); /* no more */
	close(fd);
	return T_PASS;
}

TEST(test_service_notify_path)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/notify", t_tmpdir());
	return notify_roundtrip(path);
}

TEST(test_service_notify_abstract)
{
	char name[64];

	snprintf(name, sizeof(name), "@zctest-notify-%d", (int)getpid());
	return notify_roundtrip(name);
}

TEST(test_service_notify_unset_and_bad)
{
	char path[256];

	unsetenv("NOTIFY_SOCKET");
	ASSERT_EQ(zcr_sd_notify("READY=1"), 0);
	ASSERT_OK(setenv("NOTIFY_SOCKET", "", 1));
	ASSERT_EQ(zcr_sd_notify("READY=1"), 0);
	ASSERT_ERR(zcr_sd_notify(NULL), -EINVAL);
	ASSERT_OK(setenv("NOTIFY_SOCKET", "relative/path", 1));
	ASSERT_ERR(zcr_sd_notify("READY=1"), -EAFNOSUPPORT);
	snprintf(path, sizeof(path), "%s/nobody-listens", t_tmpdir());
	ASSERT_OK(setenv("NOTIFY_SOCKET", path, 1));
	ASSERT_ERR(zcr_sd_notify("READY=1"), -ENOENT);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Socket activation                                                    */

static int env_clean(void)
{
	return !getenv("LISTEN_PID") && !getenv("LISTEN_FDS") &&
	       !getenv("LISTEN_FDNAMES");
}

static void set_listen_env(const char *pid, const char *fds)
{
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", fds, 1);
	setenv("LISTEN_FDNAMES", "a:b", 1);
}

/*
 * Puts fds[0..n-1] on 3..3+n-1 (as systemd does: not close-on-exec) and
 * sets the environment for this process. Whatever used 3.. before is
 * closed: only for a child of its own.
 */
static int pass_fds(int *fds, int n)
{
	char spid[16], sn[16];
	int i;

	for (i = 0; i < n; i++) {
		int hi = fcntl(fds[i], F_DUPFD_CLOEXEC, 100);

		ASSERT_OK(hi);
		close(fds[i]);
		fds[i] = hi;
	}
	for (i = 0; i < n; i++) {
		ASSERT_EQ(dup2(fds[i], 3 + i), 3 + i);
		close(fds[i]);
		fds[i] = 3 + i;
	}
	snprintf(spid, sizeof(spid), "%d", (int)getpid());
	snprintf(sn, sizeof(sn), "%d", n);
	set_listen_env(spid, sn);
	return T_PASS;
}

/* A listening socket on the abstract name "@zctest-sd-PID". */
static int listen_abstract(struct zc_addr *out)
{
	char s[64];
	int err;

	snprintf(s, sizeof(s), "unix:@zctest-sd-%d", (int)getpid());
	err = zc_addr_parse(out, s, ZC_ADDR_NUMERIC);
	return err ? err : zc_listen(out, 0, 16);
}

/* A socket on [::]:0, IPV6_V6ONLY as given, listening. */
static int listen_any6(int v6only, struct zc_addr *out)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
	int fd;

	memset(out, 0, sizeof(*out));
	s6->sin6_family = AF_INET6;
	s6->sin6_addr = in6addr_any;
	out->len = sizeof(*s6);
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	               sizeof(v6only)) == -1 ||
	    bind(fd, (struct sockaddr *)s6, out->len) == -1 ||
	    listen(fd, 16) == -1 ||
	    getsockname(fd, (struct sockaddr *)s6, &out->len) == -1) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* The address as a config file would give it: "127.0.0.1:PORT"... */
static int as_configured(const struct zc_addr *bound, struct zc_addr *out)
{
	char s[160];

	ASSERT_OK(t_addr_str(bound, s, sizeof(s)));
	ASSERT_EQ(zc_addr_parse(out, s, ZC_ADDR_NUMERIC | ZC_ADDR_PASSIVE), 0);
	return T_PASS;
}

/* The passed socket at fd is taken for a, non-blocking. */
static int take_ok(const struct zc_addr *bound, int fd)
{
	struct zc_addr a;

	ASSERT_EQ(as_configured(bound, &a), T_PASS);
	ASSERT_EQ(zcr_sd_listen_take(&a), fd);
	ASSERT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ASSERT_ERR(zcr_sd_listen_take(&a), -ENOENT);
	return T_PASS;
}

/* zcr_sd_listen_close_unused() closes fd with a warning that names it. */
static int unused_warning(int fd)
{
	char path[256], want[96], buf[512];
	ssize_t n;
	int lfd;

	snprintf(path, sizeof(path), "%s/warn.log", t_tmpdir());
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_TEXT));
	zcr_sd_listen_close_unused();
	zcr_log_close();
	lfd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_OK(lfd);
	n = read(lfd, buf, sizeof(buf) - 1);
	close(lfd);
	buf[n > 0 ? n : 0] = '\0';
	snprintf(want, sizeof(want),
	         " warn socket activation: inherited fd %d (0.0.0.0:0) "
	         "matches no listener; closing it\n",
	         fd);
	ASSERT_TRUE(strstr(buf, want));
	return T_PASS;
}

#define NPASS 5

static int take_child(void)
{
	struct zc_addr a[NPASS], other;
	int fds[NPASS], n = 0, i;

	ASSERT_OK(fds[n] = t_listen(AF_INET, &a[n]));
	n++;
	ASSERT_OK(fds[n] = t_listen(AF_UNIX, &a[n]));
	n++;
	ASSERT_OK(fds[n] = listen_abstract(&a[n]));
	n++;
	if (t_have_ipv6()) {
		ASSERT_OK(fds[n] = t_listen(AF_INET6, &a[n]));
		n++;
	}
	/* Not listening: matches nothing, closed as unused. */
	ASSERT_OK(fds[n] = socket(AF_INET, SOCK_DGRAM, 0));
	n++;
	ASSERT_EQ(pass_fds(fds, n), T_PASS);

	ASSERT_EQ(zcr_sd_listen_init(), n);
	ASSERT_TRUE(env_clean());
	for (i = 0; i < n; i++)
		ASSERT_TRUE(fcntl(3 + i, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(zc_addr_parse(&other, "127.0.0.1:1", ZC_ADDR_NUMERIC), 0);
	ASSERT_ERR(zcr_sd_listen_take(&other), -ENOENT);
	ASSERT_ERR(zcr_sd_listen_take(NULL), -EINVAL);
	for (i = n - 2; i >= 0; i--)
		ASSERT_EQ(take_ok(&a[i], 3 + i), T_PASS);
	ASSERT_EQ(unused_warning(3 + n - 1), T_PASS);
	ASSERT_EQ(fcntl(3 + n - 1, F_GETFD), -1);
	ASSERT_EQ(errno, EBADF);
	for (i = 0; i < n - 1; i++)
		close(3 + i);
	t_cleanup_unix(&a[1]);
	return T_PASS;
}

TEST(test_service_listen_take)
{
	return in_child(take_child);
}

/* systemd's ListenStream=PORT is a dual-stack [::]:PORT: it serves a
 * configured *:PORT, unless it is IPv6-only. */
static int dual_stack_child(void)
{
	struct zc_addr a[2], want;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&want.ss;
	int fds[2];

	ASSERT_OK(fds[0] = listen_any6(0, &a[0]));
	ASSERT_OK(fds[1] = listen_any6(1, &a[1]));
	ASSERT_EQ(pass_fds(fds, 2), T_PASS);
	ASSERT_EQ(zcr_sd_listen_init(), 2);

	ASSERT_EQ(zc_addr_parse(&want, "*:1", ZC_ADDR_PASSIVE), 0);
	s4->sin_port = ((struct sockaddr_in6 *)&a[1].ss)->sin6_port;
	ASSERT_ERR(zcr_sd_listen_take(&want), -ENOENT); /* v6 only */
	s4->sin_port = ((struct sockaddr_in6 *)&a[0].ss)->sin6_port;
	ASSERT_EQ(zcr_sd_listen_take(&want), 3);
	ASSERT_EQ(take_ok(&a[1], 4), T_PASS);
	zcr_sd_listen_close_unused();
	close(3);
	close(4);
	return T_PASS;
}

TEST(test_service_listen_dual_stack)
{
	T_SKIP_IF(!t_have_ipv6(), "no IPv6");
	return in_child(dual_stack_child);
}

/* LISTEN_FDS names a descriptor that is not open. */
static int bad_fd_child(void)
{
	int fds[1];

	ASSERT_OK(fds[0] = socket(AF_INET, SOCK_STREAM, 0));
	ASSERT_EQ(pass_fds(fds, 1), T_PASS);
	setenv("LISTEN_FDS", "2", 1);
	close(4);
	ASSERT_ERR(zcr_sd_listen_init(), -EBADF);
	ASSERT_TRUE(env_clean());
	close(3);
	return T_PASS;
}

TEST(test_service_listen_bad_fd)
{
	return in_child(bad_fd_child);
}

/* Malformed values never touch a descriptor: safe in the test itself. */
TEST(test_service_listen_malformed)
{
	static const char *const bad_fds[] = {
	        "",           "abc",  "-1",
	        "+1",         " 1",   "1 ",
	        "1x",         "0x10", "99999999999999999999",
	        "2147483647",
	};
	static const char *const bad_pid[] = {"", "x", "-5", "12a"};
	struct zc_addr a;
	char pid[16];
	size_t i;
	int rc;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	for (i = 0; i < sizeof(bad_fds) / sizeof(bad_fds[0]); i++) {
		set_listen_env(pid, bad_fds[i]);
		rc = zcr_sd_listen_init();
		if (rc != -EINVAL)
			t_log("LISTEN_FDS='%s'", bad_fds[i]);
		ASSERT_ERR(rc, -EINVAL);
		ASSERT_TRUE(env_clean());
	}
	for (i = 0; i < sizeof(bad_pid) / sizeof(bad_pid[0]); i++) {
		set_listen_env(bad_pid[i], "1");
		ASSERT_ERR(zcr_sd_listen_init(), -EINVAL);
		ASSERT_TRUE(env_clean());
	}
	set_listen_env(pid, "0");
	ASSERT_EQ(zcr_sd_listen_init(), 0);
	ASSERT_EQ(zcr_sd_listen_init(), 0); /* nothing set any more */
	ASSERT_EQ(zc_addr_parse(&a, "127.0.0.1:1", ZC_ADDR_NUMERIC), 0);
	ASSERT_ERR(zcr_sd_listen_take(&a), -ENOENT);
	zcr_sd_listen_close_unused();
	return T_PASS;
}

/* Sockets passed to our parent are not ours (and stay untouched). */
TEST(test_service_listen_other_pid)
{
	char pid[16];
	int before;

	snprintf(pid, sizeof(pid), "%d", (int)getppid());
	before = fcntl(3, F_GETFD);
	set_listen_env(pid, "1");
	ASSERT_EQ(zcr_sd_listen_init(), 0);
	ASSERT_TRUE(env_clean());
	ASSERT_EQ(fcntl(3, F_GETFD), before);
	zcr_sd_listen_close_unused();
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Privileges                                                           */

/* The "Key:" line of /proc/self/status has four ids, all want. */
static int status_ids(const char *key, unsigned want)
{
	unsigned v[4];
	char line[256];
	int found = 0;
	FILE *f;

	f = fopen("/proc/self/status", "re");
	ASSERT_TRUE(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			found = sscanf(line + strlen(key), "%u %u %u %u", &v[0],
			               &v[1], &v[2], &v[3]);
			break;
		}
	fclose(f);
	if (found != 4)
		return t_fail(__FILE__, __LINE__, "no 4 ids on %s", key);
	if (v[0] != want || v[1] != want || v[2] != want || v[3] != want)
		return t_fail(__FILE__, __LINE__, "%s %u %u %u %u, want %u",
		              key, v[0], v[1], v[2], v[3], want);
	return T_PASS;
}

static int drop_and_check(const char *user, const char *group, uid_t uid,
                          gid_t gid)
{
	char err[256] = "";
	gid_t groups[4];
	int rc;

	rc = zcr_drop_privileges(user, group, err, sizeof(err));
	if (rc)
		t_log("zcr_drop_privileges: %s", err);
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(status_ids("Uid:", uid), T_PASS);
	ASSERT_EQ(status_ids("Gid:", gid), T_PASS);
	ASSERT_EQ(getgroups(4, groups), 1);
	ASSERT_EQ(groups[0], gid);
	errno = 0;
	ASSERT_EQ(setuid(0), -1);
	ASSERT_EQ(errno, EPERM);
	/* Already that user: nothing to do, no error. */
	ASSERT_EQ(zcr_drop_privileges(user, group, err, sizeof(err)), 0);
	return T_PASS;
}

static int drop_nobody_child(void)
{
	struct passwd *pw = getpwnam("nobody");

	if (!pw)
		return t_skip("no user nobody");
	return drop_and_check("nobody", NULL, pw->pw_uid, pw->pw_gid);
}

static int drop_group_child(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("daemon");

	if (!pw || !gr)
		return t_skip("no user nobody or group daemon");
	return drop_and_check("nobody", "daemon", pw->pw_uid, gr->gr_gid);
}

TEST(test_service_drop_to_nobody)
{
	T_SKIP_IF(geteuid() != 0, "not root");
	return in_child(drop_nobody_child);
}

TEST(test_service_drop_with_group)
{
	T_SKIP_IF(geteuid() != 0, "not root");
	return in_child(drop_group_child);
}

/* Lookups fail before any id changes: safe in the test itself. */
TEST(test_service_drop_unknown)
{
	char err[256];

	ASSERT_EQ(zcr_drop_privileges(NULL, NULL, err, sizeof(err)), 0);
	ASSERT_ERR(
	        zcr_drop_privileges("zcr-no-such-user", NULL, err, sizeof(err)),
	        -ENOENT);
	ASSERT_STREQ(err, "unknown user 'zcr-no-such-user'");
	ASSERT_ERR(zcr_drop_privileges("nobody", "zcr-no-such-group", err,
	                               sizeof(err)),
	           -ENOENT);
	ASSERT_STREQ(err, "unknown group 'zcr-no-such-group'");
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Pid file                                                             */

TEST(test_service_pid_file)
{
	char path[256], buf[64], err[300];
	struct stat st;
	ssize_t n;
	int fd;

	umask(022);
	ASSERT_OK(t_write_tmp("zcr.pid", "stale content, much longer\n", path,
	                      sizeof(path)));
	ASSERT_EQ(zcr_write_pid_file(path, err, sizeof(err)), 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_GT(n, 0);
	buf[n] = '\0';
	ASSERT_EQ(strtol(buf, NULL, 10), getpid());
	ASSERT_EQ(buf[n - 1], '\n');
	ASSERT_EQ(strchr(buf, '\n') - buf, n - 1);

	unlink(path);
	ASSERT_EQ(zcr_write_pid_file(path, err, sizeof(err)), 0);
	ASSERT_OK(stat(path, &st));
	ASSERT_EQ(st.st_mode & 0777, 0644);

	snprintf(path, sizeof(path), "%s/no/such/dir/zcr.pid", t_tmpdir());
	ASSERT_ERR(zcr_write_pid_file(path, err, sizeof(err)), -ENOENT);
	ASSERT_TRUE(!strncmp(err, path, strlen(path)));
	ASSERT_TRUE(strstr(err, ": No such file or directory"));
	return T_PASS;
}

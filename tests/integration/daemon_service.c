/*
 * daemon_service.c - the daemon as a service, black-box: JSON log lines
 * in a file and their reopening on SIGUSR1 (logrotate), systemd's
 * readiness notifications (READY, RELOADING, STOPPING), socket
 * activation (LISTEN_FDS/LISTEN_PID), and dropping root for "nobody".
 */
#include <errno.h>
#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define NO_DAEMON "ZC_DAEMON not set"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/*
 * Writes the configuration file (its path to path, size bytes) with the
 * route "s" from la to ua and the top-level settings top (may be NULL),
 * and makes a the daemon's arguments for it: -c path.
 */
static int cfg_route(struct t_dargs *a, char *path, size_t size,
                     const struct zc_addr *la, const struct zc_addr *ua,
                     const char *top)
{
	char ls[128], us[128], text[2048];
	int n;

	ASSERT_OK(t_addr_str(la, ls, sizeof(ls)));
	ASSERT_OK(t_addr_str(ua, us, sizeof(us)));
	n = snprintf(text, sizeof(text),
	             "workers = 2;\n%s\nroutes = ( { name = \"s\";"
	             " listen = \"%s\"; upstreams = \"%s\"; } );\n",
	             top ? top : "", ls, us);
	ASSERT_LT(n, (int)sizeof(text));
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, size));
	t_dargs_cfg(a, path);
	return T_PASS;
}

/*
 * A client through la to the upstream listening on ulfd: "ping", "pong",
 * both close. Its address goes to client (size bytes) if not NULL.
 */
static int ping_via(const struct zc_addr *la, int ulfd, char *client,
                    size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int c, u;

	c = t_connect(la);
	ASSERT_OK(c);
	ASSERT_EQ(getsockname(c, (struct sockaddr *)&ss, &len), 0);
	if (client)
		ASSERT_OK(zc_addr_format((struct sockaddr *)&ss, len, client,
		                         size));
	ASSERT_OK(t_write_all(c, "ping", 4));
	u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(u);
	return t_ping_pong(c, u, "ping", 4);
}

/* ------------------------------------------------------------------ */
/* JSON log file, SIGUSR1                                               */

/*
 * Checks a JSON log file with python3: argv[1] the file, then for each
 * session expected in it "CLIENT UPSTREAM UP DOWN". Every line must be a
 * JSON object with ts, level and msg; the session lines must be exactly
 * the expected ones, with exactly the documented keys and values.
 */
static const char json_check_py[] =
        "import json, sys\n"
        "want = {}\n"
        "for w in sys.argv[2:]:\n"
        "    c, u, up, down = w.split()\n"
        "    want[c] = (u, int(up), int(down))\n"
        "keys = {'ts', 'level', 'msg', 'worker', 'route', 'client',\n"
        "        'upstream', 'up', 'down', 'spliced', 'copied',\n"
        "        'duration', 'end', 'engine', 'mover'}\n"
        "seen = set()\n"
        "for n, line in enumerate(open(sys.argv[1], encoding='utf-8'), 1):\n"
        "    o = json.loads(line)\n"
        "    assert isinstance(o, dict), n\n"
        "    assert {'ts', 'level', 'msg'} <= set(o), (n, line)\n"
        "    assert o['ts'].endswith('Z'), (n, line)\n"
        "    if o['msg'] != 'session':\n"
        "        continue\n"
        "    assert set(o) == keys, (n, sorted(set(o) ^ keys))\n"
        "    u, up, down = want[o['client']]\n"
        "    assert o['level'] == 'info' and o['route'] == 's', line\n"
        "    assert o['upstream'] == u and o['end'] == 'eof', line\n"
        "    assert o['up'] == up and o['down'] == down, line\n"
        "    assert o['spliced'] + o['copied'] == up + down, line\n"
        "    assert type(o['worker']) is int, line\n"
        "    assert type(o['duration']) in (int, float), line\n"
        "    assert o['duration'] >= 0, line\n"
        "    assert o['engine'] in ('epoll', 'uring'), line\n"
        "    assert o['mover'] in ('auto', 'splice', 'copy'), line\n"
        "    seen.add(o['client'])\n"
        "assert seen == set(want), (seen, set(want))\n";

/* Runs json_check_py on file for the session of client (upstream us,
 * "ping" up, "pong" down). */
static int json_check(const char *file, const char *client, const char *us)
{
	char py[256], cmd[1024];

	ASSERT_OK(t_write_tmp("check.py", json_check_py, py, sizeof(py)));
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' '%s %s 4 4'", py, file,
	         client, us);
	ASSERT_EQ(t_run(cmd), 0);
	return T_PASS;
}

/* Waits at most 5 s for path to exist. */
static int wait_exists(const char *path)
{
	uint64_t end = t_now_ms() + 5000;

	while (access(path, F_OK) != 0) {
		ASSERT_LT(t_now_ms(), end);
		t_sleep_ms(5);
	}
	return T_PASS;
}

/*
 * log = { format = "json"; file = PATH; }: every line is JSON, the
 * session line has the documented keys. After logrotate's rename and
 * SIGUSR1, new lines go to a new file at PATH, none to the old one.
 */
TEST(test_daemon_service_json_log)
{
	char top[600], path[256], logp[256], oldp[270];
	char client[2][128], us[128];
	struct zc_addr la, ua;
	struct t_daemon d;
	struct t_dargs a;
	int ulfd, rc, nold;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_SKIP_IF(!t_in_path("python3"), "python3 not in PATH");
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	ASSERT_OK(t_addr_str(&ua, us, sizeof(us)));
	snprintf(logp, sizeof(logp), "%s/relay.log", t_tmpdir());
	snprintf(oldp, sizeof(oldp), "%s.1", logp);
	snprintf(top, sizeof(top),
	         "log = { format = \"json\"; file = \"%s\"; };", logp);
	if (cfg_route(&a, path, sizeof(path), &la, &ua, top))
		return T_FAIL;
	ASSERT_OK(t_daemon_start(&d, a.v));
	ASSERT_OK(t_daemon_ready(&d, &la, 5000));
	ASSERT_OK(t_wait_file_line(logp, "\"msg\":\"listening on ", NULL, NULL,
	                           0, 5000));

	T_TRY(ping_via(&la, ulfd, client[0], sizeof(client[0])));
	ASSERT_OK(t_wait_file_line(logp, "\"msg\":\"session\"", client[0], NULL,
	                           0, 5000));

	ASSERT_EQ(rename(logp, oldp), 0);
	ASSERT_EQ(kill(d.pid, SIGUSR1), 0);
	if (wait_exists(logp))
		return T_FAIL;
	nold = t_file_count(oldp, "", NULL);
	T_TRY(ping_via(&la, ulfd, client[1], sizeof(client[1])));
	ASSERT_OK(t_wait_file_line(logp, "\"msg\":\"session\"", client[1], NULL,
	                           0, 5000));
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	ASSERT_EQ(t_file_count(oldp, "", NULL), nold);
	ASSERT_EQ(t_file_count(logp, "\"msg\":\"stopped\"", NULL), 1);
	ASSERT_EQ(t_log_count(&d, "session", NULL), 0); /* not on stderr */

	rc = json_check(oldp, client[0], us);
	if (!rc)
		rc = json_check(logp, client[1], us);
	close(ulfd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* sd_notify                                                            */

/* Receives the next datagram on fd within 5 s into buf (NUL-terminated). */
static int notify_recv(int fd, char *buf, size_t size)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	ASSERT_EQ(poll(&p, 1, 5000), 1);
	n = recv(fd, buf, size - 1, 0);
	ASSERT_GE(n, 0);
	buf[n] = '\0';
	return T_PASS;
}

#define ASSERT_NOTIFY(fd, want)                                                \
	do {                                                                   \
		char n_b_[256];                                                \
		if (notify_recv(fd, n_b_, sizeof(n_b_)))                       \
			return T_FAIL;                                         \
		ASSERT_STREQ(n_b_, want);                                      \
	} while (0)

/* RELOADING=1 with MONOTONIC_USEC, which must be now, within 5 s. */
static int expect_reloading(int fd)
{
	char buf[256], *end;
	unsigned long long us, now;
	struct timespec ts;

	if (notify_recv(fd, buf, sizeof(buf)))
		return T_FAIL;
	ASSERT_HAS(buf, "RELOADING=1\nMONOTONIC_USEC=");
	us = strtoull(strstr(buf, "USEC=") + 5, &end, 10);
	ASSERT_EQ(*end, '\0');
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000ULL +
	      (unsigned long long)ts.tv_nsec / 1000;
	ASSERT_LE(us, now);
	ASSERT_LT(now - us, 5000000ULL);
	return T_PASS;
}

/* A datagram socket bound to name (a path, or "@abstract"). */
static int notify_socket(const char *name)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd;

	ASSERT_LT(strlen(name), sizeof(sun.sun_path));
	memcpy(sun.sun_path, name, strlen(name));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_OK(fd);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	                  strlen(name) + (name[0] != '@'));
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	ASSERT_EQ(bind(fd, (struct sockaddr *)&sun, len), 0);
	return fd;
}

/*
 * NOTIFY_SOCKET (a path, then an abstract name): READY=1 once it serves
 * (a client gets through at once); on SIGHUP RELOADING=1 then READY=1,
 * also when the new file is bad; on SIGTERM STOPPING=1.
 */
TEST(test_daemon_service_notify)
{
	char path[256], name[256], env[300];
	const char *envv[] = {env, NULL};
	struct t_dstart o = {.env = envv};
	struct zc_addr la, ua;
	struct t_daemon d;
	struct t_dargs a;
	int ulfd, nfd, k;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	for (k = 0; k < 2; k++) {
		if (k == 0)
			snprintf(name, sizeof(name), "%s/notify", t_tmpdir());
		else
			snprintf(name, sizeof(name), "@zctest-%d-notify",
			         (int)getpid());
		snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", name);
		nfd = notify_socket(name);
		ASSERT_OK(nfd);
		ASSERT_OK(t_free_addr(AF_INET, &la));
		if (cfg_route(&a, path, sizeof(path), &la, &ua, NULL))
			return T_FAIL;
		ASSERT_OK(t_daemon_start_opts(&d, a.v, &o));
		ASSERT_NOTIFY(nfd, "READY=1");
		T_TRY(ping_via(&la, ulfd, NULL, 0)); /* no waiting */

		ASSERT_EQ(kill(d.pid, SIGHUP), 0);
		if (expect_reloading(nfd))
			return T_FAIL;
		ASSERT_NOTIFY(nfd, "READY=1");
		ASSERT_EQ(t_log_count(&d, "info reloaded ", NULL), 1);

		ASSERT_OK(t_write_tmp("zcrelay.conf", "routes = (", path,
		                      sizeof(path)));
		ASSERT_EQ(kill(d.pid, SIGHUP), 0);
		if (expect_reloading(nfd))
			return T_FAIL;
		ASSERT_NOTIFY(nfd, "READY=1");
		ASSERT_EQ(t_log_count(&d, "reload of ", "failed"), 1);

		ASSERT_EQ(kill(d.pid, SIGTERM), 0);
		ASSERT_NOTIFY(nfd, "STOPPING=1");
		ASSERT_EQ(t_daemon_stop(&d, 0), 0);
		close(nfd);
		if (k == 0)
			unlink(name);
	}
	close(ulfd);
	return T_PASS;
}

/* A NOTIFY_SOCKET nobody listens on, or that is neither a path nor
 * "@name", changes nothing: the daemon serves and stops cleanly. */
TEST(test_daemon_service_notify_unreachable)
{
	char path[256], env[300];
	const char *envv[] = {env, NULL};
	struct t_dstart o = {.env = envv};
	struct zc_addr la, ua;
	struct t_daemon d;
	struct t_dargs a;
	int ulfd, rc, k;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	for (k = 0; k < 2; k++) {
		if (k == 0)
			snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s/none",
			         t_tmpdir());
		else
			snprintf(env, sizeof(env), "NOTIFY_SOCKET=relative");
		ASSERT_OK(t_free_addr(AF_INET, &la));
		if (cfg_route(&a, path, sizeof(path), &la, &ua, NULL))
			return T_FAIL;
		rc = t_daemon_up_opts(&d, &a, &la, &o);
		if (!rc)
			rc = ping_via(&la, ulfd, NULL, 0);
		if (rc)
			return rc;
		ASSERT_EQ(kill(d.pid, SIGHUP), 0);
		ASSERT_EQ(t_wait_log_count(&d, "info reloaded ", NULL, 1, 5000),
		          1);
		ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	}
	close(ulfd);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Socket activation                                                    */

/* 1 if the process pid has an fd on the socket with inode ino. */
static int has_socket(pid_t pid, ino_t ino)
{
	char dir[64], link[330], want[64], target[64];
	struct dirent *e;
	ssize_t n;
	int found = 0;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)ino);
	dp = opendir(dir);
	if (!dp)
		return 0;
	while (!found && (e = readdir(dp)) != NULL) {
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			found = strcmp(target, want) == 0;
		}
	}
	closedir(dp);
	return found;
}

/*
 * The test's listening socket, passed as fd 3 with LISTEN_FDS=1 and
 * LISTEN_PID: the daemon serves on that very socket (it could not bind
 * the address itself while the socket exists), also after the test
 * closed its copy.
 */
TEST(test_daemon_service_socket_activation)
{
	char path[256], line[512], ls[128];
	struct t_dstart o = {0};
	struct zc_addr la, ua;
	struct t_daemon d;
	struct t_dargs a;
	struct stat st;
	int lfd, ulfd, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	lfd = t_listen(AF_INET, &la);
	ASSERT_OK(lfd);
	ASSERT_EQ(fstat(lfd, &st), 0);
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	if (cfg_route(&a, path, sizeof(path), &la, &ua, NULL))
		return T_FAIL;
	o.listen_fd = lfd;
	rc = t_daemon_up_opts(&d, &a, &la, &o);
	close(lfd);
	if (rc)
		return rc;
	ASSERT_OK(t_addr_str(&la, ls, sizeof(ls)));
	snprintf(line, sizeof(line), "listen %s: socket from systemd", ls);
	ASSERT_EQ(t_log_count(&d, line, NULL), 1);
	ASSERT_EQ(t_log_count(&d, "LISTEN_FDS", NULL), 0);
	ASSERT_EQ(t_log_count(&d, "socket activation", NULL), 0);
	ASSERT_TRUE(has_socket(d.pid, st.st_ino));
	T_TRY(ping_via(&la, ulfd, NULL, 0));
	T_TRY(ping_via(&la, ulfd, NULL, 0));
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	ASSERT_ERR(t_connect(&la), -ECONNREFUSED);
	close(ulfd);
	return T_PASS;
}

/*
 * Bad activation input: a socket matching no listener is closed with a
 * warning (the daemon binds its own address); LISTEN_PID naming another
 * process leaves fd 3 alone (so binding its address fails: exit 1);
 * malformed LISTEN_FDS is ignored with a warning.
 */
TEST(test_daemon_service_socket_activation_bad)
{
	static const char *const other_pid[] = {"LISTEN_PID=1", NULL};
	static const char *const bad_fds[] = {"LISTEN_FDS=x", NULL};
	char msg[512], path[256], ls[128];
	struct t_dstart o = {0};
	struct zc_addr la, lx, ua;
	struct t_daemon d;
	struct t_dargs a;
	int lfd, ulfd, rc;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	lfd = t_listen(AF_INET, &lx);
	ASSERT_OK(lfd);
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	ASSERT_OK(t_addr_str(&lx, ls, sizeof(ls)));

	/* Passed a socket for lx, configured for la. */
	ASSERT_OK(t_free_addr(AF_INET, &la));
	if (cfg_route(&a, path, sizeof(path), &la, &ua, NULL))
		return T_FAIL;
	o.listen_fd = lfd;
	rc = t_daemon_up_opts(&d, &a, &la, &o);
	if (!rc)
		rc = ping_via(&la, ulfd, NULL, 0);
	if (rc)
		return rc;
	ASSERT_EQ(t_log_count(&d, "socket activation: inherited fd 3", ls), 1);
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);

	/* LISTEN_PID of another process, configured for lx. */
	if (cfg_route(&a, path, sizeof(path), &lx, &ua, NULL))
		return T_FAIL;
	o.env = other_pid;
	ASSERT_OK(t_daemon_start_opts(&d, a.v, &o));
	ASSERT_EQ(t_daemon_wait(&d, 5000), 1);
	snprintf(msg, sizeof(msg), "listen %s: %s", ls, strerror(EADDRINUSE));
	ASSERT_EQ(t_log_count(&d, msg, NULL), 1);

	/* LISTEN_FDS=x (with our LISTEN_PID): ignored, and the daemon
	 * binds la itself. */
	if (cfg_route(&a, path, sizeof(path), &la, &ua, NULL))
		return T_FAIL;
	o = (struct t_dstart){.env = bad_fds, .listen_fd = lfd};
	rc = t_daemon_up_opts(&d, &a, &la, &o);
	if (!rc)
		rc = ping_via(&la, ulfd, NULL, 0);
	if (rc)
		return rc;
	ASSERT_EQ(t_log_count(&d, "LISTEN_FDS: ", "ignored"), 1);
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	close(lfd);
	close(ulfd);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Privileges                                                           */

/* The four ids of "key:" (Uid or Gid) in a /proc status file must all
 * be want; "Groups:" must be just gid. */
static int check_status(const char *file, uid_t uid, gid_t gid)
{
	char line[256], groups[64];
	unsigned long v[4];
	int seen = 0, i;
	FILE *f;

	f = fopen(file, "re");
	ASSERT_TRUE(f);
	snprintf(groups, sizeof(groups), "Groups:\t%lu", (unsigned long)gid);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, " \n")] = '\0';
		if (sscanf(line, "Uid: %lu %lu %lu %lu", &v[0], &v[1], &v[2],
		           &v[3]) == 4) {
			for (i = 0; i < 4; i++)
				ASSERT_EQ(v[i], uid);
			seen |= 1;
		} else if (sscanf(line, "Gid: %lu %lu %lu %lu", &v[0], &v[1],
		                  &v[2], &v[3]) == 4) {
			for (i = 0; i < 4; i++)
				ASSERT_EQ(v[i], gid);
			seen |= 2;
		} else if (strncmp(line, "Groups:", 7) == 0) {
			ASSERT_STREQ(line, groups);
			seen |= 4;
		}
	}
	fclose(f);
	ASSERT_EQ(seen, 7);
	return T_PASS;
}

/*
 * user = "nobody": every thread of the daemon runs with nobody's uid and
 * gid (real, effective, saved, fs) and no other group, and it relays.
 * An unknown user: exit 1 with the reason.
 */
TEST(test_daemon_service_user)
{
	char path[256], file[300];
	struct zc_addr la, ua;
	struct t_daemon d;
	struct t_dargs a;
	struct passwd *pw;
	struct dirent *e;
	int ulfd, n = 0;
	DIR *dp;

	T_SKIP_IF(!t_daemon_path(), NO_DAEMON);
	T_SKIP_IF(geteuid() != 0, "needs root to drop privileges");
	pw = getpwnam("nobody");
	T_SKIP_IF(!pw, "no user nobody");
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ulfd = t_listen(AF_INET, &ua);
	ASSERT_OK(ulfd);
	if (cfg_route(&a, path, sizeof(path), &la, &ua, "user = \"nobody\";"))
		return T_FAIL;
	T_TRY(t_daemon_up(&d, &a, &la));
	ASSERT_EQ(t_log_count(&d, "running as user nobody", NULL), 1);
	snprintf(file, sizeof(file), "/proc/%d/task", (int)d.pid);
	dp = opendir(file);
	ASSERT_TRUE(dp);
	while ((e = readdir(dp)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "/proc/%d/task/%s/status",
		         (int)d.pid, e->d_name);
		if (check_status(file, pw->pw_uid, pw->pw_gid))
			return T_FAIL;
		n++;
	}
	closedir(dp);
	ASSERT_GE(n, 3); /* main and two workers at least */
	T_TRY(ping_via(&la, ulfd, NULL, 0));
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);

	if (cfg_route(&a, path, sizeof(path), &la, &ua,
	              "user = \"zctest-no-such-user\";"))
		return T_FAIL;
	ASSERT_OK(t_daemon_start(&d, a.v));
	ASSERT_EQ(t_daemon_wait(&d, 5000), 1);
	ASSERT_EQ(t_log_count(&d,
	                      "cannot drop privileges: unknown user "
	                      "'zctest-no-such-user'",
	                      NULL),
	          1);
	close(ulfd);
	return T_PASS;
}

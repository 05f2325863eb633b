/*
 * upgrade.c - SIGUSR2: the running process (A) starts the binary at the
 * path it was started from (B) and hands it the listening sockets.
 *
 * B loads its configuration before it takes anything, so a bad config,
 * a binary that does not start, or one that speaks another hand-over
 * version fails while A still serves everything: rollback is the
 * default. The commit point is B's READY, sent once B accepts on every
 * socket: only then does A stop accepting. Both processes hold the same
 * sockets (SCM_RIGHTS duplicates descriptors, not sockets) until A
 * closes its copies, so no listening socket is ever closed and no
 * client refused or reset. docs/internals/handoff.md has the details.
 *
 * Phase 1 only: A keeps its established sessions and drains them as on
 * SIGTERM; moving them to B (ZCR_HO_SESSIONS) is phase 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "daemon.h"
#include "handoff.h"
#include "service.h"
#include "upgrade.h"

#define UPGRADE_TIMEOUT_MS 30000 /* A: B must be ready within this */
#define B_WAIT_MS          10000 /* B: each message from A */
#define REAP_MS            2000  /* A: B closed the socket, now exits */

extern char **environ;

static char self_path[PATH_MAX]; /* "": unresolved, no upgrade */
static char **self_argv;
static int ho_sock = -1; /* B: to A; A: to B while upgrading */
static int is_child;
static int b_reaped; /* A: the B of this upgrade was waited for */

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* argv0 as an absolute path: itself if it has a '/', else the first
 * executable in $PATH (an empty entry is the current directory). */
static int resolve_self(const char *argv0)
{
	const char *p, *end, *path = getenv("PATH");
	char cand[PATH_MAX];

	if (strchr(argv0, '/'))
		return realpath(argv0, self_path) ? 0 : -errno;
	for (p = path ? path : "/usr/bin:/bin"; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		if (end == p)
			snprintf(cand, sizeof(cand), "./%s", argv0);
		else
			snprintf(cand, sizeof(cand), "%.*s/%s", (int)(end - p),
			         p, argv0);
		if (access(cand, X_OK) == 0 && realpath(cand, self_path))
			return 0;
	}
	return -ENOENT;
}

static int copy_argv(int argc, char **argv)
{
	int i;

	self_argv = calloc((size_t)argc + 1, sizeof(*self_argv));
	if (!self_argv)
		return -ENOMEM;
	for (i = 0; i < argc; i++)
		if (!(self_argv[i] = strdup(argv[i])))
			return -ENOMEM;
	return 0;
}

/* $ZCRELAY_HANDOFF_FD, if set: this process is a B. 0 or -errno. */
static int child_init(void)
{
	const char *e = getenv(ZCR_HO_ENV);
	socklen_t len = sizeof(int);
	unsigned long v;
	int type = 0;
	char *end;

	if (!e)
		return 0;
	errno = 0;
	v = strtoul(e, &end, 10);
	unsetenv(ZCR_HO_ENV); /* e is gone now; a C of ours gets its own */
	if (end == e || *end || errno || v < 3 || v > INT_MAX)
		return -EINVAL;
	if (getsockopt((int)v, SOL_SOCKET, SO_TYPE, &type, &len) == -1)
		return -errno;
	if (type != SOCK_SEQPACKET)
		return -ENOTSOCK;
	if (fcntl((int)v, F_SETFD, FD_CLOEXEC) == -1)
		return -errno;
	ho_sock = (int)v;
	is_child = 1;
	return 0;
}

int zcr_upgrade_init(int argc, char **argv)
{
	int err = argc > 0 ? resolve_self(argv[0]) : -ENOENT;

	if (err) {
		self_path[0] = '\0';
		zcr_log(ZC_LOG_WARN,
		        "upgrade: cannot resolve the binary's path (%s): %s: "
		        "SIGUSR2 will not work",
		        argc > 0 ? argv[0] : "", zc_strerror(err));
	}
	if (copy_argv(argc, argv))
		self_path[0] = '\0';
	err = child_init();
	if (err)
		zcr_log(ZC_LOG_ERR, "upgrade: %s: %s", ZCR_HO_ENV,
		        zc_strerror(err));
	return err;
}

int zcr_upgrade_child(void)
{
	return is_child;
}

/* ------------------------------------------------------------------ */
/* B                                                                    */

/* Test seam: ZCRELAY_TEST_UPGRADE_FAIL=step makes B fail at step. */
static void test_fail_at(const char *step)
{
	const char *e = getenv("ZCRELAY_TEST_UPGRADE_FAIL");

	if (!e || strcmp(e, step))
		return;
	zcr_log(ZC_LOG_WARN, "upgrade: test seam: failing at '%s'", step);
	if (strcmp(step, "stall") == 0)
		for (;;)
			pause();
	abort();
}

void zcr_upgrade_refuse(const char *why)
{
	if (ho_sock < 0)
		return;
	zcr_ho_send(ho_sock, ZCR_HO_ERROR, 0, why, strlen(why), NULL, 0);
	close(ho_sock);
	ho_sock = -1;
}

/* A's hello: the version check. 0 or -errno (A told why). */
static int take_hello(struct zcr_ho_msg *m)
{
	char why[128];
	int err = zcr_ho_recv(ho_sock, m, B_WAIT_MS);

	if (err == -EPROTONOSUPPORT)
		snprintf(why, sizeof(why),
		         "unknown hand-over version %u (this binary speaks %d)",
		         m->h.version, ZCR_HO_VERSION);
	else if (!err && m->h.type != ZCR_HO_HELLO)
		snprintf(why, sizeof(why), "message %u before the hello",
		         m->h.type);
	else if (err)
		snprintf(why, sizeof(why), "no hello: %s", zc_strerror(err));
	if (!err && m->h.type == ZCR_HO_HELLO)
		return 0;
	zcr_ho_msg_close(m);
	zcr_log(ZC_LOG_ERR, "upgrade: %s: exiting, the old process runs on",
	        why);
	zcr_upgrade_refuse(why);
	return err ? err : -EPROTO;
}

/* The LISTENERS batches up to LISTENERS_END; returns how many fds or
 * -errno. */
static int take_listeners(struct zcr_ho_msg *m)
{
	unsigned total = 0;
	int err;

	for (;;) {
		err = zcr_ho_recv(ho_sock, m, B_WAIT_MS);
		if (err)
			return err;
		if (m->h.type == ZCR_HO_LISTENERS_END)
			return m->h.arg == total ? (int)total : -EPROTO;
		if (m->h.type != ZCR_HO_LISTENERS) {
			zcr_ho_msg_close(m);
			return -EPROTO;
		}
		err = zcr_sd_listen_adopt(m->fds, m->nfds);
		if (err) {
			zcr_ho_msg_close(m);
			return err;
		}
		total += m->nfds;
		m->nfds = 0;
	}
}

int zcr_upgrade_take(void)
{
	struct zcr_ho_msg *m = malloc(sizeof(*m));
	unsigned a_pid;
	int n;

	if (!m)
		return -ENOMEM;
	n = take_hello(m);
	if (n) {
		free(m);
		return n;
	}
	a_pid = m->h.arg;
	n = zcr_ho_send(ho_sock, ZCR_HO_HELLO, (uint32_t)getpid(), NULL, 0,
	                NULL, 0);
	if (n == 0)
		n = take_listeners(m);
	free(m);
	if (n < 0) {
		zcr_log(ZC_LOG_ERR,
		        "upgrade: taking the listeners of pid %u: %s", a_pid,
		        zc_strerror(n));
		return n;
	}
	zcr_log(ZC_LOG_INFO, "upgrade: took %d listening socket(s) from pid %u",
	        n, a_pid);
	test_fail_at("taken");
	test_fail_at("stall");
	return 0;
}

int zcr_upgrade_ready(const char *pid_file)
{
	struct zcr_ho_msg *m = malloc(sizeof(*m));
	char msg[64], err_s[ZCR_ERR_MAX];
	int err;

	err = zcr_ho_send(ho_sock, ZCR_HO_READY, (uint32_t)getpid(), NULL, 0,
	                  NULL, 0);
	if (err)
		zcr_log(ZC_LOG_WARN, "upgrade: cannot tell the old process: %s",
		        zc_strerror(err));
	if (pid_file && zcr_write_pid_file(pid_file, err_s, sizeof(err_s)))
		zcr_log(ZC_LOG_ERR, "pid file %s", err_s);
	snprintf(msg, sizeof(msg), "MAINPID=%d\nREADY=1", (int)getpid());
	zcr_sd_notify(msg);
	if (!err && m && zcr_ho_recv(ho_sock, m, B_WAIT_MS) == 0 &&
	    m->h.type == ZCR_HO_DONE)
		zcr_log(ZC_LOG_INFO,
		        "upgrade: the old process stopped accepting; its "
		        "sessions end there");
	else if (!err)
		zcr_log(ZC_LOG_WARN,
		        "upgrade: no word from the old process after ready");
	if (m)
		zcr_ho_msg_close(m);
	free(m);
	close(ho_sock);
	ho_sock = -1;
	return err;
}

/* ------------------------------------------------------------------ */
/* A                                                                    */

/* environ without ZCRELAY_HANDOFF_FD, plus ours for fd (malloc'd; the
 * strings are borrowed but the last, in buf). */
static char **child_env(int fd, char *buf, size_t size)
{
	size_t n = 0, k = 0, plen = strlen(ZCR_HO_ENV);
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (n = 0; environ[n]; n++)
		if (strncmp(environ[n], ZCR_HO_ENV, plen) ||
		    environ[n][plen] != '=')
			env[k++] = environ[n];
	snprintf(buf, size, "%s=%d", ZCR_HO_ENV, fd);
	env[k] = buf;
	return env;
}

/* fork + exec of B; between them only async-signal-safe calls (A has
 * threads). B gets an empty signal mask and fd open across exec. */
static pid_t spawn(char **env, int fd)
{
	sigset_t none;
	pid_t pid;

	sigemptyset(&none);
	pid = fork();
	if (pid != 0)
		return pid == -1 ? -errno : pid;
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (fcntl(fd, F_SETFD, 0) == 0)
		execve(self_path, self_argv, env);
	_exit(127);
}

/* How long B may take to be ready: UPGRADE_TIMEOUT_MS, or the test
 * seam ZCRELAY_TEST_UPGRADE_TIMEOUT_MS. */
static long ready_timeout_ms(void)
{
	const char *e = getenv("ZCRELAY_TEST_UPGRADE_TIMEOUT_MS");

	return e && atol(e) > 0 ? atol(e) : UPGRADE_TIMEOUT_MS;
}

/* Why B ended, from its wait status. */
static void why_status(int st, char *why, size_t size)
{
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		snprintf(why, size, "the new binary %s could not be executed",
		         self_path);
	else if (WIFEXITED(st))
		snprintf(why, size,
		         "the new process exited with status %d before it "
		         "was ready (its log says why)",
		         WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(why, size,
		         "the new process was killed by signal %d (%s) before "
		         "it was ready",
		         WTERMSIG(st), strsignal(WTERMSIG(st)));
}

/* B closed its end: reap it (killing it after REAP_MS) and say why. */
static void b_gone(pid_t pid, char *why, size_t size)
{
	long end = mono_ms() + REAP_MS;
	int st = 0;
	pid_t r;

	while ((r = waitpid(pid, &st, WNOHANG)) == 0 && mono_ms() < end)
		usleep(10000);
	if (r == 0) {
		snprintf(why, size,
		         "the new process closed the hand-over socket: killed");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	} else if (r == pid) {
		why_status(st, why, size);
	}
	b_reaped = 1;
}

/* The next message of B, expected of type want, before deadline. */
static int expect(struct zcr_ho_msg *m, unsigned want, long deadline, pid_t pid,
                  char *why, size_t size)
{
	long left = deadline - mono_ms();
	int err = zcr_ho_recv(ho_sock, m, left > 0 ? (int)left : 0);

	/* B closed with our messages unread: the kernel reports a reset
	 * first, then still hands out what B sent before (its ERROR). */
	if (err == -ECONNRESET)
		err = zcr_ho_recv(ho_sock, m, 0) == 0 ? 0 : -EPIPE;
	if (err == 0 && m->h.type == want)
		return 0;
	zcr_ho_msg_close(m); /* B never sends any: none is kept */
	if (err == -EPIPE || err == -ECONNRESET) {
		b_gone(pid, why, size);
		return -EPIPE;
	}
	if (err == -ETIMEDOUT)
		snprintf(why, size,
		         "the new process was not ready within %ld ms: killed",
		         ready_timeout_ms());
	else if (err)
		snprintf(why, size, "hand-over: %s", zc_strerror(err));
	else if (m->h.type == ZCR_HO_ERROR)
		snprintf(why, size, "the new process refused: %s", m->data);
	else
		snprintf(why, size, "hand-over: unexpected message %u",
		         m->h.type);
	return err ? err : -EPROTO;
}

/* Sends the n fds in batches of ZCR_HO_MAX_FDS, then the count. */
static int send_listeners(const int *fds, unsigned n)
{
	unsigned i, k;
	int err = 0;

	for (i = 0; i < n && !err; i += k) {
		k = n - i < ZCR_HO_MAX_FDS ? n - i : ZCR_HO_MAX_FDS;
		err = zcr_ho_send(ho_sock, ZCR_HO_LISTENERS, 0, NULL, 0,
		                  fds + i, k);
	}
	if (!err)
		err = zcr_ho_send(ho_sock, ZCR_HO_LISTENERS_END, n, NULL, 0,
		                  NULL, 0);
	return err;
}

/* Test seam: ZCRELAY_TEST_HANDOFF_VERSION is the version A announces. */
static void hello_version(void)
{
	const char *e = getenv("ZCRELAY_TEST_HANDOFF_VERSION");

	zcr_ho_set_version(e ? (unsigned)atoi(e) : ZCR_HO_VERSION);
}

/* The exchange with B, up to its READY. 0 or -errno with why. */
static int handover(pid_t pid, const int *fds, unsigned n, char *why,
                    size_t size)
{
	long deadline = mono_ms() + ready_timeout_ms();
	struct zcr_ho_msg *m = malloc(sizeof(*m));
	int err;

	if (!m)
		return -ENOMEM;
	hello_version();
	err = zcr_ho_send(ho_sock, ZCR_HO_HELLO, (uint32_t)getpid(), NULL, 0,
	                  NULL, 0);
	zcr_ho_set_version(ZCR_HO_VERSION);
	/* B gone already: what it said before (an ERROR) is still queued. */
	if (!err || err == -EPIPE || err == -ECONNRESET) {
		int e = expect(m, ZCR_HO_HELLO, deadline, pid, why, size);

		err = e ? e : err;
	} else
		snprintf(why, size, "hand-over: hello: %s", zc_strerror(err));
	if (!err && (err = send_listeners(fds, n)) != 0)
		snprintf(why, size, "hand-over: sending the listeners: %s",
		         zc_strerror(err));
	if (!err)
		err = expect(m, ZCR_HO_READY, deadline, pid, why, size);
	free(m);
	return err;
}

int zcr_upgrade_run(const int *fds, unsigned n, char *why, size_t size)
{
	struct timeval tv = {5, 0};
	char buf[64], **env;
	int sv[2], err;
	pid_t pid;

	why[0] = '\0';
	if (!self_path[0]) {
		snprintf(why, size, "the binary's path is unknown");
		return -ENOENT;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		err = -errno;
		snprintf(why, size, "socketpair: %s", strerror(-err));
		return err;
	}
	env = child_env(sv[1], buf, sizeof(buf));
	pid = env ? spawn(env, sv[1]) : -ENOMEM;
	free(env);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		snprintf(why, size, "cannot start %s: %s", self_path,
		         strerror(-pid));
		return pid;
	}
	ho_sock = sv[0];
	b_reaped = 0;
	setsockopt(ho_sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	zcr_log(ZC_LOG_INFO, "upgrade: started %s as pid %d", self_path,
	        (int)pid);
	err = handover(pid, fds, n, why, size);
	if (err && !b_reaped) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (err) {
		close(ho_sock);
		ho_sock = -1;
		return err;
	}
	return pid;
}

void zcr_upgrade_commit(void)
{
	if (ho_sock < 0)
		return;
	zcr_ho_send(ho_sock, ZCR_HO_DONE, 0, NULL, 0, NULL, 0);
	close(ho_sock);
	ho_sock = -1;
}

/*
 * tharness.c - a zc_loop on its own thread, relays started on it, and the
 * daemon started as a child process (see tnet.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "tnet.h"

/* ------------------------------------------------------------------ */
/* Loop thread                                                          */

static void log_stderr(void *arg, int level, const char *msg)
{
	fprintf(stderr, "# zc<%d>: %s\n", level, msg);
}

/* Env T_LOG=err|warn|info|debug: the library's log goes to stderr. */
static void log_from_env(struct zc_loop_opts *o)
{
	static const struct {
		const char *name;
		int level;
	} lv[] = {{"err", ZC_LOG_ERR},
	          {"warn", ZC_LOG_WARN},
	          {"info", ZC_LOG_INFO},
	          {"debug", ZC_LOG_DEBUG}};
	const char *s = getenv("T_LOG");
	size_t i;

	for (i = 0; s && i < sizeof(lv) / sizeof(lv[0]); i++) {
		if (!strcmp(s, lv[i].name)) {
			o->log = log_stderr;
			o->log_arg = NULL;
			o->log_level = lv[i].level;
		}
	}
}

static void *loop_main(void *arg)
{
	struct t_loop *l = arg;
	struct zc_loop *loop = NULL;
	int err;

	err = zc_loop_new(&loop, &l->opts);
	pthread_mutex_lock(&l->mu);
	l->loop = err ? NULL : loop;
	l->err = err;
	l->state = 1;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (err)
		return NULL;

	err = zc_loop_run(loop);
	if (err)
		fprintf(stderr, "zc_loop_run: %s\n", zc_strerror(err));
	/* Other threads may still post to the loop until t_loop_stop()
	 * says they are done: only then can it be freed. */
	pthread_mutex_lock(&l->mu);
	l->err = err;
	while (l->state != 2)
		pthread_cond_wait(&l->cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
	zc_loop_free(loop);
	return NULL;
}

int t_loop_start_opts(struct t_loop *l, const struct zc_loop_opts *opts)
{
	int err;

	memset(l, 0, sizeof(*l));
	if (opts)
		l->opts = *opts;
	else
		zc_loop_opts_init(&l->opts);
	if (!l->opts.log)
		log_from_env(&l->opts);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	err = pthread_create(&l->th, NULL, loop_main, l);
	if (err)
		return -err;
	pthread_mutex_lock(&l->mu);
	while (!l->state)
		pthread_cond_wait(&l->cv, &l->mu);
	err = l->err;
	pthread_mutex_unlock(&l->mu);
	if (err)
		pthread_join(l->th, NULL);
	return err;
}

int t_loop_start(struct t_loop *l, const struct t_ctx *ctx)
{
	struct zc_loop_opts o;

	zc_loop_opts_init(&o);
	o.engine = ctx ? ctx->engine : ZC_ENGINE_AUTO;
	return t_loop_start_opts(l, &o);
}

static void loop_stop_fn(struct zc_loop *loop, void *arg)
{
	zc_loop_stop(loop);
}

int t_loop_stop(struct t_loop *l)
{
	int err;

	if (!l->loop)
		return l->err;
	/* Post before allowing the free: the loop thread may be past
	 * zc_loop_run already (it failed) and only waits for state 2. */
	err = zc_loop_post(l->loop, loop_stop_fn, NULL);
	if (err)
		fprintf(stderr, "zc_loop_post: %s\n", zc_strerror(err));
	pthread_mutex_lock(&l->mu);
	l->state = 2;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->th, NULL);
	l->loop = NULL;
	return l->err;
}

struct call {
	zc_post_fn *fn;
	void *arg;
	int done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void call_fn(struct zc_loop *loop, void *arg)
{
	struct call *c = arg;

	c->fn(loop, c->arg);
	pthread_mutex_lock(&c->mu);
	c->done = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

int t_loop_call(struct t_loop *l, zc_post_fn *fn, void *arg)
{
	struct call c = {fn, arg, 0, PTHREAD_MUTEX_INITIALIZER,
	                 PTHREAD_COND_INITIALIZER};

	T_TRY(zc_loop_post(l->loop, call_fn, &c));
	/* No timeout: c lives on this stack until the loop ran call_fn. A
	 * hung loop is caught by the runner's timeout. */
	pthread_mutex_lock(&c.mu);
	while (!c.done)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);
	return 0;
}

static void stats_fn(struct zc_loop *loop, void *arg)
{
	zc_loop_get_stats(loop, arg);
}

int t_loop_stats(struct t_loop *l, struct zc_loop_stats *st)
{
	memset(st, 0, sizeof(*st));
	return t_loop_call(l, stats_fn, st);
}

/* ------------------------------------------------------------------ */
/* Relays                                                               */

void t_done_init(struct t_done *d)
{
	pthread_condattr_t ca;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
}

void t_done_cb(void *arg, const struct zc_relay_stats *st)
{
	struct t_done *d = arg;

	pthread_mutex_lock(&d->mu);
	d->st = *st;
	d->relay = NULL;
	d->calls++;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

struct start {
	int fd_a, fd_b;
	const struct zc_relay_opts *opts;
	struct t_done *d;
};

static void start_fn(struct zc_loop *loop, void *arg)
{
	struct start *s = arg;
	struct zc_relay *r = NULL;
	int err;

	err = zc_relay_start(&r, loop, s->fd_a, s->fd_b, s->opts, t_done_cb,
	                     s->d);
	pthread_mutex_lock(&s->d->mu);
	s->d->start_err = err;
	/* done may in principle have run inside zc_relay_start. */
	s->d->relay = err || s->d->calls ? NULL : r;
	pthread_mutex_unlock(&s->d->mu);
}

int t_relay_run_opts(struct t_loop *l, int fd_a, int fd_b,
                     const struct zc_relay_opts *opts, struct t_done *done)
{
	struct start s = {fd_a, fd_b, opts, done};
	int err;

	t_done_init(done);
	err = t_loop_call(l, start_fn, &s);
	return err ? err : done->start_err;
}

int t_relay_run(struct t_loop *l, int fd_a, int fd_b, int mover,
                unsigned idle_ms, struct t_done *done)
{
	struct zc_relay_opts o;

	zc_relay_opts_init(&o);
	o.mover = mover;
	o.idle_timeout_ms = idle_ms;
	return t_relay_run_opts(l, fd_a, fd_b, &o, done);
}

int t_done_wait(struct t_done *d, int timeout_ms)
{
	struct timespec ts;
	uint64_t ns;
	int err = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ns = (uint64_t)ts.tv_nsec +
	     (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	pthread_mutex_lock(&d->mu);
	while (!d->calls && !err) {
		if (timeout_ms < 0)
			pthread_cond_wait(&d->cv, &d->mu);
		else
			err = pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	err = d->calls ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&d->mu);
	return err;
}

struct relay_op {
	struct t_done *d;
	struct zc_relay_stats *st; /* NULL: close */
	int err;
};

/* d->relay is only read and cleared on the loop thread, so no lock. */
static void relay_op_fn(struct zc_loop *loop, void *arg)
{
	struct relay_op *op = arg;

	if (!op->d->relay) {
		op->err = -ESRCH;
		if (op->st)
			*op->st = op->d->st;
	} else if (op->st) {
		zc_relay_get_stats(op->d->relay, op->st);
	} else {
		zc_relay_close(op->d->relay);
	}
}

int t_relay_close(struct t_loop *l, struct t_done *d)
{
	struct relay_op op = {d, NULL, 0};
	int err = t_loop_call(l, relay_op_fn, &op);

	return err ? err : op.err;
}

int t_relay_stats(struct t_loop *l, struct t_done *d, struct zc_relay_stats *st)
{
	struct relay_op op = {d, st, 0};
	int err = t_loop_call(l, relay_op_fn, &op);

	return err ? err : op.err;
}

/* ------------------------------------------------------------------ */
/* Daemon                                                               */

const char *t_daemon_path(void)
{
	const char *p = getenv("ZC_DAEMON");

	return p && *p ? p : NULL;
}

/* What the child needs besides argv, prepared before the fork. */
struct dexec {
	char **envp;   /* NULL: the test's environment */
	int lfd;       /* > 2: becomes fd 3 (socket activation) */
	char *pidvar;  /* "LISTEN_PID=" and room for the pid; or NULL */
	size_t pidoff; /* where the pid goes in pidvar */
};

/* Writes the decimal pid into s (async-signal-safe). */
static void put_pid(char *s, pid_t pid)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid);
	while (n)
		*s++ = tmp[--n];
	*s = '\0';
}

/* In the child: x->lfd becomes fd 3, inherited across exec, and
 * LISTEN_PID names us. Returns 0 or -1 (errno set). */
static int pass_listen_fd(const struct dexec *x, int *errfd)
{
	int fd;

	if (*errfd == 3) {
		fd = fcntl(*errfd, F_DUPFD_CLOEXEC, 4);
		if (fd == -1)
			return -1;
		*errfd = fd;
	}
	if (x->lfd != 3 && dup2(x->lfd, 3) == -1)
		return -1;
	if (fcntl(3, F_SETFD, 0) == -1)
		return -1;
	if (x->pidvar)
		put_pid(x->pidvar + x->pidoff, getpid());
	return 0;
}

/* In the forked child: only async-signal-safe calls until exec. */
static void daemon_exec(const char *path, const char *const argv[], int logfd,
                        int errfd, const struct dexec *x)
{
	const char *args[64];
	int null, fd, err, keep = x->lfd > 2 ? 3 : -1;
	sigset_t none;
	size_t i;

	args[0] = path;
	for (i = 0; argv && argv[i] && i < 62; i++)
		args[i + 1] = argv[i];
	args[i + 1] = NULL;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	null = open("/dev/null", O_RDONLY);
	if (null == -1 || dup2(null, 0) == -1 || dup2(logfd, 1) == -1 ||
	    dup2(logfd, 2) == -1)
		goto fail;
	if (keep == 3 && pass_listen_fd(x, &errfd) == -1)
		goto fail;
	/* Whatever the test left open without O_CLOEXEC is not the
	 * daemon's. */
	for (fd = 3; fd < 1024; fd++)
		if (fd != errfd && fd != keep)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(path, (char *const *)(uintptr_t)args,
	       x->envp ? x->envp : environ);
fail:
	err = errno;
	if (write(errfd, &err, sizeof(err)) < 0) {
		/* nothing more to do */
	}
	_exit(127);
}

/* Does the "NAME=value" entry e set the variable of the entry (or
 * "NAME=" prefix) v? */
static int env_same(const char *e, const char *v)
{
	size_t n = strcspn(v, "=");

	return strncmp(e, v, n) == 0 && e[n] == '=';
}

static int env_set_by(const char *e, const char *const *env)
{
	for (; env && *env; env++)
		if (env_same(e, *env))
			return 1;
	return 0;
}

/*
 * The child's environment: the test's, without what o sets, then
 * LISTEN_FDS and LISTEN_PID (filled in by the child) for a passed
 * socket, then o->env. The strings are borrowed; free x->envp.
 */
static int dexec_prepare(struct dexec *x, const struct t_dstart *o,
                         char *pidvar)
{
	static char fds1[] = "LISTEN_FDS=1";
	size_t n = 0, k = 0, i;

	memset(x, 0, sizeof(*x));
	x->lfd = o ? o->listen_fd : 0;
	if (!o || (!o->env && x->lfd <= 2))
		return 0;
	while (environ[n])
		n++;
	for (i = 0; o->env && o->env[i]; i++)
		n++;
	x->envp = calloc(n + 3, sizeof(*x->envp));
	if (!x->envp)
		return -ENOMEM;
	for (i = 0; environ[i]; i++)
		if (!env_set_by(environ[i], o->env) &&
		    !(x->lfd > 2 && (env_same(environ[i], "LISTEN_PID") ||
		                     env_same(environ[i], "LISTEN_FDS"))))
			x->envp[k++] = environ[i];
	if (x->lfd > 2 && !env_set_by(fds1, o->env))
		x->envp[k++] = fds1;
	if (x->lfd > 2 && !env_set_by("LISTEN_PID=", o->env)) {
		strcpy(pidvar, "LISTEN_PID=");
		x->pidvar = pidvar;
		x->pidoff = strlen(pidvar);
		x->envp[k++] = pidvar;
	}
	for (i = 0; o->env && o->env[i]; i++)
		x->envp[k++] = (char *)(uintptr_t)o->env[i];
	return 0;
}

int t_daemon_start(struct t_daemon *d, const char *const argv[])
{
	return t_daemon_start_opts(d, argv, NULL);
}

int t_daemon_start_opts(struct t_daemon *d, const char *const argv[],
                        const struct t_dstart *o)
{
	static unsigned seq;
	const char *path = t_daemon_path();
	char pidvar[40];
	struct dexec x;
	int logfd, p[2], err = 0;
	ssize_t n;

	memset(d, 0, sizeof(*d));
	if (!path)
		return -ENOENT;
	T_TRY(dexec_prepare(&x, o, pidvar));
	snprintf(d->log_path, sizeof(d->log_path), "%s/zcrelay.%u.log",
	         t_tmpdir(), seq++);
	logfd = open(d->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	             0600);
	if (logfd == -1) {
		err = -errno;
		free(x.envp);
		return err;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		err = -errno;
		close(logfd);
		free(x.envp);
		return err;
	}
	d->pid = fork();
	if (d->pid == 0)
		daemon_exec(path, argv, logfd, p[1], &x);
	if (d->pid == -1)
		err = -errno;
	free(x.envp);
	close(logfd);
	close(p[1]);
	if (!err) {
		/* EOF: exec succeeded and closed the pipe. */
		do {
			n = read(p[0], &err, sizeof(err));
		} while (n == -1 && errno == EINTR);
		if (n == sizeof(err)) {
			waitpid(d->pid, NULL, 0);
			err = -err;
		} else {
			err = 0;
		}
	}
	close(p[0]);
	if (err)
		d->pid = 0;
	return err;
}

static int decode_status(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int t_daemon_wait(struct t_daemon *d, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int status;
	pid_t r;

	if (!d->pid)
		return d->status;
	for (;;) {
		r = waitpid(d->pid, &status, WNOHANG);
		if (r == d->pid) {
			d->pid = 0;
			d->status = decode_status(status);
			return d->status;
		}
		if (r == -1 && errno != EINTR)
			return -errno;
		if (timeout_ms >= 0 && t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(5);
	}
}

int t_daemon_stop(struct t_daemon *d, int sig)
{
	int r;

	if (!d->pid)
		return d->status;
	if (sig)
		kill(d->pid, sig);
	r = t_daemon_wait(d, 10000);
	if (r != -ETIMEDOUT)
		return r;
	fprintf(stderr, "daemon %d did not exit in 10 s; killed\n",
	        (int)d->pid);
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
	d->status = 128 + SIGKILL;
	return -ETIMEDOUT;
}

char *t_daemon_log(const struct t_daemon *d)
{
	char *buf = NULL, *p;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	fd = open(d->log_path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			p = realloc(buf, cap);
			if (!p)
				break;
			buf = p;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* 1 if a /proc/net/tcp{,6} line shows a listener on port. */
static int proc_tcp_listens(const char *file, unsigned port)
{
	char line[512];
	unsigned lport, st;
	int found = 0;
	FILE *f;

	f = fopen(file, "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		/* "sl: LOCALHEX:PORT REMHEX:PORT ST ..." */
		if (sscanf(line, "%*s %*[0-9A-Fa-f]:%x %*s %x", &lport, &st) ==
		    2)
			found = lport == port && st == 0x0A; /* TCP_LISTEN */
	}
	fclose(f);
	return found;
}

/* 1 if /proc/net/unix shows a listener bound to name ("@x" abstract). */
static int proc_unix_listens(const char *name)
{
	char line[512], path[256];
	unsigned long flags;
	int found = 0;
	FILE *f;

	f = fopen("/proc/net/unix", "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		/* "Num: RefCount Protocol Flags Type St Inode Path" */
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %255s", &flags,
		           path) == 2)
			found = (flags & 0x10000) && !strcmp(path, name);
	}
	fclose(f);
	return found;
}

static int addr_listens(const struct zc_addr *a)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
	char name[sizeof(sun->sun_path) + 2];
	size_t n, i;

	switch (a->ss.ss_family) {
	case AF_INET:
		return proc_tcp_listens(
		               "/proc/net/tcp",
		               ntohs(((const struct sockaddr_in *)&a->ss)
		                             ->sin_port)) ||
		       proc_tcp_listens(
		               "/proc/net/tcp6",
		               ntohs(((const struct sockaddr_in *)&a->ss)
		                             ->sin_port));
	case AF_INET6:
		return proc_tcp_listens(
		        "/proc/net/tcp6",
		        ntohs(((const struct sockaddr_in6 *)&a->ss)
		                      ->sin6_port));
	case AF_UNIX:
		n = a->len > offsetof(struct sockaddr_un, sun_path)
		            ? a->len - offsetof(struct sockaddr_un, sun_path)
		            : 0;
		if (n > sizeof(sun->sun_path))
			n = sizeof(sun->sun_path);
		if (n && !sun->sun_path[0]) {
			/* abstract: shown with '@' for each NUL */
			memcpy(name, sun->sun_path, n);
			name[n] = '\0';
			for (i = 0; i < n; i++)
				if (!name[i])
					name[i] = '@';
		} else {
			snprintf(name, sizeof(name), "%.*s", (int)n,
			         sun->sun_path);
		}
		return proc_unix_listens(name);
	}
	return 0;
}

int t_wait_listen(const struct zc_addr *a, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;

	while (!addr_listens(a)) {
		if (t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(10);
	}
	return 0;
}

int t_wait_port(const struct zc_addr *a, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	int fd;

	while ((fd = t_connect(a)) < 0) {
		if (t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(10);
	}
	close(fd);
	return 0;
}

int t_daemon_ready(struct t_daemon *d, const struct zc_addr *a, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;

	while (!addr_listens(a)) {
		if (t_daemon_wait(d, 0) >= 0) {
			fprintf(stderr, "daemon exited with status %d\n",
			        d->status);
			return -ECHILD;
		}
		if (t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(10);
	}
	return 0;
}

int t_daemon_start_env(struct t_daemon *d, const char *const argv[],
                       const char *const env[])
{
	struct t_dstart o = {.env = env};

	return t_daemon_start_opts(d, argv, &o);
}

/*
 * tfault.c - the daemon under the zcfault shim (see tfault.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "tfault.h"

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifndef T_ASAN
#define T_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#else
#define T_TSAN 0
#endif

const char *t_fault_skip(void)
{
	const char *so = getenv("ZC_FAULT_SO");

	if (!so || !*so)
		return T_FAULT_NO_SO;
	if (access(so, R_OK))
		return "ZC_FAULT_SO names no readable file";
	/* The daemon of a TSan build is TSan too: its runtime must see
	 * every libc call first and does not take a preloaded library
	 * before it. ASan does with verify_asan_link_order=0 (see below). */
	if (T_TSAN)
		return "TSan build: the shim cannot be preloaded before the "
		       "TSan runtime";
	return NULL;
}

const char *t_fault_io_skip(const struct t_ctx *ctx)
{
	if (t_fault_skip())
		return t_fault_skip();
	if (ctx->mover == ZC_MOVER_RING)
		return "ring mover: bytes move by io_uring requests, which the "
		       "libc shim cannot fail";
	if (ctx->mover == ZC_MOVER_URING_SPLICE)
		return "uring-splice mover: bytes move by io_uring requests, "
		       "which the libc shim cannot fail";
	if (ctx->mover == ZC_MOVER_AUTO && ctx->engine == ZC_ENGINE_URING)
		return "auto on io_uring: small exchanges move by io_uring "
		       "requests, which the libc shim cannot fail; its bulk "
		       "splices are the uring:splice variant's path";
	return NULL;
}

const char *t_fault_pipe_skip(const struct t_ctx *ctx)
{
	if (ctx->mover == ZC_MOVER_URING_SPLICE)
		return t_fault_skip();
	return t_fault_io_skip(ctx);
}

/* Fds (and among them pipes) of process pid, or -errno. */
static int proc_fds(pid_t pid, int *pipes)
{
	char dir[64], path[64 + 256], target[128];
	struct dirent *de;
	int n = 0;
	ssize_t len;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -errno;
	*pipes = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			*pipes += !strncmp(target, "pipe:", 5);
		}
	}
	closedir(d);
	return n;
}

/* Logs the /proc/<pid>/net/tcp{,6} line of socket inode ino, if any. */
static void log_tcp_inode(pid_t pid, const char *ino)
{
	static const char *const tabs[] = {"tcp", "tcp6"};
	char path[64], line[512], *tok[12];
	unsigned i;
	FILE *fp;
	int n;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid,
		         tabs[i]);
		fp = fopen(path, "re");
		if (!fp)
			continue;
		while (fgets(line, sizeof(line), fp)) {
			char copy[512];

			memcpy(copy, line, sizeof(copy));
			n = 0;
			for (char *t = strtok(copy, " \n"); t && n < 12;
			     t = strtok(NULL, " \n"))
				tok[n++] = t;
			/* sl local rem st queues tr retr uid timeout inode */
			if (n >= 10 && !strcmp(tok[9], ino))
				t_log("    %s local %s remote %s state %s",
				      tabs[i], tok[1], tok[2], tok[3]);
		}
		fclose(fp);
	}
}

/* Logs every fd of pid and what it is (TCP sockets with their ends). */
static void proc_fds_log(pid_t pid)
{
	char dir[64], path[64 + 256], target[128];
	struct dirent *de;
	ssize_t len;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = '\0';
		t_log("  fd %s -> %s", de->d_name, target);
		if (!strncmp(target, "socket:[", 8)) {
			target[strcspn(target, "]")] = '\0';
			log_tcp_inode(pid, target + 8);
		}
	}
	closedir(d);
}

void t_fault_env(struct t_fault *f, const char *spec, const char *env[8])
{
	const char *so = getenv("ZC_FAULT_SO");
	const char *asan = getenv("ASAN_OPTIONS");
	int n = 0, i;

	snprintf(f->ctl, sizeof(f->ctl), "%s/zcf.ctl", t_tmpdir());
	snprintf(f->stats, sizeof(f->stats), "%s/zcf.stats", t_tmpdir());
	unlink(f->ctl);
	unlink(f->stats);
	snprintf(f->env[0], sizeof(f->env[0]), "LD_PRELOAD=%s", so);
	snprintf(f->env[1], sizeof(f->env[1]), "ZCF=%s", spec);
	snprintf(f->env[2], sizeof(f->env[2]), "ZCF_FILE=%s", f->ctl);
	snprintf(f->env[3], sizeof(f->env[3]), "ZCF_STATS=%s", f->stats);
	for (i = 0; i < 4; i++)
		env[n++] = f->env[i];
	/* The shim sees system calls only: on io_uring, listeners and
	 * connects then use accept4() and connect(), not io_uring's accept
	 * and connect requests (which the other tests cover). */
	env[n++] = "ZC_URING_NET=poll";
	if (T_ASAN) {
		/* A preloaded library comes before the ASan runtime in the
		 * search order, which ASan refuses unless told this. Our
		 * wrappers then call ASan's interceptors, then libc. */
		snprintf(f->env[4], sizeof(f->env[4]),
		         "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
		         asan ? asan : "", asan && *asan ? ":" : "");
		env[n++] = f->env[4];
	}
	env[n] = NULL;
}

int t_fault_open(struct t_fault *f, const struct t_ctx *ctx, const char *skip,
                 struct t_dargs *a)
{
	f->ulfd = -1;
	T_SKIP_IF(skip, "%s", skip);
	f->ulfd = t_listen(AF_INET, &f->ua);
	ASSERT_OK(f->ulfd);
	ASSERT_OK(t_free_addr(AF_INET, &f->la));
	t_dargs_init(a, ctx, &f->la, &f->ua);
	return T_PASS;
}

int t_fault_start(struct t_fault *f, const struct t_ctx *ctx, const char *skip,
                  const char *spec)
{
	struct t_dargs a;

	T_TRY(t_fault_open(f, ctx, skip, &a));
	return t_fault_up(f, &a, spec);
}

int t_fault_end(struct t_fault *f, const struct t_ctx *ctx, const char *what)
{
	if (f->ulfd >= 0)
		close(f->ulfd);
	f->ulfd = -1;
	T_TRY(t_fault_settled(f));
	return t_fault_down(f, ctx, what);
}

int t_fault_up(struct t_fault *f, struct t_dargs *a, const char *spec)
{
	const char *env[8];
	int fds, pipes, last = -1, i;

	ASSERT_OK(t_free_addr(AF_INET, &f->admin));
	t_dargs_add(a, "--workers");
	t_dargs_add(a, "1");
	t_dargs_addr(a, "--admin", &f->admin);
	t_fault_env(f, spec, env);
	T_TRY(t_daemon_up_env(&f->d, a, &f->la, env));
	ASSERT_OK(t_wait_listen(&f->admin, 5000));
	/* Stable for 100 ms: everything it opens at startup is open. */
	for (i = 0; i < 100; i++) {
		fds = proc_fds(f->d.pid, &pipes);
		ASSERT_OK(fds);
		if (fds == last)
			break;
		last = fds;
		t_sleep_ms(100);
	}
	f->base_fds = fds;
	f->base_pipes = pipes;
	return T_PASS;
}

int t_fault_set(struct t_fault *f, const char *spec)
{
	char tmp[300];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.new", f->ctl);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_OK(fd);
	ASSERT_OK(t_write_all(fd, spec, strlen(spec)));
	close(fd);
	/* A new inode: the shim sees the change even within one mtime tick. */
	ASSERT_OK(rename(tmp, f->ctl));
	t_sleep_ms(30);
	return T_PASS;
}

long t_fault_count(const struct t_fault *f, const char *label, long *calls)
{
	char line[160], name[96];
	long inj, c, found = -1;
	FILE *fp = fopen(f->stats, "re");

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%95s %ld %ld", name, &inj, &c) == 3 &&
		    !strcmp(name, label)) {
			found = inj;
			if (calls)
				*calls = c;
		}
	}
	fclose(fp);
	return found;
}

long t_fault_wait(const struct t_fault *f, const char *label, long n,
                  int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	long got;

	while ((got = t_fault_count(f, label, NULL)) < n && t_now_ms() < end)
		t_sleep_ms(10);
	return got;
}

/* GET /metrics into a malloc'd string, or NULL. */
static char *metrics_get(const struct t_fault *f)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: t\r\n\r\n";
	size_t cap = 1 << 20;
	char *buf;
	ssize_t n;
	int fd;

	fd = t_connect(&f->admin);
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (buf && !t_write_all(fd, req, sizeof(req) - 1)) {
		/* Our FIN at once: the admin's linger ends without waiting. */
		shutdown(fd, SHUT_WR);
		n = t_read_full(fd, buf, cap - 1, 5000);
		if (n > 0) {
			buf[n] = '\0';
			close(fd);
			return buf;
		}
	}
	free(buf);
	close(fd);
	return NULL;
}

long long t_fault_metric(const struct t_fault *f, const char *name)
{
	char *m = metrics_get(f), *line, *save = NULL, *v;
	size_t len = strlen(name);
	long long sum = -1;

	if (!m)
		return -1;
	for (line = strtok_r(m, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, name, len) ||
		    (line[len] != '{' && line[len] != ' '))
			continue;
		v = strrchr(line, ' ');
		if (!v)
			continue;
		sum = (sum < 0 ? 0 : sum) + strtoll(v + 1, NULL, 10);
	}
	free(m);
	return sum;
}

long long t_fault_metric_wait(const struct t_fault *f, const char *name,
                              long long min)
{
	uint64_t end = t_now_ms() + 2000;
	long long v;

	while ((v = t_fault_metric(f, name)) < min && t_now_ms() < end)
		t_sleep_ms(50);
	return v;
}

int t_fault_settled(struct t_fault *f)
{
	uint64_t end = t_now_ms() + 10000;
	long long sess = -1, used = -1, cached = -1;
	int fds = -1, pipes = -1, i;

	for (;;) {
		sess = t_fault_metric(f, "zcrelay_worker_sessions");
		used = t_fault_metric(f, "zcrelay_worker_pipes_in_use");
		cached = t_fault_metric(f, "zcrelay_worker_pipes_free");
		/* The admin thread closes each metrics connection once it has
		 * read our EOF: on a loaded machine the last one may still be
		 * open here. Count again for a while without asking anew. */
		for (i = 0; i < 20; i++) {
			fds = proc_fds(f->d.pid, &pipes);
			if (sess == 0 && used == 0 && cached >= 0 &&
			    fds - 2 * cached == f->base_fds &&
			    pipes - 2 * cached == f->base_pipes)
				return T_PASS;
			if (sess != 0 || used != 0 || cached < 0)
				break;
			t_sleep_ms(10);
		}
		if (t_now_ms() >= end)
			break;
		t_sleep_ms(50);
	}
	proc_fds_log(f->d.pid);
	return t_fail(__FILE__, __LINE__,
	              "daemon fds not back: %d fds (%d pipes), %lld pipes "
	              "cached, %lld in use, %lld sessions; at start %d fds "
	              "(%d pipes)",
	              fds, pipes, cached, used, sess, f->base_fds,
	              f->base_pipes);
}

long t_fault_cpu_ms(const struct t_fault *f)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)f->d.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* After "(comm)": state is field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2,
	                 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	                 "%lu %lu",
	                 &ut, &st) != 2)
		return -1;
	return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

int t_fault_down(struct t_fault *f, const struct t_ctx *ctx, const char *what)
{
	const char *report = getenv("ZC_FAULT_REPORT");
	char line[160];
	FILE *in, *out = NULL;

	ASSERT_EQ(t_daemon_stop(&f->d, SIGTERM), 0);
	in = fopen(f->stats, "re");
	if (report && *report)
		out = fopen(report, "ae");
	while (in && fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = '\0';
		t_log("zcfault %s: %s", what, line);
		if (out)
			fprintf(out, "%s [%s] %s\n", what,
			        ctx && ctx->variant ? ctx->variant : "-", line);
	}
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	return T_PASS;
}

int t_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

int t_pair2_open(struct t_fault *f, int ulfd, struct t_pair2 *p)
{
	p->c = t_connect(&f->la);
	ASSERT_OK(p->c);
	p->u = t_accept_ms(ulfd, 5000);
	ASSERT_OK(p->u);
	return T_PASS;
}

void t_pair2_close(struct t_pair2 *p)
{
	close(p->c);
	close(p->u);
}

/* One direction's result against the stream it should be. */
static int xfer_check(const struct t_xfer *tx, const struct t_xfer *rx,
                      uint64_t n, uint64_t seed)
{
	unsigned char want[T_SHA256_LEN];

	t_expect_digest(seed, n, want);
	ASSERT_OK(tx->err);
	ASSERT_OK(rx->err);
	ASSERT_EQ(tx->bytes, n);
	ASSERT_EQ(rx->bytes, n);
	ASSERT_TRUE(rx->eof);
	ASSERT_MEMEQ(rx->digest, want, T_SHA256_LEN);
	return T_PASS;
}

int t_pair2_start(struct t_pair2 *p, struct t_xfer4 *x, uint64_t up,
                  uint64_t down, uint64_t seed)
{
	x->up = up;
	x->down = down;
	x->seed = seed;
	ASSERT_OK(t_receiver_start(&x->rx_up, p->u, 0));
	ASSERT_OK(t_receiver_start(&x->rx_down, p->c, 0));
	ASSERT_OK(t_sender_start(&x->tx_up, p->c, up, seed, T_XFER_SHUT_WR));
	ASSERT_OK(t_sender_start(&x->tx_down, p->u, down, seed + 1,
	                         T_XFER_SHUT_WR));
	return T_PASS;
}

int t_pair2_finish(struct t_xfer4 *x, int timeout_ms)
{
	int rc;

	ASSERT_OK(t_xfer_join_ms(&x->tx_up, timeout_ms));
	ASSERT_OK(t_xfer_join_ms(&x->tx_down, timeout_ms));
	ASSERT_OK(t_xfer_join_ms(&x->rx_up, timeout_ms));
	ASSERT_OK(t_xfer_join_ms(&x->rx_down, timeout_ms));
	rc = xfer_check(&x->tx_up, &x->rx_up, x->up, x->seed);
	return rc ? rc
	          : xfer_check(&x->tx_down, &x->rx_down, x->down, x->seed + 1);
}

int t_pair2_xfer(struct t_pair2 *p, uint64_t up, uint64_t down, uint64_t seed,
                 int timeout_ms)
{
	struct t_xfer4 x;
	int rc = t_pair2_start(p, &x, up, down, seed);

	return rc ? rc : t_pair2_finish(&x, timeout_ms);
}

int t_fault_session(const struct t_fault *f, int port, char *line, size_t size)
{
	uint64_t end = t_now_ms() + 5000;
	char who[64], *log, *p, *save;

	/* The tests' clients are on 127.0.0.1. */
	snprintf(who, sizeof(who), " client=127.0.0.1:%d ", port);
	for (;;) {
		log = t_daemon_log(&f->d);
		save = NULL;
		for (p = log ? strtok_r(log, "\n", &save) : NULL; p;
		     p = strtok_r(NULL, "\n", &save)) {
			if (strstr(p, " session ") && strstr(p, who)) {
				snprintf(line, size, "%s", p);
				free(log);
				return T_PASS;
			}
		}
		free(log);
		if (t_now_ms() >= end)
			return t_fail(__FILE__, __LINE__,
			              "no session line with \"%s\"", who);
		t_sleep_ms(10);
	}
}

int ntohs_port(const struct zc_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

int errno_of(const char *name)
{
	static const struct {
		const char *name;
		int err;
	} tab[] = {
	        {"EMFILE", EMFILE},         {"ENFILE", ENFILE},
	        {"EINVAL", EINVAL},         {"ENOMEM", ENOMEM},
	        {"EPERM", EPERM},           {"EPIPE", EPIPE},
	        {"ECONNRESET", ECONNRESET}, {"ECONNREFUSED", ECONNREFUSED},
	        {"ETIMEDOUT", ETIMEDOUT},   {"EAGAIN", EAGAIN},
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(tab[i].name, name))
			return tab[i].err;
	return 0;
}

int t_fault_sessions(struct t_fault *f, int n, uint64_t up, uint64_t down,
                     uint64_t seed, char line[][T_FAULT_LINE])
{
	struct t_pair2 p[T_FAULT_MAXSESS];
	struct t_xfer4 x[T_FAULT_MAXSESS];
	int i, port[T_FAULT_MAXSESS];
	char counts[64];

	ASSERT_LE(n, T_FAULT_MAXSESS);
	for (i = 0; i < n; i++) {
		T_TRY(t_pair2_open(f, f->ulfd, &p[i]));
		port[i] = t_local_port(p[i].c);
	}
	for (i = 0; i < n; i++)
		T_TRY(t_pair2_start(&p[i], &x[i], up, down, seed + 2 * i));
	snprintf(counts, sizeof(counts), " up=%llu down=%llu ",
	         (unsigned long long)up, (unsigned long long)down);
	for (i = 0; i < n; i++) {
		T_TRY(t_pair2_finish(&x[i], 60000));
		t_pair2_close(&p[i]);
		T_TRY(t_fault_session(f, port[i], line[i], T_FAULT_LINE));
		ASSERT_HAS(line[i], counts);
		ASSERT_HAS(line[i], " end=eof");
	}
	return T_PASS;
}

/*
 * soak.c - zcsoak: the daemon under a long, churning, mixed load, once
 * per data path, with every byte checked.
 *
 * For each engine and mover (epoll+splice, epoll+copy, uring+splice,
 * uring+copy, uring+auto, uring+ring, uring+uring-splice; io_uring ones
 * are skipped where the kernel refuses io_uring) zcsoak starts
 * $ZC_DAEMON as a process of its own with a config file, one route in
 * front of upstream listeners that zcsoak itself holds, and keeps --conns
 * sessions open through it (default 9000: 18000 sockets here, as many
 * in the daemon) for --secs seconds.
 * Sessions keep ending and new ones start: each client connects, stays
 * idle for a random time, then sends a 32-byte header and its bytes
 * while the upstream sends its own back; each side shuts down its write
 * side when done and closes when it has seen the other's EOF. Sizes are
 * drawn per direction from 0 B, 1 KiB, 64 KiB, 1 MiB and 16 MiB. Every
 * byte is compared with the stream the other end generated (a
 * position-addressable splitmix64 stream, seeded per session and
 * direction), so a byte lost, added, reordered or changed is counted.
 *
 * Once the time is up no session starts, the clients still idle send
 * at once and the running sessions finish (within --drain seconds);
 * then the daemon must be back where it started: its sockets closed, no
 * more pipe ends than its pools may cache, RSS within a small margin of
 * the start, and no steady growth of RSS during the load (seconds of a
 * pipe shortage left out, see STEADY_MIN_N). Its /metrics
 * must agree with what the clients sent and received. Then it must exit
 * 0 on SIGTERM.
 *
 * With --upgrades N the daemon is upgraded (SIGUSR2) N times during the
 * load, evenly spaced: every live session moves to the new process,
 * which must take over within 10 s, and the old one must exit 0; every
 * byte is still checked. Each process counts only what moved through
 * it, so the metrics check is then reduced to "no session active at the
 * end", and the steady-growth check (whose samples span processes) is
 * left out; the end checks hold for the last process.
 *
 * The sessions are driven by load.c: --threads epoll loops (default 2),
 * each with its own clients and its own upstream listeners; the daemon
 * runs the route with 2 workers and max-pipes 400, so that its 18000
 * sockets and its pipes fit in the 20000 fds a process may have here.
 * This file starts the daemon, samples its RSS and fds every second,
 * and judges each data path. If it may (root), zcsoak runs in a network namespace of its
 * own (unshare(2)), with only a loopback device: the load, its TIME_WAIT
 * sockets and its ports stay out of the machine's namespace. Otherwise
 * it uses the machine's loopback. It never sends a packet elsewhere.
 *
 * Exit status: 0 when every data path passed (or was skipped), 1 when one
 * failed, 2 on bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/io_uring.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "soak.h"
#include "tproc.h"

/*
 * The daemon's RSS once the load is over may exceed the start by
 * RSS_END_KB: glibc keeps much of what the sessions' allocations freed
 * (about 13 MiB after 9000 sessions at once, on every data path). It
 * may grow by RSS_GROW_KB over the steady part of the load (the trend
 * of the samples, from a quarter of the load to its end): a leak of a
 * hundred bytes per session exceeds that within two minutes.
 */
#define RSS_END_KB  (32 * 1024)
#define RSS_GROW_KB (8 * 1024)
/*
 * A pipe shortage sends drains through 64 KiB copy buffers, held until
 * their bytes are sent: a burst of them lifts RSS by tens of MiB for a
 * few seconds (the uring-splice mover, whose pipes wait in io-wq, has
 * them when many sessions send at once). The trend leaves out those
 * seconds and the one after, and is judged on at least STEADY_MIN_N
 * samples; the end check above still holds for every run.
 */
#define STEADY_MIN_N 4
/* The buffer ring of the ring mover (and of auto on io_uring) stays
 * registered once touched: 256 x 64 KiB per worker loop, 2 workers. A
 * fixed pool, not growth. */
#define RSS_RING_KB (2 * 256 * 64)

struct soak_opts soak_opt = {
        .secs = 60,
        .conns = 9000,
        .threads = 2,
        .hold_ms = 4000,
        .drain_s = 120,
        .big_permille = 2,
        .seed = 1,
};

/* ------------------------------------------------------------------ */
/* The daemon                                                           */

/* A free TCP port on 127.0.0.1 (bound a moment ago, then closed). */
static unsigned free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1)
		soak_die("free port: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

/* GET /metrics on 127.0.0.1:port into a malloc'd string; NULL if that
 * fails. */
static char *http_metrics(unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!buf || fd == -1 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
		goto fail;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *nb = realloc(buf, cap *= 2);

			if (!nb)
				goto fail;
			buf = nb;
		}
	}
	buf[len] = '\0';
	close(fd);
	if (strncmp(buf, "HTTP/1.0 200", 12) &&
	    strncmp(buf, "HTTP/1.1 200", 12))
		goto fail_nofd;
	return buf;
fail:
	if (fd != -1)
		close(fd);
fail_nofd:
	free(buf);
	return NULL;
}

/* The value of the metric line starting with sample and a space, or -1. */
static long long metric(const char *body, const char *sample)
{
	size_t n = strlen(sample);
	const char *p = body;

	while ((p = strstr(p, sample))) {
		if ((p == body || p[-1] == '\n') && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p += n;
	}
	return -1;
}

/* The sum of every sample of the metric name (one per worker), or -1. */
static long long metric_sum(const char *body, const char *name)
{
	size_t n = strlen(name);
	const char *p = body, *v;
	long long sum = -1;

	for (; (p = strstr(p, name)); p += n) {
		if ((p != body && p[-1] != '\n') ||
		    (p[n] != '{' && p[n] != ' '))
			continue;
		v = p + strcspn(p, " \n");
		if (*v == ' ')
			sum = (sum < 0 ? 0 : sum) + strtoll(v + 1, NULL, 10);
	}
	return sum;
}

/* Starts the daemon on conf, output to log. Returns its pid. */
static pid_t daemon_start(const char *conf, const char *log)
{
	pid_t pid = fork();
	int fd;

	if (pid == -1)
		soak_die("fork: %s", strerror(errno));
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd == -1 || dup2(fd, 1) == -1 || dup2(fd, 2) == -1)
			_exit(127);
		execl(soak_opt.daemon, soak_opt.daemon, "-c", conf,
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Waits at most ms for pid; its status (exit code or 128 + signal), or
 * -1 if it still runs. */
static int daemon_wait(pid_t pid, unsigned ms)
{
	uint64_t end = soak_now_ms() + ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st)
			                     : 128 + WTERMSIG(st);
		if (soak_now_ms() >= end)
			return -1;
		usleep(10000);
	}
}

/* ------------------------------------------------------------------ */
/* One data path                                                        */

struct path {
	const char *name, *engine, *mover;
};

static const struct path paths[] = {
        {"epoll+splice", "epoll", "splice"},
        {"epoll+copy", "epoll", "copy"},
        {"uring+splice", "uring", "splice"},
        {"uring+copy", "uring", "copy"},
        {"uring+auto", "uring", "auto"},
        {"uring+ring", "uring", "ring"},
        {"uring+uring-splice", "uring", "uring-splice"},
};

struct run {
	const struct path *p;
	char dir[64], conf[96], log[96], pidf[96];
	unsigned upgraded; /* upgrades done */
	unsigned port, admin;
	pid_t pid;
	struct sthread *t;
	struct t_proc_mem m0, peak, end;
	double slope_kb_s;   /* RSS growth while the load was steady */
	long long steady_kb; /* RSS growth over that time */
	unsigned steady_n;   /* samples it was judged on */
	unsigned burst_secs; /* steady seconds left out: pipe shortages */
	uint64_t peak_live;
	uint64_t stuck;    /* sessions open after the drain time */
	int socks0, socks; /* the daemon's fds that are not pipes */
	long long m_sess, m_in, m_out, m_act; /* its /metrics at the end */
	int failed;
};

static void sum_counts(const struct run *r, struct scount *s)
{
	unsigned i;
	const uint64_t *src;
	uint64_t *dst = (uint64_t *)s;
	size_t k;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < soak_opt.threads; i++) {
		src = (const uint64_t *)&r->t[i].n;
		for (k = 0; k < sizeof(*s) / sizeof(uint64_t); k++)
			dst[k] += soak_cnt(&src[k]);
	}
}

static void fail(struct run *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("  FAIL %s: ", r->p->name);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	r->failed = 1;
}

/* The upstream listeners and the daemon's config file. */
static void run_setup(struct run *r)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	FILE *f;
	unsigned i, j;
	int fd;

	snprintf(r->dir, sizeof(r->dir), "/tmp/zcsoak.XXXXXX");
	if (!mkdtemp(r->dir))
		soak_die("mkdtemp: %s", strerror(errno));
	snprintf(r->conf, sizeof(r->conf), "%s/zcrelay.conf", r->dir);
	snprintf(r->log, sizeof(r->log), "%s/zcrelay.log", r->dir);
	snprintf(r->pidf, sizeof(r->pidf), "%s/zcrelay.pid", r->dir);
	r->port = free_port();
	r->admin = free_port();
	f = fopen(r->conf, "we");
	if (!f)
		soak_die("%s: %s", r->conf, strerror(errno));
	/* 2 * conns sockets in the daemon, and pipes: leave them room
	 * below the 20000 fds a process may have here. */
	fprintf(f,
	        "workers = 2;\nengine = \"%s\";\nmax-pipes = 400;\n"
	        "admin = \"127.0.0.1:%u\";\npid-file = \"%s\";\n"
	        "log = { level = \"warn\"; sessions = false; };\n"
	        "routes = ( { name = \"soak\"; listen = \"127.0.0.1:%u\";\n"
	        "  mover = \"%s\";\n  upstreams = (",
	        r->p->engine, r->admin, r->pidf, r->port, r->p->mover);
	r->t = calloc(soak_opt.threads, sizeof(*r->t));
	if (!r->t)
		soak_die("out of memory");
	for (i = 0; i < soak_opt.threads; i++) {
		struct sthread *t = &r->t[i];

		t->idx = (int)i;
		t->rng = soak_mix64(soak_opt.seed + i + 1) | 1;
		t->target = soak_opt.conns / soak_opt.threads +
		            (i < soak_opt.conns % soak_opt.threads);
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		if (t->ep == -1)
			soak_die("epoll_create1: %s", strerror(errno));
		t->relay.sin_family = AF_INET;
		t->relay.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		t->relay.sin_port = htons((uint16_t)r->port);
		for (j = 0; j < NLISTEN; j++) {
			struct epoll_event ev = {.events = EPOLLIN};

			a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			a.sin_port = 0;
			fd = socket(AF_INET,
			            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			            0);
			if (fd == -1 ||
			    bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
			    listen(fd, 4096) == -1 ||
			    getsockname(fd, (struct sockaddr *)&a, &len) == -1)
				soak_die("upstream listener: %s",
				         strerror(errno));
			t->lst[j].fd = fd;
			t->lst[j].kind = K_LISTENER;
			ev.data.ptr = &t->lst[j];
			if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) == -1)
				soak_die("epoll_ctl: %s", strerror(errno));
			fprintf(f, "%s\"127.0.0.1:%u\"", i + j ? ", " : " ",
			        ntohs(a.sin_port));
		}
	}
	fprintf(f, " );\n} );\n");
	if (fclose(f))
		soak_die("%s: %s", r->conf, strerror(errno));
}

static void run_cleanup(struct run *r)
{
	unsigned i, j;

	for (i = 0; i < soak_opt.threads; i++) {
		for (j = 0; j < NLISTEN; j++)
			close(r->t[i].lst[j].fd);
		close(r->t[i].ep);
	}
	free(r->t);
	unlink(r->conf);
	unlink(r->log);
	rmdir(r->dir);
}

/* The daemon's pipe shortages so far (drains copied for want of a pipe:
 * each holds a 64 KiB buffer while it lasts), or -1. */
static long long shortages(const struct run *r)
{
	char *body = http_metrics(r->admin);
	long long n;

	if (!body)
		return -1;
	n = metric_sum(body, "zcrelay_worker_pipe_shortages_total");
	free(body);
	return n;
}

/* Prints one line of progress and keeps the peaks. Returns the RSS;
 * *shorts: the daemon's pipe shortages so far (-1: unknown). */
static long sample(struct run *r, unsigned sec, uint64_t *last_bytes,
                   long long *shorts)
{
	struct scount s;
	struct t_proc_mem m;
	uint64_t bytes, live;

	sum_counts(r, &s);
	*shorts = shortages(r);
	if (t_proc_mem(r->pid, &m))
		memset(&m, 0, sizeof(m));
	if (m.rss_kb > r->peak.rss_kb)
		r->peak.rss_kb = m.rss_kb;
	if (m.fds > r->peak.fds)
		r->peak.fds = m.fds;
	if (m.pipes > r->peak.pipes)
		r->peak.pipes = m.pipes;
	live = s.live_clients;
	if (live > r->peak_live)
		r->peak_live = live;
	bytes = s.bytes_up + s.bytes_down;
	printf("  %-12s %4us live %5llu opened %7llu done %7llu failed %llu "
	       "%6.1f MiB/s | daemon RSS %6.1f MiB fds %5d pipe ends %4d "
	       "shortages %lld\n",
	       r->p->name, sec, (unsigned long long)live,
	       (unsigned long long)s.opened, (unsigned long long)s.clients_ok,
	       (unsigned long long)s.failed,
	       (double)(bytes - *last_bytes) / (1 << 20), m.rss_kb / 1024.0,
	       m.fds, m.pipes, *shorts);
	fflush(stdout);
	*last_bytes = bytes;
	return m.rss_kb;
}

/* Least squares slope of y over x, KiB per second. */
static double slope(const double *x, const double *y, unsigned n)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0, d;
	unsigned i;

	for (i = 0; i < n; i++) {
		sx += x[i];
		sy += y[i];
		sxx += x[i] * x[i];
		sxy += x[i] * y[i];
	}
	d = n * sxx - sx * sx;
	return d > 0 ? (n * sxy - sx * sy) / d : 0;
}

/* The load, then the drain. Fills r's peaks and the RSS trend. */
/* The pid in r's pid file; -1 if it has none (yet). */
static long read_pid(const struct run *r)
{
	long pid = -1;
	FILE *f = fopen(r->pidf, "re");

	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return pid;
}

/* SIGUSR2: a new process takes every session over (10 s at most), the
 * old one exits 0 (10 s at most). 0, or -1 (r failed). */
static int run_upgrade(struct run *r)
{
	uint64_t t0 = soak_now_ms(), end = t0 + 10000, t1;
	pid_t old = r->pid;
	long now;
	int st;

	if (kill(old, SIGUSR2)) {
		fail(r, "SIGUSR2: %s", strerror(errno));
		return -1;
	}
	while ((now = read_pid(r)) == (long)old || now <= 0) {
		if (soak_now_ms() > end) {
			fail(r, "upgrade %u: no new process 10 s after SIGUSR2",
			     r->upgraded + 1);
			return -1;
		}
		usleep(5000);
	}
	r->pid = (pid_t)now;
	t1 = soak_now_ms();
	/* Our child, or (a later generation) reparented to us. */
	st = daemon_wait(old, 10000);
	if (st) {
		fail(r, "upgrade %u: the old process ended with %d",
		     r->upgraded + 1, st);
		return -1;
	}
	r->upgraded++;
	printf("  %s upgrade %u: pid %d -> %d, new one ready in %llu ms, "
	       "old one gone %llu ms later\n",
	       r->p->name, r->upgraded, (int)old, (int)r->pid,
	       (unsigned long long)(t1 - t0),
	       (unsigned long long)(soak_now_ms() - t1));
	return 0;
}

/* Whether an upgrade is due at second sec of the load: N of them spread
 * evenly over it, none in its last second. */
static int upgrade_due(const struct run *r, unsigned sec)
{
	unsigned n = soak_opt.upgrades, k = r->upgraded + 1;

	return k <= n && sec < soak_opt.secs &&
	       (uint64_t)sec * (n + 1) >= (uint64_t)k * soak_opt.secs;
}

static void run_load(struct run *r)
{
	unsigned i, sec = 0, n = 0, total = soak_opt.secs + soak_opt.drain_s;
	double *xs = calloc(total + 2, sizeof(double));
	double *ys = calloc(total + 2, sizeof(double));
	uint64_t t0 = soak_now_ms(), last = 0;
	long long shorts[3] = {-1, -1, -1};
	struct scount s;
	long rss;
	int quiet;

	if (!xs || !ys)
		soak_die("out of memory");
	__atomic_store_n(&soak_stopping, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&soak_quitting, 0, __ATOMIC_RELAXED);
	for (i = 0; i < soak_opt.threads; i++)
		if (pthread_create(&r->t[i].th, NULL, soak_thread_main,
		                   &r->t[i]))
			soak_die("pthread_create failed");
	for (;;) {
		uint64_t due = t0 + (uint64_t)(sec + 1) * 1000,
		         now = soak_now_ms();

		if (due > now)
			usleep((useconds_t)(due - now) * 1000);
		sec++;
		if (!r->failed && upgrade_due(r, sec))
			run_upgrade(r);
		rss = sample(r, sec, &last, &shorts[2]);
		sum_counts(r, &s);
		/* The steady part: from a quarter of the load to its end,
		 * without the seconds of a pipe shortage and the one after
		 * (its drains held buffers, given back once sent). */
		quiet = shorts[2] >= 0 && shorts[2] == shorts[0];
		memmove(shorts, shorts + 1, 2 * sizeof(shorts[0]));
		if (sec > soak_opt.secs / 4 && sec <= soak_opt.secs) {
			if (quiet) {
				xs[n] = sec;
				ys[n++] = (double)rss;
			} else {
				r->burst_secs++;
			}
		}
		if (sec == soak_opt.secs)
			__atomic_store_n(&soak_stopping, 1, __ATOMIC_RELAXED);
		if (sec >= soak_opt.secs && s.live_clients == 0 &&
		    s.live_ups == 0)
			break;
		if (sec >= total)
			break;
	}
	__atomic_store_n(&soak_quitting, 1, __ATOMIC_RELAXED);
	for (i = 0; i < soak_opt.threads; i++)
		pthread_join(r->t[i].th, NULL);
	/* The trend through the samples, not their noise (buffers and
	 * pipes taken and given back): a leak grows with the sessions. */
	r->slope_kb_s = slope(xs, ys, n);
	r->steady_kb =
	        n > 1 ? (long long)(r->slope_kb_s * (xs[n - 1] - xs[0])) : 0;
	r->steady_n = n;
	free(xs);
	free(ys);
}

/* Closes what the threads still hold once they returned: sessions that
 * did not end within the drain time. Returns how many. */
static uint64_t close_leftovers(struct run *r)
{
	uint64_t stuck = 0;
	unsigned i;

	for (i = 0; i < soak_opt.threads; i++)
		stuck += soak_thread_fini(&r->t[i]);
	return stuck;
}

/* Starts r's daemon and waits until it answers on its admin address.
 * 0, or -1 (r failed). */
static int run_start(struct run *r)
{
	uint64_t end = soak_now_ms() + 5000;
	char *body;

	r->pid = daemon_start(r->conf, r->log);
	while (!(body = http_metrics(r->admin)) && soak_now_ms() < end)
		usleep(20000);
	if (!body) {
		fail(r, "the daemon did not start (log %s)", r->log);
		kill(r->pid, SIGKILL);
		daemon_wait(r->pid, 5000);
		return -1;
	}
	free(body);
	usleep(200000);
	t_proc_mem(r->pid, &r->m0);
	r->peak = r->m0;
	printf("== %s: %u sessions at once for %u s, daemon pid %d, "
	       "RSS %.1f MiB, %d fds\n",
	       r->p->name, soak_opt.conns, soak_opt.secs, (int)r->pid,
	       r->m0.rss_kb / 1024.0, r->m0.fds);
	return 0;
}

/* Once the load is over: waits (10 s at most) until the daemon has
 * closed its side of the last sessions, then reads its state. */
static void run_settle(struct run *r)
{
	uint64_t end = soak_now_ms() + 10000;
	char *body;

	r->socks0 = r->m0.fds - r->m0.pipes;
	do {
		usleep(100000);
		t_proc_mem(r->pid, &r->end);
		r->socks = r->end.fds - r->end.pipes;
	} while (r->socks > r->socks0 && soak_now_ms() < end);
	body = http_metrics(r->admin);
	r->m_sess = r->m_in = r->m_out = r->m_act = -1;
	if (!body)
		return;
	r->m_sess =
	        metric(body, "zcrelay_route_sessions_total{route=\"soak\"}");
	r->m_in = metric(body, "zcrelay_route_bytes_total{route=\"soak\","
	                       "direction=\"in\"}");
	r->m_out = metric(body, "zcrelay_route_bytes_total{route=\"soak\","
	                        "direction=\"out\"}");
	r->m_act =
	        metric(body, "zcrelay_route_sessions_active{route=\"soak\"}");
	free(body);
}

static void run_report(const struct run *r, const struct scount *s)
{
	const char *n = r->p->name;
	unsigned i;

	printf("-- %s: %llu sessions (%llu upstream ends), %.1f MiB up + "
	       "%.1f MiB down checked, %llu corrupt bytes, %llu lost bytes, "
	       "%llu failed, %llu stuck; peak %llu at once\n",
	       n, (unsigned long long)s->opened,
	       (unsigned long long)s->ups_accepted,
	       (double)s->bytes_up / (1 << 20),
	       (double)s->bytes_down / (1 << 20),
	       (unsigned long long)s->corrupt, (unsigned long long)s->lost,
	       (unsigned long long)s->failed, (unsigned long long)r->stuck,
	       (unsigned long long)r->peak_live);
	printf("-- %s: daemon RSS %.1f -> peak %.1f -> end %.1f MiB (steady "
	       "load: %+lld KiB, %+.1f KiB/s over %u samples, %u left out "
	       "for pipe shortages); fds %d -> peak %d -> end %d; "
	       "pipe ends %d -> peak %d -> end %d\n",
	       n, r->m0.rss_kb / 1024.0, r->peak.rss_kb / 1024.0,
	       r->end.rss_kb / 1024.0, r->steady_kb, r->slope_kb_s, r->steady_n,
	       r->burst_secs, r->m0.fds, r->peak.fds, r->end.fds, r->m0.pipes,
	       r->peak.pipes, r->end.pipes);
	printf("-- %s: daemon metrics: %lld sessions, %lld bytes in, %lld "
	       "out, %lld active\n",
	       n, r->m_sess, r->m_in, r->m_out, r->m_act);
	for (i = 0; i < soak_opt.threads; i++)
		if (r->t[i].errs[0])
			printf("   thread %u failures:%s\n", i, r->t[i].errs);
}

/* Every session whole, the daemon's counts right, and the daemon back
 * where it started. */
/* What a data path may keep above RSS_END_KB once the load is over. */
static long rss_mover_kb(const struct path *p)
{
	if (strcmp(p->mover, "ring") == 0 ||
	    (strcmp(p->mover, "auto") == 0 && strcmp(p->engine, "uring") == 0))
		return RSS_RING_KB;
	return 0;
}

static void run_judge(struct run *r, const struct scount *s)
{
	if (s->corrupt || s->lost || s->failed || r->stuck)
		fail(r, "sessions failed or bytes corrupt or lost");
	if (s->opened != s->clients_ok || s->ups_accepted != s->ups_ok ||
	    s->opened != s->ups_accepted)
		fail(r, "%llu clients, %llu ended well; %llu upstream ends",
		     (unsigned long long)s->opened,
		     (unsigned long long)s->clients_ok,
		     (unsigned long long)s->ups_accepted);
	if (r->peak_live < soak_opt.conns * 9 / 10)
		fail(r, "only %llu sessions at once, not %u",
		     (unsigned long long)r->peak_live, soak_opt.conns);
	if (r->upgraded != soak_opt.upgrades)
		fail(r, "%u upgrades of %u", r->upgraded, soak_opt.upgrades);
	/* The clients' bytes include their 32-byte headers. */
	if (r->m_act != 0 ||
	    (!soak_opt.upgrades &&
	     (r->m_sess != (long long)s->opened ||
	      r->m_in != (long long)(s->bytes_up + s->opened * HDR_LEN) ||
	      r->m_out != (long long)s->bytes_down)))
		fail(r, "the daemon's metrics disagree");
	/* Every socket closed; no more pipe ends than the pools cache
	 * (64 empty pipes per worker, 2 workers). */
	if (r->socks > r->socks0)
		fail(r, "%d sockets and other fds left, %d before", r->socks,
		     r->socks0);
	if (r->end.pipes > r->m0.pipes + 2 * 64 * 2)
		fail(r, "%d pipe ends left, %d before", r->end.pipes,
		     r->m0.pipes);
	if (r->end.rss_kb > r->m0.rss_kb + RSS_END_KB + rss_mover_kb(r->p))
		fail(r, "RSS %ld KiB at the end, %ld at the start",
		     r->end.rss_kb, r->m0.rss_kb);
	if (!soak_opt.upgrades && r->steady_n < STEADY_MIN_N)
		printf("   %s: steady RSS growth not judged: %u samples "
		       "without a pipe shortage, fewer than %u\n",
		       r->p->name, r->steady_n, STEADY_MIN_N);
	else if (!soak_opt.upgrades && r->steady_kb > RSS_GROW_KB)
		fail(r, "RSS grew by %lld KiB during the steady load",
		     r->steady_kb);
}

/* SIGTERM: the daemon must exit 0 (it is killed otherwise). */
static void run_stop(struct run *r)
{
	int st;

	kill(r->pid, SIGTERM);
	st = daemon_wait(r->pid, 15000);
	if (st == 0)
		return;
	fail(r, "the daemon exited %d on SIGTERM", st);
	if (st < 0) {
		kill(r->pid, SIGKILL);
		daemon_wait(r->pid, 5000);
	}
}

/* Soaks data path p. Returns 0 if it passed, 1 if not. */
static int run_path(const struct path *p)
{
	struct run r = {.p = p};
	struct scount s;

	run_setup(&r);
	if (run_start(&r) == 0) {
		run_load(&r);
		sum_counts(&r, &s);
		r.stuck = close_leftovers(&r);
		run_settle(&r);
		run_report(&r, &s);
		run_judge(&r, &s);
		run_stop(&r);
	}
	if (r.failed) {
		printf("   daemon log %s kept\n", r.log);
		r.log[0] = '\0';
	}
	run_cleanup(&r);
	printf("%s %s\n", r.failed ? "FAIL" : "PASS", p->name);
	return r.failed;
}

/* ------------------------------------------------------------------ */
/* Setup and main                                                       */

/* The most fds this process may have, as the soft limit too. */
static unsigned raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		soak_die("getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		soak_die("setrlimit: %s", strerror(errno));
	return rl.rlim_cur > 1000000 ? 1000000 : (unsigned)rl.rlim_cur;
}

/* Writes text to a /proc/sys file of this namespace; 0 or -errno. */
static int sysctl_set(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd == -1)
		return -errno;
	if (write(fd, text, strlen(text)) == -1)
		err = -errno;
	close(fd);
	return err;
}

/*
 * A network namespace of our own, with its loopback up and the whole
 * port range for connects. 1 if done, 0 if not allowed (we stay where
 * we are).
 */
static int own_netns(void)
{
	struct ifreq ifr = {0};
	int fd;

	if (unshare(CLONE_NEWNET) == -1)
		return 0;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd == -1 || ioctl(fd, SIOCGIFFLAGS, &ifr) == -1)
		soak_die("lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1)
		soak_die("lo up: %s", strerror(errno));
	close(fd);
	sysctl_set("/proc/sys/net/ipv4/ip_local_port_range", "10000 65000");
	sysctl_set("/proc/sys/net/ipv4/tcp_tw_reuse", "1");
	return 1;
}

/* NULL if this kernel lets us have an io_uring, else why not. */
static const char *uring_refused(void)
{
	struct io_uring_params p;
	long fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd >= 0) {
		close((int)fd);
		return NULL;
	}
	return strerrorname_np(errno);
}

static int path_selected(const struct path *p)
{
	const char *s = soak_opt.only;
	size_t n = strlen(p->name);

	while (s && *s) {
		if (!strncmp(s, p->name, n) && (s[n] == ',' || !s[n]))
			return 1;
		s = strchr(s, ',');
		s = s ? s + 1 : NULL;
	}
	return !soak_opt.only;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: zcsoak [options]\n"
	        "  -d, --daemon PATH    zcrelay to run (default $ZC_DAEMON)\n"
	        "  -s, --secs N         seconds of load per data path (60)\n"
	        "  -c, --conns N        sessions at once (9000)\n"
	        "  -t, --threads N      threads driving them (2)\n"
	        "  -H, --hold MS        mean idle time before a client "
	        "sends (4000)\n"
	        "  -D, --drain N        seconds the last sessions may take "
	        "(120)\n"
	        "  -b, --big PERMILLE   directions of 16 MiB per 1000 (2)\n"
	        "  -p, --paths LIST     e.g. epoll+splice,uring+copy (all)\n"
	        "  -S, --seed N         seed of sizes, holds and streams "
	        "(1)\n"
	        "  -u, --upgrades N     upgrade the daemon (SIGUSR2) N times "
	        "during the load (0)\n");
}

static unsigned num_arg(const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end || v < lo || v > hi) {
		fprintf(stderr, "zcsoak: bad number '%s' (%u..%u)\n", s, lo,
		        hi);
		exit(2);
	}
	return (unsigned)v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
	        {"daemon", 1, NULL, 'd'}, {"secs", 1, NULL, 's'},
	        {"conns", 1, NULL, 'c'},  {"threads", 1, NULL, 't'},
	        {"hold", 1, NULL, 'H'},   {"drain", 1, NULL, 'D'},
	        {"big", 1, NULL, 'b'},    {"paths", 1, NULL, 'p'},
	        {"seed", 1, NULL, 'S'},   {"upgrades", 1, NULL, 'u'},
	        {"help", 0, NULL, 'h'},   {NULL, 0, NULL, 0}};
	int ch;

	soak_opt.daemon = getenv("ZC_DAEMON");
	while ((ch = getopt_long(argc, argv, "d:s:c:t:H:D:b:p:S:u:h", lo,
	                         NULL)) != -1) {
		switch (ch) {
		case 'd':
			soak_opt.daemon = optarg;
			break;
		case 's':
			soak_opt.secs = num_arg(optarg, 1, 86400);
			break;
		case 'c':
			soak_opt.conns = num_arg(optarg, 1, 500000);
			break;
		case 't':
			soak_opt.threads = num_arg(optarg, 1, 64);
			break;
		case 'H':
			soak_opt.hold_ms = num_arg(optarg, 0, 30000);
			break;
		case 'D':
			soak_opt.drain_s = num_arg(optarg, 1, 86400);
			break;
		case 'b':
			soak_opt.big_permille = num_arg(optarg, 0, 1000);
			break;
		case 'p':
			soak_opt.only = optarg;
			break;
		case 'S':
			soak_opt.seed = num_arg(optarg, 0, 4000000000u);
			break;
		case 'u':
			soak_opt.upgrades = num_arg(optarg, 0, 1000);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc || !soak_opt.daemon) {
		usage(stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	unsigned nofile, need, i;
	int failed = 0, ran = 0, skipped = 0;
	const char *why;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	/* An upgraded daemon's later generations become our children when
	 * their parent exits, so that we can reap them. */
	if (soak_opt.upgrades && prctl(PR_SET_CHILD_SUBREAPER, 1))
		soak_die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	setvbuf(stdout, NULL, _IOLBF, 0);
	nofile = raise_nofile();
	/* Both ends of every session, the listeners, epoll, stdio. */
	need = 2 * soak_opt.conns + soak_opt.threads * (NLISTEN + 1) + 64;
	if (nofile < need)
		soak_die("%u sessions need %u fds; the limit is %u",
		         soak_opt.conns, need, nofile);
	printf("zcsoak: %u sessions at once, %u s per data path, mean hold "
	       "%u ms, %u threads, fd limit %u, %s\n",
	       soak_opt.conns, soak_opt.secs, soak_opt.hold_ms,
	       soak_opt.threads, nofile,
	       own_netns() ? "own network namespace"
	                   : "the machine's loopback (no CAP_SYS_ADMIN)");
	why = uring_refused();
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (!path_selected(&paths[i]))
			continue;
		if (!strcmp(paths[i].engine, "uring") && why) {
			printf("SKIP %s: io_uring_setup: %s\n", paths[i].name,
			       why);
			skipped++;
			continue;
		}
		failed += run_path(&paths[i]);
		ran++;
	}
	/* Not "N passed, N failed" alone: CI reads that form as the
	 * closing line of a test suite, and this is not make check's. */
	printf("zcsoak: %d data paths passed, %d failed, %d skipped\n",
	       ran - failed, failed, skipped);
	return failed ? 1 : 0;
}

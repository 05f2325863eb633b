/*
 * zcfault.c - an LD_PRELOAD shim that makes libc calls of the data path
 * fail on demand, for the tests in tests/integration/fault_*.c.
 *
 * Configured by the environment at load time, and at run time by a file:
 *
 *   ZCF="RULE[,RULE...]"   rules in force from the start
 *   ZCF_FILE=PATH          more rules, read again whenever the file
 *                          changes (write a new file and rename it over);
 *                          a missing or empty file means none
 *   ZCF_STATS=PATH         "label injected calls" lines, rewritten on
 *                          every injection and at exit (calls are exact
 *                          only at exit)
 *
 *   RULE   = FUNC ":" ACTION { ":" KEY "=" VALUE }
 *   FUNC   = accept | accept4 | pipe2 | fcntl (F_SETPIPE_SZ only) |
 *            splice | connect | write | send | sendto | sendmsg | read |
 *            recv | recvfrom | readv | socket | getaddrinfo | shutdown |
 *            getsockopt | epoll_ctl (fd=, port=: the fd it adds, changes
 *            or removes)
 *   ACTION = an errno name (EINVAL, EMFILE, ...): fail with it;
 *            stall: getaddrinfo only: wait ms= milliseconds (default
 *            10000), then resolve (a slow resolver);
 *            short: move at most 1..max bytes (cycling), data calls only;
 *            a read cut short then signals the socket readable again
 *            (the bytes held back look like a new arrival);
 *            eagain-storm: fail with EAGAIN, then make the kernel signal
 *            readiness again on that socket (a spurious-wakeup storm: an
 *            edge-triggered caller is woken and retries, as it would be
 *            by a real EAGAIN, which always comes with a later wakeup)
 *   KEYS   after=N  let N matching calls through first (default 0)
 *          count=N  inject N times, then behave; 0: forever (default)
 *          every=N  inject on every Nth matching call only (default 1)
 *          max=N    short: the most bytes per call (default 64)
 *          ms=N     stall: how long
 *          port=N   only sockets whose local or peer port is N (connect:
 *                   the destination port); the default is any
 *          fd=sock|pipe|any  what the fd must be (default: a socket or a
 *                   pipe, never a regular file or a tty: the daemon's log
 *                   keeps working); splice: either fd
 *          src=sock|pipe  splice only: what fd_in must be (src=sock: the
 *                   socket -> pipe half, src=pipe: pipe -> socket)
 *
 * A matching call is counted by every rule it matches, in order, until
 * one injects. A bad spec (in ZCF or the file) prints why and aborts the
 * process: a test must never run with a fault it did not ask for.
 *
 * At exit every rule that matched prints one line to stderr:
 *   zcfault: splice:EINVAL injected 5 of 130 calls
 *
 * Thread-safe (one mutex, taken only by calls that some rule names).
 * Calls made before the dynamic loader ran our constructor still work:
 * every wrapper looks its libc function up on first use.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <netdb.h>
#include <netinet/in.h>

enum zcf_fn {
	F_ACCEPT,
	F_ACCEPT4,
	F_PIPE2,
	F_FCNTL,
	F_SPLICE,
	F_CONNECT,
	F_WRITE,
	F_SEND,
	F_SENDTO,
	F_SENDMSG,
	F_READ,
	F_RECV,
	F_RECVFROM,
	F_READV,
	F_SOCKET,
	F_GETADDRINFO,
	F_SHUTDOWN,
	F_GETSOCKOPT,
	F_EPOLL_CTL,
	F_COUNT
};

/* What a call is: which filters and actions make sense for it. */
#define K_FD   0x1 /* takes an fd: fd= and port= apply */
#define K_DATA 0x2 /* moves bytes: short applies */
#define K_RD   0x4 /* eagain-storm wakes readers */
#define K_WR   0x8 /* eagain-storm wakes writers */

static const struct {
	const char *name;
	unsigned kind;
} fns[F_COUNT] = {
        [F_ACCEPT] = {"accept", K_FD},
        [F_ACCEPT4] = {"accept4", K_FD},
        [F_PIPE2] = {"pipe2", 0},
        [F_FCNTL] = {"fcntl", K_FD},
        [F_SPLICE] = {"splice", K_FD | K_DATA | K_RD | K_WR},
        [F_CONNECT] = {"connect", 0},
        [F_WRITE] = {"write", K_FD | K_DATA | K_WR},
        [F_SEND] = {"send", K_FD | K_DATA | K_WR},
        [F_SENDTO] = {"sendto", K_FD | K_DATA | K_WR},
        [F_SENDMSG] = {"sendmsg", K_FD | K_DATA | K_WR},
        [F_READ] = {"read", K_FD | K_DATA | K_RD},
        [F_RECV] = {"recv", K_FD | K_DATA | K_RD},
        [F_RECVFROM] = {"recvfrom", K_FD | K_DATA | K_RD},
        [F_READV] = {"readv", K_FD | K_DATA | K_RD},
        [F_SOCKET] = {"socket", 0},
        [F_GETADDRINFO] = {"getaddrinfo", 0},
        [F_SHUTDOWN] = {"shutdown", K_FD},
        [F_GETSOCKOPT] = {"getsockopt", K_FD},
        [F_EPOLL_CTL] = {"epoll_ctl", K_FD},
};

static const struct {
	const char *name;
	int err;
} errnos[] = {
        {"EPERM", EPERM},
        {"EINTR", EINTR},
        {"EIO", EIO},
        {"EBADF", EBADF},
        {"EAGAIN", EAGAIN},
        {"ENOMEM", ENOMEM},
        {"EACCES", EACCES},
        {"EFAULT", EFAULT},
        {"EINVAL", EINVAL},
        {"ENFILE", ENFILE},
        {"EMFILE", EMFILE},
        {"ENOSPC", ENOSPC},
        {"EPIPE", EPIPE},
        {"ENOSYS", ENOSYS},
        {"ENOBUFS", ENOBUFS},
        {"EOPNOTSUPP", EOPNOTSUPP},
        {"ECONNABORTED", ECONNABORTED},
        {"ECONNRESET", ECONNRESET},
        {"ECONNREFUSED", ECONNREFUSED},
        {"ETIMEDOUT", ETIMEDOUT},
        {"EHOSTUNREACH", EHOSTUNREACH},
        {"ENETUNREACH", ENETUNREACH},
        {"EADDRNOTAVAIL", EADDRNOTAVAIL},
        {"EPROTO", EPROTO},
        {"ENOTCONN", ENOTCONN},
        {"ESPIPE", ESPIPE},
};

enum zcf_act { A_ERRNO, A_SHORT, A_STORM, A_STALL };
enum zcf_fdkind { FD_DEFAULT, FD_SOCK, FD_PIPE, FD_ANY };

#define MAX_RULES 32
#define MAX_STATS 64

struct zcf_rule {
	int fn, act, err, fdkind, port;
	int srckind; /* splice: what fd_in must be; FD_ANY: anything */
	unsigned long after, count, every, max;
	unsigned long calls, injected;
	int stat; /* index in stats[] */
};

/* Totals by label ("splice:EINVAL"), kept across reloads of the file. */
struct zcf_stat {
	char label[48];
	unsigned long injected, calls;
};

/* What a wrapper must do with the call. */
struct zcf_hit {
	int act, err;
	size_t cap; /* A_SHORT: at most this many bytes */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct zcf_rule env_rules[MAX_RULES], file_rules[MAX_RULES];
static int n_env, n_file;
static struct zcf_stat stats[MAX_STATS];
static int n_stats;
static unsigned fn_used[F_COUNT]; /* rules naming the function */
static int inited;
static const char *ctl_path, *stats_path;
static struct stat ctl_st; /* what the file was when last read */
static int ctl_seen;
static uint64_t next_check_ns;

/* The real functions. */
#define REAL(var, name)                                                        \
	do {                                                                   \
		if (!var)                                                      \
			var = (__typeof__(var))dlsym(RTLD_NEXT, name);         \
	} while (0)

static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);

static void die(const char *spec, const char *at, const char *why)
{
	char msg[512];
	int n;

	n = snprintf(msg, sizeof(msg),
	             "zcfault: bad spec \"%s\" at \"%s\": %s\n", spec, at, why);
	if (n > 0)
		(void)syscall(SYS_write, 2, msg,
		              (size_t)n < sizeof(msg) ? (size_t)n
		                                      : sizeof(msg) - 1);
	abort();
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int stat_slot(const char *label)
{
	int i;

	for (i = 0; i < n_stats; i++)
		if (!strcmp(stats[i].label, label))
			return i;
	if (n_stats == MAX_STATS)
		return MAX_STATS - 1; /* shared overflow slot */
	snprintf(stats[n_stats].label, sizeof(stats[0].label), "%s", label);
	return n_stats++;
}

/* Decimal, all digits, no sign, fits. */
static int parse_ulong(const char *s, size_t len, unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 9)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int tok_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && !memcmp(s, word, len);
}

static void parse_key(struct zcf_rule *r, const char *spec, const char *f,
                      size_t len)
{
	const char *eq = memchr(f, '=', len);
	unsigned long v;
	size_t klen, vlen;

	if (!eq)
		die(spec, f, "expected KEY=VALUE");
	klen = (size_t)(eq - f);
	vlen = len - klen - 1;
	if (tok_is(f, klen, "fd")) {
		if (!(fns[r->fn].kind & K_FD))
			die(spec, f, "fd= needs a call that takes an fd");
		if (tok_is(eq + 1, vlen, "sock"))
			r->fdkind = FD_SOCK;
		else if (tok_is(eq + 1, vlen, "pipe"))
			r->fdkind = FD_PIPE;
		else if (tok_is(eq + 1, vlen, "any"))
			r->fdkind = FD_ANY;
		else
			die(spec, f, "fd= takes sock, pipe or any");
		return;
	}
	if (tok_is(f, klen, "src")) {
		if (r->fn != F_SPLICE)
			die(spec, f, "src= is for splice only");
		if (tok_is(eq + 1, vlen, "sock"))
			r->srckind = FD_SOCK;
		else if (tok_is(eq + 1, vlen, "pipe"))
			r->srckind = FD_PIPE;
		else
			die(spec, f, "src= takes sock or pipe");
		return;
	}
	if (parse_ulong(eq + 1, vlen, &v))
		die(spec, f, "value is not a decimal number (< 10^9)");
	if (tok_is(f, klen, "after")) {
		r->after = v;
	} else if (tok_is(f, klen, "count")) {
		r->count = v;
	} else if (tok_is(f, klen, "every")) {
		if (!v)
			die(spec, f, "every= must be at least 1");
		r->every = v;
	} else if (tok_is(f, klen, "ms")) {
		if (r->act != A_STALL)
			die(spec, f, "ms= is for stall only");
		r->max = v;
	} else if (tok_is(f, klen, "max")) {
		if (r->act != A_SHORT)
			die(spec, f, "max= is for short only");
		if (!v)
			die(spec, f, "max= must be at least 1");
		r->max = v;
	} else if (tok_is(f, klen, "port")) {
		if (!v || v > 65535)
			die(spec, f, "port= must be 1..65535");
		if (!(fns[r->fn].kind & K_FD) && r->fn != F_CONNECT)
			die(spec, f, "port= needs a call with a socket");
		r->port = (int)v;
	} else {
		die(spec, f,
		    "unknown key (after, count, every, max, ms, port, fd)");
	}
}

static void parse_action(struct zcf_rule *r, const char *spec, const char *f,
                         size_t len)
{
	size_t i;

	if (tok_is(f, len, "short")) {
		if (!(fns[r->fn].kind & K_DATA))
			die(spec, f, "short is for calls that move bytes");
		r->act = A_SHORT;
		return;
	}
	if (tok_is(f, len, "stall")) {
		if (r->fn != F_GETADDRINFO)
			die(spec, f, "stall is for getaddrinfo only");
		r->act = A_STALL;
		r->max = 10000;
		return;
	}
	if (r->fn == F_GETADDRINFO)
		die(spec, f, "getaddrinfo takes stall only");
	if (tok_is(f, len, "eagain-storm")) {
		if (!(fns[r->fn].kind & (K_RD | K_WR)) && r->fn != F_ACCEPT &&
		    r->fn != F_ACCEPT4)
			die(spec, f,
			    "eagain-storm is for data calls and accept");
		r->act = A_STORM;
		r->err = EAGAIN;
		return;
	}
	for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
		if (tok_is(f, len, errnos[i].name)) {
			r->act = A_ERRNO;
			r->err = errnos[i].err;
			return;
		}
	}
	die(spec, f, "unknown action (an errno name, short, eagain-storm)");
}

/* One RULE of len bytes at s. */
static void parse_rule(struct zcf_rule *r, const char *spec, const char *s,
                       size_t len)
{
	const char *end = s + len, *f = s, *c;
	char label[48];
	size_t flen;
	int field = 0, i;

	memset(r, 0, sizeof(*r));
	r->fn = -1;
	r->every = 1;
	r->max = 64;
	r->srckind = FD_ANY;
	while (f <= end) {
		c = memchr(f, ':', (size_t)(end - f));
		flen = c ? (size_t)(c - f) : (size_t)(end - f);
		if (!flen)
			die(spec, f, "empty field");
		if (field == 0) {
			for (i = 0; i < F_COUNT; i++)
				if (tok_is(f, flen, fns[i].name))
					r->fn = i;
			if (r->fn < 0)
				die(spec, f, "unknown function");
		} else if (field == 1) {
			parse_action(r, spec, f, flen);
		} else {
			parse_key(r, spec, f, flen);
		}
		field++;
		if (!c)
			break;
		f = c + 1;
	}
	if (field < 2)
		die(spec, s, "expected FUNC:ACTION");
	/* The label is "FUNC:ACTION", the first two fields. */
	c = (const char *)memchr(s, ':', len) + 1;
	flen = 0;
	while (c + flen < end && c[flen] != ':')
		flen++;
	snprintf(label, sizeof(label), "%s:%.*s", fns[r->fn].name, (int)flen,
	         c);
	r->stat = stat_slot(label);
}

/* Parses spec into rules; returns how many. Aborts on a bad spec. */
static int parse_spec(const char *spec, struct zcf_rule *rules)
{
	const char *s = spec, *c;
	size_t len;
	int n = 0;

	while (*s == ' ' || *s == '\n' || *s == '\t')
		s++;
	if (!*s)
		return 0;
	for (;;) {
		c = strchr(s, ',');
		len = c ? (size_t)(c - s) : strlen(s);
		while (len && (s[len - 1] == '\n' || s[len - 1] == ' ' ||
		               s[len - 1] == '\t'))
			len--;
		if (!len)
			die(spec, s, "empty rule");
		if (n == MAX_RULES)
			die(spec, s, "too many rules");
		parse_rule(&rules[n++], spec, s, len);
		if (!c)
			break;
		s = c + 1;
		while (*s == ' ' || *s == '\n' || *s == '\t')
			s++;
	}
	return n;
}

static void count_fns(void)
{
	int i;

	memset(fn_used, 0, sizeof(fn_used));
	for (i = 0; i < n_env; i++)
		fn_used[env_rules[i].fn]++;
	for (i = 0; i < n_file; i++)
		fn_used[file_rules[i].fn]++;
}

static void write_stats(void)
{
	char buf[MAX_STATS * 80];
	unsigned long calls = 0;
	size_t len = 0;
	int fd, i, n;

	for (i = 0; i < n_stats; i++)
		calls += stats[i].calls;
	/* A process that never made a call of interest (a wrapper such as
	 * timeout(1) that inherited the environment) leaves the file alone. */
	if (!stats_path || !calls)
		return;
	for (i = 0; i < n_stats; i++) {
		n = snprintf(buf + len, sizeof(buf) - len, "%s %lu %lu\n",
		             stats[i].label, stats[i].injected, stats[i].calls);
		if (n < 0 || (size_t)n >= sizeof(buf) - len)
			break;
		len += (size_t)n;
	}
	fd = open(stats_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return;
	if (real_write(fd, buf, len) < 0) {
		/* nothing to do: a test will find the counts missing */
	}
	close(fd);
}

/* Reads the control file again if it changed. Under mu. */
static void ctl_check(void)
{
	char buf[4096];
	struct stat st;
	ssize_t n;
	int fd, same;

	if (stat(ctl_path, &st) == -1) {
		if (ctl_seen || n_file) {
			ctl_seen = 0;
			n_file = 0;
			count_fns();
		}
		return;
	}
	same = ctl_seen && st.st_ino == ctl_st.st_ino &&
	       st.st_size == ctl_st.st_size &&
	       st.st_mtim.tv_sec == ctl_st.st_mtim.tv_sec &&
	       st.st_mtim.tv_nsec == ctl_st.st_mtim.tv_nsec;
	if (same)
		return;
	fd = open(ctl_path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	n = real_read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return;
	buf[n] = '\0';
	ctl_st = st;
	ctl_seen = 1;
	n_file = parse_spec(buf, file_rules);
	count_fns();
}

static void zcf_init_locked(void)
{
	const char *spec;

	if (inited)
		return;
	REAL(real_read, "read");
	REAL(real_write, "write");
	spec = getenv("ZCF");
	n_env = spec ? parse_spec(spec, env_rules) : 0;
	ctl_path = getenv("ZCF_FILE");
	if (ctl_path && !*ctl_path)
		ctl_path = NULL;
	stats_path = getenv("ZCF_STATS");
	if (stats_path && !*stats_path)
		stats_path = NULL;
	if (ctl_path)
		ctl_check();
	count_fns();
	inited = 1;
}

__attribute__((constructor)) static void zcf_ctor(void)
{
	pthread_mutex_lock(&mu);
	zcf_init_locked();
	pthread_mutex_unlock(&mu);
}

__attribute__((destructor)) static void zcf_dtor(void)
{
	char line[128];
	int i, n;

	pthread_mutex_lock(&mu);
	for (i = 0; i < n_stats; i++) {
		n = snprintf(line, sizeof(line),
		             "zcfault: %s injected %lu of %lu calls\n",
		             stats[i].label, stats[i].injected, stats[i].calls);
		if (n > 0)
			(void)syscall(SYS_write, 2, line, (size_t)n);
	}
	write_stats();
	pthread_mutex_unlock(&mu);
}

/* The port of a socket address, 0 if not INET. */
static int sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static int fd_has_port(int fd, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    sa_port((struct sockaddr *)&ss) == port)
		return 1;
	len = sizeof(ss);
	return getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
	       sa_port((struct sockaddr *)&ss) == port;
}

static int fd_kind_ok(int fd, int kind)
{
	struct stat st;

	if (kind == FD_ANY)
		return 1;
	if (fstat(fd, &st) == -1)
		return 0;
	if (kind == FD_SOCK)
		return S_ISSOCK(st.st_mode);
	if (kind == FD_PIPE)
		return S_ISFIFO(st.st_mode);
	return S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode);
}

/* Whether r applies to a call on fd1/fd2 (-1: none) or to sa. */
static int rule_matches(const struct zcf_rule *r, int fd1, int fd2,
                        const struct sockaddr *sa)
{
	if (r->fn == F_CONNECT)
		return !r->port || (sa && sa_port(sa) == r->port);
	if (!(fns[r->fn].kind & K_FD))
		return 1;
	if (!fd_kind_ok(fd1, r->srckind))
		return 0;
	if (!((fd1 >= 0 && fd_kind_ok(fd1, r->fdkind) &&
	       (!r->port || fd_has_port(fd1, r->port))) ||
	      (fd2 >= 0 && fd_kind_ok(fd2, r->fdkind) &&
	       (!r->port || fd_has_port(fd2, r->port)))))
		return 0;
	return 1;
}

/* Counts the call in r; 1 if r injects this time. */
static int rule_fires(struct zcf_rule *r)
{
	unsigned long idx;

	r->calls++;
	stats[r->stat].calls++;
	if (r->calls <= r->after)
		return 0;
	idx = r->calls - r->after;
	if (idx % r->every)
		return 0;
	if (r->count && r->injected >= r->count)
		return 0;
	r->injected++;
	stats[r->stat].injected++;
	/* At once, so that a test waiting for a fault sees it even if the
	 * daemon goes quiet right after (a few us per injection). */
	write_stats();
	return 1;
}

static int rules_eval(struct zcf_rule *rules, int n, int fn, int fd1, int fd2,
                      const struct sockaddr *sa, struct zcf_hit *h)
{
	struct zcf_rule *r;
	int i;

	for (i = 0; i < n; i++) {
		r = &rules[i];
		if (r->fn != fn || !rule_matches(r, fd1, fd2, sa))
			continue;
		if (!rule_fires(r))
			continue;
		h->act = r->act;
		h->err = r->err;
		h->cap = r->act == A_STALL
		                 ? (size_t)r->max
		                 : (size_t)(1 + (r->injected - 1) % r->max);
		return 1;
	}
	return 0;
}

/*
 * Decides the fate of a call of fn on fd1 (and fd2 for splice; -1: none)
 * or to sa (connect). Returns 1 and fills h if a fault applies. Keeps
 * errno.
 */
static int zcf_check(int fn, int fd1, int fd2, const struct sockaddr *sa,
                     struct zcf_hit *h)
{
	int saved = errno, hit = 0;
	uint64_t now;

	if (__atomic_load_n(&inited, __ATOMIC_ACQUIRE) && !ctl_path &&
	    !__atomic_load_n(&fn_used[fn], __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&mu);
	zcf_init_locked();
	if (ctl_path) {
		now = now_ns();
		if (now >= next_check_ns) {
			next_check_ns = now + 10000000ULL; /* 10 ms */
			ctl_check();
		}
	}
	if (fn_used[fn]) {
		hit = rules_eval(env_rules, n_env, fn, fd1, fd2, sa, h);
		if (!hit)
			hit = rules_eval(file_rules, n_file, fn, fd1, fd2, sa,
			                 h);
	}
	pthread_mutex_unlock(&mu);
	errno = saved;
	return hit;
}

static int fd_is_sock(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/*
 * After an injected EAGAIN: have the kernel wake the socket's waiters
 * again, as it would after a real EAGAIN once the condition clears. The
 * read side re-sets SO_RCVLOWAT to its value (TCP then signals EPOLLIN if
 * data or EOF waits, tcp_set_rcvlowat() since Linux 4.19); the write side
 * re-sets SO_SNDBUF (sk_write_space() signals EPOLLOUT if there is room;
 * side effect: the send buffer no longer autotunes). Without room it
 * only polls: tcp_poll() then sets SOCK_NOSPACE, as a real EAGAIN does,
 * so the kernel signals when room comes (else that wakeup would be
 * lost and the session stall). Sockets only;
 * listening sockets are level-triggered and need nothing.
 */
static void storm_kick(int fd, int wr)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int v = 0, saved = errno;
	socklen_t len = sizeof(v);

	if (fd < 0 || !fd_is_sock(fd))
		goto out;
	if (!wr) {
		if (getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len) == 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v,
			                 sizeof(v));
	} else if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT) &&
	           getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len) == 0) {
		v /= 2; /* the kernel doubles what it is given */
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
out:
	errno = saved;
}

/*
 * After a read the shim cut short. A real stream socket returns short
 * only when it is drained, and the arrival of more bytes is a new event;
 * a reader that relies on that (the relay's copy path stops at a short
 * read) would wait forever for bytes the shim held back. Signal them as
 * if they had just arrived.
 */
static ssize_t short_read_done(int fd, ssize_t n)
{
	if (n > 0)
		storm_kick(fd, 0);
	return n;
}

/* Fails the call as h says; rd_fd/wr_fd are the sockets to kick. */
static long zcf_fail(const struct zcf_hit *h, int rd_fd, int wr_fd)
{
	if (h->act == A_STORM) {
		storm_kick(rd_fd, 0);
		storm_kick(wr_fd, 1);
	}
	errno = h->err;
	return -1;
}

static size_t zcf_cap(const struct zcf_hit *h, size_t len)
{
	return len > h->cap ? h->cap : len;
}

/* Limits an iovec array to cap bytes in total, in a copy. */
static int iov_cap(const struct iovec *iov, int n, size_t cap,
                   struct iovec *out, int max)
{
	int i;

	for (i = 0; i < n && i < max && cap; i++) {
		out[i] = iov[i];
		if (out[i].iov_len > cap)
			out[i].iov_len = cap;
		cap -= out[i].iov_len;
	}
	return i ? i : (n ? 1 : 0);
}

/* ------------------------------------------------------------------ */
/* The wrappers                                                         */

int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	static int (*real)(int, struct sockaddr *, socklen_t *);
	struct zcf_hit h;

	REAL(real, "accept");
	if (zcf_check(F_ACCEPT, fd, -1, NULL, &h))
		return (int)zcf_fail(&h, -1, -1);
	return real(fd, sa, len);
}

int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	static int (*real)(int, struct sockaddr *, socklen_t *, int);
	struct zcf_hit h;

	REAL(real, "accept4");
	if (zcf_check(F_ACCEPT4, fd, -1, NULL, &h))
		return (int)zcf_fail(&h, -1, -1);
	return real(fd, sa, len, flags);
}

int pipe2(int fds[2], int flags)
{
	static int (*real)(int *, int);
	struct zcf_hit h;

	REAL(real, "pipe2");
	if (zcf_check(F_PIPE2, -1, -1, NULL, &h))
		return (int)zcf_fail(&h, -1, -1);
	return real(fds, flags);
}

/* Only F_SETPIPE_SZ is subject to faults; every command passes its
 * argument on as the pointer-sized word it was given (as glibc does). */
int fcntl(int fd, int cmd, ...)
{
	static int (*real)(int, int, ...);
	struct zcf_hit h;
	va_list ap;
	void *arg;

	REAL(real, "fcntl");
	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (cmd == F_SETPIPE_SZ && zcf_check(F_FCNTL, fd, -1, NULL, &h))
		return (int)zcf_fail(&h, -1, -1);
	return real(fd, cmd, arg);
}

ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out,
               size_t len, unsigned flags)
{
	static ssize_t (*real)(int, loff_t *, int, loff_t *, size_t, unsigned);
	struct zcf_hit h;

	REAL(real, "splice");
	if (zcf_check(F_SPLICE, fd_in, fd_out, NULL, &h)) {
		if (h.act != A_SHORT)
			return zcf_fail(&h, fd_in, fd_out);
		len = zcf_cap(&h, len);
	}
	return real(fd_in, off_in, fd_out, off_out, len, flags);
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	static int (*real)(int, const struct sockaddr *, socklen_t);
	struct zcf_hit h;

	REAL(real, "connect");
	if (zcf_check(F_CONNECT, -1, -1, sa, &h))
		return (int)zcf_fail(&h, -1, -1);
	return real(fd, sa, len);
}

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *,
	                   struct addrinfo **);
	struct zcf_hit h;
	struct timespec ts;

	REAL(real, "getaddrinfo");
	if (zcf_check(F_GETADDRINFO, -1, -1, NULL, &h)) { /* stall */
		ts.tv_sec = (time_t)(h.cap / 1000);
		ts.tv_nsec = (long)(h.cap % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	return real(node, service, hints, res);
}

int shutdown(int fd, int how)
{
	static int (*real)(int, int);
	struct zcf_hit h;

	REAL(real, "shutdown");
	if (zcf_check(F_SHUTDOWN, fd, -1, NULL, &h))
		return (int)zcf_fail(&h, -1, -1);
	return real(fd, how);
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	static int (*real)(int, int, int, void *, socklen_t *);
	struct zcf_hit h;

	REAL(real, "getsockopt");
	if (zcf_check(F_GETSOCKOPT, fd, -1, NULL, &h))
		return (int)zcf_fail(&h, -1, -1);
	return real(fd, level, name, val, len);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	static int (*real)(int, int, int, struct epoll_event *);
	struct zcf_hit h;

	REAL(real, "epoll_ctl");
	if (zcf_check(F_EPOLL_CTL, fd, -1, NULL, &h))
		return (int)zcf_fail(&h, -1, -1);
	return real(epfd, op, fd, ev);
}

int socket(int domain, int type, int protocol)
{
	static int (*real)(int, int, int);
	struct zcf_hit h;

	REAL(real, "socket");
	if (zcf_check(F_SOCKET, -1, -1, NULL, &h))
		return (int)zcf_fail(&h, -1, -1);
	return real(domain, type, protocol);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	struct zcf_hit h;

	REAL(real_write, "write");
	if (zcf_check(F_WRITE, fd, -1, NULL, &h)) {
		if (h.act != A_SHORT)
			return zcf_fail(&h, -1, fd);
		len = zcf_cap(&h, len);
	}
	return real_write(fd, buf, len);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, const void *, size_t, int);
	struct zcf_hit h;

	REAL(real, "send");
	if (zcf_check(F_SEND, fd, -1, NULL, &h)) {
		if (h.act != A_SHORT)
			return zcf_fail(&h, -1, fd);
		len = zcf_cap(&h, len);
	}
	return real(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags,
               const struct sockaddr *sa, socklen_t salen)
{
	static ssize_t (*real)(int, const void *, size_t, int,
	                       const struct sockaddr *, socklen_t);
	struct zcf_hit h;

	REAL(real, "sendto");
	if (zcf_check(F_SENDTO, fd, -1, NULL, &h)) {
		if (h.act != A_SHORT)
			return zcf_fail(&h, -1, fd);
		len = zcf_cap(&h, len);
	}
	return real(fd, buf, len, flags, sa, salen);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, const struct msghdr *, int);
	struct iovec iov[64];
	struct msghdr m;
	struct zcf_hit h;

	REAL(real, "sendmsg");
	if (zcf_check(F_SENDMSG, fd, -1, NULL, &h)) {
		if (h.act != A_SHORT)
			return zcf_fail(&h, -1, fd);
		m = *msg;
		m.msg_iov = iov;
		m.msg_iovlen = (size_t)iov_cap(
		        msg->msg_iov, (int)msg->msg_iovlen, h.cap, iov, 64);
		return real(fd, &m, flags);
	}
	return real(fd, msg, flags);
}

ssize_t read(int fd, void *buf, size_t len)
{
	struct zcf_hit h;

	REAL(real_read, "read");
	if (zcf_check(F_READ, fd, -1, NULL, &h)) {
		if (h.act != A_SHORT)
			return zcf_fail(&h, fd, -1);
		return short_read_done(fd,
		                       real_read(fd, buf, zcf_cap(&h, len)));
	}
	return real_read(fd, buf, len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, void *, size_t, int);
	struct zcf_hit h;

	REAL(real, "recv");
	if (zcf_check(F_RECV, fd, -1, NULL, &h)) {
		if (h.act != A_SHORT)
			return zcf_fail(&h, fd, -1);
		return short_read_done(fd,
		                       real(fd, buf, zcf_cap(&h, len), flags));
	}
	return real(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *sa,
                 socklen_t *salen)
{
	static ssize_t (*real)(int, void *, size_t, int, struct sockaddr *,
	                       socklen_t *);
	struct zcf_hit h;

	REAL(real, "recvfrom");
	if (zcf_check(F_RECVFROM, fd, -1, NULL, &h)) {
		if (h.act != A_SHORT)
			return zcf_fail(&h, fd, -1);
		return short_read_done(
		        fd, real(fd, buf, zcf_cap(&h, len), flags, sa, salen));
	}
	return real(fd, buf, len, flags, sa, salen);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
	static ssize_t (*real)(int, const struct iovec *, int);
	struct iovec cut[64];
	struct zcf_hit h;

	REAL(real, "readv");
	if (zcf_check(F_READV, fd, -1, NULL, &h)) {
		if (h.act != A_SHORT)
			return zcf_fail(&h, fd, -1);
		return short_read_done(
		        fd, real(fd, cut, iov_cap(iov, n, h.cap, cut, 64)));
	}
	return real(fd, iov, n);
}

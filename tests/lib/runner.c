/*
 * runner.c - zctest's main(): runs every registered test in a forked
 * child with a timeout and an fd-leak check, prints TAP-like lines and
 * one closing summary line.
 *
 * The parent keeps SIGCHLD (and the terminating signals) blocked and
 * waits with sigtimedwait(), so a timeout needs no alarm handler and a
 * ^C kills the running test's process group before the runner exits.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

#define DEFAULT_TIMEOUT_S 120

/*
 * A data path variant of TEST_MATRIX tests. probe (may be NULL) runs in
 * the test's child before the test; it returns NULL when the variant can
 * run here, or the reason to skip it.
 */
struct t_variant {
	const char *name;
	int engine;
	int mover;
	const char *(*probe)(void);
};

/* Skips io_uring variants where the kernel refuses io_uring (ENOSYS,
 * EPERM from kernel.io_uring_disabled or seccomp, an old kernel). */
static const char *probe_uring(void)
{
	static char why[160];
	struct zc_loop_opts o;
	struct zc_loop *loop;
	int err;

	zc_loop_opts_init(&o);
	o.engine = ZC_ENGINE_URING;
	err = zc_loop_new(&loop, &o);
	if (err == 0) {
		zc_loop_free(loop);
		return NULL;
	}
	snprintf(why, sizeof(why), "io_uring unavailable: %s",
	         zc_strerror(err));
	return why;
}

/* Every TEST_MATRIX test runs once per line. */
static const struct t_variant variants[] = {
        {"epoll:splice", ZC_ENGINE_EPOLL, ZC_MOVER_SPLICE, NULL},
        {"epoll:copy", ZC_ENGINE_EPOLL, ZC_MOVER_COPY, NULL},
        {"uring:splice", ZC_ENGINE_URING, ZC_MOVER_SPLICE, probe_uring},
        {"uring:copy", ZC_ENGINE_URING, ZC_MOVER_COPY, probe_uring},
        {"uring:auto", ZC_ENGINE_URING, ZC_MOVER_AUTO, probe_uring},
        {"uring:ring", ZC_ENGINE_URING, ZC_MOVER_RING, probe_uring},
        {"uring:uring-splice", ZC_ENGINE_URING, ZC_MOVER_URING_SPLICE,
         probe_uring},
};

/* Written by the child, read by the parent: a MAP_SHARED page. */
struct t_shared {
	char skip[512];
};

static struct t_test *tests_head;
static struct t_test **tests_tail = &tests_head;
static struct t_shared *shared;
static sigset_t parent_mask; /* what the parent blocks */
static sigset_t orig_mask;   /* what the child restores */
static const void *cur_row;  /* the running table test's row */

void t_register(struct t_test *t)
{
	t->next = NULL;
	*tests_tail = t;
	tests_tail = &t->next;
}

int t_skip(const char *fmt, ...)
{
	char buf[sizeof(shared->skip)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (shared)
		memcpy(shared->skip, buf, sizeof(buf));
	else
		fprintf(stderr, "# SKIP %s\n", buf);
	return T_SKIP;
}

void t_log(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# %s\n", buf);
}

const void *t_row(void)
{
	return cur_row;
}

/* Row r of table test t (NULL for a plain test); its first member is
 * the row's name. */
static const void *row_of(const struct t_test *t, size_t r)
{
	return t->rows ? (const char *)t->rows + r * t->row_size : NULL;
}

static const char *row_name(const struct t_test *t, size_t r)
{
	const void *row = row_of(t, r);

	return row ? *(const char *const *)row : NULL;
}

const char *t_tmpdir(void)
{
	const char *d = getenv("T_TMPDIR");

	return d && *d ? d : "/tmp";
}

int t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return T_FAIL;
}

int t_fail_cmp(const char *file, int line, const char *expr_a, const char *op,
               const char *expr_b, long long a, long long b)
{
	return t_fail(file, line, "assert %s %s %s failed: %lld %s %lld",
	              expr_a, op, expr_b, a, op, b);
}

static const char *err_text(long long e)
{
	if (e < INT_MIN || e > INT_MAX)
		return "?";
	return zc_strerror((int)e);
}

int t_fail_err(const char *file, int line, const char *expr, long long got,
               long long want)
{
	if (!want)
		return t_fail(file, line, "ASSERT_OK(%s) failed: %lld (%s)",
		              expr, got, err_text(got));
	return t_fail(file, line,
	              "ASSERT_ERR(%s) failed: got %lld (%s), want %lld (%s)",
	              expr, got, got < 0 ? err_text(got) : "no error", want,
	              err_text(want));
}

static void hex_window(char *out, size_t size, const unsigned char *p,
                       size_t off, size_t n)
{
	size_t i, end = off + 16 < n ? off + 16 : n;
	int len = 0;

	out[0] = '\0';
	for (i = off; i < end && len >= 0 && (size_t)len < size; i++)
		len += snprintf(out + len, size - len, "%02x", p[i]);
}

int t_fail_mem(const char *file, int line, const char *expr_a,
               const char *expr_b, const void *a, const void *b, size_t n)
{
	const unsigned char *pa = a, *pb = b;
	char ha[40], hb[40];
	size_t off = 0;

	while (off < n && pa[off] == pb[off])
		off++;
	hex_window(ha, sizeof(ha), pa, off, n);
	hex_window(hb, sizeof(hb), pb, off, n);
	return t_fail(file, line,
	              "ASSERT_MEMEQ(%s, %s, %zu) failed at offset %zu: "
	              "%s... != %s...",
	              expr_a, expr_b, n, off, ha, hb);
}

/* ------------------------------------------------------------------ */
/* The child: fd snapshot, run, leak check                              */

struct fdset {
	int *fd;
	size_t n, cap;
};

/* Fills s with the open fds of this process; returns 0 or -errno. */
static int fdset_read(struct fdset *s)
{
	struct dirent *de;
	DIR *d;
	int *p;

	s->n = 0;
	d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] == '.' || fd == dirfd(d))
			continue;
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			p = realloc(s->fd, s->cap * sizeof(*p));
			if (!p) {
				closedir(d);
				return -ENOMEM;
			}
			s->fd = p;
		}
		s->fd[s->n++] = fd;
	}
	closedir(d);
	return 0;
}

static int fdset_has(const struct fdset *s, int fd)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->fd[i] == fd)
			return 1;
	return 0;
}

/* Prints every fd of after missing from before; returns how many. */
static int report_leaks(const struct fdset *before, const struct fdset *after)
{
	char path[64], target[PATH_MAX];
	int leaks = 0;
	size_t i;
	ssize_t n;

	for (i = 0; i < after->n; i++) {
		if (fdset_has(before, after->fd[i]))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", after->fd[i]);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "leaked fd %d -> %s\n", after->fd[i], target);
		leaks++;
	}
	return leaks;
}

static int run_child(const struct t_test *t, const struct t_variant *v,
                     size_t row)
{
	struct t_ctx ctx = {ZC_MOVER_AUTO, ZC_ENGINE_AUTO, NULL};
	struct fdset before = {0}, after = {0};
	const char *why;
	int rc;

	if (v) {
		ctx.mover = v->mover;
		ctx.engine = v->engine;
		ctx.variant = v->name;
		why = v->probe ? v->probe() : NULL;
		if (why)
			return t_skip("%s", why);
	}
	if (fdset_read(&before))
		return t_fail(__FILE__, __LINE__, "cannot read /proc/self/fd");
	cur_row = row_of(t, row);
	rc = t->fn(&ctx);
	if (rc != T_PASS && rc != T_FAIL && rc != T_SKIP) {
		fprintf(stderr, "%s returned %d (%s), not T_PASS/FAIL/SKIP\n",
		        t->name, rc, rc < 0 ? zc_strerror(rc) : "?");
		rc = T_FAIL;
	}
	if (rc == T_PASS) {
		if (fdset_read(&after))
			return t_fail(__FILE__, __LINE__,
			              "cannot read /proc/self/fd");
		if (report_leaks(&before, &after))
			rc = T_FAIL;
	}
	free(before.fd);
	free(after.fd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The parent                                                           */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Prints the "*.log" files a failed test left in its directory (the
 * daemon's output), at most their last 64 KiB each. Regular files only:
 * a test may leave a FIFO there, whose open would wait for a writer. */
static void dump_logs(const char *dir)
{
	char path[PATH_MAX], buf[4096];
	struct dirent *de;
	struct stat st;
	size_t len;
	FILE *f;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".log"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		f = fopen(path, "re");
		if (!f)
			continue;
		printf("# ---- %s ----\n", de->d_name);
		if (fseek(f, -65536, SEEK_END) == 0)
			printf("# (truncated)\n");
		else
			rewind(f);
		while ((len = fread(buf, 1, sizeof(buf), f)))
			fwrite(buf, 1, len, stdout);
		printf("# ---- end of %s ----\n", de->d_name);
		fclose(f);
	}
	closedir(d);
}

/* A terminating signal while a test runs: kill its group, clean up, die
 * of the same signal. */
static void die_of(int sig, pid_t pid, const char *tmp)
{
	kill(-pid, SIGKILL);
	waitpid(pid, NULL, 0);
	rm_tree(tmp);
	fprintf(stderr, "zctest: interrupted by signal %d\n", sig);
	signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &orig_mask, NULL);
	raise(sig);
	_exit(128 + sig);
}

/*
 * Waits for the child pid for at most timeout_s; then kills its process
 * group (the test's leftovers: daemons, helpers), reaps it and returns
 * its wait status, or -1 on timeout.
 */
static int wait_child(pid_t pid, unsigned timeout_s, const char *tmp)
{
	double deadline = now_s() + timeout_s;
	int status, timed_out = 0;
	struct timespec ts;
	siginfo_t si;
	double left;
	int sig;

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (!waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) &&
		    si.si_pid == pid)
			break;
		left = deadline - now_s();
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - ts.tv_sec) * 1e9);
		sig = sigtimedwait(&parent_mask, NULL, &ts);
		if (sig > 0 && sig != SIGCHLD)
			die_of(sig, pid, tmp);
	}
	kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	return timed_out ? -1 : status;
}

/* "name", "name_row", "name[variant]" or "name_row[variant]". */
static void format_name(char *buf, size_t size, const struct t_test *t,
                        const struct t_variant *v, size_t row)
{
	const char *rn = row_name(t, row);

	snprintf(buf, size, "%s%s%s%s%s%s", t->name, rn ? "_" : "",
	         rn ? rn : "", v ? "[" : "", v ? v->name : "", v ? "]" : "");
}

static unsigned default_timeout(void)
{
	const char *s = getenv("T_TIMEOUT");
	long v = s ? strtol(s, NULL, 10) : 0;

	return v > 0 ? (unsigned)v : DEFAULT_TIMEOUT_S;
}

struct totals {
	int num, passed, failed, skipped;
};

/*
 * Forks the child running test t (variant v) in the directory tmp and
 * waits for it. Returns its wait status, -1 on timeout, or -2 (printed)
 * when it could not be started.
 */
static int run_forked(const struct t_test *t, const struct t_variant *v,
                      size_t row, unsigned timeout, const char *tmp)
{
	pid_t pid;
	int rc;

	fflush(NULL);
	pid = fork();
	if (pid == -1) {
		printf("# fork: %s\n", strerror(errno));
		return -2;
	}
	if (pid == 0) {
		setpgid(0, 0);
		setenv("T_TMPDIR", tmp, 1);
		sigprocmask(SIG_SETMASK, &orig_mask, NULL);
		rc = run_child(t, v, row);
		fflush(NULL);
		exit(rc);
	}
	setpgid(pid, pid); /* also here: no race with kill(-pid) */
	return wait_child(pid, timeout, tmp);
}

/* Turns a run_forked() result into T_PASS/T_FAIL/T_SKIP, printing why
 * a test failed when its own output may not say it. */
static int verdict(const char *name, int status, unsigned timeout)
{
	if (status == -2)
		return T_FAIL;
	if (status == -1) {
		printf("# %s: timed out after %u s\n", name, timeout);
		return T_FAIL;
	}
	if (WIFSIGNALED(status)) {
		printf("# %s: killed by signal %d (%s)%s\n", name,
		       WTERMSIG(status), strsignal(WTERMSIG(status)),
		       WCOREDUMP(status) ? ", core dumped" : "");
		return T_FAIL;
	}
	switch (WEXITSTATUS(status)) {
	case T_PASS:
		return T_PASS;
	case T_SKIP:
		return T_SKIP;
	case T_FAIL:
		return T_FAIL;
	}
	printf("# %s: exit status %d\n", name, WEXITSTATUS(status));
	return T_FAIL;
}

/* Runs one test (variant v, or NULL; row of a table test) and prints
 * its line. */
static void run_one(const struct t_test *t, const struct t_variant *v,
                    size_t row, struct totals *tot)
{
	unsigned timeout = t->timeout_s ? t->timeout_s : default_timeout();
	char name[256], tmp[] = "/tmp/zctest.XXXXXX";
	int res;

	format_name(name, sizeof(name), t, v, row);
	memset(shared, 0, sizeof(*shared));
	tot->num++;
	if (!mkdtemp(tmp)) {
		printf("# mkdtemp: %s\n", strerror(errno));
		res = T_FAIL;
	} else {
		res = verdict(name, run_forked(t, v, row, timeout, tmp),
		              timeout);
		if (res == T_FAIL)
			dump_logs(tmp);
		rm_tree(tmp);
	}
	switch (res) {
	case T_PASS:
		printf("ok %d - %s\n", tot->num, name);
		tot->passed++;
		break;
	case T_SKIP:
		shared->skip[sizeof(shared->skip) - 1] = '\0';
		printf("ok %d - %s # SKIP%s%s\n", tot->num, name,
		       shared->skip[0] ? " " : "", shared->skip);
		tot->skipped++;
		break;
	default:
		printf("not ok %d - %s\n", tot->num, name);
		tot->failed++;
	}
}

static int by_place(const void *a, const void *b)
{
	const struct t_test *x = *(const struct t_test *const *)a;
	const struct t_test *y = *(const struct t_test *const *)b;
	int c = strcmp(x->file, y->file);

	if (c)
		return c;
	return x->line - y->line;
}

/* Returns the tests in a stable order (file, line) as a malloc'd array. */
static struct t_test **sorted_tests(size_t *count)
{
	struct t_test **v, *t;
	size_t n = 0;

	for (t = tests_head; t; t = t->next)
		n++;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	n = 0;
	for (t = tests_head; t; t = t->next)
		v[n++] = t;
	qsort(v, n, sizeof(*v), by_place);
	*count = n;
	return v;
}

/* T_VARIANTS=epoll,uring:copy runs only the variants whose names start
 * with one of the comma-separated prefixes (valgrind cannot run io_uring). */
static int variant_enabled(const struct t_variant *v)
{
	const char *env = getenv("T_VARIANTS"), *p;
	size_t n;

	if (!v || !env || !*env)
		return 1;
	for (p = env; *p; p += n + (p[n] == ',')) {
		n = strcspn(p, ",");
		if (n && strncmp(v->name, p, n) == 0)
			return 1;
	}
	return 0;
}

static int selected(const struct t_test *t, const struct t_variant *v,
                    size_t row, int nfilt, char **filt)
{
	char name[256];
	int i;

	if (!variant_enabled(v))
		return 0;
	if (!nfilt)
		return 1;
	format_name(name, sizeof(name), t, v, row);
	for (i = 0; i < nfilt; i++)
		if (strstr(name, filt[i]))
			return 1;
	return 0;
}

static void usage(const char *prog)
{
	printf("usage: %s [-l] [FILTER...]\n"
	       "  Runs the tests whose \"name[variant]\" contains any FILTER.\n"
	       "  -l  list the selected tests instead of running them\n"
	       "  env T_TIMEOUT=SECONDS  default per-test timeout (%d)\n"
	       "  env T_VARIANTS=P,...  only data paths starting with a P\n",
	       prog, DEFAULT_TIMEOUT_S);
}

/*
 * Runs (or with list, prints) the selected runs of test t, row by row
 * for a table test; variant k is variants[k] for a matrix test, or NULL
 * for the single run of a plain one. Returns how many were selected.
 */
static int run_test(const struct t_test *t, int list, int nfilt, char **filt,
                    struct totals *tot)
{
	size_t k, r, nv, nr = t->rows ? t->nrows : 1;
	const struct t_variant *v;
	char name[256];
	int count = 0;

	nv = t->matrix ? sizeof(variants) / sizeof(variants[0]) : 1;
	for (r = 0; r < nr; r++) {
		for (k = 0; k < nv; k++) {
			v = t->matrix ? &variants[k] : NULL;
			if (!selected(t, v, r, nfilt, filt))
				continue;
			count++;
			format_name(name, sizeof(name), t, v, r);
			if (list)
				printf("%s\n", name);
			else
				run_one(t, v, r, tot);
		}
	}
	return count;
}

/* run_test() for every test of all; returns how many runs were
 * selected. */
static int run_all(struct t_test **all, size_t n, int list, int nfilt,
                   char **filt, struct totals *tot)
{
	int count = 0;
	size_t i;

	for (i = 0; i < n; i++)
		count += run_test(all[i], list, nfilt, filt, tot);
	return count;
}

int main(int argc, char **argv)
{
	struct totals tot = {0};
	int list = 0, count, opt;
	struct t_test **all;
	double t0 = now_s();
	size_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "lh")) != -1) {
		switch (opt) {
		case 'l':
			list = 1;
			break;
		case 'h':
			usage(argv[0]);
			return 0;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	all = sorted_tests(&n);
	if (!all) {
		fprintf(stderr, "zctest: out of memory\n");
		return 1;
	}
	if (list) {
		run_all(all, n, 1, argc - optind, argv + optind, &tot);
		free(all);
		return 0;
	}

	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
	              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		fprintf(stderr, "zctest: mmap: %s\n", strerror(errno));
		return 1;
	}
	/* Children must be reapable (not auto-reaped) and SIGCHLD must
	 * stay pending for sigtimedwait(). */
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&parent_mask);
	sigaddset(&parent_mask, SIGCHLD);
	sigaddset(&parent_mask, SIGINT);
	sigaddset(&parent_mask, SIGTERM);
	sigaddset(&parent_mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &parent_mask, &orig_mask);

	count = run_all(all, n, 0, argc - optind, argv + optind, &tot);
	free(all);
	if (!count && argc > optind)
		printf("# no test matches the filter\n");
	printf("# total time %.3f s\n", now_s() - t0);
	printf("%d passed, %d failed, %d skipped\n", tot.passed, tot.failed,
	       tot.skipped);
	return tot.failed || (!count && argc > optind) ? 1 : 0;
}

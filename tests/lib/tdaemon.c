/*
 * tdaemon.c - helpers shared by the daemon integration tests (see
 * tdaemon.h).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "tdaemon.h"

void t_dargs_add(struct t_dargs *a, const char *s)
{
	if (a->n < (int)(sizeof(a->v) / sizeof(a->v[0])) - 1)
		a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

const char *t_dargs_addr(struct t_dargs *a, const char *opt,
                         const struct zc_addr *addr)
{
	char *s = a->str[a->nstr++ % 8];

	if (t_addr_str(addr, s, sizeof(a->str[0])) < 0)
		snprintf(s, sizeof(a->str[0]), "?");
	t_dargs_add(a, opt);
	t_dargs_add(a, s);
	return s;
}

void t_dargs_listen(struct t_dargs *a, const struct zc_addr *la)
{
	memset(a, 0, sizeof(*a));
	t_dargs_addr(a, "--listen", la);
}

void t_dargs_init(struct t_dargs *a, const struct t_ctx *ctx,
                  const struct zc_addr *la, const struct zc_addr *ua)
{
	t_dargs_listen(a, la);
	if (ua)
		t_dargs_addr(a, "--upstream", ua);
	t_dargs_add(a, "--mover");
	t_dargs_add(a, zc_mover_name(ctx->mover));
	if (ctx->engine != ZC_ENGINE_AUTO) {
		t_dargs_add(a, "--engine");
		t_dargs_add(a, zc_engine_name(ctx->engine));
	}
}

int t_daemon_up(struct t_daemon *d, const struct t_dargs *a,
                const struct zc_addr *la)
{
	return t_daemon_up_opts(d, a, la, NULL);
}

int t_daemon_up_opts(struct t_daemon *d, const struct t_dargs *a,
                     const struct zc_addr *la, const struct t_dstart *o)
{
	uint64_t end = t_now_ms() + 5000;
	char *log;
	int up = 0;

	ASSERT_OK(t_daemon_start_opts(d, a->v, o));
	ASSERT_OK(t_daemon_ready(d, la, 5000));
	while (!up && t_now_ms() < end) {
		log = t_daemon_log(d);
		up = log && strstr(log, " info listening on ");
		free(log);
		if (!up)
			t_sleep_ms(5);
	}
	ASSERT_TRUE(up);
	return T_PASS;
}

int t_log_count(const struct t_daemon *d, const char *a, const char *b)
{
	char *log = t_daemon_log(d), *line, *save = NULL;
	int n = 0;

	if (!log)
		return 0;
	for (line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (strstr(line, a) && (!b || strstr(line, b)))
			n++;
	free(log);
	return n;
}

int t_wait_log_count(const struct t_daemon *d, const char *a, const char *b,
                     int n, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	int got;

	while ((got = t_log_count(d, a, b)) < n && t_now_ms() < end)
		t_sleep_ms(10);
	return got;
}

int t_is_closed(int r)
{
	return r == 0 || r == -ECONNRESET || r == -EPIPE;
}

int t_daemon_conf(struct t_daemon *d, const struct zc_addr *la, const char *fmt,
                  ...)
{
	char text[8192], path[512];
	struct t_dargs a;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ASSERT_TRUE(n > 0 && (size_t)n < sizeof(text));
	ASSERT_OK(t_write_tmp("zcrelay.conf", text, path, sizeof(path)));
	memset(&a, 0, sizeof(a));
	t_dargs_add(&a, "-c");
	t_dargs_add(&a, path);
	return t_daemon_up(d, &a, la);
}

int t_daemon_route1(struct t_daemon *d, const struct t_ctx *ctx,
                    struct zc_addr *la, struct zc_addr *ua, int *ulfd,
                    const char *extra)
{
	char las[64], uas[64];

	*ulfd = t_listen(AF_INET, ua);
	ASSERT_OK(*ulfd);
	ASSERT_OK(t_free_addr(AF_INET, la));
	ASSERT_OK(t_addr_str(la, las, sizeof(las)));
	ASSERT_OK(t_addr_str(ua, uas, sizeof(uas)));
	return t_daemon_conf(d, la,
	                     "workers = 1;\n%s\n"
	                     "routes = ( { name = \"r\"; listen = \"%s\";\n"
	                     "  upstreams = \"%s\"; mover = \"%s\";\n"
	                     "  %s\n} );\n",
	                     t_cfg_engine(ctx), las, uas, t_cfg_mover(ctx),
	                     extra);
}

int t_daemon_down(struct t_daemon *d)
{
	ASSERT_ERR(t_daemon_wait(d, 0), -ETIMEDOUT);
	ASSERT_EQ(t_daemon_stop(d, SIGTERM), 0);
	return T_PASS;
}

/* A TCP socket bound to 127.0.0.1:port; the fd or -errno. */
static int bind_port(unsigned port, int reuse)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd, err, one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if ((reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	                         sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int t_free_range(struct zc_addr *out, unsigned n)
{
	unsigned port, i, try;
	int *fds, err = -EADDRINUSE;

	if (n == 0 || n > 1024)
		return -EINVAL;
	fds = malloc(n * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	for (try = 0; try < 100 && err == -EADDRINUSE; try++) {
		err = t_free_addr(AF_INET, out);
		if (err)
			break;
		port = ntohs(((struct sockaddr_in *)&out->ss)->sin_port);
		for (i = 0; i < n; i++) {
			/* SO_REUSEADDR like the daemon's listeners: a port
			 * with only TIME_WAIT connections left by other
			 * tests is free for them, and refusing it made 300
			 * consecutive ports rare on a busy machine. */
			fds[i] = bind_port(port + i, 1);
			if (fds[i] < 0)
				break;
		}
		err = i == n ? 0 : fds[i];
		while (i-- > 0)
			close(fds[i]);
	}
	free(fds);
	return err;
}

int t_listen_at(const struct zc_addr *a)
{
	int fd, err, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1 ||
	    listen(fd, SOMAXCONN) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int t_connect_from(const struct zc_addr *a, const char *src)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd, err;

	if (!src)
		return t_connect(a);
	if (inet_pton(AF_INET, src, &sin.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int t_accept_any(const int *lfds, int n, int timeout_ms, int *which)
{
	struct pollfd p[16];
	int i, r;

	if (n < 1 || n > 16)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		p[i].fd = lfds[i];
		p[i].events = POLLIN;
		p[i].revents = 0;
	}
	do {
		r = poll(p, (nfds_t)n, timeout_ms);
	} while (r == -1 && errno == EINTR);
	if (r == -1)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	for (i = 0; !(p[i].revents & POLLIN); i++)
		;
	if (which)
		*which = i;
	return t_accept_ms(lfds[i], 0);
}

int t_ping(int c, int u)
{
	char ch;

	ASSERT_OK(t_write_all(c, "?", 1));
	ASSERT_EQ(t_read_full(u, &ch, 1, 2000), 1);
	ASSERT_EQ(ch, '?');
	ASSERT_OK(t_write_all(u, "!", 1));
	ASSERT_EQ(t_read_full(c, &ch, 1, 2000), 1);
	ASSERT_EQ(ch, '!');
	return T_PASS;
}

int t_session(const struct zc_addr *la, const char *src, const int *lfds, int n,
              int *c, int *u, int *which)
{
	*c = t_connect_from(la, src);
	ASSERT_OK(*c);
	*u = t_accept_any(lfds, n, 2000, which);
	ASSERT_OK(*u);
	return t_ping(*c, *u);
}

int t_expect_closed(const struct zc_addr *la, const char *src, int max_ms,
                    uint64_t *ms)
{
	uint64_t t0 = t_now_ms();
	int c, r;

	c = t_connect_from(la, src);
	ASSERT_OK(c);
	r = t_wait_eof(c, max_ms + 1000);
	*ms = t_now_ms() - t0;
	close(c);
	if (!t_is_closed(r))
		return t_fail(
		        __FILE__, __LINE__,
		        "client not closed: t_wait_eof = %d after %llu ms", r,
		        (unsigned long long)*ms);
	ASSERT_LE(*ms, max_ms);
	return T_PASS;
}

int t_xfer_both(int c, int u, uint64_t nbytes, uint64_t seed)
{
	return t_xfer_both_ways(c, u, nbytes, nbytes, seed);
}

void t_blackhole_close(struct t_blackhole *b)
{
	int i;

	for (i = 0; i < 3; i++)
		if (b->fill[i] >= 0)
			close(b->fill[i]);
	if (b->lfd >= 0)
		close(b->lfd);
}

/* A non-blocking connect to a; the fd or -errno. */
static int connect_nb(const struct zc_addr *a)
{
	int fd = socket(a->ss.ss_family,
	                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1 &&
	    errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * A TCP listener with backlog 0 whose accept queue is filled by
 * connections nobody accepts: the kernel then drops further SYNs, so a
 * connect to it neither completes nor fails for a while. Returns 0, 1 if
 * this kernel still completes connects there (skip), or -errno.
 */
static int blackhole_try(struct t_blackhole *b)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&b->a.ss;
	struct pollfd p;
	int i, fd, n, err;

	b->lfd = b->fill[0] = b->fill[1] = b->fill[2] = -1;
	memset(&b->a, 0, sizeof(b->a));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	b->a.len = sizeof(*sin);
	b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (b->lfd == -1)
		return -errno;
	if (bind(b->lfd, (struct sockaddr *)sin, sizeof(*sin)) == -1 ||
	    getsockname(b->lfd, (struct sockaddr *)&b->a.ss, &b->a.len) == -1 ||
	    listen(b->lfd, 0) == -1)
		return -errno;
	for (i = 0; i < 3; i++) {
		b->fill[i] = connect_nb(&b->a);
		if (b->fill[i] < 0)
			return b->fill[i];
		if (i == 0) /* let the first one reach the accept queue */
			t_sleep_ms(20);
	}
	/* a further connect must hang */
	fd = connect_nb(&b->a);
	if (fd < 0)
		return fd;
	p.fd = fd;
	p.events = POLLOUT;
	p.revents = 0;
	do {
		n = poll(&p, 1, 300);
	} while (n == -1 && errno == EINTR);
	err = n == -1 ? -errno : n;
	close(fd);
	return err;
}

/* Opens a blackhole, or returns T_SKIP/T_FAIL with b closed. */
int t_blackhole_open(struct t_blackhole *b)
{
	int r = blackhole_try(b);

	if (r == 0)
		return T_PASS;
	t_blackhole_close(b);
	if (r == 1)
		T_SKIP("a connect to a full backlog-0 listener completed in "
		       "< 300 ms: cannot make an unanswering upstream");
	ASSERT_OK(r);
	return T_FAIL;
}

/* ------------------------------------------------------------------ */
/* Config files, log files, the admin endpoint                          */

const char *t_cfg_engine(const struct t_ctx *ctx)
{
	switch (ctx->engine) {
	case ZC_ENGINE_EPOLL:
		return "engine = \"epoll\";";
	case ZC_ENGINE_URING:
		return "engine = \"uring\";";
	}
	return "";
}

const char *t_cfg_mover(const struct t_ctx *ctx)
{
	switch (ctx->mover) {
	case ZC_MOVER_COPY:
		return "copy";
	case ZC_MOVER_SPLICE:
		return "splice";
	case ZC_MOVER_RING:
		return "ring";
	case ZC_MOVER_URING_SPLICE:
		return "uring-splice";
	}
	return "auto";
}

void t_dargs_cfg(struct t_dargs *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	t_dargs_add(a, "-c");
	t_dargs_add(a, path);
}

int t_daemon_up_cfg(struct t_daemon *d, const char *name, const char *text,
                    char *path, size_t size, const struct zc_addr *la)
{
	struct t_dargs a;

	ASSERT_OK(t_write_tmp(name, text, path, size));
	t_dargs_cfg(&a, path);
	return t_daemon_up(d, &a, la);
}

/* See tdaemon.h. */
char *t_file_text(const char *path)
{
	struct t_daemon d;

	memset(&d, 0, sizeof(d));
	snprintf(d.log_path, sizeof(d.log_path), "%s", path);
	return t_daemon_log(&d);
}

/* Copies the first line of text containing a and b (unless NULL) to
 * line; 1 if there is one, else 0. */
static int find_line(char *text, const char *a, const char *b, char *line,
                     size_t size)
{
	char *l, *save = NULL;

	for (l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		if (strstr(l, a) && (!b || strstr(l, b))) {
			if (line)
				snprintf(line, size, "%s", l);
			return 1;
		}
	return 0;
}

int t_file_count(const char *path, const char *a, const char *b)
{
	char *text = t_file_text(path), *l, *save = NULL;
	int n = 0;

	if (!text)
		return 0;
	for (l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		if (strstr(l, a) && (!b || strstr(l, b)))
			n++;
	free(text);
	return n;
}

int t_wait_file_line(const char *path, const char *a, const char *b, char *line,
                     size_t size, int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	char *text;
	int found;

	for (;;) {
		text = t_file_text(path);
		found = text && find_line(text, a, b, line, size);
		free(text);
		if (found)
			return 0;
		if (t_now_ms() >= end)
			return -ETIMEDOUT;
		t_sleep_ms(10);
	}
}

int t_wait_log_line(const struct t_daemon *d, const char *a, const char *b,
                    char *line, size_t size, int timeout_ms)
{
	return t_wait_file_line(d->log_path, a, b, line, size, timeout_ms);
}

int t_ping_pong(int c, int u, const char *sent, size_t n)
{
	char buf[16];

	ASSERT_LE(n, sizeof(buf));
	ASSERT_EQ(t_read_full(u, buf, n, 5000), (ssize_t)n);
	ASSERT_MEMEQ(buf, sent, n);
	ASSERT_OK(t_write_all(u, "pong", 4));
	ASSERT_EQ(t_read_full(c, buf, 4, 5000), 4);
	ASSERT_MEMEQ(buf, "pong", 4);
	close(c);
	ASSERT_EQ(t_wait_eof(u, 5000), 0);
	close(u);
	return T_PASS;
}

/* Reads fd until EOF into a malloc'd string (*out). Returns its length
 * or -errno. */
static ssize_t read_all(int fd, char **out)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *p;
	ssize_t n;

	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			p = realloc(buf, cap);
			if (!p) {
				free(buf);
				return -ENOMEM;
			}
			buf = p;
		}
		n = t_read_full(fd, buf + len, cap - len - 1, 5000);
		if (n < 0) {
			free(buf);
			return n;
		}
		len += (size_t)n;
	} while (n > 0);
	buf[len] = '\0';
	*out = buf;
	return (ssize_t)len;
}

int t_http(const struct zc_addr *a, const char *method, const char *path,
           const char *extra, char **body)
{
	char req[1600], *resp = NULL, *b;
	int fd, n, status = -EPROTO;
	ssize_t len;

	if (body)
		*body = NULL;
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\n%s\r\n", method, path,
	             extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return -EINVAL;
	fd = t_connect(a);
	if (fd < 0)
		return fd;
	len = t_write_all(fd, req, (size_t)n);
	if (len == 0)
		len = read_all(fd, &resp);
	close(fd);
	if (len < 0)
		return (int)len;
	if (sscanf(resp, "HTTP/1.%*1[01] %3d ", &status) != 1)
		status = -EPROTO;
	b = strstr(resp, "\r\n\r\n");
	if (body && b) {
		memmove(resp, b + 4, strlen(b + 4) + 1);
		*body = resp;
		resp = NULL;
	}
	free(resp);
	return status;
}

int t_http_get(const struct zc_addr *a, const char *path, char **body)
{
	return t_http(a, "GET", path, NULL, body);
}

int t_json_check(const char *json, const char *expr)
{
	char in[256], py[256], cmd[600], *prog;
	int rc;

	if (!t_in_path("python3"))
		return t_fail(__FILE__, __LINE__, "python3 not in PATH");
	if (asprintf(&prog,
	             "import json, sys\n"
	             "d = json.load(open(sys.argv[1]))\n"
	             "if not (%s):\n"
	             "    print('false for', json.dumps(d))\n",
	             expr) < 0)
		return T_FAIL;
	rc = t_write_tmp("check.py", prog, py, sizeof(py));
	free(prog);
	ASSERT_OK(rc);
	ASSERT_OK(t_write_tmp("body.json", json, in, sizeof(in)));
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s'", py, in);
	if (t_run(cmd))
		return t_fail(__FILE__, __LINE__, "JSON check %s failed", expr);
	return T_PASS;
}

long long t_json_num(const char *json, const char *key, int nth)
{
	char pat[128];
	const char *p = json;
	int i;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	for (i = 0; i <= nth && p; i++) {
		p = strstr(p, pat);
		if (p && i < nth)
			p += strlen(pat);
	}
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

long long t_metric(const char *body, const char *sample)
{
	size_t n = strlen(sample);
	const char *p = body;

	while (p && *p) {
		if (strncmp(p, sample, n) == 0 && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

int t_expect_exit(const char *const argv[], int want, const char *out,
                  int exact)
{
	struct t_daemon d;
	char *log;
	int rc, ok;

	ASSERT_OK(t_daemon_start(&d, argv));
	rc = t_daemon_wait(&d, 5000);
	if (rc == -ETIMEDOUT)
		t_daemon_stop(&d, SIGKILL);
	log = t_daemon_log(&d);
	ASSERT_TRUE(log != NULL);
	ok = exact ? strcmp(log, out) == 0 : strstr(log, out) != NULL;
	if (rc != want || !ok) {
		t_log("status %d (want %d), output:\n%s--- wanted%s:\n%s", rc,
		      want, log, exact ? "" : " in it", out);
		free(log);
		return t_fail(__FILE__, __LINE__, "unexpected result");
	}
	free(log);
	return T_PASS;
}

int t_in_path(const char *prog)
{
	const char *p = getenv("PATH");
	char file[512];
	size_t n;

	while (p && *p) {
		n = strcspn(p, ":");
		snprintf(file, sizeof(file), "%.*s/%s", (int)n, p, prog);
		if (n && access(file, X_OK) == 0)
			return 1;
		p += n + (p[n] == ':');
	}
	return 0;
}

int t_run(const char *cmd)
{
	char out[256], *full, *text;
	int st, n;

	snprintf(out, sizeof(out), "%s/t_run.out", t_tmpdir());
	n = asprintf(&full, "%s > '%s' 2>&1", cmd, out);
	if (n < 0)
		return -ENOMEM;
	st = system(full);
	free(full);
	if (st == -1 || !WIFEXITED(st))
		st = 128;
	else
		st = WEXITSTATUS(st);
	text = t_file_text(out);
	if (st != 0 || (text && *text)) {
		t_log("%s: exit %d: %s", cmd, st, text ? text : "");
		if (st == 0)
			st = 1;
	}
	free(text);
	return st;
}

int t_daemon_up_env(struct t_daemon *d, const struct t_dargs *a,
                    const struct zc_addr *la, const char *const env[])
{
	struct t_dstart o = {.env = env};

	return t_daemon_up_opts(d, a, la, &o);
}

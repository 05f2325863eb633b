/*
 * tdaemon.c - helpers shared by the daemon integration tests (see
 * tdaemon.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
	t_dargs_add(a, ctx->mover == ZC_MOVER_COPY ? "copy" : "splice");
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
	return t_file_count(d->log_path, a, b);
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

/* The whole file as a malloc'd string, or NULL. */
static char *file_text(const char *path)
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
	char *text = file_text(path), *l, *save = NULL;
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
		text = file_text(path);
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

int t_http_get(const struct zc_addr *a, const char *path, char **body)
{
	char req[1200], *resp = NULL, *b;
	int fd, n, status = -EPROTO;
	ssize_t len;

	if (body)
		*body = NULL;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
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
	text = file_text(out);
	if (st != 0 || (text && *text)) {
		t_log("%s: exit %d: %s", cmd, st, text ? text : "");
		if (st == 0)
			st = 1;
	}
	free(text);
	return st;
}

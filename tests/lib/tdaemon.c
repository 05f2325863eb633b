/*
 * tdaemon.c - helpers shared by the daemon integration tests (see
 * tdaemon.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (ctx->mover == ZC_MOVER_RING) {
		/* The daemon has no --mover ring: auto with the library's
		 * ZC_MOVER override (the test's child process only). */
		t_dargs_add(a, "auto");
		setenv("ZC_MOVER", "ring", 1);
	} else {
		t_dargs_add(a, zc_mover_name(ctx->mover));
	}
	if (ctx->engine != ZC_ENGINE_AUTO) {
		t_dargs_add(a, "--engine");
		t_dargs_add(a, zc_engine_name(ctx->engine));
	}
}

int t_daemon_up(struct t_daemon *d, const struct t_dargs *a,
                const struct zc_addr *la)
{
	uint64_t end = t_now_ms() + 5000;
	char *log;
	int up = 0;

	ASSERT_OK(t_daemon_start(d, a->v));
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

/* unit/balance.c - passive health in zcr_balance_report(): the state
 * and the log agree. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tnet.h"
#include "daemon.h"
#include "dlog.h"

/* A configuration of one route "r" with the upstreams ups (a config
 * file's list), loaded from a file. */
static struct zcr_cfg *load(const char *ups)
{
	char text[512], path[256];
	struct zcr_cfg *c = NULL;

	snprintf(text, sizeof(text),
	         "routes = ( { name = \"r\"; listen = \"127.0.0.1:1\";\n"
	         "  upstreams = [ %s ]; } );\n",
	         ups);
	if (t_write_tmp("b.conf", text, path, sizeof(path)) ||
	    zcr_cfg_load(path, &c))
		return NULL;
	return c;
}

/* The number of lines of the file path that contain s. */
static int lines_with(const char *path, const char *s)
{
	char line[512];
	FILE *f = fopen(path, "re");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, s) != NULL;
	fclose(f);
	return n;
}

/*
 * The race of issue 15: a connect in flight when the upstream is ejected
 * succeeds a moment later. The success logs "is back", so it must also
 * end the ejection: the upstream takes sessions at once, not after the
 * cool-down; a success while not ejected logs nothing.
 */
TEST(test_balance_success_ends_ejection)
{
	struct zcr_cfg *c = load("\"127.0.0.1:9\", \"127.0.0.1:10\"");
	const struct zcr_route *r;
	uint64_t tried[ZCR_MAX_UPSTREAMS / 64] = {0}, t = 100000;
	char log[256];
	int i;

	ASSERT_TRUE(c != NULL);
	r = &c->routes[0];
	ASSERT_EQ(r->fail_max, 3);
	snprintf(log, sizeof(log), "%s/log", t_tmpdir());
	ASSERT_OK(zcr_log_open(log, ZCR_LOGF_TEXT));
	zcr_balance_report(r, 0, 0, t); /* healthy: nothing to say */
	for (i = 0; i < 3; i++)
		zcr_balance_report(r, 0, -ECONNREFUSED, t);
	ASSERT_EQ(zcr_upstream_healthy(&r->ups[0], t + 1), 0);
	ASSERT_EQ(zcr_balance_pick(r, NULL, 1, tried, t + 1), 1);
	zcr_balance_report(r, 0, 0, t + 1); /* the connect in flight */
	ASSERT_EQ(zcr_upstream_healthy(&r->ups[0], t + 2), 1);
	ASSERT_EQ(zcr_balance_pick(r, NULL, 1, tried, t + 2), 0);
	zcr_log_close();
	ASSERT_EQ(lines_with(log, "upstream=127.0.0.1:9 ejected for 10000 ms "
	                          "after 3 failed connects"),
	          1);
	ASSERT_EQ(lines_with(log, "upstream=127.0.0.1:9 is back after 3 "
	                          "failed connects"),
	          1);
	ASSERT_EQ(lines_with(log, " is back "), 1);
	zcr_cfg_unref(c);
	return T_PASS;
}

/*
 * Every ejection is logged, also the one at the first failure after a
 * cool-down (it used to be silent); a failure during an ejection (a
 * connect that was in flight) neither logs nor extends it.
 */
TEST(test_balance_every_ejection_logged)
{
	struct zcr_cfg *c = load("\"127.0.0.1:9\"");
	const struct zcr_route *r;
	uint64_t t = 100000, cool;
	char log[256];
	int i;

	ASSERT_TRUE(c != NULL);
	r = &c->routes[0];
	cool = r->cooldown_ms;
	snprintf(log, sizeof(log), "%s/log", t_tmpdir());
	ASSERT_OK(zcr_log_open(log, ZCR_LOGF_TEXT));
	for (i = 0; i < 3; i++)
		zcr_balance_report(r, 0, -ECONNREFUSED, t);
	zcr_balance_report(r, 0, -ECONNREFUSED, t + 10); /* in flight */
	ASSERT_EQ(zcr_upstream_healthy(&r->ups[0], t + cool - 1), 0);
	ASSERT_EQ(zcr_upstream_healthy(&r->ups[0], t + cool), 1);
	zcr_balance_report(r, 0, -ETIMEDOUT, t + cool + 1);
	ASSERT_EQ(zcr_upstream_healthy(&r->ups[0], t + cool + 2), 0);
	zcr_log_close();
	ASSERT_EQ(lines_with(log, " ejected for 10000 ms after 3 failed "
	                          "connects"),
	          1);
	ASSERT_EQ(lines_with(log, " ejected for 10000 ms after 5 failed "
	                          "connects"),
	          1);
	ASSERT_EQ(lines_with(log, " ejected for "), 2);
	zcr_cfg_unref(c);
	return T_PASS;
}

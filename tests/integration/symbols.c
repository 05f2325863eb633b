/*
 * symbols.c - the functions libzcrelay.so exports are exactly those
 * debian/libzcrelay0.symbols lists (the package's ABI record): a new
 * zc_* function fails here until it is added there, with the version
 * that first has it; a removed one fails too (an ABI break needs a new
 * SONAME, not a silent drop); and the version is the same everywhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "tdaemon.h"
#include "tprog.h"

/* Whether list (one name per line) has the line name. */
static int listed(const char *list, const char *name)
{
	char key[160];
	size_t n = strlen(name);

	snprintf(key, sizeof(key), "\n%s\n", name);
	return !strncmp(list, key + 1, n + 1) || strstr(list, key);
}

/* Every line of a (NAME per line) is in b; else a failure naming it. */
static int all_in(const char *a, const char *b, const char *what)
{
	const char *p, *nl;
	char name[128];

	for (p = a; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		snprintf(name, sizeof(name), "%.*s", (int)(nl - p), p);
		if (*name && !listed(b, name))
			return t_fail(__FILE__, __LINE__, "%s: %s", what, name);
	}
	return T_PASS;
}

TEST(test_symbols_match_debian)
{
	const char *src = getenv("ZC_SRCDIR"), *build = getenv("ZC_BUILD");
	char cmd[2048], *exported = NULL, *recorded = NULL;

	T_SKIP_IF(!src || !build, "ZC_SRCDIR or ZC_BUILD unset (make check)");
	T_SKIP_IF(!t_in_path("nm"), "nm is not installed (binutils)");
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && nm -D --defined-only '%s'/libzcrelay.so.[0-9]*.* "
	         "| awk '{ print $3 }' | sed 's/@.*//' | sort -u",
	         src, build);
	ASSERT_EQ(t_sh(cmd, &exported), 0);
	snprintf(cmd, sizeof(cmd),
	         "sed -n 's/^ \\([^@ ]*\\)@.*/\\1/p' "
	         "'%s/debian/libzcrelay0.symbols' | sort -u",
	         src);
	ASSERT_EQ(t_sh(cmd, &recorded), 0);
	ASSERT_TRUE(strstr(exported, "zc_splice\n"));
	ASSERT_EQ(all_in(exported, recorded,
	                 "exported but not in debian/libzcrelay0.symbols "
	                 "(add it with the version that first has it)"),
	          T_PASS);
	ASSERT_EQ(all_in(recorded, exported,
	                 "in debian/libzcrelay0.symbols but no longer "
	                 "exported (an ABI break)"),
	          T_PASS);
	free(exported);
	free(recorded);
	return T_PASS;
}

/* The one version: the Makefile's VERSION (the library's file name and
 * the .pc), zcrelay.h's ZC_VERSION_*, zcrelay -V and the top entry of
 * debian/changelog (the package version) agree. */
TEST(test_version_agrees)
{
	const char *src = getenv("ZC_SRCDIR");
	char cmd[1024], header[32], want[128], *out = NULL;

	T_SKIP_IF(!src || !t_daemon_path(), "ZC_SRCDIR or ZC_DAEMON unset");
	snprintf(header, sizeof(header), "%d.%d.%d", ZC_VERSION_MAJOR,
	         ZC_VERSION_MINOR, ZC_VERSION_PATCH);
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && sed -n 's/^VERSION := //p' Makefile && "
	         "'%s' -V && sed -n '1s/^zcrelay (\\([^)]*\\)).*/\\1/p' "
	         "debian/changelog",
	         src, t_daemon_path());
	ASSERT_EQ(t_sh(cmd, &out), 0);
	snprintf(want, sizeof(want), "%s\nzcrelay %s\n%s\n", header, header,
	         header);
	ASSERT_STREQ(out, want);
	free(out);
	return T_PASS;
}

/*
 * install.c - make install and make uninstall, run on this tree
 * ($ZC_SRCDIR, build directory $ZC_BUILD) into a scratch DESTDIR: every
 * file lands under PREFIX and SYSCONFDIR, the pkg-config file names the
 * directories the library and the header are in, the units name the
 * installed daemon and config, and uninstall takes back exactly what
 * install put there (an edited config file stays).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

static char stage[512];      /* the DESTDIR */
static int outside;          /* files found outside the allowed roots */
static int files;            /* files and symlinks found */
static const char *roots[3]; /* allowed prefixes below stage, "/usr/" */

static int walk_one(const char *path, const struct stat *sb, int type,
                    struct FTW *ftw)
{
	const char *rel = path + strlen(stage);
	int i, ok = 0;

	if (type == FTW_D || type == FTW_DP)
		return 0;
	files++;
	for (i = 0; roots[i]; i++)
		ok |= !strncmp(rel, roots[i], strlen(roots[i]));
	if (!ok || strstr(rel, "/usr/local")) {
		t_log("installed outside the prefix: %s", rel);
		outside++;
	}
	return 0;
}

/* Counts the files under stage; those outside roots are logged. */
static int walk(void)
{
	files = outside = 0;
	if (nftw(stage, walk_one, 16, FTW_PHYS) && errno != ENOENT)
		return -errno;
	return files;
}

/* Runs make TARGET in the tree with DESTDIR=stage and vars, under umask
 * 077: the installed modes must not depend on the caller's umask. */
static int make(const char *target, const char *vars)
{
	char cmd[2048];

	snprintf(
	        cmd, sizeof(cmd),
	        "(umask 077; unset MAKEFLAGS MFLAGS MAKELEVEL; make -s -C '%s' "
	        "BUILD='%s' DESTDIR='%s' %s %s >/dev/null)",
	        getenv("ZC_SRCDIR"), getenv("ZC_BUILD"), stage, vars, target);
	return t_run(cmd);
}

/* The value of "name=" in the .pc text with ${prefix} expanded, in
 * out. Returns T_PASS or T_FAIL. */
static int pc_var(const char *pc, const char *name, const char *prefix,
                  char *out, size_t size)
{
	char key[64], val[256];
	const char *at;

	snprintf(key, sizeof(key), "\n%s=", name);
	if (!strncmp(pc, key + 1, strlen(key + 1)))
		at = pc + strlen(key + 1); /* the first line */
	else if ((at = strstr(pc, key)))
		at += strlen(key);
	ASSERT_TRUE(at);
	ASSERT_EQ(sscanf(at, "%255[^\n]", val), 1);
	if (!strncmp(val, "${prefix}", 9))
		snprintf(out, size, "%s%s", prefix, val + 9);
	else
		snprintf(out, size, "%s", val);
	return T_PASS;
}

/* path (below stage) exists; with x, it is executable. */
static int has(const char *path, int x)
{
	char full[2048];

	snprintf(full, sizeof(full), "%s%s", stage, path);
	if (access(full, x ? X_OK : R_OK)) {
		t_log("missing: %s", full);
		return 0;
	}
	return 1;
}

/* The permission bits of path (below stage), or -1. */
static int mode_of(const char *path)
{
	char full[2048];
	struct stat st;

	snprintf(full, sizeof(full), "%s%s", stage, path);
	return stat(full, &st) ? -1 : (int)(st.st_mode & 07777);
}

static char *staged_text(const char *path)
{
	char full[2048];

	snprintf(full, sizeof(full), "%s%s", stage, path);
	return t_file_text(full);
}

/* The pkg-config file agrees with where the library and header are. */
static int check_pc(const char *pcpath, const char *want_libdir)
{
	char *pc, prefix[256], libdir[256], incdir[256], f[600];

	ASSERT_TRUE(pc = staged_text(pcpath));
	ASSERT_EQ(pc_var(pc, "prefix", "", prefix, sizeof(prefix)), T_PASS);
	ASSERT_EQ(pc_var(pc, "libdir", prefix, libdir, sizeof(libdir)), T_PASS);
	ASSERT_EQ(pc_var(pc, "includedir", prefix, incdir, sizeof(incdir)),
	          T_PASS);
	ASSERT_STREQ(libdir, want_libdir);
	snprintf(f, sizeof(f), "%s/libzcrelay.so", libdir);
	ASSERT_TRUE(has(f, 0));
	snprintf(f, sizeof(f), "%s/libzcrelay.a", libdir);
	ASSERT_TRUE(has(f, 0));
	snprintf(f, sizeof(f), "%s/zcrelay.h", incdir);
	ASSERT_TRUE(has(f, 0));
	snprintf(f, sizeof(f), "%s/pkgconfig/zcrelay.pc", libdir);
	ASSERT_STREQ(f, pcpath);
	free(pc);
	return T_PASS;
}

/*
 * The library directory make install uses with PREFIX=prefix: prefix/lib
 * after a plain ./configure, or the --libdir given to ./configure (the
 * Debian build gives $(PREFIX)/lib/<multiarch>), read from config.mk.
 */
static int configured_libdir(const char *prefix, char *out, size_t size)
{
	char path[600], *mk, *at, val[256];

	snprintf(out, size, "%s/lib", prefix);
	snprintf(path, sizeof(path), "%s/config.mk", getenv("ZC_SRCDIR"));
	ASSERT_TRUE(mk = t_file_text(path));
	at = strstr(mk, "\nLIBDIR = ");
	if (at && sscanf(at + 10, "%255[^\n]", val) == 1) {
		if (!strncmp(val, "$(PREFIX)", 9))
			snprintf(out, size, "%s%s", prefix, val + 9);
		else
			snprintf(out, size, "%s", val);
	}
	free(mk);
	return T_PASS;
}

static int setup(void)
{
	T_SKIP_IF(!getenv("ZC_SRCDIR") || !getenv("ZC_BUILD"),
	          "ZC_SRCDIR or ZC_BUILD unset (run by make check)");
	T_SKIP_IF(!t_in_path("make"), "make is not installed");
	snprintf(stage, sizeof(stage), "%s/stage", t_tmpdir());
	return T_PASS;
}

/* After a plain ./configure: make install PREFIX=/usr puts everything
 * under /usr and /etc, nothing under /usr/local. */
TEST_TIMEOUT(test_install_prefix_usr, 300)
{
	const char *usr = "PREFIX=/usr";
	char *unit, libdir[256], f[600];

	T_TRY(setup());
	ASSERT_EQ(configured_libdir("/usr", libdir, sizeof(libdir)), T_PASS);
	roots[0] = "/usr/";
	roots[1] = "/etc/";
	ASSERT_EQ(make("install", usr), 0);
	ASSERT_GE(walk(), 18);
	ASSERT_EQ(outside, 0);
	ASSERT_TRUE(has("/usr/bin/zcrelay", 1));
	ASSERT_TRUE(has("/usr/share/man/man8/zcrelay.8", 0));
	ASSERT_TRUE(has("/usr/share/man/man5/zcrelay.conf.5", 0));
	ASSERT_TRUE(has("/usr/share/man/man3/libzcrelay.3", 0));
	ASSERT_TRUE(has("/usr/share/bash-completion/completions/zcrelay", 0));
	ASSERT_TRUE(has("/usr/share/doc/zcrelay/examples/zcrelay.conf", 0));
	ASSERT_TRUE(has("/usr/share/doc/zcrelay/examples/join.c", 0));
	ASSERT_TRUE(has("/etc/zcrelay/zcrelay.conf", 0));
	ASSERT_TRUE(has("/usr/lib/systemd/system/zcrelay.socket", 0));
	ASSERT_EQ(mode_of("/usr/bin/zcrelay"), 0755);
	ASSERT_EQ(mode_of("/usr/lib/systemd/system/zcrelay.service"), 0644);
	ASSERT_EQ(mode_of("/etc/zcrelay/zcrelay.conf"), 0644);
	snprintf(f, sizeof(f), "%s/libzcrelay.so.0", libdir);
	ASSERT_EQ(mode_of(f), 0644);
	snprintf(f, sizeof(f), "%s/pkgconfig/zcrelay.pc", libdir);
	ASSERT_EQ(mode_of(f), 0644);
	ASSERT_EQ(check_pc(f, libdir), T_PASS);
	ASSERT_TRUE(
	        unit = staged_text("/usr/lib/systemd/system/zcrelay.service"));
	ASSERT_TRUE(strstr(unit, "\nExecStart=/usr/bin/zcrelay -c "
	                         "/etc/zcrelay/zcrelay.conf\n"));
	ASSERT_FALSE(strchr(unit, '@'));
	/* An upgrade's new process sends MAINPID=. */
	ASSERT_TRUE(strstr(unit, "\nNotifyAccess=all\n"));
	free(unit);

	ASSERT_EQ(make("uninstall", usr), 0);
	ASSERT_EQ(walk(), 0);
	return T_PASS;
}

/* LIBDIR and SYSCONFDIR given to make win over the PREFIX defaults,
 * and the .pc follows them; an edited config survives both install and
 * uninstall. */
TEST_TIMEOUT(test_install_dirs_and_config, 300)
{
	const char *vars = "PREFIX=/opt/zc LIBDIR=/opt/zc/lib64 "
	                   "SYSCONFDIR=/etc/opt/zc";
	char conf[600];
	FILE *f;

	T_TRY(setup());
	roots[0] = "/opt/zc/";
	roots[1] = "/etc/opt/zc/";
	ASSERT_EQ(make("install", vars), 0);
	ASSERT_GE(walk(), 18);
	ASSERT_EQ(outside, 0);
	ASSERT_EQ(
	        check_pc("/opt/zc/lib64/pkgconfig/zcrelay.pc", "/opt/zc/lib64"),
	        T_PASS);
	ASSERT_TRUE(has("/opt/zc/lib/systemd/system/zcrelay.service", 0));

	snprintf(conf, sizeof(conf), "%s/etc/opt/zc/zcrelay/zcrelay.conf",
	         stage);
	ASSERT_TRUE(f = fopen(conf, "a"));
	fputs("# edited\n", f);
	fclose(f);
	ASSERT_EQ(make("install", vars), 0);
	ASSERT_EQ(make("uninstall", vars), 0);
	ASSERT_EQ(walk(), 1); /* the edited config only */
	ASSERT_TRUE(has("/etc/opt/zc/zcrelay/zcrelay.conf", 0));
	return T_PASS;
}

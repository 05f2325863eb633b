/*
 * lib_compat.c - the 0.1 names of the relay options, statistics and flags
 * (deprecated in 0.2.0) still compile to the same types and values and
 * still relay, and ZC_NO_DEPRECATED hides them.
 *
 * This file uses the old names on purpose; everything else in the tree
 * uses the new ones.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "runner.h"
#include "tnet.h"

#define MIB (1024ULL * 1024ULL)

_Static_assert(sizeof(struct zc_splice_opts) == sizeof(struct zc_relay_opts),
               "zc_splice_opts is zc_relay_opts");
_Static_assert(sizeof(struct zc_splice_stats) == sizeof(struct zc_relay_stats),
               "zc_splice_stats is zc_relay_stats");
_Static_assert(ZC_SPLICE_F_KEEP_FDS == ZC_RELAY_F_KEEP_FDS,
               "ZC_SPLICE_F_KEEP_FDS keeps its value");
_Static_assert(ZC_SPLICE_F_TRUSTED == ZC_RELAY_F_TRUSTED,
               "ZC_SPLICE_F_TRUSTED keeps its value");

/* Calls the deprecated initialiser without failing a -Werror build. */
static void old_init(struct zc_splice_opts *o)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	zc_splice_opts_init(o);
#pragma GCC diagnostic pop
}

TEST(test_compat_old_init_equals_new)
{
	struct zc_splice_opts old;
	struct zc_relay_opts new;

	memset(&old, 0xa5, sizeof(old));
	memset(&new, 0x5a, sizeof(new));
	old_init(&old);
	zc_relay_opts_init(&new);
	ASSERT_MEMEQ(&old, &new, sizeof(new));
	return T_PASS;
}

/* One blocking zc_splice() written entirely with the 0.1 names. */
struct compat_call {
	int a, b, mover, rc;
	struct zc_splice_stats st;
};

static void *compat_thread(void *arg)
{
	struct compat_call *c = arg;
	struct zc_splice_opts o;

	old_init(&o);
	o.mover = c->mover;
	o.flags = ZC_SPLICE_F_KEEP_FDS; /* ignored by zc_splice: fds stay */
	c->rc = zc_splice(c->a, c->b, &o, &c->st);
	return NULL;
}

TEST_MATRIX(test_compat_old_names_relay_both_ways)
{
	struct compat_call c = {.mover = ctx->mover};
	int pa[2], pb[2];
	pthread_t th;

	ASSERT_OK(t_pair(AF_INET, pa));
	ASSERT_OK(t_pair(AF_UNIX, pb));
	c.a = pa[1];
	c.b = pb[0];
	ASSERT_EQ(pthread_create(&th, NULL, compat_thread, &c), 0);
	T_TRY(t_xfer_both_ways(pa[0], pb[1], 4 * MIB + 3, 2 * MIB + 5, 31));
	ASSERT_EQ(pthread_join(th, NULL), 0);
	ASSERT_EQ(c.rc, 0);
	ASSERT_EQ(c.st.end, ZC_END_EOF);
	ASSERT_EQ(c.st.dir[ZC_DIR_AB].bytes, 4 * MIB + 3);
	ASSERT_EQ(c.st.dir[ZC_DIR_BA].bytes, 2 * MIB + 5);
	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
	return T_PASS;
}

/* Compiles src (a C file) against the tree's header with extra flags;
 * returns the compiler's exit status, or -errno. */
static int compat_compile(const char *src, const char *flags)
{
	const char *top = getenv("ZC_SRCDIR");
	char cfile[] = "/tmp/zc-compat-XXXXXX.c", cmd[1024];
	int fd, st;

	fd = mkstemps(cfile, 2);
	if (fd < 0)
		return -errno;
	if (write(fd, src, strlen(src)) != (ssize_t)strlen(src)) {
		close(fd);
		unlink(cfile);
		return -EIO;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd),
	         "cc -std=c11 -fsyntax-only -Werror %s -I%s/include %s "
	         ">/dev/null 2>&1",
	         flags, top ? top : ".", cfile);
	st = system(cmd);
	unlink(cfile);
	if (st < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -EINTR;
}

TEST(test_compat_deprecation_is_visible)
{
	static const char old_src[] = "#include <zcrelay.h>\n"
	                              "int f(void) { struct zc_splice_opts o;\n"
	                              "  zc_relay_opts_init(&o); return "
	                              "(int)ZC_SPLICE_F_KEEP_FDS; }\n";
	static const char old_init_src[] =
	        "#include <zcrelay.h>\n"
	        "void f(struct zc_relay_opts *o) { zc_splice_opts_init(o); }\n";
	static const char new_src[] =
	        "#include <zcrelay.h>\n"
	        "void f(struct zc_relay_opts *o) { zc_relay_opts_init(o); }\n";

	if (system("command -v cc >/dev/null 2>&1") != 0)
		T_SKIP("no C compiler (cc) on PATH to compile the snippets");
	ASSERT_EQ(compat_compile(new_src, "-DZC_NO_DEPRECATED"), 0);
	ASSERT_EQ(compat_compile(old_src, ""), 0);
	/* Hidden with ZC_NO_DEPRECATED; the old initialiser warns. */
	ASSERT_TRUE(compat_compile(old_src, "-DZC_NO_DEPRECATED") > 0);
	ASSERT_TRUE(compat_compile(old_init_src, "") > 0);
	ASSERT_EQ(compat_compile(old_init_src, "-Wno-deprecated-declarations"),
	          0);
	return T_PASS;
}

/*
 * completion.c - contrib/zcrelay.bash-completion, run by bash: the
 * values it offers after --mover, --engine, --balance and --send-proxy,
 * and its option list against the options `zcrelay --help` prints (an
 * option added to the daemon without its completion fails here). With
 * the bash-completion package installed, once more through its
 * _init_completion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"
#include "tprog.h"

#define BASH_COMPLETION "/usr/share/bash-completion/bash_completion"

static char script[1024];   /* the completion file */
static const char *prelude; /* sourced first: "" or bash-completion */

/*
 * The words bash would offer for the command line words (the last one
 * being completed), one per line, sorted, in a malloc'd string (NULL on
 * failure, logged).
 */
static char *complete(const char *words)
{
	char cmd[4096], *out = NULL;
	int st;

	snprintf(cmd, sizeof(cmd),
	         "timeout 20 bash -c '%s source \"%s\"; COMP_WORDS=(%s); "
	         "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
	         "COMP_LINE=\"${COMP_WORDS[*]}\"; COMP_POINT=${#COMP_LINE}; "
	         "_zcrelay zcrelay \"${COMP_WORDS[COMP_CWORD]}\" "
	         "\"${COMP_WORDS[COMP_CWORD-1]}\"; "
	         "printf \"%%s\\n\" \"${COMPREPLY[@]}\" | sort'",
	         prelude, script, words);
	st = t_sh(cmd, &out);
	if (st != 0) {
		t_log("%s: exit %d: %s", cmd, st, out ? out : "");
		free(out);
		return NULL;
	}
	return out;
}

/* Completing words gives exactly want (sorted, one per line). */
static int expect(const char *words, const char *want)
{
	char *got = complete(words);

	ASSERT_TRUE(got);
	ASSERT_STREQ(got, want);
	free(got);
	return T_PASS;
}

/* Every --option of the daemon's --help is offered after "--". */
static int options_match_help(void)
{
	char cmd[1024], *help = NULL, *offered, *p, opt[64], line[80];
	int n = 0;

	snprintf(cmd, sizeof(cmd), "'%s' --help", t_daemon_path());
	ASSERT_EQ(t_sh(cmd, &help), 0);
	ASSERT_TRUE(offered = complete("zcrelay --"));
	for (p = help; (p = strstr(p, " --")); p += 3) {
		if (sscanf(p + 1, "--%62[a-z-]", opt) != 1)
			continue;
		snprintf(line, sizeof(line), "--%s\n", opt);
		if (!strstr(offered, line))
			return t_fail(__FILE__, __LINE__,
			              "zcrelay --help has --%s, the completion "
			              "does not offer it (contrib/"
			              "zcrelay.bash-completion)",
			              opt);
		n++;
	}
	ASSERT_GE(n, 20);
	free(help);
	free(offered);
	return T_PASS;
}

static int check_all(void)
{
	ASSERT_EQ(expect("zcrelay --mover \"\"",
	                 "auto\ncopy\nring\nsplice\nuring-splice\n"),
	          T_PASS);
	ASSERT_EQ(expect("zcrelay -e u", "uring\n"), T_PASS);
	ASSERT_EQ(expect("zcrelay --balance \"\"",
	                 "leastconn\nroundrobin\nsource\n"),
	          T_PASS);
	ASSERT_EQ(expect("zcrelay -l 127.0.0.1:1 --send-proxy \"\"", "1\n2\n"),
	          T_PASS);
	ASSERT_EQ(expect("zcrelay --max-c", "--max-conns\n"
	                                    "--max-conns-per-client\n"),
	          T_PASS);
	ASSERT_EQ(expect("zcrelay --busy-poll \"\"", "auto\noff\n"), T_PASS);
	ASSERT_EQ(expect("zcrelay --workers \"\"", "\n"), T_PASS);
	ASSERT_EQ(options_match_help(), T_PASS);
	return T_PASS;
}

static int setup(void)
{
	const char *src = getenv("ZC_SRCDIR");

	T_SKIP_IF(!src, "ZC_SRCDIR unset (run by make check)");
	T_SKIP_IF(!t_daemon_path(), "ZC_DAEMON unset (run by make check)");
	T_SKIP_IF(!t_in_path("bash"), "bash is not installed");
	snprintf(script, sizeof(script), "%s/contrib/zcrelay.bash-completion",
	         src);
	return T_PASS;
}

/* Without the bash-completion package: the completion's own fallback. */
TEST(test_completion_plain_bash)
{
	int rc = setup();

	if (rc != T_PASS)
		return rc;
	prelude = "";
	return check_all();
}

/* With it: _init_completion and _filedir. */
TEST(test_completion_bash_completion)
{
	int rc = setup();

	if (rc != T_PASS)
		return rc;
	T_SKIP_IF(access(BASH_COMPLETION, R_OK),
	          "%s missing (apt-get install bash-completion)",
	          BASH_COMPLETION);
	prelude = "source " BASH_COMPLETION ";";
	return check_all();
}

/*
 * completion.c - contrib/zcrelay.bash-completion, run by bash: the
 * values it offers after --mover, --engine, --balance and --send-proxy,
 * and its option list against the options `zcrelay --help` prints (an
 * option added to the daemon without its completion fails here); for
 * zcrelay ctl, the commands and options against `zcrelay ctl --help`, and
 * route names, upstream addresses and session ids from a running daemon.
 * With the bash-completion package installed, once more with its
 * _filedir and friends loaded.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"
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
	         "ZCRELAY_COMPLETION_TIMEOUT=10 timeout 60 bash -c "
	         "'%s source \"%s\"; COMP_WORDS=(%s); "
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

/* Each "--name" of text (a --help) after a blank (or, with brackets, a
 * '[': an optional argument in a synopsis) is a line of offered. Returns
 * how many there are, or T_FAIL naming one missing. */
static int all_offered(const char *text, const char *offered, const char *what,
                       int brackets)
{
	const char *p;
	char opt[64], line[80];
	int n = 0;

	for (p = text; (p = strstr(p, "--")); p += 2) {
		if (p == text ||
		    (p[-1] != ' ' && (!brackets || p[-1] != '[')) ||
		    sscanf(p, "--%62[a-z-]", opt) != 1)
			continue;
		snprintf(line, sizeof(line), "--%s\n", opt);
		if (!strstr(offered, line))
			return t_fail(
			        __FILE__, __LINE__,
			        "%s has --%s, the completion does not "
			        "offer it (contrib/zcrelay.bash-completion)",
			        what, opt);
		n++;
	}
	return n;
}

/* The --options in the part of `zcrelay ctl --help` the sed address
 * range selects (at least min of them) are offered for words. */
static int ctl_help_part(const char *range, const char *words, int min)
{
	char cmd[1024], *help = NULL, *offered;

	snprintf(cmd, sizeof(cmd), "'%s' ctl --help | sed -n '%s'",
	         t_daemon_path(), range);
	ASSERT_EQ(t_sh(cmd, &help), 0);
	ASSERT_TRUE(offered = complete(words));
	ASSERT_GE(all_offered(help, offered, "zcrelay ctl --help", 1), min);
	free(help);
	free(offered);
	return T_PASS;
}

/* The commands `zcrelay ctl --help` lists (two blanks, a word, a
 * blank, under "Commands:") are what ctl "" offers, sorted. */
static int ctl_commands_match_help(void)
{
	char cmd[1024], *help = NULL, *offered;

	snprintf(cmd, sizeof(cmd),
	         "'%s' ctl --help | sed -n '/^Commands:/,/^Options:/p' | "
	         "sed -n 's/^  \\([a-z][a-z]*\\) .*/\\1/p' | sort",
	         t_daemon_path());
	ASSERT_EQ(t_sh(cmd, &help), 0);
	ASSERT_GE(strlen(help), 40);
	ASSERT_TRUE(offered = complete("zcrelay ctl \"\""));
	ASSERT_STREQ(offered, help);
	free(offered);
	free(help);
	ASSERT_EQ(ctl_help_part("/^Options:/,$p", "zcrelay ctl -", 4), T_PASS);
	ASSERT_EQ(ctl_help_part("/^  sessions/,/running sessions/p",
	                        "zcrelay ctl sessions --", 5),
	          T_PASS);
	return T_PASS;
}

/* Every --option of the daemon's --help is offered after "--". */
static int options_match_help(void)
{
	char cmd[1024], *help = NULL, *offered;

	snprintf(cmd, sizeof(cmd), "'%s' --help", t_daemon_path());
	ASSERT_EQ(t_sh(cmd, &help), 0);
	ASSERT_TRUE(offered = complete("zcrelay --"));
	ASSERT_GE(all_offered(help, offered, "zcrelay --help", 0), 20);
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
	ASSERT_EQ(expect("zcrelay ct", "ctl\n"), T_PASS);
	ASSERT_EQ(expect("zcrelay ctl -s x sessions --r", "--route\n"), T_PASS);
	ASSERT_EQ(options_match_help(), T_PASS);
	ASSERT_EQ(ctl_commands_match_help(), T_PASS);
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
	T_TRY(setup());
	prelude = "";
	return check_all();
}

/* With it: _init_completion and _filedir. */
TEST(test_completion_bash_completion)
{
	T_TRY(setup());
	T_SKIP_IF(access(BASH_COMPLETION, R_OK),
	          "%s missing (apt-get install bash-completion)",
	          BASH_COMPLETION);
	prelude = "source " BASH_COMPLETION ";";
	return check_all();
}

/* Completing words after "$ZC_DAEMON ctl -s ADMIN " gives want. */
static int expect_ctl(const char *admin, const char *words, const char *want)
{
	char line[1024];

	snprintf(line, sizeof(line), "'%s' ctl -s %s %s", t_daemon_path(),
	         admin, words);
	return expect(line, want);
}

/* A relaying session through the daemon; the fds of both ends go to
 * fds[0] (client) and fds[1] (the upstream's side). */
static int open_session(const struct zc_addr *la, int ufd[2], int fds[2])
{
	int i;

	ASSERT_OK(fds[0] = t_connect(la));
	for (i = 0, fds[1] = -1; fds[1] < 0 && i < 100; i++)
		fds[1] = t_accept_ms(ufd[i % 2], 50);
	ASSERT_OK(fds[1]);
	return T_PASS;
}

/* Names from a running daemon: routes, its upstreams, session ids. */
TEST(test_completion_ctl_live)
{
	struct zc_addr la, ua[2], adm;
	struct t_dargs a;
	struct t_daemon d;
	char admin[128], up[2][128], want[300], *ids = NULL, cmd[512];
	int ufd[2], fds[2] = {-1, -1}, i;

	T_TRY(setup());
	prelude = "";
	for (i = 0; i < 2; i++) {
		ASSERT_OK(ufd[i] = t_listen(AF_INET, &ua[i]));
		ASSERT_OK(t_addr_str(&ua[i], up[i], sizeof(up[i])));
	}
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &adm));
	t_dargs_init(&a, ctx, &la, &ua[0]);
	t_dargs_addr(&a, "--upstream", &ua[1]);
	snprintf(admin, sizeof(admin), "%s", t_dargs_addr(&a, "--admin", &adm));
	ASSERT_EQ(t_daemon_up(&d, &a, &la), T_PASS);
	ASSERT_EQ(t_daemon_ready(&d, &adm, 5000), 0);

	ASSERT_EQ(expect_ctl(admin, "drain \"\"", "default\n"), T_PASS);
	snprintf(want, sizeof(want), "%s\n%s\n",
	         strcmp(up[0], up[1]) < 0 ? up[0] : up[1],
	         strcmp(up[0], up[1]) < 0 ? up[1] : up[0]);
	ASSERT_EQ(expect_ctl(admin, "weight default \"\"", want), T_PASS);
	/* bash replaces only what follows the last ':' of the word. */
	snprintf(want, sizeof(want), "%s\n", strchr(up[1], ':') + 1);
	snprintf(cmd, sizeof(cmd), "enable default %s", up[1]);
	ASSERT_EQ(expect_ctl(admin, cmd, want), T_PASS);
	snprintf(cmd, sizeof(cmd), "disable default %s \"\"", up[0]);
	ASSERT_EQ(expect_ctl(admin, cmd, "--kill\n"), T_PASS);
	ASSERT_EQ(expect_ctl(admin, "sessions --route \"\"", "default\n"),
	          T_PASS);
	ASSERT_EQ(expect_ctl(admin, "drain nosuchroute \"\"", "\n"), T_PASS);

	ASSERT_EQ(open_session(&la, ufd, fds), T_PASS);
	snprintf(cmd, sizeof(cmd),
	         "'%s' ctl -s %s --json sessions | grep -o '\"id\":[0-9]*' | "
	         "cut -d: -f2",
	         t_daemon_path(), admin);
	ASSERT_EQ(t_sh(cmd, &ids), 0);
	ASSERT_GT(strlen(ids), 1);
	ASSERT_EQ(expect_ctl(admin, "kill \"\"", ids), T_PASS);

	/* Nobody answers: nothing offered, and no hang. */
	ASSERT_EQ(expect_ctl("127.0.0.1:1", "drain \"\"", "\n"), T_PASS);
	free(ids);
	close(fds[0]);
	close(fds[1]);
	ASSERT_EQ(t_daemon_stop(&d, SIGTERM), 0);
	close(ufd[0]);
	close(ufd[1]);
	return T_PASS;
}

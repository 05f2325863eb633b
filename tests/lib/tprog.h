/*
 * tprog.h - real programs on the other end of a test (haproxy, openssl
 * s_server/s_client, curl, sshd): started in the background for the
 * test's duration, or run once with their output captured.
 */
#ifndef ZC_TEST_TPROG_H
#define ZC_TEST_TPROG_H

#include <stddef.h>
#include <sys/types.h>

/* A background program. It stays in the test's process group, so the
 * runner kills it with the test when an assert returns early. */
struct t_prog {
	pid_t pid; /* 0: not running */
	char log_path[256];
};

/*
 * t_prog_start - run the shell command cmd in the background (through
 * "exec", so p->pid is the program itself), its
 * stdout and stderr in "<name>.log" in t_tmpdir() (printed by
 * t_prog_stop when asked). Returns 0 or -errno (fork).
 */
int t_prog_start(struct t_prog *p, const char *name, const char *cmd);

/*
 * t_prog_stop - SIGTERM to p's program, then SIGKILL after 5 s;
 * reaps it. With dump set, its output goes to the test's log. Safe on a
 * program that was never started.
 */
void t_prog_stop(struct t_prog *p, int dump);

/*
 * t_sh - run the shell command cmd to completion (at most its own
 * business: callers bound it with `timeout N`), stdout and stderr in one
 * malloc'd NUL-terminated string *out (caller frees; NULL if unreadable).
 * Returns the exit code, 128 + signal, or -errno.
 */
int t_sh(const char *cmd, char **out);

#endif

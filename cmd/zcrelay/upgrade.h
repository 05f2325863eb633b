/*
 * upgrade.h - replacing the running binary without refusing a client
 * (SIGUSR2): the old process (A) starts the new one (B) and hands it its
 * listening sockets over handoff.h's protocol. docs/internals/handoff.md
 * has the sequence and the rollback cases. Main thread only.
 */
#ifndef ZCRELAY_UPGRADE_H
#define ZCRELAY_UPGRADE_H

#include <stddef.h>

/*
 * zcr_upgrade_init - at start-up, before the arguments are parsed:
 * remember the binary's path (argv[0] made absolute, through $PATH if
 * it has no '/'; not /proc/self/exe, which would run the replaced file)
 * and a copy of argv for B. If ZCRELAY_HANDOFF_FD names a socket, this
 * process is a B: the variable is unset and the socket kept. Returns 0,
 * or -errno when the path cannot be resolved (logged: SIGUSR2 will then
 * fail; the daemon runs) or the hand-over fd is not a socket (a B that
 * cannot talk to A: exit).
 */
int zcr_upgrade_init(int argc, char **argv);

/* 1 if this process was started by an upgrade (it is a B). */
int zcr_upgrade_child(void);

/*
 * zcr_upgrade_take - B, once its configuration loaded: check A's hello
 * (magic, version), answer it, and put every listening socket A sends
 * into the pool that zcr_sd_listen_take() serves (listeners.c and the
 * admin addresses take theirs by address; zcr_sd_listen_close_unused()
 * closes the rest). Returns 0 or -errno after logging; on an unknown
 * version A is told why (-EPROTONOSUPPORT) and B must exit.
 */
int zcr_upgrade_take(void);

/* zcr_upgrade_refuse - B cannot start (why: for A's log); A keeps
 * running. Closes the hand-over socket. */
void zcr_upgrade_refuse(const char *why);

/*
 * zcr_upgrade_ready - B accepts on every listener: tell A (which stops
 * accepting), write pid_file (may be NULL) with B's pid, tell systemd
 * that B is the main process now (MAINPID, READY), and wait a moment
 * for A's confirmation. Closes the hand-over socket. Returns 0, or
 * -errno if A was not told (A then takes B's failure for a rollback
 * once its time is up, while B keeps serving on the sockets both hold).
 */
int zcr_upgrade_ready(const char *pid_file);

/*
 * zcr_upgrade_run - A: start B (the binary at the path of start-up, the
 * same arguments, ZCRELAY_HANDOFF_FD) and hand it the n listening
 * sockets fds (A keeps its copies). Waits until B says it accepts on
 * them; then A must stop accepting and call zcr_upgrade_commit(). Any
 * failure (B cannot be started, fails its config check, refuses the
 * version, exits, crashes, is killed, or is not ready in time) is a
 * rollback: B is killed and reaped, nothing of A changed, and why
 * (size bytes) says what happened. Returns B's pid, or -errno.
 */
int zcr_upgrade_run(const int *fds, unsigned n, char *why, size_t size);

/* zcr_upgrade_commit - A has stopped accepting: tell B, close the
 * hand-over socket. */
void zcr_upgrade_commit(void);

#endif

/*
 * service.h - running as a service: systemd's readiness notification and
 * socket activation (the protocols themselves, no libsystemd), dropping
 * root, the pid file.
 *
 * All of it is for the main thread at startup, reload and shutdown.
 */
#ifndef ZCRELAY_SERVICE_H
#define ZCRELAY_SERVICE_H

#include <stddef.h>

#include "zcrelay.h"

/*
 * zcr_sd_notify - send state ("READY=1", "STOPPING=1", "STATUS=...",
 * several separated by newlines) as one datagram to $NOTIFY_SOCKET (a
 * path, or "@name" for the abstract namespace). Returns 0 when sent or
 * when NOTIFY_SOCKET is unset or empty (not run by systemd), -EINVAL for
 * a NULL state, -EAFNOSUPPORT for a NOTIFY_SOCKET that is neither,
 * -ENAMETOOLONG, or the -errno of socket/sendto (-ECONNREFUSED, ...).
 * The environment is left as it is: later notifications work too.
 */
int zcr_sd_notify(const char *state);

/*
 * zcr_sd_notify_reloading - "RELOADING=1" with MONOTONIC_USEC set to
 * now, as systemd wants at the start of a reload (send "READY=1" when
 * the new configuration is in force). Returns like zcr_sd_notify.
 */
int zcr_sd_notify_reloading(void);

/*
 * zcr_sd_listen_init - take the sockets systemd passed (LISTEN_PID,
 * LISTEN_FDS, descriptors from 3 on) into a pool and mark them
 * close-on-exec. LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are unset in
 * every case, so children never see them. Returns the number of fds
 * taken: 0 when the variables are unset or LISTEN_PID names another
 * process; -EINVAL for malformed values, -EBADF if a passed descriptor
 * is not open, -ENOMEM (the pool is then empty; nothing was closed).
 * Call once, before anything else opens fds.
 */
int zcr_sd_listen_init(void);

/*
 * zcr_sd_listen_take - the pooled listening stream socket bound to a:
 * TCP over IPv4 or IPv6 (same address and port), or Unix (same path, or
 * same abstract name). A wildcard 0.0.0.0:PORT also matches a dual-stack
 * [::]:PORT socket (systemd's "ListenStream=PORT") when no socket
 * matches exactly. The fd leaves the pool, is made non-blocking, and
 * belongs to the caller. Returns it, -ENOENT (none matches), or -EINVAL.
 */
int zcr_sd_listen_take(const struct zc_addr *a);

/*
 * zcr_sd_listen_adopt - add the n listening sockets fds to the pool,
 * which takes them (the old process's, handed over by an upgrade):
 * zcr_sd_listen_take() serves them as it serves systemd's. Returns 0 or
 * -ENOMEM (then the caller still owns them).
 */
int zcr_sd_listen_adopt(const int *fds, unsigned n);

/* zcr_sd_listen_count - how many sockets the pool still holds. */
unsigned zcr_sd_listen_count(void);

/*
 * zcr_sd_listen_close_unused - close the pooled sockets nobody took,
 * each with a warning naming its address, and free the pool. Call once
 * every configured listener had its chance.
 */
void zcr_sd_listen_close_unused(void);

/*
 * zcr_drop_privileges - become user (getpwnam_r) and group (getgrnam_r;
 * NULL: user's primary group), with that group as the only
 * supplementary one; real, effective and saved ids all change. Then
 * checks that root cannot be regained (setuid(0) must fail). user NULL
 * and group NULL: nothing to do. user NULL: only the group changes.
 * Running as the target user already (not root) is fine. Returns 0, or
 * -errno with a message in err (errlen bytes): -ENOENT unknown user or
 * group ("unknown user 'x'"), -EPERM not root or root still reachable,
 * or the lookup's or set*id's error. Single-threaded callers only: the
 * ids of other threads would not change (glibc does, but don't rely on
 * it), so call before the workers start.
 */
int zcr_drop_privileges(const char *user, const char *group, char *err,
                        size_t errlen);

/*
 * zcr_chown_for - give path to user (and its primary group) and/or
 * group, the ones zcr_drop_privileges() will switch to; both NULL:
 * nothing to do. Returns 0, or -errno with a message in err (unknown
 * user or group, chown failed).
 */
int zcr_chown_for(const char *path, const char *user, const char *group,
                  char *err, size_t errlen);

/*
 * zcr_check_ids - whether user and group (either may be NULL) exist, as
 * zcr_drop_privileges() would look them up, without switching to them
 * (zcrelay -n). Returns 0, or -ENOENT ("unknown user 'x'") or the
 * lookup's -errno with the reason in err. Any thread.
 */
int zcr_check_ids(const char *user, const char *group, char *err,
                  size_t errlen);

/*
 * zcr_write_pid_file - write getpid() and a newline to path, created or
 * truncated, mode 0644 (less the umask). Returns 0, or -errno with
 * "PATH: reason" in err; -EINVAL for a path that is not a regular file
 * (a FIFO is refused at once, never waited on).
 */
int zcr_write_pid_file(const char *path, char *err, size_t errlen);

/*
 * zcr_remove_pid_file - unlink path if it holds this process's pid (a
 * process that took over by an upgrade has written its own: that file
 * is not ours to remove). Returns 0, -ESRCH (another pid, or none
 * readable: left alone), or -errno of unlink.
 */
int zcr_remove_pid_file(const char *path);

#endif

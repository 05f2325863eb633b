/*
 * tdaemon.h - helpers shared by the daemon integration tests
 * (tests/integration/daemon_*.c): building a daemon command line,
 * starting the daemon and waiting until it runs, and counting lines of
 * its log.
 */
#ifndef ZC_TEST_TDAEMON_H
#define ZC_TEST_TDAEMON_H

#include "runner.h"
#include "tnet.h"

/*
 * A daemon command line under construction: v is NULL terminated and
 * can be passed to t_daemon_start as is. Addresses added with
 * t_dargs_addr are printed into str, a ring of 8 slots: at most 8 of
 * them per command line.
 */
struct t_dargs {
	const char *v[48];
	char str[8][160];
	int n, nstr;
};

/*
 * t_dargs_add - append s (not copied: it must outlive a) to a's
 * arguments. Silently ignored once v is full; v stays NULL terminated.
 */
void t_dargs_add(struct t_dargs *a, const char *s);

/*
 * t_dargs_addr - append opt and the printed form of addr ("?" if it
 * cannot be printed). Returns that form, which lives in a.
 */
const char *t_dargs_addr(struct t_dargs *a, const char *opt,
                         const struct zc_addr *addr);

/* t_dargs_listen - clear a, then add --listen la. */
void t_dargs_listen(struct t_dargs *a, const struct zc_addr *la);

/*
 * t_dargs_init - clear a, then add --listen la, --upstream ua (unless ua
 * is NULL), and the data path of ctx: --mover, and --engine unless
 * ctx->engine is ZC_ENGINE_AUTO.
 */
void t_dargs_init(struct t_dargs *a, const struct t_ctx *ctx,
                  const struct zc_addr *la, const struct zc_addr *ua);

/*
 * t_daemon_up - start the daemon with the arguments a; returns T_PASS
 * once it listens on la and has logged that its workers run (so that
 * everything it opens at startup is open), T_FAIL (asserts) if it does
 * not within 5 s.
 */
int t_daemon_up(struct t_daemon *d, const struct t_dargs *a,
                const struct zc_addr *la);
/* The same with env added to the daemon's environment (see
 * t_daemon_start_env). */
int t_daemon_up_env(struct t_daemon *d, const struct t_dargs *a,
                    const struct zc_addr *la, const char *const env[]);

/*
 * t_log_count - the number of lines of the daemon's log that contain a
 * and (if b is not NULL) b; 0 if the log cannot be read.
 */
int t_log_count(const struct t_daemon *d, const char *a, const char *b);

/*
 * t_wait_log_count - wait at most timeout_ms (polling every 10 ms) until
 * t_log_count(d, a, b) >= n. Returns the last count.
 */
int t_wait_log_count(const struct t_daemon *d, const char *a, const char *b,
                     int n, int timeout_ms);

/*
 * t_is_closed - whether r, an answer of t_wait_eof, means the connection
 * was closed: EOF or a reset.
 */
int t_is_closed(int r);

#endif

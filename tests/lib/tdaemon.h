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

/* t_daemon_up with the extras of o (see t_daemon_start_opts). */
int t_daemon_up_opts(struct t_daemon *d, const struct t_dargs *a,
                     const struct zc_addr *la, const struct t_dstart *o);

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

/*
 * t_daemon_conf - write the config file text (printf format) to
 * "zcrelay.conf" in t_tmpdir(), start the daemon with -c on it and wait
 * as t_daemon_up does, on la (any of the file's listeners). Returns
 * T_PASS, or T_FAIL (asserts).
 */
int t_daemon_conf(struct t_daemon *d, const struct zc_addr *la, const char *fmt,
                  ...) __attribute__((format(printf, 3, 4)));

/*
 * t_daemon_route1 - a listening upstream (*ulfd, at *ua), and the daemon
 * with one worker (a session's end is counted before the next client is
 * accepted) and one route "r" from a free address *la to it, on ctx's
 * engine and mover, with the route settings extra. As t_daemon_conf.
 */
int t_daemon_route1(struct t_daemon *d, const struct t_ctx *ctx,
                    struct zc_addr *la, struct zc_addr *ua, int *ulfd,
                    const char *extra);

/* t_daemon_down - the daemon still runs, then exits 0 on SIGTERM.
 * T_PASS or T_FAIL. */
int t_daemon_down(struct t_daemon *d);

/*
 * t_free_range - n consecutive TCP ports on 127.0.0.1 that were free a
 * moment ago, below the ephemeral range (see t_free_addr); *out gets the
 * first (n <= 1024). Returns 0 or -errno.
 */
int t_free_range(struct zc_addr *out, unsigned n);

/*
 * t_listen_at - a listening socket bound to exactly a (with
 * SO_REUSEADDR): an upstream that comes back on the address of a
 * t_free_addr. Returns the fd or -errno.
 */
int t_listen_at(const struct zc_addr *a);

/*
 * t_connect_from - t_connect to a (IPv4) from the local address src,
 * such as "127.0.0.2": every 127/8 address is local on Linux loopback.
 * src NULL: t_connect. Returns the fd or -errno.
 */
int t_connect_from(const struct zc_addr *a, const char *src);

/*
 * t_accept_any - wait at most timeout_ms for a connection on any of the
 * n listening sockets lfds and accept it; *which (may be NULL) gets its
 * index. Returns the fd, -ETIMEDOUT or -errno.
 */
int t_accept_any(const int *lfds, int n, int timeout_ms, int *which);

/*
 * t_ping - a byte from c to u and one back: the session c <-> u relays,
 * so the daemon has started its relay. T_PASS or T_FAIL.
 */
int t_ping(int c, int u);

/*
 * t_session - a client of the daemon on la (from src, see
 * t_connect_from) whose session reached one of the n upstream listeners
 * lfds within 2 s and relays (t_ping). *c and *u get the client's and
 * the upstream's fds (the caller closes them), *which (may be NULL) the
 * upstream's index. T_PASS or T_FAIL.
 */
int t_session(const struct zc_addr *la, const char *src, const int *lfds, int n,
              int *c, int *u, int *which);

/*
 * t_expect_closed - a client of la (from src, see t_connect_from) that
 * the daemon must close (EOF or reset) within max_ms of its connect;
 * the time taken goes to *ms. T_PASS or T_FAIL.
 */
int t_expect_closed(const struct zc_addr *la, const char *src, int max_ms,
                    uint64_t *ms);

/*
 * t_xfer_both - nbytes from c to u and nbytes from u to c at the same
 * time (streams seed and seed + 1), each sender shutting down its write
 * side when done; checks the counts, the EOFs and the SHA-256 digests
 * against the streams. The fds stay open. T_PASS or T_FAIL.
 */
int t_xfer_both(int c, int u, uint64_t nbytes, uint64_t seed);

/*
 * An upstream that does not answer: a TCP listener with backlog 0 whose
 * accept queue is full of connections nobody accepts, so the kernel
 * drops further SYNs and a connect to a neither completes nor fails for
 * a while.
 */
struct t_blackhole {
	int lfd;
	int fill[3];
	struct zc_addr a;
};

/* t_blackhole_open - opens b. Returns T_PASS, T_SKIP if this kernel
 * still completes connects there, or T_FAIL; b is closed unless T_PASS. */
int t_blackhole_open(struct t_blackhole *b);

/* Closes what t_blackhole_open opened. */
void t_blackhole_close(struct t_blackhole *b);

/* ------------------------------------------------------------------ */
/* Config files, log files, the admin endpoint (daemon_proxy.c,         */
/* daemon_reload.c, daemon_metrics.c, daemon_service.c)                 */

/* Fails unless the NUL-terminated s contains sub. */
#define ASSERT_HAS(s, sub)                                                     \
	do {                                                                   \
		const char *t_s_ = (s), *t_sub_ = (sub);                       \
		if (!strstr(t_s_, t_sub_))                                     \
			return t_fail(__FILE__, __LINE__,                      \
			              "\"%s\" not in \"%s\"", t_sub_, t_s_);   \
	} while (0)

/* The data path of ctx as config file text: the top-level setting
 * "engine = \"epoll\";" ("" for auto), and a route's mover value. */
const char *t_cfg_engine(const struct t_ctx *ctx);
const char *t_cfg_mover(const struct t_ctx *ctx);

/* t_dargs_cfg - clear a, then add -c path (not copied). */
void t_dargs_cfg(struct t_dargs *a, const char *path);

/*
 * t_daemon_up_cfg - write text to the file name in t_tmpdir() (its path
 * goes to path, size bytes: the daemon rereads it on SIGHUP), then start
 * the daemon with -c path and wait as t_daemon_up does for la. Its log
 * must go to stderr (no log.file).
 */
int t_daemon_up_cfg(struct t_daemon *d, const char *name, const char *text,
                    char *path, size_t size, const struct zc_addr *la);

/* t_file_count - t_log_count for the lines of the file path. */
int t_file_count(const char *path, const char *a, const char *b);

/*
 * t_wait_file_line - wait at most timeout_ms (polling every 10 ms) for a
 * line of the file path containing a and (unless NULL) b; copy the
 * first such line, without its newline, to line (size bytes). Returns 0
 * or -ETIMEDOUT. t_wait_log_line does it for the daemon's log.
 */
int t_wait_file_line(const char *path, const char *a, const char *b, char *line,
                     size_t size, int timeout_ms);
int t_wait_log_line(const struct t_daemon *d, const char *a, const char *b,
                    char *line, size_t size, int timeout_ms);

/*
 * t_ping_pong - c is a client relayed to the upstream's side u, and has
 * sent the n bytes at sent (n <= 16): u must read exactly them and answer
 * "pong", which c must read; then c closes, u must see EOF and closes.
 */
int t_ping_pong(int c, int u, const char *sent, size_t n);

/*
 * t_http_get - send "GET path HTTP/1.0" to a and read the response until
 * the server closes (at most 5 s). Returns the status code (200, ...)
 * and stores the malloc'd, NUL-terminated body in *body (caller frees;
 * NULL allowed if not wanted), or -errno / -EPROTO (no status line).
 */
int t_http_get(const struct zc_addr *a, const char *path, char **body);

/* t_http_get with another method, and extra header lines (each ending in
 * CRLF; NULL: none). */
int t_http(const struct zc_addr *a, const char *method, const char *path,
           const char *extra, char **body);

/*
 * t_json_check - parse json with python3's json module into d and check
 * the Python expression expr on it ("d['ok'] and len(d['errors']) == 0").
 * T_PASS, or T_FAIL (logged) when it does not parse, expr is false or
 * python3 is missing (a test dependency, see README).
 */
int t_json_check(const char *json, const char *expr);

/* t_json_num - the number after the nth (from 0) "key": in json; -1 if
 * there is none. For ids and counters the test acts on. */
long long t_json_num(const char *json, const char *key, int nth);

/*
 * t_metric - the value of the sample in the Prometheus text body whose
 * line starts with sample and a space, sample being the name with its
 * labels as rendered ("zcrelay_route_sessions_total{route=\"r\"}").
 * Returns it, or -1 if there is no such line.
 */
long long t_metric(const char *body, const char *sample);

/* t_file_text - the whole file at path as a malloc'd, NUL-terminated
 * string (caller frees), or NULL if it cannot be read. */
char *t_file_text(const char *path);

/*
 * t_expect_exit - run the daemon with argv, wait at most 5 s for it to
 * exit (then kill it) and check that its status is want and that its
 * whole output (stdout and stderr) is out exactly (exact) or contains
 * it. T_PASS or T_FAIL.
 */
int t_expect_exit(const char *const argv[], int want, const char *out,
                  int exact);

/* The value of sample (name and labels) in body must be want. */
#define ASSERT_METRIC(body, want, ...)                                         \
	do {                                                                   \
		char t_m_[256];                                                \
		snprintf(t_m_, sizeof(t_m_), __VA_ARGS__);                     \
		if (t_metric(body, t_m_) != (long long)(want))                 \
			return t_fail(__FILE__, __LINE__,                      \
			              "%s is %lld, not %lld", t_m_,            \
			              t_metric(body, t_m_),                    \
			              (long long)(want));                      \
	} while (0)

/* t_in_path - 1 if prog is an executable file in $PATH, else 0. */
int t_in_path(const char *prog);

/*
 * t_run - run the shell command cmd with its output in a file of
 * t_tmpdir(). Returns 0 if it exited 0 and printed nothing; otherwise
 * logs the output (t_log) and returns its exit code (1 if it was 0 but
 * printed something, 128 if it did not exit), or -ENOMEM.
 */
int t_run(const char *cmd);

#endif

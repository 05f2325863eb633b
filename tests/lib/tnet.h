/*
 * tnet.h - helpers for integration tests: loopback and Unix sockets,
 * checked transfers on threads, a zc_loop on a thread, the daemon.
 *
 * All functions return >= 0 on success and -errno on failure, like the
 * library. Every fd they create is close-on-exec and owned by the caller
 * unless said otherwise. Nothing here uses libzcrelay except the loop
 * harness (and zc_addr_format), so the fixtures do not depend on the code
 * they test.
 */
#ifndef ZC_TEST_TNET_H
#define ZC_TEST_TNET_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zcrelay.h"
#include "runner.h"

#define T_SHA256_LEN 32

/* ------------------------------------------------------------------ */
/* Time and fds                                                         */

/* Monotonic clock. */
uint64_t t_now_ms(void);
uint64_t t_now_ns(void);
void t_sleep_ms(unsigned ms);

/* Number of open fds of this process, or -errno. */
int t_fd_count(void);
/* Number of open fds that are pipes ("pipe:[...]"), or -errno. */
int t_pipe_count(void);

/*
 * t_write_tmp - write text to the file name inside t_tmpdir(); the full
 * path goes to path (size bytes). Returns 0 or -errno. The runner removes
 * the file with the test's directory.
 */
int t_write_tmp(const char *name, const char *text, char *path, size_t size);

/* ------------------------------------------------------------------ */
/* Sockets. All fds are blocking and close-on-exec.                     */

/* 1 if a socket can be bound on ::1, else 0 (use with T_SKIP_IF). */
int t_have_ipv6(void);

/*
 * t_listen - a listening socket of family AF_INET (127.0.0.1), AF_INET6
 * (::1), on an ephemeral port, or AF_UNIX (a socket "s" in a new
 * directory under t_tmpdir()). Its address goes to *out. Returns the fd
 * or -errno. For AF_UNIX, t_cleanup_unix(out) removes the file and the
 * directory (the runner also removes them when the test ends).
 */
int t_listen(int family, struct zc_addr *out);

/*
 * t_free_addr - an address of family nobody listens on yet, for a daemon
 * to bind: a TCP port below the ephemeral range that was free a moment
 * ago (bound then closed), or
 * a path in a new directory (no file). Returns 0 or -errno.
 */
int t_free_addr(int family, struct zc_addr *out);

/* Removes the socket file of a Unix address from t_listen/t_free_addr
 * and its directory. Harmless for other families and repeated calls. */
void t_cleanup_unix(const struct zc_addr *a);

/* t_connect - a blocking connect to a. Returns the fd or -errno. */
int t_connect(const struct zc_addr *a);

/*
 * t_accept - accept one connection on the listening socket lfd, waiting
 * at most 10 s (t_accept_ms: timeout_ms, -1 without limit). Returns a
 * blocking fd, or -ETIMEDOUT or -errno.
 */
int t_accept(int lfd);
int t_accept_ms(int lfd, int timeout_ms);

/*
 * t_pair - a connected pair of the family through a temporary listener:
 * fds[0] the client, fds[1] the accepted server side. Returns 0 or -errno;
 * on failure nothing is left open.
 */
int t_pair(int family, int fds[2]);

/* Writes all of buf (MSG_NOSIGNAL on sockets). Returns 0 or -errno. */
int t_write_all(int fd, const void *buf, size_t len);

/*
 * t_read_full - read until len bytes, EOF, or timeout_ms (-1: none)
 * without progress. Returns the count (< len only at EOF), -ETIMEDOUT or
 * -errno.
 */
ssize_t t_read_full(int fd, void *buf, size_t len, int timeout_ms);

/*
 * t_wait_eof - wait at most timeout_ms for the peer's end on fd: returns
 * 0 on EOF, -ECONNRESET (or another -errno) on an error, 1 if data
 * arrived instead (it is left unread), -ETIMEDOUT.
 */
int t_wait_eof(int fd, int timeout_ms);

/* Sets SO_LINGER {1, 0}: the next close() sends a reset. 0 or -errno. */
int t_set_linger0(int fd);

/* Adds O_NONBLOCK to fd's flags. 0 or -errno. */
int t_set_nonblock(int fd);

/* 0 if fd is an open descriptor, else -EBADF. */
int t_fd_open(int fd);

/* Formats a with zc_addr_format(). Returns its result. */
int t_addr_str(const struct zc_addr *a, char *buf, size_t size);

/* ------------------------------------------------------------------ */
/* A deterministic byte stream: xoshiro256** seeded by splitmix64.      */

struct t_rng {
	uint64_t s[4];
	uint8_t left[8]; /* bytes of the last word not handed out yet */
	unsigned nleft;
};

/* Seeds r; the same seed always gives the same stream. */
void t_rng_init(struct t_rng *r, uint64_t seed);
/* Next len bytes of the stream; how the stream is cut into calls does
 * not change the bytes. */
void t_rng_fill(struct t_rng *r, void *buf, size_t len);
/* SHA-256 of the first nbytes of stream seed, without I/O. */
void t_expect_digest(uint64_t seed, uint64_t nbytes,
                     unsigned char out[T_SHA256_LEN]);

/* ------------------------------------------------------------------ */
/* Transfer threads                                                     */

#define T_XFER_SHUT_WR 0x1 /* sender: shutdown(SHUT_WR) when done */
#define T_XFER_CLOSE   0x2 /* sender: close(fd) when done (takes it) */

/*
 * One sending or receiving thread. Results are valid after t_xfer_join.
 * The struct needs no initialisation; t_*_start fills it.
 */
struct t_xfer {
	/* results */
	uint64_t bytes;                     /* moved */
	unsigned char digest[T_SHA256_LEN]; /* SHA-256 of those bytes */
	int err;                            /* 0 or -errno of the failure */
	int eof;                            /* receiver: saw EOF */
	uint64_t elapsed_ns;                /* from start to the end */

	/* private */
	pthread_t th;
	int fd;
	int sender;
	unsigned flags;
	uint64_t count; /* sender: bytes to send; receiver: limit */
	uint64_t seed;
	size_t chunk;
	unsigned pause_us;
	int joined;
};

/*
 * t_sender_start - a thread writing the first nbytes of stream seed to
 * fd, then acting on flags (T_XFER_SHUT_WR, T_XFER_CLOSE). Without
 * T_XFER_CLOSE the caller keeps fd and must not close it before
 * t_xfer_join. Returns 0 or -errno (no thread then, fd untouched).
 */
int t_sender_start(struct t_xfer *x, int fd, uint64_t nbytes, uint64_t seed,
                   unsigned flags);

/*
 * t_receiver_start - a thread reading fd until EOF, an error, or limit
 * bytes (0: no limit), hashing what it reads. x->err records the error
 * (-ECONNRESET, ...). The caller keeps fd. Returns 0 or -errno.
 */
int t_receiver_start(struct t_xfer *x, int fd, uint64_t limit);

/* The same, at most chunk bytes per write/read and pause_us between
 * them: slow senders and slow consumers. */
int t_sender_start_paced(struct t_xfer *x, int fd, uint64_t nbytes,
                         uint64_t seed, unsigned flags, size_t chunk,
                         unsigned pause_us);
int t_receiver_start_paced(struct t_xfer *x, int fd, uint64_t limit,
                           size_t chunk, unsigned pause_us);

/*
 * t_xfer_join - wait for the thread; returns x->err. t_xfer_join_ms gives
 * up after timeout_ms with -ETIMEDOUT (the thread keeps running; only
 * t_xfer_join may follow).
 */
int t_xfer_join(struct t_xfer *x);
int t_xfer_join_ms(struct t_xfer *x, int timeout_ms);

/*
 * t_xfer_check - send n bytes of stream seed on from (then SHUT_WR) and
 * read to at the same time until EOF. Returns T_PASS if exactly those
 * bytes arrived, T_FAIL (printed) otherwise. The caller keeps both fds.
 */
int t_xfer_check(int from, int to, uint64_t n, uint64_t seed);
/* The same without the FIN: to reads exactly n bytes, and both
 * directions stay open. */
int t_xfer_check_open(int from, int to, uint64_t n, uint64_t seed);

/*
 * t_xfer_both_ways - up bytes of stream seed from c to u and down bytes
 * of stream seed + 1 from u to c at the same time, each followed by
 * SHUT_WR. Waits at most 60 s for each of the four threads; returns
 * T_PASS if exactly those bytes, then EOF, arrived at each end, T_FAIL
 * (printed) otherwise. The caller keeps both fds.
 */
int t_xfer_both_ways(int c, int u, uint64_t up, uint64_t down, uint64_t seed);

/* ------------------------------------------------------------------ */
/* A zc_loop running on its own thread                                  */

/*
 * The loop is created, run and freed on its thread, which owns it: other
 * threads act on it only through t_loop_call/zc_loop_post.
 * Env T_LOG=err|warn|info|debug sends the library log to stderr.
 */
struct t_loop {
	struct zc_loop *loop;
	int err; /* zc_loop_new's, then zc_loop_run's result */

	/* private */
	pthread_t th;
	struct zc_loop_opts opts;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state; /* 0 starting, 1 running, 2 stop requested */
};

/*
 * t_loop_start - create a loop with engine ctx->engine (ctx NULL: auto)
 * and run it on a new thread. Returns 0, or zc_loop_new's error
 * (ZC_ENOURING, ...) with no thread left behind.
 */
int t_loop_start(struct t_loop *l, const struct t_ctx *ctx);
/* The same with all the options (opts NULL: defaults). */
int t_loop_start_opts(struct t_loop *l, const struct zc_loop_opts *opts);

/*
 * t_loop_stop - stop the loop, which then aborts its relays (their done
 * callbacks run) and frees itself on its thread; join the thread.
 * Returns zc_loop_run's result.
 */
int t_loop_stop(struct t_loop *l);

/* Runs fn(loop, arg) on the loop thread and waits until it returned.
 * Returns 0 or zc_loop_post's error. */
int t_loop_call(struct t_loop *l, zc_post_fn *fn, void *arg);

/* zc_loop_get_stats, from any thread. Returns 0 or -errno. */
int t_loop_stats(struct t_loop *l, struct zc_loop_stats *st);

/*
 * The end of one relay. t_done_cb is a zc_relay_done_fn that fills it;
 * t_relay_run sets everything up. Needs no cleanup.
 */
struct t_done {
	int calls;                /* times done was called: should be 1 */
	struct zc_relay_stats st; /* what done received */
	int start_err;            /* zc_relay_start's result */
	struct zc_relay *relay;   /* loop thread only; NULL once ended */

	/* private */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* Prepares d for t_done_cb (t_relay_run does it). */
void t_done_init(struct t_done *d);
/* zc_relay_done_fn: arg is a struct t_done. */
void t_done_cb(void *arg, const struct zc_relay_stats *st);

/*
 * t_relay_run - start a relay fd_a <-> fd_b on l's thread with the given
 * mover and idle timeout, reporting to done. Waits for zc_relay_start and
 * returns its result: on success the relay owns the fds (closes them at
 * its end), on failure the caller still does.
 */
int t_relay_run(struct t_loop *l, int fd_a, int fd_b, int mover,
                unsigned idle_ms, struct t_done *done);
/* The same with full options (NULL: defaults). */
int t_relay_run_opts(struct t_loop *l, int fd_a, int fd_b,
                     const struct zc_relay_opts *opts, struct t_done *done);

/* Waits at most timeout_ms (-1: no limit) for done to be called.
 * Returns 0 or -ETIMEDOUT. */
int t_done_wait(struct t_done *d, int timeout_ms);

/* zc_relay_close on the loop thread if the relay still runs. Returns 0,
 * or -ESRCH if it had already ended. */
int t_relay_close(struct t_loop *l, struct t_done *d);

/* zc_relay_get_stats of a running relay into st. Returns 0, or -ESRCH
 * if it has ended (st then holds the final stats). */
int t_relay_stats(struct t_loop *l, struct t_done *d,
                  struct zc_relay_stats *st);

/* ------------------------------------------------------------------ */
/* The daemon ($ZC_DAEMON)                                              */

/*
 * A started daemon. Its stdout and stderr go to a file "*.log" in
 * t_tmpdir(), which the runner prints when the test fails. It runs in the
 * test's process group and dies with the test.
 */
struct t_daemon {
	pid_t pid;  /* 0 once reaped */
	int status; /* after wait/stop: exit code, or 128 + signal */
	char log_path[256];
};

/* $ZC_DAEMON, or NULL when unset (use with T_SKIP_IF). */
const char *t_daemon_path(void);

/*
 * t_daemon_start - run $ZC_DAEMON with the arguments argv (NULL
 * terminated, without argv[0]). Returns 0 once exec succeeded, -ENOENT
 * if ZC_DAEMON is unset, or the -errno of fork/exec.
 */
int t_daemon_start(struct t_daemon *d, const char *const argv[]);

/* What t_daemon_start_opts adds to a plain start. */
struct t_dstart {
	/* "NAME=value" strings (borrowed, NULL-terminated; NULL: none)
	 * set in the daemon's environment, replacing the test's own. */
	const char *const *env;
	/* > 2: this socket becomes the daemon's fd 3, with LISTEN_FDS=1
	 * and LISTEN_PID=<the daemon's pid> (unless env sets them): socket
	 * activation. The test keeps its own copy. 0: none. */
	int listen_fd;
};

/* t_daemon_start with the extras of o (NULL: none). Returns the same;
 * also -ENOMEM. */
int t_daemon_start_opts(struct t_daemon *d, const char *const argv[],
                        const struct t_dstart *o);

/*
 * t_daemon_start_env - the same, with env ("NAME=value" strings, NULL
 * terminated; NULL: none) added to or replacing this process's
 * environment in the daemon's.
 */
int t_daemon_start_env(struct t_daemon *d, const char *const argv[],
                       const char *const env[]);

/*
 * t_daemon_wait - wait at most timeout_ms for the daemon to exit by
 * itself. Returns its status (exit code, or 128 + signal) or -ETIMEDOUT
 * (it still runs).
 */
int t_daemon_wait(struct t_daemon *d, int timeout_ms);

/*
 * t_daemon_stop - send sig (0: none) and wait at most 10 s. Returns the
 * status like t_daemon_wait, or -ETIMEDOUT after which it was killed
 * with SIGKILL and reaped.
 */
int t_daemon_stop(struct t_daemon *d, int sig);

/* The daemon's output so far as a malloc'd string (caller frees), or
 * NULL. */
char *t_daemon_log(const struct t_daemon *d);

/*
 * t_daemon_ready - wait at most timeout_ms until something listens on a
 * (see t_wait_listen) while the daemon is alive. Returns 0, -ETIMEDOUT,
 * or -ECHILD if the daemon exited (d->status says how).
 */
int t_daemon_ready(struct t_daemon *d, const struct zc_addr *a, int timeout_ms);

/*
 * t_wait_port - poll with connects (every 10 ms, at most timeout_ms)
 * until one succeeds. Returns 0 or -ETIMEDOUT. Beware: on a relay the
 * probe connection is real and reaches the upstream; prefer
 * t_wait_listen.
 */
int t_wait_port(const struct zc_addr *a, int timeout_ms);

/*
 * t_wait_listen - poll /proc/net/{tcp,tcp6,unix} (every 10 ms, at most
 * timeout_ms) until a socket listens on a's port (TCP, any local
 * address) or path (Unix). Connects nowhere. Returns 0 or -ETIMEDOUT.
 */
int t_wait_listen(const struct zc_addr *a, int timeout_ms);

#endif

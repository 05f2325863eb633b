/*
 * tfault.h - the daemon under the zcfault shim (tests/fault/zcfault.c),
 * for tests/integration/fault_*.c: start it preloaded with a fault spec,
 * change the faults while it runs, read what the shim injected, check
 * that its fds (pipes included) are back to where they started.
 *
 * Every daemon here runs one worker (so sessions share one loop) and an
 * admin endpoint, whose /metrics tell how many pipes the pool caches.
 */
#ifndef ZC_TEST_TFAULT_H
#define ZC_TEST_TFAULT_H

#include "tdaemon.h"

#define T_FAULT_NO_SO "ZC_FAULT_SO not set (run through make check)"

struct t_fault {
	struct t_daemon d;
	struct zc_addr la;    /* where the daemon listens */
	struct zc_addr admin; /* its metrics endpoint */
	struct zc_addr ua;    /* the upstream of t_fault_open/start */
	int ulfd;             /* its listener, -1 before */
	char ctl[256];        /* ZCF_FILE */
	char stats[256];      /* ZCF_STATS */
	int base_fds, base_pipes;

	/* private */
	char env[6][320];
};

/*
 * t_fault_skip - the reason the fault tests cannot run here (no shim, or
 * a sanitizer build that cannot preload it), or NULL.
 */
const char *t_fault_skip(void);

/*
 * t_fault_io_skip - t_fault_skip, or for faults of the calls that move
 * bytes (splice, recv, send, pipes) on ctx's data path: the ring and
 * uring-splice movers move them with io_uring requests, which the shim
 * cannot fail.
 */
const char *t_fault_io_skip(const struct t_ctx *ctx);

/*
 * t_fault_pipe_skip - t_fault_skip, or for faults of the pipe pool's
 * calls (pipe2, F_SETPIPE_SZ) on ctx's data path: the ring mover uses no
 * pipes (the copy mover's tests say so themselves).
 */
const char *t_fault_pipe_skip(const struct t_ctx *ctx);

/*
 * t_fault_open - the set-up every fault test shares, up to the daemon's
 * start: skip with the reason skip unless it is NULL (t_fault_skip() or
 * one of its kin, for the test's data path), an upstream listener
 * (f->ulfd on f->ua), a fresh TCP address f->la for the daemon, and a
 * initialised for ctx with both; the test adds arguments and calls
 * t_fault_up. Returns T_PASS, T_SKIP or T_FAIL.
 */
int t_fault_open(struct t_fault *f, const struct t_ctx *ctx, const char *skip,
                 struct t_dargs *a);

/* t_fault_start - t_fault_open, then t_fault_up with the rules spec. */
int t_fault_start(struct t_fault *f, const struct t_ctx *ctx, const char *skip,
                  const char *spec);

/*
 * t_fault_end - the shared end of a test that passed: close f->ulfd,
 * wait until the daemon has settled (t_fault_settled), then t_fault_down
 * (what). Returns T_PASS or T_FAIL.
 */
int t_fault_end(struct t_fault *f, const struct t_ctx *ctx, const char *what);

/*
 * t_fault_up - start the daemon with the arguments a (t_dargs_init'ed
 * with f->la), one worker, an admin endpoint, and the shim preloaded with
 * the rules spec (may be ""). Returns T_PASS once it accepts and its fd
 * count is known, T_FAIL otherwise.
 */
int t_fault_up(struct t_fault *f, struct t_dargs *a, const char *spec);

/*
 * t_fault_env - the environment of a daemon under the shim with the
 * rules spec (ZCF; ZCF_FILE and ZCF_STATS in t_tmpdir(), for
 * t_fault_set and t_fault_count): env gets pointers into f, NULL
 * terminated. t_fault_up uses it; for daemons it does not start.
 */
void t_fault_env(struct t_fault *f, const char *spec, const char *env[8]);

/*
 * t_fault_set - replace the run-time rules (ZCF_FILE) with spec ("" for
 * none) and give the shim time to read them (it looks every 10 ms on any
 * wrapped call). Returns T_PASS or T_FAIL.
 */
int t_fault_set(struct t_fault *f, const char *spec);

/*
 * t_fault_count - what the shim counted for label ("splice:EINVAL"):
 * injections, or with calls != NULL also the calls that matched. -1 if
 * the label is not (yet) in the stats file.
 */
long t_fault_count(const struct t_fault *f, const char *label, long *calls);

/* Waits at most timeout_ms until t_fault_count(f, label) >= n; returns
 * the last count. */
long t_fault_wait(const struct t_fault *f, const char *label, long n,
                  int timeout_ms);

/*
 * t_fault_metric - the sum over workers of the metric name (a sample
 * line "name{...} v" or "name v"), or -1 if /metrics has none.
 * Snapshots are up to 500 ms old.
 */
long long t_fault_metric(const struct t_fault *f, const char *name);

/* Waits at most 2 s (snapshots are refreshed every 500 ms) until
 * t_fault_metric(f, name) >= min; returns the last value. */
long long t_fault_metric_wait(const struct t_fault *f, const char *name,
                              long long min);

/*
 * t_fault_settled - wait (at most 10 s) until the daemon has no session,
 * no pipe in use, and exactly the fds it had after start plus two per
 * pipe its pool caches (pipes counted apart as well). Returns T_PASS, or
 * T_FAIL with the counts.
 */
int t_fault_settled(struct t_fault *f);

/* The daemon's CPU time (user + system, all threads) in ms, or -1. */
long t_fault_cpu_ms(const struct t_fault *f);

/*
 * t_fault_down - SIGTERM, expect exit 0; then log the shim's counts
 * (and append them, with what, to $ZC_FAULT_REPORT if set). Returns
 * T_PASS or T_FAIL.
 */
int t_fault_down(struct t_fault *f, const struct t_ctx *ctx, const char *what);

/* A table row (TEST_MATRIX_TABLE) for tests run once per injected
 * errno: the row's name, and the errno's name ("EMFILE"). */
struct t_errno_row {
	const char *name;
	const char *errname;
};

/* The port of an AF_INET/AF_INET6 address, 0 for others. */
int ntohs_port(const struct zc_addr *a);

/* The errno an errno name stands for ("EMFILE"), 0 if unknown here. */
int errno_of(const char *name);

/* The local port of a socket (the daemon's peer port for a client). */
int t_local_port(int fd);

/* A client connected through the daemon, and the upstream's side. */
struct t_pair2 {
	int c, u;
};

/* Connects to f->la and accepts on the upstream listener ulfd. */
int t_pair2_open(struct t_fault *f, int ulfd, struct t_pair2 *p);
void t_pair2_close(struct t_pair2 *p);

/*
 * t_pair2_start - up bytes client -> upstream and down bytes upstream ->
 * client at once (streams seed and seed + 1), each ending with a FIN.
 * t_pair2_finish waits at most timeout_ms and asserts both arrived
 * complete, byte-exact (SHA-256) and followed by EOF. t_pair2_xfer does
 * both.
 */
struct t_xfer4 {
	struct t_xfer tx_up, rx_up, tx_down, rx_down;
	uint64_t up, down, seed;
};
int t_pair2_start(struct t_pair2 *p, struct t_xfer4 *x, uint64_t up,
                  uint64_t down, uint64_t seed);
int t_pair2_finish(struct t_xfer4 *x, int timeout_ms);
int t_pair2_xfer(struct t_pair2 *p, uint64_t up, uint64_t down, uint64_t seed,
                 int timeout_ms);

/*
 * t_fault_session - wait at most 5 s for the daemon's session line of
 * the client whose local port is port; copied to line. T_PASS/T_FAIL.
 */
int t_fault_session(const struct t_fault *f, int port, char *line, size_t size);

#define T_FAULT_MAXSESS 4
#define T_FAULT_LINE    1024

/*
 * t_fault_sessions - n (at most T_FAULT_MAXSESS) sessions through f (to
 * the upstream f->ulfd), all opened, then all moving up bytes client ->
 * upstream and down bytes back at once (t_pair2_start, session i with
 * seed + 2 * i); each must arrive complete and byte-exact within 60 s,
 * and its session line, copied to line[i], must say it ended with EOF
 * after exactly those byte counts. Returns T_PASS or T_FAIL.
 */
int t_fault_sessions(struct t_fault *f, int n, uint64_t up, uint64_t down,
                     uint64_t seed, char line[][T_FAULT_LINE]);

#endif

/*
 * daemon.h - the daemon's shared declarations (not the library's).
 *
 * Error convention, as in the library: a function that can fail returns
 * an int, >= 0 on success (0, a count, an fd, an index) and -errno on
 * failure (-EINVAL for bad input, with the message printed, logged or
 * in an err buffer as its comment says). Predicates (zcr_*_admits,
 * zcr_*_is, zcr_route_trusts, ...) answer 1 or 0 and never fail.
 */
#ifndef ZCRELAY_DAEMON_H
#define ZCRELAY_DAEMON_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "cfg.h"
#include "zcrelay.h"

/* What the command line asked for, besides the configuration. */
struct zcr_opts {
	const char *cfg_path; /* -c FILE; NULL: routes from the command line */
	int check_only;       /* -n: check the configuration and exit */
	int quiet, verbose;   /* -q, -v: override the file's log settings */
};

/*
 * A listening address, shared by the workers: one socket per worker with
 * SO_REUSEPORT (TCP: the kernel spreads the clients), or one socket all
 * workers watch (Unix). Reference counted: the main thread holds one
 * while the address is configured, each worker one while it accepts.
 */
struct zcr_lsock {
	struct zc_addr addr;
	char str[ZCR_ADDR_STR];
	int shared;    /* one socket for all workers, in fds[0] */
	int inherited; /* from systemd: its SocketMode= rules the file */
	unsigned mode; /* Unix path: the file mode set (unix-mode) */
	int refs;
	int *fds; /* per worker (REUSEPORT) */
	unsigned nfds;
};

/* The listeners of one generation, one per address, in the order of
 * the configuration: ls[i] feeds listener group group[i] (the routes
 * that share its address, cfg->groups). */
struct zcr_lset {
	struct zcr_lsock **ls;
	unsigned *group;
	unsigned n;
};

struct zcr_session;
struct zcr_wl;

/* A worker thread: its own loop, listeners and sessions. */
struct zcr_worker {
	int id;
	int engine; /* zc_loop_engine() of loop, for /status */
	pthread_t th;
	struct zcr_cfg *cfg; /* generation for new sessions (worker thread) */
	struct zc_loop *loop;
	struct zcr_wl *wls; /* listeners this worker accepts on */
	struct zc_timer *snap_timer;
	/* The length of w->sessions (accept to end); kept by session.c's
	 * list_add/list_del only. */
	unsigned nsessions;
	int draining;
	int joined;         /* main thread: thread joined */
	pthread_mutex_t mu; /* guards loop against posts after exit, snap */
	struct zc_loop_stats snap; /* loop stats, refreshed every 500 ms */
	uint64_t snap_sessions;
	struct zcr_session *sessions; /* all of them, newest first */
	struct zcr_session *oldest;   /* the last of them */
	/* Where the listing under way stops (zcr_session_list_step): the
	 * next session it visits; moved on when that session ends. */
	struct zcr_session *cursor;
};

/* Which sessions an admin request is about; empty fields match all. */
struct zcr_sess_filter {
	uint64_t id; /* 0: any */
	char route[ZCR_NAME_MAX];
	char upstream[ZCR_ADDR_STR];
	char client[ZCR_ADDR_STR]; /* HOST or HOST:PORT (the PROXY source) */
	uint64_t min_age_ms;
};

/* A session as GET /sessions shows it: a copy, free of the worker. */
struct zcr_sess_info {
	uint64_t id;
	int worker;
	char route[ZCR_NAME_MAX];
	char client[ZCR_ADDR_STR]; /* the PROXY source, or the peer */
	char peer[ZCR_ADDR_STR];   /* who connected to us */
	char upstream[ZCR_ADDR_STR];
	uint64_t age_ms, idle_ms;     /* idle: since bytes last moved */
	uint64_t bytes_in, bytes_out; /* so far, each way */
	uint64_t spliced, copied;
	const char *mover, *state; /* static strings */
	/* Content routing, once decided: what the client sent first (a
	 * static string; NULL: the listener does not peek), its TLS server
	 * name and ALPN list ("h2,http/1.1"). */
	const char *protocol;
	char sni[256], alpn[256];
};

/* zcrelay ctl (ctl.c): argv[0] is "ctl". Returns the exit status. */
int zcr_ctl_main(int argc, char **argv);

/* Logging to stderr, one line per call, with a timestamp. */
void zcr_log(int level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Sets the highest level zcr_log() prints. */
void zcr_log_set_level(int level);
/* The library's log callback (arg: the worker). */
void zcr_log_lib(void *arg, int level, const char *msg);

/* Parses argv into *opts and, without -c, a one-route configuration in
 * *cfg. Returns 0, 1 if the program should exit 0 (--help, --version),
 * or -EINVAL after printing an error (exit 2). */
int zcr_conf_parse(struct zcr_opts *opts, struct zcr_cfg **cfg, int argc,
                   char **argv);

/* Control (control.c), main thread. */
/* Opens the log file and writes the pid file of c; 0 or -errno
 * (logged). */
int zcr_control_setup(const struct zcr_cfg *c);
/* Binds c's admin addresses (if any), before privileges are dropped;
 * Unix ones get mode 0600 and c's user and group. 0 or -errno
 * (logged). */
int zcr_control_admin_listen(const struct zcr_cfg *c);
/* Serves the admin API (api.c) on them. 0 or -errno (logged); 0
 * without an admin address. */
int zcr_control_admin_start(const struct zcr_cfg *c, struct zcr_worker *ws,
                            unsigned nw);
/* The bound admin sockets into *fds (the control module keeps them);
 * returns how many. */
unsigned zcr_control_admin_fds(const int **fds);
/* An upgrade's new process serves the admin sockets now: stopping
 * leaves their socket files. */
void zcr_control_admin_handed_over(void);
/* Stops serving and closes the admin socket. */
void zcr_control_admin_stop(void);
/* Becomes c's user and group, if set; 0 or -errno (logged). */
int zcr_control_drop(const struct zcr_cfg *c);

/*
 * zcr_cfg_load_answering - zcr_cfg_load(path, out) (loader.c) on a
 * thread of its own while the calling thread, which has the signals of
 * set blocked, keeps taking them: on_signal(sig) for each but SIGTERM
 * and SIGINT, which abandon the load (freed when it ends) and are
 * returned. Returns 0 (*out loaded, the caller's reference), -EINVAL
 * (errors, printed, and their lines in *msgs, malloc'd, for the caller
 * to free), or that signal (> 0). Main thread.
 */
int zcr_cfg_load_answering(const char *path, struct zcr_cfg **out, char **msgs,
                           const sigset_t *set, void (*on_signal)(int sig));

/* Listening sockets (listeners.c), main thread. */
/* Builds the set for c, reusing the sockets of prev (may be NULL) for
 * addresses both have. Returns 0, or -errno after logging (nothing
 * leaked, prev untouched). */
int zcr_lset_open(struct zcr_lset *set, const struct zcr_cfg *c,
                  const struct zcr_lset *prev, unsigned nworkers);
/* Drops the main thread's references of set and frees it. Unix socket
 * files of addresses not in keep (may be NULL) are unlinked. */
void zcr_lset_release(struct zcr_lset *set, const struct zcr_lset *keep);
/* Drops the main thread's references of set and frees it, unlinking no
 * socket file: an upgrade's new process serves them now. */
void zcr_lset_forget(struct zcr_lset *set);
/* The listening sockets of set (one per worker, or the shared one), at
 * most max of them into fds; returns how many. The set keeps them. */
unsigned zcr_lset_fds(const struct zcr_lset *set, int *fds, unsigned max);
/* How many zcr_lset_fds() would return with room enough. */
unsigned zcr_lset_nfds(const struct zcr_lset *set);
/* Takes a reference. Any thread. */
void zcr_lsock_ref(struct zcr_lsock *ls);
/* Drops one; the last closes the sockets still open and frees ls. */
void zcr_lsock_put(struct zcr_lsock *ls);

/* Workers (worker.c). */
/* Set when a worker's loop failed: the daemon then exits 1. */
extern int zcr_worker_failed;
/* Creates the worker's loop; returns 0 or -errno. */
int zcr_worker_init(struct zcr_worker *w, struct zcr_cfg *cfg);
/* Thread body: runs the loop until the worker has drained. */
void *zcr_worker_main(void *arg);
/* From another thread: accept on set with configuration cfg from now on
 * (takes references). Listeners in both the old and new set keep
 * running; the others stop. Returns 0 or -errno. */
int zcr_worker_apply(struct zcr_worker *w, struct zcr_cfg *cfg,
                     const struct zcr_lset *set);
/* From another thread: run fn(loop, arg) on w's thread. Returns 0,
 * -ESRCH (the worker has ended: fn will not run) or -ENOMEM. */
int zcr_worker_post(struct zcr_worker *w, zc_post_fn *fn, void *arg);
/* From another thread: stop accepting, finish when sessions are done. */
void zcr_worker_drain(struct zcr_worker *w);
/* From another thread: abort every session now. */
void zcr_worker_abort(struct zcr_worker *w);

/*
 * zcr_worker_maybe_stop - stops w's loop once w drains and its last
 * session has ended. Called by worker.c when the drain starts and by
 * session.c when a session ends (after list_del), so that session.c
 * needs nothing from worker.c (worker.c uses session.c). Worker thread.
 */
static inline void zcr_worker_maybe_stop(struct zcr_worker *w)
{
	if (w->draining && w->nsessions == 0)
		zc_loop_stop(w->loop);
}

/* Sessions (session.c), worker thread. */
/* A client accepted on a listener of group g (an index into
 * w->cfg->groups). */
void zcr_session_accept(struct zcr_worker *w, unsigned group, int fd,
                        const struct sockaddr *sa, socklen_t salen);
/* Aborts the sessions that are not relaying yet (worker abort). */
void zcr_session_abort_all(struct zcr_worker *w);
/* Adds what the relays moved since the last call to the shared counters
 * (every 500 ms). */
void zcr_session_tick(struct zcr_worker *w, uint64_t now_ms);

struct zcr_ho_batch;

/*
 * Hand-over of established sessions to a new process (upgrade.c), on the
 * worker's thread.
 * zcr_session_pack - detaches more of w's relaying sessions into b (up
 * to ZCR_HO_BATCH in all), after counting their bytes so far;
 * b->waiting counts those not relaying yet and those whose relay is
 * still settling its io_uring requests (zc_relay_detach: -EAGAIN), for
 * a later pass. Sessions whose relay cannot be detached (no pipe now)
 * stay and end here.
 * zcr_session_settle - after the new process answered b->ok[] (all 0 if
 * it did not): a session it took ends here silently (this process's fd
 * copies closed), any other resumes here.
 * zcr_session_adopt_batch - the new process: takes b's sessions into w
 * (their route and upstream by name, the limits counting them, bytes
 * counted from now on), setting b->ok[i]; the fds of a session not
 * taken stay the caller's.
 */
void zcr_session_pack(struct zcr_worker *w, struct zcr_ho_batch *b);
void zcr_session_settle(struct zcr_worker *w, struct zcr_ho_batch *b);
void zcr_session_adopt_batch(struct zcr_worker *w, struct zcr_ho_batch *b);
/*
 * A listing of one worker's sessions made a few at a time, so that the
 * worker relays between the steps (with 4,500 sessions one walk of the
 * list costs ~0.35 ms of cache misses alone). One pass, oldest first:
 * it counts the matches of f and describes the first limit of them.
 * Sessions that start after the listing began are left out; one that
 * ends before the walk reaches it is neither counted nor shown.
 * Zero-initialise, set f and limit.
 */
struct zcr_sess_walk {
	struct zcr_sess_filter f;
	size_t limit;
	/* results: the oldest matches (malloc'd; the caller frees v) */
	struct zcr_sess_info *v;
	size_t n, total;
	/* private */
	int begun;
	uint64_t now, newest;
	size_t cap;
};
/*
 * zcr_session_list_step - visits at most budget more sessions of w for
 * k. Returns 1 while more steps are needed, 0 when k is complete, or
 * -ENOMEM (k->v holds what it got so far). Worker thread only; one walk
 * at a time per worker (w->cursor), ended with zcr_session_list_end()
 * once it returned <= 0 or is abandoned.
 */
int zcr_session_list_step(struct zcr_worker *w, struct zcr_sess_walk *k,
                          unsigned budget);
/* Ends the walk under way on w (it may be abandoned midway). */
void zcr_session_list_end(struct zcr_worker *w);
/* Ends the sessions matching f (both sides reset; log end=killed),
 * except those being handed to a new process; returns how many. */
unsigned zcr_session_kill(struct zcr_worker *w,
                          const struct zcr_sess_filter *f);

/* Upstream choice and health (balance.c), any worker thread. */
/* Picks the upstream for a new attempt among the healthy ones not in
 * tried (a bitmap of ZCR_MAX_UPSTREAMS bits): by the route's method for
 * a first try (prev -1), the next in order after prev for a retry.
 * Returns its index, or -ENOENT when none is left. */
int zcr_balance_pick(const struct zcr_route *r, const struct sockaddr *client,
                     int prev, const uint64_t *tried, uint64_t now_ms);
/*
 * zcr_err_local - 1 if err (-errno) from a connect attempt is a shortage
 * of our own (fds, memory, buffers, source ports), not a verdict on the
 * upstream: such an error must never feed health, the upstream's
 * failure counters or a log line that blames the upstream.
 */
static inline int zcr_err_local(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM ||
	       err == -ENOBUFS || err == -EADDRNOTAVAIL;
}

/* Records a connect result (0 or -errno) for passive health: fail_max
 * failures in a row eject the upstream for the cool-down (logged), a
 * success resets the count and ends an ejection (logged "is back"). */
void zcr_balance_report(const struct zcr_route *r, unsigned up, int err,
                        uint64_t now_ms);

/* Active health checks (health.c), main thread. */
/* Starts the checker thread with c's checks. 0, or -errno (logged). */
int zcr_health_start(struct zcr_cfg *c);
/* Replaces the checks with c's (a reload). 0 or -errno. */
int zcr_health_apply(struct zcr_cfg *c);
/* Stops the checker thread. */
void zcr_health_stop(void);

/* Per-client connection limits (limits.c), any thread. */
/* Counts one more connection of sa on route st; -EBUSY (not counted)
 * when max are open already. max 0: no limit, always 0. */
int zcr_client_acquire(struct zcr_stats *st, const struct sockaddr *sa,
                       unsigned max);
/* Gives back what zcr_client_acquire counted. */
void zcr_client_release(struct zcr_stats *st, const struct sockaddr *sa,
                        unsigned max);

#endif

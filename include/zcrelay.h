/*
 * zcrelay.h - public API of libzcrelay.
 *
 * libzcrelay joins pairs of connected stream sockets (TCP v4/v6, Unix, any
 * mix) and moves bytes between them with splice(2) through pooled pipes
 * where the kernel allows it, and with a read/write copy otherwise.
 *
 * Conventions:
 *  - every function that can fail returns an int: >= 0 on success, a
 *    negative errno value (-EINVAL, ...) on failure; zc_strerror() turns
 *    it into text;
 *  - handles are opaque and created by a constructor that stores the
 *    handle through its first argument, `out`. Handles that only the
 *    caller can end (loop, listener, timer, watch) need it: out must not
 *    be NULL (-EINVAL). Handles that also end by themselves (relay,
 *    connect) accept out == NULL for callers that never end them early;
 *    such a handle is valid until its callback runs;
 *  - each handle kind has one way to end it, which also frees it:
 *        zc_loop      zc_loop_free()      (zc_loop_stop() only returns
 *                                          from zc_loop_run())
 *        zc_relay     zc_relay_close()    or its done callback
 *        zc_listener  zc_listener_stop()
 *        zc_connect   zc_connect_cancel() or its callback
 *        zc_timer     zc_timer_free()     (zc_timer_disarm() keeps it)
 *        zc_watch     zc_watch_stop()
 *    zc_loop_free() ends what is still running on the loop: relays are
 *    aborted (done runs), listeners and connects are freed (callbacks do
 *    not run); timers and watches must be ended before it;
 *  - the library never prints and never exits: it reports through return
 *    values and a log callback (it reads /proc/sys/fs/pipe-* and
 *    /proc/self/status once, for the pipe budget, and each listener keeps
 *    a spare fd on /dev/null);
 *  - a struct zc_loop and everything started on it belong to the thread
 *    that runs the loop; only zc_loop_post() may be called from other
 *    threads.
 *
 * SIGPIPE: splice(2) into a socket has no MSG_NOSIGNAL, so a peer that
 * went away can raise SIGPIPE. zc_loop_new(), zc_splice() and
 * zc_transfer() set SIGPIPE to SIG_IGN if, and only if, it still has its
 * default disposition. A handler installed by the program is kept.
 */
#ifndef ZCRELAY_H
#define ZCRELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ZC_API __attribute__((visibility("default")))
#else
#define ZC_API
#endif

#define ZC_VERSION_MAJOR 0
#define ZC_VERSION_MINOR 2
#define ZC_VERSION_PATCH 0

/* Library-specific error codes, outside the errno range. */
#define ZC_EBASE    -4096
#define ZC_ENOURING (ZC_EBASE - 1) /* io_uring engine unavailable */
/* A host name that did not resolve: ZC_ERESOLVE + the EAI_* code of
 * getaddrinfo() (negative in glibc), whose reason zc_strerror() gives.
 * ZC_IS_ERESOLVE(err) tells such an error. */
#define ZC_ERESOLVE         (ZC_EBASE - 256)
#define ZC_IS_ERESOLVE(err) ((err) <= ZC_ERESOLVE && (err) > ZC_ERESOLVE - 256)

/* How bytes are moved. */
enum zc_mover {
	/* Small messages the cheapest way, bulk by splice: on epoll, copy
	 * until a read fills the 64 KiB buffer, then splice, and copy
	 * again after 8 small splices in a row; on io_uring, the ring
	 * mover's way until a receive fills a 64 KiB ring buffer, then
	 * splice, and the ring again after 8 small splices in a row (as
	 * on epoll where the buffer ring is refused). */
	ZC_MOVER_AUTO = 0,
	ZC_MOVER_SPLICE, /* splice; still falls back if the kernel refuses */
	ZC_MOVER_COPY,   /* read/write through a user-space buffer */
	/* io_uring only: multishot recv into the loop's provided-buffer ring,
	 * then send (SEND_ZC for large chunks). On an epoll loop, or where
	 * the kernel refuses the buffer ring, the relay copies instead
	 * (stats: mover ZC_MOVER_COPY, fallback -EOPNOTSUPP or the error). */
	ZC_MOVER_RING,
	/* Experimental, io_uring only: IORING_OP_SPLICE requests (socket ->
	 * pooled pipe -> socket), which the kernel runs on io-wq worker
	 * threads; a readiness poll precedes each splice. Never picked by
	 * ZC_MOVER_AUTO. On an epoll loop, or where the kernel lacks
	 * IORING_OP_SPLICE, the relay uses ZC_MOVER_SPLICE (stats: mover
	 * ZC_MOVER_SPLICE, fallback -EOPNOTSUPP or the probe's error). */
	ZC_MOVER_URING_SPLICE,
};

/* Which readiness/completion engine runs a loop. */
enum zc_engine {
	ZC_ENGINE_AUTO = 0,
	ZC_ENGINE_EPOLL,
	ZC_ENGINE_URING,
};

/* Why a relay ended. */
enum zc_end {
	ZC_END_NONE = 0,     /* still running */
	ZC_END_EOF,          /* both directions forwarded their EOF */
	ZC_END_RESET,        /* a peer reset or failed; the other was reset */
	ZC_END_TIMEOUT,      /* idle timeout */
	ZC_END_ABORTED,      /* zc_relay_close() or the loop was freed */
	ZC_END_ERROR,        /* a local error (out of memory, ...) */
	ZC_END_HALF_TIMEOUT, /* half-closed timeout (one EOF, then quiet) */
};

/* Directions: A->B is index 0, B->A is index 1. */
#define ZC_DIR_AB 0
#define ZC_DIR_BA 1

/* Log levels passed to zc_log_fn. */
enum zc_log_level {
	ZC_LOG_ERR = 3,
	ZC_LOG_WARN = 4,
	ZC_LOG_INFO = 6,
	ZC_LOG_DEBUG = 7,
};

/* A log sink. msg has no trailing newline. Called on the loop's thread. */
typedef void zc_log_fn(void *arg, int level, const char *msg);

/* ------------------------------------------------------------------ */
/* Relay options and statistics                                         */

/* Flags for zc_relay_opts.flags. */
#define ZC_RELAY_F_KEEP_FDS 0x1 /* zc_relay_start: do not close the fds */
/* zc_relay_start: skip the socket checks (6 system calls): the caller
 * vouches that both are distinct, connected stream sockets, e.g. fresh
 * from zc_listener_start and zc_connect_start. */
#define ZC_RELAY_F_TRUSTED 0x2
/* zc_relay_start: the caller vouches that both fds are non-blocking and
 * that no other fd refers to their sockets (no dup(), no fork, not sent
 * elsewhere), as zc_listener_start and zc_connect_start hand them over.
 * Saves up to 3 system calls per relay: the O_NONBLOCK check, and on
 * the epoll engine the last FIN's shutdown(), which closing the fds
 * does (a fork that holds copies until its exec delays that FIN by as
 * long). Ignored with ZC_RELAY_F_KEEP_FDS. */
#define ZC_RELAY_F_FRESH 0x4

/* Options of a two-way relay. Initialise with zc_relay_opts_init(). */
struct zc_relay_opts {
	int mover; /* enum zc_mover */
	unsigned
	        idle_timeout_ms; /* 0: none; no byte either way for this long */
	unsigned flags;          /* ZC_RELAY_F_* */
	/* 0: none. Once one direction has forwarded its EOF, end the relay
	 * if the other moves no byte for this long (ZC_END_HALF_TIMEOUT). */
	unsigned halfclose_timeout_ms;
	unsigned reserved[4];
};

/* One direction of a relay. */
struct zc_dir_stats {
	uint64_t bytes;   /* bytes written to the destination */
	uint64_t spliced; /* of which moved by splice(2) */
	uint64_t copied;  /* of which moved through a user-space buffer */
	int fallback;     /* 0, or the -errno that made splice fall back */
	int fin;          /* 1 once EOF was forwarded with shutdown(SHUT_WR) */
};

/* A relay's statistics. */
struct zc_relay_stats {
	struct zc_dir_stats dir[2]; /* [ZC_DIR_AB], [ZC_DIR_BA] */
	int end;                    /* enum zc_end */
	int error;                  /* 0, or -errno of the first error */
	int mover;                  /* mover the relay was started with */
	int engine;                 /* engine that ran it */
	uint64_t duration_ns;       /* from start to end */
};

/* Fills *opts with the defaults (auto mover, no idle timeout). */
ZC_API void zc_relay_opts_init(struct zc_relay_opts *opts);

/*
 * Deprecated names, kept for one minor version (removed in 0.3.0): until
 * 0.2.0 the relay options, statistics and flags were named after
 * zc_splice() although zc_relay_start() takes them too. The old names
 * still compile (the structs and flags are the same types and values);
 * define ZC_NO_DEPRECATED before including this header to hide them.
 */
#ifndef ZC_NO_DEPRECATED
#define zc_splice_opts       zc_relay_opts
#define zc_splice_stats      zc_relay_stats
#define ZC_SPLICE_F_KEEP_FDS ZC_RELAY_F_KEEP_FDS
#define ZC_SPLICE_F_TRUSTED  ZC_RELAY_F_TRUSTED
#if defined(__GNUC__)
__attribute__((deprecated("use zc_relay_opts_init")))
#endif
ZC_API void
zc_splice_opts_init(struct zc_relay_opts *opts);
#endif

/*
 * zc_splice - relay fd_a <-> fd_b until both directions are finished.
 *
 * Blocks the calling thread. fd_a and fd_b must be distinct, connected
 * stream sockets (TCP v4/v6 or Unix, any mix). They are switched to
 * O_NONBLOCK for the call and their file status flags are restored before
 * it returns; they stay owned (and open) by the caller. TCP_NODELAY is set
 * on TCP sockets (a relay must not add Nagle delays) and stays set.
 *
 * The EOF of one side is forwarded with shutdown(SHUT_WR) to the other
 * while the other direction keeps flowing. When a side resets or fails,
 * SO_LINGER {1, 0} is set on both sockets so that the caller's close()
 * sends a reset, and the call returns.
 *
 * opts may be NULL (defaults); stats may be NULL, and is zeroed first, so
 * it is valid (all zero) when the call fails before relaying.
 *
 * Returns 0 when both EOFs were forwarded, or:
 *   -ENOTSOCK        an fd is not a socket
 *   -EBADF           an fd is not open
 *   -EINVAL          fd_a and fd_b are the same socket, or opts is invalid
 *   -ESOCKTNOSUPPORT a socket is not SOCK_STREAM
 *   -ENOTCONN        a socket is not connected (or is listening)
 *   -ETIMEDOUT       the idle timeout expired
 *   -ECONNRESET, -EPIPE, ...  the error that ended the relay
 *   -ENOMEM          out of memory
 */
ZC_API int zc_splice(int fd_a, int fd_b, const struct zc_relay_opts *opts,
                     struct zc_relay_stats *stats);

/* ------------------------------------------------------------------ */
/* One-direction transfer                                               */

/* Options of zc_transfer(). Initialise with zc_transfer_opts_init(). */
struct zc_transfer_opts {
	int64_t offset;           /* regular file: start offset; -1: current */
	int64_t length;           /* bytes to move; -1: until EOF */
	int mover;                /* enum zc_mover */
	unsigned idle_timeout_ms; /* 0: none */
	unsigned reserved[4];
};

/* What zc_transfer() did. */
struct zc_transfer_stats {
	uint64_t bytes;   /* bytes written to dst */
	uint64_t spliced; /* of which by splice(2)/sendfile(2) */
	uint64_t copied;  /* of which by read/write */
	int handled;      /* 1 if the zero-copy path moved bytes */
	int fallback;     /* 0, or the -errno that made it fall back to copy */
	int eof;          /* 1 if src reached EOF */
};

/* Fills *opts with the defaults: offset -1, length -1, auto mover. */
ZC_API void zc_transfer_opts_init(struct zc_transfer_opts *opts);

/*
 * zc_transfer - move bytes from src to the socket dst, blocking.
 *
 * src is a stream socket, a pipe or a regular file. With a regular file,
 * opts->offset (>= 0) is where reading starts; the file position is not
 * used or changed. With -1 the file's current position is used and
 * advanced. The transfer ends after opts->length bytes, or at EOF when
 * length is -1. Neither fd is closed. Sockets and pipes are switched to
 * O_NONBLOCK during the call and restored before it returns.
 *
 * Returns 0 when the requested length (or EOF) was reached, or:
 *   -EBADF      an fd is not open
 *   -ENOTSOCK   dst is not a socket
 *   -ENOTCONN   dst is not connected
 *   -EINVAL     bad options, src of an unsupported type, or a file range
 *               that extends past the end of the file
 *   -ESPIPE     an offset was given for a source that cannot seek
 *   -ENODATA    src reached EOF before length bytes (stats->bytes says how
 *               many moved)
 *   -ETIMEDOUT  idle timeout
 *   -EPIPE, -ECONNRESET, ...  an I/O error
 * stats (may be NULL) is filled in every case.
 */
ZC_API int zc_transfer(int dst, int src, const struct zc_transfer_opts *opts,
                       struct zc_transfer_stats *stats);

/* ------------------------------------------------------------------ */
/* Event loop (non-blocking API)                                        */

struct zc_loop;
struct zc_relay;
struct zc_listener;
struct zc_connect;
struct zc_timer;

/* Options of a loop. Initialise with zc_loop_opts_init(). */
struct zc_loop_opts {
	int engine;         /* enum zc_engine */
	unsigned pipe_size; /* bytes per splice pipe; 0: default (1 MiB,
				capped at /proc/sys/fs/pipe-max-size) */
	unsigned max_pipes; /* pipes in use at once; 0: default 4096 */
	zc_log_fn *log;     /* NULL: no logging */
	void *log_arg;
	int log_level; /* highest level passed to log */
	/* ZC_MOVER_RING (io_uring): the loop's buffer ring, registered on
	 * the first ring relay. ring_bufs: buffers, a power of two up to
	 * 32768 (0: 256); ring_buf_size: bytes each, at most 1 MiB (0: 64
	 * KiB); ring_zc_min: sends of at least this many bytes use SEND_ZC
	 * (0: never, unless ZC_RING_ZC=BYTES in the environment). */
	unsigned ring_bufs;
	unsigned ring_buf_size;
	unsigned ring_zc_min;
	/* Busy polling (appended in 0.2): after a turn that handled events,
	 * keep checking for new ones without sleeping for a while before
	 * the loop sleeps, so that a reply arriving microseconds later finds
	 * the thread awake. busy_poll_us: 0 (the default) never spins;
	 * ZC_BUSY_POLL_AUTO spins for an adaptive window of 0 to 50 us that
	 * grows while spinning catches events and shrinks to 0 while it
	 * does not; N > 0 spins up to N us (at most 1000000) after every
	 * turn that handled events. No spin follows bulk turns (relay reads
	 * and writes above 16 KiB on average), and a spin yields the CPU to
	 * any task ready to run on it. busy_poll_cap: the share of one CPU
	 * (percent, 1..100; 0: 100) that spinning may take in any second; a
	 * second that uses it up starts a rest without spinning of 1 s,
	 * doubling to 16 s. Spinning never delays a timer or a
	 * zc_loop_post(). */
	int busy_poll_us;
	unsigned busy_poll_cap;
	unsigned reserved[1];
};

/* zc_loop_opts.busy_poll_us: adapt the spin window to the traffic. */
#define ZC_BUSY_POLL_AUTO (-1)
/* The ceiling of the adaptive window, and the largest fixed one. */
#define ZC_BUSY_POLL_AUTO_MAX_US 50
#define ZC_BUSY_POLL_MAX_US      1000000

/* Counters of one loop, read on the loop's thread. */
struct zc_loop_stats {
	uint64_t relays_active;
	uint64_t relays_total;
	uint64_t pipes_used;    /* pipes held by directions with bytes */
	uint64_t pipes_free;    /* empty pipes cached for reuse */
	uint64_t pipe_size;     /* bytes per pipe the pool asks for */
	uint64_t bufs_used;     /* copy buffers held */
	uint64_t accept_paused; /* times a listener paused on EMFILE/ENFILE */
	uint64_t pipe_shortage; /* drains copied because no pipe could be had */
	uint64_t pipes_small;   /* pipes created smaller than asked (budget) */
	/* ZC_MOVER_RING (appended in 0.2): */
	uint64_t ring_bufs;      /* buffers in the loop's ring (0: none yet) */
	uint64_t ring_bufs_used; /* ring buffers holding received bytes */
	uint64_t
	        ring_shortage; /* recvs done into a spare: the ring was empty */
	uint64_t ring_zc_sends; /* sends done with IORING_OP_SEND_ZC */
	/* Busy polling (appended in 0.2): */
	uint64_t spin_ns;        /* time spent spinning, in ns */
	uint64_t spin_hits;      /* spins that caught an event */
	uint64_t spin_misses;    /* spins that ended with none: then slept */
	uint64_t spin_capped;    /* turns that did not spin: the cap was used */
	uint64_t spin_window_ns; /* the adaptive window now */
};

/* Fills *opts with the defaults. */
ZC_API void zc_loop_opts_init(struct zc_loop_opts *opts);

/*
 * zc_loop_new - create an event loop.
 *
 * opts may be NULL. On success stores the loop in *out and returns 0; the
 * caller owns it and frees it with zc_loop_free(). Returns -ENOMEM,
 * -EMFILE, ..., or ZC_ENOURING when ZC_ENGINE_URING was asked for and
 * io_uring cannot be used. ZC_ENGINE_AUTO uses io_uring where the kernel
 * allows it and epoll otherwise (never failing for lack of io_uring); the
 * environment variable ZC_ENGINE=epoll makes it use epoll.
 */
ZC_API int zc_loop_new(struct zc_loop **out, const struct zc_loop_opts *opts);

/*
 * zc_loop_run - run the loop on the calling thread until zc_loop_stop().
 * Returns 0, or -errno if the engine failed.
 */
ZC_API int zc_loop_run(struct zc_loop *loop);

/*
 * zc_loop_run_once - run one iteration: wait at most timeout_ms (-1:
 * without limit) for events, then dispatch them. Returns 0 or -errno.
 */
ZC_API int zc_loop_run_once(struct zc_loop *loop, int timeout_ms);

/* zc_loop_stop - make zc_loop_run() return. Loop thread only. */
ZC_API void zc_loop_stop(struct zc_loop *loop);

/* A function run on a loop's thread by zc_loop_post(). */
typedef void zc_post_fn(struct zc_loop *loop, void *arg);

/*
 * zc_loop_post - run fn(loop, arg) on the loop's thread, soon.
 * Thread-safe: the only way for another thread to act on a loop.
 * Returns 0 or -ENOMEM. Posts still queued when the loop is freed are
 * dropped without being run.
 */
ZC_API int zc_loop_post(struct zc_loop *loop, zc_post_fn *fn, void *arg);

/*
 * zc_loop_close_relays - abort every relay running on the loop; each
 * done callback is called with ZC_END_ABORTED. Loop thread only.
 */
ZC_API void zc_loop_close_relays(struct zc_loop *loop);

/* Fills *st with the loop's counters. Loop thread only. */
ZC_API void zc_loop_get_stats(struct zc_loop *loop, struct zc_loop_stats *st);

/* Returns the engine the loop runs (ZC_ENGINE_EPOLL or _URING). */
ZC_API int zc_loop_engine(const struct zc_loop *loop);

/*
 * zc_loop_free - abort every relay (its done callback runs), stop and free
 * listeners and connect attempts (their callbacks do not run; their
 * handles become invalid), and free the loop. Timers from zc_timer_new()
 * must be freed before. Loop thread, while the loop is not running.
 */
ZC_API void zc_loop_free(struct zc_loop *loop);

/* ------------------------------------------------------------------ */
/* Relays on a loop                                                     */

/* Called once when a relay has ended. The fds are already closed (unless
 * ZC_RELAY_F_KEEP_FDS) and the relay handle is already invalid. */
typedef void zc_relay_done_fn(void *arg, const struct zc_relay_stats *st);

/*
 * zc_relay_start - relay fd_a <-> fd_b on loop; call done(arg, stats)
 * when it ends.
 *
 * Validates the fds like zc_splice() and returns the same errors. On
 * success returns 0, stores a handle in *out (out may be NULL), makes the
 * fds non-blocking, sets TCP_NODELAY on TCP sockets, and takes ownership
 * of them: they are closed when the relay ends. Unless it ended with
 * ZC_END_EOF (a reset, a timeout, an abort, an error), SO_LINGER {1, 0} is
 * set first so that both peers see a reset, never a clean end. With
 * ZC_RELAY_F_KEEP_FDS the fds are not closed (SO_LINGER is still set on
 * an abnormal end). On failure the caller still owns the fds, with their
 * flags unchanged. The handle is valid until done is called.
 */
ZC_API int zc_relay_start(struct zc_relay **out, struct zc_loop *loop, int fd_a,
                          int fd_b, const struct zc_relay_opts *opts,
                          zc_relay_done_fn *done, void *arg);

/* zc_relay_close - abort a running relay (ZC_END_ABORTED). done is
 * called before this returns. Loop thread only. */
ZC_API void zc_relay_close(struct zc_relay *relay);

/* Fills *st with the relay's statistics so far (end ZC_END_NONE). Loop
 * thread only, until done is called. A copy of counters the relay keeps
 * anyway (no system call, no lock): cheap enough to call for every relay
 * every second for live byte counts. */
ZC_API void zc_relay_get_stats(const struct zc_relay *relay,
                               struct zc_relay_stats *st);

/* ------------------------------------------------------------------ */
/* Handing a live relay to another loop or process                      */

/* Bytes of a detached relay's record, and the most fds it names. */
#define ZC_RELAY_STATE_LEN 128
#define ZC_RELAY_STATE_FDS 6

/*
 * zc_relay_detach - stop a running relay at a safe point and hand it
 * over as data: a ZC_RELAY_STATE_LEN-byte record written to rec (len
 * bytes of room) and its fds — both sockets and, per direction, the two
 * ends of a pipe holding the bytes read and not yet written, in order —
 * appended to fds[*nfds...] (room for ZC_RELAY_STATE_FDS more; *nfds
 * grows). The record names the fds by their index in that array, so
 * the records of many relays share one array (one SCM_RIGHTS message
 * carries 42 relays). The record keeps the counters, each direction's
 * progress (EOF read, EOF forwarded) and the time already spent against
 * the idle and half-closed deadlines. Format: libzcrelay(3), versioned.
 *
 * On success the relay is gone: the handle is invalid, done is never
 * called, and the fds are the caller's (open, non-blocking) to send, to
 * adopt, or to close. -EAGAIN: the relay's io_uring requests (ring and
 * uring-splice movers) are being settled: it receives nothing more,
 * keeps what completions still bring, and waits for every SEND_ZC
 * notification; call again after a loop turn until 0 (a relay not asked
 * again within a second resumes by itself). Other failures change
 * nothing and the relay runs on: -ENOSPC (len too short), -ENOBUFS,
 * -EMFILE (no pipe for bytes held in a user-space buffer now: try again
 * later), -EINVAL (a relay that is ending). Loop thread.
 */
ZC_API int zc_relay_detach(struct zc_relay *relay, void *rec, size_t len,
                           int *fds, unsigned *nfds);

/*
 * zc_relay_adopt - resume a detached relay on loop (any engine): rec is
 * its record (len bytes), fds[0..nfds) the array its fds were appended
 * to (as received). The relay continues where it stopped: held bytes go
 * out first, counters and deadlines carry on (done reports the whole
 * life), and a direction whose EOF was forwarded stays half-closed.
 * Returns 0 (the relay owns its fds; *out as for zc_relay_start, may be
 * NULL), or -EPROTONOSUPPORT (a record of another format version),
 * -EBADMSG (a malformed record or an fd index outside the array),
 * -ENOTSOCK, -ESOCKTNOSUPPORT (not a stream socket), -EINVAL (both fds
 * are one socket), -ENOMEM, ...: then the fds are still the caller's.
 * The sockets need not be connected any more: a peer that closed or
 * reset meanwhile is met by the relay's next read or write, as on the
 * old loop. Loop thread.
 */
ZC_API int zc_relay_adopt(struct zc_relay **out, struct zc_loop *loop,
                          const void *rec, size_t len, const int *fds,
                          unsigned nfds, zc_relay_done_fn *done, void *arg);

/*
 * zc_relay_state_fds - the fds a record names (2 to ZC_RELAY_STATE_FDS
 * of fds[0..nfds)), into out: for a caller that cannot adopt a record
 * and must close them, or give them back. Returns how many, or the
 * errors of zc_relay_adopt's record checks.
 */
ZC_API int zc_relay_state_fds(const void *rec, size_t len, const int *fds,
                              unsigned nfds, int out[ZC_RELAY_STATE_FDS]);

/* ------------------------------------------------------------------ */
/* Listeners, connects, timers                                          */

/*
 * Called for each accepted connection. fd is non-blocking and
 * close-on-exec; the callee owns it. sa/salen is the peer's address.
 */
typedef void zc_accept_fn(void *arg, int fd, const struct sockaddr *sa,
                          socklen_t salen);

/*
 * zc_listener_start - accept connections on the listening socket lfd.
 *
 * lfd must be a listening stream socket; it is made non-blocking. It stays
 * owned by the caller, who closes it after zc_listener_stop(). When accept
 * fails with EMFILE/ENFILE/ENOBUFS/ENOMEM the listener accepts and closes
 * the waiting connection with a spare fd (so the client is not left
 * hanging), logs a warning and pauses for one second.
 * Returns 0 or -errno.
 */
ZC_API int zc_listener_start(struct zc_listener **out, struct zc_loop *loop,
                             int lfd, zc_accept_fn *cb, void *arg);

/*
 * zc_listener_stop - stop accepting and free the handle. Loop thread. On
 * io_uring, clients the kernel accepted before it saw the stop go to the
 * callback before this returns (called from inside the callback, they
 * are closed instead).
 */
ZC_API void zc_listener_stop(struct zc_listener *l);

/* Called once with a connected non-blocking fd (>= 0, owned by the
 * callee) or a negative errno (-ECONNREFUSED, -ETIMEDOUT, ...). */
typedef void zc_connect_fn(void *arg, int fd_or_err);

/*
 * zc_connect_start - connect a new stream socket to sa, giving up after
 * timeout_ms (0: no limit other than the kernel's). cb is called once
 * from the loop, never from inside this function. Returns 0, or -errno if
 * the attempt could not be started (cb is then not called). *out (may be
 * NULL) is valid until cb is called.
 */
ZC_API int zc_connect_start(struct zc_connect **out, struct zc_loop *loop,
                            const struct sockaddr *sa, socklen_t salen,
                            unsigned timeout_ms, zc_connect_fn *cb, void *arg);

/* zc_connect_cancel - abandon a connect; cb will not be called. */
ZC_API void zc_connect_cancel(struct zc_connect *c);

/* A one-shot timer callback; the timer handle is free to reuse. */
typedef void zc_timer_fn(void *arg);

/*
 * zc_timer_new - create a timer on loop (not armed). Returns 0 or -ENOMEM.
 * zc_timer_arm (re)arms it to fire once after ms milliseconds (returns 0
 * or -ENOMEM);
 * zc_timer_disarm stops it; zc_timer_free disarms and frees it.
 * All on the loop's thread. Free every timer before its loop.
 */
ZC_API int zc_timer_new(struct zc_timer **out, struct zc_loop *loop,
                        zc_timer_fn *cb, void *arg);
ZC_API int zc_timer_arm(struct zc_timer *t, uint64_t ms);
ZC_API void zc_timer_disarm(struct zc_timer *t);
ZC_API void zc_timer_free(struct zc_timer *t);

/* Events of a watcher. */
#define ZC_WATCH_IN  0x1 /* readable (or EOF) */
#define ZC_WATCH_OUT 0x2 /* writable */
#define ZC_WATCH_ERR 0x4 /* reported only: error, hang-up or peer EOF */

struct zc_watch;

/* A watcher callback: events holds ZC_WATCH_* bits. */
typedef void zc_watch_fn(void *arg, unsigned events);

/*
 * zc_watch_start - call cb whenever fd is ready for events (ZC_WATCH_IN
 * and/or ZC_WATCH_OUT), level-triggered: as long as it stays ready. The
 * fd stays the caller's (never closed). Returns 0, -EINVAL, -ENOMEM, or
 * the engine's error (e.g. -EEXIST if fd is already watched).
 * zc_watch_set changes the events (0 or -errno). zc_watch_stop stops
 * watching and frees w; it may be called from w's own callback.
 * All on the loop's thread. Stop every watcher before freeing its loop.
 */
ZC_API int zc_watch_start(struct zc_watch **out, struct zc_loop *loop, int fd,
                          unsigned events, zc_watch_fn *cb, void *arg);
ZC_API int zc_watch_set(struct zc_watch *w, unsigned events);
ZC_API void zc_watch_stop(struct zc_watch *w);

/* ------------------------------------------------------------------ */
/* Addresses and sockets                                                */

/* A socket address: IPv4, IPv6 or Unix (path or abstract). */
struct zc_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

#define ZC_ADDR_NUMERIC 0x1 /* do not resolve host names */
#define ZC_ADDR_PASSIVE 0x2 /* allow an empty host ("*" / ":8080") */

/*
 * zc_addr_parse - parse "HOST:PORT", "[V6]:PORT", "unix:/path" or
 * "unix:@abstract" into *out. HOST is an IPv4 address, or a name resolved
 * with getaddrinfo() unless ZC_ADDR_NUMERIC (first result wins).
 * Returns 0, -EINVAL (malformed; nothing resolved), -ENAMETOOLONG (Unix
 * path too long), a ZC_ERESOLVE code (the name did not resolve; see
 * ZC_IS_ERESOLVE) or -errno (the resolver's system error).
 */
ZC_API int zc_addr_parse(struct zc_addr *out, const char *s, unsigned flags);

/*
 * zc_addr_format - write a printable form of a (the same syntax
 * zc_addr_parse reads; an unnamed Unix socket, such as a connecting
 * client's, prints as "unix:") into buf, NUL-terminated. Returns the
 * length, or -ENOSPC if buf is too small.
 */
ZC_API int zc_addr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                          size_t size);

#define ZC_LISTEN_REUSEPORT 0x1 /* SO_REUSEPORT (TCP) */

/*
 * zc_listen - create a listening, non-blocking, close-on-exec stream
 * socket bound to a. SO_REUSEADDR is always set for TCP; ZC_LISTEN_REUSEPORT
 * adds SO_REUSEPORT. A Unix path that exists as a stale socket (nobody
 * accepts on it) is replaced; any other existing file is -EADDRINUSE.
 * Returns the fd or -errno.
 */
ZC_API int zc_listen(const struct zc_addr *a, unsigned flags, int backlog);

/* ------------------------------------------------------------------ */
/* Names and errors                                                     */

/* Text for a negative errno or a ZC_E* code. Never NULL. The text of a
 * ZC_ERESOLVE code lives in a buffer of the calling thread, valid until
 * its next call; the others are static. */
ZC_API const char *zc_strerror(int err);
/* Short names: "splice", "copy", "ring", "uring-splice", "auto"; "epoll",
 * "uring"; "eof", ... */
ZC_API const char *zc_mover_name(int mover);
ZC_API const char *zc_engine_name(int engine);
ZC_API const char *zc_end_name(int end);

#ifdef __cplusplus
}
#endif
#endif /* ZCRELAY_H */

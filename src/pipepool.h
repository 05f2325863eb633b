/* pipepool.h - per-loop pool of splice pipes with a page budget. */
#ifndef ZC_PIPEPOOL_H
#define ZC_PIPEPOOL_H

#include <stddef.h>

struct zc_loop;

/* A pipe; rfd/wfd are O_NONBLOCK and close-on-exec. */
struct zc_pipe {
	int p_rfd, p_wfd;
	unsigned p_size; /* capacity in bytes (F_GETPIPE_SZ) */
	int p_big;       /* counted against the process page budget */
	struct zc_pipe *p_next;
};

struct zc_pipepool {
	struct zc_pipe *pp_free; /* empty pipes ready for reuse */
	unsigned pp_nfree, pp_nused;
	unsigned long pp_nsmall; /* created smaller than pp_want */
	unsigned pp_max_free;    /* cache at most this many empty pipes */
	unsigned pp_max_used;    /* hard cap on pipes in use */
	unsigned pp_want;        /* bytes asked of F_SETPIPE_SZ */
	int (*pp_pipe2)(int fds[2], int flags); /* seam for tests */
};

/*
 * Initialises the pool. want is the wanted pipe size (0: 1 MiB), capped
 * at /proc/sys/fs/pipe-max-size; max_used the hard cap (0: 4096).
 */
void zc__pipepool_init(struct zc_pipepool *pp, unsigned want,
                       unsigned max_used);

/*
 * Hands out an empty pipe. Returns 0 and *out, or -EMFILE/-ENFILE (no
 * fds), -ENOBUFS (the cap is reached), -ENOMEM. Never fails because
 * F_SETPIPE_SZ was refused: the pipe then keeps the size it got.
 * The caller owns the pipe until zc__pipe_put().
 */
int zc__pipe_get(struct zc_pipepool *pp, struct zc_pipe **out);

/*
 * Gives a pipe back. A pipe that still holds bytes (dirty != 0) is closed,
 * never reused. The caller must not use p afterwards.
 */
void zc__pipe_put(struct zc_pipepool *pp, struct zc_pipe *p, int dirty);

/*
 * Takes a pipe out of the pool for good, to leave the process (a relay
 * handed over): *rfd and *wfd get its fds, which the caller now owns and
 * closes; p is freed. Like zc__pipe_put for the pool's counts.
 */
void zc__pipe_take(struct zc_pipepool *pp, struct zc_pipe *p, int *rfd,
                   int *wfd);

/*
 * Wraps a pipe that came from elsewhere (an adopted relay) as one of the
 * pool's pipes in use: the caller gets *out and gives it back with
 * zc__pipe_put (or zc__pipe_take). rfd and wfd are made non-blocking and
 * close-on-exec. Returns 0, -ENOBUFS (the cap is reached), -ENOMEM, or
 * -EINVAL if they are not the two ends of one pipe; the caller keeps
 * the fds then.
 */
int zc__pipe_adopt(struct zc_pipepool *pp, int rfd, int wfd,
                   struct zc_pipe **out);

/*
 * Makes p (in use) hold at least need bytes, within pipe-max-size and
 * the page budget's count. Returns 0, or -ENOBUFS if the kernel refused
 * (p keeps its size).
 */
int zc__pipe_grow(struct zc_pipepool *pp, struct zc_pipe *p, size_t need);

/* Writes len bytes from at into p (in use), which has room for them: a
 * hand-over gathering what a relay holds. Returns 0, or -ENOBUFS (no
 * room after all) or -errno. */
int zc__pipe_write_all(struct zc_pipe *p, const char *at, size_t len);

/* Closes every cached pipe (those in use stay with their owners). */
void zc__pipepool_fini(struct zc_pipepool *pp);

/* Copy buffers: the same idea for the read/write mover. */
#define ZC_BUF_SIZE (64 * 1024)

struct zc_buf {
	struct zc_buf *b_next;
	char b_data[ZC_BUF_SIZE];
};

struct zc_bufpool {
	struct zc_buf *bp_free;
	unsigned bp_nfree, bp_nused, bp_max_free;
};

/* Returns a buffer or NULL (out of memory). */
struct zc_buf *zc__buf_get(struct zc_bufpool *bp);
/* Returns b to the pool; the caller must not use it afterwards. */
void zc__buf_put(struct zc_bufpool *bp, struct zc_buf *b);
/* Frees every cached buffer. */
void zc__bufpool_fini(struct zc_bufpool *bp);

#endif

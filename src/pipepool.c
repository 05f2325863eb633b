/*
 * pipepool.c - splice pipes and copy buffers, pooled per loop.
 *
 * A direction takes a pipe only while it has bytes in flight and gives it
 * back as soon as the pipe is empty, so an idle connection holds none. A
 * pipe that still holds bytes is never reused (it is closed instead).
 *
 * Page budget: the kernel charges pipe buffers to the user. Past
 * /proc/sys/fs/pipe-user-pages-soft an unprivileged user's new pipes get
 * two pages and F_SETPIPE_SZ fails with EPERM (kernel 4.5+, fs/pipe.c
 * too_many_pipe_buffers_soft). Processes with CAP_SYS_RESOURCE or
 * CAP_SYS_ADMIN are exempt. So an unprivileged process enlarges only as
 * many pipes as three quarters of the soft limit allow (the budget is
 * per process, shared by every loop, one atomic add per pipe creation);
 * the others keep the default size. Smaller pipes still splice; running
 * out of pipes altogether makes that direction copy. Never an error to
 * the client.
 */
#include "compat.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "pipepool.h"

#define PAGE         4096UL
#define DEFAULT_PIPE (1024U * 1024U)

static pthread_once_t budget_once = PTHREAD_ONCE_INIT;
static unsigned long budget_pages; /* 0: no limit */
static unsigned long max_pipe_size = DEFAULT_PIPE;
static unsigned long used_pages; /* atomic */

static unsigned long read_ulong(const char *path, unsigned long dflt)
{
	unsigned long v;
	FILE *f = fopen(path, "re");

	if (!f)
		return dflt;
	if (fscanf(f, "%lu", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

/* 1 if CapEff has CAP_SYS_ADMIN (21) or CAP_SYS_RESOURCE (24). */
static int pipe_exempt(void)
{
	unsigned long long cap = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "CapEff: %llx", &cap) == 1) {
			found = 1;
			break;
		}
	}
	fclose(f);
	return found && (cap & ((1ULL << 21) | (1ULL << 24)));
}

static void budget_init(void)
{
	unsigned long soft, hard, lim;

	max_pipe_size = read_ulong("/proc/sys/fs/pipe-max-size", DEFAULT_PIPE);
	if (pipe_exempt())
		return;
	soft = read_ulong("/proc/sys/fs/pipe-user-pages-soft", 16384);
	hard = read_ulong("/proc/sys/fs/pipe-user-pages-hard", 0);
	lim = soft ? soft : hard;
	if (hard && hard < lim)
		lim = hard;
	budget_pages = lim ? lim * 3 / 4 : 0;
}

/* Reserves pages of the budget; 1 if granted. */
static int budget_take(unsigned long pages)
{
	unsigned long cur;

	if (!budget_pages)
		return 1;
	cur = __atomic_load_n(&used_pages, __ATOMIC_RELAXED);
	do {
		if (cur + pages > budget_pages)
			return 0;
	} while (!__atomic_compare_exchange_n(&used_pages, &cur, cur + pages, 1,
	                                      __ATOMIC_RELAXED,
	                                      __ATOMIC_RELAXED));
	return 1;
}

static void budget_give(unsigned long pages)
{
	if (budget_pages)
		__atomic_sub_fetch(&used_pages, pages, __ATOMIC_RELAXED);
}

void zc__pipepool_init(struct zc_pipepool *pp, unsigned want, unsigned max_used)
{
	pthread_once(&budget_once, budget_init);
	memset(pp, 0, sizeof(*pp));
	if (want == 0)
		want = DEFAULT_PIPE;
	if (want > max_pipe_size)
		want = (unsigned)max_pipe_size;
	if (want < PAGE)
		want = PAGE;
	pp->pp_want = want;
	pp->pp_max_used = max_used ? max_used : 4096;
	pp->pp_max_free = 64;
	pp->pp_pipe2 = pipe2;
}

static void pipe_destroy(struct zc_pipe *p)
{
	close(p->p_rfd);
	close(p->p_wfd);
	if (p->p_big)
		budget_give(p->p_size / PAGE);
	free(p);
}

/* Enlarges a new pipe if the budget allows; the size is read back. */
static void pipe_size_up(struct zc_pipepool *pp, struct zc_pipe *p)
{
	unsigned long pages = pp->pp_want / PAGE;
	int sz;

	if (budget_take(pages)) {
		if (fcntl(p->p_wfd, F_SETPIPE_SZ, (int)pp->pp_want) >= 0)
			p->p_big = 1;
		else
			budget_give(pages); /* EPERM: keep the default size */
	}
	sz = fcntl(p->p_wfd, F_GETPIPE_SZ);
	p->p_size = sz > 0 ? (unsigned)sz : (unsigned)PAGE;
	if (p->p_size < pp->pp_want)
		pp->pp_nsmall++;
	if (p->p_big && p->p_size != pp->pp_want) {
		/* The kernel rounds up to a power of two pages. */
		budget_give(pages);
		p->p_big = budget_take(p->p_size / PAGE) ? 1 : 0;
	}
}

int zc__pipe_get(struct zc_pipepool *pp, struct zc_pipe **out)
{
	struct zc_pipe *p = pp->pp_free;
	int fds[2];

	if (p) {
		pp->pp_free = p->p_next;
		pp->pp_nfree--;
		goto done;
	}
	if (pp->pp_nused >= pp->pp_max_used)
		return -ENOBUFS;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (pp->pp_pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) {
		int err = zc__neg_errno();

		free(p);
		return err;
	}
	p->p_rfd = fds[0];
	p->p_wfd = fds[1];
	p->p_big = 0;
	pipe_size_up(pp, p);
done:
	p->p_next = NULL;
	pp->pp_nused++;
	*out = p;
	return 0;
}

void zc__pipe_put(struct zc_pipepool *pp, struct zc_pipe *p, int dirty)
{
	pp->pp_nused--;
	if (dirty || pp->pp_nfree >= pp->pp_max_free) {
		pipe_destroy(p);
		return;
	}
	p->p_next = pp->pp_free;
	pp->pp_free = p;
	pp->pp_nfree++;
}

void zc__pipe_take(struct zc_pipepool *pp, struct zc_pipe *p, int *rfd,
                   int *wfd)
{
	pp->pp_nused--;
	*rfd = p->p_rfd;
	*wfd = p->p_wfd;
	if (p->p_big)
		budget_give(p->p_size / PAGE);
	free(p);
}

/* 1 if rfd is a pipe's read end and wfd the write end of the same pipe. */
static int pipe_ends_match(int rfd, int wfd)
{
	struct stat a, b;

	if (fstat(rfd, &a) == -1 || fstat(wfd, &b) == -1)
		return 0;
	if (!S_ISFIFO(a.st_mode) || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino)
		return 0;
	return (fcntl(rfd, F_GETFL) & O_ACCMODE) == O_RDONLY &&
	       (fcntl(wfd, F_GETFL) & O_ACCMODE) == O_WRONLY;
}

/* Sets O_NONBLOCK and FD_CLOEXEC on fd; 0 or -errno. */
static int pipe_fd_prepare(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return zc__neg_errno();
	return 0;
}

int zc__pipe_adopt(struct zc_pipepool *pp, int rfd, int wfd,
                   struct zc_pipe **out)
{
	struct zc_pipe *p;
	int sz, err;

	if (!pipe_ends_match(rfd, wfd))
		return -EINVAL;
	if (pp->pp_nused >= pp->pp_max_used)
		return -ENOBUFS;
	if ((err = pipe_fd_prepare(rfd)) || (err = pipe_fd_prepare(wfd)))
		return err;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->p_rfd = rfd;
	p->p_wfd = wfd;
	sz = fcntl(wfd, F_GETPIPE_SZ);
	p->p_size = sz > 0 ? (unsigned)sz : (unsigned)PAGE;
	/* Its pages were charged to the sender's budget, which gave them
	 * back when the pipe left; this process counts them from now. */
	p->p_big = p->p_size > 16 * PAGE && budget_take(p->p_size / PAGE);
	pp->pp_nused++;
	*out = p;
	return 0;
}

int zc__pipe_write_all(struct zc_pipe *p, const char *at, size_t len)
{
	size_t done;
	ssize_t k;

	for (done = 0; done < len; done += (size_t)k) {
		k = write(p->p_wfd, at + done, len - done);
		if (k <= 0)
			return k < 0 && errno != EAGAIN ? zc__neg_errno()
			                                : -ENOBUFS;
	}
	return 0;
}

int zc__pipe_grow(struct zc_pipepool *pp, struct zc_pipe *p, size_t need)
{
	int sz;

	if (p->p_size >= need)
		return 0;
	if (need > INT_MAX || fcntl(p->p_wfd, F_SETPIPE_SZ, (int)need) == -1)
		return -ENOBUFS;
	sz = fcntl(p->p_wfd, F_GETPIPE_SZ);
	if (sz <= 0)
		return -ENOBUFS;
	if (p->p_big)
		budget_give(p->p_size / PAGE);
	p->p_size = (unsigned)sz;
	p->p_big = budget_take(p->p_size / PAGE);
	return p->p_size >= need ? 0 : -ENOBUFS;
}

void zc__pipepool_fini(struct zc_pipepool *pp)
{
	struct zc_pipe *p;

	while ((p = pp->pp_free)) {
		pp->pp_free = p->p_next;
		pipe_destroy(p);
	}
	pp->pp_nfree = 0;
}

/*
 * Copy buffers are mappings of their own, not heap memory: a burst that
 * holds many at once (thousands of slow readers, or a pipe shortage that
 * sends drains through buffers) gives them back to the system when it
 * ends, beyond the pool's cache. From the heap, 64 KiB chunks freed
 * between live ones stayed in the process (the soak's uring-splice path
 * ended 20 to 70 MiB above its start, run to run).
 */
static struct zc_buf *buf_map(void)
{
	void *m = mmap(NULL, sizeof(struct zc_buf), PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return m == MAP_FAILED ? NULL : m;
}

static void buf_unmap(struct zc_buf *b)
{
	munmap(b, sizeof(*b));
}

struct zc_buf *zc__buf_get(struct zc_bufpool *bp)
{
	struct zc_buf *b = bp->bp_free;

	if (b) {
		bp->bp_free = b->b_next;
		bp->bp_nfree--;
	} else {
		b = buf_map();
		if (!b)
			return NULL;
	}
	bp->bp_nused++;
	return b;
}

void zc__buf_put(struct zc_bufpool *bp, struct zc_buf *b)
{
	bp->bp_nused--;
	if (bp->bp_nfree >= bp->bp_max_free) {
		buf_unmap(b);
		return;
	}
	b->b_next = bp->bp_free;
	bp->bp_free = b;
	bp->bp_nfree++;
}

void zc__bufpool_fini(struct zc_bufpool *bp)
{
	struct zc_buf *b;

	while ((b = bp->bp_free)) {
		bp->bp_free = b->b_next;
		buf_unmap(b);
	}
	bp->bp_nfree = 0;
}

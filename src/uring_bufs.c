/*
 * uring_bufs.c - the ring mover's provided-buffer ring (uring.h), one
 * per io_uring loop, registered on the first ring relay.
 *
 * The buffer ring (IORING_REGISTER_PBUF_RING, 5.19) is group 0,
 * ring_bufs buffers of ring_buf_size bytes in one anonymous mapping.
 * The kernel takes a buffer only when a multishot recv has bytes to put
 * in it, so an idle relay holds none; the memory is touched only where
 * data went. A buffer comes back to the ring when its last reference
 * goes: the queue of the direction that received it, and each send (or
 * SEND_ZC until its notification) that reads it.
 *
 * Spares: when the ring is empty (-ENOBUFS) the mover may receive into
 * a spare buffer instead, allocated here and cached (at most
 * SPARE_CACHE). That keeps a relay moving while others hold every ring
 * buffer, so a slow peer elsewhere can never stall it.
 *
 * Only built with liburing.
 */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <liburing.h>

#include "log.h"
#include "loop.h"
#include "uring-t.h"
#include "uring.h"

#define RING_BUFS_DEFAULT   256U
#define RING_BUF_DEFAULT    (64U * 1024U)
#define RING_ZC_MIN_DEFAULT UINT32_MAX /* see docs/benchmarks.md */
#define SPARE_CACHE         16U

struct ur_bufs {
	struct io_uring_buf_ring *br;
	size_t br_len;
	char *mem; /* nbufs * size */
	size_t mem_len;
	unsigned nbufs, mask;
	size_t size, zc_min;
	struct zc_ubuf *tab; /* nbufs ring entries, then spares */
	unsigned ntab, captab;
	int spare_free;        /* free spare ids, linked through next */
	unsigned spare_cached; /* free spares that kept their memory */
};

/* Spare buffers are mappings of their own, not malloc() memory: a burst
 * of ring shortages can take hundreds of them, and unmapped they give
 * their pages back (freed 64 KiB heap chunks stayed resident: the soak
 * saw the daemon's RSS stay 59 MiB up after the load). NULL: no memory. */
static char *spare_map(const struct ur_bufs *b)
{
	void *p = mmap(NULL, b->size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void spare_unmap(const struct ur_bufs *b, char *data)
{
	if (data)
		munmap(data, b->size);
}

static void bufs_release(struct ur_bufs *b)
{
	unsigned i;

	for (i = b->nbufs; i < b->ntab; i++)
		spare_unmap(b, b->tab[i].data);
	free(b->tab);
	if (b->mem)
		munmap(b->mem, b->mem_len);
	if (b->br)
		munmap(b->br, b->br_len);
	free(b);
}

/* Puts ring buffer id at the ring's tail: the kernel may use it again. */
static void bufs_recycle(struct ur_bufs *b, unsigned id)
{
	io_uring_buf_ring_add(b->br, b->tab[id].data, (unsigned)b->size,
	                      (unsigned short)id, (int)b->mask, 0);
	io_uring_buf_ring_advance(b->br, 1);
}

/* The SEND_ZC threshold when the options leave it 0: ZC_RING_ZC=BYTES
 * in the environment (benchmarks), else the default. */
static size_t ring_zc_env(void)
{
	const char *env = getenv("ZC_RING_ZC");
	unsigned long v;
	char *end;

	if (!env || !*env)
		return RING_ZC_MIN_DEFAULT;
	v = strtoul(env, &end, 10);
	return *end || !v ? RING_ZC_MIN_DEFAULT : v;
}

static int bufs_alloc(struct zc_loop *loop, struct ur_bufs **out)
{
	unsigned n = loop->ring_bufs ? loop->ring_bufs : RING_BUFS_DEFAULT;
	size_t size =
	        loop->ring_buf_size ? loop->ring_buf_size : RING_BUF_DEFAULT;
	struct ur_bufs *b = calloc(1, sizeof(*b));
	unsigned i;

	if (!b)
		return -ENOMEM;
	b->nbufs = n;
	b->mask = n - 1;
	b->size = size;
	b->zc_min = loop->ring_zc_min ? loop->ring_zc_min : ring_zc_env();
	b->spare_free = -1;
	b->br_len = (n * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
	b->mem_len = (size_t)n * size;
	b->br = mmap(NULL, b->br_len, PROT_READ | PROT_WRITE,
	             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b->mem = mmap(NULL, b->mem_len, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	b->captab = n + 64;
	b->tab = calloc(b->captab, sizeof(*b->tab));
	if (b->br == MAP_FAILED)
		b->br = NULL;
	if (b->mem == MAP_FAILED)
		b->mem = NULL;
	if (!b->br || !b->mem || !b->tab) {
		bufs_release(b);
		return -ENOMEM;
	}
	b->ntab = n;
	io_uring_buf_ring_init(b->br);
	for (i = 0; i < n; i++) {
		b->tab[i].data = b->mem + (size_t)i * size;
		b->tab[i].next = -1;
		io_uring_buf_ring_add(b->br, b->tab[i].data, (unsigned)size,
		                      (unsigned short)i, (int)b->mask, (int)i);
	}
	io_uring_buf_ring_advance(b->br, (int)n);
	*out = b;
	return 0;
}

/* The engine's fini hook (after io_uring_queue_exit): frees the buffer
 * ring once no request is armed, else leaves it (the kernel may still
 * write into it). */
static void bufs_fini(struct ur *ur)
{
	const struct zc_list *n;

	if (!ur->bufs)
		return;
	for (n = ur->reqs.next; n != &ur->reqs; n = n->next)
		if (((const struct ur_hdr *)n)->armed)
			return; /* the kernel may still use them: leave them */
	bufs_release(ur->bufs);
	ur->bufs = NULL;
}

int zc__ubuf_init(struct zc_loop *loop)
{
	struct ur *ur = zc__ur_of(loop);
	struct io_uring_buf_reg reg;
	struct ur_bufs *b;
	int err;

	if (!ur)
		return -EOPNOTSUPP;
	if (ur->bufs)
		return 0;
	err = bufs_alloc(loop, &b);
	if (err)
		return err;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)b->br;
	reg.ring_entries = b->nbufs;
	reg.bgid = 0;
	err = io_uring_register_buf_ring(&ur->ring, &reg, 0);
	if (err) {
		zc__log(loop, ZC_LOG_INFO, "io_uring buffer ring: %s",
		        zc_strerror(err));
		bufs_release(b);
		return err;
	}
	ur->bufs = b;
	ur->bufs_fini = bufs_fini;
	loop->st.ring_bufs = b->nbufs;
	return 0;
}

struct zc_ubuf *zc__ubuf(struct zc_loop *loop, int id)
{
	return &zc__ur_of(loop)->bufs->tab[id];
}

unsigned zc__ubuf_count(const struct zc_loop *loop)
{
	return zc__ur_of(loop)->bufs->nbufs;
}

size_t zc__ubuf_size(const struct zc_loop *loop)
{
	return zc__ur_of(loop)->bufs->size;
}

size_t zc__ubuf_zc_min(const struct zc_loop *loop)
{
	return zc__ur_of(loop)->bufs->zc_min;
}

unsigned zc__ubuf_avail(const struct zc_loop *loop)
{
	return zc__ur_of(loop)->bufs->nbufs - (unsigned)loop->st.ring_bufs_used;
}

int zc__ubuf_spare(struct zc_loop *loop)
{
	struct ur_bufs *b = zc__ur_of(loop)->bufs;
	struct zc_ubuf *t;
	int id = b->spare_free;

	if (id < 0) {
		if (b->ntab == b->captab) {
			t = realloc(b->tab, 2 * b->captab * sizeof(*t));
			if (!t)
				return -ENOMEM;
			b->tab = t;
			b->captab *= 2;
		}
		id = (int)b->ntab++;
		b->tab[id] = (struct zc_ubuf){.next = -1};
	} else {
		b->spare_free = b->tab[id].next;
		if (b->tab[id].data)
			b->spare_cached--;
	}
	t = &b->tab[id];
	if (!t->data && !(t->data = spare_map(b))) {
		t->next = b->spare_free;
		b->spare_free = id;
		return -ENOMEM;
	}
	t->refs = 1;
	t->len = 0;
	t->next = -1;
	return id;
}

void zc__ubuf_put(struct zc_loop *loop, int id)
{
	struct ur_bufs *b = zc__ur_of(loop)->bufs;
	struct zc_ubuf *t = &b->tab[id];

	if (--t->refs)
		return;
	if ((unsigned)id < b->nbufs) {
		bufs_recycle(b, (unsigned)id);
		loop->st.ring_bufs_used--;
		return;
	}
	if (b->spare_cached < SPARE_CACHE) {
		b->spare_cached++;
	} else {
		spare_unmap(b, t->data);
		t->data = NULL;
	}
	t->next = b->spare_free;
	b->spare_free = id;
}

/*
 * load.c - zcsoak's sessions: clients that connect to the daemon, wait,
 * send a header and their bytes and check what comes back, and the
 * upstream ends that check what the clients sent and answer. One epoll
 * loop per thread (edge-triggered), no locks: each thread owns its
 * clients, its upstream listeners and the connections they accept; the
 * counters are read by the main thread with relaxed atomic loads.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "soak.h"

int soak_stopping; /* atomic */
int soak_quitting; /* atomic */

void soak_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "zcsoak: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

uint64_t soak_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* The byte stream                                                      */

uint64_t soak_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Bytes off..off+len-1 of stream seed: byte i is byte i % 8 (little
 * endian) of soak_mix64(seed + i / 8 * golden). Any cut gives the same bytes. */
static void stream_fill(uint64_t seed, uint64_t off, unsigned char *buf,
                        size_t len)
{
	uint64_t k = off / 8, w;
	size_t i = 0;
	unsigned skip = (unsigned)(off % 8);

	while (i < len) {
		w = soak_mix64(seed + k++ * 0x9e3779b97f4a7c15ULL);
		if (skip == 0 && len - i >= 8) {
			memcpy(buf + i, &w, 8);
			i += 8;
			continue;
		}
		for (; skip < 8 && i < len; skip++)
			buf[i++] = (unsigned char)(w >> (8 * skip));
		skip = 0;
	}
}

/* A small xorshift for the test's own choices (sizes, holds). */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A direction's size: 0 B, 1 KiB, 64 KiB, 1 MiB, or rarely 16 MiB. */
static uint64_t pick_size(uint64_t *s)
{
	unsigned r = (unsigned)(rnd(s) % 1000);

	if (r < soak_opt.big_permille)
		return 16u << 20;
	r = (unsigned)(rnd(s) % 100);
	if (r < 25)
		return 0;
	if (r < 65)
		return 1024;
	if (r < 94)
		return 65536;
	return 1u << 20;
}

static void cnt_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

uint64_t soak_cnt(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Notes a failure of c (NULL: a client that could not be opened) in
 * t's report, as long as there is room. */
static void note_err(struct sthread *t, const struct sconn *c, const char *what,
                     int err)
{
	size_t len = strlen(t->errs);

	if (len < sizeof(t->errs) - 64)
		snprintf(t->errs + len, sizeof(t->errs) - len,
		         " %s#%llx:%s%s%s",
		         !c                    ? "new"
		         : c->kind == K_CLIENT ? "client"
		                               : "upstream",
		         c ? (unsigned long long)c->id : 0ULL, what,
		         err ? "=" : "", err ? strerrorname_np(err) : "");
}

static void conn_link(struct sthread *t, struct sconn *c)
{
	c->prev = NULL;
	c->next = t->live;
	if (t->live)
		t->live->prev = c;
	t->live = c;
}

/* Closes c and frees it, unless it sits in the hold wheel: then the
 * wheel frees it (or soak_thread_fini, at the end). */
static void conn_close(struct sthread *t, struct sconn *c, int ok)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		t->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->kind == K_CLIENT && c->state == S_CONNECTING)
		t->connecting--;
	close(c->fd);
	if (c->kind == K_CLIENT) {
		cnt_add(&t->n.live_clients, (uint64_t)-1);
		cnt_add(ok ? &t->n.clients_ok : &t->n.failed, 1);
	} else {
		cnt_add(&t->n.live_ups, (uint64_t)-1);
		cnt_add(ok ? &t->n.ups_ok : &t->n.failed, 1);
	}
	if (c->state == S_HOLD)
		c->state = S_DEAD;
	else
		free(c);
}

/* Ends c as a failure: what it still expected counts as lost. */
static void conn_fail(struct sthread *t, struct sconn *c, const char *what,
                      int err)
{
	note_err(t, c, what, err);
	cnt_add(&t->n.lost, c->in_len - c->in_off);
	conn_close(t, c, 0);
}

/* Checks n received bytes against the stream; returns 0, or -1 if c
 * failed (and was freed). */
static int conn_check(struct sthread *t, struct sconn *c, size_t n)
{
	uint64_t bad = 0;
	size_t i, ok = n;

	if (c->in_off + n > c->in_len) {
		ok = (size_t)(c->in_len - c->in_off);
		bad = n - ok; /* bytes nobody sent */
	}
	stream_fill(c->in_seed, c->in_off, t->want, ok);
	if (memcmp(t->buf, t->want, ok))
		for (i = 0; i < ok; i++)
			bad += t->buf[i] != t->want[i];
	c->in_off += n;
	cnt_add(c->kind == K_CLIENT ? &t->n.bytes_down : &t->n.bytes_up, ok);
	if (!bad)
		return 0;
	cnt_add(&t->n.corrupt, bad);
	c->in_off = c->in_len; /* counted as corrupt, not as lost */
	conn_fail(t, c, "corrupt", 0);
	return -1;
}

/* The upstream's header has arrived: what follows. -1 if bad. */
static int hdr_parse(struct sthread *t, struct sconn *c)
{
	uint32_t magic;

	memcpy(&magic, c->hdr, 4);
	memcpy(&c->id, c->hdr + 8, 8);
	memcpy(&c->in_len, c->hdr + 16, 8);
	memcpy(&c->out_len, c->hdr + 24, 8);
	if (magic != MAGIC) {
		cnt_add(&t->n.corrupt, HDR_LEN);
		conn_fail(t, c, "bad-header", 0);
		return -1;
	}
	c->in_seed = soak_mix64(soak_opt.seed ^ (c->id * 2));
	c->out_seed = soak_mix64(soak_opt.seed ^ (c->id * 2 + 1));
	return 0;
}

/* Reads until EAGAIN or EOF. 0, or -1 if c was freed. */
static int conn_read(struct sthread *t, struct sconn *c)
{
	ssize_t n;

	while (!c->rd_done) {
		if (c->kind == K_UPSTREAM && c->hdr_off < HDR_LEN) {
			n = read(c->fd, c->hdr + c->hdr_off,
			         HDR_LEN - c->hdr_off);
			if (n > 0 && (c->hdr_off += (unsigned)n) == HDR_LEN &&
			    hdr_parse(t, c))
				return -1;
		} else {
			n = read(c->fd, t->buf, CHUNK);
			if (n > 0 && conn_check(t, c, (size_t)n))
				return -1;
		}
		if (n == 0) {
			if (c->in_off != c->in_len ||
			    (c->kind == K_UPSTREAM && c->hdr_off < HDR_LEN)) {
				conn_fail(t, c, "early-eof", 0);
				return -1;
			}
			c->rd_done = 1;
		} else if (n == -1 && errno == EAGAIN) {
			return 0;
		} else if (n == -1 && errno != EINTR) {
			conn_fail(t, c, "read", errno);
			return -1;
		}
	}
	return 0;
}

/* Writes until EAGAIN or done (then shuts the write side). 0 or -1. */
static int conn_write(struct sthread *t, struct sconn *c)
{
	size_t len, off;
	ssize_t n;

	if (c->wr_done || c->state != S_RUN ||
	    (c->kind == K_UPSTREAM && c->hdr_off < HDR_LEN))
		return 0;
	while (c->out_off < c->out_len || c->hdr_off < HDR_LEN) {
		off = 0;
		if (c->hdr_off < HDR_LEN) { /* a client's header first */
			off = HDR_LEN - c->hdr_off;
			memcpy(t->buf, c->hdr + c->hdr_off, off);
		}
		len = c->out_len - c->out_off;
		if (len > CHUNK - off)
			len = CHUNK - off;
		stream_fill(c->out_seed, c->out_off, t->buf + off, len);
		n = send(c->fd, t->buf, off + len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			conn_fail(t, c, "write", errno);
			return -1;
		}
		if ((size_t)n < off) {
			c->hdr_off += (unsigned)n;
			continue;
		}
		c->hdr_off = HDR_LEN;
		c->out_off += (uint64_t)n - off;
	}
	if (shutdown(c->fd, SHUT_WR) == -1) {
		conn_fail(t, c, "shutdown", errno);
		return -1;
	}
	c->wr_done = 1;
	return 0;
}

static void conn_io(struct sthread *t, struct sconn *c)
{
	if (conn_write(t, c) || conn_read(t, c))
		return;
	if (c->kind == K_UPSTREAM && c->hdr_off == HDR_LEN && !c->wr_done &&
	    conn_write(t, c))
		return;
	if (c->wr_done && c->rd_done)
		conn_close(t, c, 1);
}

static void wheel_add(struct sthread *t, struct sconn *c)
{
	uint64_t tick = c->hold_due / 10;
	struct sconn **slot;

	if (tick < t->wheel_at)
		tick = t->wheel_at;
	slot = &t->wheel[tick % WHEEL];
	c->wnext = *slot;
	*slot = c;
}

/* Starts the clients whose hold is over; all of them once the load
 * stops, so that the last sessions end soon. */
static void wheel_run(struct sthread *t)
{
	int stop = __atomic_load_n(&soak_stopping, __ATOMIC_RELAXED);
	uint64_t now = stop ? t->wheel_at + WHEEL - 1 : soak_now_ms() / 10;
	struct sconn *c, *next, *keep;

	for (; t->wheel_at <= now; t->wheel_at++) {
		c = t->wheel[t->wheel_at % WHEEL];
		t->wheel[t->wheel_at % WHEEL] = NULL;
		keep = NULL;
		for (; c; c = next) {
			next = c->wnext;
			if (!stop && c->hold_due / 10 > t->wheel_at) {
				c->wnext = keep; /* a later lap */
				keep = c;
				continue;
			}
			if (c->state == S_DEAD) {
				free(c);
				continue;
			}
			c->state = S_RUN;
			conn_io(t, c);
		}
		t->wheel[t->wheel_at % WHEEL] = keep;
	}
}

/* A new client: connects from 127.0.0.(1 + seq % 200) so that the
 * 4-tuples do not run out. 0 or -errno. */
static int client_open(struct sthread *t)
{
	struct sockaddr_in src = {.sin_family = AF_INET};
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
	                                   EPOLLET};
	struct sconn *c = calloc(1, sizeof(*c));
	uint32_t magic = MAGIC, zero = 0;
	int one = 1;

	if (!c)
		return -ENOMEM;
	c->kind = K_CLIENT;
	c->id = ((uint64_t)t->idx << 48) | t->seq;
	src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(t->seq % 200));
	t->seq++;
	c->out_len = pick_size(&t->rng);
	c->in_len = pick_size(&t->rng);
	c->out_seed = soak_mix64(soak_opt.seed ^ (c->id * 2));
	c->in_seed = soak_mix64(soak_opt.seed ^ (c->id * 2 + 1));
	memcpy(c->hdr, &magic, 4);
	memcpy(c->hdr + 4, &zero, 4);
	memcpy(c->hdr + 8, &c->id, 8);
	memcpy(c->hdr + 16, &c->out_len, 8);
	memcpy(c->hdr + 24, &c->in_len, 8);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		free(c);
		return -errno;
	}
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
	           sizeof(one));
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) == -1 ||
	    (connect(c->fd, (struct sockaddr *)&t->relay, sizeof(t->relay)) ==
	             -1 &&
	     errno != EINPROGRESS)) {
		int err = -errno;

		close(c->fd);
		free(c);
		return err;
	}
	ev.data.ptr = c;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		soak_die("epoll_ctl: %s", strerror(errno));
	t->connecting++;
	conn_link(t, c);
	cnt_add(&t->n.opened, 1);
	cnt_add(&t->n.live_clients, 1);
	return 0;
}

/* A client's connect completed (or failed). */
static void client_connected(struct sthread *t, struct sconn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		conn_fail(t, c, "connect", err);
		return;
	}
	t->connecting--;
	c->state = S_HOLD;
	c->hold_due =
	        soak_now_ms() +
	        (soak_opt.hold_ms ? rnd(&t->rng) % (2 * soak_opt.hold_ms + 1)
	                          : 0);
	wheel_add(t, c);
}

static void upstream_accept(struct sthread *t, int lfd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
	                                   EPOLLET};
	struct sconn *c;
	int fd;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				soak_die("accept: %s", strerror(errno));
			if (errno == EAGAIN)
				return;
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c)
			soak_die("out of memory");
		c->fd = fd;
		c->kind = K_UPSTREAM;
		c->state = S_RUN;
		c->id = (uint64_t)-1;
		ev.data.ptr = c;
		if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			soak_die("epoll_ctl: %s", strerror(errno));
		conn_link(t, c);
		cnt_add(&t->n.ups_accepted, 1);
		cnt_add(&t->n.live_ups, 1);
		conn_io(t, c);
	}
}

void *soak_thread_main(void *arg)
{
	struct sthread *t = arg;
	struct epoll_event evs[256];
	struct sconn *c;
	int i, n, err;

	t->wheel_at = soak_now_ms() / 10;
	while (!__atomic_load_n(&soak_quitting, __ATOMIC_RELAXED)) {
		while (!__atomic_load_n(&soak_stopping, __ATOMIC_RELAXED) &&
		       soak_cnt(&t->n.live_clients) < t->target &&
		       t->connecting < MAX_CONNECTING) {
			err = client_open(t);
			if (err) {
				note_err(t, NULL, "open", -err);
				cnt_add(&t->n.failed, 1);
				break;
			}
		}
		n = epoll_wait(t->ep, evs, 256, 10);
		for (i = 0; i < n; i++) {
			c = evs[i].data.ptr;
			if (c->kind == K_LISTENER)
				upstream_accept(t, c->fd);
			else if (c->state == S_CONNECTING)
				client_connected(t, c);
			else
				conn_io(t, c);
		}
		wheel_run(t);
	}
	return NULL;
}

uint64_t soak_thread_fini(struct sthread *t)
{
	struct sconn *c, *next;
	uint64_t stuck = 0;
	unsigned k;

	while (t->live) {
		note_err(t, t->live, "stuck", 0);
		conn_close(t, t->live, 0);
		stuck++;
	}
	/* Every conn left in the wheel is S_DEAD now. */
	for (k = 0; k < WHEEL; k++) {
		for (c = t->wheel[k]; c; c = next) {
			next = c->wnext;
			free(c);
		}
		t->wheel[k] = NULL;
	}
	return stuck;
}

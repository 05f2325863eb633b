/*
 * tnet.c - socket fixtures, fd counting, the test byte stream and the
 * checked transfer threads (see tnet.h). The loop and daemon harnesses
 * are in tharness.c.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tnet.h"

#define XFER_BUF (256 * 1024)

uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t t_now_ms(void)
{
	return t_now_ns() / 1000000u;
}

void t_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Calls fn for each fd of this process with its readlink target;
 * returns how many fn accepted (returned 1), or -errno. */
static int fd_scan(int (*fn)(const char *target))
{
	char path[64], target[256];
	struct dirent *de;
	int count = 0, fd;
	ssize_t n;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		count += fn(target);
	}
	closedir(d);
	return count;
}

static int any_fd(const char *target)
{
	return 1;
}

static int pipe_fd(const char *target)
{
	return !strncmp(target, "pipe:", 5);
}

int t_fd_count(void)
{
	return fd_scan(any_fd);
}

int t_pipe_count(void)
{
	return fd_scan(pipe_fd);
}

int t_write_tmp(const char *name, const char *text, char *path, size_t size)
{
	size_t len = strlen(text);
	int fd, err;

	if ((size_t)snprintf(path, size, "%s/%s", t_tmpdir(), name) >= size)
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return -errno;
	err = t_write_all(fd, text, len);
	close(fd);
	return err;
}

/* ------------------------------------------------------------------ */
/* Sockets                                                              */

int t_have_ipv6(void)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	int fd, ok;

	sin6.sin6_addr = in6addr_loopback;
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return 0;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

/* A loopback (or, for AF_UNIX, new-directory) address with port 0. */
static int make_addr(int family, struct zc_addr *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
	char dir[sizeof(sun->sun_path)];
	int n;

	memset(a, 0, sizeof(*a));
	switch (family) {
	case AF_INET:
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->len = sizeof(*sin);
		return 0;
	case AF_INET6:
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		a->len = sizeof(*sin6);
		return 0;
	case AF_UNIX:
		n = snprintf(dir, sizeof(dir), "%s/u.XXXXXX", t_tmpdir());
		if (n < 0 || (size_t)n + 2 >= sizeof(dir))
			return -ENAMETOOLONG;
		if (!mkdtemp(dir))
			return -errno;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, dir, (size_t)n);
		memcpy(sun->sun_path + n, "/s", 3);
		a->len = sizeof(*sun);
		return 0;
	}
	return -EAFNOSUPPORT;
}

void t_cleanup_unix(const struct zc_addr *a)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
	char path[sizeof(sun->sun_path) + 1];

	if (a->ss.ss_family != AF_UNIX || !sun->sun_path[0])
		return;
	memcpy(path, sun->sun_path, sizeof(sun->sun_path));
	path[sizeof(sun->sun_path)] = '\0';
	unlink(path);
	rmdir(dirname(path));
}

/* Binds a fresh socket of a's family to a and stores the bound address
 * back (the ephemeral port). Returns the fd or -errno. */
static int bind_addr(struct zc_addr *a)
{
	int fd, err;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a->ss, a->len) == -1)
		goto fail;
	if (a->ss.ss_family != AF_UNIX) {
		a->len = sizeof(a->ss);
		if (getsockname(fd, (struct sockaddr *)&a->ss, &a->len) == -1)
			goto fail;
	}
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int t_listen(int family, struct zc_addr *out)
{
	int fd, err;

	T_TRY(make_addr(family, out));
	fd = bind_addr(out);
	if (fd < 0) {
		t_cleanup_unix(out);
		return fd;
	}
	if (listen(fd, SOMAXCONN) == -1) {
		err = -errno;
		close(fd);
		t_cleanup_unix(out);
		return err;
	}
	return fd;
}

int t_free_addr(int family, struct zc_addr *out)
{
	static unsigned seed, next;
	uint16_t port;
	int fd, err, try;

	if (!seed) {
		seed = (unsigned)getpid() ^ (unsigned)t_now_ns();
		next = (unsigned)rand_r(&seed);
	}

	err = make_addr(family, out);
	if (err || family == AF_UNIX)
		return err;
	/*
	 * A port below the kernel's ephemeral range (32768+): one the kernel
	 * handed out for port 0 could be handed out again to a listener or a
	 * client of the same test before the daemon binds it. 25000-32699
	 * also stays clear of bench/ (21xxx) and the demo (24xxx). The
	 * ports are walked in turn from a random start, not drawn: two
	 * draws for one daemon (its listener and its admin endpoint) met
	 * once in every few thousand starts, and the second bind failed.
	 */
	for (try = 0; try < 200; try++) {
		port = (uint16_t)(25000 + next++ % 7700);
		if (family == AF_INET)
			((struct sockaddr_in *)&out->ss)->sin_port =
			        htons(port);
		else
			((struct sockaddr_in6 *)&out->ss)->sin6_port =
			        htons(port);
		fd = bind_addr(out);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (fd != -EADDRINUSE)
			return fd;
	}
	return -EADDRINUSE;
}

int t_connect(const struct zc_addr *a)
{
	int fd, err;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int t_accept_ms(int lfd, int timeout_ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int fd, n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return fd == -1 ? -errno : fd;
}

int t_accept(int lfd)
{
	return t_accept_ms(lfd, 10000);
}

int t_pair(int family, int fds[2])
{
	struct zc_addr a;
	int lfd, err;

	fds[0] = fds[1] = -1;
	lfd = t_listen(family, &a);
	if (lfd < 0)
		return lfd;
	fds[0] = t_connect(&a);
	if (fds[0] < 0) {
		err = fds[0];
		goto out;
	}
	fds[1] = t_accept(lfd);
	if (fds[1] < 0) {
		err = fds[1];
		close(fds[0]);
		fds[0] = -1;
		goto out;
	}
	err = 0;
out:
	close(lfd);
	t_cleanup_unix(&a);
	return err;
}

/* write(), or send(MSG_NOSIGNAL) on a socket; -errno on failure. */
static ssize_t write_some(int fd, const void *buf, size_t len, int *notsock)
{
	ssize_t n;

	do {
		if (*notsock)
			n = write(fd, buf, len);
		else
			n = send(fd, buf, len, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	if (n == -1 && errno == ENOTSOCK && !*notsock) {
		*notsock = 1;
		return write_some(fd, buf, len, notsock);
	}
	return n == -1 ? -errno : n;
}

int t_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	int notsock = 0;
	ssize_t n;

	while (len) {
		n = write_some(fd, p, len, &notsock);
		if (n < 0)
			return (int)n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Waits for POLLIN; 0 when readable, -ETIMEDOUT or -errno. */
static int wait_in(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

ssize_t t_read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		T_TRY(wait_in(fd, timeout_ms));
		n = read(fd, (char *)buf + got, len - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int t_wait_eof(int fd, int timeout_ms)
{
	char c;
	ssize_t n;

	T_TRY(wait_in(fd, timeout_ms));
	do {
		n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	} while (n == -1 && errno == EINTR);
	if (n == -1 && errno == ENOTSOCK)
		return 1; /* a pipe with data or EOF: not our business */
	if (n == -1)
		return -errno;
	return n ? 1 : 0;
}

int t_set_linger0(int fd)
{
	struct linger lg = {1, 0};

	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == -1)
		return -errno;
	return 0;
}

int t_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -errno;
	return 0;
}

int t_fd_open(int fd)
{
	return fcntl(fd, F_GETFD) == -1 ? -EBADF : 0;
}

int t_addr_str(const struct zc_addr *a, char *buf, size_t size)
{
	return zc_addr_format((const struct sockaddr *)&a->ss, a->len, buf,
	                      size);
}

/* ------------------------------------------------------------------ */
/* Byte stream                                                          */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** by Blackman and Vigna (public domain). */
static inline uint64_t rng_next(struct t_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

void t_rng_init(struct t_rng *r, uint64_t seed)
{
	int i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

void t_rng_fill(struct t_rng *r, void *buf, size_t len)
{
	unsigned char *p = buf;
	uint64_t w;
	size_t n;

	n = len < r->nleft ? len : r->nleft;
	memcpy(p, r->left + (8 - r->nleft), n);
	r->nleft -= (unsigned)n;
	p += n;
	len -= n;
	for (; len >= 8; p += 8, len -= 8) {
		w = rng_next(r);
		memcpy(p, &w, 8);
	}
	if (len) {
		w = rng_next(r);
		memcpy(r->left, &w, 8);
		memcpy(p, r->left, len);
		r->nleft = 8 - (unsigned)len;
	}
}

void t_expect_digest(uint64_t seed, uint64_t nbytes,
                     unsigned char out[T_SHA256_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = malloc(XFER_BUF);
	struct t_rng r;
	size_t n;

	if (!md || !buf)
		abort();
	t_rng_init(&r, seed);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while (nbytes) {
		n = nbytes < XFER_BUF ? (size_t)nbytes : XFER_BUF;
		t_rng_fill(&r, buf, n);
		EVP_DigestUpdate(md, buf, n);
		nbytes -= n;
	}
	EVP_DigestFinal_ex(md, out, NULL);
	EVP_MD_CTX_free(md);
	free(buf);
}

/* ------------------------------------------------------------------ */
/* Transfer threads                                                     */

static void pause_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};

	if (us)
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
}

/* The sender's loop; the digest covers what was actually written. */
static void xfer_send(struct t_xfer *x, EVP_MD_CTX *md, unsigned char *buf)
{
	uint64_t left = x->count;
	struct t_rng r;
	int notsock = 0;
	size_t n, off;
	ssize_t w;

	t_rng_init(&r, x->seed);
	while (left) {
		n = left < x->chunk ? (size_t)left : x->chunk;
		t_rng_fill(&r, buf, n);
		for (off = 0; off < n; off += (size_t)w) {
			w = write_some(x->fd, buf + off, n - off, &notsock);
			if (w < 0) {
				x->err = (int)w;
				return;
			}
			EVP_DigestUpdate(md, buf + off, (size_t)w);
			x->bytes += (uint64_t)w;
		}
		left -= n;
		pause_us(x->pause_us);
	}
}

static void xfer_recv(struct t_xfer *x, EVP_MD_CTX *md, unsigned char *buf)
{
	uint64_t left;
	size_t want;
	ssize_t n;

	for (;;) {
		want = x->chunk;
		if (x->count) {
			left = x->count - x->bytes;
			if (!left)
				return;
			if (left < want)
				want = (size_t)left;
		}
		n = read(x->fd, buf, want);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			x->err = -errno;
			return;
		}
		if (n == 0) {
			x->eof = 1;
			return;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		x->bytes += (uint64_t)n;
		pause_us(x->pause_us);
	}
}

static void *xfer_main(void *arg)
{
	struct t_xfer *x = arg;
	uint64_t t0 = t_now_ns();
	unsigned char *buf;
	EVP_MD_CTX *md;

	md = EVP_MD_CTX_new();
	buf = malloc(x->chunk);
	if (!md || !buf) {
		x->err = -ENOMEM;
		goto out;
	}
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	if (x->sender)
		xfer_send(x, md, buf);
	else
		xfer_recv(x, md, buf);
	EVP_DigestFinal_ex(md, x->digest, NULL);
out:
	if (x->sender && (x->flags & T_XFER_SHUT_WR))
		shutdown(x->fd, SHUT_WR);
	if (x->sender && (x->flags & T_XFER_CLOSE))
		close(x->fd);
	EVP_MD_CTX_free(md);
	free(buf);
	x->elapsed_ns = t_now_ns() - t0;
	return NULL;
}

static int xfer_start(struct t_xfer *x, int sender, int fd, uint64_t count,
                      uint64_t seed, unsigned flags, size_t chunk,
                      unsigned pause)
{
	int err;

	memset(x, 0, sizeof(*x));
	x->sender = sender;
	x->fd = fd;
	x->count = count;
	x->seed = seed;
	x->flags = flags;
	x->chunk = chunk ? chunk : XFER_BUF;
	x->pause_us = pause;
	err = pthread_create(&x->th, NULL, xfer_main, x);
	if (err) {
		x->joined = 1;
		return -err;
	}
	return 0;
}

int t_sender_start(struct t_xfer *x, int fd, uint64_t nbytes, uint64_t seed,
                   unsigned flags)
{
	return xfer_start(x, 1, fd, nbytes, seed, flags, XFER_BUF, 0);
}

int t_sender_start_paced(struct t_xfer *x, int fd, uint64_t nbytes,
                         uint64_t seed, unsigned flags, size_t chunk,
                         unsigned pause)
{
	return xfer_start(x, 1, fd, nbytes, seed, flags, chunk, pause);
}

int t_receiver_start(struct t_xfer *x, int fd, uint64_t limit)
{
	return xfer_start(x, 0, fd, limit, 0, 0, XFER_BUF, 0);
}

int t_receiver_start_paced(struct t_xfer *x, int fd, uint64_t limit,
                           size_t chunk, unsigned pause)
{
	return xfer_start(x, 0, fd, limit, 0, 0, chunk, pause);
}

int t_xfer_join(struct t_xfer *x)
{
	if (!x->joined) {
		pthread_join(x->th, NULL);
		x->joined = 1;
	}
	return x->err;
}

int t_xfer_join_ms(struct t_xfer *x, int timeout_ms)
{
	struct timespec ts;
	uint64_t ns;
	int err;

	if (x->joined || timeout_ms < 0)
		return t_xfer_join(x);
	/* pthread_timedjoin_np measures against CLOCK_REALTIME. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ns = (uint64_t)ts.tv_nsec + (uint64_t)timeout_ms * 1000000u;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	err = pthread_timedjoin_np(x->th, NULL, &ts);
	if (err)
		return -err;
	x->joined = 1;
	return x->err;
}

/* t_xfer_check, followed by the FIN (then read to EOF) or not (then
 * read exactly n bytes). */
static int xfer_check(int from, int to, uint64_t n, uint64_t seed, int fin)
{
	unsigned char want[T_SHA256_LEN];
	struct t_xfer s, r;

	ASSERT_OK(t_receiver_start(&r, to, fin ? 0 : n));
	ASSERT_OK(t_sender_start(&s, from, n, seed, fin ? T_XFER_SHUT_WR : 0));
	ASSERT_EQ(t_xfer_join(&s), 0);
	ASSERT_EQ(t_xfer_join(&r), 0);
	t_expect_digest(seed, n, want);
	ASSERT_EQ(r.bytes, n);
	if (fin)
		ASSERT_TRUE(r.eof);
	ASSERT_MEMEQ(r.digest, want, T_SHA256_LEN);
	return T_PASS;
}

int t_xfer_check(int from, int to, uint64_t n, uint64_t seed)
{
	return xfer_check(from, to, n, seed, 1);
}

int t_xfer_check_open(int from, int to, uint64_t n, uint64_t seed)
{
	return xfer_check(from, to, n, seed, 0);
}

int t_xfer_both_ways(int c, int u, uint64_t up, uint64_t down, uint64_t seed)
{
	const uint64_t n[2] = {up, down};
	unsigned char want[T_SHA256_LEN];
	struct t_xfer tx[2], rx[2];
	int i;

	ASSERT_OK(t_receiver_start(&rx[0], u, 0));
	ASSERT_OK(t_receiver_start(&rx[1], c, 0));
	ASSERT_OK(t_sender_start(&tx[0], c, up, seed, T_XFER_SHUT_WR));
	ASSERT_OK(t_sender_start(&tx[1], u, down, seed + 1, T_XFER_SHUT_WR));
	for (i = 0; i < 2; i++) {
		ASSERT_OK(t_xfer_join_ms(&tx[i], 60000));
		ASSERT_OK(t_xfer_join_ms(&rx[i], 60000));
	}
	for (i = 0; i < 2; i++) {
		t_expect_digest(seed + (uint64_t)i, n[i], want);
		ASSERT_EQ(tx[i].bytes, n[i]);
		ASSERT_EQ(rx[i].bytes, n[i]);
		ASSERT_TRUE(rx[i].eof);
		ASSERT_MEMEQ(tx[i].digest, want, T_SHA256_LEN);
		ASSERT_MEMEQ(rx[i].digest, want, T_SHA256_LEN);
	}
	return T_PASS;
}

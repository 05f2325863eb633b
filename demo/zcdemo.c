/*
 * zcdemo.c - the fast ends of `make demo`: a sender and a receiver that
 * cost as little as a TCP endpoint can, so that the demo measures the
 * relay and not its ends (socat at both ends topped out near 2.5 Gbit/s).
 *
 *	zcdemo digest MIB              SHA-256 of the first MIB MiB of the stream
 *	zcdemo listen ADDR send MIB    serve the stream to each client
 *	zcdemo listen ADDR recv        receive from each client
 *	zcdemo connect ADDR send MIB   send the stream once
 *	zcdemo connect ADDR recv       receive once
 *
 * The stream is a 4 MiB block of pseudo-random bytes, repeated; the
 * sender writes it straight from memory. The receiver reads 1 MiB at a
 * time and hashes every byte with SHA-256 (OpenSSL: SHA-NI where the CPU
 * has it) as it arrives, so a transfer is checked end to end and its time
 * includes the check. Each transfer prints one line:
 *	send BYTES NS            recv BYTES NS SHA256HEX
 * NS is nanoseconds from the connection's start to the end (recv: EOF).
 * A listener prints "listening on ADDR" first and serves until killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "zcrelay.h"

#define BLOCK   (4u << 20) /* bytes of the repeated block */
#define RECV_SZ (1u << 20) /* bytes per read */

static unsigned char *block;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The block: xorshift64* bytes from a fixed seed (the same every run). */
static int make_block(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, v;
	size_t i;

	block = malloc(BLOCK);
	if (!block)
		return -ENOMEM;
	for (i = 0; i < BLOCK; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		v = x * 0x2545f4914f6cdd1dull;
		memcpy(block + i, &v, 8);
	}
	return 0;
}

static void print_digest(const unsigned char *md)
{
	int i;

	for (i = 0; i < 32; i++)
		printf("%02x", md[i]);
}

/* Prints the SHA-256 of the first bytes of the stream. */
static int digest(uint64_t bytes)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32];
	uint64_t left;
	size_t n;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		return -ENOMEM;
	for (left = bytes; left; left -= n) {
		n = left < BLOCK ? (size_t)left : BLOCK;
		EVP_DigestUpdate(ctx, block, n);
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	print_digest(md);
	printf("\n");
	return 0;
}

/* Writes the first bytes of the stream to fd, then shuts it down for
 * writing and waits for the peer's end (so the time covers delivery). */
static int do_send(int fd, uint64_t bytes, uint64_t t0)
{
	uint64_t left = bytes;
	size_t off = 0, n;
	ssize_t w;
	char c;

	while (left) {
		n = BLOCK - off < left ? BLOCK - off : (size_t)left;
		w = send(fd, block + off, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		left -= (uint64_t)w;
		off = (off + (size_t)w) % BLOCK;
	}
	shutdown(fd, SHUT_WR);
	while (recv(fd, &c, 1, 0) > 0)
		;
	printf("send %llu %llu\n", (unsigned long long)bytes,
	       (unsigned long long)(now_ns() - t0));
	return 0;
}

/* Reads fd until EOF, hashing every byte; prints the recv line. */
static int do_recv(int fd, uint64_t t0)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32], *buf = malloc(RECV_SZ);
	uint64_t bytes = 0;
	ssize_t r;
	int err = 0;

	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		err = -ENOMEM;
	while (!err && (r = recv(fd, buf, RECV_SZ, 0)) != 0) {
		if (r < 0 && errno != EINTR)
			err = -errno;
		if (r > 0) {
			EVP_DigestUpdate(ctx, buf, (size_t)r);
			bytes += (uint64_t)r;
		}
	}
	if (!err) {
		EVP_DigestFinal_ex(ctx, md, NULL);
		printf("recv %llu %llu ", (unsigned long long)bytes,
		       (unsigned long long)(now_ns() - t0));
		print_digest(md);
		printf("\n");
	}
	EVP_MD_CTX_free(ctx);
	free(buf);
	return err;
}

static int transfer(int fd, int sending, uint64_t bytes, uint64_t t0)
{
	int err = sending ? do_send(fd, bytes, t0) : do_recv(fd, t0);

	if (err)
		fprintf(stderr, "zcdemo: %s: %s\n", sending ? "send" : "recv",
		        zc_strerror(err));
	fflush(stdout);
	close(fd);
	return err;
}

/* Serves every client in turn, until killed. */
static int serve(const struct zc_addr *a, int sending, uint64_t bytes)
{
	struct zc_addr la = *a;
	char name[128];
	int lfd, fd;

	lfd = zc_listen(&la, 0, 16);
	if (lfd < 0)
		return lfd;
	la.len = sizeof(la.ss);
	getsockname(lfd, (struct sockaddr *)&la.ss, &la.len);
	zc_addr_format((struct sockaddr *)&la.ss, la.len, name, sizeof(name));
	printf("listening on %s\n", name);
	fflush(stdout);
	fcntl(lfd, F_SETFL, 0); /* zc_listen's socket is non-blocking */
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd >= 0)
			transfer(fd, sending, bytes, now_ns());
	}
}

static int once(const struct zc_addr *a, int sending, uint64_t bytes)
{
	uint64_t t0 = now_ns();
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)&a->ss, a->len))
		return -errno;
	return transfer(fd, sending, bytes, t0);
}

/* "N" MiB as bytes, 1..1048576 MiB; 0 if s is anything else. */
static uint64_t mib(const char *s)
{
	unsigned long long n;
	char c;

	if (sscanf(s, "%llu%c", &n, &c) != 1 || n < 1 || n > (1u << 20))
		return 0;
	return (uint64_t)n << 20;
}

static int usage(void)
{
	fprintf(stderr, "usage: zcdemo digest MIB\n"
	                "       zcdemo listen|connect ADDR send MIB\n"
	                "       zcdemo listen|connect ADDR recv\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct zc_addr a;
	uint64_t bytes = 0;
	int sending, err;

	if (argc == 3 && !strcmp(argv[1], "digest")) {
		if (!(bytes = mib(argv[2])) || make_block())
			return usage();
		return digest(bytes) ? 1 : 0;
	}
	if (argc < 4 || zc_addr_parse(&a, argv[2], ZC_ADDR_PASSIVE))
		return usage();
	sending = !strcmp(argv[3], "send");
	if (sending && argc != 5)
		return usage();
	if (!sending && (strcmp(argv[3], "recv") || argc != 4))
		return usage();
	if (sending && !(bytes = mib(argv[4])))
		return usage();
	if (make_block())
		return 1;
	if (!strcmp(argv[1], "listen"))
		err = serve(&a, sending, bytes);
	else if (!strcmp(argv[1], "connect"))
		err = once(&a, sending, bytes);
	else
		return usage();
	if (err)
		fprintf(stderr, "zcdemo: %s: %s\n", argv[2], zc_strerror(err));
	return err ? 1 : 0;
}

/*
 * spinfloor.c - the floor of a user-space relay's added latency on this
 * machine: a relay with no event system at all, for bench/latency-ab.sh.
 *
 *   spinfloor LISTEN_PORT UPSTREAM_PORT
 *
 * Accepts one client at a time on 127.0.0.1:LISTEN_PORT, connects it to
 * 127.0.0.1:UPSTREAM_PORT, then spins on non-blocking recv() of both
 * sockets and sends what came, until either side closes; then the next
 * client. TCP_NODELAY on both. It never sleeps while a client is
 * connected, so it pays no wake-up: what it adds to a round trip is the
 * two extra loopback hops and four system calls, which any relay pays.
 * Not a relay to use: one client, one CPU spinning, no error recovery.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((unsigned short)port);
	return a;
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Moves what src has to dst. Returns 0 while the pair lives, -1 once
 * either side closed or failed. */
static int pass(int src, int dst, char *buf, size_t cap)
{
	ssize_t n = recv(src, buf, cap, MSG_DONTWAIT), off = 0, w;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return -1;
	while (off < n) {
		w = send(dst, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (w > 0)
			off += w;
	}
	return 0;
}

static void serve(int c, int up_port)
{
	struct sockaddr_in a = loopback(up_port);
	static char buf[65536];
	int u = socket(AF_INET, SOCK_STREAM, 0);

	if (u < 0 || connect(u, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("spinfloor: upstream");
		if (u >= 0)
			close(u);
		return;
	}
	nodelay(c);
	nodelay(u);
	while (pass(c, u, buf, sizeof(buf)) == 0 &&
	       pass(u, c, buf, sizeof(buf)) == 0)
		;
	close(u);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	int l, c, one = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: spinfloor LISTEN_PORT UPSTREAM_PORT\n");
		return 2;
	}
	a = loopback(atoi(argv[1]));
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 ||
	    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(l, 16) < 0) {
		perror("spinfloor: listen");
		return 1;
	}
	for (;;) {
		c = accept(l, NULL, NULL);
		if (c < 0)
			continue;
		serve(c, atoi(argv[2]));
		close(c);
	}
}

/*
 * serve.c - serve a byte range of a file to one client with zc_transfer().
 *
 *	serve LISTEN FILE [OFFSET [LENGTH]]    e.g. serve 127.0.0.1:0 big.iso
 *
 * Prints the address it listens on, waits for one connection, sends
 * LENGTH bytes of FILE from OFFSET (default: all of it) with sendfile or
 * splice where the kernel allows it, closes and prints what moved.
 * A range past the end of the file is refused (Invalid argument).
 * Build: cc serve.c $(pkg-config --cflags --libs zcrelay)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zcrelay.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "serve: %s: %s\n", what, zc_strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	struct zc_addr la;
	struct zc_transfer_opts o;
	struct zc_transfer_stats st;
	char name[128], c;
	int lfd, cfd, file, err;

	zc_transfer_opts_init(&o); /* length -1: to the end of the file */
	o.offset = 0;
	if (argc < 3 || argc > 5 ||
	    (argc > 3 &&
	     (sscanf(argv[3], "%" SCNd64 "%c", &o.offset, &c) != 1 ||
	      o.offset < 0)) ||
	    (argc > 4 &&
	     (sscanf(argv[4], "%" SCNd64 "%c", &o.length, &c) != 1 ||
	      o.length < 0))) {
		fprintf(stderr, "usage: serve LISTEN FILE [OFFSET [LENGTH]]\n");
		return 2;
	}
	if ((file = open(argv[2], O_RDONLY)) < 0)
		return fail(argv[2], -errno);
	if ((err = zc_addr_parse(&la, argv[1], ZC_ADDR_PASSIVE)))
		return fail("address", err);
	if ((lfd = zc_listen(&la, 0, 16)) < 0)
		return fail("listen", lfd);
	fcntl(lfd, F_SETFL, 0); /* zc_listen's socket is non-blocking */
	la.len = sizeof(la.ss);
	getsockname(lfd, (struct sockaddr *)&la.ss, &la.len);
	zc_addr_format((struct sockaddr *)&la.ss, la.len, name, sizeof(name));
	printf("serve: listening on %s\n", name);
	fflush(stdout);

	if ((cfd = accept(lfd, NULL, NULL)) < 0)
		return fail("accept", -errno);
	err = zc_transfer(cfd, file, &o, &st); /* blocks until done */
	printf("serve: %llu bytes from offset %lld, %llu zero-copy, "
	       "%llu copied\n",
	       (unsigned long long)st.bytes, (long long)o.offset,
	       (unsigned long long)st.spliced, (unsigned long long)st.copied);
	close(cfd);
	close(lfd);
	close(file);
	return err ? fail("transfer", err) : 0;
}

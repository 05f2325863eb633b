/*
 * join.c - relay one client to an upstream with zc_splice().
 *
 *	join LISTEN UPSTREAM          e.g. join 127.0.0.1:0 127.0.0.1:80
 *
 * Prints the address it listens on, waits for one connection, connects
 * to UPSTREAM, relays both directions until both have ended (each EOF is
 * forwarded while the other direction keeps flowing), prints what moved
 * and exits. Build: cc join.c $(pkg-config --cflags --libs zcrelay)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zcrelay.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "join: %s: %s\n", what, zc_strerror(err));
	return 1;
}

int main(int argc, char **argv)
{
	struct zc_addr la, ua;
	struct zc_relay_stats st;
	char name[128];
	int lfd, cfd, ufd, err;

	if (argc != 3) {
		fprintf(stderr, "usage: join LISTEN UPSTREAM\n");
		return 2;
	}
	if ((err = zc_addr_parse(&la, argv[1], ZC_ADDR_PASSIVE)) ||
	    (err = zc_addr_parse(&ua, argv[2], 0)))
		return fail("address", err);
	if ((lfd = zc_listen(&la, 0, 16)) < 0)
		return fail("listen", lfd);
	fcntl(lfd, F_SETFL, 0); /* zc_listen's socket is non-blocking */
	la.len = sizeof(la.ss);
	getsockname(lfd, (struct sockaddr *)&la.ss, &la.len);
	zc_addr_format((struct sockaddr *)&la.ss, la.len, name, sizeof(name));
	printf("join: listening on %s\n", name);
	fflush(stdout);

	if ((cfd = accept(lfd, NULL, NULL)) < 0)
		return fail("accept", -errno);
	close(lfd);
	ufd = socket(ua.ss.ss_family, SOCK_STREAM, 0);
	if (ufd < 0 || connect(ufd, (struct sockaddr *)&ua.ss, ua.len))
		return fail("connect", -errno);

	err = zc_splice(cfd, ufd, NULL, &st); /* blocks until both end */
	printf("join: up %llu bytes (%llu spliced), down %llu bytes "
	       "(%llu spliced), end %s\n",
	       (unsigned long long)st.dir[ZC_DIR_AB].bytes,
	       (unsigned long long)st.dir[ZC_DIR_AB].spliced,
	       (unsigned long long)st.dir[ZC_DIR_BA].bytes,
	       (unsigned long long)st.dir[ZC_DIR_BA].spliced,
	       zc_end_name(st.end));
	close(cfd);
	close(ufd);
	return err ? fail("relay", err) : 0;
}

/*
 * embed.c - libzcrelay inside a program of your own: a zc_loop on a
 * thread of its own, your listening socket watched with zc_watch, each
 * client relayed to UPSTREAM with zc_relay_start, and the stop posted
 * from the main thread with zc_loop_post (the one thread-safe call).
 *
 *	embed LISTEN UPSTREAM          runs until SIGINT or SIGTERM
 *
 * Build: cc embed.c $(pkg-config --cflags --libs zcrelay) -lpthread
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zcrelay.h>

static struct zc_loop *loop;
static struct zc_watch *watch;
static struct zc_addr la, ua;
static int lfd;
static unsigned sessions; /* loop thread only until it is joined */

static void done(void *arg, const struct zc_relay_stats *st)
{
	printf("embed: session %u: up %llu down %llu end %s\n", ++sessions,
	       (unsigned long long)st->dir[ZC_DIR_AB].bytes,
	       (unsigned long long)st->dir[ZC_DIR_BA].bytes,
	       zc_end_name(st->end));
	fflush(stdout);
}

static void connected(void *arg, int ufd) /* arg: the client's fd */
{
	int cfd = (int)(intptr_t)arg;

	if (ufd < 0 || zc_relay_start(NULL, loop, cfd, ufd, NULL, done, NULL)) {
		close(cfd); /* on failure the fds are still ours */
		if (ufd >= 0)
			close(ufd);
	}
}

static void readable(void *arg, unsigned events) /* a client waits */
{
	int cfd = accept(lfd, NULL, NULL);

	if (cfd >= 0 &&
	    zc_connect_start(NULL, loop, (struct sockaddr *)&ua.ss, ua.len,
	                     5000, connected, (void *)(intptr_t)cfd))
		close(cfd);
}

static void stop(struct zc_loop *l, void *arg) /* runs on the loop */
{
	zc_watch_stop(watch);
	zc_loop_stop(l);
}

static void *loop_thread(void *arg)
{
	if (zc_watch_start(&watch, loop, lfd, ZC_WATCH_IN, readable, NULL) ||
	    zc_loop_run(loop))
		fprintf(stderr, "embed: the loop failed\n");
	zc_loop_free(loop); /* aborts the relays still running */
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th;
	sigset_t sigs;
	char name[128];
	int sig;

	if (argc != 3 || zc_addr_parse(&la, argv[1], ZC_ADDR_PASSIVE) ||
	    zc_addr_parse(&ua, argv[2], 0))
		return fprintf(stderr, "usage: embed LISTEN UPSTREAM\n"), 2;
	if ((lfd = zc_listen(&la, 0, 128)) < 0 || zc_loop_new(&loop, NULL))
		return fprintf(stderr, "embed: listen or loop failed\n"), 1;
	la.len = sizeof(la.ss);
	getsockname(lfd, (struct sockaddr *)&la.ss, &la.len);
	zc_addr_format((struct sockaddr *)&la.ss, la.len, name, sizeof(name));
	printf("embed: listening on %s\n", name);
	fflush(stdout);
	sigemptyset(&sigs); /* blocked before any thread starts */
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	pthread_create(&th, NULL, loop_thread, NULL);
	sigwait(&sigs, &sig);
	zc_loop_post(loop, stop, NULL);
	pthread_join(th, NULL);
	printf("embed: stopped after %u sessions\n", sessions);
	close(lfd);
	return 0;
}

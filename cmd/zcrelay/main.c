/*
 * main.c - zcrelay, the daemon: command line, listening sockets, worker
 * threads, signals.
 *
 * The main thread never touches a session. It blocks the signals it
 * handles before starting workers (so they are delivered to it alone),
 * then waits for them with sigtimedwait().
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/un.h>

#include "daemon.h"

static struct zcr_conf conf;
static struct zcr_worker *workers;
static int shared_users; /* workers watching the shared Unix listener */

/* Listening sockets: one per worker with SO_REUSEPORT for TCP (the
 * kernel spreads connections), one shared by all for Unix sockets. */
/*
 * SO_REUSEPORT would let a second zcrelay (same user) silently share our
 * port. A plain bind first fails with EADDRINUSE if anybody holds it.
 */
static int check_port_free(void)
{
	const struct sockaddr *sa = (const struct sockaddr *)&conf.listen.ss;
	int fd, err = 0, one = 1;

	if (sa->sa_family == AF_UNIX)
		return 0;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	/* SO_REUSEADDR: TIME_WAIT left by a previous run is no conflict. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, sa, conf.listen.len) == -1)
		err = -errno;
	close(fd);
	return err;
}

static int open_listeners(void)
{
	int is_unix = conf.listen.ss.ss_family == AF_UNIX;
	unsigned i;
	int fd = check_port_free();

	if (fd < 0) {
		zcr_log(ZC_LOG_ERR, "listen %s: %s", conf.listen_str,
		        zc_strerror(fd));
		return -1;
	}
	for (i = 0; i < conf.workers; i++) {
		if (!is_unix || i == 0)
			fd = zc_listen(&conf.listen,
			               is_unix ? 0 : ZC_LISTEN_REUSEPORT, 0);
		if (fd < 0) {
			zcr_log(ZC_LOG_ERR, "listen %s: %s", conf.listen_str,
			        zc_strerror(fd));
			return -1;
		}
		workers[i].lfd = fd;
		workers[i].lfd_shared = is_unix ? &shared_users : NULL;
		shared_users += is_unix;
	}
	return 0;
}

static int start_workers(void)
{
	unsigned i;
	int err;

	for (i = 0; i < conf.workers; i++) {
		workers[i].id = (int)i;
		workers[i].conf = &conf;
		err = zcr_worker_init(&workers[i]);
		if (err) {
			zcr_log(ZC_LOG_ERR, "worker %u: %s", i,
			        zc_strerror(err));
			return -1;
		}
	}
	for (i = 0; i < conf.workers; i++) {
		err = pthread_create(&workers[i].th, NULL, zcr_worker_main,
		                     &workers[i]);
		if (err) {
			zcr_log(ZC_LOG_ERR, "thread: %s", strerror(err));
			exit(1);
		}
	}
	return 0;
}

static void post_all(void (*fn)(struct zcr_worker *w))
{
	unsigned i;

	for (i = 0; i < conf.workers; i++)
		fn(&workers[i]);
}

static int wait_signal(const sigset_t *set, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	int sig;

	do {
		sig = sigtimedwait(set, NULL, ms < 0 ? NULL : &ts);
	} while (sig == -1 && errno == EINTR);
	if (sig == SIGHUP || sig == SIGUSR1) {
		zcr_log(ZC_LOG_INFO, "signal %d ignored (nothing to reload)",
		        sig);
		return 0;
	}
	return sig == -1 ? 0 : sig;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void unlink_unix_listener(void)
{
	const struct sockaddr_un *sun =
	        (const struct sockaddr_un *)&conf.listen.ss;

	if (sun->sun_family == AF_UNIX && sun->sun_path[0] != '\0')
		unlink(sun->sun_path);
}

/*
 * Waits for SIGTERM/SIGINT, then drains: workers stop accepting and end
 * when their sessions have. At the deadline, or on a second signal, the
 * remaining sessions are aborted.
 */
static void run_until_stopped(const sigset_t *set)
{
	unsigned i, left = conf.workers;
	long deadline;
	int sig, aborted = 0;

	while ((sig = wait_signal(set, -1)) == 0)
		;
	zcr_log(ZC_LOG_INFO, "signal %d: draining (up to %u ms)", sig,
	        conf.drain_ms);
	unlink_unix_listener(); /* new Unix clients: ECONNREFUSED/ENOENT */
	post_all(zcr_worker_drain);
	deadline = now_ms() + (long)conf.drain_ms;
	while (left) {
		sig = wait_signal(set, 50);
		if (!aborted && (sig || now_ms() >= deadline)) {
			zcr_log(ZC_LOG_INFO, "%s: aborting open sessions",
			        sig ? "second signal" : "drain deadline");
			post_all(zcr_worker_abort);
			aborted = 1;
		}
		for (i = 0; i < conf.workers; i++) {
			if (workers[i].joined)
				continue;
			if (pthread_tryjoin_np(workers[i].th, NULL) == 0) {
				workers[i].joined = 1;
				left--;
			}
		}
	}
}

int main(int argc, char **argv)
{
	sigset_t set;
	int rc;

	rc = zcr_conf_parse(&conf, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	zcr_log_set_level(conf.log_level);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	workers = calloc(conf.workers, sizeof(*workers));
	if (!workers || open_listeners() || start_workers())
		return 1;
	zcr_log(ZC_LOG_INFO,
	        "listening on %s, %u upstream(s), %u worker(s), "
	        "mover %s",
	        conf.listen_str, conf.nups, conf.workers,
	        zc_mover_name(conf.mover));
	run_until_stopped(&set);
	zcr_log(ZC_LOG_INFO, "stopped");
	return 0;
}

/* daemon.h - the daemon's shared declarations (not the library's). */
#ifndef ZCRELAY_DAEMON_H
#define ZCRELAY_DAEMON_H

#include <pthread.h>
#include <stdint.h>

#include "zcrelay.h"

#define ZCR_MAX_UPSTREAMS 64
#define ZCR_ADDR_STR      128

/* What the command line asked for. */
struct zcr_conf {
	struct zc_addr listen;
	char listen_str[ZCR_ADDR_STR];
	struct zc_addr ups[ZCR_MAX_UPSTREAMS];
	char ups_str[ZCR_MAX_UPSTREAMS][ZCR_ADDR_STR];
	unsigned nups;
	unsigned workers;
	int mover, engine;
	unsigned connect_ms, idle_ms, drain_ms;
	unsigned pipe_size, max_pipes;
	int log_level; /* enum zc_log_level */
	int log_sessions;
};

struct zcr_session;

/* A worker thread: its own loop, listener and sessions. */
struct zcr_worker {
	int id;
	pthread_t th;
	const struct zcr_conf *conf;
	struct zc_loop *loop;
	int lfd;         /* listening socket (shared for Unix) */
	int *lfd_shared; /* Unix: workers still watching lfd */
	struct zc_listener *lst;
	unsigned rr;     /* next upstream, round-robin */
	unsigned active; /* sessions connecting or relaying */
	int draining;
	int joined;         /* main thread: thread joined */
	pthread_mutex_t mu; /* guards loop against posts after exit */
	struct zcr_session *connecting; /* sessions waiting on connect */
};

/* Logging to stderr, one line per call, with a timestamp. */
void zcr_log(int level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Sets the highest level zcr_log() prints. */
void zcr_log_set_level(int level);
/* The library's log callback (arg: the worker). */
void zcr_log_lib(void *arg, int level, const char *msg);

/* Parses argv into conf. Returns 0, 1 if the program should exit 0
 * (--help, --version), or -1 after printing an error (exit 2). */
int zcr_conf_parse(struct zcr_conf *conf, int argc, char **argv);

/* Creates the worker's loop and listener; returns 0 or -errno. */
int zcr_worker_init(struct zcr_worker *w);
/* Thread body: runs the loop until the worker has drained. */
void *zcr_worker_main(void *arg);
/* From another thread: stop accepting, finish when sessions are done. */
void zcr_worker_drain(struct zcr_worker *w);
/* From another thread: abort every session now. */
void zcr_worker_abort(struct zcr_worker *w);

#endif

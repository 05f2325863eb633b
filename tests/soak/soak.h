/*
 * soak.h - what the two halves of zcsoak share: soak.c runs the daemon
 * and judges each data path, load.c drives the sessions through it.
 */
#ifndef ZC_SOAK_H
#define ZC_SOAK_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>

#define HDR_LEN        32
#define MAGIC          0x5a43534bu /* "ZCSK" */
#define CHUNK          65536
#define NLISTEN        4    /* upstream listeners per thread */
#define WHEEL          4096 /* hold wheel slots of 10 ms: 40 s */
#define MAX_CONNECTING 1024

/* The command line; soak.c fills it before any thread starts. */
struct soak_opts {
	const char *daemon;
	const char *only; /* comma-separated data paths, NULL: all */
	unsigned secs;
	unsigned conns;
	unsigned threads;
	unsigned hold_ms; /* mean idle time before a client sends */
	unsigned drain_s; /* how long the last sessions may take */
	unsigned big_permille;
	unsigned upgrades; /* SIGUSR2s spread over the load */
	uint64_t seed;
};
extern struct soak_opts soak_opt;

enum { K_CLIENT, K_UPSTREAM, K_LISTENER };
/* S_DEAD: closed while in the hold wheel, which frees it. */
enum { S_CONNECTING, S_HOLD, S_RUN, S_DEAD };

/*
 * One end of a session: a client's socket to the daemon, or the
 * upstream's socket from it. "out" is what this end sends (after the
 * header for a client), "in" what it receives and checks.
 */
struct sconn {
	int fd;
	unsigned char kind, state, wr_done, rd_done;
	unsigned hdr_off; /* header bytes sent (client) or read (upstream) */
	unsigned char hdr[HDR_LEN];
	uint64_t id;
	uint64_t out_len, out_off, out_seed;
	uint64_t in_len, in_off, in_seed;
	uint64_t hold_due;
	struct sconn *wnext;       /* hold wheel */
	struct sconn *prev, *next; /* the thread's live list */
};

/* Counters of one thread; others read them with relaxed loads. */
struct scount {
	uint64_t opened, clients_ok, ups_accepted, ups_ok, failed;
	uint64_t bytes_up, bytes_down; /* payload checked on arrival */
	uint64_t corrupt, lost;
	uint64_t live_clients, live_ups;
};

struct sthread {
	pthread_t th;
	int idx;
	int ep;
	struct sconn lst[NLISTEN];
	struct sockaddr_in up_addr[NLISTEN];
	struct sockaddr_in relay;
	unsigned target; /* clients to keep open */
	unsigned connecting;
	uint64_t seq, rng;
	struct sconn *wheel[WHEEL];
	uint64_t wheel_at; /* the next slot to run, in 10 ms ticks */
	struct scount n;
	struct sconn *live; /* every open client and upstream end */
	unsigned char buf[CHUNK], want[CHUNK];
	char errs[256]; /* the first failures, for the report */
};

/* Set by soak.c, read by the threads: no new sessions; return. */
extern int soak_stopping, soak_quitting;

/* Prints "zcsoak: " and the message on stderr, exits 1. */
void soak_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The monotonic clock in ms. */
uint64_t soak_now_ms(void);

/* splitmix64's finaliser: seeds and the streams' words. */
uint64_t soak_mix64(uint64_t x);

/* A counter of struct scount, read from another thread. */
uint64_t soak_cnt(const uint64_t *c);

/*
 * The thread driving t's sessions (pthread_create's start routine):
 * keeps t->target clients open until soak_stopping, serves the
 * upstream ends its listeners accept, returns on soak_quitting.
 */
void *soak_thread_main(void *arg);

/*
 * Once t's thread has returned: closes the sessions it still holds
 * (counted as failed), frees the hold wheel. Returns how many.
 */
uint64_t soak_thread_fini(struct sthread *t);

#endif

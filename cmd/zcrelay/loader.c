/*
 * loader.c - a reload's zcr_cfg_load() on a thread of its own, so that
 * the main thread keeps answering signals while host names resolve: a
 * slow resolver (its timeouts in /etc/resolv.conf) must not make a
 * SIGTERM wait.
 *
 * The load thread is detached. Whoever comes second frees the load:
 * the thread when the main thread abandoned it (a stop signal), the
 * main thread when it takes the result.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

enum { LOAD_RUNNING, LOAD_DONE, LOAD_ABANDONED };

struct load_job {
	char *path;
	struct zcr_cfg *c;
	char *msgs; /* the errors' lines */
	int rc;
	int state; /* LOAD_*, atomic */
};

static void job_free(struct load_job *j)
{
	zcr_cfg_unref(j->c);
	free(j->msgs);
	free(j->path);
	free(j);
}

/* The other party's state change, or -1 if it came first. */
static int job_leave(struct load_job *j, int to)
{
	int running = LOAD_RUNNING;

	return __atomic_compare_exchange_n(&j->state, &running, to, 0,
	                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
	               ? to
	               : -1;
}

static void *job_main(void *arg)
{
	struct load_job *j = arg;

	j->rc = zcr_cfg_load_msgs(j->path, &j->c, &j->msgs);
	if (job_leave(j, LOAD_DONE) < 0)
		job_free(j); /* abandoned: nobody waits for it */
	return NULL;
}

static int job_start(struct load_job *j)
{
	pthread_attr_t at;
	pthread_t th;
	int err = pthread_attr_init(&at);

	if (err)
		return -err;
	err = pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (!err)
		err = pthread_create(&th, &at, job_main, j);
	pthread_attr_destroy(&at);
	return -err;
}

int zcr_cfg_load_answering(const char *path, struct zcr_cfg **out, char **msgs,
                           const sigset_t *set, void (*on_signal)(int sig))
{
	struct timespec tick = {0, 10 * 1000000L};
	struct load_job *j = calloc(1, sizeof(*j));
	int sig, rc;

	*out = NULL;
	*msgs = NULL;
	if (!j || !(j->path = strdup(path)) || job_start(j)) {
		if (j)
			free(j->path);
		free(j);
		return zcr_cfg_load_msgs(path, out, msgs); /* here, then */
	}
	while (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) == LOAD_RUNNING) {
		sig = sigtimedwait(set, NULL, &tick);
		if (sig != SIGTERM && sig != SIGINT) {
			if (sig > 0)
				on_signal(sig);
			continue;
		}
		if (job_leave(j, LOAD_ABANDONED) == LOAD_ABANDONED)
			return sig; /* the thread frees j */
		job_free(j);        /* it had just finished */
		return sig;
	}
	rc = j->rc;
	*out = j->c;
	j->c = NULL;
	*msgs = j->msgs;
	j->msgs = NULL;
	job_free(j);
	return rc;
}

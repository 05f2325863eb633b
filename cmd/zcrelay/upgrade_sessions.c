/*
 * upgrade_sessions.c - phase 2 of an upgrade: the old process (A) hands
 * its established sessions to the new one (B), batch by batch, after B
 * accepts on the listeners (docs/internals/handoff.md).
 *
 * Ownership: a session A detached (zcr_session_pack) stands still, its
 * fds open in A, until B answers. B adopts a batch on one of its
 * workers and holds that worker (so no adopted relay moves a byte)
 * until the answer is sent. A then closes its copies of what B took and
 * resumes the rest. If B does not answer, A kills it first, so that
 * nothing B adopted can run, and resumes them all: a session is never
 * lost and never moved twice.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "daemon.h"
#include "handoff.h"
#include "upgrade.h"
#include "upgrade_sessions.h"

#define ACK_MS  10000 /* A: B's answer to one batch */
#define NEXT_MS 10000 /* B: A's next batch, or DONE */
/* A: how long sessions not yet relaying (connecting, reading a PROXY
 * header, peeking) are waited for, to be handed over once they relay;
 * under NEXT_MS, so that B waits as long. */
#define WAIT_MS 5000
#define PASS_MS 10 /* A: between two passes over those sessions */

static struct zcr_worker *ws;
static unsigned nws;

void zcr_upgrade_set_workers(struct zcr_worker *w, unsigned n)
{
	ws = w;
	nws = n;
}

/* A function run on a worker's thread while the caller waits; with
 * gate, the worker then stays in it (its loop held) until released. */
struct wcall {
	void (*fn)(struct zcr_worker *w, struct zcr_ho_batch *b);
	struct zcr_worker *w;
	struct zcr_ho_batch *b;
	int gate, done, open, left;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void wcall_on_worker(struct zc_loop *loop, void *arg)
{
	struct wcall *c = arg;

	c->fn(c->w, c->b);
	pthread_mutex_lock(&c->mu);
	c->done = 1;
	pthread_cond_broadcast(&c->cv);
	while (c->gate && !c->open)
		pthread_cond_wait(&c->cv, &c->mu);
	c->left = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Whether w's loop is gone: a post still queued is then dropped, never
 * run (a draining worker ends once its last session has). */
static int worker_gone(struct zcr_worker *w)
{
	int gone;

	pthread_mutex_lock(&w->mu);
	gone = w->loop == NULL;
	pthread_mutex_unlock(&w->mu);
	return gone;
}

/* Runs fn(w, b) on w's thread; returns when it has run (0), or -ESRCH
 * if the worker has ended. Call wcall_end after. */
static int wcall_start(struct wcall *c)
{
	struct timespec ts;
	int err;

	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	err = zcr_worker_post(c->w, wcall_on_worker, c);
	pthread_mutex_lock(&c->mu);
	while (!err && !c->done) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		if (!c->done && worker_gone(c->w))
			err = -ESRCH;
	}
	pthread_mutex_unlock(&c->mu);
	if (err) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
	}
	return err;
}

/* Releases the worker (after a successful wcall_start). */
static void wcall_end(struct wcall *c)
{
	pthread_mutex_lock(&c->mu);
	c->open = 1;
	pthread_cond_broadcast(&c->cv);
	while (!c->left)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
}

static int wcall_run(struct zcr_worker *w,
                     void (*fn)(struct zcr_worker *, struct zcr_ho_batch *),
                     struct zcr_ho_batch *b)
{
	struct wcall c = {.fn = fn, .w = w, .b = b};
	int err = wcall_start(&c);

	if (!err)
		wcall_end(&c);
	return err;
}

/* ------------------------------------------------------------------ */
/* A                                                                    */

/* Sends b as batch seq and reads B's answer into b->ok. 0 or -errno. */
static int a_exchange(int sock, struct zcr_ho_batch *b, unsigned seq,
                      struct zcr_ho_msg *m)
{
	int err;

	err = zcr_ho_send(sock, ZCR_HO_SESSIONS, seq, b->e,
	                  b->n * sizeof(b->e[0]), b->fds, b->nfds);
	if (!err)
		err = zcr_ho_recv(sock, m, ACK_MS);
	if (err)
		return err;
	if (m->h.type != ZCR_HO_SESSIONS_ACK || m->h.arg != seq ||
	    m->h.len != b->n || m->nfds) {
		zcr_ho_msg_close(m);
		return -EPROTO;
	}
	memcpy(b->ok, m->data, b->n);
	return 0;
}

/* B did not answer: make sure nothing it adopted runs, then everything
 * stays here. */
static void a_give_up(pid_t pid, int err)
{
	zcr_log(ZC_LOG_ERR,
	        "upgrade: no answer from pid %d for a batch of sessions (%s): "
	        "stopping it; its sessions and the rest stay here",
	        (int)pid, zc_strerror(err));
	if (kill(pid, SIGKILL) == 0)
		waitpid(pid, NULL, 0);
}

/* Hands w's sessions over, batch by batch. Returns how many B took, or
 * -errno once B failed (the batch under way resumed here); adds to
 * *waiting the sessions w has that are not relaying yet. */
static long a_hand_worker(int sock, pid_t pid, struct zcr_worker *w,
                          struct zcr_ho_batch *b, struct zcr_ho_msg *m,
                          unsigned *seq, unsigned *waiting)
{
	long taken = 0;
	unsigned i;
	int err;

	for (;;) {
		b->n = b->nfds = b->waiting = 0;
		if (wcall_run(w, zcr_session_pack, b))
			return taken;
		if (b->n == 0) {
			*waiting += b->waiting;
			return taken;
		}
		memset(b->ok, 0, sizeof(b->ok));
		err = a_exchange(sock, b, ++*seq, m);
		if (err)
			a_give_up(pid, err);
		if (wcall_run(w, zcr_session_settle, b))
			zcr_log(ZC_LOG_ERR,
			        "upgrade: worker %d ended with "
			        "sessions under way",
			        w->id);
		if (err)
			return err;
		for (i = 0; i < b->n; i++)
			taken += b->ok[i];
	}
}

/* One pass over the workers; adds what B took to *taken. Returns how
 * many sessions are not relaying yet, or -errno once B failed. */
static long a_hand_pass(int sock, pid_t pid, struct zcr_ho_batch *b,
                        struct zcr_ho_msg *m, unsigned *seq, long *taken)
{
	unsigned i, waiting = 0;
	long n;

	for (i = 0; i < nws; i++) {
		n = a_hand_worker(sock, pid, &ws[i], b, m, seq, &waiting);
		if (n < 0)
			return n;
		*taken += n;
	}
	return waiting;
}

long zcr_upgrade_hand_sessions(int sock, int pid)
{
	struct zcr_ho_batch *b = malloc(sizeof(*b));
	struct zcr_ho_msg *m = malloc(sizeof(*m));
	uint64_t end = zcr_now_ms() + WAIT_MS;
	unsigned seq = 0;
	long taken = 0, n = 0;

	/* Sessions that start relaying meanwhile go in a later pass. */
	while (b && m) {
		n = a_hand_pass(sock, pid, b, m, &seq, &taken);
		if (n <= 0 || zcr_now_ms() >= end)
			break;
		usleep(PASS_MS * 1000);
	}
	if (n > 0)
		zcr_log(ZC_LOG_INFO,
		        "upgrade: %ld session(s) not relaying after %d ms "
		        "end here",
		        n, WAIT_MS);
	if (!b || !m)
		zcr_log(ZC_LOG_ERR, "upgrade: out of memory: sessions stay");
	free(b);
	free(m);
	return n < 0 ? n : taken;
}

/* ------------------------------------------------------------------ */
/* B                                                                    */

/* Closes B's copies of the fds of the sessions it did not take. */
static void b_close_refused(const struct zcr_ho_batch *b)
{
	unsigned k;

	for (k = 0; k < b->n; k++)
		if (!b->ok[k])
			zcr_ho_close_session(b, k);
}

/* Copies m's batch into b; -EPROTO (m's fds closed) if malformed. */
static int b_read_batch(struct zcr_ho_msg *m, struct zcr_ho_batch *b)
{
	size_t sz = sizeof(b->e[0]);

	if (m->h.len % sz || m->h.len / sz == 0 ||
	    m->h.len / sz > ZCR_HO_BATCH) {
		zcr_ho_msg_close(m);
		return -EPROTO;
	}
	b->n = (unsigned)(m->h.len / sz);
	memcpy(b->e, m->data, m->h.len);
	memcpy(b->fds, m->fds, m->nfds * sizeof(int));
	b->nfds = m->nfds;
	m->nfds = 0; /* b's now */
	memset(b->ok, 0, sizeof(b->ok));
	return 0;
}

/* One SESSIONS message m: adopt, answer, release. 0 or -errno. */
static int b_take_batch(int sock, struct zcr_ho_msg *m, unsigned *taken)
{
	static unsigned next; /* the worker of the next batch */
	struct zcr_ho_batch *b = malloc(sizeof(*b));
	struct wcall c = {.fn = zcr_session_adopt_batch, .gate = 1};
	unsigned seq = m->h.arg, i;
	int err, started;

	if (!b) {
		zcr_ho_msg_close(m);
		return -ENOMEM;
	}
	err = b_read_batch(m, b);
	if (err) {
		free(b);
		return err;
	}
	zcr_upgrade_test_fail("sessions");
	c.w = &ws[next++ % nws];
	c.b = b;
	started = wcall_start(&c) == 0;
	zcr_upgrade_test_fail("adopted"); /* the adopted ones never ran */
	err = zcr_ho_send(sock, ZCR_HO_SESSIONS_ACK, seq, b->ok, b->n, NULL, 0);
	if (started)
		wcall_end(&c);
	for (i = 0; i < b->n; i++)
		*taken += b->ok[i];
	b_close_refused(b);
	free(b);
	return err;
}

void zcr_upgrade_take_sessions(int sock)
{
	struct zcr_ho_msg *m = malloc(sizeof(*m));
	unsigned taken = 0, batches = 0;
	int err = -ENOMEM;

	while (m && (err = zcr_ho_recv(sock, m, NEXT_MS)) == 0 &&
	       m->h.type == ZCR_HO_SESSIONS) {
		batches++;
		if (b_take_batch(sock, m, &taken))
			break;
	}
	if (batches)
		zcr_log(ZC_LOG_INFO,
		        "upgrade: took %u session(s) from the old process",
		        taken);
	if (err == 0 && m->h.type == ZCR_HO_DONE)
		zcr_log(ZC_LOG_INFO,
		        "upgrade: the old process stopped accepting; the "
		        "sessions it kept end there");
	else
		zcr_log(ZC_LOG_WARN,
		        "upgrade: no word from the old process after ready");
	if (err == 0)
		zcr_ho_msg_close(m);
	free(m);
}

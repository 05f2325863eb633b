/*
 * lib_watch.c - zc_watch: readiness of a caller's own fds, on each
 * engine: level-triggered reads, write readiness, peer EOF, changing
 * the events, stopping from inside the callback, bad arguments.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "runner.h"
#include "tnet.h"

struct wstate {
	struct zc_watch *w;
	int fd;
	unsigned calls, last;
	int stop_at; /* stop the watcher on this call (0: never) */
	char got[16];
	size_t ngot;
};

static void on_ready(void *arg, unsigned ev)
{
	struct wstate *s = arg;

	s->calls++;
	s->last = ev;
	if ((ev & ZC_WATCH_IN) && s->ngot < sizeof(s->got)) {
		/* one byte a call: level-triggered means we are called again */
		ssize_t n = read(s->fd, s->got + s->ngot, 1);

		if (n > 0)
			s->ngot += (size_t)n;
	}
	if (s->stop_at && s->calls == (unsigned)s->stop_at) {
		zc_watch_stop(s->w);
		s->w = NULL;
	}
}

static struct zc_loop *new_loop(const struct t_ctx *ctx)
{
	struct zc_loop_opts o;
	struct zc_loop *loop = NULL;

	zc_loop_opts_init(&o);
	o.engine = ctx->engine;
	if (zc_loop_new(&loop, &o) != 0)
		return NULL;
	return loop;
}

/* A Unix socket pair sv, and s watching sv[0] for input on loop (which
 * may be NULL: new_loop failed). */
static int watch_pair(struct zc_loop *loop, struct wstate *s, int sv[2])
{
	ASSERT_TRUE(loop != NULL);
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
	s->fd = sv[0];
	ASSERT_EQ(zc_watch_start(&s->w, loop, sv[0], ZC_WATCH_IN, on_ready, s),
	          0);
	return T_PASS;
}

static void spin(struct zc_loop *loop, int turns)
{
	while (turns-- > 0)
		zc_loop_run_once(loop, 20);
}

TEST_MATRIX(test_watch_level_triggered_reads)
{
	struct wstate s = {0};
	struct zc_loop *loop = new_loop(ctx);
	int sv[2];

	T_TRY(watch_pair(loop, &s, sv));
	spin(loop, 3);
	ASSERT_EQ(s.calls, 0); /* nothing to read: no call */
	ASSERT_EQ(write(sv[1], "abc", 3), 3);
	spin(loop, 10);
	ASSERT_EQ(s.ngot, 3); /* three calls for three bytes */
	ASSERT_MEMEQ(s.got, "abc", 3);
	ASSERT_GE(s.calls, 3);
	/* peer EOF: readable, with the error/hang-up bit */
	close(sv[1]);
	spin(loop, 3);
	ASSERT_TRUE(s.last & ZC_WATCH_IN);
	zc_watch_stop(s.w);
	zc_loop_free(loop);
	close(sv[0]);
	return T_PASS;
}

TEST_MATRIX(test_watch_set_and_stop_in_callback)
{
	struct wstate s = {0};
	struct zc_loop *loop = new_loop(ctx);
	unsigned before;
	int sv[2];

	T_TRY(watch_pair(loop, &s, sv));
	/* switch to OUT: an empty socket buffer is writable at once */
	ASSERT_EQ(zc_watch_set(s.w, ZC_WATCH_OUT), 0);
	s.stop_at = 2;
	spin(loop, 5);
	ASSERT_EQ(s.calls, 2); /* stopped from inside its second call */
	ASSERT_TRUE(s.last & ZC_WATCH_OUT);
	ASSERT_TRUE(s.w == NULL);
	before = s.calls;
	ASSERT_EQ(write(sv[1], "x", 1), 1);
	spin(loop, 3);
	ASSERT_EQ(s.calls, before); /* no call after stop */
	zc_loop_free(loop);
	close(sv[0]);
	close(sv[1]);
	return T_PASS;
}

TEST(test_watch_bad_arguments)
{
	struct zc_loop *loop;
	struct zc_watch *w = NULL;
	int sv[2];

	ASSERT_EQ(zc_loop_new(&loop, NULL), 0);
	ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv));
	ASSERT_EQ(zc_watch_start(&w, loop, sv[0], 0, on_ready, NULL), -EINVAL);
	ASSERT_EQ(zc_watch_start(&w, loop, sv[0], 0x80, on_ready, NULL),
	          -EINVAL);
	ASSERT_EQ(zc_watch_start(&w, loop, -1, ZC_WATCH_IN, on_ready, NULL),
	          -EINVAL);
	ASSERT_EQ(zc_watch_start(&w, loop, sv[0], ZC_WATCH_IN, NULL, NULL),
	          -EINVAL);
	ASSERT_EQ(zc_watch_start(&w, loop, sv[0], ZC_WATCH_IN, on_ready, NULL),
	          0);
	ASSERT_EQ(zc_watch_set(w, 0), -EINVAL);
	zc_watch_stop(w);
	zc_watch_stop(NULL);
	zc_loop_free(loop);
	close(sv[0]);
	close(sv[1]);
	return T_PASS;
}

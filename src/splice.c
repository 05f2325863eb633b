/*
 * splice.c - zc_splice(): the blocking "splice these two sockets" call,
 * a private loop running one relay.
 */
#include "compat.h"

#include <string.h>

#include "sock.h"

struct splice_wait {
	struct zc_loop *loop;
	struct zc_relay_stats st;
	int done;
};

static void splice_done(void *arg, const struct zc_relay_stats *st)
{
	struct splice_wait *w = arg;

	w->st = *st;
	w->done = 1;
	zc_loop_stop(w->loop);
}

static int splice_result(const struct zc_relay_stats *st)
{
	switch (st->end) {
	case ZC_END_EOF:
		return 0;
	case ZC_END_TIMEOUT:
		return -ETIMEDOUT;
	default:
		return st->error ? st->error : -ECONNABORTED;
	}
}

int zc_splice(int fd_a, int fd_b, const struct zc_relay_opts *opts,
              struct zc_relay_stats *stats)
{
	struct zc_relay_opts o;
	struct splice_wait w;
	int fl_a, fl_b, err;

	if (opts)
		o = *opts;
	else
		zc_relay_opts_init(&o);
	o.flags |= ZC_RELAY_F_KEEP_FDS;
	if (stats)
		memset(stats, 0, sizeof(*stats));
	err = zc__sock_check_pair(fd_a, fd_b, ZC_SOCK_F_PEER);
	if (err)
		return err;
	memset(&w, 0, sizeof(w));
	err = zc_loop_new(&w.loop, NULL);
	if (err)
		return err;
	fl_a = zc__fd_set_nonblock(fd_a, 1);
	fl_b = zc__fd_set_nonblock(fd_b, 1);
	err = zc_relay_start(NULL, w.loop, fd_a, fd_b, &o, splice_done, &w);
	while (!err && !w.done)
		err = zc_loop_run(w.loop);
	zc_loop_free(w.loop); /* aborts the relay if the engine failed */
	zc__fd_restore_flags(fd_a, fl_a);
	zc__fd_restore_flags(fd_b, fl_b);
	if (err)
		return err;
	if (stats)
		*stats = w.st;
	return splice_result(&w.st);
}

/*
 * fault_accept.c - accept4() failing with EMFILE or ENFILE: the daemon
 * keeps running, sheds the waiting client (spare-fd trick), logs the
 * pause, and accepts again once the fault is over; a session already
 * relaying is not touched. An EAGAIN storm on the (level-triggered)
 * listener only delays the client. Faults from the zcfault shim.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tfault.h"

#define KIB (1ull << 10)

/* accept4() fails with errname, one row each. */
static const struct t_errno_row accept_rows[] = {
        {"emfile", "EMFILE"},
        {"enfile", "ENFILE"},
};

TEST_MATRIX_TABLE(test_fault_accept, accept_rows)
{
	const char *errname = ((const struct t_errno_row *)t_row())->errname;
	char spec[128], label[64], want[128];
	struct t_pair2 old, p;
	struct t_xfer4 xo;
	struct t_fault f;
	int c;

	T_TRY(t_fault_start(&f, ctx, t_fault_skip(), ""));
	/* A session that relays across the whole fault. */
	T_TRY(t_pair2_open(&f, f.ulfd, &old));
	/*
	 * Three failures on the listening port only: the first accept and
	 * the shedding accept right after it (spare fd freed) fail, the
	 * listener pauses 1 s; after it, accept fails once more and the
	 * shedding accept takes the client and closes it; another 1 s pause.
	 */
	snprintf(spec, sizeof(spec), "accept4:%s:count=3:port=%d", errname,
	         ntohs_port(&f.la));
	T_TRY(t_fault_set(&f, spec));
	c = t_connect(&f.la);
	ASSERT_OK(c);
	ASSERT_TRUE(t_is_closed(t_wait_eof(c, 4000)));
	close(c);
	snprintf(label, sizeof(label), "accept4:%s", errname);
	ASSERT_EQ(t_fault_wait(&f, label, 3, 2000), 3);
	snprintf(want, sizeof(want), "accept: %s: pausing for 1000 ms",
	         strerror(errno_of(errname)));
	ASSERT_EQ(t_wait_log_count(&f.d, want, NULL, 2, 2000), 2);
	/* The fault is over: the next client is served (after the pause),
	 * and so was the old session all along. */
	T_TRY(t_pair2_open(&f, f.ulfd, &p));
	T_TRY(t_pair2_xfer(&p, 256 * KIB, 256 * KIB, 7, 20000));
	T_TRY(t_pair2_start(&old, &xo, 256 * KIB, 256 * KIB, 9));
	T_TRY(t_pair2_finish(&xo, 20000));
	t_pair2_close(&p);
	t_pair2_close(&old);
	ASSERT_EQ(t_fault_metric_wait(&f, "zcrelay_worker_accept_pauses_total",
	                              2),
	          2);
	ASSERT_EQ(t_fault_count(&f, label, NULL), 3);
	return t_fault_end(&f, ctx, "accept");
}

/* 200 spurious EAGAINs on the listener, which stays readable: the
 * client waits a little, then is relayed. */
TEST_MATRIX(test_fault_accept_eagain_storm)
{
	char spec[128];
	struct t_pair2 p;
	struct t_dargs a;
	struct t_fault f;

	T_TRY(t_fault_open(&f, ctx, t_fault_skip(), &a));
	snprintf(spec, sizeof(spec), "accept4:eagain-storm:count=200:port=%d",
	         ntohs_port(&f.la));
	T_TRY(t_fault_up(&f, &a, spec));
	T_TRY(t_pair2_open(&f, f.ulfd, &p));
	T_TRY(t_pair2_xfer(&p, 64 * KIB, 64 * KIB, 3, 20000));
	t_pair2_close(&p);
	ASSERT_EQ(t_fault_count(&f, "accept4:eagain-storm", NULL), 200);
	ASSERT_EQ(t_fault_metric(&f, "zcrelay_worker_accept_pauses_total"), 0);
	return t_fault_end(&f, ctx, "accept storm");
}

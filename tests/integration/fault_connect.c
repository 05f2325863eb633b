/*
 * fault_connect.c - the way to the upstream failing: connect() refused
 * (the next upstream takes the session) or timing out with a single
 * upstream (the client is closed at once, the log says why), each logged
 * per upstream; socket() out of fds, our own shortage, sheds the client
 * without blaming the upstream. Faults from the zcfault shim, aimed at
 * one upstream's port.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tfault.h"

#define KIB (1ull << 10)

/* Three sessions through a daemon with upstreams dead and live (in that
 * order), dead's connect() failing with errname through the shim (one
 * row each): all reach live. With blamed, each failure is dead's
 * (logged); else it is our own shortage (EADDRNOTAVAIL: no local port),
 * which neither logs against dead nor counts as its failure. */
static const struct next_row {
	const char *name;
	const char *errname;
	int blamed;
} next_rows[] = {
        {"refused_next_upstream", "ECONNREFUSED", 1},
        {"no_local_port_next_upstream", "EADDRNOTAVAIL", 0},
};

TEST_MATRIX_TABLE(test_fault_connect, next_rows)
{
	const struct next_row *k = t_row();
	const char *fn = "connect", *errname = k->errname;
	int blamed = k->blamed;
	char spec[128], label[64], line[256];
	struct zc_addr dead;
	struct t_pair2 p;
	struct t_dargs a;
	struct t_fault f;
	const char *ds;
	int dlfd, i;

	/* f.ua is live; dead listens for real: only the shim keeps us
	 * from it. Both are upstreams, dead first. */
	T_TRY(t_fault_open(&f, ctx, t_fault_skip(), &a));
	dlfd = t_listen(AF_INET, &dead);
	ASSERT_OK(dlfd);
	t_dargs_init(&a, ctx, &f.la, NULL);
	ds = t_dargs_addr(&a, "--upstream", &dead);
	t_dargs_addr(&a, "--upstream", &f.ua);
	snprintf(spec, sizeof(spec), "%s:%s:port=%d", fn, errname,
	         ntohs_port(&dead));
	T_TRY(t_fault_up(&f, &a, ""));
	T_TRY(t_fault_set(&f, spec));
	for (i = 0; i < 3; i++) {
		T_TRY(t_pair2_open(&f, f.ulfd, &p));
		T_TRY(t_pair2_xfer(&p, 64 * KIB, 64 * KIB, 60 + i, 20000));
		t_pair2_close(&p);
	}
	ASSERT_EQ(t_accept_ms(dlfd, 0), -ETIMEDOUT); /* nobody came */
	snprintf(label, sizeof(label), "%s:%s", fn, errname);
	snprintf(line, sizeof(line), "route=default upstream=%s connect: %s",
	         ds, strerror(errno_of(errname)));
	/* Round-robin: two of three sessions tried dead first. */
	ASSERT_EQ(t_fault_count(&f, label, NULL), 2);
	ASSERT_EQ(t_log_count(&f.d, line, NULL), blamed ? 2 : 0);
	ASSERT_EQ(t_wait_log_count(&f.d, " end=eof", NULL, 3, 5000), 3);
	ASSERT_EQ(t_fault_metric_wait(&f,
	                              "zcrelay_upstream_connect_failures_total",
	                              blamed ? 2 : 0),
	          blamed ? 2 : 0);
	close(dlfd);
	return t_fault_end(&f, ctx, "connect next upstream");
}

/* The value of the sample (name and labels as rendered) in the
 * daemon's /metrics, or -1. */
static long long metric_of(const struct t_fault *f, const char *sample)
{
	char *body = NULL;
	long long v = -1;

	if (t_http_get(&f->admin, "/metrics", &body) == 200)
		v = t_metric(body, sample);
	free(body);
	return v;
}

/*
 * socket() out of fds (our own shortage, not the upstream's fault) for
 * as many sessions as passive health needs to eject an upstream (3):
 * each client is shed at once with the reason, counted as
 * local_resources; the upstream is neither blamed in the log nor counted
 * as failing nor ejected, so the next client is relayed.
 */
TEST_MATRIX(test_fault_socket_emfile_sheds_client)
{
	char line[128];
	struct t_pair2 p;
	struct t_fault f;
	int c, i;

	T_TRY(t_fault_start(&f, ctx, t_fault_skip(), ""));
	/* After startup: the listeners and admin made their sockets. */
	T_TRY(t_fault_set(&f, "socket:EMFILE:count=3"));
	snprintf(line, sizeof(line), "rejected: out of local resources: %s",
	         strerror(EMFILE));
	for (i = 1; i <= 3; i++) {
		c = t_connect(&f.la);
		ASSERT_OK(c);
		ASSERT_TRUE(t_is_closed(t_wait_eof(c, 2000)));
		close(c);
		ASSERT_EQ(t_wait_log_count(&f.d, line, NULL, i, 2000), i);
	}
	ASSERT_EQ(t_log_count(&f.d, " connect: ", NULL), 0);
	ASSERT_EQ(t_log_count(&f.d, " ejected for ", NULL), 0);
	T_TRY(t_pair2_open(&f, f.ulfd, &p));
	T_TRY(t_pair2_xfer(&p, 64 * KIB, 64 * KIB, 66, 20000));
	t_pair2_close(&p);
	ASSERT_EQ(t_fault_count(&f, "socket:EMFILE", NULL), 3);
	ASSERT_EQ(t_fault_metric_wait(
	                  &f, "zcrelay_upstream_connect_failures_total", 0),
	          0);
	ASSERT_EQ(metric_of(&f, "zcrelay_route_rejected_total{route="
	                        "\"default\",reason=\"local_resources\"}"),
	          3);
	return t_fault_end(&f, ctx, "socket");
}

/* The only upstream's connect fails with errname (one row each): the
 * client is closed at once. */
static const struct t_errno_row only_rows[] = {
        {"timedout", "ETIMEDOUT"},
        {"refused", "ECONNREFUSED"},
};

TEST_MATRIX_TABLE(test_fault_connect_closes_client, only_rows)
{
	const char *errname = ((const struct t_errno_row *)t_row())->errname;
	char spec[128], label[64], line[256];
	struct t_dargs a;
	struct t_fault f;
	int c, i;

	T_TRY(t_fault_open(&f, ctx, t_fault_skip(), &a));
	snprintf(spec, sizeof(spec), "connect:%s:port=%d", errname,
	         ntohs_port(&f.ua));
	T_TRY(t_fault_up(&f, &a, spec));
	for (i = 1; i <= 3; i++) {
		c = t_connect(&f.la);
		ASSERT_OK(c);
		ASSERT_TRUE(t_is_closed(t_wait_eof(c, 2000)));
		close(c);
		ASSERT_EQ(t_wait_log_count(&f.d, "no upstream reachable",
		                           strerror(errno_of(errname)), i,
		                           2000),
		          i);
	}
	ASSERT_EQ(t_accept_ms(f.ulfd, 0), -ETIMEDOUT);
	snprintf(label, sizeof(label), "connect:%s", errname);
	ASSERT_EQ(t_fault_count(&f, label, NULL), 3);
	snprintf(line, sizeof(line), "connect: %s",
	         strerror(errno_of(errname)));
	ASSERT_EQ(t_log_count(&f.d, line, NULL), 3);
	return t_fault_end(&f, ctx, "connect only upstream");
}

/*
 * daemon_health.c - active health checks: an upstream that stops
 * answering checks is taken out of the rotation after `fall` failures
 * (no session tries it any more), and put back after `rise` good checks.
 */
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <sys/socket.h>

#include "tdaemon.h"

/* Accepts from lfds until a connection brings the client's byte (the
 * health checks connect too, and close at once). Returns the index of
 * that upstream, or -1. */
static int accept_session(const int lfds[2], int *u)
{
	struct pollfd p[2] = {{lfds[0], POLLIN, 0}, {lfds[1], POLLIN, 0}};
	int i, which;
	char ch;

	for (i = 0; i < 20; i++) {
		p[0].revents = p[1].revents = 0;
		if (poll(p, 2, 2000) <= 0)
			return -1;
		which = (p[0].revents & POLLIN) ? 0 : 1;
		*u = t_accept_ms(lfds[which], 2000);
		if (*u < 0)
			return -1;
		if (t_read_full(*u, &ch, 1, 2000) == 1 && ch == '?')
			return which;
		close(*u); /* a check */
	}
	return -1;
}

/* A session through la; returns the index in lfds[0..1] of the
 * upstream that got it, or a negative test result. */
static int ping_any(const struct zc_addr *la, const int lfds[2])
{
	int c = t_connect(la), u = -1, which;

	ASSERT_OK(c);
	ASSERT_OK(t_write_all(c, "?", 1));
	which = accept_session(lfds, &u);
	ASSERT_GE(which, 0);
	close(u);
	ASSERT_EQ(t_wait_eof(c, 2000) <= 0, 1);
	close(c);
	return which;
}

TEST(test_daemon_health_check_down_and_up)
{
	char conf[1024], path[256], las[160], lives[160], deads[160], line[256];
	struct zc_addr la, live, dead;
	struct t_daemon d;
	struct t_dargs a;
	int lfd, dfd, rc, i, tries_before, fds[2], got[2] = {0, 0};

	T_SKIP_IF(!t_daemon_path(), "no daemon binary");
	ASSERT_OK(t_free_addr(AF_INET, &la));
	ASSERT_OK(t_free_addr(AF_INET, &dead)); /* nobody listens: refused */
	lfd = t_listen(AF_INET, &live);
	ASSERT_OK(lfd);
	ASSERT_OK(t_addr_str(&la, las, sizeof(las)));
	ASSERT_OK(t_addr_str(&live, lives, sizeof(lives)));
	ASSERT_OK(t_addr_str(&dead, deads, sizeof(deads)));
	snprintf(conf, sizeof(conf),
	         "workers = 1;\n"
	         "routes = ({ name = \"r\"; listen = \"%s\";\n"
	         "  upstreams = (\"%s\", \"%s\");\n"
	         "  health = { check-interval = 100; check-timeout = 500;\n"
	         "             rise = 2; fall = 2; fail-max = 0; }; });\n",
	         las, deads, lives);
	ASSERT_OK(t_write_tmp("health.conf", conf, path, sizeof(path)));
	memset(&a, 0, sizeof(a));
	t_dargs_add(&a, "-c");
	t_dargs_add(&a, path);
	T_TRY(t_daemon_up(&d, &a, &la));
	snprintf(line, sizeof(line), "upstream=%s check: down", deads);
	ASSERT_EQ(t_wait_log_count(&d, line, NULL, 1, 3000), 1);
	/* Down: six sessions, all on the live one, none even tries dead. */
	snprintf(line, sizeof(line), "upstream=%s connect:", deads);
	tries_before = t_log_count(&d, line, NULL);
	fds[0] = lfd;
	fds[1] = lfd;
	for (i = 0; i < 6; i++)
		ASSERT_EQ(ping_any(&la, fds), 0);
	ASSERT_EQ(t_log_count(&d, line, NULL), tries_before);
	/* It comes back: after two good checks it gets its turn again. */
	dfd = zc_listen(&dead, 0, 0);
	ASSERT_OK(dfd);
	snprintf(line, sizeof(line), "upstream=%s check: up", deads);
	ASSERT_EQ(t_wait_log_count(&d, line, NULL, 1, 3000), 1);
	fds[1] = dfd;
	for (i = 0; i < 4; i++) { /* round-robin: half of them go there */
		rc = ping_any(&la, fds);
		ASSERT_GE(rc, 0);
		got[rc]++;
	}
	ASSERT_EQ(got[1], 2);
	close(dfd);
	close(lfd);
	ASSERT_OK(t_daemon_stop(&d, SIGTERM));
	ASSERT_EQ(d.status, 0);
	return T_PASS;
}

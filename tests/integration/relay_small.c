/*
 * relay_small.c - small messages that end with the sender's FIN, on every
 * data path: the copy path stops reading after a short read (the socket
 * is drained; the next bytes are a new event), but when the FIN came with
 * the bytes no new event follows, so it must read on to the EOF. Each
 * session's bytes arrive exact and its FIN is forwarded both ways.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "tdaemon.h"

#define SESSIONS 100

/* n bytes of pattern k on from, then its FIN; to gets them and EOF. */
static int msg_then_fin(int from, int to, size_t n, int k)
{
	char m[128], r[128];

	memset(m, 'A' + k % 26, n);
	ASSERT_EQ(write(from, m, n), (ssize_t)n);
	ASSERT_EQ(shutdown(from, SHUT_WR), 0);
	ASSERT_EQ(t_read_full(to, r, n, 5000), (ssize_t)n);
	ASSERT_MEMEQ(r, m, n);
	ASSERT_EQ(t_wait_eof(to, 5000), 0);
	return T_PASS;
}

TEST_MATRIX(test_relay_small_message_with_fin)
{
	struct zc_addr la, ua;
	struct t_daemon d;
	int ulfd, rc, i, c, u;

	T_SKIP_IF(!t_daemon_path(), "ZC_DAEMON not set");
	T_TRY(t_daemon_route1(&d, ctx, &la, &ua, &ulfd, ""));
	for (i = 0; i < SESSIONS; i++) {
		c = t_connect(&la);
		ASSERT_OK(c);
		u = t_accept_ms(ulfd, 5000);
		ASSERT_OK(u);
		/* The first bytes and the FIN reach the relay together. */
		rc = msg_then_fin(c, u, 1 + (size_t)i % 100, i);
		if (rc == T_PASS)
			rc = msg_then_fin(u, c, 1 + (size_t)(i * 7) % 100,
			                  i + 1);
		close(c);
		close(u);
		if (rc)
			return rc;
	}
	close(ulfd);
	ASSERT_EQ(t_wait_log_count(&d, " end=eof", NULL, SESSIONS, 5000),
	          SESSIONS);
	return t_daemon_down(&d);
}

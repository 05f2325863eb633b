/*
 * fault_calls.c - the system calls a small message costs the relay,
 * counted by the zcfault shim (rules that match but never inject: "after"
 * a billion calls). A relayed 64-byte message is one read from its source
 * on the copy path (auto and copy movers): a short read means the socket
 * is drained, so no trailing read only to hear EAGAIN. The splice mover
 * still asks again (a short splice can mean a full pipe, not a drained
 * socket): at most two splices from the socket per message.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "tfault.h"

#define ROUNDS 500
#define NEVER  "after=999999999" /* match, count, never inject */

/* ROUNDS 64-byte round trips client -> upstream -> client, checked. */
static int ping_pong(const struct t_pair2 *p)
{
	char m[64], r[64];
	int i;

	for (i = 0; i < ROUNDS; i++) {
		memset(m, 'a' + i % 26, sizeof(m));
		ASSERT_EQ(write(p->c, m, sizeof(m)), (ssize_t)sizeof(m));
		ASSERT_EQ(t_read_full(p->u, r, sizeof(r), 5000),
		          (ssize_t)sizeof(r));
		ASSERT_MEMEQ(r, m, sizeof(m));
		m[0] ^= 0x55;
		ASSERT_EQ(write(p->u, m, sizeof(m)), (ssize_t)sizeof(m));
		ASSERT_EQ(t_read_full(p->c, r, sizeof(r), 5000),
		          (ssize_t)sizeof(r));
		ASSERT_MEMEQ(r, m, sizeof(m));
	}
	return T_PASS;
}

TEST_MATRIX(test_fault_small_message_reads)
{
	int splice = ctx->mover == ZC_MOVER_SPLICE;
	const char *fn = splice ? "splice" : "recv";
	char spec[256], label[32];
	long up_calls = -1, down_calls = -1;
	struct t_pair2 p;
	struct t_fault f;
	long most;

	T_TRY(t_fault_start(&f, ctx, t_fault_io_skip(ctx), ""));
	T_TRY(t_pair2_open(&f, f.ulfd, &p));
	/* EIO counts the reads from the client, ENOBUFS those from the
	 * upstream (the daemon's sockets whose peer is each). */
	snprintf(spec, sizeof(spec),
	         "%s:EIO:%s:port=%d%s,%s:ENOBUFS:%s:port=%d%s", fn, NEVER,
	         t_local_port(p.c), splice ? ":src=sock" : "", fn, NEVER,
	         ntohs_port(&f.ua), splice ? ":src=sock" : "");
	T_TRY(t_fault_set(&f, spec));
	T_TRY(ping_pong(&p));
	t_pair2_close(&p);
	T_TRY(t_fault_end(&f, ctx, "small message reads"));
	snprintf(label, sizeof(label), "%s:EIO", fn);
	ASSERT_EQ(t_fault_count(&f, label, &up_calls), 0);
	snprintf(label, sizeof(label), "%s:ENOBUFS", fn);
	ASSERT_EQ(t_fault_count(&f, label, &down_calls), 0);
	t_log("%d round trips: %ld %s calls on the client side, %ld on the "
	      "upstream side",
	      ROUNDS, up_calls, fn, down_calls);
	/* Each message is one read (two for splice), plus the EOF reads. */
	most = (splice ? 2 : 1) * ROUNDS + 4;
	ASSERT_GE(up_calls, ROUNDS);
	ASSERT_LE(up_calls, most);
	ASSERT_GE(down_calls, ROUNDS);
	ASSERT_LE(down_calls, most);
	return T_PASS;
}

#define CONNS 20

/* One short connection as bench/tools/connrate makes them: 64 bytes up,
 * 64 back, the upstream closes first, then the client; both must see
 * the other's FIN, not a reset. */
static int short_conn(struct t_fault *f)
{
	char m[64], r[64];
	struct t_pair2 p;

	T_TRY(t_pair2_open(f, f->ulfd, &p));
	memset(m, 'q', sizeof(m));
	ASSERT_EQ(write(p.c, m, sizeof(m)), (ssize_t)sizeof(m));
	ASSERT_EQ(t_read_full(p.u, r, sizeof(r), 5000), (ssize_t)sizeof(r));
	ASSERT_EQ(write(p.u, m, sizeof(m)), (ssize_t)sizeof(m));
	close(p.u);
	p.u = -1;
	ASSERT_EQ(t_read_full(p.c, r, sizeof(r), 5000), (ssize_t)sizeof(r));
	ASSERT_MEMEQ(r, m, sizeof(m));
	ASSERT_EQ(t_wait_eof(p.c, 5000), 0);
	t_pair2_close(&p);
	return T_PASS;
}

/* The label fn:errname's matching calls, after the daemon exited. */
static long calls_of(const struct t_fault *f, const char *fn,
                     const char *errname)
{
	char label[64];
	long calls = 0;

	snprintf(label, sizeof(label), "%s:%s", fn, errname);
	if (t_fault_count(f, label, &calls) < 0)
		return 0; /* never matched */
	return calls;
}

/*
 * What a short connection costs besides moving its bytes. The daemon's
 * sockets are its own (ZC_RELAY_F_FRESH): no O_NONBLOCK round, no
 * SO_ERROR after a connect that polls writable without an error, none
 * on a hang-up that carries no error. On epoll the close sends the last
 * FIN (no shutdown()); the watches are still removed (a fork may hold
 * copies of the sockets).
 */
TEST_MATRIX(test_fault_short_conn_calls)
{
	static const char *const fns[] = {"shutdown", "getsockopt",
	                                  "epoll_ctl"};
	int epoll = ctx->engine == ZC_ENGINE_EPOLL;
	char spec[512];
	size_t len = 0;
	long cli[3], up[3];
	struct t_fault f;
	int i, lport;

	T_TRY(t_fault_start(&f, ctx, t_fault_skip(), ""));
	lport = ntohs_port(&f.la);
	/* EIO counts the calls on the daemon's client sockets (its local
	 * port is the listener's), ENOBUFS on its upstream sockets. */
	for (i = 0; i < 3; i++)
		len += (size_t)snprintf(
		        spec + len, sizeof(spec) - len,
		        "%s%s:EIO:%s:port=%d,%s:ENOBUFS:%s:port=%d",
		        i ? "," : "", fns[i], NEVER, lport, fns[i], NEVER,
		        ntohs_port(&f.ua));
	T_TRY(t_fault_set(&f, spec));
	for (i = 0; i < CONNS; i++)
		T_TRY(short_conn(&f));
	T_TRY(t_fault_end(&f, ctx, "short connections"));
	for (i = 0; i < 3; i++) {
		cli[i] = calls_of(&f, fns[i], "EIO");
		up[i] = calls_of(&f, fns[i], "ENOBUFS");
		t_log("%d connections: %s %ld calls on client sockets, %ld on "
		      "upstream sockets",
		      CONNS, fns[i], cli[i], up[i]);
	}
	/* shutdown: the FIN to the client, which closed last; on epoll the
	 * close sends the upstream's. */
	ASSERT_EQ(cli[0], CONNS);
	ASSERT_EQ(up[0], epoll ? 0 : CONNS);
	ASSERT_EQ(cli[1], 0);
	ASSERT_EQ(up[1], 0);
	if (epoll) {
		/* client: the relay's add and delete; upstream: the
		 * connect's add and delete, the relay's. The listener's own
		 * (port lport) at the daemon's exit: at most a few. */
		ASSERT_GE(cli[2], 2 * CONNS);
		ASSERT_LE(cli[2], 2 * CONNS + 4);
		ASSERT_EQ(up[2], 4 * CONNS);
	} else {
		ASSERT_EQ(cli[2] + up[2], 0);
	}
	return T_PASS;
}

/* shutdown() failing as a FIN is forwarded (a socket error the kernel
 * could report there): that session ends as an error and resets the
 * client rather than leave it waiting; the next session is untouched,
 * and every fd comes back. */
TEST_MATRIX(test_fault_shutdown_fails)
{
	char m[64], r[64], spec[128], line[T_FAULT_LINE];
	struct t_pair2 p;
	struct t_fault f;
	int port;

	T_TRY(t_fault_start(&f, ctx, t_fault_skip(), ""));
	T_TRY(t_pair2_open(&f, f.ulfd, &p));
	port = t_local_port(p.c);
	snprintf(spec, sizeof(spec), "shutdown:EIO:count=1:port=%d", port);
	T_TRY(t_fault_set(&f, spec));
	memset(m, 's', sizeof(m));
	ASSERT_EQ(write(p.c, m, sizeof(m)), (ssize_t)sizeof(m));
	ASSERT_EQ(t_read_full(p.u, r, sizeof(r), 5000), (ssize_t)sizeof(r));
	ASSERT_EQ(write(p.u, m, sizeof(m)), (ssize_t)sizeof(m));
	close(p.u); /* the relay forwards this EOF to the client: EIO */
	p.u = -1;
	ASSERT_EQ(t_read_full(p.c, r, sizeof(r), 5000), (ssize_t)sizeof(r));
	ASSERT_EQ(t_wait_eof(p.c, 5000), -ECONNRESET);
	ASSERT_EQ(t_fault_wait(&f, "shutdown:EIO", 1, 5000), 1);
	T_TRY(t_fault_session(&f, port, line, sizeof(line)));
	ASSERT_HAS(line, " end=error");
	ASSERT_HAS(line, " error=EIO ");
	t_pair2_close(&p);
	T_TRY(short_conn(&f));
	return t_fault_end(&f, ctx, "shutdown EIO");
}

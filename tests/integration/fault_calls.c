/*
 * fault_calls.c - the system calls a small message costs the relay,
 * counted by the zcfault shim (rules that match but never inject: "after"
 * a billion calls). A relayed 64-byte message is one read from its source
 * on the copy path (auto and copy movers): a short read means the socket
 * is drained, so no trailing read only to hear EAGAIN. The splice mover
 * still asks again (a short splice can mean a full pipe, not a drained
 * socket): at most two splices from the socket per message.
 */
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

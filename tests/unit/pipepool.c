/* unit/pipepool.c - the pipe pool: reuse, dirty pipes, cap, no fds. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "runner.h"
#include "tnet.h"
#include "pipepool.h"

static int fake_emfile(int fds[2], int flags)
{
	errno = EMFILE;
	return -1;
}

TEST(test_pipepool_reuse_and_dirty)
{
	struct zc_pipepool pp;
	struct zc_pipe *a, *b, *c;
	int pipes0 = t_pipe_count();

	zc__pipepool_init(&pp, 256 * 1024, 2);
	ASSERT_EQ(zc__pipe_get(&pp, &a), 0);
	ASSERT_GE(a->p_size, 4096);
	ASSERT_EQ(a->p_size, (unsigned)fcntl(a->p_wfd, F_GETPIPE_SZ));
	ASSERT_NE(fcntl(a->p_rfd, F_GETFL) & O_NONBLOCK, 0);
	ASSERT_EQ(zc__pipe_get(&pp, &b), 0);
	ASSERT_EQ(zc__pipe_get(&pp, &c), -ENOBUFS); /* the cap is 2 */
	zc__pipe_put(&pp, a, 0);                    /* empty: cached */
	ASSERT_EQ(pp.pp_nfree, 1);
	ASSERT_EQ(zc__pipe_get(&pp, &a), 0); /* the same one back */
	ASSERT_EQ(pp.pp_nfree, 0);
	ASSERT_EQ(write(a->p_wfd, "x", 1), 1);
	zc__pipe_put(&pp, a, 1); /* holds a byte: destroyed, never reused */
	ASSERT_EQ(pp.pp_nfree, 0);
	ASSERT_EQ(pp.pp_nused, 1);
	zc__pipepool_fini(&pp);
	ASSERT_EQ(t_pipe_count(), pipes0 + 2); /* b is still out */
	zc__pipe_put(&pp, b, 0);
	zc__pipepool_fini(&pp);
	ASSERT_EQ(t_pipe_count(), pipes0);
	return T_PASS;
}

TEST(test_pipepool_no_fds)
{
	struct zc_pipepool pp;
	struct zc_pipe *p;

	zc__pipepool_init(&pp, 0, 0);
	pp.pp_pipe2 = fake_emfile;
	ASSERT_EQ(zc__pipe_get(&pp, &p), -EMFILE);
	ASSERT_EQ(pp.pp_nused, 0);
	zc__pipepool_fini(&pp);
	return T_PASS;
}

/*
 * lib_mover.c - ZC_MOVER: what an "auto" mover means for a loop's
 * relays, read once when the loop is created, never per relay.
 */
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>

#include "runner.h"
#include "tnet.h"

/* Starts a relay with mover m on loop and returns the mover its stats
 * say it runs (after ZC_MOVER was applied), then ends it. */
static int relay_mover(struct zc_loop *loop, int m, int *out)
{
	struct zc_relay_opts o;
	struct zc_relay_stats st;
	struct zc_relay *r;
	int a[2], b[2];

	ASSERT_OK(t_pair(AF_INET, a));
	ASSERT_OK(t_pair(AF_INET, b));
	zc_relay_opts_init(&o);
	o.mover = m;
	ASSERT_EQ(zc_relay_start(&r, loop, a[1], b[0], &o, NULL, NULL), 0);
	zc_relay_get_stats(r, &st);
	*out = st.mover;
	zc_relay_close(r); /* closes a[1] and b[0] */
	close(a[0]);
	close(b[1]);
	return T_PASS;
}

static int loop_new_epoll(struct zc_loop **loop)
{
	struct zc_loop_opts lo;

	zc_loop_opts_init(&lo);
	lo.engine = ZC_ENGINE_EPOLL;
	return zc_loop_new(loop, &lo);
}

TEST(test_mover_env_read_once_per_loop)
{
	struct zc_loop *before, *after, *bogus;
	int m;

	ASSERT_OK(unsetenv("ZC_MOVER"));
	ASSERT_EQ(loop_new_epoll(&before), 0);
	ASSERT_OK(setenv("ZC_MOVER", "copy", 1));
	ASSERT_EQ(loop_new_epoll(&after), 0);
	/* Set after the first loop was made: that loop's relays stay auto. */
	ASSERT_EQ(relay_mover(before, ZC_MOVER_AUTO, &m), T_PASS);
	ASSERT_EQ(m, ZC_MOVER_AUTO);
	ASSERT_EQ(relay_mover(after, ZC_MOVER_AUTO, &m), T_PASS);
	ASSERT_EQ(m, ZC_MOVER_COPY);
	/* Unset later: the second loop keeps what it read. */
	ASSERT_OK(unsetenv("ZC_MOVER"));
	ASSERT_EQ(relay_mover(after, ZC_MOVER_AUTO, &m), T_PASS);
	ASSERT_EQ(m, ZC_MOVER_COPY);
	/* It only stands in for auto. */
	ASSERT_EQ(relay_mover(after, ZC_MOVER_SPLICE, &m), T_PASS);
	ASSERT_EQ(m, ZC_MOVER_SPLICE);
	/* A name no mover has means auto. */
	ASSERT_OK(setenv("ZC_MOVER", "nonesuch", 1));
	ASSERT_EQ(loop_new_epoll(&bogus), 0);
	ASSERT_EQ(relay_mover(bogus, ZC_MOVER_AUTO, &m), T_PASS);
	ASSERT_EQ(m, ZC_MOVER_AUTO);
	zc_loop_free(before);
	zc_loop_free(after);
	zc_loop_free(bogus);
	return T_PASS;
}

/* unit/loop_engine.c - engine selection and the io_uring fallback. */
#include <errno.h>
#include <stdlib.h>

#include "config.h"
#include "runner.h"
#include "loop.h"
#if ZC_HAVE_LIBURING
#include "uring-t.h"
#endif

static struct zc_loop *new_loop(int engine, int *err)
{
	struct zc_loop_opts o;
	struct zc_loop *loop = NULL;

	zc_loop_opts_init(&o);
	o.engine = engine;
	*err = zc_loop_new(&loop, &o);
	return loop;
}

TEST(test_engine_uring_refused_is_enouring)
{
	struct zc_loop *loop;
	int err;

	/* As if kernel.io_uring_disabled or seccomp said EPERM. */
	zc__uring_inject_err = -EPERM;
	loop = new_loop(ZC_ENGINE_URING, &err);
	ASSERT_EQ(err, ZC_ENOURING);
	ASSERT_TRUE(loop == NULL);
	zc__uring_inject_err = -ENOSYS; /* no io_uring in the kernel */
	loop = new_loop(ZC_ENGINE_URING, &err);
	ASSERT_EQ(err, ZC_ENOURING);
	ASSERT_STREQ(zc_strerror(ZC_ENOURING), "io_uring engine unavailable");
	return T_PASS;
}

TEST(test_engine_auto_falls_back_to_epoll)
{
	struct zc_loop *loop;
	int err;

	/* io_uring refused: auto still works, on epoll. */
	zc__uring_inject_err = -EPERM;
	loop = new_loop(ZC_ENGINE_AUTO, &err);
	ASSERT_EQ(err, 0);
	ASSERT_EQ(zc_loop_engine(loop), ZC_ENGINE_EPOLL);
	zc_loop_free(loop);
	/* Allowed: auto picks io_uring (measured better), unless
	 * ZC_ENGINE=epoll says otherwise. */
	zc__uring_inject_err = 0;
	loop = new_loop(ZC_ENGINE_AUTO, &err);
	ASSERT_EQ(err, 0);
	if (zc_loop_engine(loop) == ZC_ENGINE_EPOLL) {
		zc_loop_free(loop);
		T_SKIP("io_uring unavailable on this kernel");
	}
	ASSERT_EQ(zc_loop_engine(loop), ZC_ENGINE_URING);
	zc_loop_free(loop);
	setenv("ZC_ENGINE", "epoll", 1);
	loop = new_loop(ZC_ENGINE_AUTO, &err);
	ASSERT_EQ(zc_loop_engine(loop), ZC_ENGINE_EPOLL);
	zc_loop_free(loop);
	/* An explicit engine is not overridden by the environment. */
	loop = new_loop(ZC_ENGINE_URING, &err);
	ASSERT_EQ(zc_loop_engine(loop), ZC_ENGINE_URING);
	zc_loop_free(loop);
	return T_PASS;
}

TEST(test_engine_bad_value)
{
	int err;

	ASSERT_TRUE(new_loop(7, &err) == NULL);
	ASSERT_EQ(err, -EINVAL);
	return T_PASS;
}

#if ZC_HAVE_LIBURING
/* The io_uring ring is set up with DEFER_TASKRUN where the kernel takes
 * it (6.1+), and with COOP_TASKRUN when that set-up is refused. */
TEST(test_engine_uring_defer_taskrun_then_coop)
{
	struct zc_loop *loop;
	unsigned fl;
	int err;

	loop = new_loop(ZC_ENGINE_URING, &err);
	T_SKIP_IF(err == ZC_ENOURING, "io_uring unavailable on this kernel");
	ASSERT_EQ(err, 0);
	fl = ((struct ur *)loop->backend)->ring.flags;
	zc_loop_free(loop);
	T_SKIP_IF(!(fl & IORING_SETUP_DEFER_TASKRUN),
	          "the kernel refuses DEFER_TASKRUN (before 6.1)");
	ASSERT_TRUE(fl & IORING_SETUP_SINGLE_ISSUER);
	zc__uring_no_defer = 1; /* as if refused */
	loop = new_loop(ZC_ENGINE_URING, &err);
	ASSERT_EQ(err, 0);
	fl = ((struct ur *)loop->backend)->ring.flags;
	zc_loop_free(loop);
	ASSERT_FALSE(fl & IORING_SETUP_DEFER_TASKRUN);
	ASSERT_TRUE(fl & IORING_SETUP_COOP_TASKRUN);
	return T_PASS;
}
#endif

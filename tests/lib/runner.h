/*
 * runner.h - the zctest runner: registration, variants, asserts.
 *
 * Every test runs in its own forked child, in its own process group, with
 * a timeout. A test returns T_PASS, T_FAIL or T_SKIP; the ASSERT_* macros
 * return T_FAIL from the enclosing function, so a test never needs to
 * clean up after a failed assert: the child exits and the runner kills
 * what is left of its process group. A test that passes must close every
 * fd it opened: the runner compares /proc/self/fd before and after.
 *
 *	TEST(test_addr_parse_v6)
 *	{
 *		ASSERT_OK(zc_addr_parse(&a, "[::1]:80", ZC_ADDR_NUMERIC));
 *		return T_PASS;
 *	}
 *
 *	TEST_MATRIX(test_relay_echo)    runs once per data path variant,
 *	{                               described by ctx->engine/mover
 *		...
 *	}
 *
 *	static const struct hc_case hc_cases[] = {   table-driven: one named
 *	        {"client_first", ...},               test per row, here
 *	        {"upstream_first", ...},             test_daemon_half_close_
 *	};                                           client_first[variant]...
 *	TEST_MATRIX_TABLE(test_daemon_half_close, hc_cases)
 *	{
 *		const struct hc_case *k = t_row();
 *		...
 *	}
 *
 * Asserts are for the test's own thread. Helper functions that return an
 * int may use them too (the failure propagates as T_FAIL).
 */
#ifndef ZC_TEST_RUNNER_H
#define ZC_TEST_RUNNER_H

#include <stddef.h>
#include <string.h>

#include "zcrelay.h"

/*
 * Test results, also the child's exit status. Enumerators rather than
 * macros, so that the name T_SKIP can also be the function-like macro
 * T_SKIP("reason") below: `return T_SKIP;` and `T_SKIP("why");` both work.
 */
enum t_result {
	T_PASS = 0,
	T_FAIL = 1,
	T_SKIP = 77,
};

/* The data path a test runs on. Plain TEST()s get ZC_ENGINE_AUTO,
 * ZC_MOVER_AUTO and variant NULL. */
struct t_ctx {
	int mover;           /* enum zc_mover */
	int engine;          /* enum zc_engine */
	const char *variant; /* "epoll:splice", ...; NULL for plain tests */
};

typedef int t_test_fn(const struct t_ctx *ctx);

/* 1 if the variant moves bytes with splice through pipes (splice(2), or
 * IORING_OP_SPLICE for uring-splice); copy and ring move them through
 * user-space buffers (stats: copied). */
static inline int t_splices(const struct t_ctx *ctx)
{
	return ctx->mover == ZC_MOVER_SPLICE ||
	       ctx->mover == ZC_MOVER_URING_SPLICE;
}

/* 1 if the variant never splices: copy and ring (auto splices the bulk
 * stretches of a direction, and copies or rings the rest). */
static inline int t_never_splices(const struct t_ctx *ctx)
{
	return ctx->mover == ZC_MOVER_COPY || ctx->mover == ZC_MOVER_RING;
}

/* One registered test. Filled by the TEST* macros; do not touch. */
struct t_test {
	const char *name;
	t_test_fn *fn;
	const char *file;
	int line;
	int matrix;         /* 1: run once per variant */
	unsigned timeout_s; /* 0: the default (T_TIMEOUT or 120 s) */
	struct t_test *next;
	const void *rows; /* a TEST_*TABLE's table, else NULL */
	size_t row_size;  /* sizeof one row */
	size_t nrows;     /* rows in the table */
};

/* Adds t to the list of tests. Called by constructors, before main(). */
void t_register(struct t_test *t);

#define T_DEFINE_(name, matrix, timeout)                                       \
	T_DEFINE_ROWS_(name, matrix, timeout, NULL, 0, 0)

#define T_DEFINE_ROWS_(name, matrix, timeout, rows, row_size, nrows)           \
	static int name(const struct t_ctx *ctx);                              \
	static struct t_test t_test_##name = {                                 \
	        #name,   name, __FILE__, __LINE__, matrix,                     \
	        timeout, NULL, rows,     row_size, nrows};                     \
	__attribute__((constructor)) static void t_register_##name(void)       \
	{                                                                      \
		t_register(&t_test_##name);                                    \
	}                                                                      \
	static int name(const struct t_ctx *ctx)

/* A test run once; ctx is still passed (engine/mover AUTO). */
#define TEST(name) T_DEFINE_(name, 0, 0)
/* A test run once per data path variant (see runner.c). */
#define TEST_MATRIX(name) T_DEFINE_(name, 1, 0)
/* The same with their own timeout in seconds, instead of the default. */
#define TEST_TIMEOUT(name, secs)        T_DEFINE_(name, 0, secs)
#define TEST_MATRIX_TIMEOUT(name, secs) T_DEFINE_(name, 1, secs)

/*
 * Table-driven tests: the body runs once per row of table (an array
 * whose element type starts with a `const char *name`), each row as its
 * own test named "<name>_<row name>" (and once per variant for the
 * matrix forms), so a filter, a failure or a skip names the row. The
 * body gets its row from t_row().
 */
#define T_TABLE_(name, matrix, timeout, table)                                 \
	T_DEFINE_ROWS_(name, matrix, timeout, (table), sizeof((table)[0]),     \
	               sizeof(table) / sizeof((table)[0]))
#define TEST_TABLE(name, table)        T_TABLE_(name, 0, 0, table)
#define TEST_MATRIX_TABLE(name, table) T_TABLE_(name, 1, 0, table)
#define TEST_MATRIX_TABLE_TIMEOUT(name, table, secs)                           \
	T_TABLE_(name, 1, secs, table)

/*
 * t_row - the row of the running TEST_*TABLE test (cast it to the row
 * type), or NULL in any other test. Valid for the whole test.
 */
const void *t_row(void);

/*
 * t_skip - record the skip reason (printf format) for the runner's
 * "# SKIP reason" and return T_SKIP. Use through T_SKIP / T_SKIP_IF.
 */
int t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define T_SKIP(...) return t_skip(__VA_ARGS__)
#define T_SKIP_IF(cond, ...)                                                   \
	do {                                                                   \
		if (cond)                                                      \
			return t_skip(__VA_ARGS__);                            \
	} while (0)

/*
 * T_TRY(expr) - run one step of a test: expr is an int that is 0 (T_PASS)
 * when the step succeeded, else T_FAIL, T_SKIP or a negative errno. A
 * non-zero value is returned at once from the enclosing function, so a
 * failure or skip deep in a helper reaches the runner unchanged:
 *
 *	T_TRY(t_daemon_up(&d, &a, &la));
 */
#define T_TRY(expr)                                                            \
	do {                                                                   \
		int t_try_ = (expr);                                           \
		if (t_try_)                                                    \
			return t_try_;                                         \
	} while (0)

/* t_log - a diagnostic line on stderr, prefixed with "# ". */
void t_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * t_tmpdir - a directory private to the running test, removed with all
 * its content by the runner when the test ends (even when it failed).
 * Falls back to "/tmp" outside the runner. Never NULL.
 */
const char *t_tmpdir(void);

/* Failure reporters behind the asserts; they print and never return
 * anything but T_FAIL. */
int t_fail(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int t_fail_cmp(const char *file, int line, const char *expr_a, const char *op,
               const char *expr_b, long long a, long long b);
int t_fail_err(const char *file, int line, const char *expr, long long got,
               long long want);
int t_fail_mem(const char *file, int line, const char *expr_a,
               const char *expr_b, const void *a, const void *b, size_t n);

#define ASSERT_TRUE(x)                                                         \
	do {                                                                   \
		if (!(x))                                                      \
			return t_fail(__FILE__, __LINE__,                      \
			              "ASSERT_TRUE(%s) failed", #x);           \
	} while (0)

#define ASSERT_FALSE(x)                                                        \
	do {                                                                   \
		if (x)                                                         \
			return t_fail(__FILE__, __LINE__,                      \
			              "ASSERT_FALSE(%s) failed", #x);          \
	} while (0)

/* Integer comparisons, both sides evaluated once, printed as long long. */
#define T_CMP_(a, op, b)                                                       \
	do {                                                                   \
		long long t_a_ = (long long)(a);                               \
		long long t_b_ = (long long)(b);                               \
		if (!(t_a_ op t_b_))                                           \
			return t_fail_cmp(__FILE__, __LINE__, #a, #op, #b,     \
			                  t_a_, t_b_);                         \
	} while (0)

#define ASSERT_EQ(a, b) T_CMP_(a, ==, b)
#define ASSERT_NE(a, b) T_CMP_(a, !=, b)
#define ASSERT_GE(a, b) T_CMP_(a, >=, b)
#define ASSERT_LE(a, b) T_CMP_(a, <=, b)
#define ASSERT_GT(a, b) T_CMP_(a, >, b)
#define ASSERT_LT(a, b) T_CMP_(a, <, b)

/* x >= 0 (a count or an fd); a negative value is printed as an error. */
#define ASSERT_OK(x)                                                           \
	do {                                                                   \
		long long t_x_ = (long long)(x);                               \
		if (t_x_ < 0)                                                  \
			return t_fail_err(__FILE__, __LINE__, #x, t_x_, 0);    \
	} while (0)

/* x == err, a negative errno or ZC_E* code (ASSERT_ERR(r, -EINVAL)). */
#define ASSERT_ERR(x, err)                                                     \
	do {                                                                   \
		long long t_x_ = (long long)(x);                               \
		long long t_e_ = (long long)(err);                             \
		if (t_x_ != t_e_)                                              \
			return t_fail_err(__FILE__, __LINE__, #x, t_x_, t_e_); \
	} while (0)

/* Strings; NULL is allowed on either side and equals only NULL. */
#define ASSERT_STREQ(a, b)                                                     \
	do {                                                                   \
		const char *t_a_ = (a);                                        \
		const char *t_b_ = (b);                                        \
		if (t_a_ != t_b_ && (!t_a_ || !t_b_ || strcmp(t_a_, t_b_)))    \
			return t_fail(__FILE__, __LINE__,                      \
			              "ASSERT_STREQ(%s, %s) failed: "          \
			              "\"%s\" != \"%s\"",                      \
			              #a, #b, t_a_ ? t_a_ : "(null)",          \
			              t_b_ ? t_b_ : "(null)");                 \
	} while (0)

/* n bytes at a and b are equal; the first difference is printed. */
#define ASSERT_MEMEQ(a, b, n)                                                  \
	do {                                                                   \
		const void *t_a_ = (a);                                        \
		const void *t_b_ = (b);                                        \
		size_t t_n_ = (n);                                             \
		if (memcmp(t_a_, t_b_, t_n_))                                  \
			return t_fail_mem(__FILE__, __LINE__, #a, #b, t_a_,    \
			                  t_b_, t_n_);                         \
	} while (0)

#endif

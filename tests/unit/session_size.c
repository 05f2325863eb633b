/*
 * unit/session_size.c - the memory an idle session costs. A daemon holds
 * idle sessions by the thousand, and its promise is at most 1 KiB of
 * RSS for each (bench/idle-slope.py measures the slope; docs/
 * benchmarks.md has the numbers). What one costs in user space is two
 * heap chunks: the daemon's struct zcr_session and the library's struct
 * zc_relay; the rest of the KiB goes to the fd table (two fds) and, on
 * io_uring, to the requests an idle relay keeps armed. Pre-relay state
 * (PROXY header, sniffing, connect retries) lives in struct zcr_pre,
 * which is freed when the relay starts, so it is not budgeted here.
 */
#include <stddef.h>

#include "runner.h"
#include "relay-t.h"
#include "session.h"

/* What glibc's malloc takes for n bytes: n plus its 8-byte size field,
 * rounded up to 16, at least 32. */
static size_t chunk(size_t n)
{
	size_t c = (n + 8 + 15) & ~(size_t)15;

	return c < 32 ? 32 : c;
}

/*
 * The budgets. The session's: what it keeps while relaying (links, ids,
 * counters, two compact addresses, the sniffed names as pointers) is
 * 200 bytes; 256 leaves room for a field or two, not for another
 * sockaddr_storage (128 bytes) or an inline name buffer. The relay's:
 * two sides, two directions with the union of mover state, the idle
 * timer (which also times a hand-over's settling: no second timer);
 * 544 is its chunk today (536 bytes, no rounding loss). Together at
 * most 832 bytes of heap, so that 192 bytes of the KiB remain for the
 * fd table and the engine: growing one means shrinking the other.
 */
#define SESSION_BUDGET 256
#define RELAY_BUDGET   544
#define IDLE_BUDGET    832

TEST(test_session_size_budget)
{
	size_t s = sizeof(struct zcr_session), r = sizeof(struct zc_relay);

	t_log("struct zcr_session %zu bytes (chunk %zu), struct zc_relay %zu "
	      "(chunk %zu), struct zcr_pre %zu",
	      s, chunk(s), r, chunk(r), sizeof(struct zcr_pre));
	ASSERT_LE(s, SESSION_BUDGET);
	ASSERT_LE(r, RELAY_BUDGET);
	ASSERT_LE(chunk(s) + chunk(r), IDLE_BUDGET);
	return T_PASS;
}

/* An address in the session is the size of an IPv6 one, pointer-aligned:
 * not a struct sockaddr_storage. */
TEST(test_session_size_saddr)
{
	ASSERT_LE(sizeof(struct zcr_saddr), 32);
	return T_PASS;
}

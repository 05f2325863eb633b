/*
 * fuzz_relaystate.c - libFuzzer harness for a detached relay's wire form
 * (src/relay_state.c), which a new process reads from an old one.
 *
 * The input is one record, optionally followed by more: whatever it
 * holds, unpack reads no byte past len and no fd past nfds (ASan), and a
 * record it accepts is a relay zc__relay_state_check() takes that packs
 * back to exactly the same bytes and names the same fds.
 */
#include <stdint.h>
#include <string.h>

#include "relay_state.h"
#include "fuzz.h"

#define FZ_NFDS 8

/* Whether a and b agree on every byte but the fd indexes, which pack
 * numbers afresh from the start of its array. */
static int fz_same_but_indexes(const uint8_t *a, const uint8_t *b)
{
	static const size_t idx[] = {40, 41, 42,  43,  84,  85,
	                             86, 87, 124, 125, 126, 127};
	uint8_t x[ZC_RELAY_STATE_LEN], y[ZC_RELAY_STATE_LEN];
	size_t i;

	memcpy(x, a, sizeof(x));
	memcpy(y, b, sizeof(y));
	for (i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		x[idx[i]] = y[idx[i]] = 0;
	return !memcmp(x, y, sizeof(x));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int fds[FZ_NFDS] = {100, 101, 102, 103, 104, 105, -1, 107};
	uint8_t again[ZC_RELAY_STATE_LEN];
	int out[ZC_RELAY_STATE_FDS];
	struct zc_relay_state s, s2;
	unsigned n = 0;
	int rc;

	rc = zc__relay_state_unpack(&s, data, size, fds, FZ_NFDS);
	if (rc < 0)
		return 0;
	FZ_CHECK(rc == ZC_RELAY_STATE_LEN && (size_t)rc <= size);
	FZ_CHECK(zc__relay_state_check(&s) == 0);
	FZ_CHECK(s.fd_a >= 100 && s.fd_b >= 100);
	FZ_CHECK(zc__relay_state_pack(&s, again, sizeof(again), out, &n) == rc);
	FZ_CHECK(n >= 2 && n <= ZC_RELAY_STATE_FDS);
	FZ_CHECK(fz_same_but_indexes(again, data));
	memset(&s2, 0xff, sizeof(s2));
	FZ_CHECK(zc__relay_state_unpack(&s2, again, sizeof(again), out, n) ==
	         rc);
	FZ_CHECK(memcmp(&s, &s2, sizeof(s)) == 0);
	return 0;
}

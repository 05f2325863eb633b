/*
 * fuzz.h - what every libFuzzer harness in tests/fuzz/ shares.
 *
 * A harness is a file tests/fuzz/fuzz_<name>.c that defines
 * LLVMFuzzerTestOneInput() and returns 0; `make fuzz` builds and runs it,
 * seeded from tests/fuzz/corpus/fuzz_<name>/ (see README, "Fuzzing").
 */
#ifndef ZC_FUZZ_H
#define ZC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Called by libFuzzer once per input; data is valid only during the call. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the code under test: not assert(), so it holds whatever
 * NDEBUG says; the trap is a crash libFuzzer reports and keeps. */
#define FZ_CHECK(x)                                                            \
	do {                                                                   \
		if (!(x))                                                      \
			__builtin_trap();                                      \
	} while (0)

#endif

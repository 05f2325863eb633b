/*
 * fuzz_cfgfile.c - libFuzzer harness for zcr_cfg_load(): the input is
 * the content of the config file.
 *
 * Built by `make fuzz`; run it on a copy of the seeds, for example
 *	fuzz_cfgfile -max_total_time=60 corpus/ tests/fuzz/corpus/fuzz_cfgfile
 * Each input that leaves a libconfig leak behind (see below) makes
 * libFuzzer run a leak scan: -detect_leaks=0 is several times faster.
 *
 * The file is a memfd, rewritten for each input and loaded through
 * /proc/self/fd/N, so nothing touches the disk. Upstream host names go
 * to the fake resolver of fakeresolv.c, never to DNS.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>

#include "cfg.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

static int file_fd = -1;
static char file_path[64];

/*
 * libconfig 1.5 leaks a string token that error recovery discards (the
 * file `""` is enough): hyperrealm/libconfig#142, fixed in 1.7 by #155.
 * The scanner allocates the token, so its frames are suppressed. Our own
 * leaks of libconfig data would still show through the parser's other
 * allocations (settings, lists).
 */
const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig_yylex\nleak:strbuf_append\n";
}

/*
 * Silences the loader's error messages: it prints through the stdio
 * stream stderr, which glibc lets a program replace. libFuzzer keeps its
 * own copy of the original stream and the sanitizers write to fd 2, so
 * their reports still show.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FILE *null = fopen("/dev/null", "w");

	if (null)
		stderr = null;
	file_fd = memfd_create("fuzz_cfgfile", MFD_CLOEXEC);
	if (file_fd == -1) {
		perror("memfd_create");
		abort();
	}
	snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zcr_cfg *c = NULL;

	if (ftruncate(file_fd, 0) == -1 ||
	    pwrite(file_fd, data, size, 0) != (ssize_t)size)
		abort();
	if (zcr_cfg_load(file_path, &c) == 0)
		zcr_cfg_unref(c);
	return 0;
}

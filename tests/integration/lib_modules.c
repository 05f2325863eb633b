/*
 * lib_modules.c - the library's module graph in docs/design.md
 * ("Modules and dependencies") is the code's: scripts/lib-deps.py reads
 * which object needs which (nm over the objects in the build's src/)
 * and fails if a file depends on one listed at or above it (so the graph
 * has no cycle), on one its line does not name, or if a file is missing.
 */
#include <stdio.h>
#include <stdlib.h>

#include "runner.h"
#include "tdaemon.h"

TEST(test_lib_modules_acyclic)
{
	const char *src = getenv("ZC_SRCDIR"), *build = getenv("ZC_BUILD");
	char cmd[2048];

	T_SKIP_IF(!src || !build,
	          "ZC_SRCDIR/ZC_BUILD unset (run by make check)");
	T_SKIP_IF(!t_in_path("python3"), "python3 is not installed");
	T_SKIP_IF(!t_in_path("nm"), "nm (binutils) is not installed");
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && python3 scripts/lib-deps.py . '%s'", src, build);
	ASSERT_EQ(t_run(cmd), 0);
	return T_PASS;
}

/*
 * daemon_modules.c - the daemon's module order in docs/design.md ("The
 * daemon") is the code's: scripts/daemon-deps.py finds which module calls
 * which and fails if a module calls one listed above or beside it (so
 * the graph has no cycle) or if a module is missing from the diagram.
 */
#include <stdio.h>
#include <stdlib.h>

#include "runner.h"
#include "tdaemon.h"

TEST(test_daemon_modules_acyclic)
{
	const char *src = getenv("ZC_SRCDIR");
	char cmd[1024];

	T_SKIP_IF(!src, "ZC_SRCDIR unset (run by make check)");
	T_SKIP_IF(!t_in_path("python3"), "python3 is not installed");
	snprintf(cmd, sizeof(cmd), "python3 '%s/scripts/daemon-deps.py' '%s'",
	         src, src);
	ASSERT_EQ(t_run(cmd), 0);
	return T_PASS;
}

/*
 * tproc.h - what a process holds, read from /proc: its resident memory
 * and its open fds. Shared by the integration tests and zcsoak
 * (tests/soak/), so it depends on nothing but libc.
 */
#ifndef ZC_TEST_TPROC_H
#define ZC_TEST_TPROC_H

#include <sys/types.h>

struct t_proc_mem {
	long rss_kb; /* VmRSS */
	int fds;     /* open fds */
	int pipes;   /* of which pipe ends */
};

/*
 * t_proc_mem - reads pid's VmRSS and counts its open fds and pipe ends
 * into m (all zero first; an fd closed while counting is not counted).
 * Returns 0, or -errno if /proc/<pid> cannot be read (it has exited).
 */
int t_proc_mem(pid_t pid, struct t_proc_mem *m);

#endif

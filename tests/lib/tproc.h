/*
 * tproc.h - what a process holds, read from /proc: its resident memory,
 * its open fds and what its epoll instances watch. Shared by the
 * integration tests and zcsoak (tests/soak/), so it depends on nothing
 * but libc.
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

/*
 * t_epoll_watches - counts the watches of all the epoll instances of
 * this process whose target is the file with inode ino (st_ino of a
 * socket), from /proc/self/fdinfo. Returns the count or -errno.
 */
int t_epoll_watches(unsigned long ino);

#endif

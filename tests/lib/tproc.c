/*
 * tproc.c - what a process holds, read from /proc (see tproc.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tproc.h"

static long proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Calls fn(arg, name, target) for each open fd of pid: its number as
 * named in /proc/<pid>/fd, and where its link points (an fd closed
 * meanwhile is skipped). Returns 0, or -errno if the directory cannot
 * be read (the process has exited). */
static int proc_each_fd(pid_t pid,
                        void (*fn)(void *arg, const char *name,
                                   const char *target),
                        void *arg)
{
	char dir[64], path[320], target[64];
	struct dirent *de;
	ssize_t n;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	dp = opendir(dir);
	if (!dp)
		return -errno;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue; /* closed meanwhile */
		target[n] = '\0';
		fn(arg, de->d_name, target);
	}
	closedir(dp);
	return 0;
}

static void count_fd(void *arg, const char *name, const char *target)
{
	struct t_proc_mem *m = arg;

	(void)name;
	m->fds++;
	if (!strncmp(target, "pipe:", 5))
		m->pipes++;
}

int t_proc_mem(pid_t pid, struct t_proc_mem *m)
{
	long kb;

	memset(m, 0, sizeof(*m));
	kb = proc_rss_kb(pid);
	if (kb < 0)
		return (int)kb;
	m->rss_kb = kb;
	return proc_each_fd(pid, count_fd, m);
}

struct watches {
	unsigned long ino; /* the target file looked for */
	int n;             /* watches on it found so far */
};

/* Adds the lines "tfd: N ... ino:HEX" of one epoll fd's fdinfo whose
 * inode is w->ino; other fds are passed over. */
static void count_watches(void *arg, const char *name, const char *target)
{
	struct watches *w = arg;
	char path[300], line[256];
	unsigned long got;
	const char *at;
	FILE *f;

	if (strcmp(target, "anon_inode:[eventpoll]"))
		return;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", name);
	f = fopen(path, "re");
	if (!f)
		return; /* closed meanwhile */
	while (fgets(line, sizeof(line), f)) {
		at = strstr(line, " ino:");
		if (!strncmp(line, "tfd:", 4) && at &&
		    sscanf(at, " ino:%lx", &got) == 1 && got == w->ino)
			w->n++;
	}
	fclose(f);
}

int t_epoll_watches(unsigned long ino)
{
	struct watches w = {ino, 0};
	int err;

	err = proc_each_fd(getpid(), count_watches, &w);
	return err ? err : w.n;
}

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

int t_proc_mem(pid_t pid, struct t_proc_mem *m)
{
	char dir[64], path[320], target[64];
	struct dirent *de;
	ssize_t n;
	long kb;
	DIR *dp;

	memset(m, 0, sizeof(*m));
	kb = proc_rss_kb(pid);
	if (kb < 0)
		return (int)kb;
	m->rss_kb = kb;
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
		m->fds++;
		if (!strncmp(target, "pipe:", 5))
			m->pipes++;
	}
	closedir(dp);
	return 0;
}

/* Counts the lines "tfd: N ... ino:HEX" of one epoll fd's fdinfo whose
 * inode is ino. */
static int epoll_fd_watches(const char *name, unsigned long ino)
{
	char path[300], line[256];
	unsigned long got;
	const char *at;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", name);
	f = fopen(path, "re");
	if (!f)
		return 0; /* closed meanwhile */
	while (fgets(line, sizeof(line), f)) {
		at = strstr(line, " ino:");
		if (!strncmp(line, "tfd:", 4) && at &&
		    sscanf(at, " ino:%lx", &got) == 1 && got == ino)
			n++;
	}
	fclose(f);
	return n;
}

int t_epoll_watches(unsigned long ino)
{
	char path[320], target[64];
	struct dirent *de;
	int n = 0;
	ssize_t len;
	DIR *dp;

	dp = opendir("/proc/self/fd");
	if (!dp)
		return -errno;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (!strcmp(target, "anon_inode:[eventpoll]"))
			n += epoll_fd_watches(de->d_name, ino);
	}
	closedir(dp);
	return n;
}

/* tprog.c - see tprog.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "runner.h"
#include "tprog.h"

/* The whole content of path, NUL-terminated; NULL if unreadable. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb)
				break;
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static pid_t spawn(const char *cmd, const char *log)
{
	pid_t pid = fork();
	int fd;

	if (pid != 0)
		return pid < 0 ? -errno : pid;
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	_exit(127);
}

int t_prog_start(struct t_prog *p, const char *name, const char *cmd)
{
	pid_t pid;

	char *full;

	snprintf(p->log_path, sizeof(p->log_path), "%s/%s.log", t_tmpdir(),
	         name);
	if (asprintf(&full, "exec %s", cmd) < 0)
		return -ENOMEM;
	pid = spawn(full, p->log_path);
	free(full);
	if (pid < 0)
		return (int)pid;
	p->pid = pid;
	return 0;
}

/* Waits at most ms for pid; 1 once reaped. */
static int reap_ms(pid_t pid, int ms, int *status)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	int i;

	for (i = 0; i <= ms / 10; i++) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

void t_prog_stop(struct t_prog *p, int dump)
{
	char *text;
	int st;

	if (p->pid <= 0)
		return;
	kill(p->pid, SIGTERM);
	if (!reap_ms(p->pid, 5000, &st)) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &st, 0);
	}
	p->pid = 0;
	if (!dump)
		return;
	text = slurp(p->log_path);
	t_log("%s:\n%s", p->log_path, text ? text : "(unreadable)");
	free(text);
}

int t_sh(const char *cmd, char **out)
{
	char log[256];
	pid_t pid;
	int st;

	*out = NULL;
	snprintf(log, sizeof(log), "%s/t_sh.out", t_tmpdir());
	pid = spawn(cmd, log);
	if (pid < 0)
		return (int)pid;
	if (waitpid(pid, &st, 0) != pid)
		return -errno;
	*out = slurp(log);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

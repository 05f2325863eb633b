/*
 * examples.c - the library's example programs (examples/, built by
 * make examples into $ZC_EXAMPLES) run against local peers: bytes checked
 * end to end, the printed counts compared with what moved, bad input.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "runner.h"
#include "tdaemon.h"
#include "tnet.h"

#define MIB (1024ULL * 1024ULL)

/* A running example: its stdout and stderr, read through a pipe. */
struct ex_proc {
	pid_t pid;
	int out; /* read end of the pipe */
	char text[8192];
	size_t len;
};

/* Starts $ZC_EXAMPLES/name with the arguments argv (argv[0] is set
 * here). Returns 0, -ENOENT without ZC_EXAMPLES, or -errno. */
static int ex_start(struct ex_proc *p, const char *name, char *argv[])
{
	const char *dir = getenv("ZC_EXAMPLES");
	char path[512];
	int fds[2];

	if (!dir)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	memset(p, 0, sizeof(*p));
	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	p->pid = fork();
	if (p->pid < 0)
		return -errno;
	if (p->pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		argv[0] = path;
		execv(path, argv);
		_exit(127);
	}
	close(fds[1]);
	p->out = fds[0];
	return 0;
}

/* Appends what the example printed within 100 ms. Returns the bytes
 * read, 0 at EOF, -EAGAIN if nothing came, -ENOSPC when text is full. */
static ssize_t ex_read(struct ex_proc *p)
{
	struct pollfd pfd = {.fd = p->out, .events = POLLIN};
	ssize_t n;

	if (p->len + 1 >= sizeof(p->text))
		return -ENOSPC;
	if (poll(&pfd, 1, 100) <= 0)
		return -EAGAIN;
	n = read(p->out, p->text + p->len, sizeof(p->text) - 1 - p->len);
	if (n < 0)
		return -errno;
	p->len += (size_t)n;
	p->text[p->len] = '\0';
	return n;
}

/* Reads output until it contains s, EOF, or 10 s. Returns the text at
 * s, or NULL (the output so far is logged). */
static const char *ex_wait_text(struct ex_proc *p, const char *s)
{
	uint64_t end = t_now_ms() + 10000;
	const char *at;
	ssize_t n = 1;

	while (!(at = strstr(p->text, s)) && (n > 0 || n == -EAGAIN) &&
	       t_now_ms() < end)
		n = ex_read(p);
	if (!at)
		t_log("no \"%s\" in the output: %s", s, p->text);
	return at;
}

/* Reads the rest of the output (until EOF), then waits (10 s at most)
 * for the example's exit; returns its status, or -ETIMEDOUT after killing
 * it. Closes the pipe. */
static int ex_wait(struct ex_proc *p)
{
	uint64_t end = t_now_ms() + 10000;
	ssize_t n = 1;
	int st;

	while ((n > 0 || n == -EAGAIN) && t_now_ms() < end)
		n = ex_read(p);
	close(p->out);
	while (waitpid(p->pid, &st, WNOHANG) == 0) {
		if (t_now_ms() > end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &st, 0);
			return -ETIMEDOUT;
		}
		t_sleep_ms(10);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The address an example printed after "listening on ". */
static int ex_listen_addr(struct ex_proc *p, struct zc_addr *a)
{
	const char *at = ex_wait_text(p, "listening on ");
	char s[128];

	ASSERT_TRUE(at);
	ASSERT_TRUE(ex_wait_text(p, "\n"));
	ASSERT_EQ(sscanf(at, "listening on %127s", s), 1);
	ASSERT_OK(zc_addr_parse(a, s, ZC_ADDR_NUMERIC));
	return T_PASS;
}

TEST(test_examples_join)
{
	char *argv[] = {NULL, "127.0.0.1:0", NULL, NULL};
	struct ex_proc p;
	struct zc_addr ua, la;
	char up[128], want[256];
	int ufd, cfd, sfd;

	T_SKIP_IF(!getenv("ZC_EXAMPLES"), "ZC_EXAMPLES unset (make check)");
	ASSERT_OK(ufd = t_listen(AF_INET, &ua));
	ASSERT_OK(t_addr_str(&ua, up, sizeof(up)));
	argv[2] = up;
	ASSERT_OK(ex_start(&p, "join", argv));
	ASSERT_EQ(ex_listen_addr(&p, &la), T_PASS);
	ASSERT_OK(cfd = t_connect(&la));
	ASSERT_OK(sfd = t_accept(ufd));
	/* Each direction checked byte for byte, the EOF forwarded. */
	ASSERT_EQ(t_xfer_check(cfd, sfd, 8 * MIB + 11, 1), T_PASS);
	ASSERT_EQ(t_xfer_check(sfd, cfd, 3 * MIB + 5, 2), T_PASS);
	ASSERT_EQ(ex_wait(&p), 0);
	snprintf(want, sizeof(want), "join: up %llu bytes", 8 * MIB + 11);
	ASSERT_TRUE(strstr(p.text, want));
	snprintf(want, sizeof(want), "down %llu bytes", 3 * MIB + 5);
	ASSERT_TRUE(strstr(p.text, want));
	ASSERT_TRUE(strstr(p.text, "end eof"));
	close(cfd);
	close(sfd);
	close(ufd);
	return T_PASS;
}

/* An upstream nobody listens on: a clear message and exit 1. */
TEST(test_examples_join_refused)
{
	char *argv[] = {NULL, "127.0.0.1:0", NULL, NULL};
	struct ex_proc p;
	struct zc_addr ua, la;
	char up[128];
	int ufd, cfd;

	T_SKIP_IF(!getenv("ZC_EXAMPLES"), "ZC_EXAMPLES unset (make check)");
	ASSERT_OK(ufd = t_listen(AF_INET, &ua));
	ASSERT_OK(t_addr_str(&ua, up, sizeof(up)));
	close(ufd); /* the port is closed now */
	argv[2] = up;
	ASSERT_OK(ex_start(&p, "join", argv));
	ASSERT_EQ(ex_listen_addr(&p, &la), T_PASS);
	ASSERT_OK(cfd = t_connect(&la));
	ASSERT_TRUE(ex_wait_text(&p, "join: connect: Connection refused"));
	ASSERT_EQ(ex_wait(&p), 1);
	close(cfd);
	return T_PASS;
}

/* A file of n stream bytes in t_tmpdir(); its bytes stay in *data. */
static int make_file(char *path, size_t size, char **data, size_t n)
{
	struct t_rng r;
	int fd;

	ASSERT_TRUE(*data = malloc(n));
	t_rng_init(&r, 12);
	t_rng_fill(&r, *data, n);
	snprintf(path, size, "%s/served.bin", t_tmpdir());
	ASSERT_OK(fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	ASSERT_OK(t_write_all(fd, *data, n));
	close(fd);
	return T_PASS;
}

TEST(test_examples_serve)
{
	const size_t fsize = 6 * MIB + 77, off = 4099, len = 5 * MIB + 3;
	char *argv[] = {NULL, "127.0.0.1:0", NULL, "4099", "5242883", NULL};
	struct ex_proc p;
	struct zc_addr la;
	char path[512], want[128], *data, *got;
	int cfd;

	T_SKIP_IF(!getenv("ZC_EXAMPLES"), "ZC_EXAMPLES unset (make check)");
	ASSERT_EQ(make_file(path, sizeof(path), &data, fsize), T_PASS);
	argv[2] = path;
	ASSERT_OK(ex_start(&p, "serve", argv));
	ASSERT_EQ(ex_listen_addr(&p, &la), T_PASS);
	ASSERT_OK(cfd = t_connect(&la));
	ASSERT_TRUE(got = malloc(len + 1));
	/* Exactly the range, then EOF. */
	ASSERT_EQ(t_read_full(cfd, got, len + 1, 10000), (ssize_t)len);
	ASSERT_MEMEQ(got, data + off, len);
	ASSERT_EQ(ex_wait(&p), 0);
	snprintf(want, sizeof(want), "serve: %zu bytes from offset %zu", len,
	         off);
	ASSERT_TRUE(strstr(p.text, want));
	close(cfd);
	free(got);
	free(data);
	return T_PASS;
}

/* A range past the end of the file is refused before a byte is sent. */
TEST(test_examples_serve_past_end)
{
	char *argv[] = {NULL, "127.0.0.1:0", NULL, "100", "4096", NULL};
	struct ex_proc p;
	struct zc_addr la;
	char path[512], *data, byte;
	int cfd;

	T_SKIP_IF(!getenv("ZC_EXAMPLES"), "ZC_EXAMPLES unset (make check)");
	ASSERT_EQ(make_file(path, sizeof(path), &data, 4096), T_PASS);
	argv[2] = path;
	ASSERT_OK(ex_start(&p, "serve", argv));
	ASSERT_EQ(ex_listen_addr(&p, &la), T_PASS);
	ASSERT_OK(cfd = t_connect(&la));
	ASSERT_TRUE(ex_wait_text(&p, "serve: transfer: Invalid argument"));
	ASSERT_EQ(ex_wait(&p), 1);
	ASSERT_EQ(t_read_full(cfd, &byte, 1, 10000), 0);
	close(cfd);
	free(data);
	return T_PASS;
}

/* One session through embed: both directions checked, its line. */
static int embed_session(struct ex_proc *p, const struct zc_addr *la, int ufd,
                         unsigned i)
{
	char want[128];
	int cfd, sfd;

	ASSERT_OK(cfd = t_connect(la));
	ASSERT_OK(sfd = t_accept(ufd));
	ASSERT_EQ(t_xfer_check(cfd, sfd, MIB * i + i, i), T_PASS);
	ASSERT_EQ(t_xfer_check(sfd, cfd, 1000 * i, 10 + i), T_PASS);
	close(cfd);
	close(sfd);
	snprintf(want, sizeof(want), "session %u: up %llu down %u end eof", i,
	         MIB * i + i, 1000 * i);
	ASSERT_TRUE(ex_wait_text(p, want));
	return T_PASS;
}

TEST(test_examples_embed)
{
	char *argv[] = {NULL, "127.0.0.1:0", NULL, NULL};
	struct ex_proc p;
	struct zc_addr ua, la;
	char up[128];
	int ufd;

	T_SKIP_IF(!getenv("ZC_EXAMPLES"), "ZC_EXAMPLES unset (make check)");
	ASSERT_OK(ufd = t_listen(AF_INET, &ua));
	ASSERT_OK(t_addr_str(&ua, up, sizeof(up)));
	argv[2] = up;
	ASSERT_OK(ex_start(&p, "embed", argv));
	ASSERT_EQ(ex_listen_addr(&p, &la), T_PASS);
	ASSERT_EQ(embed_session(&p, &la, ufd, 1), T_PASS);
	ASSERT_EQ(embed_session(&p, &la, ufd, 2), T_PASS);
	/* The stop is posted from the main thread to the loop's. */
	ASSERT_OK(kill(p.pid, SIGTERM));
	ASSERT_TRUE(ex_wait_text(&p, "embed: stopped after 2 sessions"));
	ASSERT_EQ(ex_wait(&p), 0);
	close(ufd);
	return T_PASS;
}

/* Runs example name with argv; it must exit with want and print out. */
static int ex_bad(const char *name, char *argv[], int want, const char *out)
{
	struct ex_proc p;

	ASSERT_OK(ex_start(&p, name, argv));
	ASSERT_EQ(ex_wait(&p), want);
	if (!strstr(p.text, out))
		return t_fail(__FILE__, __LINE__, "%s: no \"%s\" in: %s", name,
		              out, p.text);
	return T_PASS;
}

/* Bad arguments: a usage line and exit 2, or the error and exit 1. */
TEST(test_examples_bad_input)
{
	char *serve_off[] = {NULL, "127.0.0.1:0", "/dev/null", "12x", NULL};
	char *serve_neg[] = {NULL, "127.0.0.1:0", "/dev/null", "0", "-1", NULL};
	char *serve_missing[] = {NULL, "127.0.0.1:0", "/nonexistent/f", NULL};
	char *join_addr[] = {NULL, "127.0.0.1:0", "no-port", NULL};
	char *embed_args[] = {NULL, "127.0.0.1:0", NULL};

	T_SKIP_IF(!getenv("ZC_EXAMPLES"), "ZC_EXAMPLES unset (make check)");
	ASSERT_EQ(ex_bad("serve", serve_off, 2, "usage: serve"), T_PASS);
	ASSERT_EQ(ex_bad("serve", serve_neg, 2, "usage: serve"), T_PASS);
	ASSERT_EQ(ex_bad("serve", serve_missing, 1,
	                 "serve: /nonexistent/f: No such file or directory"),
	          T_PASS);
	ASSERT_EQ(
	        ex_bad("join", join_addr, 1, "join: address: Invalid argument"),
	        T_PASS);
	ASSERT_EQ(ex_bad("embed", embed_args, 2, "usage: embed"), T_PASS);
	return T_PASS;
}

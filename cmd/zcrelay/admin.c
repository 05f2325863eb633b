/*
 * admin.c - the admin HTTP endpoint: a strict parser for HTTP/1.x request
 * heads and one thread that serves /metrics, one client at a time.
 *
 * One thread and one client at a time keep this small and keep it away
 * from the workers' loops: a scrape every few seconds needs no more. The
 * price is that a client that connects and stays silent holds the next
 * ones in the backlog for up to ADMIN_READ_MS; that bounds the damage.
 * The thread sleeps only in poll(), always with the wake eventfd in the
 * set, so zcr_admin_stop() interrupts it at any point.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "cfg.h"
#include "metrics.h"

#define ADMIN_READ_MS   2000 /* from accept to a complete request head */
#define ADMIN_WRITE_MS  5000 /* for the client to take the response */
#define ADMIN_LINGER_MS 500  /* after the response, for the client's EOF */
#define ADMIN_PAUSE_MS  100  /* after accept failed for lack of fds */

struct zcr_admin {
	pthread_t th;
	int lfd;    /* the caller's */
	int wakefd; /* eventfd: readable once zcr_admin_stop() was called */
	zcr_admin_render_fn *render;
	void *arg;
};

/* ------------------------------------------------------------------ */
/* Request head parser                                                  */

/* Step results besides -EPROTO. */
#define HP_MORE 0 /* the input ended before the step could finish */
#define HP_OK   1
#define HP_END  2 /* the empty line that ends the head */

/* A cursor over the input. */
struct hp {
	const unsigned char *b;
	size_t n, i;
};

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* CRLF or a bare LF. */
static int hp_eol(struct hp *p)
{
	if (p->i == p->n)
		return HP_MORE;
	if (p->b[p->i] == '\r') {
		if (++p->i == p->n)
			return HP_MORE;
	}
	if (p->b[p->i] != '\n')
		return -EPROTO;
	p->i++;
	return HP_OK;
}

/* Copies the run of bytes accepted by ok into out (cap bytes with the
 * NUL), which must then end at a space, skipped. */
static int hp_word(struct hp *p, int (*ok)(unsigned char), char *out,
                   size_t cap)
{
	size_t len = 0;

	while (p->i < p->n && ok(p->b[p->i])) {
		if (len + 1 == cap)
			return -EPROTO;
		out[len++] = (char)p->b[p->i++];
	}
	if (p->i == p->n)
		return HP_MORE;
	if (len == 0 || p->b[p->i] != ' ')
		return -EPROTO;
	out[len] = '\0';
	p->i++;
	return HP_OK;
}

/* Visible ASCII: what a request target may hold. */
static int is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

static int hp_path(struct hp *p, struct zcr_http_req *req)
{
	if (p->i == p->n)
		return HP_MORE;
	if (p->b[p->i] != '/')
		return -EPROTO;
	return hp_word(p, is_vchar, req->path, sizeof(req->path));
}

static int hp_version(struct hp *p, struct zcr_http_req *req)
{
	static const char v[] = "HTTP/1.";
	size_t k;

	for (k = 0; k < sizeof(v) - 1; k++, p->i++) {
		if (p->i == p->n)
			return HP_MORE;
		if (p->b[p->i] != (unsigned char)v[k])
			return -EPROTO;
	}
	if (p->i == p->n)
		return HP_MORE;
	if (p->b[p->i] != '0' && p->b[p->i] != '1')
		return -EPROTO;
	req->minor = p->b[p->i++] - '0';
	return hp_eol(p);
}

static int hp_request_line(struct hp *p, struct zcr_http_req *req)
{
	int rc;

	rc = hp_word(p, is_tchar, req->method, sizeof(req->method));
	if (rc == HP_OK)
		rc = hp_path(p, req);
	if (rc == HP_OK)
		rc = hp_version(p, req);
	return rc;
}

/* One "name:value" line, or the empty line (HP_END). The value may hold
 * HTAB, SP, visible ASCII and obs-text (bytes >= 0x80). */
static int hp_header(struct hp *p)
{
	size_t start;
	int rc;

	if (p->i == p->n)
		return HP_MORE;
	if (p->b[p->i] == '\r' || p->b[p->i] == '\n') {
		rc = hp_eol(p);
		return rc == HP_OK ? HP_END : rc;
	}
	start = p->i;
	while (p->i < p->n && is_tchar(p->b[p->i]))
		p->i++;
	if (p->i == p->n)
		return HP_MORE;
	if (p->i == start || p->b[p->i] != ':')
		return -EPROTO;
	p->i++;
	while (p->i < p->n && (p->b[p->i] == '\t' ||
	                       (p->b[p->i] >= 0x20 && p->b[p->i] != 0x7f)))
		p->i++;
	return hp_eol(p);
}

int zcr_http_parse(const char *buf, size_t len, struct zcr_http_req *req)
{
	struct hp p = {(const unsigned char *)buf, len, 0};
	int rc;

	/* Nothing past the limit is looked at: a head that has not ended
	 * by then is too long. */
	if (p.n > ZCR_HTTP_MAX)
		p.n = ZCR_HTTP_MAX;
	rc = hp_request_line(&p, req);
	while (rc == HP_OK)
		rc = hp_header(&p);
	if (rc == HP_END)
		return (int)p.i;
	if (rc == HP_MORE && len >= ZCR_HTTP_MAX)
		return -EPROTO;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Waiting                                                              */

/*
 * Waits until fd (-1: none) has events, deadline (ms, zcr_now_ms(); 0:
 * none) passes or the admin is stopped. Returns 0, -ETIMEDOUT,
 * -ECANCELED (stopped) or -errno.
 */
static int admin_wait(struct zcr_admin *a, int fd, short events,
                      uint64_t deadline)
{
	struct pollfd pfd[2] = {{a->wakefd, POLLIN, 0}, {fd, events, 0}};
	uint64_t now;
	int rc, ms;

	for (;;) {
		ms = -1;
		if (deadline) {
			now = zcr_now_ms();
			if (now >= deadline)
				return -ETIMEDOUT;
			ms = (int)(deadline - now);
		}
		rc = poll(pfd, 2, ms);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1)
			return -errno;
		if (pfd[0].revents)
			return -ECANCELED;
		if (pfd[1].revents)
			return 0;
	}
}

/* ------------------------------------------------------------------ */
/* Responses                                                            */

/* Sends the iovecs in full before deadline. Returns 0 or -errno. */
static int admin_send(struct zcr_admin *a, int fd, struct iovec *iov, int niov,
                      uint64_t deadline)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
	ssize_t n;
	int rc;

	while (mh.msg_iovlen > 0) {
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN)
			return -errno;
		if (n == -1) {
			rc = admin_wait(a, fd, POLLOUT, deadline);
			if (rc)
				return rc;
			continue;
		}
		while (mh.msg_iovlen > 0 && (size_t)n >= mh.msg_iov->iov_len) {
			n -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
			mh.msg_iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static const char *status_text(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	default:
		return "Internal Server Error";
	}
}

/* One response with its headers; the body is left out for HEAD. extra
 * is more header lines, each ending in CRLF. */
static int admin_reply(struct zcr_admin *a, int fd, int code, const char *extra,
                       const char *ctype, const char *body, size_t blen,
                       int head)
{
	char hdr[512];
	struct iovec iov[2];
	int n;

	n = snprintf(hdr, sizeof(hdr),
	             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	             "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
	             code, status_text(code), ctype, blen, extra);
	iov[0].iov_base = hdr;
	iov[0].iov_len = (size_t)n;
	iov[1].iov_base = (void *)(uintptr_t)body;
	iov[1].iov_len = blen;
	return admin_send(a, fd, iov, head ? 1 : 2,
	                  zcr_now_ms() + ADMIN_WRITE_MS);
}

/* A short text/plain response (errors). */
static int admin_text(struct zcr_admin *a, int fd, int code, const char *extra,
                      int head)
{
	char body[64];
	int n;

	n = snprintf(body, sizeof(body), "%d %s\n", code, status_text(code));
	return admin_reply(a, fd, code, extra, "text/plain; charset=utf-8",
	                   body, (size_t)n, head);
}

static int admin_metrics(struct zcr_admin *a, int fd, int head)
{
	size_t len = 0;
	char *body;
	int rc;

	body = a->render(a->arg, &len);
	if (!body)
		return admin_text(a, fd, 500, "", head);
	rc = admin_reply(a, fd, 200, "",
	                 "text/plain; version=0.0.4; charset=utf-8", body, len,
	                 head);
	free(body);
	return rc;
}

/* Does the path (without its query) equal want? */
static int path_is(const char *path, const char *want)
{
	size_t n = strcspn(path, "?");

	return n == strlen(want) && memcmp(path, want, n) == 0;
}

static int admin_route(struct zcr_admin *a, int fd,
                       const struct zcr_http_req *req)
{
	static const char page[] =
	        "<html><head><title>zcrelay</title></head><body>"
	        "<h1>zcrelay</h1><p><a href=\"/metrics\">Metrics</a></p>"
	        "</body></html>\n";
	int head = strcmp(req->method, "HEAD") == 0;

	if (!head && strcmp(req->method, "GET") != 0)
		return admin_text(a, fd, 405, "Allow: GET, HEAD\r\n", 0);
	if (path_is(req->path, "/metrics"))
		return admin_metrics(a, fd, head);
	if (path_is(req->path, "/"))
		return admin_reply(a, fd, 200, "", "text/html; charset=utf-8",
		                   page, sizeof(page) - 1, head);
	return admin_text(a, fd, 404, "", head);
}

/* ------------------------------------------------------------------ */
/* Clients                                                              */

/* One read of at most cap bytes, waiting for input until deadline.
 * Returns the count (0: EOF), -ETIMEDOUT, -ECANCELED or -errno. */
static ssize_t admin_recv(struct zcr_admin *a, int fd, char *buf, size_t cap,
                          uint64_t deadline)
{
	ssize_t n;
	int rc;

	for (;;) {
		n = read(fd, buf, cap);
		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		rc = admin_wait(a, fd, POLLIN, deadline);
		if (rc)
			return rc;
	}
}

/* Reads until buf holds a complete head (parsed into req) or ADMIN_READ_MS
 * passed. Returns the head's length, -EPROTO, -ETIMEDOUT, -ECONNRESET
 * (EOF first), -ECANCELED or -errno. */
static int admin_read(struct zcr_admin *a, int fd, char *buf,
                      struct zcr_http_req *req)
{
	uint64_t deadline = zcr_now_ms() + ADMIN_READ_MS;
	size_t len = 0;
	ssize_t n;
	int rc;

	while ((rc = zcr_http_parse(buf, len, req)) == 0) {
		n = admin_recv(a, fd, buf + len, ZCR_HTTP_MAX - len, deadline);
		if (n <= 0)
			return n ? (int)n : -ECONNRESET;
		len += (size_t)n;
	}
	return rc;
}

/*
 * Closing a socket with unread input sends a reset, which can destroy
 * the response before the client read it (a 400 after a garbled
 * request, a 405 after a body). So: send our FIN, then read and drop
 * until the client's EOF, briefly.
 */
static int admin_linger(struct zcr_admin *a, int fd)
{
	uint64_t deadline = zcr_now_ms() + ADMIN_LINGER_MS;
	char buf[1024];
	ssize_t n;

	if (shutdown(fd, SHUT_WR) == -1)
		return -errno;
	do
		n = admin_recv(a, fd, buf, sizeof(buf), deadline);
	while (n > 0);
	return (int)n;
}

/* Serves one client on fd (kept open). Returns -ECANCELED when the admin
 * was stopped meanwhile, else 0 or another -errno (the client is lost,
 * nothing more to do). */
static int admin_serve(struct zcr_admin *a, int fd)
{
	char buf[ZCR_HTTP_MAX];
	struct zcr_http_req req;
	int rc;

	rc = admin_read(a, fd, buf, &req);
	if (rc == -EPROTO)
		rc = admin_text(a, fd, 400, "", 0);
	else if (rc > 0)
		rc = admin_route(a, fd, &req);
	if (rc == 0)
		rc = admin_linger(a, fd);
	return rc;
}

/* Accepts the next client. Returns its fd (non-blocking), -ECANCELED, or
 * another -errno after which the caller just tries again. */
static int admin_accept(struct zcr_admin *a)
{
	int fd, rc;

	rc = admin_wait(a, a->lfd, POLLIN, 0);
	if (rc)
		return rc;
	fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd >= 0)
		return fd;
	rc = -errno;
	/* Out of fds or memory: the listener stays readable, so pause
	 * rather than spin. */
	if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM)
		if (admin_wait(a, -1, 0, zcr_now_ms() + ADMIN_PAUSE_MS) ==
		    -ECANCELED)
			return -ECANCELED;
	return rc;
}

static void *admin_main(void *arg)
{
	struct zcr_admin *a = arg;
	int fd, rc;

	for (;;) {
		fd = admin_accept(a);
		if (fd == -ECANCELED)
			break;
		if (fd < 0)
			continue;
		rc = admin_serve(a, fd);
		close(fd);
		if (rc == -ECANCELED)
			break;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                       */

/* Creates the thread with every signal blocked: they are the main
 * thread's business. Returns 0 or -errno. */
static int admin_thread(struct zcr_admin *a)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&a->th, NULL, admin_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}

int zcr_admin_start(struct zcr_admin **out, int lfd,
                    zcr_admin_render_fn *render, void *arg)
{
	struct zcr_admin *a;
	int fl, rc;

	fl = fcntl(lfd, F_GETFL);
	if (fl == -1 || fcntl(lfd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -errno;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->lfd = lfd;
	a->render = render;
	a->arg = arg;
	a->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->wakefd == -1) {
		rc = -errno;
		goto fail_free;
	}
	rc = admin_thread(a);
	if (rc)
		goto fail_close;
	*out = a;
	return 0;

fail_close:
	close(a->wakefd);
fail_free:
	free(a);
	return rc;
}

void zcr_admin_stop(struct zcr_admin *a)
{
	uint64_t one = 1;

	if (!a)
		return;
	/* Cannot fail short of a bug: the counter is far from overflow. */
	while (write(a->wakefd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
	pthread_join(a->th, NULL);
	close(a->wakefd);
	free(a);
}

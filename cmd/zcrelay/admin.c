/*
 * admin.c - the admin HTTP server: one thread running its own zc_loop,
 * a watcher per listening socket and per client, one timer per client
 * for its deadlines.
 *
 * A client is in one of four states:
 *   READ    - reading a request (head, then body) into its fixed buffer;
 *   HANDLER - the handler has the request; input is not read meanwhile;
 *   WRITE   - sending the response: its head from a malloc'd buffer, its
 *             body from a shared body (struct zcr_abody) that other
 *             clients may be sending at the same time;
 *   LINGER  - after the last response: our FIN is sent, input is read
 *             and dropped until the client's EOF (so that close() sends
 *             no reset that could destroy the response), briefly.
 * Memory per client is its struct (the input buffer is bounded) plus one
 * response; time is bounded by the timer in every state but HANDLER.
 * client_free() is the one teardown path.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "admin.h"

#define ADMIN_LINGER_MS 500 /* after the last response, for the EOF */
#define ADMIN_PAUSE_MS  100 /* after accept failed for lack of fds */
#define ADMIN_IN_MAX    (ZCR_HTTP_MAX + ZCR_ADMIN_BODY_MAX)

enum { C_READ, C_HANDLER, C_WRITE, C_LINGER };

struct alisten {
	struct zcr_admin *a;
	int fd, is_unix;
	struct zc_watch *w;
};

struct aclient {
	struct zcr_admin *a;
	struct aclient *prev, *next;
	int fd, is_unix, loopback, state, keep, started;
	struct zc_watch *w;
	struct zc_timer *t;
	struct zcr_areq *rq;    /* while HANDLER */
	char *out;              /* the response head */
	struct zcr_abody *body; /* and its body (NULL: none) */
	size_t outlen, outoff;  /* of head and body together */
	size_t inlen;
	char in[ADMIN_IN_MAX];
};

struct zcr_admin {
	pthread_t th;
	struct zc_loop *loop;
	struct alisten *ls;
	unsigned nls, nclients, request_ms;
	struct aclient *clients;
	struct zc_timer *pause; /* listeners off after EMFILE */
	char *token;
	zcr_admin_handler_fn *handle;
	void *arg;
};

static void client_on_io(void *arg, unsigned ev);
static void client_read(struct aclient *c);

/* ------------------------------------------------------------------ */
/* Clients                                                              */

static void client_free(struct aclient *c)
{
	struct zcr_admin *a = c->a;

	if (c->rq)
		c->rq->client = NULL; /* the handler still answers, to nobody */
	zc_watch_stop(c->w);
	zc_timer_free(c->t);
	close(c->fd);
	free(c->out);
	zcr_abody_put(c->body);
	if (c->prev)
		c->prev->next = c->next;
	else
		a->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nclients--;
	free(c);
}

static void client_on_timer(void *arg)
{
	client_free(arg);
}

/* Watches c's fd for ev (0: not at all). Returns 0 or -errno. */
static int client_watch(struct aclient *c, unsigned ev)
{
	if (ev == 0) {
		zc_watch_stop(c->w);
		c->w = NULL;
		return 0;
	}
	if (c->w)
		return zc_watch_set(c->w, ev);
	return zc_watch_start(&c->w, c->a->loop, c->fd, ev, client_on_io, c);
}

/* After the last response: FIN, then drop input until EOF. */
static void client_linger(struct aclient *c)
{
	c->state = C_LINGER;
	if (shutdown(c->fd, SHUT_WR) == -1 || client_watch(c, ZC_WATCH_IN) ||
	    zc_timer_arm(c->t, ADMIN_LINGER_MS)) {
		client_free(c);
		return;
	}
}

/* The response is out: the next request, or the end. */
static void client_sent(struct aclient *c)
{
	free(c->out);
	c->out = NULL;
	zcr_abody_put(c->body);
	c->body = NULL;
	if (!c->keep) {
		client_linger(c);
		return;
	}
	c->state = C_READ;
	c->started = 0;
	if (client_watch(c, ZC_WATCH_IN) ||
	    zc_timer_arm(c->t, ZCR_ADMIN_IDLE_MS)) {
		client_free(c);
		return;
	}
	if (c->inlen) /* pipelined: the next request may be here already */
		client_read(c);
}

/* The unsent rest of c's head and body, as iov (2 entries at most). */
static int client_iov(const struct aclient *c, struct iovec *iov)
{
	size_t hlen = c->outlen - (c->body ? c->body->len : 0);
	size_t off = c->outoff;
	int n = 0;

	if (off < hlen) {
		iov[n].iov_base = c->out + off;
		iov[n++].iov_len = hlen - off;
		off = hlen;
	}
	if (off < c->outlen) {
		iov[n].iov_base = c->body->text + (off - hlen);
		iov[n++].iov_len = c->outlen - off;
	}
	return n;
}

static void client_write(struct aclient *c)
{
	struct msghdr mh = {0};
	struct iovec iov[2];
	ssize_t n;

	while (c->outoff < c->outlen) {
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)client_iov(c, iov);
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1) {
			client_free(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	client_sent(c);
}

/* Sends the head hdr (hlen bytes, copied) and b (a reference taken; NULL:
 * no body). */
static void client_respond(struct aclient *c, const char *hdr, size_t hlen,
                           struct zcr_abody *b)
{
	c->out = malloc(hlen ? hlen : 1);
	if (!c->out) {
		client_free(c);
		return;
	}
	memcpy(c->out, hdr, hlen);
	c->body = zcr_abody_ref(b);
	c->outlen = hlen + (b ? b->len : 0);
	c->outoff = 0;
	c->state = C_WRITE;
	if (client_watch(c, ZC_WATCH_OUT) ||
	    zc_timer_arm(c->t, ZCR_ADMIN_WRITE_MS)) {
		client_free(c);
		return;
	}
	client_write(c);
}

const char *zcr_http_status_text(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* A response for c with body b (not taken; NULL: empty); keep decides
 * whether the connection stays open after it. */
static void client_reply(struct aclient *c, int code, const char *ctype,
                         const char *extra, struct zcr_abody *b, int head)
{
	char hdr[1024];
	int n;

	n = snprintf(hdr, sizeof(hdr),
	             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	             "Content-Length: %zu\r\n%s%s\r\n",
	             code, zcr_http_status_text(code), ctype, b ? b->len : 0,
	             extra ? extra : "",
	             c->keep ? "" : "Connection: close\r\n");
	if (n < 0 || (size_t)n >= sizeof(hdr))
		n = 0;
	client_respond(c, hdr, (size_t)n, head ? NULL : b);
}

/* An error without a request: the connection closes after it. */
static void client_error(struct aclient *c, int code)
{
	char body[64];
	struct zcr_abody *b;

	c->keep = 0;
	snprintf(body, sizeof(body), "{\"error\":\"%d %s\"}\n", code,
	         zcr_http_status_text(code));
	b = zcr_abody_new(strdup(body), strlen(body));
	if (!b) {
		client_free(c);
		return;
	}
	client_reply(c, code, "application/json", NULL, b, 0);
	zcr_abody_put(b);
}

struct zcr_abody *zcr_abody_new(char *text, size_t len)
{
	struct zcr_abody *b = text ? malloc(sizeof(*b)) : NULL;

	if (!b) {
		free(text);
		return NULL;
	}
	b->refs = 1;
	b->text = text;
	b->len = len;
	return b;
}

struct zcr_abody *zcr_abody_ref(struct zcr_abody *b)
{
	if (b)
		b->refs++;
	return b;
}

void zcr_abody_put(struct zcr_abody *b)
{
	if (!b || --b->refs)
		return;
	free(b->text);
	free(b);
}

void zcr_admin_reply_body(struct zcr_areq *rq, int code, const char *ctype,
                          const char *extra, struct zcr_abody *b)
{
	struct aclient *c = rq->client;

	free(rq->body);
	if (c) {
		c->rq = NULL;
		client_reply(c, code, ctype, extra, b, rq->head);
	}
	free(rq);
}

void zcr_admin_reply(struct zcr_areq *rq, int code, const char *ctype,
                     const char *extra, char *body, size_t len)
{
	struct zcr_abody *b = body ? zcr_abody_new(body, len) : NULL;

	if (body && !b) { /* no memory: the client goes, unanswered */
		if (rq->client)
			client_free(rq->client);
		free(rq->body);
		free(rq);
		return;
	}
	zcr_admin_reply_body(rq, code, ctype, extra, b);
	zcr_abody_put(b);
}

void zcr_admin_reply_text(struct zcr_areq *rq, int code, const char *ctype,
                          const char *extra, const char *text)
{
	zcr_admin_reply(rq, code, ctype, extra, strdup(text), strlen(text));
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static int is_read_only(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Compares without an early exit: the time says nothing of the token. */
static int token_ok(const char *want, const char *got)
{
	size_t n = strlen(want), m = strlen(got), i;
	unsigned char d = n != m;

	for (i = 0; i < n; i++)
		d |= (unsigned char)(want[i] ^ got[i < m ? i : 0]);
	return d == 0 && m != 0;
}

/* May this request change state? See zcr_admin_start(). */
static int may_change(const struct aclient *c, const struct zcr_http_req *h)
{
	if (c->is_unix)
		return 1;
	if (c->a->token)
		return token_ok(c->a->token, h->bearer);
	return c->loopback;
}

/* Hands the request of hl head and blen body bytes to the handler. */
static void client_dispatch(struct aclient *c, const struct zcr_http_req *h,
                            size_t hl, size_t blen)
{
	struct zcr_areq *rq = calloc(1, sizeof(*rq));

	if (rq)
		rq->body = malloc(blen + 1);
	if (!rq || !rq->body) {
		free(rq);
		client_free(c);
		return;
	}
	memcpy(rq->body, c->in + hl, blen);
	rq->body[blen] = '\0';
	rq->blen = blen;
	rq->http = *h;
	rq->is_unix = c->is_unix;
	rq->a = c->a;
	rq->client = c;
	rq->head = strcmp(h->method, "HEAD") == 0;
	c->inlen -= hl + blen;
	memmove(c->in, c->in + hl + blen, c->inlen);
	c->keep = zcr_http_keep_alive(h);
	c->rq = rq;
	c->state = C_HANDLER;
	zc_timer_disarm(c->t);
	client_watch(c, 0);
	if (!is_read_only(h->method) && !may_change(c, h)) {
		zcr_admin_reply_text(rq, 403, "application/json", NULL,
		                     "{\"error\":\"changes are accepted on the "
		                     "Unix socket, from loopback, or with the "
		                     "admin token\"}\n");
		return;
	}
	c->a->handle(c->a->arg, rq);
}

/* Is a whole request in the buffer? Dispatches it, or answers an
 * error; does nothing while it is incomplete. */
static void client_parse(struct aclient *c)
{
	struct zcr_http_req h;
	int hl = zcr_http_parse(c->in, c->inlen, &h);

	if (hl == 0)
		return;
	if (hl < 0) {
		client_error(c, 400);
		return;
	}
	if (h.clen > ZCR_ADMIN_BODY_MAX) {
		client_error(c, 413);
		return;
	}
	if (h.clen > 0 && c->inlen < (size_t)hl + (size_t)h.clen)
		return;
	client_dispatch(c, &h, (size_t)hl, h.clen > 0 ? (size_t)h.clen : 0);
}

static void client_read(struct aclient *c)
{
	ssize_t n = 0;

	if (c->inlen < sizeof(c->in))
		n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		n = 0;
	else if (n <= 0 && c->inlen < sizeof(c->in)) {
		client_free(c); /* EOF or an error: nobody to answer */
		return;
	}
	c->inlen += (size_t)n;
	if (c->inlen && !c->started) {
		c->started = 1;
		if (zc_timer_arm(c->t, c->a->request_ms)) {
			client_free(c);
			return;
		}
	}
	if (c->inlen)
		client_parse(c);
}

static void client_drop_input(struct aclient *c)
{
	char buf[1024];
	ssize_t n = read(c->fd, buf, sizeof(buf));

	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		client_free(c);
}

static void client_on_io(void *arg, unsigned ev)
{
	struct aclient *c = arg;

	switch (c->state) {
	case C_READ:
		client_read(c);
		break;
	case C_WRITE:
		client_write(c);
		break;
	case C_LINGER:
		client_drop_input(c);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Accepting                                                            */

static int is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	const uint8_t *b = s6->sin6_addr.s6_addr;

	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)
		                      ->sin_addr.s_addr) >>
		        24) == 127;
	if (ss->ss_family != AF_INET6)
		return 0;
	if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
		return 1;
	return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && b[12] == 127;
}

static void client_new(struct alisten *l, int fd,
                       const struct sockaddr_storage *ss)
{
	struct zcr_admin *a = l->a;
	struct aclient *c;

	if (a->nclients >= ZCR_ADMIN_MAX_CLIENT || !(c = malloc(sizeof(*c)))) {
		close(fd);
		return;
	}
	memset(c, 0, offsetof(struct aclient, in));
	c->a = a;
	c->fd = fd;
	c->is_unix = l->is_unix;
	c->loopback = is_loopback(ss);
	c->next = a->clients;
	if (a->clients)
		a->clients->prev = c;
	a->clients = c;
	a->nclients++;
	c->keep = 1;
	if (zc_timer_new(&c->t, a->loop, client_on_timer, c) ||
	    zc_timer_arm(c->t, ZCR_ADMIN_IDLE_MS) ||
	    client_watch(c, ZC_WATCH_IN))
		client_free(c);
}

static void listeners_off(struct zcr_admin *a)
{
	unsigned i;

	for (i = 0; i < a->nls; i++) {
		zc_watch_stop(a->ls[i].w);
		a->ls[i].w = NULL;
	}
}

static void listen_on_io(void *arg, unsigned ev);

static void listeners_resume(void *arg)
{
	struct zcr_admin *a = arg;
	unsigned i;

	for (i = 0; i < a->nls; i++)
		if (!a->ls[i].w)
			zc_watch_start(&a->ls[i].w, a->loop, a->ls[i].fd,
			               ZC_WATCH_IN, listen_on_io, &a->ls[i]);
}

static void listen_on_io(void *arg, unsigned ev)
{
	struct alisten *l = arg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, k;

	for (k = 0; k < 16; k++) {
		sl = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
		             SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			client_new(l, fd, &ss);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* The listener stays readable: pause, not spin. */
			listeners_off(l->a);
			zc_timer_arm(l->a->pause, ADMIN_PAUSE_MS);
		}
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                       */

static void admin_free(struct zcr_admin *a)
{
	while (a->clients)
		client_free(a->clients);
	listeners_off(a);
	zc_timer_free(a->pause);
	if (a->loop)
		zc_loop_free(a->loop);
	free(a->ls);
	free(a->token);
	free(a);
}

static void *admin_main(void *arg)
{
	struct zcr_admin *a = arg;

	zc_loop_run(a->loop);
	while (a->clients)
		client_free(a->clients);
	listeners_off(a);
	zc_timer_free(a->pause);
	a->pause = NULL;
	zc_loop_free(a->loop);
	a->loop = NULL;
	return NULL;
}

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

/* The listeners of o: non-blocking, Unix or not, watched. */
static int admin_listen(struct zcr_admin *a, const struct zcr_admin_opts *o)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned i;
	int fl;

	a->ls = calloc(o->nfds ? o->nfds : 1, sizeof(*a->ls));
	if (!a->ls)
		return -ENOMEM;
	a->nls = o->nfds;
	for (i = 0; i < o->nfds; i++) {
		sl = sizeof(ss);
		fl = fcntl(o->fds[i], F_GETFL);
		if (fl == -1 || fcntl(o->fds[i], F_SETFL, fl | O_NONBLOCK) ||
		    getsockname(o->fds[i], (struct sockaddr *)&ss, &sl))
			return -errno;
		a->ls[i] = (struct alisten){a, o->fds[i],
		                            ss.ss_family == AF_UNIX, NULL};
	}
	listeners_resume(a);
	for (i = 0; i < a->nls; i++)
		if (!a->ls[i].w)
			return -ENOMEM;
	return 0;
}

static int admin_init(struct zcr_admin *a, const struct zcr_admin_opts *o)
{
	struct zc_loop_opts lo;
	int rc;

	a->handle = o->handle;
	a->arg = o->arg;
	a->request_ms = o->request_ms ? o->request_ms : ZCR_ADMIN_REQUEST_MS;
	if (o->token && !(a->token = strdup(o->token)))
		return -ENOMEM;
	zc_loop_opts_init(&lo);
	lo.engine = ZC_ENGINE_EPOLL;
	rc = zc_loop_new(&a->loop, &lo);
	if (rc == 0)
		rc = zc_timer_new(&a->pause, a->loop, listeners_resume, a);
	if (rc == 0)
		rc = admin_listen(a, o);
	return rc;
}

int zcr_admin_start(struct zcr_admin **out, const struct zcr_admin_opts *o)
{
	struct zcr_admin *a;
	int rc;

	if (!o || !o->handle || (o->nfds && !o->fds))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	rc = admin_init(a, o);
	if (rc == 0)
		rc = admin_thread(a);
	if (rc) {
		admin_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

static void admin_on_stop(struct zc_loop *loop, void *arg)
{
	zc_loop_stop(loop);
}

struct zc_loop *zcr_admin_loop(struct zcr_admin *a)
{
	return a->loop;
}

int zcr_admin_post(struct zcr_admin *a, zc_post_fn *fn, void *arg)
{
	return zc_loop_post(a->loop, fn, arg);
}

void zcr_admin_stop(struct zcr_admin *a)
{
	if (!a)
		return;
	/* Retried: a post fails only for lack of memory, and the thread
	 * must stop before the loop is freed. */
	while (zc_loop_post(a->loop, admin_on_stop, NULL))
		usleep(1000);
	pthread_join(a->th, NULL);
	admin_free(a);
}

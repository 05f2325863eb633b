/*
 * admin.h - the admin HTTP server (admin.c): many clients at once on its
 * own thread and zc_loop, HTTP/1.1 keep-alive, bounded memory and time
 * per client, and the policy for requests that change state. What the
 * requests mean is the handler's business (api.c).
 */
#ifndef ZCRELAY_ADMIN_H
#define ZCRELAY_ADMIN_H

#include <stddef.h>

#include "http.h"
#include "zcrelay.h"

#define ZCR_ADMIN_BODY_MAX   16384 /* longest request body accepted */
#define ZCR_ADMIN_MAX_CLIENT 256   /* connections at once; more: closed */
#define ZCR_ADMIN_IDLE_MS    30000 /* keep-alive: until a request starts */
#define ZCR_ADMIN_REQUEST_MS 5000  /* a request's first byte to its last */
#define ZCR_ADMIN_WRITE_MS   10000 /* for the client to take a response */

struct zcr_admin;

/* One request, handed to the handler on the admin thread. The handler
 * answers it with zcr_admin_reply(), at once or later. */
struct zcr_areq {
	struct zcr_http_req http;
	char *body; /* the request body, NUL-terminated; "" if none */
	size_t blen;
	int is_unix; /* came in on a Unix admin socket */
	/* private */
	struct zcr_admin *a;
	void *client; /* NULL once the client went away */
	int head;
};

/* Called on the admin thread for each request that passed the policy. */
typedef void zcr_admin_handler_fn(void *arg, struct zcr_areq *rq);

/* What zcr_admin_start() serves. */
struct zcr_admin_opts {
	const int *fds; /* listening stream sockets, the caller's */
	unsigned nfds;
	const char *token; /* admin-token; NULL: none (copied) */
	zcr_admin_handler_fn *handle;
	void *arg;
	unsigned request_ms; /* 0: ZCR_ADMIN_REQUEST_MS */
};

/*
 * zcr_admin_start - serve HTTP/1.x on the listening sockets of o from a
 * new thread that runs its own zc_loop (epoll) with every signal blocked.
 *
 * Each client may send requests one after the other on one connection
 * (keep-alive, pipelining: the next is read once the previous one was
 * answered). A request's head is at most ZCR_HTTP_MAX bytes, its body
 * ZCR_ADMIN_BODY_MAX (413 otherwise); it must arrive whole within
 * request_ms of its first byte, a connection may idle ZCR_ADMIN_IDLE_MS
 * between requests, and a response must be taken within
 * ZCR_ADMIN_WRITE_MS: otherwise the connection is closed. Malformed heads
 * get 400 and the connection closes. At most ZCR_ADMIN_MAX_CLIENT
 * connections are open; further ones are closed at once.
 *
 * Requests other than GET and HEAD change state: they pass only on a Unix
 * socket, or with "Authorization: Bearer TOKEN" when o->token is set, or,
 * without a token, from a loopback TCP peer (127.0.0.0/8, ::1,
 * ::ffff:127.0.0.0/104); others get 403 without reaching the handler.
 *
 * The fds stay the caller's (closed after zcr_admin_stop()); they are made
 * non-blocking. Returns 0 and the handle in *out, or -EINVAL, -ENOMEM,
 * -EMFILE, -EAGAIN with nothing started.
 */
int zcr_admin_start(struct zcr_admin **out, const struct zcr_admin_opts *o);

/*
 * zcr_admin_stop - close every client (requests not answered yet are
 * dropped when answered), stop the thread and free a. Not from the admin
 * thread. NULL is a no-op.
 */
void zcr_admin_stop(struct zcr_admin *a);

/* The admin thread's loop, for timers of its handlers (admin thread
 * only). */
struct zc_loop *zcr_admin_loop(struct zcr_admin *a);

/*
 * zcr_admin_post - run fn(loop, arg) on the admin thread (zc_loop_post).
 * Any thread, while a runs. Returns 0 or -ENOMEM.
 */
int zcr_admin_post(struct zcr_admin *a, zc_post_fn *fn, void *arg);

/*
 * zcr_admin_reply - answer rq with status code and body (len bytes; the
 * function takes it: malloc'd or NULL), Content-Type ctype, extra header
 * lines (each ending in CRLF; NULL: none). HEAD requests get the headers
 * only. Frees rq. Admin thread only; exactly once per request.
 */
void zcr_admin_reply(struct zcr_areq *rq, int code, const char *ctype,
                     const char *extra, char *body, size_t len);

/*
 * A response body that many replies may send at once without a copy (a
 * listing several pollers asked for): reference-counted, admin thread
 * only, read-only once made.
 */
struct zcr_abody {
	unsigned refs;
	size_t len;
	char *text;
};

/* zcr_abody_new - a body of text (malloc'd, len bytes; taken) with one
 * reference, the caller's. NULL (text freed) without memory or text. */
struct zcr_abody *zcr_abody_new(char *text, size_t len);
/* Another reference to b (NULL: none); returns b. */
struct zcr_abody *zcr_abody_ref(struct zcr_abody *b);
/* Drops a reference; the last one frees b. NULL is a no-op. */
void zcr_abody_put(struct zcr_abody *b);

/*
 * zcr_admin_reply_body - zcr_admin_reply() with body b (NULL: none),
 * which the reply references while it is sent: the caller keeps its own
 * reference. Frees rq. Admin thread only; exactly once per request.
 */
void zcr_admin_reply_body(struct zcr_areq *rq, int code, const char *ctype,
                          const char *extra, struct zcr_abody *b);

/* zcr_admin_reply with a copy of the NUL-terminated text. */
void zcr_admin_reply_text(struct zcr_areq *rq, int code, const char *ctype,
                          const char *extra, const char *text);

/* The reason phrase of an HTTP status code ("Not Found"). */
const char *zcr_http_status_text(int code);

#endif

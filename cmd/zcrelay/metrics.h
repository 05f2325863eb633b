/*
 * metrics.h - the daemon's Prometheus metrics (metrics.c) and the admin
 * HTTP endpoint that serves them (admin.c).
 */
#ifndef ZCRELAY_METRICS_H
#define ZCRELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "zcrelay.h"

struct zcr_cfg;

/* ------------------------------------------------------------------ */
/* Rendering (metrics.c)                                                */

/* One worker's numbers, gathered by the caller before rendering. */
struct zcr_wstats {
	int id;                    /* the label worker="<id>" */
	struct zc_loop_stats loop; /* zc_loop_get_stats() of its loop */
	uint64_t sessions;         /* sessions connecting or relaying */
};

/*
 * zcr_metrics_render - the metrics of configuration c and of the nw
 * workers in w, in the Prometheus text exposition format 0.0.4.
 *
 * Counters are read from the routes' and upstreams' struct zcr_stats with
 * relaxed atomic loads, so any thread may call this while workers update
 * them; c must stay referenced for the call. now_ms (CLOCK_MONOTONIC, see
 * zcr_now_ms()) decides zcrelay_upstream_healthy. w may be NULL when nw is
 * 0. Returns a malloc'd, NUL-terminated text that the caller frees, and
 * stores its length (without the NUL) in *len; NULL when out of memory.
 */
char *zcr_metrics_render(const struct zcr_cfg *c, const struct zcr_wstats *w,
                         unsigned nw, uint64_t now_ms, size_t *len);

/* ------------------------------------------------------------------ */
/* HTTP/1.x request head (admin.c)                                      */

#define ZCR_HTTP_MAX        8192 /* longest request head accepted */
#define ZCR_HTTP_METHOD_MAX 16   /* with the NUL */
#define ZCR_HTTP_PATH_MAX   1024 /* with the NUL */

/* A parsed request line. */
struct zcr_http_req {
	char method[ZCR_HTTP_METHOD_MAX]; /* "GET", ... */
	char path[ZCR_HTTP_PATH_MAX];     /* starts with '/', query included */
	int minor;                        /* HTTP/1.<minor>: 0 or 1 */
};

/*
 * zcr_http_parse - parse the head of an HTTP/1.0 or 1.1 request: the
 * request line "METHOD SP PATH SP HTTP/1.x", then header lines, up to the
 * empty line. Lines end with CRLF or a bare LF.
 *
 * Strict: METHOD is 1-15 token characters, PATH starts with '/' and has
 * 1-1023 visible ASCII characters, header lines are "name:value" with a
 * token name and no control character but HTAB in the value; no line
 * folding, no empty lines before the request line.
 *
 * Returns the length of the head (through its empty line) and fills *req;
 * 0 when buf is a valid beginning of a head but incomplete (only while
 * len < ZCR_HTTP_MAX); -EPROTO when it is malformed or the head would be
 * longer than ZCR_HTTP_MAX. *req is undefined unless the result is > 0.
 * Pure function: borrows buf, any thread.
 */
int zcr_http_parse(const char *buf, size_t len, struct zcr_http_req *req);

/* ------------------------------------------------------------------ */
/* Admin endpoint (admin.c)                                             */

struct zcr_admin;

/*
 * Produces the body of GET /metrics: a malloc'd text that the admin
 * thread frees, its length in *len; NULL for a 500 response. Called on
 * the admin thread.
 */
typedef char *zcr_admin_render_fn(void *arg, size_t *len);

/*
 * zcr_admin_start - serve HTTP on the listening stream socket lfd from a
 * new thread: GET or HEAD /metrics (the body of render(arg, ...)), GET or
 * HEAD / (a short page linking to /metrics); 404 for other paths, 405 for
 * other methods, 400 for malformed requests, 500 when render fails. Every
 * response closes the connection.
 *
 * Clients are served one at a time: a request must arrive complete within
 * 2 s of the accept, and the response must be taken within 5 s, or the
 * connection is closed; after the response, unread input is drained for
 * up to 0.5 s (so that close() sends no reset). Others wait in lfd's
 * backlog meanwhile.
 *
 * lfd stays owned by the caller, who closes it only after
 * zcr_admin_stop(); it is switched to O_NONBLOCK. The thread runs with
 * all signals blocked. On success stores the handle in *out and returns
 * 0; otherwise -EBADF (lfd), -ENOMEM, -EMFILE, -EAGAIN (thread), with
 * nothing started.
 */
int zcr_admin_start(struct zcr_admin **out, int lfd,
                    zcr_admin_render_fn *render, void *arg);

/*
 * zcr_admin_stop - wake the admin thread, drop the client it serves (if
 * any), join the thread and free a. lfd is left open. From the thread
 * that called zcr_admin_start() (or any other but the admin thread).
 * NULL is a no-op.
 */
void zcr_admin_stop(struct zcr_admin *a);

#endif

/*
 * api.h - the admin API (api.c, api_sessions.c): what each request of the
 * admin server (admin.c) means, and the process state it reports.
 */
#ifndef ZCRELAY_API_H
#define ZCRELAY_API_H

#include "admin.h"
#include "daemon.h"
#include "json.h"

/* The handler for zcr_admin_start(); arg is unused. Admin thread. */
void zcr_api_handle(void *arg, struct zcr_areq *rq);

/* Main thread, before the admin server starts: the workers the API
 * reads and acts on. */
void zcr_api_init(struct zcr_worker *ws, unsigned nw);

/* Main thread: SIGTERM was seen, /healthz says 503 from now on. */
void zcr_api_set_draining(void);

/* Main thread: a reload attempt starts (it reads the file from now). */
void zcr_api_reload_start(void);

/*
 * zcr_api_reloaded - main thread, after every reload attempt (SIGHUP or
 * POST /reload) that zcr_api_reload_start() began: ok 1 or 0, msgs the "FILE:LINE: message" lines of a
 * failure (one per line; NULL: none). Answers the POST /reload requests
 * waiting for it.
 */
void zcr_api_reloaded(int ok, const char *msgs);

/* Main thread: an upgrade attempt (SIGUSR2 or POST /upgrade) starts. */
void zcr_api_upgrade_start(void);

/* zcr_api_upgraded - main thread, after every upgrade attempt begun by
 * zcr_api_upgrade_start(): pid the new process that took over, or 0 and
 * why. Answers the POST /upgrade requests waiting for it (200 {"ok":
 * true, "pid": N}, or 500 {"ok": false, "error": why}). */
void zcr_api_upgraded(int pid, const char *why);

/* Sessions (api_sessions.c), admin thread. */
/* GET /sessions with its filters. */
void zcr_api_sessions_get(struct zcr_areq *rq);
/* DELETE /sessions/ID or DELETE /sessions?FILTERS. */
void zcr_api_sessions_delete(struct zcr_areq *rq, const char *id);

/* Helpers shared by api*.c, admin thread. */
/* Replies with the JSON document j (taken) and status code. */
void zcr_api_json(struct zcr_areq *rq, int code, struct zcr_json *j);
/* Replies {"error": msg} with status code. */
void zcr_api_error(struct zcr_areq *rq, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* The workers given to zcr_api_init. */
struct zcr_worker *zcr_api_workers(unsigned *nw);

#endif

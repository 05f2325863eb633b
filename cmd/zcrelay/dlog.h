/*
 * dlog.h - the daemon's log sink: destination (stderr or a file),
 * format (text or JSON lines), reopen for log rotation, session lines.
 *
 * zcr_log(), zcr_log_set_level() and zcr_log_lib() are declared in
 * daemon.h and write through this sink. Every line is built in a 4 KiB
 * buffer and written with one write(2): lines from different threads
 * never interleave (a longer message is cut at a character boundary,
 * never inside an escape sequence, and the line stays well formed).
 *
 * Text line:  2026-11-29T16:00:00.123Z info MESSAGE
 * JSON line:  {"ts":"2026-11-29T16:00:00.123Z","level":"info","msg":"..."}
 * In text lines control characters print as \xNN, so one call is
 * always one line; in the key=value fields of session lines so do space,
 * '=' and backslash, so a value cannot add fields. JSON strings are escaped per RFC 8259 and bytes that
 * are not valid UTF-8 become U+FFFD.
 */
#ifndef ZCRELAY_DLOG_H
#define ZCRELAY_DLOG_H

#include <stdint.h>

#define ZCR_LOG_LINE_MAX 4096 /* bytes per line, newline included */

/*
 * zcr_log_open - send the log to the file path (opened O_APPEND|O_CREAT,
 * mode 0640) or, with path NULL, to stderr, in format (enum
 * zcr_log_format: ZCR_LOGF_TEXT or ZCR_LOGF_JSON). Returns 0, -EINVAL
 * (unknown format), -ENOMEM, or open(2)'s -errno; on failure the log
 * goes on where it went. May be called again (a reload): the switch is
 * atomic for threads logging at the same time. Not async-signal-safe.
 */
int zcr_log_open(const char *path, int format);

/*
 * zcr_log_reopen - open the log file's path again and write there from
 * now on (SIGUSR1 after logrotate renamed the file). The new file takes
 * the old descriptor's number (dup3), so threads logging meanwhile write
 * whole lines to either file. Returns 0 (also when logging to stderr:
 * nothing to do) or -errno, in which case the log stays on the old file.
 * Call from the main thread, not from a signal handler.
 */
int zcr_log_reopen(void);

/*
 * zcr_log_close - log to stderr in text format again and close the log
 * file. Only when no other thread can log (shutdown, tests).
 */
void zcr_log_close(void);

/*
 * zcr_utf8_len - the length of the valid UTF-8 sequence at p (2 to 4),
 * or 0 when p starts none: a stray continuation byte, an overlong form,
 * a UTF-16 surrogate, a code point above U+10FFFF or a sequence cut by
 * the NUL. Pure.
 */
size_t zcr_utf8_len(const unsigned char *p);

/*
 * zcr_log_field - v made fit to be the value of a key=value field in a
 * zcr_log() message, into buf (size > 0 bytes; cut at a character
 * boundary): in text format escaped as the fields of session lines are
 * (space, '=', backslash, control characters and invalid UTF-8 as \xNN),
 * in JSON copied as is (the whole message is escaped). For values a
 * client chooses, such as an address from a PROXY header. Returns buf.
 */
const char *zcr_log_field(const char *v, char *buf, size_t size);

/* The current format (enum zcr_log_format). Any thread. */
int zcr_log_format(void);

/*
 * One finished session. Strings may be NULL (printed as "-", error and
 * fallback: omitted, like ""). Borrowed for the duration of the call.
 */
struct zcr_sess_log {
	int worker;
	const char *route, *client, *upstream;
	uint64_t up, down, spliced, copied; /* bytes */
	double secs;                        /* duration */
	const char *end;                    /* zc_end_name(): "eof", ... */
	const char *error;                  /* "ECONNRESET"; "" or NULL: none */
	const char *engine, *mover;
	const char *fallback; /* splice fallback reason; "" or NULL: none */
	/* Content routing: what the client sent first ("tls", "ssh",
	 * "http", "unknown", "timeout"), its server name and ALPN list
	 * ("h2,http/1.1"); NULL: the listener does not peek (omitted). */
	const char *protocol, *sni, *alpn;
};

/*
 * zcr_log_session - log s at info level. Text:
 *   session worker=0 route=web client=1.2.3.4:5 upstream=10.0.0.1:80
 *   up=1 down=2 spliced=3 copied=0 duration=0.123s end=eof
 *   [error=ECONNRESET] engine=uring mover=auto [fallback=EINVAL]
 *   [protocol=tls sni=a.example.com alpn=h2,http/1.1]
 * JSON: {"ts":..,"level":"info","msg":"session","worker":0,"route":"web",
 *   "client":..,"upstream":..,"up":1,"down":2,"spliced":3,"copied":0,
 *   "duration":0.123,"end":"eof"[,"error":".."],"engine":"uring",
 *   "mover":"auto"[,"fallback":".."][,"protocol":"tls","sni":..,
 *   "alpn":..]}
 * Any thread.
 */
void zcr_log_session(const struct zcr_sess_log *s);

#endif

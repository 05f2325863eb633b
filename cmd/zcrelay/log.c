/*
 * log.c - the daemon's log sink: stderr or a file, text or JSON lines,
 * one write(2) per line, reopened in place for log rotation.
 *
 * Writers only load log_fd and log_fmt (atomics) and never lock. The
 * file descriptor number stays the same once a file was opened: a new
 * file is dup3()'ed onto it, so a thread that loaded the number just
 * before a reopen writes its whole line to the old file or the new one,
 * never to a closed or reused descriptor. log_mu orders open, reopen
 * and close among themselves.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "dlog.h"

#define MSG_MAX   ZCR_LOG_LINE_MAX /* formatted message, before escaping */
#define FIELD_MAX 256              /* escaped bytes of one session field */

static int log_level = ZC_LOG_INFO;
static int log_fmt = ZCR_LOGF_TEXT;
static int log_fd = -1; /* our file's descriptor; -1: stderr */
static char *log_path;  /* NULL: stderr; guarded by log_mu */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

/* A line being built. The appenders never overflow it and always leave
 * the last byte for the newline. */
struct line {
	size_t len;
	char buf[ZCR_LOG_LINE_MAX];
};

void zcr_log_set_level(int level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int zcr_log_format(void)
{
	return __atomic_load_n(&log_fmt, __ATOMIC_RELAXED);
}

static const char *level_name(int level)
{
	switch (level) {
	case ZC_LOG_ERR:
		return "error";
	case ZC_LOG_WARN:
		return "warn";
	case ZC_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/* ------------------------------------------------------------------ */
/* Building a line                                                      */

static size_t line_room(const struct line *l)
{
	return sizeof(l->buf) - 1 - l->len;
}

static void line_put(struct line *l, const char *s, size_t n)
{
	if (n > line_room(l))
		n = line_room(l);
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

__attribute__((format(printf, 2, 3))) static void
line_printf(struct line *l, const char *fmt, ...)
{
	size_t room = line_room(l);
	va_list ap;
	int n;

	va_start(ap, fmt);
	/* May write its NUL into the byte kept for the newline. */
	n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len += (size_t)n < room ? (size_t)n : room;
}

size_t zcr_utf8_len(const unsigned char *p)
{
	unsigned cp;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	cp = p[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* How a string is escaped: free text, a JSON string, or the value of
 * a text key=value field. */
enum esc { ESC_TEXT, ESC_JSON, ESC_FIELD };

/*
 * The escaped form of the character at p into out (8 bytes); *adv gets
 * how many input bytes it stands for. JSON: quote and backslash escaped,
 * control characters as \u00XX, invalid UTF-8 as U+FFFD. Text: control
 * characters and invalid UTF-8 as \xNN; in a field value also space, '='
 * and backslash, so that a value (a client's address from a PROXY
 * header) can never add fields of its own. Returns the output length.
 */
static size_t esc_one(const unsigned char *p, int mode, char *out, size_t *adv)
{
	static const char hex[] = "0123456789abcdef";
	int json = mode == ESC_JSON;
	size_t n;

	*adv = 1;
	if (*p >= 0x80 && (n = zcr_utf8_len(p))) {
		memcpy(out, p, n);
		*adv = n;
		return n;
	}
	if (*p >= 0x80 && json) {
		memcpy(out, "\\ufffd", 6);
		return 6;
	}
	if (json && (*p == '"' || *p == '\\')) {
		out[0] = '\\';
		out[1] = (char)*p;
		return 2;
	}
	if (*p > 0x20 && *p < 0x7f &&
	    !(mode == ESC_FIELD && (*p == '=' || *p == '\\'))) {
		out[0] = (char)*p;
		return 1;
	}
	if (*p == ' ' && mode != ESC_FIELD) {
		out[0] = ' ';
		return 1;
	}
	memcpy(out, json ? "\\u00" : "\\x", json ? 4 : 2);
	n = json ? 4 : 2;
	out[n] = hex[*p >> 4];
	out[n + 1] = hex[*p & 0xf];
	return n + 2;
}

/* Appends s escaped as mode says, at most max bytes of output: a string
 * that does not fit is cut before the first character that would not
 * fit whole. */
static void line_str(struct line *l, const char *s, size_t max, int mode)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, adv, used = 0;
	char out[8];

	if (max > line_room(l))
		max = line_room(l);
	while (*p) {
		n = esc_one(p, mode, out, &adv);
		if (used + n > max)
			break;
		line_put(l, out, n);
		used += n;
		p += adv;
	}
}

const char *zcr_log_field(const char *v, char *buf, size_t size)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t n, adv, used = 0;
	char out[8];

	if (zcr_log_format() == ZCR_LOGF_JSON) {
		snprintf(buf, size, "%s", v);
		return buf;
	}
	for (; *p; p += adv) {
		n = esc_one(p, ESC_FIELD, out, &adv);
		if (used + n + 1 > size)
			break;
		memcpy(buf + used, out, n);
		used += n;
	}
	buf[used] = '\0';
	return buf;
}

static void log_timestamp(char *buf, size_t size)
{
	struct timespec now;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03ldZ", now.tv_nsec / 1000000);
}

/* Starts a line: the timestamp and level, in the current format. */
static void line_start(struct line *l, int json, int level)
{
	char ts[48];

	l->len = 0;
	log_timestamp(ts, sizeof(ts));
	if (json)
		line_printf(l, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
		            level_name(level));
	else
		line_printf(l, "%s %s ", ts, level_name(level));
}

/* Ends the line and writes it with one write(2). Log lines have nowhere
 * to report their own failure: a failed write is dropped. */
static void line_write(struct line *l)
{
	int fd = __atomic_load_n(&log_fd, __ATOMIC_ACQUIRE);

	l->buf[l->len++] = '\n';
	while (write(fd < 0 ? 2 : fd, l->buf, l->len) == -1 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* Log lines                                                            */

void zcr_log(int level, const char *fmt, ...)
{
	char msg[MSG_MAX];
	struct line l;
	va_list ap;
	int json;

	if (level > __atomic_load_n(&log_level, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json = zcr_log_format() == ZCR_LOGF_JSON;
	line_start(&l, json, level);
	if (json) {
		line_put(&l, ",\"msg\":\"", 8);
		/* Room for the closing quote and brace, always. */
		line_str(&l, msg, line_room(&l) - 2, ESC_JSON);
		line_put(&l, "\"}", 2);
	} else {
		line_str(&l, msg, line_room(&l), ESC_TEXT);
	}
	line_write(&l);
}

void zcr_log_lib(void *arg, int level, const char *msg)
{
	const struct zcr_worker *w = arg;

	if (w)
		zcr_log(level, "worker=%d %s", w->id, msg);
	else
		zcr_log(level, "%s", msg);
}

/* ` key=` or `,"key":` */
static void kv_key(struct line *l, int json, const char *key)
{
	line_printf(l, json ? ",\"%s\":" : " %s=", key);
}

static void kv_str(struct line *l, int json, const char *key, const char *v)
{
	kv_key(l, json, key);
	if (json)
		line_put(l, "\"", 1);
	line_str(l, v ? v : "-", FIELD_MAX, json ? ESC_JSON : ESC_FIELD);
	if (json)
		line_put(l, "\"", 1);
}

static void kv_u64(struct line *l, int json, const char *key, uint64_t v)
{
	kv_key(l, json, key);
	line_printf(l, "%llu", (unsigned long long)v);
}

static int is_set(const char *s)
{
	return s && *s;
}

/* The session's fields. Bounded (FIELD_MAX per string), so the closing
 * brace of a JSON line always fits. */
static void session_fields(struct line *l, int json,
                           const struct zcr_sess_log *s)
{
	double secs = isfinite(s->secs) && s->secs > 0 ? s->secs : 0;

	kv_key(l, json, "worker");
	line_printf(l, "%d", s->worker);
	kv_str(l, json, "route", s->route);
	kv_str(l, json, "client", s->client);
	kv_str(l, json, "upstream", s->upstream);
	kv_u64(l, json, "up", s->up);
	kv_u64(l, json, "down", s->down);
	kv_u64(l, json, "spliced", s->spliced);
	kv_u64(l, json, "copied", s->copied);
	kv_key(l, json, "duration");
	line_printf(l, json ? "%.3f" : "%.3fs", secs);
	kv_str(l, json, "end", s->end);
	if (is_set(s->error))
		kv_str(l, json, "error", s->error);
	kv_str(l, json, "engine", s->engine);
	kv_str(l, json, "mover", s->mover);
	if (is_set(s->fallback))
		kv_str(l, json, "fallback", s->fallback);
	if (s->protocol) {
		kv_str(l, json, "protocol", s->protocol);
		kv_str(l, json, "sni", is_set(s->sni) ? s->sni : NULL);
		kv_str(l, json, "alpn", is_set(s->alpn) ? s->alpn : NULL);
	}
}

void zcr_log_session(const struct zcr_sess_log *s)
{
	struct line l;
	int json;

	if (ZC_LOG_INFO > __atomic_load_n(&log_level, __ATOMIC_RELAXED))
		return;
	json = zcr_log_format() == ZCR_LOGF_JSON;
	line_start(&l, json, ZC_LOG_INFO);
	if (json)
		line_put(&l, ",\"msg\":\"session\"", 16);
	else
		line_put(&l, "session", 7);
	session_fields(&l, json, s);
	if (json)
		line_put(&l, "}", 1);
	line_write(&l);
}

/* ------------------------------------------------------------------ */
/* Destination                                                          */

/* The destination's descriptor: the file at path, or with path NULL a
 * duplicate of stderr. Returns it or -errno. The open is non-blocking:
 * it runs on the main thread (start, reload, SIGUSR1), which must never
 * wait in open() for the reader of a FIFO (-ENXIO instead); writes then
 * block as for any file. */
static int log_open_dest(const char *path)
{
	int fd;

	if (!path)
		fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	else if ((fd = open(path,
	                    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	                            O_NOCTTY | O_NONBLOCK,
	                    0640)) >= 0 &&
	         fcntl(fd, F_SETFL, O_APPEND) == -1) {
		close(fd);
		fd = -1;
	}
	return fd == -1 ? -errno : fd;
}

/*
 * Makes fd (ours, closed here in every case) the log's descriptor: the
 * first time by publishing its number, afterwards by dup3() onto the
 * number writers already use. Under log_mu. Returns 0 or -errno.
 */
static int log_install(int fd)
{
	int err = 0;

	if (log_fd < 0) {
		__atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
		return 0;
	}
	if (dup3(fd, log_fd, O_CLOEXEC) == -1)
		err = -errno;
	close(fd);
	return err;
}

/* Opens path (NULL: stderr) and installs it. Under log_mu. */
static int log_switch(const char *path)
{
	int fd = log_open_dest(path);

	return fd < 0 ? fd : log_install(fd);
}

int zcr_log_open(const char *path, int format)
{
	char *copy = NULL;
	int err = 0;

	if (format != ZCR_LOGF_TEXT && format != ZCR_LOGF_JSON)
		return -EINVAL;
	if (path && !(copy = strdup(path)))
		return -ENOMEM;
	pthread_mutex_lock(&log_mu);
	/* On stderr and staying there: nothing to open. Back to stderr
	 * from a file: a duplicate of stderr under the file's number. */
	if (path || log_fd >= 0)
		err = log_switch(path);
	if (!err) {
		free(log_path);
		log_path = copy;
		copy = NULL;
		__atomic_store_n(&log_fmt, format, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&log_mu);
	free(copy);
	return err;
}

int zcr_log_reopen(void)
{
	int err = 0;

	pthread_mutex_lock(&log_mu);
	if (log_path)
		err = log_switch(log_path);
	pthread_mutex_unlock(&log_mu);
	return err;
}

void zcr_log_close(void)
{
	int fd;

	pthread_mutex_lock(&log_mu);
	fd = log_fd;
	__atomic_store_n(&log_fd, -1, __ATOMIC_RELEASE);
	if (fd >= 0)
		close(fd);
	free(log_path);
	log_path = NULL;
	__atomic_store_n(&log_fmt, ZCR_LOGF_TEXT, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&log_mu);
}

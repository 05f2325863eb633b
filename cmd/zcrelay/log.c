/* log.c - the daemon's log lines on stderr. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "daemon.h"

static int log_level = ZC_LOG_INFO;

void zcr_log_set_level(int level)
{
	log_level = level;
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

void zcr_log(int level, const char *fmt, ...)
{
	char msg[1024], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One fprintf per line: stdio locks the stream per call, so lines
	 * from different workers never interleave. */
	fprintf(stderr, "%s.%03ldZ %s %s\n", ts, now.tv_nsec / 1000000,
	        level_name(level), msg);
}

void zcr_log_lib(void *arg, int level, const char *msg)
{
	const struct zcr_worker *w = arg;

	zcr_log(level, "worker=%d %s", w->id, msg);
}

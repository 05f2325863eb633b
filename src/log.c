/* log.c - formats messages for the loop's log callback. */
#include "compat.h"

#include <stdarg.h>
#include <stdio.h>

#include "log.h"
#include "loop.h"

void zc__log(struct zc_loop *loop, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!loop || !loop->log || level > loop->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	loop->log(loop->log_arg, level, msg);
}

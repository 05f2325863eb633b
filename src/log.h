/* log.h - the library's log sink: a callback per loop, never stdio. */
#ifndef ZC_LOG_H
#define ZC_LOG_H

struct zc_loop;

/* Formats a message and passes it to the loop's log callback if level is
 * at or below the loop's log level. Loop thread. */
void zc__log(struct zc_loop *loop, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif

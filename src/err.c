/* err.c - error texts and the names of enums. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"

/* The text of a ZC_ERESOLVE code, in a buffer of the calling thread
 * (valid until its next call). */
static const char *resolve_text(int err)
{
	static __thread char buf[160];

	snprintf(buf, sizeof(buf), "name did not resolve: %s",
	         gai_strerror(err - ZC_ERESOLVE));
	return buf;
}

const char *zc_strerror(int err)
{
	if (ZC_IS_ERESOLVE(err))
		return resolve_text(err);
	switch (err) {
	case 0:
		return "success";
	case ZC_ENOURING:
		return "io_uring engine unavailable";
	default:
		break;
	}
	if (err < 0 && err > ZC_EBASE)
		return strerror(-err);
	return "unknown error";
}

const char *zc_mover_name(int mover)
{
	switch (mover) {
	case ZC_MOVER_AUTO:
		return "auto";
	case ZC_MOVER_SPLICE:
		return "splice";
	case ZC_MOVER_COPY:
		return "copy";
	case ZC_MOVER_RING:
		return "ring";
	case ZC_MOVER_URING_SPLICE:
		return "uring-splice";
	}
	return "?";
}

const char *zc_engine_name(int engine)
{
	switch (engine) {
	case ZC_ENGINE_AUTO:
		return "auto";
	case ZC_ENGINE_EPOLL:
		return "epoll";
	case ZC_ENGINE_URING:
		return "uring";
	}
	return "?";
}

const char *zc_end_name(int end)
{
	static const char *const names[] = {
	        [ZC_END_NONE] = "running",
	        [ZC_END_EOF] = "eof",
	        [ZC_END_RESET] = "reset",
	        [ZC_END_TIMEOUT] = "timeout",
	        [ZC_END_ABORTED] = "aborted",
	        [ZC_END_ERROR] = "error",
	        [ZC_END_HALF_TIMEOUT] = "halfclose-timeout",
	};

	if (end < 0 || (size_t)end >= countof(names))
		return "?";
	return names[end];
}

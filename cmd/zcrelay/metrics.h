/*
 * metrics.h - the daemon's Prometheus metrics (metrics.c), served by the
 * admin API (api.c) at GET /metrics.
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

#endif

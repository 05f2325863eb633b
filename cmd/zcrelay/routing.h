/*
 * routing.h - content routing at run time: which route of a listener
 * takes a client, from its address and what it sent first (sniff.h).
 * Pure functions over a loaded configuration; any thread.
 */
#ifndef ZCRELAY_ROUTING_H
#define ZCRELAY_ROUTING_H

#include "cfg.h"
#include "sniff.h"

/*
 * zcr_route_pick - the first route of g (in its order: the routes with
 * a match in configuration order, then the default) that admits peer
 * (allow/deny) and whose match holds. si is what the client sent (NULL
 * on a listener that does not sniff); silent: it sent nothing within
 * sniff-timeout. Returns an index into c->routes, or -ENOENT: no route.
 */
int zcr_route_pick(const struct zcr_cfg *c, const struct zcr_lgroup *g,
                   const struct zcr_sniff *si, int silent,
                   const struct sockaddr *peer);

/* Does some route of g admit peer (allow/deny)? 1 or 0. */
int zcr_lgroup_admits(const struct zcr_cfg *c, const struct zcr_lgroup *g,
                      const struct sockaddr *peer);

/*
 * zcr_name_match - does name (lower case, no trailing dot) match
 * pattern: equal, or pattern "*.example.com" and name one label more
 * ("a.example.com", not "example.com" nor "a.b.example.com")? 1 or 0.
 */
int zcr_name_match(const char *pattern, const char *name);

#endif

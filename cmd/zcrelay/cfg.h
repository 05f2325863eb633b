/*
 * cfg.h - the daemon's configuration: global settings and routes, built
 * from the command line (one route) or a config file (any number).
 *
 * A loaded struct zcr_cfg is immutable and reference counted: workers
 * and sessions hold the generation they started with, a reload installs
 * a new one. Counters and health state live in struct zcr_stats objects
 * that are matched by name across generations, so a reload neither
 * resets the metrics nor forgets that an upstream is down.
 */
#ifndef ZCRELAY_CFG_H
#define ZCRELAY_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl.h"
#include "zcrelay.h"

#define ZCR_ADDR_STR      128
#define ZCR_NAME_MAX      64
#define ZCR_MAX_UPSTREAMS 256
#define ZCR_MAX_LISTENERS 4096 /* per route, after port ranges */
#define ZCR_MAX_ROUTES    256
#define ZCR_ERR_MAX       256
#define ZCR_NFALLBACK     8 /* distinct splice fallback reasons counted */
#define ZCR_MAX_ADMIN     8 /* admin addresses */

enum zcr_balance {
	ZCR_BAL_ROUNDROBIN = 0,
	ZCR_BAL_LEASTCONN,
	ZCR_BAL_SOURCE,
};

enum zcr_log_format {
	ZCR_LOGF_TEXT = 0,
	ZCR_LOGF_JSON,
};

/* Counters that outlive a configuration generation. All fields are
 * updated with __atomic builtins (relaxed) from any worker. */
struct zcr_stats {
	struct zcr_stats *next; /* registry list */
	int refs;               /* registry lock */
	char key[ZCR_NAME_MAX + ZCR_ADDR_STR + 2];
	uint64_t active, total;
	uint64_t bytes_in, bytes_out; /* client->upstream, upstream->client */
	uint64_t spliced, copied;
	uint64_t connect_fail, connect_timeout;
	uint64_t rej_maxconn, rej_client, rej_proxy, rej_denied, no_upstream;
	uint64_t rej_local; /* shed: out of our own fds, memory, ports */
	uint64_t matched;   /* route: chosen by a listener's match */
	/* Listener (content routing): no route matched (closed), of which
	 * TLS clients sent alert 112; sniff-timeouts; clients gone before
	 * a decision. rej_denied: no route admitted the client. */
	uint64_t no_match, tls_alert, sniff_timeout, sniff_closed;
	uint64_t timeout_idle, timeout_halfclose, timeout_proxy;
	struct {
		int err; /* -errno; 0: free slot */
		uint64_t n;
	} fallback[ZCR_NFALLBACK];
	uint64_t rr; /* route: round-robin position */
	/* Upstream health. */
	unsigned fails;        /* consecutive failed connects (passive) */
	uint64_t down_until;   /* passive ejection: ms, CLOCK_MONOTONIC */
	int check_down;        /* active checks say down */
	unsigned check_streak; /* checks in a row against the state */
	/* Upstream admin state, set through the admin API; kept across
	 * reloads like everything here. */
	int admin;           /* enum zcr_up_admin */
	unsigned weight_set; /* runtime weight; 0: the configured one */
};

/* An upstream's admin state: drain and disabled take no new sessions. */
enum zcr_up_admin {
	ZCR_UP_ENABLED = 0,
	ZCR_UP_DRAIN,
	ZCR_UP_DISABLED,
};

struct zcr_listen {
	char str[ZCR_ADDR_STR]; /* as configured (one port of a range) */
	struct zc_addr addr;
	unsigned mode;  /* Unix path sockets: file mode (default 0660) */
	unsigned group; /* index into cfg->groups (zcr_cfg_finish) */
};

/* match.protocol; sni/alpn imply TLS, http-host HTTP. */
enum zcr_mproto {
	ZCR_MP_NONE = 0, /* not given: any client, even a silent one */
	ZCR_MP_TLS,      /* = ZCR_PROTO_TLS of sniff.h, and so on */
	ZCR_MP_SSH,
	ZCR_MP_HTTP,
	ZCR_MP_TIMEOUT, /* nothing within sniff-timeout */
	ZCR_MP_ANY,     /* sent something, whatever it is */
};

/* A route's match group: every key given must hold. */
struct zcr_match {
	int set;                    /* the route has a match group */
	int proto;                  /* enum zcr_mproto, implied ones included */
	char **sni, **alpn, **host; /* names; "*.example.com" wildcards */
	unsigned nsni, nalpn, nhost;
	struct zcr_acl source;
	unsigned line;
};

/*
 * The routes that share one listening address, in the order they are
 * tried: those with a match in configuration order, then the default
 * (the one without). Built by zcr_cfg_finish.
 */
struct zcr_lgroup {
	const struct zcr_listen *l; /* the first route's listener */
	unsigned *routes;
	unsigned n;
	int sniff;   /* some route matches on content: peek first */
	int routing; /* more than one route, or a match: decide per client */
	unsigned sniff_ms;
	struct zcr_stats *st;
};

struct zcr_upstream {
	char str[ZCR_ADDR_STR];  /* as configured, HOST:PORT */
	char name[ZCR_NAME_MAX]; /* its name for the admin API; "": none */
	struct zc_addr addr;     /* resolved when the config was loaded */
	unsigned weight;         /* 1..1000, default 1 */
	struct zcr_stats *st;
};

struct zcr_route {
	char name[ZCR_NAME_MAX];
	struct zcr_listen *listen;
	unsigned nlisten;
	struct zcr_upstream *ups;
	unsigned nups;
	int balance;                                /* enum zcr_balance */
	int mover;                                  /* enum zc_mover */
	unsigned connect_ms, idle_ms, halfclose_ms; /* 0: none (not connect) */
	unsigned max_conns, max_per_client;         /* 0: no limit */
	int proxy_send;                             /* 0, 1 or 2 */
	int proxy_send_unix;        /* v2: Unix clients as AF_UNIX, not LOCAL */
	int proxy_accept;           /* 1: header required */
	struct zcr_acl trusted;     /* PROXY senders */
	struct zcr_acl allow, deny; /* admission at accept */
	unsigned proxy_timeout_ms;
	unsigned fail_max, cooldown_ms; /* passive health; fail_max 0: off */
	unsigned check_ms;              /* active checks; 0: off */
	unsigned check_timeout_ms, rise, fall;
	struct zcr_match match;
	unsigned sniff_ms; /* sniff-timeout, from accept to the decision */
	unsigned line;     /* in the config file; 0: command line */
	struct zcr_stats *st;
};

struct zcr_cfg {
	int refs;
	unsigned gen; /* 1, 2, ...: set when it becomes the running one */
	char *path;   /* config file; NULL: command line */
	struct zcr_route *routes;
	unsigned nroutes;
	unsigned workers;
	int engine;             /* enum zc_engine */
	int busy_poll_us;       /* zc_loop_opts.busy_poll_us */
	unsigned busy_poll_cap; /* zc_loop_opts.busy_poll_cap, percent */
	unsigned drain_ms, pipe_size, max_pipes;
	/* An upgrade hands the established sessions over (phase 2, the
	 * default); 0: they drain in the old process. */
	int upgrade_sessions;
	int log_level; /* enum zc_log_level */
	int log_format;
	int log_sessions;
	char *log_file; /* NULL: stderr */
	char *user, *group;
	char *pid_file;
	struct zcr_listen admin[ZCR_MAX_ADMIN]; /* Unix: mode 0600 */
	unsigned nadmin;                        /* 0: no admin server */
	char *admin_token; /* NULL: changes only from Unix or loopback */
	struct zcr_lgroup *groups;
	unsigned ngroups;
	unsigned err_line; /* the line of zcr_cfg_finish's error, or 0 */
};

/* A new configuration with the defaults and no route, refs 1; NULL when
 * out of memory. */
struct zcr_cfg *zcr_cfg_new(void);
/* Takes a reference. Any thread. */
void zcr_cfg_ref(struct zcr_cfg *c);
/* Drops a reference; the last one frees c and releases its stats. */
void zcr_cfg_unref(struct zcr_cfg *c);

/* The builders and parsers below fail with -EINVAL (bad input) or
 * -ENOMEM, a message for the user in err. */

/* Appends a route named name with the defaults and stores it in *out
 * (owned by c; NULL on failure). Returns 0, or -EINVAL (bad or duplicate
 * name, too many routes) / -ENOMEM with a message in err. */
int zcr_route_add(struct zcr_route **out, struct zcr_cfg *c, const char *name,
                  char *err, size_t errlen);
/* Adds listeners: ADDR, or HOST:LO-HI for a port range. Returns 0, or
 * -EINVAL / -ENOMEM with a message in err. */
int zcr_route_listen(struct zcr_route *r, const char *spec, char *err,
                     size_t errlen);
/* Adds an upstream (host names resolved now). Returns 0 or -errno + err. */
int zcr_route_upstream(struct zcr_route *r, const char *spec, unsigned weight,
                       char *err, size_t errlen);
/* Names the upstream added last (for the admin API). Returns 0, or
 * -EINVAL + err (bad characters, a name the route has already). */
int zcr_upstream_name(struct zcr_route *r, const char *name, char *err,
                      size_t errlen);
/* Adds a trusted PROXY sender: ADDR, ADDR/BITS, or "unix" (clients of
 * Unix listeners). Returns 0 or -errno + err. */
int zcr_route_trust(struct zcr_route *r, const char *spec, char *err,
                    size_t errlen);

/* Adds an admin address (ZC_ADDR_PASSIVE syntax). Returns 0, or
 * -EINVAL with a message in err (malformed, too long, too many). */
int zcr_cfg_admin_add(struct zcr_cfg *c, const char *spec, char *err,
                      size_t errlen);

/* Value parsers shared by the command line and the config file; each
 * returns 0 or -EINVAL with a message in err. */
int zcr_parse_mover(const char *s, int *out, char *err, size_t errlen);
int zcr_parse_engine(const char *s, int *out, char *err, size_t errlen);
int zcr_parse_balance(const char *s, int *out, char *err, size_t errlen);
/* "off" or "0" (0), "auto" (ZC_BUSY_POLL_AUTO), or microseconds up to
 * 1000000. */
int zcr_parse_busy_poll(const char *s, int *out, char *err, size_t errlen);

/*
 * Checks what single settings cannot: every route has listeners and
 * upstreams, no address is listened on twice. Then attaches the stats
 * objects: those of a route or upstream with the same name in a live
 * generation are shared, so counters and health survive a reload.
 * Returns 0, or -EINVAL / -ENOMEM with a message in err.
 */
int zcr_cfg_finish(struct zcr_cfg *c, char *err, size_t errlen);

/* Add an entry to r's allow or deny list: as zcr_route_trust. */
int zcr_route_allow(struct zcr_route *r, const char *spec, char *err,
                    size_t errlen);
int zcr_route_deny(struct zcr_route *r, const char *spec, char *err,
                   size_t errlen);

/* Content routing (routing.c). */
/* Adds to r's match: a name to sni or http-host (key says which), an
 * ALPN name, a source CIDR; or sets the protocol. 0 or -errno + err. */
int zcr_match_name(struct zcr_route *r, const char *key, const char *spec,
                   char *err, size_t errlen);
int zcr_match_alpn(struct zcr_route *r, const char *spec, char *err,
                   size_t errlen);
int zcr_match_source(struct zcr_route *r, const char *spec, char *err,
                     size_t errlen);
int zcr_match_proto(struct zcr_route *r, const char *spec, char *err,
                    size_t errlen);
/* Frees r's match lists. */
void zcr_match_free(struct zcr_match *m);
/*
 * Builds c->groups and checks what routes sharing a listener must agree
 * on, and that none is unreachable or ambiguous. Returns 0, or -EINVAL
 * (-ENOMEM) with err and c->err_line set (the later route's line).
 */
int zcr_routing_build(struct zcr_cfg *c, char *err, size_t errlen);
/* Frees c->groups. */
void zcr_routing_free(struct zcr_cfg *c);

/* Does the trusted list of r contain sa? 1 or 0. */
int zcr_route_trusts(const struct zcr_route *r, const struct sockaddr *sa);

/*
 * Loads a config file. On success *out is a finished configuration
 * (refs 1) and 0 is returned. On failure every error is printed to
 * stderr as "FILE:LINE: message" and -EINVAL is returned.
 */
int zcr_cfg_load(const char *path, struct zcr_cfg **out);
/* zcr_cfg_load, also returning the printed lines in *msgs (malloc'd,
 * one per line; NULL when there were none; the caller frees it). */
int zcr_cfg_load_msgs(const char *path, struct zcr_cfg **out, char **msgs);

/* Is u eligible for new sessions at now_ms (CLOCK_MONOTONIC ms)? Not
 * while ejected by passive health or marked down by active checks. */
int zcr_upstream_healthy(const struct zcr_upstream *u, uint64_t now_ms);
/* Does u go by id: its address as configured, or its name? 1 or 0. */
int zcr_upstream_is(const struct zcr_upstream *u, const char *id);
/* u's weight now: set through the admin API, or the configured one. */
unsigned zcr_upstream_weight(const struct zcr_upstream *u);
/* Does u take new sessions by its admin state (enabled)? 1 or 0. */
int zcr_upstream_enabled(const struct zcr_upstream *u);
/* CLOCK_MONOTONIC in ms. */
uint64_t zcr_now_ms(void);

/* The running configuration, with a reference (drop it with
 * zcr_cfg_unref); NULL before start and after stop. Any thread. */
struct zcr_cfg *zcr_cfg_current(void);
/* Makes c the running configuration (numbering it: c->gen), taking
 * over the caller's reference, and drops the reference on the previous
 * one. */
void zcr_cfg_set_current(struct zcr_cfg *c);

/* Counts a splice fallback reason (-errno) in st. */
void zcr_stats_fallback(struct zcr_stats *st, int err);

/* Adds v to *p atomically (relaxed). */
static inline void zcr_add(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

/* Reads *p atomically (relaxed). */
static inline uint64_t zcr_get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

#endif

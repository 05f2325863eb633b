/*
 * cfgfile.c - the configuration file: libconfig syntax, turned into a
 * struct zcr_cfg through the builders of cfg.c.
 *
 * Loading does not stop at the first error. Every error is printed as
 * "FILE:LINE: message" and loading goes on with the next setting, so
 * that one run of `zcrelay -n` lists them all (relayd's errors++). The
 * configuration is finished (cross-route checks, stats) only when no
 * setting was wrong; it is freed otherwise.
 *
 * Each group of the file has a table of its settings (struct opt): the
 * table says which names are known, and reads the integer, time and
 * boolean settings itself. Strings, lists and sub-groups are read by
 * the group's own function.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <libconfig.h>

#include "cfg.h"
#include "http.h"

#define FILE_MAX  (1u << 20) /* bytes; a config file is never this big */
#define MS_MAX    INT_MAX    /* longest time setting, about 24.8 days */
#define NOPTS(t)  (sizeof(t) / sizeof((t)[0]))
#define MODE_MAX  0777u
#define MAX_IO_MS 3600000u /* connect and check timeouts: one hour */

/* An error, kept until the load ends so they print in line order. */
struct load_msg {
	unsigned line;
	int seq;
	char *text; /* "FILE:LINE: message" */
};

/* One load in progress. */
struct load {
	const char *path;
	struct zcr_cfg *c;
	int nerr;
	struct load_msg *msgs; /* nerr of them, or fewer when out of memory */
	int nmsgs;
};

enum opt_kind {
	OPT_INT,   /* integer in min..max, stored as unsigned */
	OPT_TIME,  /* ms: integer or "500ms", "5s", "2m"; stored as unsigned */
	OPT_BOOL,  /* true or false, stored as int */
	OPT_OTHER, /* known name, read by the group's function */
};

/* A setting of a group. The value lands at off in the group's target
 * struct: an unsigned for OPT_INT/OPT_TIME (or an int: the ranges stay
 * within 0..INT_MAX, and C lets unsigned alias int), an int for
 * OPT_BOOL. */
struct opt {
	const char *name;
	enum opt_kind kind;
	unsigned min, max;
	size_t off;
};

#define OPT_N(name, kind, type, field, min, max)                               \
	{                                                                      \
		name, kind, min, max, offsetof(type, field)                    \
	}
#define OPT_X(name)                                                            \
	{                                                                      \
		name, OPT_OTHER, 0, 0, 0                                       \
	}

/* An upstream written as a group: what the table fills in. */
struct ups_item {
	unsigned weight;
};

/* The command line's ranges (conf.c) where it has the same option. */
static const struct opt global_opts[] = {
        OPT_N("workers", OPT_INT, struct zcr_cfg, workers, 1, 256),
        OPT_X("engine"),
        OPT_X("busy-poll"),
        OPT_N("busy-poll-cap", OPT_INT, struct zcr_cfg, busy_poll_cap, 1, 100),
        OPT_N("drain-timeout", OPT_TIME, struct zcr_cfg, drain_ms, 0, MS_MAX),
        OPT_N("upgrade-sessions", OPT_BOOL, struct zcr_cfg, upgrade_sessions, 0,
              1),
        OPT_N("pipe-size", OPT_INT, struct zcr_cfg, pipe_size, 4096, 1u << 30),
        OPT_N("max-pipes", OPT_INT, struct zcr_cfg, max_pipes, 1, 1u << 20),
        OPT_X("user"),
        OPT_X("group"),
        OPT_X("pid-file"),
        OPT_X("admin"),
        OPT_X("admin-token"),
        OPT_X("admin-unix-mode"),
        OPT_X("log"),
        OPT_X("routes"),
};

static const struct opt log_opts[] = {
        OPT_X("level"),
        OPT_X("format"),
        OPT_X("file"),
        OPT_N("sessions", OPT_BOOL, struct zcr_cfg, log_sessions, 0, 1),
};

static const struct opt route_opts[] = {
        OPT_X("name"),
        OPT_X("listen"),
        OPT_X("unix-mode"),
        OPT_X("upstreams"),
        OPT_X("balance"),
        OPT_X("mover"),
        OPT_N("connect-timeout", OPT_TIME, struct zcr_route, connect_ms, 1,
              MAX_IO_MS),
        OPT_N("idle-timeout", OPT_TIME, struct zcr_route, idle_ms, 0, MS_MAX),
        OPT_N("halfclose-timeout", OPT_TIME, struct zcr_route, halfclose_ms, 0,
              MS_MAX),
        OPT_N("max-conns", OPT_INT, struct zcr_route, max_conns, 0, INT_MAX),
        OPT_N("max-conns-per-client", OPT_INT, struct zcr_route, max_per_client,
              0, INT_MAX),
        OPT_X("proxy-protocol"),
        OPT_X("health"),
        OPT_X("allow"),
        OPT_X("deny"),
        OPT_X("match"),
        OPT_N("sniff-timeout", OPT_TIME, struct zcr_route, sniff_ms, 1,
              MAX_IO_MS),
};

static const struct opt match_opts[] = {
        OPT_X("sni"),       OPT_X("alpn"),   OPT_X("protocol"),
        OPT_X("http-host"), OPT_X("source"),
};

static const struct opt proxy_opts[] = {
        OPT_N("send", OPT_INT, struct zcr_route, proxy_send, 0, 2),
        OPT_N("send-unix", OPT_BOOL, struct zcr_route, proxy_send_unix, 0, 1),
        OPT_N("accept", OPT_BOOL, struct zcr_route, proxy_accept, 0, 1),
        OPT_X("trusted"),
        OPT_N("timeout", OPT_TIME, struct zcr_route, proxy_timeout_ms, 1,
              MAX_IO_MS),
};

static const struct opt health_opts[] = {
        OPT_N("fail-max", OPT_INT, struct zcr_route, fail_max, 0, 1000),
        OPT_N("cooldown", OPT_TIME, struct zcr_route, cooldown_ms, 0, MS_MAX),
        OPT_N("check-interval", OPT_TIME, struct zcr_route, check_ms, 0,
              MS_MAX),
        OPT_N("check-timeout", OPT_TIME, struct zcr_route, check_timeout_ms, 1,
              MAX_IO_MS),
        OPT_N("rise", OPT_INT, struct zcr_route, rise, 1, 1000),
        OPT_N("fall", OPT_INT, struct zcr_route, fall, 1, 1000),
};

static const struct opt ups_opts[] = {
        OPT_X("address"),
        OPT_X("name"),
        OPT_N("weight", OPT_INT, struct ups_item, weight, 1, 1000),
};

/* A builder of cfg.c that adds one item to a route from a string. */
typedef int add_fn(struct zcr_route *r, const char *spec, char *err,
                   size_t errlen);
/* A word parser with the signature of zcr_parse_mover(). */
typedef int word_fn(const char *s, int *out, char *err, size_t errlen);

static void load_err(struct load *ld, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Records "FILE:LINE: message" (or "FILE: message" for line 0) and counts
 * the error. Printed by load_flush(), or at once when out of memory. */
static void load_err(struct load *ld, unsigned line, const char *fmt, ...)
{
	char msg[512], *text = NULL;
	struct load_msg *m;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = line ? asprintf(&text, "%s:%u: %s", ld->path, line, msg)
	         : asprintf(&text, "%s: %s", ld->path, msg);
	if (n < 0)
		text = NULL;
	m = text ? realloc(ld->msgs, (size_t)(ld->nmsgs + 1) * sizeof(*m))
	         : NULL;
	if (m) {
		ld->msgs = m;
		m[ld->nmsgs] = (struct load_msg){line, ld->nmsgs, text};
		ld->nmsgs++;
	} else {
		fprintf(stderr, "%s: %s\n", ld->path, msg);
		free(text);
	}
	ld->nerr++;
}

static int msg_cmp(const void *a, const void *b)
{
	const struct load_msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq - y->seq;
}

/* Appends line and a newline to the malloc'd text *all (NULL: empty);
 * dropped when out of memory. */
static void msgs_append(char **all, const char *line)
{
	size_t n = *all ? strlen(*all) : 0, m = strlen(line);
	char *p = realloc(*all, n + m + 2);

	if (!p)
		return;
	memcpy(p + n, line, m);
	p[n + m] = '\n';
	p[n + m + 1] = '\0';
	*all = p;
}

/* Prints the recorded errors in line order (one fprintf per line, so
 * lines never interleave with other threads' output), copies them to
 * *all unless all is NULL, and frees them. */
static void load_flush(struct load *ld, char **all)
{
	int i;

	if (ld->nmsgs)
		qsort(ld->msgs, (size_t)ld->nmsgs, sizeof(*ld->msgs), msg_cmp);
	for (i = 0; i < ld->nmsgs; i++) {
		fprintf(stderr, "%s\n", ld->msgs[i].text);
		if (all)
			msgs_append(all, ld->msgs[i].text);
		free(ld->msgs[i].text);
	}
	free(ld->msgs);
}

static unsigned sline(const config_setting_t *s)
{
	return config_setting_source_line(s);
}

/* The name to show for s: its own, or for a list element its list's. */
static const char *label(const config_setting_t *s)
{
	while (s && !config_setting_name(s))
		s = config_setting_parent(s);
	return s ? config_setting_name(s) : "value";
}

static config_setting_t *member(const config_setting_t *g, const char *name)
{
	return config_setting_get_member(g, name);
}

/* An integer setting (int or int64) into *v; -EINVAL after an error. */
static int get_int(struct load *ld, const config_setting_t *s, long long *v)
{
	int t = config_setting_type(s);

	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
		load_err(ld, sline(s), "'%s' must be an integer", label(s));
		return -EINVAL;
	}
	*v = config_setting_get_int64(s);
	return 0;
}

/* "500ms", "5s" or "2m" into ms. A too big number gives LLONG_MAX, which
 * the caller reports as out of range. Returns 0, or -EINVAL if
 * malformed. */
static int parse_time(const char *s, long long *ms)
{
	static const struct {
		const char *unit;
		unsigned long long mul;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}};
	unsigned long long v;
	char *end;
	size_t i;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	for (i = 0; i < NOPTS(units); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (errno || v > (unsigned long long)LLONG_MAX / units[i].mul)
			*ms = LLONG_MAX;
		else
			*ms = (long long)(v * units[i].mul);
		return 0;
	}
	return -EINVAL;
}

/* A time setting into *ms; -EINVAL after an error. */
static int get_time(struct load *ld, const config_setting_t *s, long long *ms)
{
	const char *str;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return get_int(ld, s, ms);
	str = config_setting_get_string(s);
	if (parse_time(str, ms) == 0)
		return 0;
	load_err(ld, sline(s),
	         "'%s': bad time '%s' (an integer in ms, or a whole number "
	         "followed by ms, s or m)",
	         label(s), str);
	return -EINVAL;
}

static void set_bool(struct load *ld, const config_setting_t *s, int *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		load_err(ld, sline(s), "'%s' must be true or false", label(s));
	else
		*out = config_setting_get_bool(s);
}

/* Reads s as described by o into its field of base. */
static void opt_set(struct load *ld, const config_setting_t *s,
                    const struct opt *o, void *base)
{
	long long v;
	int rc;

	if (o->kind == OPT_BOOL) {
		set_bool(ld, s, (int *)((char *)base + o->off));
		return;
	}
	rc = o->kind == OPT_TIME ? get_time(ld, s, &v) : get_int(ld, s, &v);
	if (rc)
		return;
	if (v < o->min || v > o->max)
		load_err(ld, sline(s), "'%s' must be in %u..%u%s", o->name,
		         o->min, o->max, o->kind == OPT_TIME ? " ms" : "");
	else
		*(unsigned *)((char *)base + o->off) = (unsigned)v;
}

static const struct opt *opt_find(const struct opt *tab, size_t n,
                                  const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(tab[i].name, name) == 0)
			return &tab[i];
	return NULL;
}

/* Checks every setting of the group g against tab (unknown names are
 * errors) and reads those the table can read into base. */
static void opts_apply(struct load *ld, const config_setting_t *g,
                       const struct opt *tab, size_t n, void *base)
{
	const config_setting_t *s;
	const struct opt *o;
	int i;

	for (i = 0; i < config_setting_length(g); i++) {
		s = config_setting_get_elem(g, (unsigned)i);
		o = opt_find(tab, n, config_setting_name(s));
		if (!o)
			load_err(ld, sline(s), "unknown setting '%s'",
			         config_setting_name(s));
		else if (o->kind != OPT_OTHER)
			opt_set(ld, s, o, base);
	}
}

/* The member name of g if it is a group; NULL if absent or not a group
 * (an error). */
static const config_setting_t *
get_group(struct load *ld, const config_setting_t *g, const char *name)
{
	const config_setting_t *s = member(g, name);

	if (s && !config_setting_is_group(s)) {
		load_err(ld, sline(s), "'%s' must be a group { ... }", name);
		return NULL;
	}
	return s;
}

/* The string value of s; NULL (an error) if s is no string. */
static const char *get_str(struct load *ld, const config_setting_t *s)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return config_setting_get_string(s);
	load_err(ld, sline(s), "'%s' must be a string", label(s));
	return NULL;
}

/* The string member name of g, parsed by fn into *out. */
static void set_word_str(struct load *ld, const config_setting_t *s,
                         const char *str, word_fn *fn, int *out)
{
	char err[ZCR_ERR_MAX];

	if (str && fn(str, out, err, sizeof(err)))
		load_err(ld, sline(s), "%s", err);
}

/* The string member name of g, parsed by fn into *out. */
static void set_word(struct load *ld, const config_setting_t *g,
                     const char *name, word_fn *fn, int *out)
{
	const config_setting_t *s = member(g, name);

	set_word_str(ld, s, s ? get_str(ld, s) : NULL, fn, out);
}

/* The string member name of g, copied into *out (freed with the cfg). */
static void set_strdup(struct load *ld, const config_setting_t *g,
                       const char *name, char **out)
{
	const config_setting_t *s = member(g, name);
	const char *str = s ? get_str(ld, s) : NULL;

	if (!str)
		return;
	if (!*str) {
		load_err(ld, sline(s), "'%s' must not be empty", name);
		return;
	}
	free(*out);
	*out = strdup(str);
	if (!*out)
		load_err(ld, sline(s), "out of memory");
}

static int parse_level(const char *s, int *out, char *err, size_t errlen)
{
	static const char *const w[] = {"error", "warn", "info", "debug"};
	static const int v[] = {ZC_LOG_ERR, ZC_LOG_WARN, ZC_LOG_INFO,
	                        ZC_LOG_DEBUG};
	size_t i;

	for (i = 0; i < NOPTS(w); i++)
		if (strcmp(s, w[i]) == 0) {
			*out = v[i];
			return 0;
		}
	snprintf(err, errlen,
	         "log level '%s' is not error, warn, info or debug", s);
	return -EINVAL;
}

static int parse_format(const char *s, int *out, char *err, size_t errlen)
{
	if (strcmp(s, "text") == 0)
		*out = ZCR_LOGF_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = ZCR_LOGF_JSON;
	else {
		snprintf(err, errlen, "log format '%s' is not text or json", s);
		return -EINVAL;
	}
	return 0;
}

static void load_log(struct load *ld, const config_setting_t *root)
{
	const config_setting_t *g = get_group(ld, root, "log");

	if (!g)
		return;
	opts_apply(ld, g, log_opts, NOPTS(log_opts), ld->c);
	set_word(ld, g, "level", parse_level, &ld->c->log_level);
	set_word(ld, g, "format", parse_format, &ld->c->log_format);
	set_strdup(ld, g, "file", &ld->c->log_file);
}

/*
 * The number of values in s, a single value or a list/array of them;
 * 0 after an error (s is something else). elem() returns the i-th.
 */
static int values(struct load *ld, const config_setting_t *s, const char *what)
{
	if (config_setting_is_list(s) || config_setting_is_array(s))
		return config_setting_length(s);
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return 1;
	load_err(ld, sline(s), "'%s' must be %s", label(s), what);
	return 0;
}

static const config_setting_t *elem(const config_setting_t *s, int i)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return s;
	return config_setting_get_elem(s, (unsigned)i);
}

/* The strings of the member name of g, each given to fn (a builder). */
static void add_strings(struct load *ld, const config_setting_t *g,
                        const char *name, struct zcr_route *r, add_fn *fn)
{
	const config_setting_t *s = member(g, name), *e;
	const char *str;
	char err[ZCR_ERR_MAX];
	int i, n = s ? values(ld, s, "a string or a list of strings") : 0;

	for (i = 0; i < n; i++) {
		e = elem(s, i);
		str = get_str(ld, e);
		if (str && fn(r, str, err, sizeof(err)))
			load_err(ld, sline(e), "%s", err);
	}
}

/* The octal mode string of the member key of g into *mode; 0, -ENOENT
 * when it is absent, or -EINVAL when it is wrong (reported). */
static int get_mode(struct load *ld, const config_setting_t *g, const char *key,
                    unsigned *mode)
{
	const config_setting_t *s = member(g, key);
	const char *str;
	unsigned long v;
	char *end;

	if (!s)
		return -ENOENT;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		load_err(ld, sline(s),
		         "'%s' must be an octal string such as \"0660\"", key);
		return -EINVAL;
	}
	str = config_setting_get_string(s);
	errno = 0;
	v = strtoul(str, &end, 8);
	if (*str < '0' || *str > '7' || *end || errno || v > MODE_MAX) {
		load_err(ld, sline(s),
		         "'%s' '%s' is not an octal mode in 0000..0777", key,
		         str);
		return -EINVAL;
	}
	*mode = (unsigned)v;
	return 0;
}

/* admin: one address or a list of them; admin-unix-mode, admin-token. */
static void load_admin(struct load *ld, const config_setting_t *root)
{
	const config_setting_t *s = member(root, "admin"), *e;
	char err[ZCR_ERR_MAX];
	const char *str;
	unsigned mode;
	int i, n = s ? values(ld, s, "a string or a list of strings") : 0;

	for (i = 0; i < n; i++) {
		e = elem(s, i);
		str = get_str(ld, e);
		if (str && zcr_cfg_admin_add(ld->c, str, err, sizeof(err)))
			load_err(ld, sline(e), "%s", err);
	}
	if (get_mode(ld, root, "admin-unix-mode", &mode) == 0)
		for (i = 0; i < (int)ld->c->nadmin; i++)
			ld->c->admin[i].mode = mode;
	set_strdup(ld, root, "admin-token", &ld->c->admin_token);
	s = member(root, "admin-token");
	if (ld->c->admin_token && !ld->c->admin_token[0])
		load_err(ld, sline(s), "admin-token must not be empty");
	else if (ld->c->admin_token &&
	         strlen(ld->c->admin_token) >= ZCR_HTTP_TOKEN_MAX)
		load_err(ld, sline(s), "admin-token is longer than %d bytes",
		         ZCR_HTTP_TOKEN_MAX - 1);
}

/* One element of upstreams: "HOST:PORT" or
 * { address = ...; weight = ...; name = ...; } */
static void load_upstream(struct load *ld, const config_setting_t *e,
                          struct zcr_route *r)
{
	struct ups_item it = {1};
	const config_setting_t *a = e;
	const char *str;
	char err[ZCR_ERR_MAX];

	if (config_setting_is_group(e)) {
		opts_apply(ld, e, ups_opts, NOPTS(ups_opts), &it);
		a = member(e, "address");
		if (!a) {
			load_err(ld, sline(e), "upstream without 'address'");
			return;
		}
	} else if (config_setting_type(e) != CONFIG_TYPE_STRING) {
		load_err(ld, sline(e),
		         "an upstream must be a string or a group "
		         "{ address = ...; weight = ...; }");
		return;
	}
	str = get_str(ld, a);
	if (str && zcr_route_upstream(r, str, it.weight, err, sizeof(err))) {
		load_err(ld, sline(a), "%s", err);
		return;
	}
	a = config_setting_is_group(e) ? member(e, "name") : NULL;
	str = a ? get_str(ld, a) : NULL;
	if (str && zcr_upstream_name(r, str, err, sizeof(err)))
		load_err(ld, sline(a), "%s", err);
}

static void load_upstreams(struct load *ld, const config_setting_t *rs,
                           struct zcr_route *r)
{
	const config_setting_t *s = member(rs, "upstreams");
	int i, n = s ? values(ld, s, "a string or a list of upstreams") : 0;

	if (n > ZCR_MAX_UPSTREAMS) { /* said once, not per extra one */
		load_err(ld, sline(s), "%d upstreams: at most %d are allowed",
		         n, ZCR_MAX_UPSTREAMS);
		return;
	}
	for (i = 0; i < n; i++)
		load_upstream(ld, elem(s, i), r);
}

static int is_unix_path(const struct zc_addr *a)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;

	return a->ss.ss_family == AF_UNIX && sun->sun_path[0] != '\0';
}

/* unix-mode: an octal string, for the route's Unix path listeners
 * (abstract sockets have no file mode). Call after the listeners. */
static void set_unix_mode(struct load *ld, const config_setting_t *rs,
                          struct zcr_route *r)
{
	unsigned i, mode;

	if (get_mode(ld, rs, "unix-mode", &mode))
		return;
	for (i = 0; i < r->nlisten; i++)
		if (is_unix_path(&r->listen[i].addr))
			r->listen[i].mode = mode;
}

static void load_proxy(struct load *ld, const config_setting_t *rs,
                       struct zcr_route *r)
{
	const config_setting_t *g = get_group(ld, rs, "proxy-protocol");

	if (!g)
		return;
	opts_apply(ld, g, proxy_opts, NOPTS(proxy_opts), r);
	add_strings(ld, g, "trusted", r, zcr_route_trust);
}

static void load_health(struct load *ld, const config_setting_t *rs,
                        struct zcr_route *r)
{
	const config_setting_t *g = get_group(ld, rs, "health");

	if (g)
		opts_apply(ld, g, health_opts, NOPTS(health_opts), r);
}

static int match_sni(struct zcr_route *r, const char *spec, char *err,
                     size_t errlen)
{
	return zcr_match_name(r, "sni", spec, err, errlen);
}

static int match_host(struct zcr_route *r, const char *spec, char *err,
                      size_t errlen)
{
	return zcr_match_name(r, "http-host", spec, err, errlen);
}

/* match = { sni = ...; alpn = ...; protocol = ...; http-host = ...;
 * source = ...; } */
static void load_match(struct load *ld, const config_setting_t *rs,
                       struct zcr_route *r)
{
	const config_setting_t *g = get_group(ld, rs, "match"), *p;
	const char *str;
	char err[ZCR_ERR_MAX];

	if (!g)
		return;
	r->match.set = 1;
	r->match.line = sline(g);
	opts_apply(ld, g, match_opts, NOPTS(match_opts), r);
	add_strings(ld, g, "sni", r, match_sni);
	add_strings(ld, g, "alpn", r, zcr_match_alpn);
	add_strings(ld, g, "http-host", r, match_host);
	add_strings(ld, g, "source", r, zcr_match_source);
	p = member(g, "protocol");
	str = p ? get_str(ld, p) : NULL;
	if (str && zcr_match_proto(r, str, err, sizeof(err)))
		load_err(ld, sline(p), "%s", err);
}

/* A route needs what and has n of it: an error at the route otherwise,
 * unless reading the setting already gave one (nerr0: errors before). */
static void route_need(struct load *ld, const config_setting_t *rs,
                       const char *name, unsigned n, const char *what,
                       int nerr0)
{
	if (n == 0 && ld->nerr == nerr0)
		load_err(ld, sline(rs), "route '%s' has no %s", name, what);
}

/* Everything of a route but its name, into r; name is for messages. */
static void route_body(struct load *ld, const config_setting_t *rs,
                       struct zcr_route *r, const char *name)
{
	int nerr0;

	opts_apply(ld, rs, route_opts, NOPTS(route_opts), r);
	set_word(ld, rs, "balance", zcr_parse_balance, &r->balance);
	set_word(ld, rs, "mover", zcr_parse_mover, &r->mover);
	nerr0 = ld->nerr;
	add_strings(ld, rs, "listen", r, zcr_route_listen);
	route_need(ld, rs, name, r->nlisten, "listener", nerr0);
	set_unix_mode(ld, rs, r);
	nerr0 = ld->nerr;
	load_upstreams(ld, rs, r);
	route_need(ld, rs, name, r->nups, "upstream", nerr0);
	load_proxy(ld, rs, r);
	load_health(ld, rs, r);
	add_strings(ld, rs, "allow", r, zcr_route_allow);
	add_strings(ld, rs, "deny", r, zcr_route_deny);
	load_match(ld, rs, r);
	r->line = sline(rs);
}

/* The name of route rs, or NULL after an error (none, or not a string). */
static const char *route_name(struct load *ld, const config_setting_t *rs)
{
	const config_setting_t *s = member(rs, "name");

	if (!s) {
		load_err(ld, sline(rs), "route without 'name'");
		return NULL;
	}
	return get_str(ld, s);
}

/*
 * Adds route rs to the configuration. A route that cannot be added (no
 * name, a bad or duplicate one) is still read, into a scratch
 * configuration, so that the errors in its body are reported too.
 */
static void load_route(struct load *ld, const config_setting_t *rs)
{
	const char *name = route_name(ld, rs);
	struct zcr_cfg *scratch = NULL;
	struct zcr_route *r = NULL;
	char err[ZCR_ERR_MAX];

	if (name && zcr_route_add(&r, ld->c, name, err, sizeof(err)))
		load_err(ld, sline(member(rs, "name")), "%s", err);
	if (!r) {
		scratch = zcr_cfg_new();
		if (scratch)
			zcr_route_add(&r, scratch, "unnamed", err, sizeof(err));
	}
	if (r)
		route_body(ld, rs, r, name ? name : "(unnamed)");
	else
		load_err(ld, sline(rs), "out of memory");
	zcr_cfg_unref(scratch);
}

static void load_routes(struct load *ld, const config_setting_t *root)
{
	const config_setting_t *s = member(root, "routes"), *e;
	int i;

	if (!s)
		return;
	if (!config_setting_is_list(s)) {
		load_err(ld, sline(s),
		         "'routes' must be a list of groups: ( { ... }, ... )");
		return;
	}
	if (config_setting_length(s) > ZCR_MAX_ROUTES) { /* said once */
		load_err(ld, sline(s), "%d routes: at most %d are allowed",
		         config_setting_length(s), ZCR_MAX_ROUTES);
		return;
	}
	for (i = 0; i < config_setting_length(s); i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_is_group(e))
			load_route(ld, e);
		else
			load_err(ld, sline(e),
			         "a route must be a group { ... }");
	}
}

/* busy-poll: "off", "auto", or microseconds as a number or a string. */
static void load_busy_poll(struct load *ld, const config_setting_t *root)
{
	const config_setting_t *s = member(root, "busy-poll");
	char num[24];

	if (s && (config_setting_type(s) == CONFIG_TYPE_INT ||
	          config_setting_type(s) == CONFIG_TYPE_INT64)) {
		snprintf(num, sizeof(num), "%lld", config_setting_get_int64(s));
		set_word_str(ld, s, num, zcr_parse_busy_poll,
		             &ld->c->busy_poll_us);
		return;
	}
	set_word(ld, root, "busy-poll", zcr_parse_busy_poll,
	         &ld->c->busy_poll_us);
}

/* The top level: global settings, log, admin and routes. */
static void load_global(struct load *ld, const config_setting_t *root)
{
	struct zcr_cfg *c = ld->c;

	opts_apply(ld, root, global_opts, NOPTS(global_opts), c);
	set_word(ld, root, "engine", zcr_parse_engine, &c->engine);
	load_busy_poll(ld, root);
	set_strdup(ld, root, "user", &c->user);
	set_strdup(ld, root, "group", &c->group);
	set_strdup(ld, root, "pid-file", &c->pid_file);
	load_admin(ld, root);
	load_log(ld, root);
	load_routes(ld, root);
}

/* Cross-route checks, once every setting was right. Their errors have
 * no line of their own: the routes list stands for them. */
static void load_finish(struct load *ld, const config_setting_t *root)
{
	const config_setting_t *s = member(root, "routes");
	char err[ZCR_ERR_MAX];

	if (zcr_cfg_finish(ld->c, err, sizeof(err)))
		load_err(ld,
		         ld->c->err_line ? ld->c->err_line
		         : s             ? sline(s)
		                         : 0,
		         "%s", err);
	else if (!(ld->c->path = strdup(ld->path)))
		load_err(ld, 0, "out of memory");
}

/*
 * libconfig 1.5 opens @include files itself and, when one cannot be read
 * (a directory), its flex scanner calls exit(2). So the directive is
 * refused before libconfig sees it. The scanner only takes it at the
 * start of a line after blanks; this finds at least those.
 */
static void no_includes(struct load *ld, const char *buf)
{
	const char *p = buf;
	unsigned line = 1;

	while (p) {
		p += strspn(p, " \t");
		if (strncmp(p, "@include", 8) == 0)
			load_err(ld, line, "@include is not supported");
		p = strchr(p, '\n');
		if (p) {
			p++;
			line++;
		}
	}
}

/* The line of buf at offset off. */
static unsigned line_at(const char *buf, size_t off)
{
	unsigned line = 1;
	size_t i;

	for (i = 0; i < off; i++)
		line += buf[i] == '\n';
	return line;
}

/* Reads fd (size bytes at most) into a NUL-terminated buffer; NULL after
 * an error. */
static char *read_all(struct load *ld, int fd, size_t size)
{
	char *buf = malloc(size + 1);
	size_t len = 0;
	ssize_t n;

	while (buf && len < size) {
		n = read(fd, buf + len, size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			load_err(ld, 0, "%s", strerror(errno));
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!buf) {
		load_err(ld, 0, "out of memory");
		return NULL;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len))
		load_err(ld, line_at(buf, strlen(buf)), "NUL byte in the file");
	return buf;
}

/* The file at ld->path, NUL-terminated; NULL after an error. Opened
 * with O_NONBLOCK so that a FIFO (or a device) is refused by the type
 * check instead of blocking the main thread, which handles the signals,
 * in open() until a writer comes. */
static char *file_read(struct load *ld)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(ld->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd == -1) {
		load_err(ld, 0, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1)
		load_err(ld, 0, "%s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		load_err(ld, 0, "not a regular file");
	else if (st.st_size > (off_t)FILE_MAX)
		load_err(ld, 0, "larger than %u bytes", FILE_MAX);
	else
		buf = read_all(ld, fd, (size_t)st.st_size);
	close(fd);
	return buf;
}

/* Parses buf and builds ld->c from it. */
static void load_text(struct load *ld, const char *buf)
{
	config_t lc;

	config_init(&lc);
	if (config_read_string(&lc, buf) != CONFIG_TRUE) {
		load_err(ld, (unsigned)config_error_line(&lc), "%s",
		         config_error_text(&lc));
		goto out;
	}
	ld->c = zcr_cfg_new();
	if (!ld->c) {
		load_err(ld, 0, "out of memory");
		goto out;
	}
	load_global(ld, config_root_setting(&lc));
	if (ld->nerr == 0)
		load_finish(ld, config_root_setting(&lc));
out:
	config_destroy(&lc);
}

/*
 * zcr_cfg_load - see cfg.h. On success the caller owns *out (refs 1,
 * c->path a copy of path); on failure *out is NULL and everything is
 * freed (but for libconfig 1.5's own leak of a string token after some
 * syntax errors, hyperrealm/libconfig#142). Blocks: host names are
 * resolved with getaddrinfo(). Any thread; it writes only to stderr and
 * the stats registry (locked).
 */
int zcr_cfg_load(const char *path, struct zcr_cfg **out)
{
	return zcr_cfg_load_msgs(path, out, NULL);
}

int zcr_cfg_load_msgs(const char *path, struct zcr_cfg **out, char **msgs)
{
	struct load ld = {path, NULL, 0, NULL, 0};
	char *buf;

	if (msgs)
		*msgs = NULL;
	buf = file_read(&ld);
	*out = NULL;
	if (buf && ld.nerr == 0)
		no_includes(&ld, buf);
	if (buf && ld.nerr == 0)
		load_text(&ld, buf);
	free(buf);
	load_flush(&ld, msgs);
	if (ld.nerr) {
		zcr_cfg_unref(ld.c);
		return -EINVAL;
	}
	*out = ld.c;
	return 0;
}

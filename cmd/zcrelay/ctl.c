/*
 * ctl.c - zcrelay ctl: a command-line client of the admin API
 * (docs/admin-api.md). One HTTP/1.1 request per command over the
 * daemon's address syntax (unix:/PATH or HOST:PORT); the JSON answer is
 * printed as it is (--json) or as an aligned table.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "daemon.h"
#include "json.h"

#define CTL_DEFAULT_ADDR "unix:/run/zcrelay/admin.sock"
#define CTL_TIMEOUT_S    30
#define CTL_MAX_COLS     12

static const char ctl_usage[] =
        "Usage: zcrelay ctl [-s ADDR] [--json] [--token TOKEN] COMMAND "
        "[ARGS]\n"
        "\n"
        "Talk to a running zcrelay through its admin API.\n"
        "\n"
        "Commands:\n"
        "  status                         version, uptime, sessions, "
        "reloads\n"
        "  upstreams                      every upstream: state, weight, "
        "health,\n"
        "                                 sessions, bytes\n"
        "  sessions [--route R] [--upstream U] [--client C]\n"
        "           [--min-age SECS] [--limit N]\n"
        "                                 running sessions, oldest "
        "first\n"
        "  drain ROUTE UPSTREAM           no new sessions; running ones "
        "go on\n"
        "  disable ROUTE UPSTREAM [--kill]  no new sessions; --kill ends "
        "its\n"
        "                                 sessions too\n"
        "  enable ROUTE UPSTREAM          back in rotation\n"
        "  weight ROUTE UPSTREAM N        weight 1-1000\n"
        "  kill ID                        end session ID (both sides "
        "reset)\n"
        "  reload                         reload the -c file; prints the "
        "errors\n"
        "\n"
        "Options:\n"
        "  -s, --socket ADDR  the admin address: unix:/PATH or HOST:PORT\n"
        "                     (default: " CTL_DEFAULT_ADDR ")\n"
        "  -j, --json         print the API's JSON answer as it is\n"
        "  -t, --token TOKEN  send Authorization: Bearer TOKEN (default:\n"
        "                     $ZCRELAY_ADMIN_TOKEN)\n"
        "  -h, --help         print this help and exit\n"
        "\n"
        "UPSTREAM is the address as configured, or its name. Exit status: 0 "
        "done, 1 "
        "the\n"
        "server refused (its message is printed) or could not be "
        "reached,\n"
        "2 bad arguments.\n";

struct ctl {
	const char *addr, *token;
	int json;
	char method[8];
	char path[1024];
};

/* ------------------------------------------------------------------ */
/* HTTP                                                                 */

/* A connected socket to the admin address spec, or -errno (printed). */
static int ctl_connect(const char *spec)
{
	struct timeval tv = {CTL_TIMEOUT_S, 0};
	struct zc_addr a;
	int fd, rc = zc_addr_parse(&a, spec, 0);

	if (rc) {
		fprintf(stderr, "zcrelay ctl: %s: %s\n", spec, zc_strerror(rc));
		return rc;
	}
	fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 &&
	    (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	     setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	     connect(fd, (struct sockaddr *)&a.ss, a.len))) {
		rc = -errno;
		close(fd);
		fd = rc;
	} else if (fd < 0) {
		fd = -errno;
	}
	if (fd < 0)
		fprintf(stderr, "zcrelay ctl: %s: %s\n", spec, zc_strerror(fd));
	return fd;
}

/* Reads until EOF into a malloc'd string. */
static char *read_all(int fd)
{
	size_t n = 0, cap = 65536;
	char *b = malloc(cap), *nb;
	ssize_t r;

	while (b) {
		if (n + 1 == cap) {
			nb = realloc(b, cap *= 2);
			if (!nb)
				break;
			b = nb;
		}
		r = read(fd, b + n, cap - n - 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			b[n] = '\0';
			return r == 0 ? b : (free(b), NULL);
		}
		n += (size_t)r;
	}
	free(b);
	return NULL;
}

/* The request of c; the status code, the body in *body (malloc'd), or
 * -errno after a message. */
static int ctl_request(const struct ctl *c, char **body)
{
	char req[1600], *resp, *b;
	int fd, n, err, status = 0;

	n = snprintf(req, sizeof(req),
	             "%s %s HTTP/1.1\r\nHost: zcrelay\r\nConnection: close\r\n"
	             "%s%s%s\r\n",
	             c->method, c->path,
	             c->token ? "Authorization: Bearer " : "",
	             c->token ? c->token : "", c->token ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		fprintf(stderr, "zcrelay ctl: request too long\n");
		return -E2BIG;
	}
	fd = ctl_connect(c->addr);
	if (fd < 0)
		return fd;
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n ||
	    !(resp = read_all(fd))) {
		err = errno ? -errno : -EIO;
		fprintf(stderr, "zcrelay ctl: %s: %s\n", c->addr,
		        zc_strerror(err));
		close(fd);
		return err;
	}
	close(fd);
	b = strstr(resp, "\r\n\r\n");
	if (!b || sscanf(resp, "HTTP/1.%*1[01] %3d ", &status) != 1) {
		fprintf(stderr, "zcrelay ctl: %s: not an HTTP answer\n",
		        c->addr);
		free(resp);
		return -EPROTO;
	}
	memmove(resp, b + 4, strlen(b + 4) + 1);
	*body = resp;
	return status;
}

/* ------------------------------------------------------------------ */
/* Tables                                                               */

struct table {
	const char *head[CTL_MAX_COLS];
	int ncol;
	char **cells; /* rows * ncol */
	size_t rows;
};

static void table_add(struct table *t, const struct zcr_jv *row,
                      const char *const *keys)
{
	char buf[256], **cells;
	const struct zcr_jv *v;
	int i;

	cells = realloc(t->cells,
	                (t->rows + 1) * (size_t)t->ncol * sizeof(*cells));
	if (!cells)
		return;
	t->cells = cells;
	for (i = 0; i < t->ncol; i++) {
		v = row;
		/* "a.b": member b of member a */
		if (strchr(keys[i], '.')) {
			char k[64];

			snprintf(k, sizeof(k), "%.*s",
			         (int)strcspn(keys[i], "."), keys[i]);
			v = zcr_jv_get(v, k);
			v = zcr_jv_get(v, strchr(keys[i], '.') + 1);
		} else {
			v = zcr_jv_get(v, keys[i]);
		}
		cells[t->rows * (size_t)t->ncol + (size_t)i] =
		        strdup(zcr_jv_text(v, buf, sizeof(buf)));
	}
	t->rows++;
}

static void table_print(struct table *t)
{
	size_t w[CTL_MAX_COLS], r, len;
	const char *s;
	int i;

	for (i = 0; i < t->ncol; i++)
		w[i] = strlen(t->head[i]);
	for (r = 0; r < t->rows; r++)
		for (i = 0; i < t->ncol; i++) {
			s = t->cells[r * (size_t)t->ncol + (size_t)i];
			len = s ? strlen(s) : 1;
			if (len > w[i])
				w[i] = len;
		}
	for (i = 0; i < t->ncol; i++)
		printf("%-*s%s", i + 1 < t->ncol ? (int)w[i] : 0, t->head[i],
		       i + 1 < t->ncol ? "  " : "\n");
	for (r = 0; r < t->rows; r++)
		for (i = 0; i < t->ncol; i++) {
			s = t->cells[r * (size_t)t->ncol + (size_t)i];
			printf("%-*s%s", i + 1 < t->ncol ? (int)w[i] : 0,
			       s ? s : "?", i + 1 < t->ncol ? "  " : "\n");
		}
	for (r = 0; r < t->rows * (size_t)t->ncol; r++)
		free(t->cells[r]);
	free(t->cells);
}

/* One row per element of the array arr, columns heads / keys. */
static void print_rows(const struct zcr_jv *arr, const char *const *heads,
                       const char *const *keys, int ncol)
{
	struct table t = {{0}, ncol, NULL, 0};
	size_t i;

	memcpy(t.head, heads, (size_t)ncol * sizeof(*heads));
	for (i = 0; arr && arr->type == ZCR_JARR && i < arr->n; i++)
		table_add(&t, &arr->kids[i], keys);
	table_print(&t);
}

static void show_upstreams(const struct zcr_jv *v)
{
	static const char *const heads[] = {
	        "ROUTE",    "UPSTREAM", "STATE", "WEIGHT", "HEALTHY", "CHECK",
	        "SESSIONS", "TOTAL",    "FAILS", "IN",     "OUT"};
	static const char *const keys[] = {
	        "route",    "address",        "state",
	        "weight",   "health.healthy", "health.check",
	        "sessions", "sessions_total", "connect_failures",
	        "bytes_in", "bytes_out"};

	print_rows(v, heads, keys, 11);
}

static void show_sessions(const struct zcr_jv *v)
{
	static const char *const heads[] = {
	        "ID",     "WORKER",  "ROUTE", "CLIENT", "UPSTREAM", "STATE",
	        "AGE_MS", "IDLE_MS", "IN",    "OUT",    "MOVER"};
	static const char *const keys[] = {"id",        "worker",   "route",
	                                   "client",    "upstream", "state",
	                                   "age_ms",    "idle_ms",  "bytes_in",
	                                   "bytes_out", "mover"};

	print_rows(zcr_jv_get(v, "sessions"), heads, keys, 11);
}

/* "key: value" per member; nested objects one level down. */
static void show_object(const struct zcr_jv *v, const char *prefix)
{
	char buf[512];
	size_t i;

	for (i = 0; v && v->type == ZCR_JOBJ && i < v->n; i++) {
		if (v->kids[i].type == ZCR_JOBJ) {
			show_object(&v->kids[i], v->keys[i]);
			continue;
		}
		if (v->kids[i].type == ZCR_JARR) {
			size_t k;

			for (k = 0; k < v->kids[i].n; k++)
				printf("%s%s%s: %s\n", prefix,
				       *prefix ? "." : "", v->keys[i],
				       zcr_jv_text(&v->kids[i].kids[k], buf,
				                   sizeof(buf)));
			continue;
		}
		printf("%s%s%-*s %s\n", prefix, *prefix ? "." : "",
		       20 - (int)strlen(prefix) - (*prefix ? 1 : 0), v->keys[i],
		       zcr_jv_text(&v->kids[i], buf, sizeof(buf)));
	}
}

/* ------------------------------------------------------------------ */
/* Commands                                                             */

/* Appends "&key=value" (or "?key=value" first), value %-encoded. */
static void add_query(char *path, size_t size, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	const unsigned char *p;

	n += (size_t)snprintf(path + n, size - n,
	                      "%c%s=", strchr(path, '?') ? '&' : '?', key);
	for (p = (const unsigned char *)val; *p && n + 4 < size; p++) {
		if ((*p >= '0' && *p <= '9') ||
		    ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') ||
		    strchr("-._~:[]", *p)) {
			path[n++] = (char)*p;
		} else {
			path[n++] = '%';
			path[n++] = hex[*p >> 4];
			path[n++] = hex[*p & 15];
		}
	}
	path[n] = '\0';
}

/* Prints what is wrong with the command line; returns -EINVAL. */
static int bad_args(const char *what)
{
	fprintf(stderr, "zcrelay ctl: %s (see zcrelay ctl --help)\n", what);
	return -EINVAL;
}

/* sessions' filters, from argv[i..argc). 0 or -EINVAL (printed). */
static int sessions_args(struct ctl *c, int argc, char **argv)
{
	static const char *const opts[][2] = {{"--route", "route"},
	                                      {"--upstream", "upstream"},
	                                      {"--client", "client"},
	                                      {"--min-age", "min_age"},
	                                      {"--limit", "limit"}};
	int i, k;

	snprintf(c->path, sizeof(c->path), "/sessions");
	for (i = 1; i < argc; i += 2) {
		for (k = 0; k < 5; k++)
			if (strcmp(argv[i], opts[k][0]) == 0)
				break;
		if (k == 5 || i + 1 >= argc)
			return bad_args("sessions: unknown option or missing "
			                "value");
		add_query(c->path, sizeof(c->path), opts[k][1], argv[i + 1]);
	}
	return 0;
}

/* drain|enable|disable|weight ROUTE UPSTREAM [N | --kill]. 0 or -EINVAL
 * (printed). */
static int upstream_args(struct ctl *c, int argc, char **argv)
{
	int weight = strcmp(argv[0], "weight") == 0;
	int disable = strcmp(argv[0], "disable") == 0;

	if (argc != 3 + weight &&
	    !(disable && argc == 4 && strcmp(argv[3], "--kill") == 0))
		return bad_args(weight ? "weight ROUTE UPSTREAM N"
		                       : "ROUTE UPSTREAM expected");
	snprintf(c->method, sizeof(c->method), "POST");
	snprintf(c->path, sizeof(c->path), "/upstreams/%s", argv[0]);
	add_query(c->path, sizeof(c->path), "route", argv[1]);
	add_query(c->path, sizeof(c->path), "upstream", argv[2]);
	if (weight)
		add_query(c->path, sizeof(c->path), "weight", argv[3]);
	if (disable && argc == 4)
		add_query(c->path, sizeof(c->path), "kill", "1");
	return 0;
}

/* The request for argv (the command and its arguments). 0 or -EINVAL
 * (printed). */
static int ctl_build(struct ctl *c, int argc, char **argv)
{
	const char *cmd = argv[0];

	snprintf(c->method, sizeof(c->method), "GET");
	if (!strcmp(cmd, "status") || !strcmp(cmd, "upstreams")) {
		if (argc != 1)
			return bad_args("no arguments expected");
		snprintf(c->path, sizeof(c->path), "/%s", cmd);
		return 0;
	}
	if (!strcmp(cmd, "sessions"))
		return sessions_args(c, argc, argv);
	if (!strcmp(cmd, "drain") || !strcmp(cmd, "enable") ||
	    !strcmp(cmd, "disable") || !strcmp(cmd, "weight"))
		return upstream_args(c, argc, argv);
	if (!strcmp(cmd, "kill") && argc == 2 && argv[1][0] >= '0' &&
	    argv[1][0] <= '9' &&
	    strspn(argv[1], "0123456789") == strlen(argv[1])) {
		snprintf(c->method, sizeof(c->method), "DELETE");
		snprintf(c->path, sizeof(c->path), "/sessions/%s", argv[1]);
		return 0;
	}
	if (!strcmp(cmd, "reload") && argc == 1) {
		snprintf(c->method, sizeof(c->method), "POST");
		snprintf(c->path, sizeof(c->path), "/reload");
		return 0;
	}
	return bad_args(!strcmp(cmd, "kill")     ? "kill ID"
	                : !strcmp(cmd, "reload") ? "reload takes no arguments"
	                                         : "unknown command");
}

/* A failed request: the server's message (or errors) on stderr.
 * Returns the exit status, 1. */
static int show_error(const struct zcr_jv *v, int status)
{
	const struct zcr_jv *e = zcr_jv_get(v, "error");
	const struct zcr_jv *errs = zcr_jv_get(v, "errors");
	char buf[1024];
	size_t i;

	if (e)
		fprintf(stderr, "zcrelay ctl: %s\n",
		        zcr_jv_text(e, buf, sizeof(buf)));
	for (i = 0; errs && errs->type == ZCR_JARR && i < errs->n; i++)
		fprintf(stderr, "%s\n",
		        zcr_jv_text(&errs->kids[i], buf, sizeof(buf)));
	if (!e && !(errs && errs->n))
		fprintf(stderr, "zcrelay ctl: HTTP status %d\n", status);
	return 1;
}

/* An upstream after a change: one line. */
static void show_upstream(const struct zcr_jv *v)
{
	char r[128], a[160], st[32], w[16];

	printf("route %s upstream %s: %s, weight %s\n",
	       zcr_jv_text(zcr_jv_get(v, "route"), r, sizeof(r)),
	       zcr_jv_text(zcr_jv_get(v, "address"), a, sizeof(a)),
	       zcr_jv_text(zcr_jv_get(v, "state"), st, sizeof(st)),
	       zcr_jv_text(zcr_jv_get(v, "weight"), w, sizeof(w)));
}

static void show(const char *cmd, const struct zcr_jv *v)
{
	char buf[64];

	if (!strcmp(cmd, "upstreams"))
		show_upstreams(v);
	else if (!strcmp(cmd, "sessions"))
		show_sessions(v);
	else if (!strcmp(cmd, "kill"))
		printf("killed %s session(s)\n",
		       zcr_jv_text(zcr_jv_get(v, "killed"), buf, sizeof(buf)));
	else if (!strcmp(cmd, "reload"))
		printf("reloaded: generation %s\n",
		       zcr_jv_text(zcr_jv_get(v, "generation"), buf,
		                   sizeof(buf)));
	else if (zcr_jv_get(v, "killed"))
		printf("disabled; killed %s session(s)\n",
		       zcr_jv_text(zcr_jv_get(v, "killed"), buf, sizeof(buf)));
	else if (zcr_jv_get(v, "address"))
		show_upstream(v);
	else
		show_object(v, "");
}

/* Sends c's request and shows the answer. Returns the exit status: 0,
 * or 1 for any failure (printed). */
static int ctl_run(struct ctl *c, const char *cmd)
{
	char *body = NULL;
	struct zcr_jv *v;
	int status = ctl_request(c, &body), rc = 0;

	if (status < 0)
		return 1;
	if (c->json && status >= 200 && status < 300) {
		fputs(body, stdout);
		free(body);
		return 0;
	}
	v = zcr_json_parse(body);
	if (!v) {
		fprintf(stderr, "zcrelay ctl: HTTP status %d, not JSON\n",
		        status);
		rc = 1;
	} else if (status < 200 || status >= 300) {
		if (c->json)
			fputs(body, stdout);
		rc = show_error(v, status);
	} else {
		show(cmd, v);
	}
	zcr_jv_free(v);
	free(body);
	return rc;
}

int zcr_ctl_main(int argc, char **argv)
{
	static const struct option lopts[] = {
	        {"socket", required_argument, NULL, 's'},
	        {"json", no_argument, NULL, 'j'},
	        {"token", required_argument, NULL, 't'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0}};
	struct ctl c = {CTL_DEFAULT_ADDR, getenv("ZCRELAY_ADMIN_TOKEN"), 0, "",
	                ""};
	int ch, rc;

	optind = 1;
	/* "+": options stop at the command (its own come after it). */
	while ((ch = getopt_long(argc, argv, "+s:jt:h", lopts, NULL)) != -1) {
		if (ch == 's')
			c.addr = optarg;
		else if (ch == 'j')
			c.json = 1;
		else if (ch == 't')
			c.token = optarg;
		else if (ch == 'h') {
			fputs(ctl_usage, stdout);
			return 0;
		} else {
			bad_args("bad option");
			return 2;
		}
	}
	if (optind >= argc) {
		bad_args("a command is needed");
		return 2;
	}
	if (c.token && !c.token[0])
		c.token = NULL;
	rc = ctl_build(&c, argc - optind, argv + optind);
	return rc ? 2 : ctl_run(&c, argv[optind]);
}

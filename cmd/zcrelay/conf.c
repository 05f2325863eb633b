/*
 * conf.c - the command line: options into struct zcr_opts and, without
 * -c, a configuration with one route ("default").
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

static const char usage[] =
        "usage: zcrelay --listen ADDR --upstream ADDR [...] [options]\n"
        "       zcrelay -c FILE [-n] [-q] [-v]\n"
        "\n"
        "Relays every connection accepted on a listener to one of the\n"
        "upstreams, moving bytes with splice(2) where the kernel allows "
        "it.\n"
        "\n"
        "ADDR is HOST:PORT, [V6]:PORT, unix:/path or unix:@abstract; a "
        "listener\n"
        "may give a port range, HOST:LO-HI.\n"
        "\n"
        "  -c, --config FILE          routes and settings from FILE (see\n"
        "                             zcrelay.conf(5)); SIGHUP reloads it\n"
        "  -n, --check                check the configuration and exit\n"
        "  -l, --listen ADDR          address to accept connections on;\n"
        "                             repeat for several\n"
        "  -u, --upstream ADDR        upstream server; repeat for several\n"
        "                             (up to 256)\n"
        "  -b, --balance METHOD       roundrobin, leastconn or source\n"
        "                             (default: roundrobin)\n"
        "  -w, --workers N            worker threads (default: online CPUs)\n"
        "  -m, --mover MOVER          auto, splice, copy, ring (io_uring\n"
        "                             buffer ring) or uring-splice\n"
        "                             (experimental: IORING_OP_SPLICE on\n"
        "                             io-wq threads; splice on epoll);\n"
        "                             default: auto (small messages by\n"
        "                             the ring on io_uring, copied on\n"
        "                             epoll; bulk spliced)\n"
        "  -e, --engine ENGINE        auto, epoll or uring (default: auto:\n"
        "                             io_uring if the kernel allows it)\n"
        "      --connect-timeout MS   give up on an upstream after MS ms and\n"
        "                             try the next one (default: 5000)\n"
        "      --idle-timeout MS      close sessions with no bytes either way\n"
        "                             for MS ms (default: 0, never)\n"
        "      --halfclose-timeout MS close sessions MS ms after one side's\n"
        "                             EOF if the other stays quiet (0: "
        "never)\n"
        "      --max-conns N          sessions per route; more are closed at\n"
        "                             once (default: 0, no limit)\n"
        "      --max-conns-per-client N  the same per client address\n"
        "      --send-proxy VERSION   send a PROXY protocol header (1 or 2)\n"
        "                             to the upstream\n"
        "      --drain-timeout MS     on SIGTERM, wait up to MS ms for\n"
        "                             sessions to end (default: 30000)\n"
        "      --pipe-size BYTES      splice pipe size (default: 1 MiB, "
        "capped\n"
        "                             at /proc/sys/fs/pipe-max-size)\n"
        "      --max-pipes N          pipes in use per worker (default: 4096)\n"
        "      --busy-poll off|auto|US  after handling events, poll for more\n"
        "                             without sleeping: auto adapts a window\n"
        "                             of 0-50 us to the traffic; US spins up\n"
        "                             to US microseconds (default: off)\n"
        "      --busy-poll-cap PERCENT  CPU share busy polling may use per\n"
        "                             worker; using it up rests 1-16 s\n"
        "                             (default: 100)\n"
        "      --admin ADDR           serve the admin API and /metrics on\n"
        "                             ADDR (HOST:PORT or unix:/PATH; may be\n"
        "                             repeated)\n"
        "  -q, --quiet                no per-session log lines\n"
        "  -v, --verbose              debug logging\n"
        "  -V, --version              print the version and exit\n"
        "  -h, --help                 print this help and exit\n"
        "\n"
        "Content routing (routes sharing a listener, picked by TLS SNI,\n"
        "ALPN, SSH, HTTP Host, client address or silence) and allow/deny\n"
        "admission are set in the -c file: see zcrelay.conf(5).\n"
        "\n"
        "Signals: SIGTERM/SIGINT stop accepting and drain, then exit 0;\n"
        "SIGHUP reloads the -c file; SIGUSR1 reopens the log file.\n"
        "\n"
        "zcrelay ctl [-s ADDR] [--json] COMMAND ... talks to a running\n"
        "zcrelay's admin API (zcrelay ctl --help).\n"

        "Exit status: 0 ok, 1 startup failure or bad -c file, 2 bad "
        "arguments.\n";

enum {
	OPT_CONNECT = 256,
	OPT_IDLE,
	OPT_HALF,
	OPT_DRAIN,
	OPT_PIPE_SIZE,
	OPT_MAX_PIPES,
	OPT_MAX_CONNS,
	OPT_MAX_CLIENT,
	OPT_SEND_PROXY,
	OPT_ADMIN,
	OPT_BUSY_POLL,
	OPT_BUSY_POLL_CAP,
};

static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'n'},
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"balance", required_argument, NULL, 'b'},
        {"workers", required_argument, NULL, 'w'},
        {"mover", required_argument, NULL, 'm'},
        {"engine", required_argument, NULL, 'e'},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"halfclose-timeout", required_argument, NULL, OPT_HALF},
        {"drain-timeout", required_argument, NULL, OPT_DRAIN},
        {"pipe-size", required_argument, NULL, OPT_PIPE_SIZE},
        {"max-pipes", required_argument, NULL, OPT_MAX_PIPES},
        {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
        {"max-conns-per-client", required_argument, NULL, OPT_MAX_CLIENT},
        {"send-proxy", required_argument, NULL, OPT_SEND_PROXY},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"busy-poll", required_argument, NULL, OPT_BUSY_POLL},
        {"busy-poll-cap", required_argument, NULL, OPT_BUSY_POLL_CAP},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

static int conf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "zcrelay: MESSAGE" and a hint; returns -EINVAL (exit 2). */
static int conf_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "zcrelay: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'zcrelay --help'.\n");
	return -EINVAL;
}

/* A whole decimal number in [min, max]. */
static int conf_uint(const char *opt, const char *s, unsigned min, unsigned max,
                     unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end) /* -1, 4x, 0x10, 1G, 1e3 */
		return conf_err("%s: '%s' is not a number (digits 0-9 only)",
		                opt, s);
	if (errno || v < min || v > max)
		return conf_err("%s: '%s' is out of range (%u..%u)", opt, s,
		                min, max);
	*out = (unsigned)v;
	return 0;
}

/* Options that fill a route; r is the command line's only route.
 * 0, -EINVAL (printed), or -ENOENT: ch is not a route option. */
static int conf_route_opt(struct zcr_route *r, int ch, const char *opt)
{
	char err[ZCR_ERR_MAX];
	unsigned v;
	int rc = 0;

	switch (ch) {
	case 'l':
		rc = zcr_route_listen(r, optarg, err, sizeof(err));
		break;
	case 'u':
		rc = zcr_route_upstream(r, optarg, 1, err, sizeof(err));
		break;
	case 'b':
		rc = zcr_parse_balance(optarg, &r->balance, err, sizeof(err));
		break;
	case 'm':
		rc = zcr_parse_mover(optarg, &r->mover, err, sizeof(err));
		break;
	case OPT_CONNECT:
		return conf_uint(opt, optarg, 1, 3600000, &r->connect_ms);
	case OPT_IDLE:
		return conf_uint(opt, optarg, 0, INT_MAX, &r->idle_ms);
	case OPT_HALF:
		return conf_uint(opt, optarg, 0, INT_MAX, &r->halfclose_ms);
	case OPT_MAX_CONNS:
		return conf_uint(opt, optarg, 0, INT_MAX, &r->max_conns);
	case OPT_MAX_CLIENT:
		return conf_uint(opt, optarg, 0, INT_MAX, &r->max_per_client);
	case OPT_SEND_PROXY:
		if (conf_uint(opt, optarg, 1, 2, &v))
			return -EINVAL;
		r->proxy_send = (int)v;
		return 0;
	default:
		return -ENOENT; /* not a route option */
	}
	return rc ? conf_err("%s: %s", opt, err) : 0;
}

/* Options of the whole daemon: 0, 1 (exit 0: --help, --version), or
 * -EINVAL (printed). */
static int conf_global_opt(struct zcr_opts *o, struct zcr_cfg *c, int ch,
                           const char *opt)
{
	char err[ZCR_ERR_MAX];

	switch (ch) {
	case 'c':
		o->cfg_path = optarg;
		return 0;
	case 'n':
		o->check_only = 1;
		return 0;
	case 'w':
		return conf_uint(opt, optarg, 1, 256, &c->workers);
	case 'e':
		if (zcr_parse_engine(optarg, &c->engine, err, sizeof(err)))
			return conf_err("%s: %s", opt, err);
		return 0;
	case OPT_DRAIN:
		return conf_uint(opt, optarg, 0, INT_MAX, &c->drain_ms);
	case OPT_PIPE_SIZE:
		return conf_uint(opt, optarg, 4096, 1U << 30, &c->pipe_size);
	case OPT_MAX_PIPES:
		return conf_uint(opt, optarg, 1, 1U << 20, &c->max_pipes);
	case OPT_BUSY_POLL:
		if (zcr_parse_busy_poll(optarg, &c->busy_poll_us, err,
		                        sizeof(err)))
			return conf_err("%s: %s", opt, err);
		return 0;
	case OPT_BUSY_POLL_CAP:
		return conf_uint(opt, optarg, 1, 100, &c->busy_poll_cap);
	case OPT_ADMIN:
		if (zcr_cfg_admin_add(c, optarg, err, sizeof(err)))
			return conf_err("%s: %s", opt, err);
		return 0;
	case 'q':
		c->log_sessions = 0;
		return 0;
	case 'v':
		c->log_level = ZC_LOG_DEBUG;
		return 0;
	case 'V':
		printf("zcrelay %d.%d.%d\n", ZC_VERSION_MAJOR, ZC_VERSION_MINOR,
		       ZC_VERSION_PATCH);
		return 1;
	case 'h':
		fputs(usage, stdout);
		return 1;
	default:
		fprintf(stderr, "Try 'zcrelay --help'.\n");
		return -EINVAL;
	}
}

static const char *opt_name(int ch, int idx)
{
	static char s[4];

	if (idx >= 0)
		return NULL;
	snprintf(s, sizeof(s), "-%c", ch);
	return s;
}

/* Without -c: the route must be complete. With -c: no route options. */
static int conf_finish(struct zcr_opts *o, struct zcr_cfg *c, int route_opts)
{
	char err[ZCR_ERR_MAX];
	struct zcr_route *r = &c->routes[0];

	if (o->cfg_path) {
		if (route_opts)
			return conf_err(
			        "-c: only -n, -q and -v go with a "
			        "config file; the rest goes in the file");
		return 0;
	}
	if (o->check_only)
		return conf_err("-n needs -c FILE");
	if (r->nlisten == 0)
		return conf_err("--listen is required");
	if (r->nups == 0)
		return conf_err("at least one --upstream is required");
	if (zcr_cfg_finish(c, err, sizeof(err)))
		return conf_err("%s", err);
	return 0;
}

/* One option: route options first, then global ones. */
static int conf_opt(struct zcr_opts *o, struct zcr_cfg *c, int ch, int idx,
                    int *route_opts)
{
	const char *opt = opt_name(ch, idx);
	char lname[48];
	int rc;

	if (!opt) {
		snprintf(lname, sizeof(lname), "--%s", long_opts[idx].name);
		opt = lname;
	}
	rc = conf_route_opt(&c->routes[0], ch, opt);
	if (rc == -ENOENT && (ch > 255 || !strchr("cnqvVh?", ch)))
		rc = conf_global_opt(o, c, ch, opt);
	else if (rc == -ENOENT)
		return conf_global_opt(o, c, ch, opt);
	*route_opts = 1; /* a setting the -c file has its own key for */
	return rc;
}

int zcr_conf_parse(struct zcr_opts *o, struct zcr_cfg **out, int argc,
                   char **argv)
{
	char err[ZCR_ERR_MAX];
	struct zcr_cfg *c = zcr_cfg_new();
	struct zcr_route *r;
	int ch, idx, rc = 0, route_opts = 0;

	memset(o, 0, sizeof(*o));
	if (!c || zcr_route_add(&r, c, "default", err, sizeof(err))) {
		zcr_cfg_unref(c);
		return conf_err("out of memory");
	}
	opterr = 1;
	while (rc == 0 &&
	       (idx = -1, ch = getopt_long(argc, argv, "c:nl:u:b:w:m:e:qvVh",
	                                   long_opts, &idx)) != -1)
		rc = conf_opt(o, c, ch, idx, &route_opts);
	if (rc == 0 && optind < argc)
		rc = conf_err("unexpected argument '%s'", argv[optind]);
	if (rc == 0)
		rc = conf_finish(o, c, route_opts);
	if (rc) {
		zcr_cfg_unref(c);
		return rc;
	}
	*out = c;
	return 0;
}

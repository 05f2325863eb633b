/* conf.c - the command line: options into struct zcr_conf. */
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
        "usage: zcrelay --listen ADDR --upstream ADDR [--upstream ADDR ...]\n"
        "               [options]\n"
        "\n"
        "Relays every connection accepted on ADDR to one of the upstreams,\n"
        "moving bytes with splice(2) where the kernel allows it.\n"
        "\n"
        "ADDR is HOST:PORT, [V6]:PORT, unix:/path or unix:@abstract.\n"
        "\n"
        "  -l, --listen ADDR          address to accept connections on\n"
        "  -u, --upstream ADDR        upstream server; repeat for several,\n"
        "                             used round-robin (up to 64)\n"
        "  -w, --workers N            worker threads (default: online CPUs)\n"
        "  -m, --mover MOVER          auto, splice or copy (default: auto)\n"
        "  -e, --engine ENGINE        auto, epoll or uring (default: auto, "
        "which\n"
        "                             is epoll unless ZC_ENGINE=uring)\n"
        "      --connect-timeout MS   give up on an upstream after MS ms and\n"
        "                             try the next (default: 5000)\n"
        "      --idle-timeout MS      close sessions with no bytes either way\n"
        "                             for MS ms (default: 0, never)\n"
        "      --drain-timeout MS     on SIGTERM, wait up to MS ms for\n"
        "                             sessions to end (default: 30000)\n"
        "      --pipe-size BYTES      splice pipe size (default: 1 MiB, "
        "capped\n"
        "                             at /proc/sys/fs/pipe-max-size)\n"
        "      --max-pipes N          pipes in use per worker (default: 4096)\n"
        "  -q, --quiet                no per-session log lines\n"
        "  -v, --verbose              debug logging\n"
        "  -V, --version              print the version and exit\n"
        "  -h, --help                 print this help and exit\n"
        "\n"
        "Signals: SIGTERM/SIGINT stop accepting and drain, then exit 0.\n"
        "Exit status: 0 ok, 1 startup failure, 2 bad arguments.\n";

enum {
	OPT_CONNECT = 256,
	OPT_IDLE,
	OPT_DRAIN,
	OPT_PIPE_SIZE,
	OPT_MAX_PIPES,
};

static const struct option long_opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"workers", required_argument, NULL, 'w'},
        {"mover", required_argument, NULL, 'm'},
        {"engine", required_argument, NULL, 'e'},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"drain-timeout", required_argument, NULL, OPT_DRAIN},
        {"pipe-size", required_argument, NULL, OPT_PIPE_SIZE},
        {"max-pipes", required_argument, NULL, OPT_MAX_PIPES},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

static int conf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "zcrelay: MESSAGE" and a hint; returns -1 (exit 2). */
static int conf_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "zcrelay: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'zcrelay --help'.\n");
	return -1;
}

/* A whole decimal number in [min, max]. */
static int conf_uint(const char *opt, const char *s, unsigned min, unsigned max,
                     unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return conf_err("%s: '%s' is not a number", opt, s);
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return conf_err("%s: '%s' is out of range (%u..%u)", opt, s,
		                min, max);
	*out = (unsigned)v;
	return 0;
}

static int conf_addr(const char *opt, const char *s, struct zc_addr *a,
                     char *str, unsigned flags)
{
	int err = zc_addr_parse(a, s, flags);

	if (err)
		return conf_err("%s: bad address '%s': %s", opt, s,
		                zc_strerror(err));
	snprintf(str, ZCR_ADDR_STR, "%s", s);
	return 0;
}

static int conf_mover(const char *s, int *out)
{
	if (strcmp(s, "auto") == 0)
		*out = ZC_MOVER_AUTO;
	else if (strcmp(s, "splice") == 0)
		*out = ZC_MOVER_SPLICE;
	else if (strcmp(s, "copy") == 0)
		*out = ZC_MOVER_COPY;
	else
		return conf_err("--mover: '%s' is not auto, splice or copy", s);
	return 0;
}

static int conf_engine(const char *s, int *out)
{
	if (strcmp(s, "auto") == 0)
		*out = ZC_ENGINE_AUTO;
	else if (strcmp(s, "epoll") == 0)
		*out = ZC_ENGINE_EPOLL;
	else if (strcmp(s, "uring") == 0)
		*out = ZC_ENGINE_URING;
	else
		return conf_err("--engine: '%s' is not auto, epoll or uring",
		                s);
	return 0;
}

static void conf_defaults(struct zcr_conf *c)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	c->workers = n > 0 ? (unsigned)n : 1;
	c->mover = ZC_MOVER_AUTO;
	c->engine = ZC_ENGINE_AUTO;
	c->connect_ms = 5000;
	c->drain_ms = 30000;
	c->log_level = ZC_LOG_INFO;
	c->log_sessions = 1;
}

static int conf_upstream(struct zcr_conf *c, const char *s)
{
	if (c->nups == ZCR_MAX_UPSTREAMS)
		return conf_err("--upstream: more than %d upstreams",
		                ZCR_MAX_UPSTREAMS);
	if (conf_addr("--upstream", s, &c->ups[c->nups], c->ups_str[c->nups],
	              0))
		return -1;
	c->nups++;
	return 0;
}

/* One option; returns 0, 1 (exit 0) or -1 (error). */
static int conf_opt(struct zcr_conf *c, int ch, int *have_listen)
{
	switch (ch) {
	case 'l':
		*have_listen = 1;
		return conf_addr("--listen", optarg, &c->listen, c->listen_str,
		                 ZC_ADDR_PASSIVE);
	case 'u':
		return conf_upstream(c, optarg);
	case 'w':
		return conf_uint("--workers", optarg, 1, 256, &c->workers);
	case 'm':
		return conf_mover(optarg, &c->mover);
	case 'e':
		return conf_engine(optarg, &c->engine);
	case OPT_CONNECT:
		return conf_uint("--connect-timeout", optarg, 1, 3600000,
		                 &c->connect_ms);
	case OPT_IDLE:
		return conf_uint("--idle-timeout", optarg, 0, INT_MAX,
		                 &c->idle_ms);
	case OPT_DRAIN:
		return conf_uint("--drain-timeout", optarg, 0, INT_MAX,
		                 &c->drain_ms);
	case OPT_PIPE_SIZE:
		return conf_uint("--pipe-size", optarg, 4096, 1U << 30,
		                 &c->pipe_size);
	case OPT_MAX_PIPES:
		return conf_uint("--max-pipes", optarg, 1, 1U << 20,
		                 &c->max_pipes);
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
		return -1;
	}
}

int zcr_conf_parse(struct zcr_conf *c, int argc, char **argv)
{
	int ch, rc, have_listen = 0;

	conf_defaults(c);
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "l:u:w:m:e:qvVh", long_opts,
	                         NULL)) != -1) {
		rc = conf_opt(c, ch, &have_listen);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return conf_err("unexpected argument '%s'", argv[optind]);
	if (!have_listen)
		return conf_err("--listen is required");
	if (c->nups == 0)
		return conf_err("at least one --upstream is required");
	return 0;
}

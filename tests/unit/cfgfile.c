/* unit/cfgfile.c - zcr_cfg_load(): the config file, its errors. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "runner.h"
#include "tnet.h"
#include "cfg.h"

#define ERRS_MAX 8192

/*
 * Writes text to a file in the test's directory and loads it, with
 * stderr captured into errs (NUL-terminated; every occurrence of the
 * file's path replaced with "F", so expected messages read "F:3: ...").
 * Returns what zcr_cfg_load() returned.
 */
static int t_load_path(const char *path, struct zcr_cfg **out, char *errs)
{
	char file[256], raw[ERRS_MAX], *p, *hit;
	int saved, fd, rc;
	ssize_t n;

	snprintf(file, sizeof(file), "%s/stderr.txt", t_tmpdir());
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	saved = dup(2);
	if (fd == -1 || saved == -1)
		return -100;
	fflush(stderr);
	dup2(fd, 2);
	rc = zcr_cfg_load(path, out);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, raw, sizeof(raw) - 1, 0);
	close(fd);
	raw[n > 0 ? n : 0] = '\0';
	/* The path, then the rest, "F" in its place. */
	errs[0] = '\0';
	for (p = raw; (hit = strstr(p, path)); p = hit + strlen(path))
		strncat(strncat(errs, p, (size_t)(hit - p)), "F", 2);
	strcat(errs, p);
	return rc;
}

/* t_load_path() for a file named c.conf holding text. */
static int t_load(const char *text, struct zcr_cfg **out, char *errs)
{
	char path[256];

	if (t_write_tmp("c.conf", text, path, sizeof(path)))
		return -100;
	return t_load_path(path, out, errs);
}

/* Loading text fails with exactly the messages want ("F:LINE: ..."). */
static int t_load_fails(const char *text, const char *want)
{
	static char errs[ERRS_MAX];
	struct zcr_cfg *c = (struct zcr_cfg *)1;

	ASSERT_EQ(t_load(text, &c, errs), -EINVAL);
	ASSERT_TRUE(c == NULL);
	if (strcmp(errs, want) != 0)
		t_log("file:\n%s", text);
	ASSERT_STREQ(errs, want);
	return T_PASS;
}

/* Loads text, which must be valid; the messages must be none. */
static int t_load_ok(const char *text, struct zcr_cfg **out)
{
	static char errs[ERRS_MAX];

	ASSERT_EQ(t_load(text, out, errs), 0);
	ASSERT_STREQ(errs, "");
	ASSERT_TRUE(*out != NULL);
	return T_PASS;
}

static const char full[] =
        "workers = 3;\n"
        "engine = \"epoll\";\n"
        "busy-poll = \"auto\"; busy-poll-cap = 40;\n"
        "drain-timeout = \"2m\";\n"
        "pipe-size = 65536;\n"
        "max-pipes = 128;\n"
        "user = \"nobody\"; group = \"nogroup\";\n"
        "pid-file = \"/run/zcrelay.pid\";\n"
        "admin = [ \"127.0.0.1:9100\", \"unix:/run/zcrelay/admin.sock\" ];\n"
        "admin-token = \"s3cret\";\n"
        "admin-unix-mode = \"0660\";\n"
        "log = { level = \"debug\"; format = \"json\";\n"
        "        file = \"/var/log/zcrelay.log\"; sessions = false; };\n"
        "routes = (\n"
        "  { name = \"web\";\n"
        "    listen = [ \"127.0.0.1:8080\", \"[::1]:9000-9002\",\n"
        "               \"unix:/run/zc.sock\", \"unix:@zc-abstract\" ];\n"
        "    unix-mode = \"0600\";\n"
        "    upstreams = ( \"10.0.0.1:80\",\n"
        "                  { address = \"10.0.0.2:80\"; weight = 3; } );\n"
        "    balance = \"leastconn\";\n"
        "    mover = \"copy\";\n"
        "    connect-timeout = 1500; idle-timeout = \"5s\";\n"
        "    halfclose-timeout = \"250ms\";\n"
        "    max-conns = 100; max-conns-per-client = 7;\n"
        "    proxy-protocol = { send = 2; accept = true;\n"
        "                       trusted = [ \"10.0.0.0/8\", \"::1\" ];\n"
        "                       timeout = 1000; };\n"
        "    health = { fail-max = 5; cooldown = \"20s\";\n"
        "               check-interval = \"1s\"; check-timeout = 500;\n"
        "               rise = 4; fall = 6; };\n"
        "  },\n"
        "  { name = \"db\"; listen = \"127.0.0.1:5433\";\n"
        "    upstreams = \"localhost:5432\"; }\n"
        ");\n";

static int check_full_global(const struct zcr_cfg *c)
{
	ASSERT_EQ(c->refs, 1);
	ASSERT_EQ(c->workers, 3);
	ASSERT_EQ(c->engine, ZC_ENGINE_EPOLL);
	ASSERT_EQ(c->busy_poll_us, ZC_BUSY_POLL_AUTO);
	ASSERT_EQ(c->busy_poll_cap, 40);
	ASSERT_EQ(c->drain_ms, 120000);
	ASSERT_EQ(c->pipe_size, 65536);
	ASSERT_EQ(c->max_pipes, 128);
	ASSERT_STREQ(c->user, "nobody");
	ASSERT_STREQ(c->group, "nogroup");
	ASSERT_STREQ(c->pid_file, "/run/zcrelay.pid");
	ASSERT_EQ(c->nadmin, 2);
	ASSERT_STREQ(c->admin[0].str, "127.0.0.1:9100");
	ASSERT_EQ(c->admin[0].addr.ss.ss_family, AF_INET);
	ASSERT_STREQ(c->admin[1].str, "unix:/run/zcrelay/admin.sock");
	ASSERT_EQ(c->admin[1].addr.ss.ss_family, AF_UNIX);
	ASSERT_EQ(c->admin[1].mode, 0660);
	ASSERT_STREQ(c->admin_token, "s3cret");
	ASSERT_EQ(c->log_level, ZC_LOG_DEBUG);
	ASSERT_EQ(c->log_format, ZCR_LOGF_JSON);
	ASSERT_STREQ(c->log_file, "/var/log/zcrelay.log");
	ASSERT_EQ(c->log_sessions, 0);
	ASSERT_EQ(c->nroutes, 2);
	return T_PASS;
}

static int check_full_listen(const struct zcr_route *r)
{
	static const char *const want[] = {
	        "127.0.0.1:8080", "[::1]:9000",        "[::1]:9001",
	        "[::1]:9002",     "unix:/run/zc.sock", "unix:@zc-abstract",
	};
	static const unsigned mode[] = {0660, 0660, 0660, 0660, 0600, 0660};
	unsigned i;

	ASSERT_EQ(r->nlisten, 6);
	for (i = 0; i < r->nlisten; i++) {
		ASSERT_STREQ(r->listen[i].str, want[i]);
		ASSERT_EQ(r->listen[i].mode, mode[i]);
	}
	ASSERT_EQ(r->listen[4].addr.ss.ss_family, AF_UNIX);
	return T_PASS;
}

/* The int and unsigned fields of the route "web" in full[]. */
#define F(field, v)                                                            \
	{                                                                      \
#field, offsetof(struct zcr_route, field), v                   \
	}
static const struct {
	const char *name;
	size_t off;
	unsigned want;
} web_fields[] = {
        F(nups, 2),
        F(balance, ZCR_BAL_LEASTCONN),
        F(mover, ZC_MOVER_COPY),
        F(connect_ms, 1500),
        F(idle_ms, 5000),
        F(halfclose_ms, 250),
        F(max_conns, 100),
        F(max_per_client, 7),
        F(proxy_send, 2),
        F(proxy_accept, 1),
        F(trusted.n, 2),
        F(proxy_timeout_ms, 1000),
        F(fail_max, 5),
        F(cooldown_ms, 20000),
        F(check_ms, 1000),
        F(check_timeout_ms, 500),
        F(rise, 4),
        F(fall, 6),
};
#undef F

static int check_full_web(const struct zcr_route *r)
{
	unsigned v;
	size_t i;

	ASSERT_STREQ(r->name, "web");
	ASSERT_EQ(check_full_listen(r), T_PASS);
	for (i = 0; i < sizeof(web_fields) / sizeof(web_fields[0]); i++) {
		memcpy(&v, (const char *)r + web_fields[i].off, sizeof(v));
		if (v != web_fields[i].want)
			return t_fail(__FILE__, __LINE__, "%s is %u, not %u",
			              web_fields[i].name, v,
			              web_fields[i].want);
	}
	ASSERT_STREQ(r->ups[0].str, "10.0.0.1:80");
	ASSERT_EQ(r->ups[0].weight, 1);
	ASSERT_STREQ(r->ups[1].str, "10.0.0.2:80");
	ASSERT_EQ(r->ups[1].weight, 3);
	ASSERT_TRUE(r->st && r->ups[0].st && r->ups[1].st);
	ASSERT_EQ(r->trusted.v[0].family, AF_INET);
	ASSERT_EQ(r->trusted.v[0].bits, 8);
	ASSERT_EQ(r->trusted.v[1].family, AF_INET6);
	ASSERT_EQ(r->trusted.v[1].bits, 128);
	return T_PASS;
}

TEST(test_cfgfile_full)
{
	struct zcr_cfg *c;
	char path[256];

	ASSERT_EQ(t_load_ok(full, &c), T_PASS);
	snprintf(path, sizeof(path), "%s/c.conf", t_tmpdir());
	ASSERT_STREQ(c->path, path);
	ASSERT_EQ(check_full_global(c), T_PASS);
	ASSERT_EQ(check_full_web(&c->routes[0]), T_PASS);
	ASSERT_STREQ(c->routes[1].name, "db");
	ASSERT_EQ(c->routes[1].nlisten, 1);
	ASSERT_EQ(c->routes[1].nups, 1);
	ASSERT_STREQ(c->routes[1].ups[0].str, "localhost:5432");
	zcr_cfg_unref(c);
	return T_PASS;
}

/* Everything not in the file has the defaults of zcr_cfg_new() and
 * zcr_route_add(). */
TEST(test_cfgfile_minimal)
{
	struct zcr_cfg *c, *d = zcr_cfg_new();
	const struct zcr_route *r;
	char err[ZCR_ERR_MAX];
	struct zcr_route *dr;

	ASSERT_EQ(zcr_route_add(&dr, d, "m", err, sizeof(err)), 0);
	ASSERT_EQ(t_load_ok("routes = ( { name = \"m\";\n"
	                    "  listen = \"127.0.0.1:7000\";\n"
	                    "  upstreams = \"127.0.0.1:7001\"; } );\n",
	                    &c),
	          T_PASS);
	ASSERT_EQ(c->workers, d->workers);
	ASSERT_EQ(c->engine, ZC_ENGINE_AUTO);
	ASSERT_EQ(c->drain_ms, 30000);
	ASSERT_EQ(c->pipe_size, 0);
	ASSERT_EQ(c->max_pipes, 0);
	ASSERT_TRUE(!c->user && !c->group && !c->pid_file && !c->log_file);
	ASSERT_EQ(c->nadmin, 0);
	ASSERT_TRUE(!c->admin_token);
	ASSERT_EQ(c->log_level, ZC_LOG_INFO);
	ASSERT_EQ(c->log_format, ZCR_LOGF_TEXT);
	ASSERT_EQ(c->log_sessions, 1);
	ASSERT_EQ(c->nroutes, 1);
	r = &c->routes[0];
	ASSERT_EQ(r->listen[0].mode, 0660);
	ASSERT_EQ(r->ups[0].weight, 1);
	/* The route's settings after its arrays are the defaults. */
	ASSERT_MEMEQ(&r->balance, &dr->balance,
	             offsetof(struct zcr_route, trusted) -
	                     offsetof(struct zcr_route, balance));
	ASSERT_MEMEQ(&r->proxy_timeout_ms, &dr->proxy_timeout_ms,
	             offsetof(struct zcr_route, line) -
	                     offsetof(struct zcr_route, proxy_timeout_ms));
	ASSERT_EQ(r->line, 1);
	zcr_cfg_unref(d);
	zcr_cfg_unref(c);
	return T_PASS;
}

/* The example shipped in examples/ loads (tests run from the source
 * tree's top). */
TEST(test_cfgfile_example)
{
	static char errs[ERRS_MAX];
	struct zcr_cfg *c = NULL;

	ASSERT_EQ(t_load_path("examples/zcrelay.conf", &c, errs), 0);
	ASSERT_STREQ(errs, "");
	ASSERT_EQ(c->nroutes, 10);
	ASSERT_STREQ(c->path, "examples/zcrelay.conf");
	zcr_cfg_unref(c);
	return T_PASS;
}

TEST(test_cfgfile_times)
{
	struct zcr_cfg *c;

	ASSERT_EQ(t_load_ok("drain-timeout = 0;\n"
	                    "routes = ( { name = \"t\";\n"
	                    "  listen = \"127.0.0.1:7000\";\n"
	                    "  upstreams = \"127.0.0.1:7001\";\n"
	                    "  connect-timeout = \"1ms\";\n"
	                    "  idle-timeout = \"2147483647ms\";\n"
	                    "  halfclose-timeout = \"35791m\";\n"
	                    "  health = { cooldown = 7L; check-interval = "
	                    "\"0s\"; }; } );\n",
	                    &c),
	          T_PASS);
	ASSERT_EQ(c->drain_ms, 0);
	ASSERT_EQ(c->routes[0].connect_ms, 1);
	ASSERT_EQ(c->routes[0].idle_ms, 2147483647);
	ASSERT_EQ(c->routes[0].halfclose_ms, 35791u * 60000u);
	ASSERT_EQ(c->routes[0].cooldown_ms, 7);
	ASSERT_EQ(c->routes[0].check_ms, 0);
	zcr_cfg_unref(c);
	return T_PASS;
}

/* A route on lines 1-3 with body on line 2 and more, then tail. */
#define ROUTE_(body, tail)                                                     \
	"routes = ( { name = \"r\";\n" body "\n" tail " } );\n"
#define LISTEN    "  listen = \"127.0.0.1:7000\";"
#define UPSTREAMS "  upstreams = \"127.0.0.1:7001\";"
/* The route with a listener and an upstream, or only one of them. */
#define ROUTE(body)        ROUTE_(body, LISTEN UPSTREAMS)
#define ROUTE_NO_LISTEN(b) ROUTE_(b, UPSTREAMS)
#define ROUTE_NO_UPSTRM(b) ROUTE_(b, LISTEN)

struct bad_case {
	const char *text;
	const char *want;
};

/* One error of each kind, with its exact message. */
static const struct bad_case bad_cases[] = {
        {"workers = 2;\nengine = ;\n", "F:2: syntax error\n"},
        {"a = 1;\na = 2;\n", "F:2: duplicate setting name\n"},
        {"foo = 1;\n" ROUTE(""), "F:1: unknown setting 'foo'\n"},
        {ROUTE("  bar = true;"), "F:2: unknown setting 'bar'\n"},
        {ROUTE("  proxy-protocol = { sned = 1; };"),
         "F:2: unknown setting 'sned'\n"},
        {ROUTE("  health = {\n  rize = 2; };"),
         "F:3: unknown setting 'rize'\n"},
        {"log = { colour = true; };\n" ROUTE(""),
         "F:1: unknown setting 'colour'\n"},
        {ROUTE_NO_UPSTRM(
                 "  upstreams = ( { address = \"127.0.0.1:1\"; w = 1; } );"),
         "F:2: unknown setting 'w'\n"},
        {"workers = \"2\";\n" ROUTE(""), "F:1: 'workers' must be an integer\n"},
        {"workers = 2.5;\n" ROUTE(""), "F:1: 'workers' must be an integer\n"},
        {"engine = 1;\n" ROUTE(""), "F:1: 'engine' must be a string\n"},
        {"log = { sessions = 1; };\n" ROUTE(""),
         "F:1: 'sessions' must be true or false\n"},
        {"log = 1;\n" ROUTE(""), "F:1: 'log' must be a group { ... }\n"},
        {ROUTE("  health = ( );"), "F:2: 'health' must be a group { ... }\n"},
        {"routes = { };\n", "F:1: 'routes' must be a list of groups: "
                            "( { ... }, ... )\n"},
        {"routes = ( 1 );\n", "F:1: a route must be a group { ... }\n"},
        {"workers = 0;\n" ROUTE(""), "F:1: 'workers' must be in 1..256\n"},
        {"workers = 257;\n" ROUTE(""), "F:1: 'workers' must be in 1..256\n"},
        {"pipe-size = 5000000000L;\n" ROUTE(""),
         "F:1: 'pipe-size' must be in 4096..1073741824\n"},
        {"max-pipes = -1;\n" ROUTE(""),
         "F:1: 'max-pipes' must be in 1..1048576\n"},
        {ROUTE("  connect-timeout = 0;"),
         "F:2: 'connect-timeout' must be in 1..3600000 ms\n"},
        {ROUTE("  idle-timeout = \"99999999999999999999m\";"),
         "F:2: 'idle-timeout' must be in 0..2147483647 ms\n"},
        {ROUTE("  proxy-protocol = { send = 3; };"),
         "F:2: 'send' must be in 0..2\n"},
        {ROUTE_NO_UPSTRM(
                 "  upstreams = ( { address = \"127.0.0.1:1\"; weight = 0; "
                 "} );"),
         "F:2: 'weight' must be in 1..1000\n"},
        {ROUTE("  health = { rise = 0; };"),
         "F:2: 'rise' must be in 1..1000\n"},
        {ROUTE("  idle-timeout = \"5x\";"),
         "F:2: 'idle-timeout': bad time '5x' (an integer in ms, or a whole "
         "number followed by ms, s or m)\n"},
        {"drain-timeout = \"5\";\n" ROUTE(""),
         "F:1: 'drain-timeout': bad time '5' (an integer in ms, or a whole "
         "number followed by ms, s or m)\n"},
        {ROUTE("  connect-timeout = \"1.5s\";"),
         "F:2: 'connect-timeout': bad time '1.5s' (an integer in ms, or a "
         "whole number followed by ms, s or m)\n"},
        {ROUTE("  idle-timeout = true;"),
         "F:2: 'idle-timeout' must be an integer\n"},
        {"routes = ( { name = \"r\";\n"
         "  listen = [ \"127.0.0.1:7000\",\n"
         "    \"127.0.0.1\" ];\n"
         "  upstreams = \"127.0.0.1:7001\"; } );\n",
         "F:3: bad listen address '127.0.0.1': Invalid argument\n"},
        {ROUTE_NO_UPSTRM("  upstreams = \"127.0.0.1:http\";"),
         "F:2: bad upstream address '127.0.0.1:http': Invalid argument\n"},
        {"admin = \"127.0.0.1\";\n" ROUTE(""),
         "F:1: admin '127.0.0.1': Invalid argument\n"},
        {ROUTE("  proxy-protocol = { trusted = \"10.0.0.0/33\"; };"),
         "F:2: trusted '10.0.0.0/33': prefix length is not in 0..32\n"},
        {ROUTE("  allow = [ \"10.0.0.0/8\", \"10.0.0.0/x\" ];"),
         "F:2: allow '10.0.0.0/x': prefix length is not in 0..32\n"},
        {ROUTE("  deny = \"2001:db8::/129\";"),
         "F:2: deny '2001:db8::/129': prefix length is not in 0..128\n"},
        {ROUTE("  deny = [ \"example.com\" ];"),
         "F:2: deny 'example.com': not an IPv4 or IPv6 address (nor "
         "\"unix\")\n"},
        {ROUTE("  allow = 10;"),
         "F:2: 'allow' must be a string or a list of strings\n"},
        {ROUTE_NO_LISTEN("  listen = 8080;"),
         "F:2: 'listen' must be a string or a list of strings\n"},
        {ROUTE_NO_LISTEN("  listen = [ 8080 ];"),
         "F:2: 'listen' must be a string\n"},
        {ROUTE_NO_UPSTRM("  upstreams = ( 1 );"),
         "F:2: an upstream must be a string or a group { address = ...; "
         "weight = ...; }\n"},
        {ROUTE_NO_UPSTRM("  upstreams = ( { address = \"127.0.0.1:7001\";"
                         " name = \"a b\"; } );"),
         "F:2: upstream name 'a b': use 1-63 letters, digits, '_', '-' or "
         "'.'\n"},
        {ROUTE_NO_UPSTRM("  upstreams = ( { address = \"127.0.0.1:7001\";"
                         " name = \"a\"; },\n"
                         "    { address = \"127.0.0.1:7002\"; name = "
                         "\"a\"; } );"),
         "F:3: upstream name 'a' given twice\n"},
        {"admin = \"unix:/run/a.sock\";\nadmin-unix-mode = \"0800\";\n" ROUTE(
                 ""),
         "F:2: 'admin-unix-mode' '0800' is not an octal mode in 0000..0777\n"},
        {ROUTE_NO_UPSTRM("  upstreams = ( { weight = 2; } );"),
         "F:2: upstream without 'address'\n"},
        {ROUTE("  unix-mode = 660;"),
         "F:2: 'unix-mode' must be an octal string such as \"0660\"\n"},
        {ROUTE("  unix-mode = \"0680\";"),
         "F:2: 'unix-mode' '0680' is not an octal mode in 0000..0777\n"},
        {ROUTE("  balance = \"random\";"),
         "F:2: balance 'random' is not roundrobin, leastconn or source\n"},
        {ROUTE("  mover = \"zerocopy\";"),
         "F:2: mover 'zerocopy' is not auto, splice, copy, ring or "
         "uring-splice\n"},
        {"engine = \"kqueue\";\n" ROUTE(""),
         "F:1: engine 'kqueue' is not auto, epoll or uring\n"},
        {"busy-poll = \"fast\";\n" ROUTE(""),
         "F:1: busy-poll 'fast' is not off, auto or a number of "
         "microseconds\n"},
        {"busy-poll = \"20us\";\n" ROUTE(""),
         "F:1: busy-poll '20us' is not off, auto or a number of "
         "microseconds\n"},
        {"busy-poll = 1000001;\n" ROUTE(""),
         "F:1: busy-poll '1000001' is out of range (0..1000000 "
         "microseconds)\n"},
        {"busy-poll = -1;\n" ROUTE(""),
         "F:1: busy-poll '-1' is not off, auto or a number of "
         "microseconds\n"},
        {"busy-poll = true;\n" ROUTE(""),
         "F:1: 'busy-poll' must be a string\n"},
        {"busy-poll-cap = 0;\n" ROUTE(""),
         "F:1: 'busy-poll-cap' must be in 1..100\n"},
        {"log = { level = \"loud\"; };\n" ROUTE(""),
         "F:1: log level 'loud' is not error, warn, info or debug\n"},
        {"log = { format = \"xml\"; };\n" ROUTE(""),
         "F:1: log format 'xml' is not text or json\n"},
        {"user = \"\";\n" ROUTE(""), "F:1: 'user' must not be empty\n"},
        {"routes = ( { name = \"a\"; listen = \"127.0.0.1:7000\";\n"
         "             upstreams = \"127.0.0.1:7001\"; },\n"
         "           { name = \"a\"; listen = \"127.0.0.1:7002\";\n"
         "             upstreams = \"127.0.0.1:7001\"; } );\n",
         "F:3: route 'a' defined twice\n"},
        {"routes = ( { name = \"b c\"; listen = \"127.0.0.1:7000\";\n"
         "             upstreams = \"127.0.0.1:7001\"; } );\n",
         "F:1: route name 'b c': use 1-63 letters, digits, '_', '-' or '.'\n"},
        {"routes = ( {\n listen = \"127.0.0.1:7000\";\n"
         "             upstreams = \"127.0.0.1:7001\"; } );\n",
         "F:1: route without 'name'\n"},
        {"routes = ( { name = \"a\";\n"
         "             upstreams = \"127.0.0.1:7001\"; } );\n",
         "F:1: route 'a' has no listener\n"},
        {"routes = ( { name = \"a\"; listen = [ ];\n"
         "             upstreams = \"127.0.0.1:7001\"; } );\n",
         "F:1: route 'a' has no listener\n"},
        {"routes = (\n { name = \"a\"; listen = \"127.0.0.1:7000\"; } );\n",
         "F:2: route 'a' has no upstream\n"},
        {"\nroutes = ( { name = \"a\"; listen = \"127.0.0.1:7000\";\n"
         "             upstreams = \"127.0.0.1:7001\"; },\n"
         "           { name = \"b\"; listen = \"127.0.0.1:7000\";\n"
         "             upstreams = \"127.0.0.1:7001\"; } );\n",
         "F:2: listen '127.0.0.1:7000' appears twice (routes 'a' and 'b'), "
         "neither with a match: a shared listener has one default "
         "route\n"},
        {ROUTE_NO_LISTEN("  listen = [ \"127.0.0.1:7000-7002\", "
                         "\"127.0.0.1:7001\" ];"),
         "F:1: listen '127.0.0.1:7001' appears twice (routes 'r' and 'r')\n"},
        /* Of several copies, the first listener in the file is named. */
        {"routes = ( { name = \"a\"; upstreams = \"127.0.0.1:1\";\n"
         "  listen = [ \"127.0.0.1:7005\", \"127.0.0.1:7003\" ]; },\n"
         "  { name = \"b\"; upstreams = \"127.0.0.1:1\";\n"
         "  listen = [ \"127.0.0.1:7003\", \"127.0.0.1:7005\" ]; } );\n",
         "F:1: listen '127.0.0.1:7005' appears twice (routes 'a' and 'b'), "
         "neither with a match: a shared listener has one default "
         "route\n"},
        /* Content routing: unreachable, ambiguous, disagreeing, never
         * true, malformed; the later route's line. */
        {"routes = (\n"
         "{ name = \"a\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  match = { sni = [\"*.example.com\"]; }; },\n"
         "{ name = \"b\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  match = { sni = [\"x.example.com\"]; alpn = \"h2\"; }; } );\n",
         "F:5: route 'b' is unreachable on listen '127.0.0.1:7000': route 'a' "
         "(line 3), tried before it, matches every client it would\n"},
        {"routes = (\n"
         "{ name = \"a\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  match = { sni = [\"A.example.com.\"]; }; },\n"
         "{ name = \"b\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  match = { sni = \"a.example.com\"; }; } );\n",
         "F:5: route 'b' is unreachable on listen '127.0.0.1:7000': route 'a' "
         "(line 3), tried before it, matches every client it would (the "
         "same match: ambiguous)\n"},
        {"routes = (\n"
         "{ name = \"a\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  match = { }; },\n"
         "{ name = \"b\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\"; } );\n",
         "F:4: route 'b' is unreachable on listen '127.0.0.1:7000': route 'a' "
         "(line 3), tried before it, matches every client it would\n"},
        {"routes = (\n"
         "{ name = \"a\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  match = { source = [\"10.0.0.0/8\"]; }; },\n"
         "{ name = \"b\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  match = { source = \"10.1.0.0/16\"; protocol = \"any\"; }; } );\n",
         "F:5: route 'b' is unreachable on listen '127.0.0.1:7000': route 'a' "
         "(line 3), tried before it, matches every client it would\n"},
        {"routes = (\n"
         "{ name = \"a\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  match = { protocol = \"tls\"; }; },\n"
         "{ name = \"b\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  sniff-timeout = \"5s\"; } );\n",
         "F:4: route 'b' shares listen '127.0.0.1:7000' with route 'a' but "
         "not its sniff-timeout\n"},
        {"routes = (\n"
         "{ name = \"a\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\";\n"
         "  proxy-protocol = { accept = true; trusted = \"127.0.0.1\"; };\n"
         "  match = { sni = \"a.com\"; }; },\n"
         "{ name = \"b\"; listen = \"127.0.0.1:7000\"; upstreams = "
         "\"127.0.0.1:1\"; } );\n",
         "F:5: route 'b' shares listen '127.0.0.1:7000' with route 'a' but "
         "not its proxy-protocol accept, trusted and timeout\n"},
        {ROUTE("  match = { protocol = \"ssh\"; sni = \"x.com\"; };"),
         "F:2: route 'r': its match can never hold (sni and alpn are for TLS "
         "clients, http-host for HTTP ones)\n"},
        {ROUTE("  match = { protocol = \"quic\"; sni = \"bad name\"; alpn = "
               "\"\";\n"
               "    http-host = \"*\"; source = \"10.0.0.0/33\"; port = 1; };"),
         "F:2: sni 'bad name': not a host name or *.domain\n"
         "F:2: alpn '': not a protocol name (1-255 visible characters)\n"
         "F:2: protocol 'quic' is not tls, ssh, http, timeout or any\n"
         "F:3: unknown setting 'port'\n"
         "F:3: http-host '*': not a host name or *.domain\n"
         "F:3: source '10.0.0.0/33': prefix length is not in 0..32\n"},
        {ROUTE("  match = \"tls\";"), "F:2: 'match' must be a group { ... }\n"},
        {ROUTE("  sniff-timeout = 0;"),
         "F:2: 'sniff-timeout' must be in 1..3600000 ms\n"},
        {ROUTE("  proxy-protocol = { accept = true; };"),
         "F:1: route 'r' accepts PROXY headers but trusts no sender\n"},
        {"workers = 2;\n", "F: no route defined\n"},
        {"", "F: no route defined\n"},
        {"workers = 2;\n  @include \"/tmp\"\n" ROUTE(""),
         "F:2: @include is not supported\n"},
};

TEST(test_cfgfile_errors)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		if (t_load_fails(bad_cases[i].text, bad_cases[i].want))
			return t_fail(__FILE__, __LINE__, "case %zu", i);
	return T_PASS;
}

/* One run reports every error, in line order, and builds nothing. */
/* busy-poll as a word, a number or a numeric string. */
TEST(test_cfgfile_busy_poll)
{
	static const struct {
		const char *text;
		int us;
	} cases[] = {
	        {"busy-poll = \"off\";\n", 0},
	        {"busy-poll = 0;\n", 0},
	        {"busy-poll = \"auto\";\n", ZC_BUSY_POLL_AUTO},
	        {"busy-poll = 20;\n", 20},
	        {"busy-poll = \"1000000\";\n", 1000000},
	};
	char text[512];
	struct zcr_cfg *c;
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", cases[i].text, ROUTE(""));
		if (t_load_ok(text, &c) != T_PASS)
			return T_FAIL;
		ASSERT_EQ(c->busy_poll_us, cases[i].us);
		ASSERT_EQ(c->busy_poll_cap, 0); /* the library's default */
		zcr_cfg_unref(c);
	}
	return T_PASS;
}

TEST(test_cfgfile_many_errors)
{
	static const char text[] =
	        "engine = 7;\n"
	        "workers = 0;\n"
	        "colour = \"red\";\n"
	        "routes = (\n"
	        "  { name = \"a\"; listen = \"127.0.0.1\";\n"
	        "    upstreams = ( \"127.0.0.1:1\",\n"
	        "                  { address = \"127.0.0.1:2\"; weight = 0; } "
	        ");\n"
	        "    proxy-protocol = { send = 9; x = 1; };\n"
	        "    health = { fall = \"3\"; }; },\n"
	        "  { name = \"a\"; listen = \"127.0.0.1:7002\";\n"
	        "    idle-timeout = \"1h\"; },\n"
	        "  { upstreams = \"127.0.0.1:3\"; }\n"
	        ");\n";

	return t_load_fails(
	        text,
	        "F:1: 'engine' must be a string\n"
	        "F:2: 'workers' must be in 1..256\n"
	        "F:3: unknown setting 'colour'\n"
	        "F:5: bad listen address '127.0.0.1': Invalid argument\n"
	        "F:7: 'weight' must be in 1..1000\n"
	        "F:8: 'send' must be in 0..2\n"
	        "F:8: unknown setting 'x'\n"
	        "F:9: 'fall' must be an integer\n"
	        "F:10: route 'a' defined twice\n"
	        "F:10: route 'a' has no upstream\n"
	        "F:11: 'idle-timeout': bad time '1h' (an integer in ms, or a "
	        "whole number followed by ms, s or m)\n"
	        "F:12: route without 'name'\n"
	        "F:12: route '(unnamed)' has no listener\n");
}

/* unix-mode applies to Unix path listeners only, wherever it stands. */
TEST(test_cfgfile_unix_mode)
{
	struct zcr_cfg *c;
	const struct zcr_route *r;

	ASSERT_EQ(
	        t_load_ok(ROUTE_NO_LISTEN("  unix-mode = \"0\";\n"
	                                  "  listen = [ \"unix:/tmp/a\", "
	                                  "\"unix:@b\", \"127.0.0.1:7005\" ];"),
	                  &c),
	        T_PASS);
	r = &c->routes[0];
	ASSERT_EQ(r->nlisten, 3);
	ASSERT_EQ(r->listen[0].mode, 0);
	ASSERT_EQ(r->listen[1].mode, 0660);
	ASSERT_EQ(r->listen[2].mode, 0660);
	zcr_cfg_unref(c);
	return T_PASS;
}

/* Files that are not config text: missing, a directory, a NUL byte. */
TEST(test_cfgfile_bad_files)
{
	static char errs[ERRS_MAX];
	struct zcr_cfg *c = (struct zcr_cfg *)1;
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/none.conf", t_tmpdir());
	ASSERT_EQ(t_load_path(path, &c, errs), -EINVAL);
	ASSERT_TRUE(c == NULL);
	ASSERT_STREQ(errs, "F: No such file or directory\n");
	ASSERT_EQ(t_load_path(t_tmpdir(), &c, errs), -EINVAL);
	ASSERT_STREQ(errs, "F: not a regular file\n");
	ASSERT_OK(
	        t_write_tmp("nul.conf", "workers = 2;\n", path, sizeof(path)));
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_EQ(write(fd, "\n\0x", 3), 3);
	close(fd);
	ASSERT_EQ(t_load_path(path, &c, errs), -EINVAL);
	ASSERT_STREQ(errs, "F:3: NUL byte in the file\n");
	return T_PASS;
}

/* 16 routes of 4096 ports each load in well under the timeout: neither
 * the duplicate check (it took 100 s when it was quadratic) nor the
 * growth of the listener arrays (one realloc per port took over 60 s
 * under ASan, whose realloc always copies). */
TEST_TIMEOUT(test_cfgfile_many_listeners, 60)
{
	static char text[16 * 128 + 64];
	struct zcr_cfg *c;
	size_t len;
	int i;

	len = (size_t)snprintf(text, sizeof(text), "routes = (\n");
	for (i = 0; i < 16; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		                        "{ name = \"r%d\"; listen = "
		                        "\"127.0.%d.1:1-4096\"; upstreams = "
		                        "\"127.0.0.1:1\"; }%s\n",
		                        i, i, i < 15 ? "," : ");");
	ASSERT_LT(len, sizeof(text));
	ASSERT_EQ(t_load_ok(text, &c), T_PASS);
	ASSERT_EQ(c->nroutes, 16);
	ASSERT_EQ(c->routes[15].nlisten, 4096);
	zcr_cfg_unref(c);
	return T_PASS;
}

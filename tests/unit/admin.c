/*
 * unit/admin.c - the admin HTTP server (cmd/zcrelay/admin.c) with a test
 * handler: responses and their headers, keep-alive and pipelining, the
 * limits (413, 400, the request deadline for a slow client), the policy
 * for requests that change state (403 without the token, Unix sockets
 * pass), replies that come later from another thread, many clients at
 * once, and a stop while clients are connected.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "runner.h"
#include "tnet.h"
#include "admin.h"

/* ------------------------------------------------------------------ */
/* A server with a test handler                                         */

/* GET /echo: "METHOD PATH BODY"; /later: answered from another thread
 * 100 ms later; anything else 404. */
static void later_reply(struct zc_loop *loop, void *arg)
{
	zcr_admin_reply_text(arg, 200, "text/plain", NULL, "later\n");
}

static void *later_thread(void *arg)
{
	struct zcr_areq *rq = arg;

	usleep(100000);
	zcr_admin_post(rq->a, later_reply, rq);
	return NULL;
}

#define SHARED_LEN ((1u << 20) + 3)

/* The byte at i of the shared body. */
static char shared_byte(size_t i)
{
	return (char)('a' + (i * 7 + i / 251) % 26);
}

/* GET /shared: one body of SHARED_LEN bytes, made once, sent to every
 * client without a copy; GET /refs: its reference count. */
static int t_shared(struct zcr_areq *rq)
{
	static struct zcr_abody *b;
	char text[32], *t;
	size_t i;

	if (strcmp(rq->http.path, "/refs") == 0) {
		snprintf(text, sizeof(text), "%u", b ? b->refs : 0);
		zcr_admin_reply_text(rq, 200, "text/plain", NULL, text);
		return 1;
	}
	if (strcmp(rq->http.path, "/shared") != 0)
		return 0;
	if (!b && (t = malloc(SHARED_LEN)) != NULL) {
		for (i = 0; i < SHARED_LEN; i++)
			t[i] = shared_byte(i);
		b = zcr_abody_new(t, SHARED_LEN);
	}
	zcr_admin_reply_body(rq, b ? 200 : 500, "text/plain", NULL, b);
	return 1;
}

static void t_handle(void *arg, struct zcr_areq *rq)
{
	char text[2048];
	pthread_t th;

	if (t_shared(rq))
		return;
	if (strcmp(rq->http.path, "/later") == 0 &&
	    pthread_create(&th, NULL, later_thread, rq) == 0) {
		pthread_detach(th);
		return;
	}
	if (strncmp(rq->http.path, "/echo", 5) != 0) {
		zcr_admin_reply_text(rq, 404, "text/plain", NULL, "no\n");
		return;
	}
	snprintf(text, sizeof(text), "%s %s %s%s", rq->http.method,
	         rq->http.path, rq->body, rq->is_unix ? " unix" : "");
	zcr_admin_reply_text(rq, 200, "text/plain", "X-Test: 1\r\n", text);
}

struct t_srv {
	int fds[2];
	struct zc_addr tcp, unx;
	struct zcr_admin *a;
};

static int t_srv_start(struct t_srv *t, const char *token, unsigned req_ms)
{
	struct zcr_admin_opts o = {0};

	t->fds[0] = t_listen(AF_INET, &t->tcp);
	ASSERT_OK(t->fds[0]);
	t->fds[1] = t_listen(AF_UNIX, &t->unx);
	ASSERT_OK(t->fds[1]);
	o.fds = t->fds;
	o.nfds = 2;
	o.token = token;
	o.handle = t_handle;
	o.request_ms = req_ms;
	ASSERT_OK(zcr_admin_start(&t->a, &o));
	return T_PASS;
}

static void t_srv_stop(struct t_srv *t)
{
	zcr_admin_stop(t->a);
	close(t->fds[0]);
	close(t->fds[1]);
	t_cleanup_unix(&t->unx);
}

/* Reads one response on fd into buf (size): the head, then exactly its
 * Content-Length. Returns the status code, or -errno / -EPROTO. */
static int t_response(int fd, char *buf, size_t size)
{
	size_t n = 0, want = 0;
	const char *end, *cl;
	ssize_t r;

	for (;;) {
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end) {
			cl = strstr(buf, "Content-Length: ");
			if (!cl)
				return -EPROTO;
			want = (size_t)(end + 4 - buf) +
			       strtoul(cl + 16, NULL, 10);
			if (n >= want)
				break;
		}
		if (n + 1 >= size)
			return -ENOSPC;
		r = t_read_full(fd, buf + n, end ? want - n : 1, 5000);
		if (r <= 0)
			return r < 0 ? (int)r : -EPROTO;
		n += (size_t)r;
	}
	buf[want] = '\0';
	if (strncmp(buf, "HTTP/1.1 ", 9) != 0)
		return -EPROTO;
	return atoi(buf + 9);
}

/* One request on a new connection to a; the response in buf. */
static int t_req(const struct zc_addr *a, const char *req, char *buf,
                 size_t size)
{
	int fd = t_connect(a), rc;

	if (fd < 0)
		return fd;
	rc = t_write_all(fd, req, strlen(req));
	if (rc == 0)
		rc = t_response(fd, buf, size);
	close(fd);
	return rc;
}

/* HEAD: the length of the body GET would have, no body. */
static int t_head(const struct zc_addr *a)
{
	char b[4096];
	ssize_t n;
	int fd = t_connect(a);

	ASSERT_OK(fd);
	ASSERT_OK(t_write_all(fd, "HEAD /echo HTTP/1.0\r\n\r\n", 24));
	n = t_read_full(fd, b, sizeof(b) - 1, 5000);
	close(fd);
	ASSERT_GT(n, 4);
	b[n] = '\0';
	ASSERT_TRUE(strncmp(b, "HTTP/1.1 200 OK\r\n", 17) == 0);
	ASSERT_TRUE(strstr(b, "\r\nContent-Length: 11\r\n") != NULL);
	ASSERT_TRUE(strcmp(b + n - 4, "\r\n\r\n") == 0);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

TEST(test_admin_responses)
{
	struct t_srv t;
	char b[4096];

	ASSERT_EQ(t_srv_start(&t, NULL, 0), T_PASS);
	ASSERT_EQ(t_req(&t.tcp, "GET /echo?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", b,
	                sizeof(b)),
	          200);
	ASSERT_TRUE(strstr(b, "\r\nX-Test: 1\r\n") != NULL);
	ASSERT_TRUE(strstr(b, "\r\n\r\nGET /echo?x=1 ") != NULL);
	ASSERT_TRUE(strstr(b, "Connection: close") == NULL);
	ASSERT_EQ(t_req(&t.tcp, "GET /nothing HTTP/1.0\r\n\r\n", b, sizeof(b)),
	          404);
	ASSERT_TRUE(strstr(b, "\r\nConnection: close\r\n") != NULL);
	ASSERT_EQ(t_req(&t.tcp, "GET /echo HTTP/1.1\r\nBad Header\r\n\r\n", b,
	                sizeof(b)),
	          400);
	ASSERT_EQ(t_req(&t.tcp,
	                "POST /echo HTTP/1.1\r\nContent-Length: 99999\r\n\r\n",
	                b, sizeof(b)),
	          413);
	ASSERT_EQ(t_req(&t.tcp,
	                "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	                "\r\n",
	                b, sizeof(b)),
	          400);
	/* A body is read whole, by its length. */
	ASSERT_EQ(t_req(&t.tcp,
	                "PUT /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
	                b, sizeof(b)),
	          200);
	ASSERT_TRUE(strstr(b, "PUT /echo hello") != NULL);
	ASSERT_EQ(t_head(&t.tcp), T_PASS);
	t_srv_stop(&t);
	return T_PASS;
}

/* Three requests on one connection, the last two sent at once. */
TEST(test_admin_keepalive_pipelined)
{
	static const char two[] =
	        "GET /echo/2 HTTP/1.1\r\n\r\n"
	        "GET /echo/3 HTTP/1.1\r\nConnection: close\r\n"
	        "\r\n";
	struct t_srv t;
	char b[4096];
	int fd;

	ASSERT_EQ(t_srv_start(&t, NULL, 0), T_PASS);
	fd = t_connect(&t.tcp);
	ASSERT_OK(fd);
	ASSERT_OK(t_write_all(fd, "GET /echo/1 HTTP/1.1\r\n\r\n", 24));
	ASSERT_EQ(t_response(fd, b, sizeof(b)), 200);
	ASSERT_TRUE(strstr(b, "GET /echo/1 ") != NULL);
	ASSERT_OK(t_write_all(fd, two, sizeof(two) - 1));
	ASSERT_EQ(t_response(fd, b, sizeof(b)), 200);
	ASSERT_TRUE(strstr(b, "GET /echo/2 ") != NULL);
	ASSERT_EQ(t_response(fd, b, sizeof(b)), 200);
	ASSERT_TRUE(strstr(b, "GET /echo/3 ") != NULL);
	ASSERT_TRUE(strstr(b, "\r\nConnection: close\r\n") != NULL);
	ASSERT_EQ(t_wait_eof(fd, 2000), 0);
	close(fd);
	t_srv_stop(&t);
	return T_PASS;
}

/* Changes: from loopback without a token; with a token only with it (or
 * on the Unix socket). GET stays open. */
TEST(test_admin_policy)
{
	struct t_srv t;
	char b[4096];

	ASSERT_EQ(t_srv_start(&t, NULL, 0), T_PASS);
	ASSERT_EQ(t_req(&t.tcp, "POST /echo HTTP/1.1\r\n\r\n", b, sizeof(b)),
	          200);
	t_srv_stop(&t);

	ASSERT_EQ(t_srv_start(&t, "tok3n", 0), T_PASS);
	ASSERT_EQ(t_req(&t.tcp, "GET /echo HTTP/1.1\r\n\r\n", b, sizeof(b)),
	          200);
	ASSERT_EQ(t_req(&t.tcp, "POST /echo HTTP/1.1\r\n\r\n", b, sizeof(b)),
	          403);
	ASSERT_EQ(t_req(&t.tcp,
	                "DELETE /echo HTTP/1.1\r\nAuthorization: Bearer "
	                "tok3\r\n\r\n",
	                b, sizeof(b)),
	          403);
	ASSERT_EQ(t_req(&t.tcp,
	                "DELETE /echo HTTP/1.1\r\nAuthorization: Bearer "
	                "tok3nx\r\n\r\n",
	                b, sizeof(b)),
	          403);
	ASSERT_EQ(t_req(&t.tcp,
	                "DELETE /echo HTTP/1.1\r\nAuthorization: bearer "
	                "tok3n\r\n\r\n",
	                b, sizeof(b)),
	          200);
	ASSERT_EQ(t_req(&t.unx, "POST /echo HTTP/1.1\r\n\r\n", b, sizeof(b)),
	          200);
	ASSERT_TRUE(strstr(b, " unix") != NULL);
	t_srv_stop(&t);
	return T_PASS;
}

/* A client sending a byte every 100 ms is cut at the request deadline
 * (500 ms here); one that never sends waits for the idle limit, and
 * neither holds up others. */
TEST(test_admin_slow_client)
{
	static const char req[] =
	        "GET /echo HTTP/1.1\r\nX: yyyyyyyyyyyyy\r\n\r\n";
	struct t_srv t;
	uint64_t t0;
	char b[4096];
	size_t i;
	int fd, silent;

	ASSERT_EQ(t_srv_start(&t, NULL, 500), T_PASS);
	silent = t_connect(&t.tcp);
	ASSERT_OK(silent);
	fd = t_connect(&t.tcp);
	ASSERT_OK(fd);
	t0 = t_now_ms();
	for (i = 0; i < sizeof(req) - 1; i++) {
		if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1)
			break;
		t_sleep_ms(100);
	}
	ASSERT_LT(i, sizeof(req) - 1);
	ASSERT_GE(t_now_ms() - t0, 400);
	ASSERT_LE(t_now_ms() - t0, 3000);
	close(fd);
	/* Others are served meanwhile and after. */
	ASSERT_EQ(t_req(&t.tcp, "GET /echo HTTP/1.1\r\n\r\n", b, sizeof(b)),
	          200);
	ASSERT_EQ(t_wait_eof(silent, 200), -ETIMEDOUT);
	close(silent);
	t_srv_stop(&t);
	return T_PASS;
}

/* 50 clients with a request each in flight at once; answers come from
 * another thread later, so all 50 are pending together. */
TEST(test_admin_many_clients)
{
	static const char req[] = "GET /later HTTP/1.1\r\n\r\n";
	struct t_srv t;
	int fds[50], i;
	uint64_t t0;
	char b[1024];

	ASSERT_EQ(t_srv_start(&t, NULL, 0), T_PASS);
	t0 = t_now_ms();
	for (i = 0; i < 50; i++) {
		fds[i] = t_connect(&t.tcp);
		ASSERT_OK(fds[i]);
		ASSERT_OK(t_write_all(fds[i], req, sizeof(req) - 1));
	}
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(t_response(fds[i], b, sizeof(b)), 200);
		ASSERT_TRUE(strstr(b, "\r\n\r\nlater\n") != NULL);
		close(fds[i]);
	}
	/* 100 ms each if they were served one after the other. */
	ASSERT_LT(t_now_ms() - t0, 3000);
	t_srv_stop(&t);
	return T_PASS;
}

/* One shared body answers 20 clients whose sends are under way at the
 * same time (none reads until all asked), byte-exact each; once all are
 * sent, only its maker's reference is left. */
/* A response to GET /shared on fd, into b: 200 and the body byte-exact. */
static int shared_ok(int fd, char *b)
{
	const char *body;
	size_t k;

	ASSERT_EQ(t_response(fd, b, SHARED_LEN + 1024), 200);
	body = strstr(b, "\r\n\r\n") + 4;
	for (k = 0; k < SHARED_LEN; k++)
		if (body[k] != shared_byte(k))
			break;
	ASSERT_EQ(k, SHARED_LEN);
	ASSERT_EQ(body[k], '\0');
	return T_PASS;
}

TEST(test_admin_shared_body)
{
	static const char req[] = "GET /shared HTTP/1.1\r\n\r\n";
	struct t_srv t;
	int fds[20], i;
	char *b = malloc(SHARED_LEN + 1024);
	uint64_t t0;

	ASSERT_TRUE(b != NULL);
	ASSERT_EQ(t_srv_start(&t, NULL, 0), T_PASS);
	for (i = 0; i < 20; i++) {
		fds[i] = t_connect(&t.unx);
		ASSERT_OK(fds[i]);
		ASSERT_OK(t_write_all(fds[i], req, sizeof(req) - 1));
	}
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(shared_ok(fds[i], b), T_PASS);
		/* Keep-alive: the same connection again. */
		ASSERT_OK(t_write_all(fds[i], req, sizeof(req) - 1));
		ASSERT_EQ(shared_ok(fds[i], b), T_PASS);
		close(fds[i]);
	}
	/* The closes reach the server in their own time. */
	for (t0 = t_now_ms(); t_now_ms() - t0 < 3000; usleep(10000)) {
		ASSERT_EQ(t_req(&t.tcp, "GET /refs HTTP/1.0\r\n\r\n", b, 1024),
		          200);
		if (strcmp(strstr(b, "\r\n\r\n") + 4, "1") == 0)
			break;
	}
	ASSERT_TRUE(strstr(b, "\r\n\r\n1") != NULL);
	ASSERT_EQ(strlen(strstr(b, "\r\n\r\n") + 4), 1);
	free(b);
	t_srv_stop(&t);
	return T_PASS;
}

/* Stopping closes clients at once, even one whose reply is pending; the
 * listening sockets stay the caller's. */
TEST(test_admin_stop_with_clients)
{
	struct t_srv t;
	uint64_t t0;
	int fd, fd2, fd3;

	ASSERT_EQ(t_srv_start(&t, NULL, 0), T_PASS);
	fd = t_connect(&t.tcp);
	ASSERT_OK(fd);
	ASSERT_OK(t_write_all(fd, "GET /metr", 9));
	fd3 = t_connect(&t.tcp);
	ASSERT_OK(fd3);
	ASSERT_OK(t_write_all(fd3, "GET /echo HTTP/1.1\r\n\r\n", 22));
	t_sleep_ms(100);
	t0 = t_now_ms();
	zcr_admin_stop(t.a);
	ASSERT_LT(t_now_ms() - t0, 1000);
	ASSERT_EQ(t_wait_eof(fd, 1000), 0);
	close(fd);
	close(fd3);
	fd2 = t_connect(&t.tcp);
	ASSERT_OK(fd2);
	close(fd2);
	close(t.fds[0]);
	close(t.fds[1]);
	t_cleanup_unix(&t.unx);
	return T_PASS;
}

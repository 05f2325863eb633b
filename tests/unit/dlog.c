/* unit/dlog.c - the daemon's log sink: text and JSON lines, escaping,
 * truncation, reopen for log rotation, concurrent writers. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "runner.h"
#include "daemon.h"
#include "dlog.h"

#define TS_LEN 24 /* 2026-11-29T16:00:00.123Z */

static void tmp_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", t_tmpdir(), name);
}

/* The whole file as a string (caller frees), or NULL. */
static char *slurp(const char *path)
{
	size_t len = 0, cap = 8192;
	char *buf = malloc(cap), *p;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1 || !buf)
		goto fail;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len - 1 > 0)
			continue;
		cap *= 2;
		p = realloc(buf, cap);
		if (!p)
			goto fail;
		buf = p;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	if (fd != -1)
		close(fd);
	free(buf);
	return NULL;
}

/* Splits text into its lines in place; each must end with '\n'. Returns
 * the count (at most max), or -1 if the text does not end a line. */
static int split_lines(char *text, char **lines, int max)
{
	int n = 0;
	char *nl;

	while (*text && n < max) {
		nl = strchr(text, '\n');
		if (!nl)
			return -1;
		*nl = '\0';
		lines[n++] = text;
		text = nl + 1;
	}
	return n;
}

/* A "2026-11-29T16:00:00.123Z" at the start of s. */
static int ts_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	int i;

	for (i = 0; i < TS_LEN; i++) {
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9'
		                    : s[i] != shape[i])
			return 0;
	}
	return 1;
}

static int have_python(void)
{
	return system("python3 -c pass >/dev/null 2>&1") == 0;
}

/*
 * Runs python code with the file's lines decoded (strict UTF-8) and
 * parsed as JSON in the list L. code must not contain single quotes.
 * Returns 0 when it exits 0 (or without python3: logged), else -1.
 */
static int py_check(const char *path, const char *code)
{
	char cmd[4096];

	if (!have_python()) {
		t_log("python3 missing: JSON lines not parsed");
		return 0;
	}
	snprintf(cmd, sizeof(cmd),
	         "python3 -c 'import json,sys\n"
	         "L = [json.loads(l.decode(\"utf-8\")) for l in "
	         "sys.stdin.buffer]\n%s' < '%s'",
	         code, path);
	return system(cmd) == 0 ? 0 : -1;
}

static const struct zcr_sess_log sess = {
        .worker = 2,
        .route = "web",
        .client = "1.2.3.4:5",
        .upstream = "10.0.0.1:80",
        .up = 1,
        .down = 2,
        .spliced = 3,
        .copied = 0,
        .secs = 0.123,
        .end = "eof",
        .error = "ECONNRESET",
        .engine = "uring",
        .mover = "auto",
        .fallback = "EINVAL",
};

TEST(test_dlog_text_file)
{
	struct zcr_sess_log s2 = sess;
	char path[256], *text, *l[8];
	struct stat st;

	umask(022);
	tmp_path(path, sizeof(path), "zcr.log");
	ASSERT_ERR(zcr_log_open(path, 7), -EINVAL);
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_TEXT));
	zcr_log_set_level(ZC_LOG_INFO);
	zcr_log(ZC_LOG_INFO, "hello %d", 42);
	zcr_log(ZC_LOG_DEBUG, "not shown");
	zcr_log(ZC_LOG_WARN, "two\nlines\x01 \\ \xc3\xa9 \xff");
	zcr_log_session(&sess);
	s2.error = "";
	s2.fallback = NULL;
	s2.route = NULL;
	zcr_log_session(&s2);
	zcr_log_close();

	ASSERT_OK(stat(path, &st));
	ASSERT_EQ(st.st_mode & 0777, 0640);
	text = slurp(path);
	ASSERT_TRUE(text);
	ASSERT_EQ(split_lines(text, l, 8), 4);
	ASSERT_TRUE(ts_ok(l[0]) && ts_ok(l[1]) && ts_ok(l[2]) && ts_ok(l[3]));
	ASSERT_STREQ(l[0] + TS_LEN, " info hello 42");
	ASSERT_STREQ(l[1] + TS_LEN,
	             " warn two\\x0alines\\x01 \\ \xc3\xa9 \\xff");
	ASSERT_STREQ(l[2] + TS_LEN,
	             " info session worker=2 route=web client=1.2.3.4:5 "
	             "upstream=10.0.0.1:80 up=1 down=2 spliced=3 copied=0 "
	             "duration=0.123s end=eof error=ECONNRESET engine=uring "
	             "mover=auto fallback=EINVAL");
	ASSERT_STREQ(l[3] + TS_LEN,
	             " info session worker=2 route=- client=1.2.3.4:5 "
	             "upstream=10.0.0.1:80 up=1 down=2 spliced=3 copied=0 "
	             "duration=0.123s end=eof engine=uring mover=auto");
	free(text);
	return T_PASS;
}

/* A field value with spaces and '=' (a PROXY v2 Unix source path, which
 * a sender chooses) cannot add fields to a text session line, nor to a
 * message that puts it through zcr_log_field; JSON keeps it as is. */
TEST(test_dlog_text_field_escaping)
{
	static const char evil[] = "unix:/a b=c end=fake\\x20";
	struct zcr_sess_log s2 = sess;
	char path[256], buf[128], *text, *l[4];

	tmp_path(path, sizeof(path), "zcr.log");
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_TEXT));
	s2.client = evil;
	s2.error = NULL;
	s2.fallback = NULL;
	zcr_log_session(&s2);
	zcr_log(ZC_LOG_WARN, "session client=%s x",
	        zcr_log_field(evil, buf, sizeof(buf)));
	ASSERT_STREQ(zcr_log_field(evil, buf, 12), "unix:/a\\x20");
	zcr_log_close();
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_JSON));
	ASSERT_STREQ(zcr_log_field(evil, buf, sizeof(buf)), evil);
	zcr_log_close();
	text = slurp(path);
	ASSERT_TRUE(text);
	ASSERT_EQ(split_lines(text, l, 4), 2);
	ASSERT_STREQ(l[0] + TS_LEN,
	             " info session worker=2 route=web "
	             "client=unix:/a\\x20b\\x3dc\\x20end\\x3dfake\\x5cx20 "
	             "upstream=10.0.0.1:80 up=1 down=2 spliced=3 copied=0 "
	             "duration=0.123s end=eof engine=uring mover=auto");
	ASSERT_STREQ(l[1] + TS_LEN,
	             " warn session client=unix:/a\\x20b\\x3dc\\x20end"
	             "\\x3dfake\\x5cx20 x");
	free(text);
	return T_PASS;
}

TEST(test_dlog_json_escaping)
{
	static const char nasty[] = "q\"uote back\\slash nl\n cr\r tab\t "
	                            "bell\x01 us\x1f del\x7f \xc3\xa9 bad\xff"
	                            " cut\xe2\x82";
	char path[256], *text, *l[4];

	tmp_path(path, sizeof(path), "zcr.json");
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_JSON));
	ASSERT_EQ(zcr_log_format(), ZCR_LOGF_JSON);
	zcr_log(ZC_LOG_ERR, "%s", nasty);
	zcr_log_close();
	ASSERT_EQ(zcr_log_format(), ZCR_LOGF_TEXT);

	text = slurp(path);
	ASSERT_TRUE(text);
	ASSERT_EQ(split_lines(text, l, 4), 1);
	ASSERT_MEMEQ(l[0], "{\"ts\":\"", 7);
	ASSERT_TRUE(ts_ok(l[0] + 7));
	ASSERT_STREQ(l[0] + 7 + TS_LEN,
	             "\",\"level\":\"error\",\"msg\":\"q\\\"uote "
	             "back\\\\slash nl\\u000a cr\\u000d tab\\u0009 "
	             "bell\\u0001 us\\u001f del\\u007f \xc3\xa9 bad\\ufffd"
	             " cut\\ufffd\\ufffd\"}");
	free(text);
	ASSERT_EQ(py_check(path, "m = L[0][\"msg\"]\n"
	                         "assert len(L) == 1 and L[0][\"level\"] == "
	                         "\"error\", L\n"
	                         "assert m == \"q\\\"uote back\\\\slash nl\\n "
	                         "cr\\r tab\\t bell\\x01 us\\x1f del\\x7f "
	                         "\\xe9 bad\\ufffd cut\\ufffd\\ufffd\", m\n"),
	          0);
	return T_PASS;
}

TEST(test_dlog_json_session)
{
	struct zcr_sess_log s2 = sess;
	char path[256];

	tmp_path(path, sizeof(path), "zcr.json");
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_JSON));
	zcr_log_session(&sess);
	s2.error = NULL;
	s2.fallback = "";
	s2.client = "evil\"\n";
	zcr_log_session(&s2);
	zcr_log_set_level(ZC_LOG_WARN); /* sessions are info */
	zcr_log_session(&sess);
	zcr_log_close();

	ASSERT_EQ(
	        py_check(path,
	                 "assert len(L) == 2, L\n"
	                 "a, b = L\n"
	                 "assert a == {\"ts\": a[\"ts\"], \"level\": \"info\","
	                 " \"msg\": \"session\", \"worker\": 2, \"route\": "
	                 "\"web\", \"client\": \"1.2.3.4:5\", \"upstream\": "
	                 "\"10.0.0.1:80\", \"up\": 1, \"down\": 2, "
	                 "\"spliced\": 3, \"copied\": 0, \"duration\": 0.123,"
	                 " \"end\": \"eof\", \"error\": \"ECONNRESET\", "
	                 "\"engine\": \"uring\", \"mover\": \"auto\", "
	                 "\"fallback\": \"EINVAL\"}, a\n"
	                 "assert \"error\" not in b and \"fallback\" not in "
	                 "b, b\n"
	                 "assert b[\"client\"] == \"evil\\\"\\n\", b\n"),
	        0);
	return T_PASS;
}

/* Long lines are cut to ZCR_LOG_LINE_MAX, whole, in both formats. */
TEST(test_dlog_truncation)
{
	static char big[3 * ZCR_LOG_LINE_MAX];
	char path[256], *text, *l[8];
	int fmt, i, n;
	size_t off;

	/* x...x then é é é... and \x01 \x01...: the cut lands inside a
	 * multi-byte character or an escape in one format or the other. */
	for (off = 0; off < 4000; off++)
		big[off] = 'x';
	while (off < 6000) {
		big[off++] = '\xc3';
		big[off++] = '\xa9';
	}
	while (off < sizeof(big) - 1)
		big[off++] = '\x01';
	for (fmt = ZCR_LOGF_TEXT; fmt <= ZCR_LOGF_JSON; fmt++) {
		tmp_path(path, sizeof(path), fmt ? "big.json" : "big.log");
		ASSERT_OK(zcr_log_open(path, fmt));
		zcr_log(ZC_LOG_INFO, "%s", big);
		zcr_log(ZC_LOG_INFO, "%s", big + 3999);
		zcr_log(ZC_LOG_INFO, "%s", big + 3998);
		zcr_log(ZC_LOG_INFO, "%s", big + 5990);
		zcr_log_close();
		text = slurp(path);
		ASSERT_TRUE(text);
		n = split_lines(text, l, 8);
		ASSERT_EQ(n, 4);
		for (i = 0; i < n; i++) {
			ASSERT_LE(strlen(l[i]) + 1, ZCR_LOG_LINE_MAX);
			ASSERT_GE(strlen(l[i]) + 1, ZCR_LOG_LINE_MAX - 6);
		}
		free(text);
		if (fmt == ZCR_LOGF_JSON)
			ASSERT_EQ(py_check(path, "assert len(L) == 4\n"), 0);
	}
	return T_PASS;
}

/* logrotate: rename the file, reopen, the next line goes to a new file. */
TEST(test_dlog_reopen_after_rename)
{
	char path[256], old[256], *a, *b;

	tmp_path(path, sizeof(path), "zcr.log");
	tmp_path(old, sizeof(old), "zcr.log.1");
	ASSERT_OK(zcr_log_reopen()); /* stderr: nothing to do */
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_TEXT));
	zcr_log(ZC_LOG_INFO, "first");
	ASSERT_OK(rename(path, old));
	zcr_log(ZC_LOG_INFO, "still first file");
	ASSERT_OK(zcr_log_reopen());
	zcr_log(ZC_LOG_INFO, "second");
	zcr_log_close();

	a = slurp(old);
	b = slurp(path);
	ASSERT_TRUE(a && b);
	ASSERT_TRUE(strstr(a, " info first\n"));
	ASSERT_TRUE(strstr(a, " info still first file\n"));
	ASSERT_FALSE(strstr(a, "second"));
	ASSERT_STREQ(strchr(b, ' '), " info second\n");
	free(a);
	free(b);
	return T_PASS;
}

/* A reopen that cannot open the path keeps the old file. */
TEST(test_dlog_reopen_failure_keeps_old)
{
	char dir[256], moved[256], path[300], *text;

	tmp_path(dir, sizeof(dir), "logs");
	tmp_path(moved, sizeof(moved), "logs.old");
	ASSERT_OK(mkdir(dir, 0700));
	snprintf(path, sizeof(path), "%s/zcr.log", dir);
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_JSON));
	zcr_log(ZC_LOG_INFO, "one");
	ASSERT_OK(rename(dir, moved)); /* path's directory is gone */
	ASSERT_ERR(zcr_log_reopen(), -ENOENT);
	zcr_log(ZC_LOG_INFO, "two");
	ASSERT_ERR(zcr_log_open(path, ZCR_LOGF_TEXT), -ENOENT);
	zcr_log(ZC_LOG_INFO, "three"); /* format unchanged too */
	zcr_log_close();

	snprintf(path, sizeof(path), "%s/zcr.log", moved);
	text = slurp(path);
	ASSERT_TRUE(text);
	ASSERT_TRUE(strstr(text, "\"msg\":\"one\"}\n"));
	ASSERT_TRUE(strstr(text, "\"msg\":\"two\"}\n"));
	ASSERT_TRUE(strstr(text, "\"msg\":\"three\"}\n"));
	free(text);
	return T_PASS;
}

/* From a file back to stderr: later lines go to fd 2. */
TEST(test_dlog_back_to_stderr)
{
	char path[256], err_path[256], *text;
	int saved, fd;

	tmp_path(path, sizeof(path), "zcr.log");
	tmp_path(err_path, sizeof(err_path), "stderr.txt");
	fd = open(err_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ASSERT_OK(fd);
	saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
	ASSERT_OK(saved);
	ASSERT_OK(dup2(fd, 2));
	close(fd);
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_TEXT));
	zcr_log(ZC_LOG_INFO, "to file");
	ASSERT_OK(zcr_log_open(NULL, ZCR_LOGF_JSON));
	zcr_log(ZC_LOG_INFO, "to stderr");
	zcr_log_close();
	ASSERT_OK(dup2(saved, 2));
	close(saved);

	text = slurp(err_path);
	ASSERT_TRUE(text);
	ASSERT_TRUE(strstr(text, "\"msg\":\"to stderr\"}\n"));
	ASSERT_FALSE(strstr(text, "to file"));
	free(text);
	return T_PASS;
}

/* ------------------------------------------------------------------ */
/* Concurrent writers across reopens                                    */

#define NTHREADS 4
#define NLINES   1000
#define NROTATE  5
#define PAYLOAD  300

static void payload(char *buf, int t, int i)
{
	memset(buf, 'a' + (t * 7 + i) % 26, PAYLOAD);
	buf[PAYLOAD] = '\0';
}

static void *writer(void *arg)
{
	int t = (int)(intptr_t)arg, i;
	char p[PAYLOAD + 1];

	for (i = 0; i < NLINES; i++) {
		payload(p, t, i);
		zcr_log(ZC_LOG_INFO, "t=%d i=%d %s", t, i, p);
	}
	return NULL;
}

/* Checks every line of the file and marks it in seen. Returns how many
 * lines it had, or -1 on a damaged, repeated or unreadable line. */
static int check_file(const char *path, unsigned char seen[][NLINES])
{
	char *text = slurp(path), *line, *save, want[PAYLOAD + 1];
	char got[PAYLOAD + 2];
	int t, i, n = 0, bad = 0;

	if (!text)
		return -1;
	for (line = strtok_r(text, "\n", &save); line && !bad;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!ts_ok(line) ||
		    sscanf(line + TS_LEN, " info t=%d i=%d %301s", &t, &i,
		           got) != 3 ||
		    t < 0 || t >= NTHREADS || i < 0 || i >= NLINES ||
		    seen[t][i]++) {
			bad = 1;
			break;
		}
		payload(want, t, i);
		bad = strcmp(got, want) != 0;
		n++;
	}
	if (bad)
		t_log("damaged line in %s: %.80s", path, line);
	free(text);
	return bad ? -1 : n;
}

TEST(test_dlog_concurrent_writers)
{
	static unsigned char seen[NTHREADS][NLINES];
	char path[256], old[300];
	pthread_t th[NTHREADS];
	int i, n, total = 0;

	tmp_path(path, sizeof(path), "zcr.log");
	ASSERT_OK(zcr_log_open(path, ZCR_LOGF_TEXT));
	for (i = 0; i < NTHREADS; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, writer,
		                         (void *)(intptr_t)i),
		          0);
	for (i = 1; i <= NROTATE; i++) {
		usleep(2000);
		snprintf(old, sizeof(old), "%s.%d", path, i);
		ASSERT_OK(rename(path, old));
		ASSERT_OK(zcr_log_reopen());
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	zcr_log_close();

	for (i = 0; i <= NROTATE; i++) {
		if (i)
			snprintf(old, sizeof(old), "%s.%d", path, i);
		n = check_file(i ? old : path, seen);
		ASSERT_GE(n, 0);
		total += n;
	}
	ASSERT_EQ(total, NTHREADS * NLINES);
	return T_PASS;
}

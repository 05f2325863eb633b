/*
 * json.c - see json.h. Output is compact UTF-8 JSON: control characters,
 * '"' and '\\' escaped; bytes >= 0x80 that are not valid UTF-8 are
 * written as U+FFFD so that a strict parser accepts every document.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "json.h"

static void put(struct zcr_json *j, const char *s, size_t n)
{
	size_t cap;
	char *b;

	if (j->oom)
		return;
	if (j->n + n + 2 > j->cap) {
		cap = j->cap ? j->cap : 1024;
		while (j->n + n + 2 > cap)
			cap *= 2;
		b = realloc(j->b, cap);
		if (!b) {
			j->oom = 1;
			return;
		}
		j->b = b;
		j->cap = cap;
	}
	memcpy(j->b + j->n, s, n);
	j->n += n;
	j->b[j->n] = '\0';
}

static void puts_(struct zcr_json *j, const char *s)
{
	put(j, s, strlen(s));
}

/* The comma before an item, unless it opens a container or is a
 * member's value. */
static void sep(struct zcr_json *j)
{
	if (j->after_key)
		j->after_key = 0;
	else if (!j->first && j->n)
		put(j, ",", 1);
	j->first = 0;
}

void zcr_json_obj(struct zcr_json *j)
{
	sep(j);
	put(j, "{", 1);
	j->first = 1;
}

void zcr_json_obj_end(struct zcr_json *j)
{
	put(j, "}", 1);
	j->first = 0;
}

void zcr_json_arr(struct zcr_json *j)
{
	sep(j);
	put(j, "[", 1);
	j->first = 1;
}

void zcr_json_arr_end(struct zcr_json *j)
{
	put(j, "]", 1);
	j->first = 0;
}

static void put_escaped(struct zcr_json *j, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0, k;
	char e[8];

	put(j, "\"", 1);
	while (i < n) {
		if (s[i] >= 0x80) {
			k = zcr_utf8_len(s + i);
			if (k)
				put(j, (const char *)s + i, k);
			else
				puts_(j, "\\ufffd");
			i += k ? k : 1;
			continue;
		}
		if (s[i] == '"' || s[i] == '\\') {
			e[0] = '\\';
			e[1] = (char)s[i];
			put(j, e, 2);
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(e, sizeof(e), "\\u%04x", s[i]);
			put(j, e, 6);
		} else {
			put(j, (const char *)s + i, 1);
		}
		i++;
	}
	put(j, "\"", 1);
}

void zcr_json_key(struct zcr_json *j, const char *k)
{
	sep(j);
	put_escaped(j, k);
	put(j, ":", 1);
	j->after_key = 1;
}

void zcr_json_str(struct zcr_json *j, const char *s)
{
	sep(j);
	if (s)
		put_escaped(j, s);
	else
		puts_(j, "null");
}

void zcr_json_u64(struct zcr_json *j, uint64_t v)
{
	char b[32];

	sep(j);
	snprintf(b, sizeof(b), "%" PRIu64, v);
	puts_(j, b);
}

void zcr_json_i64(struct zcr_json *j, int64_t v)
{
	char b[32];

	sep(j);
	snprintf(b, sizeof(b), "%" PRId64, v);
	puts_(j, b);
}

void zcr_json_f(struct zcr_json *j, double v)
{
	char b[64];

	sep(j);
	if (!isfinite(v)) { /* JSON has no inf or nan */
		puts_(j, "null");
		return;
	}
	/* Past 1e15 "%.3f" would not fit b: the exponent form does. */
	snprintf(b, sizeof(b), v > -1e15 && v < 1e15 ? "%.3f" : "%.17g", v);
	puts_(j, b);
}

void zcr_json_bool(struct zcr_json *j, int v)
{
	sep(j);
	puts_(j, v ? "true" : "false");
}

void zcr_json_kstr(struct zcr_json *j, const char *k, const char *s)
{
	zcr_json_key(j, k);
	zcr_json_str(j, s);
}

void zcr_json_ku64(struct zcr_json *j, const char *k, uint64_t v)
{
	zcr_json_key(j, k);
	zcr_json_u64(j, v);
}

void zcr_json_kbool(struct zcr_json *j, const char *k, int v)
{
	zcr_json_key(j, k);
	zcr_json_bool(j, v);
}

char *zcr_json_done(struct zcr_json *j, size_t *len)
{
	char *b;

	put(j, "\n", 1);
	b = j->oom ? NULL : j->b;
	if (!b)
		free(j->b);
	*len = b ? j->n : 0;
	memset(j, 0, sizeof(*j));
	return b;
}

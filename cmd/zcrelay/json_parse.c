/*
 * json_parse.c - a small recursive-descent JSON reader for zcrelay ctl:
 * the admin API's answers are turned into a tree, then into tables. See
 * json.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define DEPTH_MAX 32

struct jp {
	const char *p;
	int depth;
};

static int parse_value(struct jp *j, struct zcr_jv *v);

static void skip_ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v |= (unsigned)((c | 0x20) - 'a' + 10);
		else
			return -EPROTO;
	}
	*out = v;
	return 0;
}

/* Appends code point cp as UTF-8 at *o. */
static void put_utf8(char **o, unsigned cp)
{
	char *q = *o;

	if (cp < 0x80) {
		*q++ = (char)cp;
	} else if (cp < 0x800) {
		*q++ = (char)(0xc0 | cp >> 6);
		*q++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*q++ = (char)(0xe0 | cp >> 12);
		*q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*q++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*q++ = (char)(0xf0 | cp >> 18);
		*q++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*q++ = (char)(0x80 | (cp & 0x3f));
	}
	*o = q;
}

/* One escape after the backslash at j->p; -EPROTO if malformed. */
static int parse_escape(struct jp *j, char **o)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *k = *j->p ? strchr(from, *j->p) : NULL;
	unsigned cp, lo;

	if (k) {
		*(*o)++ = to[k - from];
		j->p++;
		return 0;
	}
	if (*j->p != 'u' || hex4(j->p + 1, &cp))
		return -EPROTO;
	j->p += 5;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) ||
		    lo < 0xdc00 || lo > 0xdfff)
			return -EPROTO;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		j->p += 6;
	} else if (cp >= 0xdc00 && cp <= 0xdfff) {
		return -EPROTO;
	}
	put_utf8(o, cp);
	return 0;
}

/* A string at j->p (the opening quote) into a malloc'd *out. */
static int parse_string(struct jp *j, char **out)
{
	const char *e = j->p + 1;
	char *s, *o;

	while (*e && *e != '"')
		e += (*e == '\\' && e[1]) ? 2 : 1;
	if (*e != '"')
		return -EPROTO;
	/* Decoded, it is never longer than it is escaped. */
	s = malloc((size_t)(e - j->p) + 1);
	if (!s)
		return -ENOMEM;
	o = s;
	j->p++;
	while (*j->p != '"') {
		if ((unsigned char)*j->p < 0x20) {
			free(s);
			return -EPROTO;
		}
		if (*j->p != '\\') {
			*o++ = *j->p++;
			continue;
		}
		j->p++;
		if (parse_escape(j, &o)) {
			free(s);
			return -EPROTO;
		}
	}
	j->p++;
	*o = '\0';
	*out = s;
	return 0;
}

static int parse_number(struct jp *j, struct zcr_jv *v)
{
	const char *s = j->p;
	char *end;

	if (*s == '-')
		s++;
	if (*s < '0' || *s > '9')
		return -EPROTO;
	v->type = ZCR_JNUM;
	v->num = strtod(j->p, &end);
	if (end == j->p)
		return -EPROTO;
	j->p = end;
	return 0;
}

/* Appends a slot to the container v; returns it, or NULL. */
static struct zcr_jv *grow(struct zcr_jv *v, int with_key)
{
	struct zcr_jv *k = realloc(v->kids, (v->n + 1) * sizeof(*k));
	char **keys;

	if (!k)
		return NULL;
	v->kids = k;
	if (with_key) {
		keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));
		if (!keys)
			return NULL;
		v->keys = keys;
		keys[v->n] = NULL;
	}
	memset(&k[v->n], 0, sizeof(k[0]));
	return &k[v->n++];
}

/* The members or elements up to close; obj: "key": value pairs. */
static int parse_container(struct jp *j, struct zcr_jv *v, int obj)
{
	char close = obj ? '}' : ']';
	struct zcr_jv *slot;

	v->type = obj ? ZCR_JOBJ : ZCR_JARR;
	if (++j->depth > DEPTH_MAX)
		return -EPROTO;
	j->p++;
	skip_ws(j);
	if (*j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		skip_ws(j);
		slot = grow(v, obj);
		if (!slot)
			return -ENOMEM;
		if (obj) {
			if (*j->p != '"' || parse_string(j, &v->keys[v->n - 1]))
				return -EPROTO;
			skip_ws(j);
			if (*j->p++ != ':')
				return -EPROTO;
		}
		if (parse_value(j, slot))
			return -EPROTO;
		skip_ws(j);
		if (*j->p == close)
			break;
		if (*j->p++ != ',')
			return -EPROTO;
	}
	j->p++;
	j->depth--;
	return 0;
}

static int parse_word(struct jp *j, const char *w, int type, double num,
                      struct zcr_jv *v)
{
	size_t n = strlen(w);

	if (strncmp(j->p, w, n) != 0)
		return -EPROTO;
	j->p += n;
	v->type = type;
	v->num = num;
	return 0;
}

static int parse_value(struct jp *j, struct zcr_jv *v)
{
	skip_ws(j);
	switch (*j->p) {
	case '{':
		return parse_container(j, v, 1);
	case '[':
		return parse_container(j, v, 0);
	case '"':
		v->type = ZCR_JSTR;
		return parse_string(j, &v->str);
	case 't':
		return parse_word(j, "true", ZCR_JBOOL, 1, v);
	case 'f':
		return parse_word(j, "false", ZCR_JBOOL, 0, v);
	case 'n':
		return parse_word(j, "null", ZCR_JNULL, 0, v);
	default:
		return parse_number(j, v);
	}
}

static void jv_clear(struct zcr_jv *v)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		jv_clear(&v->kids[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->str);
}

struct zcr_jv *zcr_json_parse(const char *text)
{
	struct jp j = {text, 0};
	struct zcr_jv *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	if (parse_value(&j, v) == 0) {
		skip_ws(&j);
		if (*j.p == '\0')
			return v;
	}
	zcr_jv_free(v);
	return NULL;
}

void zcr_jv_free(struct zcr_jv *v)
{
	if (!v)
		return;
	jv_clear(v);
	free(v);
}

const struct zcr_jv *zcr_jv_get(const struct zcr_jv *v, const char *key)
{
	size_t i;

	if (!v || v->type != ZCR_JOBJ)
		return NULL;
	for (i = 0; i < v->n; i++)
		if (v->keys[i] && strcmp(v->keys[i], key) == 0)
			return &v->kids[i];
	return NULL;
}

const char *zcr_jv_text(const struct zcr_jv *v, char *buf, size_t size)
{
	if (!v || v->type == ZCR_JNULL || v->type == ZCR_JARR ||
	    v->type == ZCR_JOBJ)
		snprintf(buf, size, "-");
	else if (v->type == ZCR_JSTR)
		snprintf(buf, size, "%s", v->str);
	else if (v->type == ZCR_JBOOL)
		snprintf(buf, size, "%s", v->num ? "true" : "false");
	else if (v->num >= -9e18 && v->num <= 9e18 && /* casts defined */
	         v->num == (double)(long long)v->num)
		snprintf(buf, size, "%lld", (long long)v->num);
	else
		snprintf(buf, size, "%g", v->num);
	return buf;
}

/*
 * fuzz_json.c - libFuzzer harness for the JSON the admin API speaks: the
 * reader zcrelay ctl applies to response bodies (json_parse.c) and the
 * writer the daemon renders them with (json.c).
 *
 * The input is a response body. Beyond "no crash, no read past the end,
 * no leak", it checks that a value the reader accepts, written again by
 * the writer, is read back as the same tree: the same types, keys,
 * element counts and strings (those that are valid UTF-8: the writer
 * turns other bytes into U+FFFD on purpose), and the same numbers where
 * they are whole and exact in a double (one too large for a double, read
 * as infinity, is written null: JSON has no infinity). zcr_jv_text() of
 * every node must fit the buffer it is given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "json.h"
#include "fuzz.h"

/* Is s all valid UTF-8 (what the writer keeps byte for byte)? */
static int fz_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t k;

	while (*p) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		k = zcr_utf8_len(p);
		if (!k)
			return 0;
		p += k;
	}
	return 1;
}

/* A number the writer can put exactly: whole and within 2^53. */
static int fz_whole(double x)
{
	return x >= -9007199254740992.0 && x <= 9007199254740992.0 &&
	       x == (double)(int64_t)x;
}

static void fz_write(struct zcr_json *j, const struct zcr_jv *v)
{
	size_t i;

	switch (v->type) {
	case ZCR_JNULL:
		zcr_json_str(j, NULL);
		break;
	case ZCR_JBOOL:
		zcr_json_bool(j, v->num != 0);
		break;
	case ZCR_JNUM:
		if (fz_whole(v->num))
			zcr_json_i64(j, (int64_t)v->num);
		else
			zcr_json_f(j, v->num);
		break;
	case ZCR_JSTR:
		zcr_json_str(j, v->str);
		break;
	case ZCR_JARR:
		zcr_json_arr(j);
		for (i = 0; i < v->n; i++)
			fz_write(j, &v->kids[i]);
		zcr_json_arr_end(j);
		break;
	default:
		zcr_json_obj(j);
		for (i = 0; i < v->n; i++) {
			zcr_json_key(j, v->keys[i]);
			fz_write(j, &v->kids[i]);
		}
		zcr_json_obj_end(j);
	}
}

static void fz_same(const struct zcr_jv *a, const struct zcr_jv *b)
{
	char buf[16];
	size_t i;

	FZ_CHECK(strlen(zcr_jv_text(a, buf, sizeof(buf))) < sizeof(buf));
	if (a->type == ZCR_JNUM && !(a->num - a->num == 0)) {
		FZ_CHECK(b->type == ZCR_JNULL); /* inf (1e400): written null */
		return;
	}
	FZ_CHECK(a->type == b->type);
	switch (a->type) {
	case ZCR_JBOOL:
		FZ_CHECK(a->num == b->num);
		break;
	case ZCR_JNUM:
		if (fz_whole(a->num))
			FZ_CHECK(a->num == b->num);
		break;
	case ZCR_JSTR:
		if (fz_utf8(a->str))
			FZ_CHECK(strcmp(a->str, b->str) == 0);
		break;
	case ZCR_JARR:
	case ZCR_JOBJ:
		FZ_CHECK(a->n == b->n);
		for (i = 0; i < a->n; i++) {
			if (a->type == ZCR_JOBJ && fz_utf8(a->keys[i]))
				FZ_CHECK(strcmp(a->keys[i], b->keys[i]) == 0);
			fz_same(&a->kids[i], &b->kids[i]);
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zcr_json j = {0};
	struct zcr_jv *v, *again;
	char *text = malloc(size + 1), *out;
	size_t len;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	v = zcr_json_parse(text);
	free(text);
	if (!v)
		return 0;
	fz_write(&j, v);
	out = zcr_json_done(&j, &len);
	FZ_CHECK(out != NULL && strlen(out) == len);
	again = zcr_json_parse(out);
	FZ_CHECK(again != NULL);
	fz_same(v, again);
	zcr_jv_free(again);
	zcr_jv_free(v);
	free(out);
	return 0;
}

/*
 * json.h - a small JSON writer for the admin API's responses (json.c):
 * a growing buffer, commas placed by the writer, strings escaped.
 */
#ifndef ZCRELAY_JSON_H
#define ZCRELAY_JSON_H

#include <stddef.h>
#include <stdint.h>

/* A document under construction; zero-initialise it. */
struct zcr_json {
	char *b;
	size_t n, cap;
	int first;     /* just opened: no comma before the next item */
	int after_key; /* a key was written: its value needs no comma */
	int oom;       /* an allocation failed: the text is lost */
};

/* Objects and arrays. */
void zcr_json_obj(struct zcr_json *j);
void zcr_json_obj_end(struct zcr_json *j);
void zcr_json_arr(struct zcr_json *j);
void zcr_json_arr_end(struct zcr_json *j);
/* A member's key; the next value is its value. */
void zcr_json_key(struct zcr_json *j, const char *k);
/* Values: a string (escaped; NULL writes null), numbers, a boolean. */
void zcr_json_str(struct zcr_json *j, const char *s);
void zcr_json_u64(struct zcr_json *j, uint64_t v);
void zcr_json_i64(struct zcr_json *j, int64_t v);
void zcr_json_f(struct zcr_json *j, double v);
void zcr_json_bool(struct zcr_json *j, int v);
/* key and value in one call. */
void zcr_json_kstr(struct zcr_json *j, const char *k, const char *s);
void zcr_json_ku64(struct zcr_json *j, const char *k, uint64_t v);
void zcr_json_kbool(struct zcr_json *j, const char *k, int v);

/*
 * zcr_json_done - ends the text with a newline and hands it over: the
 * malloc'd, NUL-terminated text (the caller frees it) and its length in
 * *len; NULL when out of memory (nothing to free). j is reset.
 */
char *zcr_json_done(struct zcr_json *j, size_t *len);

#endif

/* ------------------------------------------------------------------ */
/* Reading (json_parse.c), for zcrelay ctl                              */

enum zcr_jtype { ZCR_JNULL, ZCR_JBOOL, ZCR_JNUM, ZCR_JSTR, ZCR_JARR, ZCR_JOBJ };

/* A parsed value. Objects keep their members in order. */
struct zcr_jv {
	int type;            /* enum zcr_jtype */
	double num;          /* JNUM; JBOOL: 0 or 1 */
	char *str;           /* JSTR: decoded, NUL-terminated */
	char **keys;         /* JOBJ: the members' names */
	struct zcr_jv *kids; /* JARR, JOBJ: the elements / members */
	size_t n;
};

/*
 * zcr_json_parse - parse the NUL-terminated text (RFC 8259, nesting at
 * most 32 deep; \u escapes decoded to UTF-8) into a malloc'd tree.
 * Returns it (free with zcr_jv_free), or NULL when the text is not one
 * JSON value or memory ran out.
 */
struct zcr_jv *zcr_json_parse(const char *text);
/* Frees v and everything in it; NULL is a no-op. */
void zcr_jv_free(struct zcr_jv *v);
/* The member key of the object v; NULL if v is no object or lacks it. */
const struct zcr_jv *zcr_jv_get(const struct zcr_jv *v, const char *key);
/* v as text into buf (size bytes): strings as they are, numbers without
 * a fraction when whole, true/false, "-" for null or a container.
 * Returns buf. */
const char *zcr_jv_text(const struct zcr_jv *v, char *buf, size_t size);

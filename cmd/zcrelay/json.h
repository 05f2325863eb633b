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
